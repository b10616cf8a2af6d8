//! A held runtime (pre-started interpreters, docs/sandbox.md): the runtime was started with
//! no function, reading fd 3; the shim waits for fgs's [`Request::Specialize`], attaches the
//! function's mount trees, takes the network down if the function has none, and only then
//! writes the function's message to the runtime and closes the pipe. fgs wrote the cgroup
//! limits before it sent the specialization (the host's cgroup tree is out of the shim's reach
//! once the sandbox's root is pivoted), so the runtime cannot import a line of the function's
//! code before its limits hold.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{root, Ctx, ShimResult};
use crate::ctl::{self, Reply, Request, SpecializeMsg};

/// Waits for the specialization and applies it. fgs letting the held runtime go (its end of
/// the control socket closed) ends the runtime's tree.
pub(super) fn serve(ctl: &OwnedFd, pipe: OwnedFd, init: Pid) -> ShimResult<()> {
    loop {
        match ctl::recv_fds::<Request>(ctl.as_fd()).ctx(|| "reading the specialization".into())? {
            Some((Request::Specialize(msg), trees)) => {
                if let Err(e) = apply(&msg, &trees, pipe) {
                    let _ = kill(init, Signal::SIGKILL);
                    return Err(e);
                }
                return ctl::send(ctl.as_fd(), &Reply::Specialized, None)
                    .ctx(|| "reporting the specialization".into());
            }
            Some(_) => continue,
            None => {
                let _ = kill(init, Signal::SIGKILL);
                return Ok(());
            }
        }
    }
}

fn apply(msg: &SpecializeMsg, trees: &[OwnedFd], pipe: OwnedFd) -> ShimResult<()> {
    if trees.len() != msg.targets.len() {
        return Err(format!(
            "{} mount trees for {} targets",
            trees.len(),
            msg.targets.len()
        ));
    }
    for (tree, target) in trees.iter().zip(&msg.targets) {
        root::attach(tree, target)?;
    }
    if !msg.network {
        super::interfaces_down()?;
    }
    let mut w = std::fs::File::from(pipe);
    w.write_all(&msg.message)
        .ctx(|| "writing the specialization to the runtime".into())
}
