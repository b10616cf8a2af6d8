//! Image functions (FunctionGraph's `custom_image`): which image a function runs and how its
//! container is started, validated as FunctionGraph's "Creating a Function with an Image" says.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// The uid and gid an image's process runs as unless the function says otherwise.
pub const DEFAULT_ID: u32 = 1003;
/// Command, args and working dir together: at most this many characters.
pub const OVERRIDE_MAX: usize = 5120;

/// A function's image, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomImage {
    /// The reference the user gave (`host[:port]/repo:tag` or `...@sha256:`).
    pub image: String,
    /// The platform manifest's digest the reference resolved to when the function was created
    /// or last updated: what its instances run.
    pub digest: String,
    /// Overrides the image's entrypoint: comma-separated, as FunctionGraph's console takes it.
    #[serde(default)]
    pub command: String,
    /// Overrides the image's cmd: comma-separated.
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub working_dir: String,
    pub uid: u32,
    pub gid: u32,
}

impl CustomImage {
    /// A validated image setting, not yet resolved (`digest` empty). `uid`/`gid` arrive as
    /// strings (the SDK's model) or numbers; absent or empty means 1003; 0 is refused.
    pub fn new(
        image: &str,
        command: &str,
        args: &str,
        working_dir: &str,
        uid: Option<&serde_json::Value>,
        gid: Option<&serde_json::Value>,
    ) -> Result<CustomImage, Invalid> {
        if image.trim().is_empty() {
            return Err(Invalid::Parameter(
                "custom_image.image is required: name the image, e.g. host:5000/repo:tag".into(),
            ));
        }
        let total = command.chars().count() + args.chars().count() + working_dir.chars().count();
        if total > OVERRIDE_MAX {
            return Err(Invalid::Parameter(format!(
                "custom_image command, args and working_dir are {total} characters together, over {OVERRIDE_MAX}"
            )));
        }
        if !working_dir.is_empty() && !working_dir.starts_with('/') {
            return Err(Invalid::Parameter(format!(
                "custom_image.working_dir {working_dir:?} must be an absolute path"
            )));
        }
        Ok(CustomImage {
            image: image.trim().to_string(),
            digest: String::new(),
            command: command.to_string(),
            args: args.to_string(),
            working_dir: working_dir.to_string(),
            uid: id("uid", uid)?,
            gid: id("gid", gid)?,
        })
    }

    /// What the container runs, as Docker reads an override: a `command` replaces the image's
    /// entrypoint and drops its cmd; `args` replace the cmd.
    pub fn argv(&self, entrypoint: &[String], cmd: &[String]) -> Vec<String> {
        let (command, args) = (self.command_list(), self.args_list());
        let mut argv = if command.is_empty() {
            entrypoint.to_vec()
        } else {
            command
        };
        if !args.is_empty() {
            argv.extend(args);
        } else if self.command.trim().is_empty() {
            argv.extend(cmd.iter().cloned());
        }
        argv
    }

    /// `command` split at its commas (empty: the image's entrypoint).
    pub fn command_list(&self) -> Vec<String> {
        split(&self.command)
    }

    /// `args` split at its commas (empty: the image's cmd).
    pub fn args_list(&self) -> Vec<String> {
        split(&self.args)
    }
}

fn split(s: &str) -> Vec<String> {
    if s.trim().is_empty() {
        return Vec::new();
    }
    s.split(',').map(|p| p.trim().to_string()).collect()
}

fn id(field: &str, v: Option<&serde_json::Value>) -> Result<u32, Invalid> {
    let bad = || {
        Invalid::Parameter(format!(
            "custom_image.{field} is invalid: use a number from 1 to 65534 (not root)"
        ))
    };
    let n = match v {
        None | Some(serde_json::Value::Null) => return Ok(DEFAULT_ID),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => return Ok(DEFAULT_ID),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u32>().map_err(|_| bad())?,
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    if n == 0 || n > 65534 {
        return Err(bad());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_default_to_1003_and_refuse_root() {
        let c = CustomImage::new("r:5000/a:b", "", "", "", None, Some(&json!(""))).unwrap();
        assert_eq!((c.uid, c.gid), (DEFAULT_ID, DEFAULT_ID));
        let c = CustomImage::new("r/a", "", "", "", Some(&json!("1500")), Some(&json!(7))).unwrap();
        assert_eq!((c.uid, c.gid), (1500, 7));
        for bad in [json!("0"), json!(0), json!("root"), json!(-1), json!(70000)] {
            assert!(
                CustomImage::new("r/a", "", "", "", Some(&bad), None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn overrides_are_bounded_and_split() {
        let long = "a".repeat(5000);
        assert!(CustomImage::new("r/a", &long, &"b".repeat(100), "/w", None, None).is_ok());
        assert!(CustomImage::new("r/a", &long, &"b".repeat(120), "/w", None, None).is_err());
        assert!(CustomImage::new("", "", "", "", None, None).is_err());
        assert!(CustomImage::new("r/a", "", "", "rel", None, None).is_err());
        let c = CustomImage::new("r/a", "/bin/sh", "-c, echo hi", "", None, None).unwrap();
        assert_eq!(c.command_list(), vec!["/bin/sh"]);
        assert_eq!(c.args_list(), vec!["-c", "echo hi"]);
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (ep, cmd) = (v(&["/entry"]), v(&["serve"]));
        assert_eq!(c.argv(&ep, &cmd), v(&["/bin/sh", "-c", "echo hi"]));
        let none = CustomImage::new("r/a", "", "", "", None, None).unwrap();
        assert_eq!(none.argv(&ep, &cmd), v(&["/entry", "serve"]));
        let args = CustomImage::new("r/a", "", "--port,8000", "", None, None).unwrap();
        assert_eq!(args.argv(&ep, &cmd), v(&["/entry", "--port", "8000"]));
        let cmd_only = CustomImage::new("r/a", "/srv", "", "", None, None).unwrap();
        assert_eq!(cmd_only.argv(&ep, &cmd), v(&["/srv"]));
    }
}
