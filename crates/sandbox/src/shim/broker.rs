//! Rootless only: the shim connects to the sandbox's loopback on fgs's behalf.
//!
//! fgs reaches an instance's `127.0.0.1:8000` (HTTP functions) and extension ports through
//! sockets made inside the instance's network namespace. As root it `setns`es a thread there;
//! without root it may not (`setns` wants `CAP_SYS_ADMIN` in fgs's own user namespace too), and a
//! multi-threaded process can never join the user namespace that would give it. The shim is
//! already in that namespace, so once the runtime runs it serves [`Request::Connect`] on the
//! control socket and passes each connected socket back (`SCM_RIGHTS`), until the init exits or
//! fgs closes its end, which ends the instance (also when fgs was killed).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::unistd::Pid;

use super::{Ctx, ShimResult};
use crate::ctl::{self, Reply, Request};
use crate::sys::PidFd;

/// A connection to the sandbox's own loopback is accepted or refused at once; this only bounds
/// a listener whose backlog is full.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves connection requests until the init (`child`) exits or fgs closes the control socket.
pub(super) fn serve(ctl: &OwnedFd, child: Pid, pasta: Option<&PidFd>) -> ShimResult<()> {
    let init: OwnedFd = PidFd::open(child.as_raw())
        .ctx(|| "pidfd of the init".into())?
        .into();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: ctl.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: init.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two initialised pollfd structs that outlives the call,
        // and its length is passed with it; both fds are open for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if fds[1].revents != 0 {
            // The init exited: the caller reaps it.
            return Ok(());
        }
        if fds[0].revents == 0 {
            continue;
        }
        match ctl::recv::<Request>(ctl.as_fd()) {
            Ok(Some((Request::Connect { seq, port }, _))) => answer(ctl, seq, port)?,
            // Only sent before the spawn (a held runtime is never rootless).
            Ok(Some((Request::Egress { .. } | Request::Spawn(_) | Request::Specialize(_), _))) => {}
            // fgs let the instance go, or was killed. Rootless there is no cgroup for the next
            // fgs to sweep, so the instance ends here: the init's death takes the namespace.
            Ok(None) | Err(_) => {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                if let Some(p) = pasta {
                    p.signal(nix::sys::signal::Signal::SIGKILL);
                }
                return Ok(());
            }
        }
    }
}

fn answer(ctl: &OwnedFd, seq: u64, port: u16) -> ShimResult<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(stream) => ctl::send(
            ctl.as_fd(),
            &Reply::Connected { seq },
            Some(stream.as_raw_fd()),
        ),
        Err(e) => ctl::send(
            ctl.as_fd(),
            &Reply::ConnectFailed {
                seq,
                errno: e.raw_os_error().unwrap_or(libc::ECONNREFUSED),
            },
            None,
        ),
    }
    .ctx(|| "answering a connection request".into())
}
