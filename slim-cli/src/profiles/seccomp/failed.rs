//! Calls the app only tried. A call that returned nothing but errors while recording (a library
//! probing for a kernel feature: keyctl, userfaultfd, io_uring_setup, perf_event_open...) is
//! answered with the errno it got instead of being allowed: the app sees what it saw while
//! recording, and the kernel code behind the call stays out of reach.
//!
//! Only where that errno cannot depend on the arguments: ENOSYS (the kernel has no such call) for
//! any call, and EPERM, EACCES or EOPNOTSUPP for the calls in [`FEATURE_PROBES`], which answer so
//! whatever they are asked (privileged or optional kernel features). Any other call could succeed
//! with other arguments on a path the probes did not take (an open of another file, a signal to
//! the app's own child, an mlock within the limit), so it stays allowed. Pure.

use std::collections::BTreeMap;

use super::{Origin, SeccompProfile};

/// errno: the caller lacks a privilege.
pub const EPERM: u32 = 1;
/// errno: access denied.
pub const EACCES: u32 = 13;
/// errno: no such system call.
pub const ENOSYS: u32 = 38;
/// errno: operation not supported.
pub const EOPNOTSUPP: u32 = 95;

/// Calls that fail with EPERM, EACCES or EOPNOTSUPP whatever their arguments when the process
/// lacks the privilege or the kernel the feature: a failure of one of them while recording says
/// it will fail the same way in production.
pub const FEATURE_PROBES: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "chroot",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lookup_dcookie",
    "memfd_secret",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "pkey_alloc",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
];

/// Calls whose return value is not an outcome (a signal return hands back the interrupted
/// call's result) or that never return: never answered with an errno.
const NEVER_ANSWERED: &[&str] = &[
    "exit",
    "exit_group",
    "restart_syscall",
    "rt_sigreturn",
    "sigreturn",
];

/// Whether a call that only failed, with `errno`, is answered with it rather than allowed.
pub fn answered_with_errno(name: &str, errno: u32) -> bool {
    if NEVER_ANSWERED.contains(&name) {
        return false;
    }
    errno == ENOSYS
        || (matches!(errno, EPERM | EACCES | EOPNOTSUPP) && FEATURE_PROBES.contains(&name))
}

/// Takes out of `profile` the calls the app only tried (`failed_only`: name -> first errno) and
/// answers each with its errno. A call allowed for another reason too (`needed_anyway`: the
/// runtime's, the user's) stays allowed.
pub(super) fn apply(
    profile: &mut SeccompProfile,
    failed_only: &BTreeMap<String, u32>,
    needed_anyway: impl Fn(&str) -> bool,
) {
    for (name, &errno) in failed_only {
        if profile.allowed.get(name) != Some(&Origin::App)
            || needed_anyway(name)
            || !answered_with_errno(name, errno)
        {
            continue;
        }
        profile.allowed.remove(name);
        profile.conditions.remove(name);
        if errno == ENOSYS {
            profile.enosys.insert(name.clone());
        }
        profile.answered_failed.insert(name.clone(), errno);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{profiles::seccomp::limits::Policy, syscalls::Arch};

    fn profile(app: &[&str], failed_only: &[(&str, u32)]) -> SeccompProfile {
        let arch = Arch::X86_64;
        let numbers: BTreeSet<u32> = app.iter().map(|n| arch.number(n).unwrap()).collect();
        let policy = Policy {
            failed_only: failed_only
                .iter()
                .map(|&(name, errno)| (name.to_owned(), errno))
                .collect(),
            ..Policy::default()
        };
        SeccompProfile::generate_with_compat(arch, &numbers, &BTreeSet::new(), &policy)
    }

    #[test]
    fn a_feature_probe_that_only_failed_is_answered_with_its_errno() {
        // Calls Docker's default profile allows (keyctl and userfaultfd it never does).
        let app = [
            "accept4",
            "landlock_create_ruleset",
            "pkey_alloc",
            "getrandom",
        ];
        let failed = [
            ("landlock_create_ruleset", EOPNOTSUPP),
            ("pkey_alloc", EPERM),
            ("getrandom", ENOSYS),
        ];
        let profile = profile(&app, &failed);
        assert!(profile.allowed.contains_key("accept4"));
        for (name, errno) in failed {
            assert!(!profile.allowed.contains_key(name), "{name} still allowed");
            assert_eq!(profile.answered_failed[name], errno);
        }
        assert!(profile.enosys.contains("getrandom"));
        let json: serde_json::Value = serde_json::from_str(&profile.to_docker_json()).unwrap();
        let rules = json["syscalls"].as_array().unwrap();
        let answering = |name: &str| {
            rules
                .iter()
                .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
                .map(|r| (r["action"].clone(), r["errnoRet"].clone()))
        };
        assert_eq!(
            answering("landlock_create_ruleset"),
            Some(("SCMP_ACT_ERRNO".into(), EOPNOTSUPP.into()))
        );
        assert_eq!(
            answering("getrandom"),
            Some(("SCMP_ACT_ERRNO".into(), ENOSYS.into()))
        );
        // EPERM is the default action's errno: no rule needed.
        assert_eq!(answering("pkey_alloc"), None);
        let yaml = profile.to_operator_yaml("app");
        assert!(yaml.contains(&format!(
            "errnoRet: {EOPNOTSUPP}\n    names:\n    - landlock_create_ruleset\n"
        )));
    }

    #[test]
    fn a_call_that_could_succeed_with_other_arguments_stays_allowed() {
        let app = ["mkdir", "kill", "mlock", "rt_sigreturn", "openat"];
        let failed = [
            ("mkdir", 17),
            ("kill", EPERM),
            ("mlock", EPERM),
            ("rt_sigreturn", ENOSYS),
            ("openat", 2),
        ];
        let profile = profile(&app, &failed);
        for name in app {
            assert!(profile.allowed.contains_key(name), "{name} denied");
        }
        assert!(profile.answered_failed.is_empty());
    }

    #[test]
    fn a_failed_call_the_runtime_needs_stays_allowed() {
        // fstatfs is in a runtime group, landlock_create_ruleset allowed by the user: allowed
        // whatever the app saw.
        let mut policy_allow = profile(&["fstatfs"], &[("fstatfs", ENOSYS)]);
        assert!(policy_allow.allowed.contains_key("fstatfs"));
        assert!(policy_allow.answered_failed.is_empty());
        let arch = Arch::X86_64;
        let policy = Policy {
            allow: ["landlock_create_ruleset".to_owned()].into(),
            failed_only: [("landlock_create_ruleset".to_owned(), EOPNOTSUPP)].into(),
            ..Policy::default()
        };
        policy_allow = SeccompProfile::generate_with_compat(
            arch,
            &[arch.number("landlock_create_ruleset").unwrap()].into(),
            &BTreeSet::new(),
            &policy,
        );
        assert!(policy_allow.allowed.contains_key("landlock_create_ruleset"));
        assert!(policy_allow.answered_failed.is_empty());
    }
}
