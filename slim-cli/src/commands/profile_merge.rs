//! `slim profile merge OUT DIR...`: the union of the seccomp profiles of several recordings
//! (replicas, probe sets), written into OUT (seccomp.json, seccomp.log.json,
//! seccomp-profile.yaml) with how many inputs allowed each call (merge.json). Inputs of
//! different primary architectures are refused unless `--per-arch` (one merged profile per
//! architecture, in OUT/ARCH/). Exit 0, or 2 for input it cannot read or merge.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Result;

use super::{
    build::{
        parse_check, APPARMOR_COMPLAIN_FILE, APPARMOR_FILE, OPERATOR_FILE, SECCOMP_FILE,
        SECCOMP_LOG_FILE,
    },
    UsageError,
};
use crate::{
    cli::ProfileMergeArgs,
    profiles::{
        apparmor_merge, profile_name,
        seccomp::merge::{self, MergeError, Merged, Profile},
    },
};

/// Labelled input profiles (their paths), in order.
type Inputs = Vec<(String, Profile)>;

/// The counts file written next to the merged profile.
pub const MERGE_FILE: &str = "merge.json";

const INPUT_HINT: &str = "give output dirs of `slim build` or `slim profile` (they hold \
                          seccomp.json), or seccomp profiles in Docker's JSON format";

pub fn run(args: ProfileMergeArgs) -> Result<ExitCode> {
    let mut inputs: Inputs = Vec::new();
    // Each input's AppArmor profile (by its seccomp label), when it is an output dir with one.
    let mut apparmor: BTreeMap<String, Option<(String, String)>> = BTreeMap::new();
    for path in &args.inputs {
        let file = profile_file(path)?;
        let text = std::fs::read_to_string(&file).map_err(|err| {
            UsageError::new(format!("cannot read {}: {err}", file.display()), INPUT_HINT)
        })?;
        let profile = merge::parse(&text).map_err(|err| {
            UsageError::new(
                format!("cannot merge {}: {err}", file.display()),
                INPUT_HINT,
            )
        })?;
        let label = file.display().to_string();
        let apparmor_file = path.join(APPARMOR_FILE);
        let apparmor_text = path
            .is_dir()
            .then(|| std::fs::read_to_string(&apparmor_file).ok())
            .flatten()
            .map(|text| (apparmor_file.display().to_string(), text));
        apparmor.insert(label.clone(), apparmor_text);
        inputs.push((label, profile));
    }
    let name = operator_name(&args.out, &args.inputs);
    let groups: Vec<(PathBuf, String, Inputs)> = if args.per_arch {
        merge::group_by_arch(inputs)
            .into_iter()
            .map(|(arch, group)| {
                let arch = merge::arch_dir(&arch);
                (args.out.join(&arch), format!("{name}-{arch}"), group)
            })
            .collect()
    } else {
        vec![(args.out.clone(), name, inputs)]
    };
    let mut merged_groups = Vec::new();
    for (dir, name, group) in groups {
        refuse_overwriting_an_input(&dir, &args.inputs)?;
        let merged = merge::merge(&group).map_err(merge_error)?;
        let apparmor = merge_apparmor(&group, &apparmor);
        merged_groups.push((dir, name, merged, apparmor));
    }
    for (dir, name, merged, apparmor) in &merged_groups {
        let mut written = write(dir, name, merged)?;
        let apparmor_line = match apparmor {
            Ok(profile) => {
                for (file, text) in [
                    (APPARMOR_FILE, &profile.text),
                    (APPARMOR_COMPLAIN_FILE, &profile.complain_text),
                ] {
                    std::fs::write(dir.join(file), text).map_err(|err| {
                        UsageError::new(
                            format!("cannot write into {}: {err}", dir.display()),
                            "give a directory slim can create and write for OUT",
                        )
                    })?;
                    written.push(file);
                }
                format!(
                    "  {APPARMOR_FILE} merged: the first input's rules and {} rule lines only \
                     other inputs had; apparmor_parser check {}\n",
                    profile.added,
                    parse_check(&dir.join(APPARMOR_FILE))
                )
            }
            Err(why) => format!("  AppArmor profiles are not merged: {why}\n"),
        };
        print!("{}{apparmor_line}", summary(dir, merged, &written));
    }
    Ok(ExitCode::SUCCESS)
}

/// The seccomp profile an input names: DIR/seccomp.json for a directory, else the file.
fn profile_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(SECCOMP_FILE);
        if !file.is_file() {
            return Err(UsageError::new(
                format!("{} has no {SECCOMP_FILE}", path.display()),
                INPUT_HINT,
            )
            .into());
        }
        return Ok(file);
    }
    if !path.exists() {
        return Err(UsageError::new(
            format!("cannot read {}: no such file or directory", path.display()),
            INPUT_HINT,
        )
        .into());
    }
    Ok(path.to_path_buf())
}

/// The inputs' AppArmor profiles merged, or why not.
fn merge_apparmor(
    group: &[(String, Profile)],
    apparmor: &BTreeMap<String, Option<(String, String)>>,
) -> std::result::Result<apparmor_merge::Merged, String> {
    let texts: Vec<(String, String)> = group
        .iter()
        .filter_map(|(label, _)| apparmor.get(label)?.clone())
        .collect();
    if texts.len() < group.len() {
        return Err(format!(
            "only {} of the {} inputs {} an {APPARMOR_FILE}",
            texts.len(),
            group.len(),
            if texts.len() == 1 { "has" } else { "have" }
        ));
    }
    apparmor_merge::merge(&texts)
}

/// The name of the security-profiles-operator object: the first input's (replicas of one app
/// share it), else one made from OUT's name.
fn operator_name(out: &Path, inputs: &[PathBuf]) -> String {
    let from_input = inputs.iter().find_map(|input| {
        let text = std::fs::read_to_string(input.join(OPERATOR_FILE)).ok()?;
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("  name: "))?
            .trim();
        (!name.is_empty()).then(|| name.to_owned())
    });
    from_input.unwrap_or_else(|| {
        let base = out
            .file_name()
            .map_or("merged".into(), |n| n.to_string_lossy());
        profile_name(&base)
    })
}

/// The files a merge writes into its directory.
const WRITTEN: &[&str] = &[
    SECCOMP_FILE,
    SECCOMP_LOG_FILE,
    OPERATOR_FILE,
    MERGE_FILE,
    APPARMOR_FILE,
    APPARMOR_COMPLAIN_FILE,
];

/// A merge must not write where an input is: not into an input's output dir (the rest of it,
/// report.json and the rest, would describe another profile), nor over an input file.
fn refuse_overwriting_an_input(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out_real) = out.canonicalize() else {
        return Ok(()); // does not exist yet
    };
    for input in inputs {
        let overwritten = if input.is_dir() {
            input.canonicalize().is_ok_and(|d| d == out_real)
        } else {
            let parent = match input.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            parent.canonicalize().is_ok_and(|d| d == out_real)
                && input
                    .file_name()
                    .is_some_and(|n| WRITTEN.iter().any(|w| n == *w))
        };
        if overwritten {
            return Err(UsageError::new(
                format!(
                    "{} is where input {} is: the merge would overwrite it",
                    out.display(),
                    input.display()
                ),
                "give a new directory for OUT (`slim profile merge OUT DIR...`)",
            )
            .into());
        }
    }
    Ok(())
}

fn merge_error(err: MergeError) -> anyhow::Error {
    let hint = match &err {
        MergeError::DefaultMismatch { .. } => {
            "merge profiles of one kind: seccomp.json with seccomp.json (SCMP_ACT_ERRNO), \
             seccomp.log.json with seccomp.log.json"
        }
        MergeError::ArchMismatch { .. } => {
            "merge one architecture at a time, or pass --per-arch for one merged profile per \
             architecture in OUT/ARCH/"
        }
        _ => INPUT_HINT,
    };
    UsageError::new(format!("cannot merge: {err}"), hint).into()
}

/// Writes seccomp.json, seccomp.log.json (unless the inputs allow by default),
/// seccomp-profile.yaml (object `name`) and merge.json into `dir`; returns the names written.
fn write(dir: &Path, name: &str, merged: &Merged) -> Result<Vec<&'static str>> {
    let cannot = |err: std::io::Error| {
        UsageError::new(
            format!("cannot write into {}: {err}", dir.display()),
            "give a directory slim can create and write for OUT",
        )
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    let mut written = Vec::new();
    let mut files = vec![(SECCOMP_FILE, merged.to_docker_json())];
    if merged.default_action != "SCMP_ACT_ALLOW" {
        files.push((SECCOMP_LOG_FILE, merged.to_log_json()));
    }
    files.push((OPERATOR_FILE, merged.to_operator_yaml(name)));
    let mut report = serde_json::to_string_pretty(&merged.report())?;
    report.push('\n');
    files.push((MERGE_FILE, report));
    for (name, text) in files {
        std::fs::write(dir.join(name), text).map_err(cannot)?;
        written.push(name);
    }
    Ok(written)
}

/// One screen: what was merged, what the result allows, which calls not every input allowed,
/// and which errnos differed.
fn summary(dir: &Path, merged: &Merged, written: &[&str]) -> String {
    let n = merged.inputs.len();
    let (allowed, with_args) = merged.allowed_count();
    let refused = merged.calls.values().filter(|c| !c.allows()).count();
    let arches = match merged.architectures.join(", ") {
        a if a.is_empty() => "no architecture listed".to_owned(),
        a => a,
    };
    let mut out = format!(
        "merged {n} seccomp profile{} ({arches}) into {}\n  \
         allows {allowed} calls ({with_args} with argument rules); {refused} answered with an \
         errno rule; default {}\n",
        if n == 1 { "" } else { "s" },
        dir.display(),
        merged.default_action,
    );
    let some = merged.only_some();
    if some.is_empty() {
        out.push_str(match n {
            1 => "  one input: every allowed call was allowed by it\n",
            _ => "  every allowed call was allowed by every input\n",
        });
    } else {
        out.push_str(&format!(
            "  {} allowed by only some of the {n} inputs (how many):\n",
            some.len()
        ));
        const SHOWN: usize = 40;
        let mut line = String::from("   ");
        for (name, count) in some.iter().take(SHOWN) {
            let item = format!(" {name} ({count})");
            if line.len() + item.len() > 96 {
                out.push_str(&line);
                out.push('\n');
                line = String::from("   ");
            }
            line.push_str(&item);
        }
        out.push_str(&line);
        out.push('\n');
        if some.len() > SHOWN {
            out.push_str(&format!(
                "    ... and {} more in {MERGE_FILE}\n",
                some.len() - SHOWN
            ));
        }
    }
    for conflict in &merged.errno_conflicts {
        let others: Vec<String> = conflict
            .others
            .iter()
            .map(|(label, errno)| format!("{} in {label}", errno_name(*errno)))
            .collect();
        out.push_str(&format!(
            "  {}: answered {} as in {} (the first input naming it), not {}\n",
            conflict.name,
            errno_name(conflict.kept),
            conflict.kept_from,
            others.join(", ")
        ));
    }
    if !merged.errno_dropped.is_empty() {
        out.push_str(&format!(
            "  allowed with argument rules, otherwise answered by the default action (an input's \
             errno rule dropped): {}\n",
            merged.errno_dropped.join(", ")
        ));
    }
    out.push_str(&format!("  wrote {}\n", written.join(", ")));
    out
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
