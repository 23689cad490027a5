//! The limits that keep a seccomp profile within Docker's default: argument rules for `clone`
//! (no new namespaces), `socket` (the recorded families) and `personality` (Docker's values);
//! `clone3` and io_uring answered ENOSYS; the calls Docker refuses, or gives only with a
//! capability the container lacks, left out and reported. The user's `--seccomp-allow` names
//! and the container's capabilities lift them as Docker's capability blocks do. Pure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Origin, SeccompProfile};
use crate::{
    profiles::docker_default::{self, Capabilities},
    syscalls::Arch,
};

/// What the generator is told besides the recording: the calls the user allows whatever Docker
/// says, the container's capabilities, and the socket address families the app created.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `--seccomp-allow NAME`: allowed unconditionally, recorded or not.
    pub allow: BTreeSet<String>,
    /// The capabilities the container runs with: Docker's capability blocks follow them.
    pub capabilities: Capabilities,
    /// Address families (argument 0 of `socket`) the recording saw.
    pub socket_families: BTreeSet<u32>,
    /// Calls the app made that returned only errors: name -> the first errno.
    pub failed_only: std::collections::BTreeMap<String, u32>,
}

/// How a syscall argument is compared (libseccomp's operators, as Docker's JSON spells them).
/// slim writes the first three; the others are read from profiles it merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArgOp {
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    /// `(arg & value) == value_two`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
    /// `arg != value`.
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
}

impl ArgOp {
    /// libseccomp's name, as Docker's JSON and the operator's YAML spell it.
    pub fn scmp_name(self) -> &'static str {
        match self {
            ArgOp::Equal => "SCMP_CMP_EQ",
            ArgOp::MaskedEqual => "SCMP_CMP_MASKED_EQ",
            ArgOp::NotEqual => "SCMP_CMP_NE",
            ArgOp::LessThan => "SCMP_CMP_LT",
            ArgOp::LessOrEqual => "SCMP_CMP_LE",
            ArgOp::GreaterOrEqual => "SCMP_CMP_GE",
            ArgOp::GreaterThan => "SCMP_CMP_GT",
        }
    }
}

/// One argument condition of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgRule {
    pub index: u32,
    pub value: u64,
    /// Read as 0 when a profile leaves it out (only SCMP_CMP_MASKED_EQ uses it).
    #[serde(default)]
    pub value_two: u64,
    pub op: ArgOp,
}

/// The CLONE_NEW* flags (cgroup, uts, ipc, user, pid, net, and the mount namespace's
/// CLONE_NEWNS): `clone` is allowed only with all of them clear, as Docker's default does.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// AF_VSOCK: Docker's default allows `socket` for every family but this one.
const AF_VSOCK: u32 = 40;

/// The `personality` values Docker's default allows: PER_LINUX, PER_LINUX32, UNAME26,
/// PER_LINUX32|UNAME26, and 0xffffffff (a query).
const DOCKER_PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Calls answered ENOSYS unless the user allows them (or Docker's capability does): `clone3`
/// can create namespaces and its flags live in memory a filter cannot read, so libcs and Go
/// fall back to `clone`; io_uring's work bypasses seccomp and the recorder cannot see the files
/// it opens (moby removed it), and its users fall back to ordinary calls.
pub(super) const ENOSYS_ALWAYS: &[&str] = &[
    "clone3",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
];

/// Which argument of `clone` holds the flags on `arch`: the first on every architecture slim
/// records (x86_64, aarch64, i386, arm); s390 and s390x, which slim does not record, swap the
/// first two.
pub fn clone_flags_index(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 | Arch::Aarch64 | Arch::X86 | Arch::Arm => 0,
    }
}

/// Keeps the profile within Docker's default: argument rules for `clone`, `socket` and
/// `personality`; `clone3` and io_uring out (they answer ENOSYS); every call Docker refuses
/// without a capability the container lacks out, and named in `docker_denied_recorded` when
/// the app made it. Whatever the user named with `--seccomp-allow` is left alone.
pub(super) fn apply(profile: &mut SeccompProfile, policy: &Policy) {
    let names: Vec<String> = profile.allowed.keys().cloned().collect();
    for name in names {
        if policy.allow.contains(&name) || docker_default::granted(&name, &policy.capabilities) {
            continue;
        }
        let recorded = profile.allowed.get(&name) == Some(&Origin::App);
        let rules = match name.as_str() {
            "clone" => Some(vec![ArgRule {
                index: clone_flags_index(profile.arch),
                value: CLONE_NAMESPACE_FLAGS,
                value_two: 0,
                op: ArgOp::MaskedEqual,
            }]),
            "socket" => socket_rules(&policy.socket_families),
            "personality" => Some(
                DOCKER_PERSONALITIES
                    .iter()
                    .map(|&value| equal(0, value))
                    .collect(),
            ),
            // clone3 answers ENOSYS as under Docker's default: not a denial to report.
            "clone3" => {
                profile.allowed.remove(&name);
                continue;
            }
            _ if docker_default::gated_or_never(&name) => {
                profile.allowed.remove(&name);
                if recorded {
                    profile.docker_denied_recorded.insert(name);
                }
                continue;
            }
            _ => None,
        };
        match rules {
            // Every recorded family was one Docker refuses (AF_VSOCK).
            Some(rules) if rules.is_empty() => {
                profile.allowed.remove(&name);
                if recorded {
                    profile.docker_denied_recorded.insert(name);
                }
            }
            Some(rules) => {
                profile.conditions.insert(name, rules);
            }
            None => {}
        }
    }
}

fn equal(index: u32, value: u64) -> ArgRule {
    ArgRule {
        index,
        value,
        value_two: 0,
        op: ArgOp::Equal,
    }
}

/// One rule per recorded address family but AF_VSOCK (Docker refuses it). No family recorded
/// while `socket` was (a recording from before the recorder counted families, or calls it
/// could not read): unconditional, since no family can be named. `Some(empty)`: only AF_VSOCK.
fn socket_rules(families: &BTreeSet<u32>) -> Option<Vec<ArgRule>> {
    if families.is_empty() {
        // No family recorded (the app's sockets all failed, or none was counted): Docker's own
        // rule, every family but AF_VSOCK.
        return Some(vec![ArgRule {
            index: 0,
            value: u64::from(AF_VSOCK),
            value_two: 0,
            op: ArgOp::NotEqual,
        }]);
    }
    Some(
        families
            .iter()
            .filter(|&&family| family != AF_VSOCK)
            .map(|&family| equal(0, u64::from(family)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(arch: Arch, names: &[&str]) -> BTreeSet<u32> {
        names.iter().map(|n| arch.number(n).unwrap()).collect()
    }

    fn policy(allow: &[&str], cap_add: &[&str], families: &[u32]) -> Policy {
        Policy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            capabilities: Capabilities::of_container(
                &cap_add.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &[],
            ),
            socket_families: families.iter().copied().collect(),
            ..Policy::default()
        }
    }

    fn with(arch: Arch, names: &[&str], policy: &Policy) -> SeccompProfile {
        SeccompProfile::generate_with_compat(arch, &numbers(arch, names), &[].into(), policy)
    }

    /// Whether a rule lets a call with argument `arg` at its index through.
    fn admits(rule: &ArgRule, arg: u64) -> bool {
        match rule.op {
            ArgOp::Equal => arg == rule.value,
            ArgOp::MaskedEqual => arg & rule.value == rule.value_two,
            ArgOp::NotEqual => arg != rule.value,
            ArgOp::LessThan => arg < rule.value,
            ArgOp::LessOrEqual => arg <= rule.value,
            ArgOp::GreaterOrEqual => arg >= rule.value,
            ArgOp::GreaterThan => arg > rule.value,
        }
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags_on_every_architecture() {
        const CLONE_NEWNS: u64 = 0x0002_0000;
        const NAMESPACES: [u64; 7] = [
            CLONE_NEWNS,
            0x0200_0000, // CLONE_NEWCGROUP
            0x0400_0000, // CLONE_NEWUTS
            0x0800_0000, // CLONE_NEWIPC
            0x1000_0000, // CLONE_NEWUSER
            0x2000_0000, // CLONE_NEWPID
            0x4000_0000, // CLONE_NEWNET
        ];
        // glibc's pthread_create and fork: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|
        // PARENT_SETTID|CHILD_CLEARTID, and CHILD_SETTID|CHILD_CLEARTID|SIGCHLD.
        let thread = 0x003d_0f00;
        let fork = 0x0120_0011;
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm] {
            let profile = with(arch, &["clone"], &Policy::default());
            assert_eq!(profile.allowed["clone"], Origin::App);
            let rules = &profile.conditions["clone"];
            assert_eq!(rules.len(), 1, "{arch}");
            assert_eq!(rules[0].index, 0, "{arch}: flags are the first argument");
            assert!(
                admits(&rules[0], thread) && admits(&rules[0], fork),
                "{arch}"
            );
            for flag in NAMESPACES {
                assert!(
                    !admits(&rules[0], fork | flag),
                    "{arch}: {flag:#x} admitted"
                );
            }
            assert!(!profile.unconditional_names().contains(&"clone"));
            let json: serde_json::Value = serde_json::from_str(&profile.to_docker_json()).unwrap();
            let rule = json["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["names"] == serde_json::json!(["clone"]))
                .unwrap();
            assert_eq!(rule["action"], "SCMP_ACT_ALLOW");
            assert_eq!(
                rule["args"],
                serde_json::json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0,
                    "op": "SCMP_CMP_MASKED_EQ"}])
            );
        }
        // The 32-bit compat profile shares the rule: the flags are argument 0 on i386 too.
        let compat = SeccompProfile::generate_with_compat(
            Arch::X86_64,
            &numbers(Arch::X86_64, &["read"]),
            &numbers(Arch::X86, &["clone"]),
            &Policy::default(),
        );
        assert_eq!(compat.conditions["clone"][0].index, 0);
        // runc's Go runtime clones threads between the filter and exec: clone is there even
        // when the app never forked, under the same rule.
        let runtime_only = with(Arch::X86_64, &["read"], &Policy::default());
        assert_eq!(runtime_only.allowed["clone"], Origin::Runtime);
        assert!(runtime_only.conditions.contains_key("clone"));
    }

    #[test]
    fn namespace_calls_and_dockers_denials_stay_out_unless_named() {
        // Every call of the app but accept4 is one that stays out unless named.
        let kept_out = [
            "unshare",
            "setns",
            "clone3",
            "keyctl",
            "io_uring_setup",
            "kcmp",
        ];
        let app = [&kept_out[..], &["accept4"]].concat();
        let profile = with(Arch::X86_64, &app, &Policy::default());
        for denied in kept_out {
            assert!(!profile.allowed.contains_key(denied), "{denied} allowed");
        }
        assert_eq!(profile.allowed["accept4"], Origin::App);
        for enosys in [
            "clone3",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ] {
            assert!(profile.enosys.contains(enosys), "{enosys} not ENOSYS");
        }
        // clone3 answers ENOSYS under Docker's default as well: not a denial to report.
        assert_eq!(
            profile.docker_denied_recorded,
            ["io_uring_setup", "kcmp", "keyctl", "setns", "unshare"]
                .map(String::from)
                .into()
        );

        // --seccomp-allow: unconditional, recorded or not; the rest stays denied.
        let named = with(
            Arch::X86_64,
            &app,
            &policy(
                &["unshare", "clone3", "io_uring_setup", "mount", "clone"],
                &[],
                &[],
            ),
        );
        assert_eq!(named.allowed["unshare"], Origin::App);
        assert_eq!(named.allowed["clone3"], Origin::App);
        assert_eq!(named.allowed["mount"], Origin::User);
        assert!(named.conditions.is_empty(), "{:?}", named.conditions);
        assert!(!named.enosys.contains("clone3") && !named.enosys.contains("io_uring_setup"));
        assert!(named.enosys.contains("io_uring_enter"));
        assert!(!named.allowed.contains_key("setns"));
        assert_eq!(
            named.docker_denied_recorded,
            ["kcmp", "keyctl", "setns"].map(String::from).into()
        );
        assert_eq!(named.count(Origin::User), 1);
    }

    #[test]
    fn cap_add_allows_the_capability_block_as_docker_does() {
        let app = ["kcmp", "unshare", "clone", "clone3", "settimeofday"];
        let ptrace = with(Arch::X86_64, &app, &policy(&[], &["SYS_PTRACE"], &[]));
        assert_eq!(ptrace.allowed["kcmp"], Origin::App);
        assert!(!ptrace.allowed.contains_key("unshare"));
        assert!(!ptrace.allowed.contains_key("settimeofday"));
        assert!(ptrace.conditions.contains_key("clone"));
        let admin = with(Arch::X86_64, &app, &policy(&[], &["CAP_SYS_ADMIN"], &[]));
        for name in ["unshare", "clone", "clone3"] {
            assert_eq!(admin.allowed[name], Origin::App, "{name}");
        }
        assert!(
            !admin.conditions.contains_key("clone"),
            "unconditional with SYS_ADMIN"
        );
        assert!(!admin.enosys.contains("clone3"));
        assert!(!admin.allowed.contains_key("kcmp"));
        let time = with(Arch::X86_64, &app, &policy(&[], &["sys_time"], &[]));
        assert_eq!(time.allowed["settimeofday"], Origin::App);
    }

    #[test]
    fn socket_is_limited_to_the_recorded_families() {
        // AF_UNIX, AF_INET, AF_INET6, and AF_VSOCK (which Docker refuses).
        let profile = with(
            Arch::X86_64,
            &["socket"],
            &policy(&[], &[], &[1, 2, 10, 40]),
        );
        let rules = &profile.conditions["socket"];
        assert_eq!(
            rules
                .iter()
                .map(|r| (r.index, r.value, r.op))
                .collect::<Vec<_>>(),
            [1, 2, 10].map(|f| (0, f, ArgOp::Equal))
        );
        assert!(
            rules.iter().all(|r| !admits(r, 16)),
            "AF_NETLINK was not seen"
        );
        let json = profile.to_docker_json();
        assert_eq!(json.matches("\"socket\"").count(), 3, "{json}");
        // Recorded, but no family known: Docker's own rule, any family but AF_VSOCK (it was
        // unconditional, weaker than Docker's default).
        let unknown = with(Arch::X86_64, &["socket"], &Policy::default());
        assert!(!unknown.unconditional_names().contains(&"socket"));
        assert_eq!(
            unknown.conditions["socket"],
            [ArgRule {
                index: 0,
                value: 40,
                value_two: 0,
                op: ArgOp::NotEqual
            }]
        );
        // Only AF_VSOCK: out, and reported.
        let vsock = with(Arch::X86_64, &["socket"], &policy(&[], &[], &[40]));
        assert!(!vsock.allowed.contains_key("socket"));
        assert!(vsock.docker_denied_recorded.contains("socket"));
        // Named by the user: any family.
        let named = with(Arch::X86_64, &["socket"], &policy(&["socket"], &[], &[2]));
        assert!(named.unconditional_names().contains(&"socket"));
    }

    #[test]
    fn personality_takes_only_dockers_values() {
        let profile = with(Arch::Aarch64, &["personality"], &Policy::default());
        let rules = &profile.conditions["personality"];
        assert!(rules.iter().any(|r| admits(r, 0xffff_ffff)));
        assert!(rules.iter().any(|r| admits(r, 0x8)));
        assert!(
            !rules.iter().any(|r| admits(r, 0x0040_0000)),
            "READ_IMPLIES_EXEC"
        );
        let yaml = profile.to_operator_yaml("x");
        assert_eq!(yaml.matches("    - personality\n").count(), rules.len());
        assert!(yaml.contains("      op: SCMP_CMP_EQ\n"));
    }

    #[test]
    fn an_app_that_called_everything_gets_nothing_docker_refuses() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let everything: BTreeSet<u32> =
                (0..1024).filter(|&nr| arch.name(nr).is_some()).collect();
            let profile = SeccompProfile::generate_with_compat(
                arch,
                &everything,
                &[].into(),
                &Policy::default(),
            );
            let defaults = Capabilities::default();
            for name in profile.unconditional_names() {
                assert!(
                    !docker_default::gated_or_never(name)
                        || docker_default::granted(name, &defaults),
                    "{arch}: {name} allowed"
                );
            }
            assert!(
                profile.unconditional_names().contains(&"chroot"),
                "SYS_CHROOT"
            );
            assert!(!profile.docker_denied_recorded.is_empty());
        }
    }
}
