//! Telling a real executable from a script, for the interpreter discovery and for the shell
//! instances get as `/bin/sh`.

use std::path::Path;

/// A real executable, not a script: version-manager shims are `#!` scripts.
pub(crate) fn is_binary(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    f.read_exact(&mut head).is_ok() && &head == b"\x7fELF"
}
