//! The seccomp filter of function processes: a deny list of what a function never needs, answered
//! with EPERM (Docker's default profile refuses the same families). A deny list rather than an
//! allow list, because runtimes (Python, Node.js, arbitrary Custom bootstraps) use wide and
//! changing sets of ordinary syscalls.
//!
//! Its cost on the warm path is nil because every verdict but `clone`'s depends on the syscall
//! number alone: the kernel (5.11 on) runs each filter once per number when it is installed and
//! answers a constant allow from a bitmap, without running the linear program. seccompiler's
//! order and the list's length therefore do not matter for the hot calls (read, write, sendto,
//! recvfrom, epoll_*); the tests below check that they stay constant allows. Measured
//! (bench/README.md, "Throughput (issue 19)"): 0.4 % of the runtime's samples, all of it the
//! entry's bitmap check; the same 45 entries with the cache defeated cost 0.25 µs per round trip.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::ShimResult;

/// Refused outright: the mount table, kernel modules, kexec, bpf, tracing other processes,
/// swap, reboot, joining or creating namespaces, the kernel keyring, file handles (the
/// `open_by_handle_at` container escape), the clock, and the new mount API.
const DENIED: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_ptrace,
    libc::SYS_process_vm_writev,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_lookup_dcookie,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
];

/// Namespace flags that `clone` may not carry (new namespaces are the sandbox's business).
const NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(target_arch = "riscv64")]
    return TargetArch::riscv64;
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    TargetArch::x86_64
}

/// The two programs to install: the deny list (EPERM), and `clone3` answered ENOSYS so that libc
/// falls back to `clone`, whose flags a filter can see (`clone3` passes them in memory).
pub(crate) fn programs() -> ShimResult<Vec<BpfProgram>> {
    let err = |e: seccompiler::BackendError| format!("building the seccomp filter: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let clone_rules = NS_FLAGS
        .iter()
        .map(|&f| {
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(f),
                f,
            )
            .map_err(err)?])
            .map_err(err)
        })
        .collect::<ShimResult<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch(),
    )
    .map_err(err)?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )
    .map_err(err)?;
    let mut out = Vec::new();
    for f in [deny, clone3] {
        out.push(
            BpfProgram::try_from(f).map_err(|e| format!("compiling the seccomp filter: {e}"))?,
        );
    }
    Ok(out)
}

/// Installs the programs on the calling thread (after `no_new_privs`).
pub(crate) fn apply(programs: &[BpfProgram]) -> ShimResult<()> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use seccompiler::sock_filter;

    #[test]
    fn filters_compile() {
        let p = super::programs().expect("filters build");
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| !p.is_empty()));
    }

    /// What the kernel's action cache computes at install time (`seccomp_is_const_allow`): the
    /// verdict for syscall `nr` of the native architecture, or `None` when the program reads
    /// anything else of `seccomp_data` (an argument, the instruction pointer) before it answers,
    /// so that the verdict cannot be cached and the program runs at every such call.
    fn const_verdict(prog: &[sock_filter], nr: u32) -> Option<u32> {
        // Classic BPF opcodes (linux/bpf_common.h), which seccompiler emits.
        const LD_W_ABS: u16 = 0x20;
        const ALU_AND_K: u16 = 0x54;
        const JA: u16 = 0x05;
        const JEQ_K: u16 = 0x15;
        const JGT_K: u16 = 0x25;
        const JGE_K: u16 = 0x35;
        const JSET_K: u16 = 0x45;
        const RET_K: u16 = 0x06;
        // seccomp_data: nr at 0, arch at 4, then the instruction pointer and the arguments.
        #[derive(Clone, Copy)]
        enum Acc {
            Known(u32),
            Arch,
        }
        let (mut pc, mut acc) = (0usize, Acc::Known(0));
        loop {
            let i = prog.get(pc)?;
            pc += 1;
            let skip = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
            match (i.code, acc) {
                (LD_W_ABS, _) => {
                    acc = match i.k {
                        0 => Acc::Known(nr),
                        4 => Acc::Arch,
                        _ => return None,
                    }
                }
                (ALU_AND_K, Acc::Known(a)) => acc = Acc::Known(a & i.k),
                (JA, _) => pc += i.k as usize,
                // The architecture check passes for the native one, as in the kernel's cache.
                (JEQ_K, Acc::Arch) => pc += skip(true),
                (JEQ_K, Acc::Known(a)) => pc += skip(a == i.k),
                (JGT_K, Acc::Known(a)) => pc += skip(a > i.k),
                (JGE_K, Acc::Known(a)) => pc += skip(a >= i.k),
                (JSET_K, Acc::Known(a)) => pc += skip(a & i.k != 0),
                (RET_K, _) => return Some(i.k),
                _ => return None,
            }
        }
    }

    /// The calls a warm runtime makes for every event: each must be a constant allow in both
    /// programs, or every one of them would run the whole linear filter.
    const HOT: &[libc::c_long] = &[
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_ctl,
        libc::SYS_poll,
        libc::SYS_ppoll,
        libc::SYS_futex,
        libc::SYS_close,
        libc::SYS_accept4,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_brk,
        libc::SYS_clock_gettime,
        libc::SYS_getpid,
    ];

    #[test]
    fn the_hot_calls_are_constant_allows_the_kernel_caches() {
        let programs = super::programs().expect("filters build");
        for &nr in HOT {
            for p in &programs {
                assert_eq!(
                    const_verdict(p, nr as u32),
                    Some(libc::SECCOMP_RET_ALLOW),
                    "syscall {nr}"
                );
            }
        }
    }

    #[test]
    fn denied_calls_answer_eperm_and_clone_depends_on_its_flags() {
        let programs = super::programs().expect("filters build");
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for &nr in super::DENIED {
            assert_eq!(const_verdict(&programs[0], nr as u32), Some(eperm), "{nr}");
        }
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(
            const_verdict(&programs[1], libc::SYS_clone3 as u32),
            Some(enosys)
        );
        // clone's verdict reads its flags: the one call the kernel cannot cache.
        assert_eq!(const_verdict(&programs[0], libc::SYS_clone as u32), None);
    }
}
