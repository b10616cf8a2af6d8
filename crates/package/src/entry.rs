//! The rules one archive entry must pass, shared by validation at upload and by extraction, so
//! the two can never disagree: its name, its file type, its symlink target, and its place among
//! the entries before it.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::PackageError;

/// Longest entry name, in bytes: Linux's PATH_MAX.
const NAME_MAX: usize = 4096;
/// Longest path component, in bytes: Linux's NAME_MAX.
const COMPONENT_MAX: usize = 255;
/// Longest symlink target, in bytes.
pub(crate) const LINK_TARGET_MAX: u64 = 4096;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File { executable: bool },
    Symlink,
}

/// The path components an entry name stands for, relative to the tree's root; empty for the root
/// itself (`./`). Refuses anything that could land outside the root or that Linux would read
/// differently from what the archive says: `..` anywhere (even where it would stay inside, so
/// no later rule has to reason about it), absolute names, backslashes (a Windows separator that
/// some unpackers honour), NUL, empty components.
pub(crate) fn components(name: &str) -> Result<Vec<&str>, PackageError> {
    let bad = |reason| PackageError::BadName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > NAME_MAX {
        return Err(bad("it is longer than 4096 bytes"));
    }
    if name.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    if name.contains('\\') {
        return Err(bad("it contains a backslash"));
    }
    if name.starts_with('/') {
        return Err(PackageError::PathEscape {
            name: name.to_owned(),
        });
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err(bad("it has an empty path component")),
            "." => {}
            ".." => {
                return Err(PackageError::PathEscape {
                    name: name.to_owned(),
                })
            }
            _ if part.len() > COMPONENT_MAX => {
                return Err(bad("a path component is longer than 255 bytes"))
            }
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// The entry's kind from its name and the unix mode of its external attributes. Archives made
/// without unix modes (Windows tools) mark directories by a trailing slash only.
pub(crate) fn kind(name: &str, mode: Option<u32>) -> Result<Kind, PackageError> {
    let trailing_slash = name.ends_with('/');
    let executable = mode.is_some_and(|m| m & 0o111 != 0);
    match mode.map_or(0, |m| m & S_IFMT) {
        S_IFDIR => Ok(Kind::Dir),
        // No type bits at all: some writers store permissions only.
        0 | S_IFREG if trailing_slash => Ok(Kind::Dir),
        0 | S_IFREG => Ok(Kind::File { executable }),
        S_IFLNK if trailing_slash => Err(PackageError::BadName {
            name: name.to_owned(),
            reason: "a symlink name ends with a slash",
        }),
        S_IFLNK => Ok(Kind::Symlink),
        _ => Err(PackageError::SpecialFile {
            name: name.to_owned(),
            mode: mode.unwrap_or(0),
        }),
    }
}

/// Checks the target of the symlink `name` whose path is `link`, and returns it as text.
///
/// The rule is stricter than "resolves inside the tree" and sound without knowing the other
/// entries: a relative target made of leading `..`s that climb no higher than the link's own
/// directory, then plain names only. A `..` after a name is refused because that name may itself
/// be a symlink, and the kernel resolves `..` from where the symlink points, not lexically.
pub(crate) fn link_target<'t>(
    name: &str,
    link: &[&str],
    target: &'t [u8],
) -> Result<&'t str, PackageError> {
    let bad = |reason| PackageError::BadLink {
        name: name.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(target).map_err(|_| bad("it is not UTF-8"))?;
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    if text.contains('\\') {
        return Err(bad("it contains a backslash"));
    }
    let escape = || PackageError::LinkEscape {
        name: name.to_owned(),
        target: text.to_owned(),
    };
    if text.starts_with('/') {
        return Err(escape());
    }
    // The link's directory is `link` without its last component.
    let mut depth = link.len().saturating_sub(1);
    let mut seen_name = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if seen_name => return Err(bad("it has `..` after a name")),
            ".." => depth = depth.checked_sub(1).ok_or_else(escape)?,
            _ => seen_name = true,
        }
    }
    Ok(text)
}

/// The paths seen so far in one archive. Refuses an entry whose path was taken by another one, or
/// that sits below a file or symlink: writing through a symlink could follow it anywhere, and a
/// duplicate name would let a later entry replace an earlier, checked one.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    dirs: HashSet<PathBuf>,
    leaves: HashSet<PathBuf>,
}

impl Tree {
    pub(crate) fn add(
        &mut self,
        name: &str,
        parts: &[&str],
        kind: Kind,
    ) -> Result<(), PackageError> {
        let conflict = || PackageError::PathConflict {
            name: name.to_owned(),
        };
        let Some((_, parents)) = parts.split_last() else {
            // The root itself: only a directory entry (`./`) may name it.
            return match kind {
                Kind::Dir => Ok(()),
                _ => Err(PackageError::BadName {
                    name: name.to_owned(),
                    reason: "it names the package root",
                }),
            };
        };
        let mut path = PathBuf::new();
        for parent in parents {
            path.push(parent);
            if self.leaves.contains(&path) {
                return Err(conflict());
            }
            self.dirs.insert(path.clone());
        }
        let path: PathBuf = parts.iter().collect();
        if self.leaves.contains(&path) {
            return Err(conflict());
        }
        match kind {
            Kind::Dir => {
                self.dirs.insert(path);
            }
            Kind::File { .. } | Kind::Symlink => {
                if self.dirs.contains(&path) {
                    return Err(conflict());
                }
                self.leaves.insert(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_and_normalised() {
        assert_eq!(components("a/b.py").expect("plain"), ["a", "b.py"]);
        assert_eq!(components("./a/./b/").expect("dots"), ["a", "b"]);
        assert!(components("./").expect("root").is_empty());
    }

    #[test]
    fn escaping_names_are_refused() {
        for name in ["../x", "/abs", "a/../../x", "a/../b", ".."] {
            let err = components(name).expect_err(name);
            assert!(
                matches!(err, PackageError::PathEscape { .. }),
                "{name}: {err:?}"
            );
        }
        for name in ["", "a\\..\\x", "a//b", "a\0b"] {
            let err = components(name).expect_err(name);
            assert!(
                matches!(err, PackageError::BadName { .. }),
                "{name:?}: {err:?}"
            );
        }
        let long = "x".repeat(256);
        assert!(components(&long).is_err());
        assert!(components(&"a/".repeat(2100)).is_err());
    }

    #[test]
    fn kinds_follow_the_unix_mode() {
        let file = |exec| Ok::<_, ()>(Kind::File { executable: exec });
        assert_eq!(kind("a", Some(0o100_755)).map_err(drop), file(true));
        assert_eq!(kind("a", Some(0o100_644)).map_err(drop), file(false));
        assert_eq!(kind("a", None).map_err(drop), file(false));
        assert_eq!(kind("a", Some(0o755)).map_err(drop), file(true));
        assert_eq!(kind("d/", None).map_err(drop), Ok(Kind::Dir));
        assert_eq!(kind("d", Some(0o040_755)).map_err(drop), Ok(Kind::Dir));
        assert_eq!(kind("l", Some(0o120_777)).map_err(drop), Ok(Kind::Symlink));
        // fifo, character device, block device, socket
        for mode in [0o010_644, 0o020_644, 0o060_644, 0o140_755] {
            let err = kind("x", Some(mode)).expect_err("special file");
            assert!(
                matches!(err, PackageError::SpecialFile { .. }),
                "{mode:o}: {err:?}"
            );
        }
    }

    #[test]
    fn link_targets_must_stay_inside() {
        assert_eq!(link_target("a", &["a"], b"b").expect("sibling"), "b");
        assert!(link_target("d/a", &["d", "a"], b"../b/c").is_ok());
        assert!(
            link_target("d/a", &["d", "a"], b"..").is_ok(),
            "the root itself"
        );
        assert!(link_target("a", &["a"], b"./x/./y").is_ok());
        for (link, target) in [
            (&["a"][..], &b"../x"[..]),
            (&["d", "a"], b"../../x"),
            (&["a"], b"/etc/passwd"),
        ] {
            let err = link_target("l", link, target).expect_err("escape");
            assert!(matches!(err, PackageError::LinkEscape { .. }), "{err:?}");
        }
        for target in [&b"x/../../y"[..], b"", b"\xff", b"a\\b", b"a\0"] {
            let err = link_target("l", &["d", "a"], target).expect_err("bad target");
            assert!(matches!(err, PackageError::BadLink { .. }), "{err:?}");
        }
    }

    #[test]
    fn tree_refuses_clashes_and_entries_below_leaves() {
        let mut tree = Tree::default();
        tree.add("a/b", &["a", "b"], Kind::File { executable: false })
            .expect("file");
        tree.add("a/", &["a"], Kind::Dir)
            .expect("explicit dir after implicit");
        let clash =
            |r: Result<(), PackageError>| matches!(r, Err(PackageError::PathConflict { .. }));
        assert!(
            clash(tree.add("a", &["a"], Kind::Symlink)),
            "leaf over a dir"
        );
        assert!(
            clash(tree.add("a/b", &["a", "b"], Kind::Symlink)),
            "duplicate"
        );
        assert!(
            clash(tree.add("a/b/c", &["a", "b", "c"], Kind::Dir)),
            "below a file"
        );
        tree.add("l", &["l"], Kind::Symlink).expect("link");
        assert!(clash(tree.add(
            "l/x",
            &["l", "x"],
            Kind::File { executable: false }
        )));
        assert!(tree
            .add(".", &[], Kind::File { executable: false })
            .is_err());
        assert!(tree.add("./", &[], Kind::Dir).is_ok());
    }
}
