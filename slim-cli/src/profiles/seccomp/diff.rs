//! Comparing two seccomp profiles call by call: what one allows that the other refuses, and
//! what it takes away. The reference is Docker's default profile (slim's model of it, for a
//! container with given capabilities) or another profile in Docker's JSON format, moby's own
//! `default.json` included (its `includes`/`excludes` of capabilities and architectures are
//! honoured). Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::{
    profiles::docker_default::{self, Capabilities},
    syscalls::Arch,
};

/// What a profile does with one call, from the most to the least permissive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Refused with this errno (EPERM by default, ENOSYS for calls with a fallback...).
    Refused(u32),
    /// Allowed only when the arguments match one of its rules.
    WithArguments,
    /// Allowed whatever the arguments.
    Allowed,
}

impl Verdict {
    fn rank(self) -> u8 {
        match self {
            Verdict::Refused(_) => 0,
            Verdict::WithArguments => 1,
            Verdict::Allowed => 2,
        }
    }

    /// How it reads in a table.
    pub fn describe(self) -> String {
        match self {
            Verdict::Allowed => "allowed".into(),
            Verdict::WithArguments => "argument rules".into(),
            Verdict::Refused(errno) => format!("refused ({})", errno_name(errno)),
        }
    }
}

fn errno_name(errno: u32) -> String {
    match errno {
        1 => "EPERM".into(),
        13 => "EACCES".into(),
        38 => "ENOSYS".into(),
        95 => "EOPNOTSUPP".into(),
        other => format!("errno {other}"),
    }
}

/// How a call's verdict differs between the profile and the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The profile allows more than the reference: a weakness.
    Weaker,
    /// The profile allows it only with argument rules where the reference allows it whatever.
    Narrowed,
    /// The profile refuses what the reference allows.
    Removed,
}

impl Change {
    /// How it reads in a table.
    pub fn describe(self) -> &'static str {
        match self {
            Change::Weaker => "WEAKER",
            Change::Narrowed => "narrowed",
            Change::Removed => "removed",
        }
    }
}

/// Verdicts of one profile, by call name, for the architecture compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdicts {
    /// What a call no rule names gets.
    pub default: Verdict,
    pub named: BTreeMap<String, Verdict>,
}

impl Verdicts {
    /// The verdict on `name`.
    pub fn of(&self, name: &str) -> Verdict {
        self.named.get(name).copied().unwrap_or(self.default)
    }

    /// How many of `names` it allows, with or without argument rules.
    pub fn allowed_count<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> (usize, usize) {
        let (mut allowed, mut with_arguments) = (0, 0);
        for name in names {
            match self.of(name) {
                Verdict::Allowed => allowed += 1,
                Verdict::WithArguments => with_arguments += 1,
                Verdict::Refused(_) => {}
            }
        }
        (allowed + with_arguments, with_arguments)
    }
}

/// Why a profile cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("not a seccomp profile in Docker's JSON format: {0}")]
    Format(#[from] serde_json::Error),
    #[error("unknown default action {0:?} (SCMP_ACT_ERRNO, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_KILL... expected)")]
    Action(String),
}

/// Docker's seccomp JSON, as far as comparing needs it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleFile {
    #[serde(default)]
    names: Vec<String>,
    /// The pre-`names` spelling of a one-call rule.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Default, Deserialize)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

/// The verdict an action gives, `None` for one that lets the call run.
fn refusal(action: &str, errno_ret: Option<u32>) -> Result<Option<Verdict>, DiffError> {
    Ok(match action {
        "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => None,
        "SCMP_ACT_ERRNO" => Some(Verdict::Refused(errno_ret.unwrap_or(1))),
        // Killed: as refused as a call gets (shown as EPERM's rank).
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_TRAP" => {
            Some(Verdict::Refused(errno_ret.unwrap_or(1)))
        }
        other => return Err(DiffError::Action(other.to_owned())),
    })
}

/// The lower-case architecture a profile's `arches` filter names (`amd64`, `arm64`...), or its
/// SCMP_ARCH_ name.
fn arch_matches(filter: &str, arch: Arch) -> bool {
    let names: &[&str] = match arch {
        Arch::X86_64 => &["amd64", "x86_64", "SCMP_ARCH_X86_64"],
        Arch::Aarch64 => &["arm64", "aarch64", "SCMP_ARCH_AARCH64"],
        Arch::X86 => &["386", "x86", "SCMP_ARCH_X86"],
        Arch::Arm => &["arm", "SCMP_ARCH_ARM"],
    };
    names.contains(&filter)
}

/// Reads a profile in Docker's JSON format as it applies to a container on `arch` with
/// `capabilities` (capability names without `CAP_`).
pub fn verdicts_of_json(
    text: &str,
    arch: Arch,
    capabilities: &Capabilities,
) -> Result<Verdicts, DiffError> {
    let file: ProfileFile = serde_json::from_str(text)?;
    let default =
        refusal(&file.default_action, file.default_errno_ret)?.unwrap_or(Verdict::Allowed);
    let has = |cap: &String| capabilities.has(cap.trim_start_matches("CAP_"));
    let mut named: BTreeMap<String, Verdict> = BTreeMap::new();
    for rule in &file.syscalls {
        let applies = rule.includes.caps.iter().all(has)
            && !rule.excludes.caps.iter().any(has)
            && (rule.includes.arches.is_empty()
                || rule.includes.arches.iter().any(|a| arch_matches(a, arch)))
            && !rule.excludes.arches.iter().any(|a| arch_matches(a, arch));
        if !applies {
            continue;
        }
        let verdict = match refusal(&rule.action, rule.errno_ret)? {
            Some(refused) => refused,
            None if rule.args.as_ref().is_some_and(|a| !a.is_empty()) => Verdict::WithArguments,
            None => Verdict::Allowed,
        };
        for name in rule.names.iter().chain(&rule.name) {
            // Several rules for one call: the most permissive wins (libseccomp takes the
            // first matching rule, and allow rules with arguments add up).
            let entry = named.entry(name.clone()).or_insert(verdict);
            if verdict.rank() > entry.rank() {
                *entry = verdict;
            }
        }
    }
    Ok(Verdicts { default, named })
}

/// Docker's default profile, as slim models it, for a container on `arch` with `capabilities`:
/// every call of the architecture's table is allowed but those it never gives and those its
/// capability blocks give only with a capability the container lacks; `clone` without the
/// CLONE_NEW* flags, `socket` but for AF_VSOCK and `personality` for a few values; `clone3`
/// answers ENOSYS without CAP_SYS_ADMIN.
pub fn docker_default(arch: Arch, capabilities: &Capabilities) -> Verdicts {
    let mut named = BTreeMap::new();
    for name in arch.names() {
        let verdict = if docker_default::granted(name, capabilities) {
            Verdict::Allowed
        } else if name == "clone3" {
            Verdict::Refused(38)
        } else if docker_default::gated_or_never(name) && name != "clone" {
            Verdict::Refused(1)
        } else if matches!(name, "clone" | "socket" | "personality") {
            Verdict::WithArguments
        } else {
            Verdict::Allowed
        };
        named.insert(name.to_owned(), verdict);
    }
    Verdicts {
        default: Verdict::Refused(1),
        named,
    }
}

/// One call whose verdict differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub name: String,
    pub here: Verdict,
    pub there: Verdict,
    pub change: Change,
}

/// The calls of `names` on which `here` and `there` differ in what they let run (two refusals
/// with other errnos do not count), weaker ones first, then by name.
pub fn compare<'a>(
    here: &Verdicts,
    there: &Verdicts,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<Difference> {
    let mut names: BTreeSet<&str> = names.into_iter().collect();
    names.extend(here.named.keys().map(String::as_str));
    names.extend(there.named.keys().map(String::as_str));
    let mut differences: Vec<Difference> = names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (here.of(name), there.of(name));
            let change = match a.rank().cmp(&b.rank()) {
                std::cmp::Ordering::Greater => Change::Weaker,
                std::cmp::Ordering::Less if a == Verdict::WithArguments => Change::Narrowed,
                std::cmp::Ordering::Less => Change::Removed,
                std::cmp::Ordering::Equal => return None,
            };
            Some(Difference {
                name: name.to_owned(),
                here: a,
                there: b,
                change,
            })
        })
        .collect();
    differences.sort_by(|x, y| (x.change, &x.name).cmp(&(y.change, &y.name)));
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::seccomp::{limits::Policy, SeccompProfile};

    fn default_caps() -> Capabilities {
        Capabilities::of_container(&[], &[])
    }

    #[test]
    fn a_generated_profile_is_never_weaker_than_dockers_default() {
        let arch = Arch::X86_64;
        let app = [
            "read",
            "clone",
            "clone3",
            "socket",
            "keyctl",
            "mount",
            "personality",
        ]
        .iter()
        .map(|n| arch.number(n).unwrap())
        .collect();
        let profile =
            SeccompProfile::generate_with_compat(arch, &app, &BTreeSet::new(), &Policy::default());
        let here = verdicts_of_json(&profile.to_docker_json(), arch, &default_caps()).unwrap();
        let there = docker_default(arch, &default_caps());
        let differences = compare(&here, &there, arch.names());
        assert!(
            differences.iter().all(|d| d.change != Change::Weaker),
            "{differences:?}"
        );
        assert_eq!(here.of("clone"), Verdict::WithArguments);
        assert_eq!(here.of("clone3"), Verdict::Refused(38));
        assert!(differences
            .iter()
            .any(|d| d.name == "mkdir" && d.change == Change::Removed));
    }

    #[test]
    fn what_the_user_allows_beyond_dockers_default_shows_as_weaker() {
        let arch = Arch::X86_64;
        let policy = Policy {
            allow: ["keyctl".to_owned()].into(),
            ..Policy::default()
        };
        let profile = SeccompProfile::generate_with_compat(
            arch,
            &[arch.number("read").unwrap()].into(),
            &BTreeSet::new(),
            &policy,
        );
        let here = verdicts_of_json(&profile.to_docker_json(), arch, &default_caps()).unwrap();
        let differences = compare(&here, &docker_default(arch, &default_caps()), arch.names());
        let weaker: Vec<&str> = differences
            .iter()
            .filter(|d| d.change == Change::Weaker)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(weaker, ["keyctl"]);
    }

    #[test]
    fn mobys_capability_and_architecture_filters_are_honoured() {
        let moby_like = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }"#;
        let caps = default_caps();
        let x86 = verdicts_of_json(moby_like, Arch::X86_64, &caps).unwrap();
        assert_eq!(x86.of("read"), Verdict::Allowed);
        assert_eq!(x86.of("mount"), Verdict::Refused(1));
        assert_eq!(x86.of("clone"), Verdict::WithArguments);
        assert_eq!(x86.of("arch_prctl"), Verdict::Allowed);
        assert_eq!(x86.of("clone3"), Verdict::Refused(38));
        let arm = verdicts_of_json(moby_like, Arch::Aarch64, &caps).unwrap();
        assert_eq!(arm.of("arch_prctl"), Verdict::Refused(1));
        let admin = Capabilities::of_container(&["SYS_ADMIN".to_owned()], &[]);
        let admin = verdicts_of_json(moby_like, Arch::X86_64, &admin).unwrap();
        assert_eq!(admin.of("mount"), Verdict::Allowed);
        assert_eq!(admin.of("clone"), Verdict::Refused(1));
    }

    #[test]
    fn bad_profiles_are_errors_not_panics() {
        let caps = default_caps();
        for text in [
            "",
            "{}",
            "[]",
            r#"{"defaultAction": "SCMP_ACT_FOO"}"#,
            "null",
        ] {
            assert!(
                verdicts_of_json(text, Arch::X86_64, &caps).is_err(),
                "{text}"
            );
        }
        let rule = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "NOPE"}]}"#;
        assert!(verdicts_of_json(rule, Arch::X86_64, &caps).is_err());
    }
}
