//! The control channel between fgs and a sandbox shim: a `SOCK_SEQPACKET` socketpair carrying one
//! JSON message per packet, and the Runtime API listener as an `SCM_RIGHTS` file descriptor.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// The fd number the shim finds its end of the control socket at.
pub(crate) const SHIM_CTL_FD: RawFd = 3;

/// Largest message: an exec spec with a 4 KB environment and a few mounts fits many times over.
const MAX_MSG: usize = 256 * 1024;
/// Most fds one message carries (a specialization's mount trees).
pub(crate) const MAX_FDS: usize = 4;

/// What the shim is started with (its one argument, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShimConfig {
    /// `cgroup.procs` files to join before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    /// An empty host directory the sandbox's root tmpfs is mounted on (in its own mount ns).
    pub root_dir: PathBuf,
    pub hostname: String,
    /// The whole `/etc/hosts` of the sandbox.
    pub hosts: String,
    /// Port of the Runtime API listener on the sandbox's 127.0.0.1.
    pub api_port: u16,
    pub tmp_size_mb: u32,
    /// Rootless: the user namespace to make first, and how ids map into it.
    #[serde(default)]
    pub user_ns: Option<UserNs>,
    /// Where the sandbox's pasta will write its pid, when it gets one: fgs makes the file
    /// before it starts pasta.
    #[serde(default)]
    pub pasta_pid_file: Option<PathBuf>,
    /// fgs passed the `fgs-init` program at [`crate::tiny::TINY_FD`].
    #[serde(default)]
    pub tiny: bool,
}

/// A user namespace with one uid and one gid: the host ids of the unprivileged user fgs runs as,
/// seen inside as the function's ids (1003). One line each is all an unprivileged process may
/// write to its own `uid_map` without `newuidmap`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct UserNs {
    pub host_uid: u32,
    pub host_gid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The second step: what to run, with which mounts and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpawnMsg {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Read-only bind mounts `(host path, sandbox path)`.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    /// cgroup files to write before the runtime starts `(file, value)`.
    pub cgroup_writes: Vec<(PathBuf, String)>,
    pub uid: u32,
    pub gid: u32,
    pub nofile: u64,
    /// `RLIMIT_NPROC` of the runtime, where no pids cgroup counts the instance's processes: in
    /// a user namespace of its own, the kernel counts them per instance.
    #[serde(default)]
    pub nproc: Option<u64>,
    /// In a user namespace whose `setgroups` is denied: the runtime keeps the empty group list
    /// it already has instead of calling `setgroups`.
    #[serde(default)]
    pub user_ns: bool,
    /// Whether the instance keeps the interfaces egress gave its namespace; without, only
    /// `lo` stays up.
    pub network: bool,
    /// A pre-started runtime: it gets the read end of a pipe at fd [`HOLD_FD`], and the shim
    /// waits for [`Request::Specialize`] before it writes the function's message there.
    #[serde(default)]
    pub hold: bool,
    /// An image function's unpacked root on the host: the instance's root is an overlay of it.
    #[serde(default)]
    pub image_root: Option<PathBuf>,
}

/// The fd a pre-started runtime reads its specialization message from.
pub(crate) const HOLD_FD: RawFd = 3;

/// What makes a pre-started runtime one function's instance. The mounts travel as detached
/// mount trees (`open_tree`), one passed fd per target, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpecializeMsg {
    pub targets: Vec<PathBuf>,
    pub network: bool,
    /// Written to the runtime's [`HOLD_FD`], then that pipe is closed.
    pub message: Vec<u8>,
}

/// What fgs sends a shim after it is ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The pasta serving the sandbox: the shim kills it if fgs goes away (`kill -9`) while the
    /// sandbox is prepared or, rootless, running, since pasta does not quit on its own when the
    /// namespace it serves empties.
    Egress { pid: i32 },
    /// Run the runtime.
    Spawn(Box<SpawnMsg>),
    /// A TCP connection to the sandbox's `127.0.0.1:port`, made by the shim inside the
    /// sandbox's network namespace: fgs without root may not `setns` into it.
    Connect { seq: u64, port: u16 },
    /// Make the held runtime one function's instance (its mount trees travel with it).
    Specialize(Box<SpecializeMsg>),
}

/// What the shim answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The sandbox is prepared; the listener travels with this message.
    Ready,
    /// The sandbox's init process runs, with this pid in fgs's pid namespace.
    Init {
        pid: i32,
        /// fgs is the init's parent (`CLONE_PARENT`): fgs reaps it and takes the instance's
        /// exit status from it, and the shim exits once fgs closes the control socket.
        #[serde(default)]
        parented: bool,
    },
    /// The runtime process was started.
    Started,
    /// A held runtime's mounts and limits are in place and its message is written.
    Specialized,
    /// The connection of [`Request::Connect`] `seq`; the socket travels with this message.
    Connected {
        seq: u64,
    },
    ConnectFailed {
        seq: u64,
        errno: i32,
    },
    Failed {
        error: String,
    },
}

pub(crate) fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

pub(crate) fn send<T: Serialize>(
    fd: BorrowedFd<'_>,
    msg: &T,
    pass: Option<RawFd>,
) -> nix::Result<()> {
    send_fds(fd, msg, pass.as_slice())
}

/// [`send`] with any number of fds (at most [`MAX_FDS`]).
pub(crate) fn send_fds<T: Serialize>(
    fd: BorrowedFd<'_>,
    msg: &T,
    pass: &[RawFd],
) -> nix::Result<()> {
    let bytes = serde_json::to_vec(msg).expect("control messages serialize");
    let iov = [IoSlice::new(&bytes)];
    let rights = [ControlMessage::ScmRights(pass)];
    let cmsgs: &[ControlMessage] = if pass.is_empty() { &[] } else { &rights };
    sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one message and a passed fd if any; `Ok(None)` at end of stream.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    fd: BorrowedFd<'_>,
) -> std::io::Result<Option<(T, Option<OwnedFd>)>> {
    Ok(recv_fds(fd)?.map(|(m, fds)| (m, fds.into_iter().next())))
}

/// [`recv`] with every passed fd, in order.
pub(crate) fn recv_fds<T: for<'de> Deserialize<'de>>(
    fd: BorrowedFd<'_>,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MSG];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (n, passed) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = loop {
            match recvmsg::<()>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.map_err(std::io::Error::from)?,
            }
        };
        let mut passed = Vec::new();
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed this fd in our table for us; nothing
                    // else owns it.
                    passed.push(unsafe { OwnedFd::from_raw_fd(f) });
                }
            }
        }
        (msg.bytes, passed)
    };
    if n == 0 {
        return Ok(None);
    }
    let v = serde_json::from_slice(&buf[..n])
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((v, passed)))
}
