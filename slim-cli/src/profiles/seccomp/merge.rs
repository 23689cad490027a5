//! `slim profile merge`: the union of several seccomp profiles (replicas, probe sets), like the
//! security-profiles-operator's merge strategy, with how many inputs allowed each call. Pure:
//! profile text in, profile text and counts out.
//!
//! Per call, over the inputs (a call an input does not name gets its default action):
//! - allowed whatever the arguments in any input: allowed whatever the arguments;
//! - else allowed with argument rules in some inputs: every rule of those inputs (each rule is
//!   an alternative, so the union of the rules is the union of what they let through);
//! - else refused by all: the errno of the first input that names the call with an errno rule
//!   (ENOSYS for clone3, the errno a failed-only call got...), others that differ are reported;
//!   refused by the default action in all: left to the default.
//!
//! So the merged profile lets through everything any input let through, and nothing no input
//! did. The default action must be the same in all inputs. Profiles of different primary
//! architectures are not merged into one (a Docker profile has one list of names, resolved on
//! every listed architecture, and the tables and argument orders differ): the caller merges
//! them per architecture ([`group_by_arch`]). Inputs of one primary architecture get the union
//! of their listed architectures (the 32-bit compat one when any input ran 32-bit processes).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    failed::{ENOSYS, EPERM},
    ArgRule, DockerProfile, DockerRule,
};

/// What one profile does with a call it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// An SCMP_ACT_ALLOW rule without argument conditions names it.
    pub unconditional: bool,
    /// SCMP_ACT_ALLOW rules with argument conditions: each one an alternative (all of a rule's
    /// conditions must hold).
    pub alternatives: Vec<Vec<ArgRule>>,
    /// An SCMP_ACT_ERRNO rule answers it with this errno.
    pub errno: Option<u32>,
}

impl Call {
    /// Whether it lets the call run, with any arguments or some.
    pub fn allows(&self) -> bool {
        self.unconditional || !self.alternatives.is_empty()
    }
}

/// One seccomp profile in Docker's JSON format, as merging needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub default_action: String,
    pub default_errno_ret: Option<u32>,
    /// libseccomp's tokens (SCMP_ARCH_X86_64...), the primary one first.
    pub architectures: Vec<String>,
    pub calls: BTreeMap<String, Call>,
}

impl Profile {
    /// The default action and its errno, as compared between inputs.
    fn default_key(&self) -> (String, Option<u32>) {
        let errno = match self.default_action.as_str() {
            "SCMP_ACT_ERRNO" | "SCMP_ACT_LOG" => Some(self.default_errno_ret.unwrap_or(EPERM)),
            _ => None,
        };
        (self.default_action.clone(), errno)
    }

    /// Whether a call no rule names runs.
    fn default_allows(&self) -> bool {
        self.default_action == "SCMP_ACT_ALLOW"
    }

    /// The primary architecture's token, empty when none is listed (the host's own).
    pub fn primary_arch(&self) -> &str {
        self.architectures.first().map_or("", String::as_str)
    }

    /// What it does with `name`: its rules, else its default (`None`: refused by default).
    fn call(&self, name: &str) -> Option<Call> {
        match self.calls.get(name) {
            Some(call) => Some(call.clone()),
            None if self.default_allows() => Some(Call {
                unconditional: true,
                ..Call::default()
            }),
            None => None,
        }
    }
}

/// Why profiles cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("not a seccomp profile in Docker's JSON format: {0}")]
    Format(#[from] serde_json::Error),
    #[error("unknown default action {0:?}")]
    DefaultAction(String),
    #[error(
        "the rule for {name} has action {action:?} (slim merges SCMP_ACT_ALLOW rules and \
         SCMP_ACT_ERRNO rules without argument conditions)"
    )]
    Action { name: String, action: String },
    #[error(
        "the rule for {0} has includes/excludes (capability or architecture filters), which \
         slim does not merge"
    )]
    Filtered(String),
    #[error("it has an archMap (moby's default.json style), which slim does not merge")]
    ArchMap,
    #[error("nothing to merge")]
    NoInput,
    #[error("{label} has default action {theirs}, {first} has {ours}")]
    DefaultMismatch {
        first: String,
        ours: String,
        label: String,
        theirs: String,
    },
    #[error("{label} is for {theirs}, {first} for {ours}")]
    ArchMismatch {
        first: String,
        ours: String,
        label: String,
        theirs: String,
    },
}

/// The actions a profile's default may have.
const DEFAULT_ACTIONS: &[&str] = &[
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: serde_json::Value,
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
    args: Option<Vec<ArgRule>>,
    #[serde(default)]
    includes: serde_json::Value,
    #[serde(default)]
    excludes: serde_json::Value,
}

/// Whether an `includes`/`excludes` filter filters nothing (absent, `{}`, empty lists).
fn filters_nothing(filter: &serde_json::Value) -> bool {
    match filter {
        serde_json::Value::Null => true,
        serde_json::Value::Object(fields) => fields.values().all(|v| match v {
            serde_json::Value::Null => true,
            serde_json::Value::Array(items) => items.is_empty(),
            serde_json::Value::String(s) => s.is_empty(),
            _ => false,
        }),
        _ => false,
    }
}

/// Reads a profile in Docker's JSON format.
pub fn parse(text: &str) -> Result<Profile, MergeError> {
    let file: ProfileFile = serde_json::from_str(text)?;
    if !DEFAULT_ACTIONS.contains(&file.default_action.as_str()) {
        return Err(MergeError::DefaultAction(file.default_action));
    }
    if !(file.arch_map.is_null() || file.arch_map.as_array().is_some_and(Vec::is_empty)) {
        return Err(MergeError::ArchMap);
    }
    let mut calls: BTreeMap<String, Call> = BTreeMap::new();
    for rule in file.syscalls {
        let names: Vec<String> = rule.names.into_iter().chain(rule.name).collect();
        let Some(first) = names.first().cloned() else {
            continue;
        };
        if !filters_nothing(&rule.includes) || !filters_nothing(&rule.excludes) {
            return Err(MergeError::Filtered(first));
        }
        let args = rule.args.unwrap_or_default();
        for name in names {
            let call = calls.entry(name).or_default();
            match rule.action.as_str() {
                "SCMP_ACT_ALLOW" if args.is_empty() => call.unconditional = true,
                "SCMP_ACT_ALLOW" => {
                    if !call.alternatives.contains(&args) {
                        call.alternatives.push(args.clone());
                    }
                }
                "SCMP_ACT_ERRNO" if args.is_empty() => {
                    call.errno.get_or_insert(rule.errno_ret.unwrap_or(EPERM));
                }
                other => {
                    return Err(MergeError::Action {
                        name: first,
                        action: other.to_owned(),
                    })
                }
            }
        }
    }
    Ok(Profile {
        default_action: file.default_action,
        default_errno_ret: file.default_errno_ret,
        architectures: file.architectures,
        calls,
    })
}

/// A call answered with different errnos by the inputs: the first input's is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrnoConflict {
    pub name: String,
    pub kept: u32,
    pub kept_from: String,
    /// The other inputs' answers: label, errno (EPERM of the default action included).
    pub others: Vec<(String, u32)>,
}

/// The union of the inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The inputs' labels (their paths), in order.
    pub inputs: Vec<String>,
    pub default_action: String,
    pub default_errno_ret: Option<u32>,
    pub architectures: Vec<String>,
    /// What the merged profile does with each call it names.
    pub calls: BTreeMap<String, Call>,
    /// Each allowed call: how many inputs allowed it.
    pub counts: BTreeMap<String, usize>,
    pub errno_conflicts: Vec<ErrnoConflict>,
    /// Calls allowed with argument rules that an input also answered with an errno rule: the
    /// errno is dropped (calls whose arguments match no rule get the default action).
    pub errno_dropped: Vec<String>,
}

/// Merges `inputs` (label, profile), in order: the first input's errno wins a conflict.
pub fn merge(inputs: &[(String, Profile)]) -> Result<Merged, MergeError> {
    let Some((first_label, first)) = inputs.first() else {
        return Err(MergeError::NoInput);
    };
    let describe = |p: &Profile| match p.default_key() {
        (action, Some(errno)) => format!("{action} (errno {errno})"),
        (action, None) => action,
    };
    let mut architectures: Vec<String> = Vec::new();
    for (label, profile) in inputs {
        if profile.default_key() != first.default_key() {
            return Err(MergeError::DefaultMismatch {
                first: first_label.clone(),
                ours: describe(first),
                label: label.clone(),
                theirs: describe(profile),
            });
        }
        if profile.primary_arch() != first.primary_arch() {
            let arch = |p: &Profile| match p.primary_arch() {
                "" => "the host's architecture (none listed)".to_owned(),
                token => token.to_owned(),
            };
            return Err(MergeError::ArchMismatch {
                first: first_label.clone(),
                ours: arch(first),
                label: label.clone(),
                theirs: arch(profile),
            });
        }
        for arch in &profile.architectures {
            if !architectures.contains(arch) {
                architectures.push(arch.clone());
            }
        }
    }
    let mut names: Vec<&String> = inputs.iter().flat_map(|(_, p)| p.calls.keys()).collect();
    names.sort_unstable();
    names.dedup();
    let mut merged = Merged {
        inputs: inputs.iter().map(|(label, _)| label.clone()).collect(),
        default_action: first.default_action.clone(),
        default_errno_ret: first.default_errno_ret,
        architectures,
        calls: BTreeMap::new(),
        counts: BTreeMap::new(),
        errno_conflicts: Vec::new(),
        errno_dropped: Vec::new(),
    };
    let default_allows = first.default_allows();
    let default_errno = first.default_key().1;
    for name in names {
        let each: Vec<(&String, Option<Call>)> = inputs
            .iter()
            .map(|(label, profile)| (label, profile.call(name)))
            .collect();
        let allowing = each
            .iter()
            .filter(|(_, call)| call.as_ref().is_some_and(Call::allows))
            .count();
        let mut call = Call::default();
        if allowing > 0 {
            merged.counts.insert(name.clone(), allowing);
            call.unconditional = each
                .iter()
                .any(|(_, c)| c.as_ref().is_some_and(|c| c.unconditional));
            if !call.unconditional {
                for alternative in each
                    .iter()
                    .filter_map(|(_, c)| c.as_ref())
                    .flat_map(|c| &c.alternatives)
                {
                    if !call.alternatives.contains(alternative) {
                        call.alternatives.push(alternative.clone());
                    }
                }
                if each
                    .iter()
                    .any(|(_, c)| c.as_ref().is_some_and(|c| c.errno.is_some()))
                {
                    merged.errno_dropped.push(name.clone());
                }
            }
            if call.unconditional && default_allows {
                continue;
            }
        } else {
            let answers: Vec<(&String, u32)> = each
                .iter()
                .filter_map(|(label, c)| Some((*label, c.as_ref()?.errno?)))
                .collect();
            let Some(&(kept_from, kept)) = answers.first() else {
                continue;
            };
            call.errno = Some(kept);
            // The inputs that leave it to the default answer with the default's errno.
            let others: Vec<(String, u32)> = each
                .iter()
                .filter_map(|(label, c)| {
                    let errno = match c {
                        Some(c) => c.errno?,
                        None => default_errno?,
                    };
                    (errno != kept).then(|| ((*label).clone(), errno))
                })
                .collect();
            if !others.is_empty() {
                merged.errno_conflicts.push(ErrnoConflict {
                    name: name.clone(),
                    kept,
                    kept_from: kept_from.clone(),
                    others,
                });
            }
        }
        merged.calls.insert(name.clone(), call);
    }
    Ok(merged)
}

/// `inputs` by primary architecture (`--per-arch`), each group in input order.
pub fn group_by_arch(inputs: Vec<(String, Profile)>) -> BTreeMap<String, Vec<(String, Profile)>> {
    let mut groups: BTreeMap<String, Vec<(String, Profile)>> = BTreeMap::new();
    for (label, profile) in inputs {
        groups
            .entry(profile.primary_arch().to_owned())
            .or_default()
            .push((label, profile));
    }
    groups
}

/// The directory name for an architecture token: `x86_64` for SCMP_ARCH_X86_64, `native`
/// when none is listed.
pub fn arch_dir(token: &str) -> String {
    match token.strip_prefix("SCMP_ARCH_").unwrap_or(token) {
        "" => "native".to_owned(),
        name => name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect(),
    }
}

impl Merged {
    /// Docker's format, laid out as slim writes its own (one rule for the unconditional calls,
    /// one per argument alternative, the ENOSYS rule, then one rule per other errno).
    pub fn to_docker_json(&self) -> String {
        self.docker_json(&self.default_action)
    }

    /// The same rules in complain mode (`SCMP_ACT_LOG` default), as `seccomp.log.json`.
    pub fn to_log_json(&self) -> String {
        self.docker_json("SCMP_ACT_LOG")
    }

    /// The same rules as a security-profiles-operator `SeccompProfile` object named `name`.
    pub fn to_operator_yaml(&self, name: &str) -> String {
        self.docker_profile(&self.default_action)
            .operator_yaml(name)
    }

    fn docker_json(&self, default_action: &str) -> String {
        self.docker_profile(default_action).render()
    }

    fn docker_profile<'a>(&'a self, default_action: &'a str) -> DockerProfile<'a> {
        let unconditional: Vec<&str> = self
            .calls
            .iter()
            .filter(|(_, c)| c.unconditional)
            .map(|(name, _)| name.as_str())
            .collect();
        let mut syscalls = Vec::new();
        if !unconditional.is_empty() {
            syscalls.push(DockerRule {
                names: unconditional,
                action: "SCMP_ACT_ALLOW",
                errno_ret: None,
                args: &[],
            });
        }
        for (name, call) in self.calls.iter().filter(|(_, c)| !c.unconditional) {
            for alternative in &call.alternatives {
                syscalls.push(DockerRule {
                    names: vec![name.as_str()],
                    action: "SCMP_ACT_ALLOW",
                    errno_ret: None,
                    args: alternative,
                });
            }
        }
        let mut answers: BTreeMap<(bool, u32), Vec<&str>> = BTreeMap::new();
        for (name, call) in &self.calls {
            if let (Some(errno), false) = (call.errno, call.allows()) {
                answers
                    .entry((errno != ENOSYS, errno))
                    .or_default()
                    .push(name);
            }
        }
        for ((_, errno), names) in answers {
            syscalls.push(DockerRule {
                names,
                action: "SCMP_ACT_ERRNO",
                errno_ret: Some(errno),
                args: &[],
            });
        }
        DockerProfile {
            default_action,
            default_errno_ret: self.default_errno_ret,
            architectures: self.architectures.iter().map(String::as_str).collect(),
            syscalls,
        }
    }

    /// The allowed calls that not every input allowed, with their counts, fewest first.
    pub fn only_some(&self) -> Vec<(&str, usize)> {
        let mut some: Vec<(&str, usize)> = self
            .counts
            .iter()
            .filter(|(_, &n)| n < self.inputs.len())
            .map(|(name, &n)| (name.as_str(), n))
            .collect();
        some.sort_by_key(|&(name, n)| (n, name));
        some
    }

    /// How many calls it allows, and how many of them only with argument rules.
    pub fn allowed_count(&self) -> (usize, usize) {
        let with_args = self
            .calls
            .values()
            .filter(|c| !c.unconditional && !c.alternatives.is_empty())
            .count();
        (self.counts.len(), with_args)
    }

    /// `merge.json`: the inputs, and for each allowed call how many of them allowed it.
    pub fn report(&self) -> serde_json::Value {
        let argument_rules: BTreeMap<&str, &Vec<Vec<ArgRule>>> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.unconditional && !c.alternatives.is_empty())
            .map(|(name, c)| (name.as_str(), &c.alternatives))
            .collect();
        let errno: BTreeMap<&str, u32> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.allows())
            .filter_map(|(name, c)| Some((name.as_str(), c.errno?)))
            .collect();
        let conflicts: Vec<serde_json::Value> = self
            .errno_conflicts
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "kept": c.kept,
                    "kept_from": c.kept_from,
                    "others": c.others.iter().map(|(label, errno)| {
                        serde_json::json!({"input": label, "errno": errno})
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "inputs": self.inputs,
            "architectures": self.architectures,
            "default_action": self.default_action,
            "calls": self.counts,
            "only_some": self.only_some().into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "argument_rules": argument_rules,
            "errno": errno,
            "errno_conflicts": conflicts,
            "errno_dropped_beside_argument_rules": self.errno_dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{
        profiles::{
            docker_default::Capabilities,
            seccomp::{
                diff::{self, Change, Verdict},
                ArgOp, Policy, SeccompProfile,
            },
        },
        syscalls::Arch,
    };

    fn profile(json: &str) -> Profile {
        parse(json).unwrap()
    }

    fn labelled(profiles: &[&str]) -> Vec<(String, Profile)> {
        profiles
            .iter()
            .enumerate()
            .map(|(i, text)| (format!("input{}", i + 1), profile(text)))
            .collect()
    }

    fn eq(index: u32, value: u64) -> ArgRule {
        ArgRule {
            index,
            value,
            value_two: 0,
            op: ArgOp::Equal,
        }
    }

    const A: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
          {"names": ["read", "write", "clone3"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
          {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
          {"names": ["statx"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
          {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]}"#;

    const B: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
          {"names": ["read", "bpf", "personality", "statx"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
          {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
          {"names": ["clone3", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
          {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]}"#;

    #[test]
    fn the_union_of_allowed_calls_with_counts() {
        let merged = merge(&labelled(&[A, B])).unwrap();
        let allowed: Vec<&str> = merged.counts.keys().map(String::as_str).collect();
        assert_eq!(
            allowed,
            [
                "bpf",
                "clone3",
                "personality",
                "read",
                "socket",
                "statx",
                "write"
            ]
        );
        assert_eq!(merged.counts["read"], 2);
        assert_eq!(merged.counts["socket"], 2);
        assert_eq!(merged.counts["bpf"], 1);
        assert_eq!(merged.counts["write"], 1);
        let some: Vec<&str> = merged.only_some().iter().map(|(n, _)| *n).collect();
        assert_eq!(some, ["bpf", "clone3", "statx", "write"]);
        assert_eq!(merged.allowed_count(), (7, 1));
        assert_eq!(
            merged.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "the compat architecture one input listed"
        );
        let report = merged.report();
        assert_eq!(report["calls"]["read"], 2);
        assert_eq!(report["calls"]["bpf"], 1);
        assert_eq!(report["inputs"], serde_json::json!(["input1", "input2"]));
    }

    #[test]
    fn unconditional_wins_over_argument_rules_and_argument_rules_add_up() {
        let merged = merge(&labelled(&[A, B])).unwrap();
        // personality: rules in A, unconditional in B.
        let personality = &merged.calls["personality"];
        assert!(personality.unconditional && personality.alternatives.is_empty());
        // socket: rules in both, the union of the alternatives, each once.
        let socket = &merged.calls["socket"];
        assert!(!socket.unconditional);
        assert_eq!(socket.alternatives, [vec![eq(0, 1)], vec![eq(0, 2)]]);
        let json: serde_json::Value = serde_json::from_str(&merged.to_docker_json()).unwrap();
        let socket_rules = json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"] == serde_json::json!(["socket"]))
            .count();
        assert_eq!(socket_rules, 2);
        assert!(!json["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("socket")));
    }

    #[test]
    fn an_errno_answer_another_input_allows_becomes_allowed() {
        let merged = merge(&labelled(&[A, B])).unwrap();
        // clone3: allowed in A, ENOSYS in B; statx: ENOSYS in A, allowed in B.
        for name in ["clone3", "statx"] {
            assert!(merged.calls[name].unconditional, "{name}");
            assert_eq!(merged.calls[name].errno, None, "{name}");
        }
        // fchmodat2: ENOSYS in B, left to the default (EPERM) in A: ENOSYS, so the fallback
        // still runs; the difference is reported.
        assert_eq!(merged.calls["fchmodat2"].errno, Some(38));
        // keyctl: EACCES in A, EPERM in B: the first input's errno, and said so.
        assert_eq!(merged.calls["keyctl"].errno, Some(13));
        let keyctl = merged
            .errno_conflicts
            .iter()
            .find(|c| c.name == "keyctl")
            .unwrap();
        assert_eq!(keyctl.kept, 13);
        assert_eq!(keyctl.kept_from, "input1");
        assert_eq!(keyctl.others, [("input2".to_owned(), 1)]);
        let json: serde_json::Value = serde_json::from_str(&merged.to_docker_json()).unwrap();
        let rules = json["syscalls"].as_array().unwrap();
        let enosys = rules.iter().find(|r| r["errnoRet"] == 38).unwrap();
        assert_eq!(enosys["names"], serde_json::json!(["fchmodat2"]));
        let eacces = rules.iter().find(|r| r["errnoRet"] == 13).unwrap();
        assert_eq!(eacces["names"], serde_json::json!(["keyctl"]));
        assert_eq!(merged.report()["errno"]["keyctl"], 13);
    }

    #[test]
    fn an_errno_answer_gives_way_to_argument_rules_and_is_reported() {
        let enosys = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#;
        let rules = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["clone3"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 88, "op": "SCMP_CMP_EQ"}]}]}"#;
        let merged = merge(&labelled(&[enosys, rules])).unwrap();
        let clone3 = &merged.calls["clone3"];
        assert_eq!(clone3.alternatives, [vec![eq(1, 88)]]);
        assert_eq!(clone3.errno, None);
        assert_eq!(merged.errno_dropped, ["clone3"]);
        assert_eq!(merged.counts["clone3"], 1);
        let json: serde_json::Value = serde_json::from_str(&merged.to_docker_json()).unwrap();
        let rules = json["syscalls"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "{json}");
        assert_eq!(rules[0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn the_merged_profile_reads_back_and_its_log_twin_logs() {
        let merged = merge(&labelled(&[A, B])).unwrap();
        let again = parse(&merged.to_docker_json()).unwrap();
        assert_eq!(again.calls, merged.calls);
        assert_eq!(again.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(again.default_errno_ret, Some(1));
        let yaml = merged.to_operator_yaml("slim-app");
        assert!(yaml.contains("kind: SeccompProfile\n"));
        assert!(yaml.contains("  name: slim-app\n"));
        assert!(yaml.contains("  defaultAction: SCMP_ACT_ERRNO\n"));
        assert!(yaml.contains("  - SCMP_ARCH_X86\n"));
        assert_eq!(yaml.matches("    - index: 0\n").count(), 2, "{yaml}");
        assert!(
            yaml.contains("    errnoRet: 13\n    names:\n    - keyctl\n"),
            "{yaml}"
        );
        let log = parse(&merged.to_log_json()).unwrap();
        assert_eq!(log.default_action, "SCMP_ACT_LOG");
        assert_eq!(log.calls, merged.calls);
        // Merging a profile with itself changes nothing.
        let twice = merge(&[
            ("a".to_owned(), again.clone()),
            ("b".to_owned(), again.clone()),
        ])
        .unwrap();
        assert_eq!(twice.to_docker_json(), merged.to_docker_json());
        assert!(twice.only_some().is_empty());
    }

    #[test]
    fn different_defaults_and_primary_architectures_are_refused() {
        let log = A.replace(
            "\"SCMP_ACT_ERRNO\", \"defaultErrnoRet\"",
            "\"SCMP_ACT_LOG\", \"x\"",
        );
        assert!(matches!(
            merge(&labelled(&[A, &log])),
            Err(MergeError::DefaultMismatch { .. })
        ));
        let other_errno = A.replace("\"defaultErrnoRet\": 1", "\"defaultErrnoRet\": 38");
        let err = merge(&labelled(&[A, &other_errno])).unwrap_err();
        assert!(err.to_string().contains("errno 38"), "{err}");
        // An absent defaultErrnoRet is EPERM, as the runtimes read it.
        let implicit = A.replace("\"defaultErrnoRet\": 1,", "");
        assert!(merge(&labelled(&[A, &implicit])).is_ok());
        let arm = A.replace("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64");
        let err = merge(&labelled(&[A, &arm])).unwrap_err();
        assert!(matches!(err, MergeError::ArchMismatch { .. }), "{err}");
        let groups = group_by_arch(labelled(&[A, &arm, B]));
        assert_eq!(groups.len(), 2);
        assert_eq!(groups["SCMP_ARCH_X86_64"].len(), 2);
        assert_eq!(groups["SCMP_ARCH_AARCH64"][0].0, "input2");
        assert!(groups.values().all(|g| merge(g).is_ok()));
        assert_eq!(arch_dir("SCMP_ARCH_AARCH64"), "aarch64");
        assert_eq!(arch_dir("SCMP_ARCH_X86_64"), "x86_64");
        assert_eq!(arch_dir(""), "native");
        assert!(matches!(merge(&[]), Err(MergeError::NoInput)));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        for text in [
            "",
            "{}",
            "[]",
            "null",
            "[1, 2]",
            r#"{"defaultAction": "SCMP_ACT_FOO"}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "NOPE"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_KILL"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": "read"}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        // Empty filters, old one-name rules and other operators are fine.
        let ok = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"name": "read", "action": "SCMP_ACT_ALLOW", "includes": {}, "excludes": {"caps": []}},
                {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 2, "value": 4, "op": "SCMP_CMP_LT"}]}]}"#,
        )
        .unwrap();
        assert!(ok.calls["read"].unconditional);
        assert_eq!(ok.calls["mmap"].alternatives[0][0].op, ArgOp::LessThan);
        assert_eq!(ok.primary_arch(), "");
    }

    #[test]
    fn an_allow_by_default_profile_merges_as_its_union_too() {
        let deny = |names: &str| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": [{names}], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}}]}}"#
            )
        };
        let (mount, both) = (deny(r#""mount""#), deny(r#""mount", "bpf""#));
        let merged = merge(&labelled(&[&mount, &mount, &both])).unwrap();
        // bpf: allowed by the first two (not named there), so allowed; mount refused by all.
        assert_eq!(merged.calls["mount"].errno, Some(1));
        assert!(!merged.calls.contains_key("bpf"));
        assert_eq!(merged.counts["bpf"], 2);
        let again = parse(&merged.to_docker_json()).unwrap();
        assert_eq!(again.calls.keys().collect::<Vec<_>>(), ["mount"]);
    }

    /// Two slim profiles of different recordings (other calls, socket families, a call that
    /// only failed in one), each within Docker's default: their merge is too, and lets through
    /// everything each of them did.
    #[test]
    fn merging_keeps_profiles_within_dockers_default_and_loses_nothing() {
        let arch = Arch::X86_64;
        let caps = Capabilities::of_container(&[], &[]);
        let numbers = |names: &[&str]| -> BTreeSet<u32> {
            names.iter().map(|n| arch.number(n).unwrap()).collect()
        };
        let first = SeccompProfile::generate_with_compat(
            arch,
            &numbers(&["read", "clone", "clone3", "socket", "keyctl", "personality"]),
            &BTreeSet::new(),
            &Policy {
                socket_families: [1].into(),
                ..Policy::default()
            },
        );
        let second = SeccompProfile::generate_with_compat(
            arch,
            &numbers(&["read", "accept4", "socket", "statx", "mount", "chroot"]),
            &BTreeSet::new(),
            &Policy {
                socket_families: [2, 10].into(),
                failed_only: [("chroot".to_owned(), 1)].into(),
                ..Policy::default()
            },
        );
        let texts = [first.to_docker_json(), second.to_docker_json()];
        let docker = diff::docker_default(arch, &caps);
        for text in &texts {
            let verdicts = diff::verdicts_of_json(text, arch, &caps).unwrap();
            let weaker = diff::compare(&verdicts, &docker, arch.names());
            assert!(
                weaker.iter().all(|d| d.change != Change::Weaker),
                "{weaker:?}"
            );
        }
        let inputs: Vec<(String, Profile)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), parse(t).unwrap()))
            .collect();
        let merged = merge(&inputs).unwrap();
        let text = merged.to_docker_json();
        let here = diff::verdicts_of_json(&text, arch, &caps).unwrap();
        let differences = diff::compare(&here, &docker, arch.names());
        assert!(
            differences.iter().all(|d| d.change != Change::Weaker),
            "{differences:?}"
        );
        assert_eq!(here.of("clone"), Verdict::WithArguments);
        assert_eq!(here.of("clone3"), Verdict::Refused(38));
        assert_eq!(here.of("socket"), Verdict::WithArguments);
        assert_eq!(here.of("mount"), Verdict::Refused(1));
        // Nothing an input let through is refused or narrowed by the merge...
        for (text, (_, input)) in texts.iter().zip(&inputs) {
            let there = diff::verdicts_of_json(text, arch, &caps).unwrap();
            let lost = diff::compare(&there, &here, arch.names());
            assert!(lost.iter().all(|d| d.change != Change::Weaker), "{lost:?}");
            for (name, call) in &input.calls {
                for alternative in &call.alternatives {
                    let kept = &merged.calls[name];
                    assert!(
                        kept.unconditional || kept.alternatives.contains(alternative),
                        "{name}: {alternative:?}"
                    );
                }
            }
        }
        // ...and the socket families are the union: AF_UNIX, AF_INET, AF_INET6.
        let families: BTreeSet<u64> = merged.calls["socket"]
            .alternatives
            .iter()
            .map(|a| a[0].value)
            .collect();
        assert_eq!(families, [1, 2, 10].into());
        assert_eq!(merged.counts["accept4"], 1);
        assert_eq!(merged.counts["read"], 2);
    }
}
