//! The part of a sandbox that lives as long as its instance, as a program of its own: a few
//! pages instead of a copy of fgs. `build.rs` compiles it (no standard library, no libc, static,
//! not position-independent: nothing to relocate, so every page of it stays shared and clean) and
//! fgs embeds it; the shim and the namespace's init `execveat` it from a sealed memfd once
//! everything that needs fgs's code is done (docs/sandbox.md, "What an idle instance costs").
//!
//! A re-exec'd fgs kept about 450 KB of private memory in each of these two processes (the
//! relocated `.data.rel.ro` and GOT of a 20 MB binary, written by the dynamic loader at exec
//! and shared only between the shim and its forked init) plus about 70 KB of page tables each.
//!
//! Two roles, by `argv[2]` (`argv[1]` is `__sandbox-exec`, so that `/proc/1/cmdline` still names
//! the sandbox's init):
//! - `init RUNTIME_PID -`: PID 1 of the instance's pid namespace, every signal blocked (the mask
//!   survives exec). Reaps every zombie, forwards every other signal to every process of the
//!   namespace, and exits as the runtime's main process did (128+N for a signal N, like a shell).
//! - `wait INIT_PID PIDFD|-`: the shim, once the runtime runs. Waits for the init, ends the
//!   sandbox's pasta (a pidfd, when it has one), and exits as the init did: code N>128 by the
//!   signal N-128 itself, so that fgs sees the runtime's status.
//!
//! Arguments after these are not read (fgs adds the sandbox's root, which names its run dir).
//!
//! Keep it free of anything that would make the compiler call `memcpy` or `memset` (large
//! copies, zeroed arrays): there is no libc to provide them.

#![no_std]
#![no_main]

use core::arch::asm;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const GETPID: usize = 39;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const PRCTL: usize = 157;
    pub const EXIT_GROUP: usize = 231;
    pub const PIDFD_SEND_SIGNAL: usize = 424;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const RT_SIGACTION: usize = 134;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const GETPID: usize = 172;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const PRCTL: usize = 167;
    pub const EXIT_GROUP: usize = 94;
    pub const PIDFD_SEND_SIGNAL: usize = 424;
}

const SIGKILL: usize = 9;
const SIGCHLD: usize = 17;
const SIG_UNBLOCK: usize = 1;
const WNOHANG: usize = 1;
const EINTR: isize = 4;
const PR_SET_NAME: usize = 15;

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call fgs_init_main",
    "ud2",
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, sp",
    "bl fgs_init_main",
    "brk #0",
);

/// A raw system call; returns the kernel's value (negative errno on failure).
#[cfg(target_arch = "x86_64")]
unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for system call `n`.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
             in("rdx") c, in("r10") d, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for system call `n`.
    unsafe {
        asm!("svc 0", in("x8") n, inlateout("x0") a as isize => ret, in("x1") b, in("x2") c,
             in("x3") d, options(nostack));
    }
    ret
}

fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes a status and does not return.
    unsafe { syscall(nr::EXIT_GROUP, code as usize, 0, 0, 0) };
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(125)
}

/// A C string of argv. Walked byte by byte where it is used: a loop that only measures it would
/// become a call to `strlen`, which nothing here provides.
#[derive(Clone, Copy)]
struct Arg(*const u8);

impl Arg {
    fn byte(self, i: usize) -> u8 {
        // SAFETY: argv strings are NUL-terminated and live as long as the process; callers stop
        // at the NUL.
        unsafe { *self.0.add(i) }
    }

    fn is(self, word: &[u8]) -> bool {
        for (i, &w) in word.iter().enumerate() {
            if self.byte(i) != w {
                return false;
            }
        }
        self.byte(word.len()) == 0
    }

    /// Its value as a decimal number of at most 9 digits.
    fn number(self) -> Option<usize> {
        let mut v = 0usize;
        let mut i = 0;
        loop {
            match self.byte(i) {
                0 if i > 0 => return Some(v),
                b @ b'0'..=b'9' if i < 9 => v = v * 10 + (b - b'0') as usize,
                _ => return None,
            }
            i += 1;
        }
    }
}

fn set_name(name: &[u8; 16]) {
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated buffer we own.
    unsafe { syscall(nr::PRCTL, PR_SET_NAME, name.as_ptr() as usize, 0, 0) };
}

/// The exit code a shell would give for a wait status: the code, or 128+N for a signal N.
fn code_of(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff
    } else {
        128 + sig
    }
}

/// Entered from `_start` with the initial stack: argc, then the argv pointers.
///
/// # Safety
/// `sp` is the process's initial stack pointer as the kernel laid it out.
#[no_mangle]
unsafe extern "C" fn fgs_init_main(sp: *const usize) -> ! {
    // SAFETY: the kernel puts argc at the initial stack pointer and argc argv pointers after it.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    // SAFETY: `i < argc`, so argv[i] is one of the kernel's pointers.
    let arg = |i: usize| (i < argc).then(|| Arg(unsafe { *argv.add(i) }));
    let pid = arg(3).and_then(Arg::number);
    match (arg(2), pid) {
        (Some(a), Some(runtime)) if a.is(b"init") => init(runtime as i32),
        (Some(a), Some(init)) if a.is(b"wait") => wait(init as i32, arg(4).and_then(Arg::number)),
        _ => exit(125),
    }
}

fn init(runtime: i32) -> ! {
    set_name(b"fgs-init\0\0\0\0\0\0\0\0");
    // Every signal is blocked already (the mask survives exec): each is taken here in turn.
    let all: u64 = !0;
    loop {
        // SAFETY: rt_sigtimedwait reads the 8-byte set we own; no siginfo, no timeout.
        let sig = unsafe { syscall(nr::RT_SIGTIMEDWAIT, &all as *const u64 as usize, 0, 0, 8) };
        if sig <= 0 {
            continue;
        }
        if sig as usize != SIGCHLD {
            // kill(-1) from a namespace's init reaches every process in it but the init.
            // SAFETY: kill takes a pid and a signal number.
            unsafe { syscall(nr::KILL, -1isize as usize, sig as usize, 0, 0) };
            continue;
        }
        loop {
            let mut status: i32 = 0;
            // SAFETY: wait4 writes the status to the i32 we own; no rusage.
            let pid = unsafe {
                syscall(
                    nr::WAIT4,
                    -1isize as usize,
                    &mut status as *mut i32 as usize,
                    WNOHANG,
                    0,
                )
            };
            if pid <= 0 {
                break;
            }
            if pid as i32 == runtime {
                exit(code_of(status));
            }
        }
    }
}

fn wait(init: i32, pasta: Option<usize>) -> ! {
    set_name(b"fgs-shim\0\0\0\0\0\0\0\0");
    let status = loop {
        let mut status: i32 = 0;
        // SAFETY: wait4 writes the status to the i32 we own; no rusage.
        let pid = unsafe {
            syscall(
                nr::WAIT4,
                init as usize,
                &mut status as *mut i32 as usize,
                0,
                0,
            )
        };
        if pid == init as isize {
            break status;
        }
        if pid != -EINTR {
            exit(125);
        }
    };
    if let Some(fd) = pasta {
        // fgs ends pasta too when it tears the instance down, but it may be gone (`kill -9`).
        // SAFETY: pidfd_send_signal with an fd, a signal, no siginfo, no flags.
        unsafe { syscall(nr::PIDFD_SEND_SIGNAL, fd, SIGKILL, 0, 0) };
    }
    let code = code_of(status);
    if (129..=128 + 64).contains(&code) {
        die_by((code - 128) as usize);
    }
    exit(code)
}

/// Ends this process by `sig`, so that fgs sees the status the runtime had.
fn die_by(sig: usize) -> ! {
    // The default action (fgs's std ignored SIGPIPE, and that survived the exec).
    let action: [usize; 4] = [0, 0, 0, 0];
    let set: u64 = 1 << (sig - 1);
    // SAFETY: rt_sigaction reads the 4-word kernel sigaction we own (handler SIG_DFL);
    // rt_sigprocmask reads our 8-byte set; kill and getpid take numbers.
    unsafe {
        syscall(nr::RT_SIGACTION, sig, action.as_ptr() as usize, 0, 8);
        syscall(nr::RT_SIGPROCMASK, SIG_UNBLOCK, &set as *const u64 as usize, 0, 8);
        let me = syscall(nr::GETPID, 0, 0, 0, 0);
        syscall(nr::KILL, me as usize, sig, 0, 0);
    }
    exit(128 + sig as i32)
}
