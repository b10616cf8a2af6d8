//! The rootless sandbox's user namespace: one uid and one gid mapped.
//!
//! An unprivileged process may write its own `uid_map` once, with one line mapping its own
//! effective uid of the parent namespace, and `gid_map` likewise after writing `deny` to
//! `setgroups` (user_namespaces(7)). That is enough: everything in the sandbox runs as the
//! function's uid (1003 inside, fgs's uid on the host), and files of any other host owner show as
//! the overflow uid. `newuidmap` would give more ids, but nothing in a sandbox needs them.

use super::{Ctx, ShimResult};
use crate::ctl::UserNs;

/// Maps the host ids into the namespace the shim has just unshared.
pub(super) fn map_ids(map: &UserNs) -> ShimResult<()> {
    std::fs::write("/proc/self/setgroups", "deny").ctx(|| "denying setgroups".into())?;
    std::fs::write(
        "/proc/self/uid_map",
        format!("{} {} 1\n", map.uid, map.host_uid),
    )
    .ctx(|| format!("mapping uid {} to {}", map.host_uid, map.uid))?;
    std::fs::write(
        "/proc/self/gid_map",
        format!("{} {} 1\n", map.gid, map.host_gid),
    )
    .ctx(|| format!("mapping gid {} to {}", map.host_gid, map.gid))?;
    Ok(())
}
