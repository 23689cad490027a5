//! What Docker's default seccomp profile refuses, so that slim's profile never allows more: the
//! calls it gives only with a capability, the calls it never gives, and the capabilities a
//! container has (Docker's defaults, `--cap-add`, `--cap-drop`). Derived from moby's
//! `profiles/seccomp/default.json` (moby commit b985e23, August 2026: moby/profiles v0.2.3)
//! against the names slim's syscall tables know (libseccomp 2.6.0); `clone`, `socket` and `personality`, which Docker allows with argument
//! rules, are left to the generator in `seccomp.rs`. Pure data and look-ups.

use std::collections::BTreeSet;

/// Calls Docker's default profile allows only when the container has `capability`.
pub struct CapabilityBlock {
    /// Without the `CAP_` prefix, as `docker run --cap-add` takes it.
    pub capability: &'static str,
    pub syscalls: &'static [&'static str],
}

/// Docker's capability-gated blocks. `clone` and `clone3` are in CAP_SYS_ADMIN's: with it they
/// are allowed unconditionally, without it `clone` only without the CLONE_NEW* flags and
/// `clone3` answers ENOSYS.
pub const CAPABILITY_BLOCKS: &[CapabilityBlock] = &[
    CapabilityBlock {
        capability: "SYS_ADMIN",
        syscalls: &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    },
    CapabilityBlock {
        capability: "DAC_READ_SEARCH",
        syscalls: &["open_by_handle_at"],
    },
    CapabilityBlock {
        capability: "SYS_BOOT",
        syscalls: &["reboot"],
    },
    CapabilityBlock {
        capability: "SYS_CHROOT",
        syscalls: &["chroot"],
    },
    CapabilityBlock {
        capability: "SYS_MODULE",
        syscalls: &["delete_module", "finit_module", "init_module"],
    },
    CapabilityBlock {
        capability: "SYS_PACCT",
        syscalls: &["acct"],
    },
    // ptrace, process_vm_readv and process_vm_writev are here too, but Docker allows them to
    // every container on kernels from 4.8 (the ptrace/seccomp bypass was fixed there): slim
    // allows them when recorded, as before.
    CapabilityBlock {
        capability: "SYS_PTRACE",
        syscalls: &["kcmp", "pidfd_getfd", "process_madvise"],
    },
    CapabilityBlock {
        capability: "SYS_RAWIO",
        syscalls: &["ioperm", "iopl"],
    },
    CapabilityBlock {
        capability: "SYS_TIME",
        syscalls: &["clock_settime", "clock_settime64", "settimeofday", "stime"],
    },
    CapabilityBlock {
        capability: "SYS_TTY_CONFIG",
        syscalls: &["vhangup"],
    },
    CapabilityBlock {
        capability: "SYS_NICE",
        syscalls: &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    },
    CapabilityBlock {
        capability: "SYSLOG",
        syscalls: &["syslog"],
    },
    CapabilityBlock {
        capability: "BPF",
        syscalls: &["bpf"],
    },
    CapabilityBlock {
        capability: "PERFMON",
        syscalls: &["perf_event_open"],
    },
];

/// Calls Docker's default profile gives no container whatever its capabilities (the names of
/// slim's tables that are in none of its allow rules): the kernel keyring, userfaultfd,
/// io_uring, kexec, swap, pivot_root, NUMA page moves, and obsolete calls.
pub const NEVER_ALLOWED: &[&str] = &[
    "_sysctl",
    "add_key",
    "afs_syscall",
    "bdflush",
    "break",
    "create_module",
    "ftime",
    "get_kernel_syms",
    "get_tls",
    "getpmsg",
    "gtty",
    "idle",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lock",
    "migrate_pages",
    "move_pages",
    "mpx",
    "nfsservctl",
    "nice",
    "oldfstat",
    "oldlstat",
    "oldolduname",
    "oldstat",
    "olduname",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
    "pivot_root",
    "prof",
    "profil",
    "putpmsg",
    "query_module",
    "readdir",
    "request_key",
    "security",
    "sgetmask",
    "sigaction",
    "signal",
    "sigpending",
    "sigsuspend",
    "ssetmask",
    "stty",
    "swapoff",
    "swapon",
    "sysfs",
    "tuxcall",
    "ulimit",
    "uselib",
    "userfaultfd",
    "usr26",
    "usr32",
    "ustat",
    "vm86",
    "vm86old",
    "vserver",
];

/// The capabilities Docker gives a container unless dropped (moby's `DefaultCapabilities`).
const DOCKER_DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The capabilities a container runs with: Docker's defaults, minus `--cap-drop`, plus
/// `--cap-add` (`ALL` in either, as Docker takes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    all: bool,
    names: BTreeSet<String>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::of_container(&[], &[])
    }
}

impl Capabilities {
    /// From `docker run`'s `--cap-add` and `--cap-drop` values (`SYS_PTRACE`, `CAP_SYS_PTRACE`,
    /// any case).
    pub fn of_container(cap_add: &[String], cap_drop: &[String]) -> Self {
        let add: BTreeSet<String> = cap_add.iter().map(|c| normalize(c)).collect();
        let drop: BTreeSet<String> = cap_drop.iter().map(|c| normalize(c)).collect();
        let mut names: BTreeSet<String> = if drop.contains("ALL") {
            BTreeSet::new()
        } else {
            DOCKER_DEFAULT_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .filter(|c| !drop.contains(c))
                .collect()
        };
        names.extend(add.iter().filter(|c| *c != "ALL").cloned());
        Self {
            all: add.contains("ALL"),
            names,
        }
    }

    /// Whether the container has `capability` (without `CAP_`, upper case).
    pub fn has(&self, capability: &str) -> bool {
        self.all || self.names.contains(capability)
    }
}

fn normalize(capability: &str) -> String {
    let upper = capability.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_owned)
        .unwrap_or(upper)
}

/// Whether Docker's default profile refuses `name` to a container without the capabilities
/// that would allow it.
pub fn gated_or_never(name: &str) -> bool {
    NEVER_ALLOWED.contains(&name)
        || CAPABILITY_BLOCKS
            .iter()
            .any(|block| block.syscalls.contains(&name))
}

/// Whether Docker's default profile allows `name` to a container with `capabilities` through
/// one of its capability blocks.
pub fn granted(name: &str, capabilities: &Capabilities) -> bool {
    CAPABILITY_BLOCKS
        .iter()
        .any(|block| block.syscalls.contains(&name) && capabilities.has(block.capability))
}

/// How many calls of `arch`'s table Docker's default profile allows a container with Docker's
/// default capabilities (unconditionally or with argument rules): the scale report.html
/// draws slim's profile against.
pub fn allowed_by_default(arch: crate::syscalls::Arch) -> usize {
    let defaults = Capabilities::default();
    arch.names()
        .filter(|name| !gated_or_never(name) || granted(name, &defaults))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(add: &[&str], drop: &[&str]) -> Capabilities {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Capabilities::of_container(&owned(add), &owned(drop))
    }

    #[test]
    fn docker_allows_most_but_not_all_calls() {
        use crate::syscalls::Arch;
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let allowed = allowed_by_default(arch);
            let all = arch.names().count();
            assert!(allowed > 250 && allowed < all, "{arch}: {allowed} of {all}");
        }
    }

    #[test]
    fn capabilities_follow_dockers_defaults_add_and_drop() {
        let default = Capabilities::default();
        assert!(default.has("SYS_CHROOT"));
        assert!(!default.has("SYS_PTRACE"));
        assert!(granted("chroot", &default), "SYS_CHROOT is a default");
        assert!(!granted("unshare", &default));
        assert!(!granted("kcmp", &default));
        assert!(!caps(&[], &["sys_chroot"]).has("SYS_CHROOT"));
        assert!(!caps(&[], &["ALL"]).has("CHOWN"));
        let ptrace = caps(&["CAP_SYS_PTRACE"], &[]);
        assert!(granted("kcmp", &ptrace) && granted("pidfd_getfd", &ptrace));
        assert!(!granted("unshare", &ptrace));
        let admin = caps(&["SYS_ADMIN"], &["ALL"]);
        for name in ["unshare", "setns", "clone3", "mount", "bpf"] {
            assert!(granted(name, &admin), "{name}");
        }
        assert!(granted("reboot", &caps(&["all"], &[])));
    }

    #[test]
    fn the_lists_name_dockers_denials_and_nothing_it_allows() {
        for denied in [
            "unshare",
            "setns",
            "mount",
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "io_uring_setup",
            "kexec_load",
            "settimeofday",
            "init_module",
            "reboot",
            "syslog",
            "kcmp",
            "perf_event_open",
            "pivot_root",
        ] {
            assert!(gated_or_never(denied), "{denied}");
        }
        // Allowed by Docker to every container (ptrace since kernel 4.8), or with argument rules
        // (clone's are in seccomp.rs: unconditional clone is CAP_SYS_ADMIN's).
        for allowed in [
            "read",
            "ptrace",
            "process_vm_readv",
            "socket",
            "personality",
        ] {
            assert!(!gated_or_never(allowed), "{allowed}");
        }
        // Calls libseccomp 2.6.0 added to the tables: Docker gives the lsm_* calls only with
        // CAP_SYS_ADMIN and every other to all containers.
        for allowed in [
            "cachestat",
            "fchmodat2",
            "futex_requeue",
            "futex_wait",
            "futex_wake",
            "getxattrat",
            "listmount",
            "listxattrat",
            "map_shadow_stack",
            "mseal",
            "removexattrat",
            "setxattrat",
            "statmount",
            "uretprobe",
        ] {
            assert!(!gated_or_never(allowed), "{allowed}");
        }
        let admin = caps(&["SYS_ADMIN"], &[]);
        for gated in ["lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr"] {
            assert!(gated_or_never(gated), "{gated}");
            assert!(!granted(gated, &Capabilities::default()), "{gated}");
            assert!(granted(gated, &admin), "{gated}");
        }
        let mut never = NEVER_ALLOWED.to_vec();
        never.sort_unstable();
        never.dedup();
        assert_eq!(never, NEVER_ALLOWED, "sorted, no duplicates");
    }
}
