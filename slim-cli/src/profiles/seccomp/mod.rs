//! The seccomp profile: allow what the app did, plus what the container runtime does after it
//! installs the filter and before it execs the entrypoint, plus the few calls no recording can
//! be trusted to show; answer ENOSYS for newer calls that have a fallback; deny everything else
//! with EPERM. Never weaker than Docker's default profile: what it refuses (`docker_default`)
//! stays refused unless the user names the call (`--seccomp-allow`) or adds the capability
//! Docker gates it on (`--cap-add`); `clone` without namespace flags, `clone3` and io_uring
//! ENOSYS, `socket` only for the address families recorded.
//!
//! Written as Docker's JSON (`docker run --security-opt seccomp=seccomp.json`) and as a
//! security-profiles-operator `SeccompProfile` (Kubernetes `Localhost` profiles).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::syscalls::Arch;

pub mod diff;
mod failed;
mod limits;
pub mod merge;

pub use limits::{clone_flags_index, ArgOp, ArgRule, Policy, CLONE_NAMESPACE_FLAGS};

/// Why a syscall is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The app made it while it was recorded.
    App,
    /// A container runtime makes it after the filter is in place (see [`RUNTIME_GROUPS`]).
    Runtime,
    /// Always allowed (see [`FIXED_EXTRAS`]).
    Extra,
    /// The stub of a packer slim ran on a kept executable (see [`UPX_STUB`]).
    Packer,
    /// Named by the user (`--seccomp-allow`), not recorded.
    User,
}

/// A group of syscalls a container runtime makes between installing the seccomp filter and
/// exec'ing the entrypoint. A profile that lacks them stops the container from starting at all
/// ("error closing exec fds: ... operation not permitted"), so every group is added whether or
/// not the runtime on this host needed it: a profile recorded here must also start under the
/// runtimes people deploy with.
pub struct RuntimeGroup {
    pub name: &'static str,
    pub syscalls: &'static [&'static str],
}

/// The runtimes' post-filter calls, from their sources and from security-profiles-operator's
/// recorded base profiles.
pub const RUNTIME_GROUPS: &[RuntimeGroup] = &[
    // runc 1.1 to 1.3 (Docker's and containerd's default): without no-new-privileges it installs
    // the filter before finalizeNamespace, so it still closes its fds (fstatfs on /proc/self/fd,
    // getdents64, close_range), drops privileges (setgroups, setgid, setuid, capset, prctl),
    // changes to the working directory, looks the entrypoint up, writes to its exec fifo and
    // execs. It hands its stdio to the container's user (fchown in fixStdioPermissions: seen
    // denied under load for an app not run as root). Its Go runtime keeps running meanwhile (futex, sched_yield, nanosleep, epoll).
    RuntimeGroup {
        name: "runc",
        syscalls: &[
            "arch_prctl",
            "brk",
            "capget",
            "capset",
            "chdir",
            "close",
            "close_range",
            "epoll_ctl",
            "epoll_pwait",
            "execve",
            "exit_group",
            "faccessat2",
            "fchown",
            "fcntl",
            "fstat",
            "fstatfs",
            "futex",
            "getcwd",
            "getdents64",
            "getpid",
            "getppid",
            "getuid",
            "mmap",
            "mprotect",
            "nanosleep",
            "newfstatat",
            "openat",
            "prctl",
            "read",
            "recvfrom",
            "rt_sigreturn",
            "sched_yield",
            "set_tid_address",
            "setgid",
            "setgroups",
            "setuid",
            "tgkill",
            "write",
        ],
    },
    // runc 1.2.8+, 1.3.3+ and 1.4: the fd clean-up goes through openat2 and only falls back when
    // that fails with ENOSYS (not EPERM: runc#4984); statx for the lookups; signal stacks of new
    // Go threads.
    RuntimeGroup {
        name: "runc-1.2.8+",
        syscalls: &["openat2", "statx", "sigaltstack"],
    },
    // runc's Go runtime between filter and exec: a GC or scheduler thread may start or return
    // memory at any moment.
    RuntimeGroup {
        name: "runc-go-runtime",
        syscalls: &[
            "clone",
            "gettid",
            "madvise",
            "munmap",
            "rt_sigaction",
            "rt_sigprocmask",
        ],
    },
    // crun (Podman's default, and a Docker runtime): drops privileges with the res* calls, waits
    // for the start signal on its sync socket with select (pselect6; measured: crun 1.8.1 does
    // not start without it), reads its exec fifo, and looks the entrypoint up in PATH
    // (stat/access families) before execve.
    RuntimeGroup {
        name: "crun",
        syscalls: &[
            "access",
            "capset",
            "chdir",
            "close",
            "execve",
            "faccessat",
            "newfstatat",
            "prctl",
            "pselect6",
            "read",
            "rt_sigprocmask",
            "select",
            "setgroups",
            "setresgid",
            "setresuid",
            "stat",
        ],
    },
];

/// Allowed whatever the recording says. The vDSO answers clock_gettime, gettimeofday, time and
/// getcpu without entering the kernel on most hosts, but falls back to the real syscall where the
/// clocksource has no vDSO support (some VMs, some arm64 boards); signal return and restart are
/// made by the kernel's own trampolines; exit and exit_group end every process. `uretprobe`
/// (x86_64, kernel 6.11) is made by the trampoline the kernel puts in a process when a tracer on
/// the host probes a function's return: kernels before the fix that exempts it from seccomp
/// (6.14, and the stable releases it went to) kill the process with SIGSEGV when a profile
/// refuses it, and a recording shows it only when someone was tracing. Docker's default allows
/// it.
pub const FIXED_EXTRAS: &[&str] = &[
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "exit",
    "exit_group",
    "getcpu",
    "gettimeofday",
    "restart_syscall",
    "rt_sigreturn",
    "time",
    "uretprobe",
];

/// What the stub a packer puts in front of a packed program calls before the program runs.
/// The recording saw the program unpacked, so with `--compress-executables` these are added.
pub struct PackerGroup {
    pub name: &'static str,
    /// The calls by their x86_64 names; an architecture without one (arm64 has no `open` or
    /// `readlink`) gets the call it has instead (`openat`, `readlinkat`).
    pub syscalls: &'static [&'static str],
}

/// UPX's stub (measured with UPX 4.2.2 under strace, x86_64 dynamic and static, and under
/// qemu-aarch64 -strace, arm64 dynamic): it opens /proc/self/exe (`open`, `openat` on arm64),
/// maps an anonymous page for its decompressor and makes it executable (`mmap`, `mprotect`),
/// reads its own path (`readlink` on /proc/self/exe, `readlinkat` on arm64), maps the
/// program's segments and decompresses into them (`mmap`, `mprotect`), sets the program break
/// (`brk`), for a dynamic program opens the ELF interpreter itself and reads its header
/// (`open`, `read`, `close`: the kernel loaded only the stub), and unmaps itself (`munmap`).
/// A program that does not make `open` and `readlink` itself (most dynamic ones: glibc uses
/// `openat`) exits 127 under a profile without them.
pub const UPX_STUB: PackerGroup = PackerGroup {
    name: "upx-stub",
    syscalls: &[
        "brk", "close", "mmap", "mprotect", "munmap", "open", "read", "readlink",
    ],
};

/// Newer syscalls that libcs and runtimes try first and fall back from when the kernel says
/// ENOSYS (but not when it says EPERM): when the recording did not show them they get ENOSYS, so
/// a newer libc in a later build of the image still takes its fallback.
pub const ENOSYS_IF_UNSEEN: &[&str] = &[
    "cachestat",
    "clone3",
    "close_range",
    "copy_file_range",
    "epoll_pwait2",
    "faccessat2",
    "fchmodat2",
    "futex_waitv",
    "landlock_create_ruleset",
    "map_shadow_stack",
    "memfd_secret",
    "mseal",
    "openat2",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "process_madvise",
    "rseq",
    "statx",
];

/// Legacy calls and what an architecture without them (arm64, riscv64) offers instead, for
/// [`SeccompProfile::derived_under_emulation`].
const GUEST_EQUIVALENTS: &[(&str, &str)] = &[
    ("open", "openat"),
    ("creat", "openat"),
    ("stat", "newfstatat"),
    ("lstat", "newfstatat"),
    ("access", "faccessat"),
    ("readlink", "readlinkat"),
    ("mkdir", "mkdirat"),
    ("rmdir", "unlinkat"),
    ("unlink", "unlinkat"),
    ("rename", "renameat"),
    ("symlink", "symlinkat"),
    ("link", "linkat"),
    ("chmod", "fchmodat"),
    ("chown", "fchownat"),
    ("lchown", "fchownat"),
    ("mknod", "mknodat"),
    ("poll", "ppoll"),
    ("select", "pselect6"),
    ("pipe", "pipe2"),
    ("dup2", "dup3"),
    ("epoll_wait", "epoll_pwait"),
    ("epoll_create", "epoll_create1"),
    ("inotify_init", "inotify_init1"),
    ("eventfd", "eventfd2"),
    ("signalfd", "signalfd4"),
    ("fork", "clone"),
    ("vfork", "clone"),
    ("getdents", "getdents64"),
    ("getpgrp", "getpgid"),
    ("time", "clock_gettime"),
    ("alarm", "setitimer"),
    ("utimes", "utimensat"),
    ("futimesat", "utimensat"),
    ("arch_prctl", "prctl"),
];

// ENOSYS: what a rule answers for "no such syscall"; EPERM: the default action's errno, as in
// Docker's default profile.
use failed::{ENOSYS, EPERM};

/// A seccomp profile for one architecture, plus its 32-bit compat architecture when the app ran
/// 32-bit processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProfile {
    pub arch: Arch,
    /// The 32-bit architecture (SCMP_ARCH_X86, SCMP_ARCH_ARM) whose calls the app made too.
    pub compat: Option<Arch>,
    /// Allowed syscalls (libseccomp names) and why (the strongest reason: app first).
    pub allowed: BTreeMap<String, Origin>,
    /// Of the allowed, those allowed only when one of these argument conditions holds.
    pub conditions: BTreeMap<String, Vec<ArgRule>>,
    /// Calls the app made that Docker's default profile refuses it, left out (or answered
    /// ENOSYS): the user can allow each with `--seccomp-allow NAME`.
    pub docker_denied_recorded: BTreeSet<String>,
    /// Syscalls answered with ENOSYS.
    pub enosys: BTreeSet<String>,
    /// Calls the app only tried (they returned nothing but errors), answered with the errno
    /// they got instead of allowed: name -> errno.
    pub answered_failed: BTreeMap<String, u32>,
    /// Recorded numbers this architecture's table has no name for (they cannot be allowed).
    pub unnamed: Vec<u32>,
}

/// Docker's seccomp JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile<'a> {
    default_action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_errno_ret: Option<u32>,
    architectures: Vec<&'a str>,
    syscalls: Vec<DockerRule<'a>>,
}

impl DockerProfile<'_> {
    /// Pretty-printed, with a final newline.
    fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("plain data serializes");
        text.push('\n');
        text
    }

    /// The same rules as a security-profiles-operator `SeccompProfile` object named `name`.
    fn operator_yaml(&self, name: &str) -> String {
        let mut out = String::new();
        out.push_str("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\n");
        out.push_str("kind: SeccompProfile\n");
        out.push_str("metadata:\n");
        out.push_str(&format!("  name: {name}\n"));
        out.push_str("spec:\n");
        out.push_str(&format!("  defaultAction: {}\n", self.default_action));
        out.push_str("  architectures:\n");
        for arch in &self.architectures {
            out.push_str(&format!("  - {arch}\n"));
        }
        out.push_str("  syscalls:\n");
        for rule in &self.syscalls {
            out.push_str(&format!("  - action: {}\n", rule.action));
            if let Some(errno) = rule.errno_ret {
                out.push_str(&format!("    errnoRet: {errno}\n"));
            }
            out.push_str("    names:\n");
            for name in &rule.names {
                out.push_str(&format!("    - {name}\n"));
            }
            if !rule.args.is_empty() {
                out.push_str("    args:\n");
            }
            for arg in rule.args {
                out.push_str(&format!(
                    "    - index: {}\n      value: {}\n      valueTwo: {}\n      op: {}\n",
                    arg.index,
                    arg.value,
                    arg.value_two,
                    arg.op.scmp_name()
                ));
            }
        }
        out
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerRule<'a> {
    names: Vec<&'a str>,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    args: &'a [ArgRule],
}

impl SeccompProfile {
    /// The profile for an app that made the syscalls `app` (numbers of `arch`), with no
    /// user choices (Docker's default capabilities, `socket` unrestricted).
    pub fn generate(arch: Arch, app: &BTreeSet<u32>) -> Self {
        Self::generate_with_compat(arch, app, &BTreeSet::new(), &Policy::default())
    }

    /// The profile for an app whose 64-bit processes made `app` (numbers of `arch`) and whose
    /// 32-bit processes made `compat_app` (numbers of `arch.compat()`). The container runtime
    /// runs 64-bit whatever the app is, so `arch` is always listed; the compat architecture only
    /// when 32-bit calls were seen. A Docker profile has one list of names, which libseccomp
    /// resolves on each listed architecture.
    pub fn generate_with_compat(
        arch: Arch,
        app: &BTreeSet<u32>,
        compat_app: &BTreeSet<u32>,
        policy: &Policy,
    ) -> Self {
        let compat = arch.compat().filter(|_| !compat_app.is_empty());
        let mut allowed = BTreeMap::new();
        let mut unnamed = Vec::new();
        let recorded = app.iter().map(|&nr| (arch, nr)).chain(
            compat
                .iter()
                .flat_map(|&c| compat_app.iter().map(move |&nr| (c, nr))),
        );
        for (table, nr) in recorded {
            match table.name(nr) {
                Some(name) => {
                    allowed.insert(name.to_owned(), Origin::App);
                }
                None => unnamed.push(nr),
            }
        }
        let knows = |name: &str| {
            arch.number(name).is_some() || compat.is_some_and(|c| c.number(name).is_some())
        };
        let known = |name: &&&str| knows(name);
        for group in RUNTIME_GROUPS {
            for name in group.syscalls.iter().filter(known) {
                allowed.entry((*name).to_owned()).or_insert(Origin::Runtime);
            }
        }
        for name in FIXED_EXTRAS.iter().filter(known) {
            allowed.entry((*name).to_owned()).or_insert(Origin::Extra);
        }
        for name in policy.allow.iter().filter(|n| knows(n)) {
            allowed.entry(name.clone()).or_insert(Origin::User);
        }
        let mut profile = Self {
            arch,
            compat,
            allowed,
            conditions: BTreeMap::new(),
            docker_denied_recorded: BTreeSet::new(),
            enosys: BTreeSet::new(),
            answered_failed: BTreeMap::new(),
            unnamed,
        };
        limits::apply(&mut profile, policy);
        profile.enosys = ENOSYS_IF_UNSEEN
            .iter()
            .chain(limits::ENOSYS_ALWAYS)
            .filter(known)
            .filter(|name| !profile.allowed.contains_key(**name))
            .map(|name| (*name).to_owned())
            .collect();
        let needed_anyway = |name: &str| {
            RUNTIME_GROUPS.iter().any(|g| g.syscalls.contains(&name))
                || FIXED_EXTRAS.contains(&name)
                || policy.allow.contains(name)
        };
        failed::apply(&mut profile, &policy.failed_only, needed_anyway);
        profile
    }

    /// The calls answered with an errno other than the default's (EPERM) and ENOSYS (which has
    /// its own rule): errno -> names.
    fn errno_answers(&self) -> BTreeMap<u32, Vec<&str>> {
        let mut answers: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for (name, &errno) in &self.answered_failed {
            if errno != EPERM && errno != ENOSYS {
                answers.entry(errno).or_default().push(name);
            }
        }
        answers
    }

    /// The profile of an image of architecture `guest` that ran under qemu-user on a `host`
    /// kernel: the recorder saw the host calls the emulator made for the app (`app`, numbers of
    /// `host`), which are mapped to the guest's table by name, a legacy call to the `*at` or
    /// newer call the guest has instead (arm64 has no `open`, `stat`, `poll`...). Derived, not
    /// observed: it cannot be checked here (the emulator's host calls would hit it), so it is
    /// reported as such.
    pub fn derived_under_emulation(
        host: Arch,
        app: &BTreeSet<u32>,
        guest: Arch,
        policy: &Policy,
    ) -> Self {
        let mut guest_numbers = BTreeSet::new();
        let mut unmapped = Vec::new();
        for &nr in app {
            let Some(name) = host.name(nr) else {
                unmapped.push(nr);
                continue;
            };
            let mapped = guest.number(name).or_else(|| {
                GUEST_EQUIVALENTS
                    .iter()
                    .find(|(legacy, _)| *legacy == name)
                    .and_then(|(_, instead)| guest.number(instead))
            });
            match mapped {
                Some(guest_nr) => {
                    guest_numbers.insert(guest_nr);
                }
                None => unmapped.push(nr),
            }
        }
        let mut profile =
            Self::generate_with_compat(guest, &guest_numbers, &BTreeSet::new(), policy);
        profile.unnamed.extend(unmapped);
        profile
    }

    /// Adds the calls of a packer's stub (`--compress-executables`: the program was recorded
    /// unpacked, the image runs it packed). Returns the names of the group on this profile's
    /// architectures; those not allowed already count as [`Origin::Packer`].
    pub fn add_packer_stub(&mut self, group: &PackerGroup) -> Vec<String> {
        let known = |name: &str| {
            self.arch.number(name).is_some()
                || self.compat.is_some_and(|c| c.number(name).is_some())
        };
        let mut names = Vec::new();
        for &call in group.syscalls {
            let instead = GUEST_EQUIVALENTS
                .iter()
                .find(|(legacy, _)| *legacy == call)
                .map(|(_, instead)| *instead);
            let name = match (known(call), instead) {
                (true, _) => call,
                (false, Some(instead)) if known(instead) => instead,
                _ => continue,
            };
            self.allowed
                .entry(name.to_owned())
                .or_insert(Origin::Packer);
            self.enosys.remove(name);
            names.push(name.to_owned());
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The allowed names, sorted.
    pub fn allowed_names(&self) -> Vec<&str> {
        self.allowed.keys().map(String::as_str).collect()
    }

    /// How many allowed syscalls came from `origin`.
    pub fn count(&self, origin: Origin) -> usize {
        self.allowed.values().filter(|o| **o == origin).count()
    }

    /// libseccomp's architecture tokens: the 64-bit one, then the compat one if used.
    pub fn scmp_arches(&self) -> Vec<&'static str> {
        std::iter::once(self.arch)
            .chain(self.compat)
            .map(Arch::scmp_arch)
            .collect()
    }

    /// The names allowed whatever their arguments.
    pub fn unconditional_names(&self) -> Vec<&str> {
        self.allowed
            .keys()
            .filter(|name| !self.conditions.contains_key(*name))
            .map(String::as_str)
            .collect()
    }

    /// Docker's format, pretty-printed, deterministic (same recording, same bytes): one rule
    /// for the unconditional calls, one per argument condition (a rule's conditions must all
    /// hold, so alternatives are separate rules), then the ENOSYS rule.
    pub fn to_docker_json(&self) -> String {
        self.docker_json("SCMP_ACT_ERRNO")
    }

    /// [`SeccompProfile::to_docker_json`] in complain mode: what it would refuse with EPERM is
    /// allowed and logged by the kernel (`SCMP_ACT_LOG`), for a canary in production; the
    /// ENOSYS and errno answers stay, as the app relies on them.
    pub fn to_log_json(&self) -> String {
        self.docker_json("SCMP_ACT_LOG")
    }

    fn docker_json(&self, default_action: &'static str) -> String {
        self.docker_profile(default_action).render()
    }

    /// The rules in the order both formats write them.
    fn docker_profile(&self, default_action: &'static str) -> DockerProfile<'_> {
        let mut syscalls = vec![DockerRule {
            names: self.unconditional_names(),
            action: "SCMP_ACT_ALLOW",
            errno_ret: None,
            args: &[],
        }];
        for (name, rules) in &self.conditions {
            for rule in rules {
                syscalls.push(DockerRule {
                    names: vec![name.as_str()],
                    action: "SCMP_ACT_ALLOW",
                    errno_ret: None,
                    args: std::slice::from_ref(rule),
                });
            }
        }
        if !self.enosys.is_empty() {
            syscalls.push(DockerRule {
                names: self.enosys.iter().map(String::as_str).collect(),
                action: "SCMP_ACT_ERRNO",
                errno_ret: Some(ENOSYS),
                args: &[],
            });
        }
        for (errno, names) in self.errno_answers() {
            syscalls.push(DockerRule {
                names,
                action: "SCMP_ACT_ERRNO",
                errno_ret: Some(errno),
                args: &[],
            });
        }
        DockerProfile {
            default_action,
            default_errno_ret: Some(EPERM),
            architectures: self.scmp_arches(),
            syscalls,
        }
    }

    /// The same profile as a security-profiles-operator `SeccompProfile` object named `name`.
    pub fn to_operator_yaml(&self, name: &str) -> String {
        self.docker_profile("SCMP_ACT_ERRNO").operator_yaml(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(arch: Arch, names: &[&str]) -> BTreeSet<u32> {
        names.iter().map(|n| arch.number(n).unwrap()).collect()
    }

    #[test]
    fn app_runtime_and_extras_are_allowed_and_nothing_else() {
        let app = numbers(Arch::X86_64, &["accept4", "read", "pread64", "clone3"]);
        let profile = SeccompProfile::generate(Arch::X86_64, &app);
        assert_eq!(profile.allowed["accept4"], Origin::App);
        assert_eq!(profile.allowed["read"], Origin::App);
        assert_eq!(profile.allowed["fstatfs"], Origin::Runtime);
        assert_eq!(profile.allowed["setresuid"], Origin::Runtime);
        assert_eq!(profile.allowed["clock_gettime"], Origin::Extra);
        for never in [
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "ptrace",
            "bpf",
        ] {
            assert!(!profile.allowed.contains_key(never), "{never} allowed");
            assert!(!profile.enosys.contains(never), "{never} ENOSYS");
        }
        // clone3 answers ENOSYS even when seen (namespaces); unseen fallbacks get ENOSYS.
        assert!(profile.enosys.contains("clone3"));
        assert!(!profile.allowed.contains_key("clone3"));
        assert!(profile.enosys.contains("fchmodat2"));
        assert!(!profile.enosys.contains("openat2"), "runc needs it allowed");
        assert_eq!(profile.count(Origin::App), 3);
    }

    #[test]
    fn calls_new_in_libseccomp_2_6_are_allowed_when_recorded_as_docker_does() {
        let new = [
            "statmount",
            "listmount",
            "mseal",
            "setxattrat",
            "getxattrat",
            "listxattrat",
            "removexattrat",
            "futex_wake",
            "futex_wait",
            "futex_requeue",
            "cachestat",
            "fchmodat2",
        ];
        let lsm = ["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"];
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm] {
            let app = numbers(arch, &[&new[..], &lsm[..]].concat());
            let profile = SeccompProfile::generate(arch, &app);
            for name in new {
                assert_eq!(
                    profile.allowed.get(name),
                    Some(&Origin::App),
                    "{arch}: {name}"
                );
                assert!(!profile.enosys.contains(name), "{arch}: {name}");
            }
            // Docker gives these only with CAP_SYS_ADMIN: left out and reported.
            for name in lsm {
                assert!(!profile.allowed.contains_key(name), "{arch}: {name}");
                assert!(
                    profile.docker_denied_recorded.contains(name),
                    "{arch}: {name}"
                );
            }
            // Made by the kernel's uretprobe trampoline, not the app: x86_64's alone.
            assert_eq!(
                profile.allowed.get("uretprobe"),
                (arch == Arch::X86_64).then_some(&Origin::Extra),
                "{arch}"
            );
        }
        // Unseen, mseal answers ENOSYS (in ENOSYS_IF_UNSEEN); the others are refused as any
        // unrecorded call.
        let unseen = SeccompProfile::generate(Arch::X86_64, &numbers(Arch::X86_64, &["read"]));
        assert!(unseen.enosys.contains("mseal"));
        assert!(!unseen.allowed.contains_key("statmount") && !unseen.enosys.contains("statmount"));
    }

    #[test]
    fn a_packed_program_gets_its_stubs_calls_by_the_names_of_its_architecture() {
        // What glibc's hello world calls unpacked (no open, no readlink: glibc uses openat).
        let app = numbers(Arch::X86_64, &["openat", "read", "write", "mmap", "close"]);
        let mut x86 = SeccompProfile::generate(Arch::X86_64, &app);
        assert!(!x86.allowed.contains_key("open") && !x86.allowed.contains_key("readlink"));
        let names = x86.add_packer_stub(&UPX_STUB);
        assert_eq!(x86.allowed["open"], Origin::Packer);
        assert_eq!(x86.allowed["readlink"], Origin::Packer);
        assert_eq!(x86.allowed["read"], Origin::App, "the app's reason stays");
        assert!(names.contains(&"open".to_owned()) && names.contains(&"munmap".to_owned()));
        assert!(!x86.allowed.contains_key("readlinkat"));
        assert_eq!(x86.count(Origin::Packer), 2, "{:?}", x86.allowed);
        let mut arm = SeccompProfile::generate(Arch::Aarch64, &BTreeSet::new());
        let names = arm.add_packer_stub(&UPX_STUB);
        assert!(names.contains(&"openat".to_owned()), "{names:?}");
        assert!(arm.allowed.contains_key("readlinkat"));
        assert!(!arm.allowed.contains_key("open") && !arm.allowed.contains_key("readlink"));
    }

    #[test]
    fn names_are_libseccomps_per_architecture() {
        // aarch64 number 79 is newfstatat to libseccomp (fstatat in naive tables), x86_64 17 is
        // pread64 (not pread): a wrong name leaves the real call blocked.
        let arm = SeccompProfile::generate(Arch::Aarch64, &[79].into());
        assert_eq!(arm.allowed["newfstatat"], Origin::App);
        assert!(!arm.allowed.contains_key("fstatat"));
        // Names an architecture lacks are never written (aarch64 has no stat, access, time).
        for missing in ["stat", "access", "arch_prctl", "time"] {
            assert!(!arm.allowed.contains_key(missing), "{missing}");
        }
        let x86 = SeccompProfile::generate(Arch::X86_64, &[17].into());
        assert_eq!(x86.allowed["pread64"], Origin::App);
        assert!(!x86.allowed.contains_key("pread"));
        assert!(arm.to_docker_json().contains("SCMP_ARCH_AARCH64"));
        assert!(!arm.to_docker_json().contains("SCMP_ARCH_X86"));
    }

    #[test]
    fn emulated_recordings_map_to_the_guest_names() {
        let host = numbers(
            Arch::X86_64,
            &["open", "stat", "poll", "read", "arch_prctl"],
        );
        let profile = SeccompProfile::derived_under_emulation(
            Arch::X86_64,
            &host,
            Arch::Aarch64,
            &Policy::default(),
        );
        assert_eq!(profile.scmp_arches(), ["SCMP_ARCH_AARCH64"]);
        for name in ["openat", "newfstatat", "ppoll", "read"] {
            assert_eq!(profile.allowed[name], Origin::App, "{name}");
        }
        assert!(!profile.allowed.contains_key("open"));
        assert!(profile
            .allowed_names()
            .iter()
            .all(|n| Arch::Aarch64.number(n).is_some()));
    }

    #[test]
    fn a_32bit_app_adds_its_compat_architecture_and_names() {
        let app = numbers(Arch::X86_64, &["accept4"]);
        let compat = numbers(
            Arch::X86,
            &["set_thread_area", "socketcall", "_llseek", "openat"],
        );
        let profile =
            SeccompProfile::generate_with_compat(Arch::X86_64, &app, &compat, &Policy::default());
        assert_eq!(profile.scmp_arches(), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        for name in [
            "set_thread_area",
            "socketcall",
            "_llseek",
            "openat",
            "accept4",
        ] {
            assert_eq!(profile.allowed[name], Origin::App, "{name}");
        }
        let json: serde_json::Value = serde_json::from_str(&profile.to_docker_json()).unwrap();
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert!(profile
            .to_operator_yaml("x")
            .contains("  - SCMP_ARCH_X86\n"));
        // No 32-bit call seen: the 64-bit architecture alone.
        let native = SeccompProfile::generate_with_compat(
            Arch::Aarch64,
            &[56].into(),
            &[].into(),
            &Policy::default(),
        );
        assert_eq!(native.scmp_arches(), ["SCMP_ARCH_AARCH64"]);
        // arm's private set_tls is named from its recorder slot.
        let arm = SeccompProfile::generate_with_compat(
            Arch::Aarch64,
            &[56].into(),
            &[slim_common::ARM_PRIVATE_SLOT + 5].into(),
            &Policy::default(),
        );
        assert_eq!(arm.scmp_arches(), ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
        assert_eq!(arm.allowed["set_tls"], Origin::App);
    }

    #[test]
    fn docker_json_is_deterministic_and_well_formed() {
        let app = numbers(Arch::X86_64, &["write", "accept4", "epoll_wait"]);
        let a = SeccompProfile::generate(Arch::X86_64, &app).to_docker_json();
        let b = SeccompProfile::generate(Arch::X86_64, &app).to_docker_json();
        assert_eq!(a, b);
        let json: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64"])
        );
        let allow = &json["syscalls"][0];
        assert_eq!(allow["action"], "SCMP_ACT_ALLOW");
        let names: Vec<&str> = allow["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"epoll_wait"));
        // Then one rule per argument condition (clone's, from runc's Go runtime), ENOSYS last.
        let rules = json["syscalls"].as_array().unwrap();
        assert_eq!(rules[1]["names"], serde_json::json!(["clone"]));
        assert_eq!(rules.last().unwrap()["errnoRet"], 38);
    }

    #[test]
    fn operator_object_lists_the_same_calls() {
        let app = numbers(Arch::X86_64, &["accept4"]);
        let profile = SeccompProfile::generate(Arch::X86_64, &app);
        let yaml = profile.to_operator_yaml("slim-app");
        assert!(yaml.contains("kind: SeccompProfile\n"));
        assert!(yaml.contains("  name: slim-app\n"));
        let listed = yaml.lines().filter(|l| l.starts_with("    - ")).count();
        let conditional: usize = profile.conditions.values().map(Vec::len).sum();
        assert_eq!(
            listed,
            profile.unconditional_names().len() + conditional * 2 + profile.enosys.len(),
            "one name and one argument line per conditional rule"
        );
    }
}
