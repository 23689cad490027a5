//! `slim profile diff`: a seccomp profile against Docker's default profile (or another profile),
//! call by call. Exit 0 when it is nowhere weaker, 1 when it allows something the reference
//! refuses, 2 for input it cannot read.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::UsageError;
use crate::{
    cli::ProfileDiffArgs,
    profiles::{
        docker_default::Capabilities,
        seccomp::diff::{self, Change, Verdicts},
    },
    syscalls::Arch,
};

pub fn run(args: ProfileDiffArgs) -> Result<ExitCode> {
    let text = read(&args.profile)?;
    let capabilities = Capabilities::of_container(&args.cap_add, &args.cap_drop);
    let arch = architecture(&args, &text)?;
    let unreadable = |file: &std::path::Path, err: diff::DiffError| {
        UsageError::new(
            format!("cannot compare {}: {err}", file.display()),
            "give a seccomp profile in Docker's JSON format (slim's seccomp.json, moby's \
             default.json)",
        )
    };
    let here = diff::verdicts_of_json(&text, arch, &capabilities)
        .map_err(|err| unreadable(&args.profile, err))?;
    let (there, reference) = match &args.against {
        Some(file) => (
            diff::verdicts_of_json(&read(file)?, arch, &capabilities)
                .map_err(|err| unreadable(file, err))?,
            file.display().to_string(),
        ),
        None => (
            diff::docker_default(arch, &capabilities),
            "Docker's default profile".to_owned(),
        ),
    };
    let differences = diff::compare(&here, &there, arch.names());
    let weaker = differences
        .iter()
        .filter(|d| d.change == Change::Weaker)
        .count();
    if args.json {
        let rows: Vec<_> = differences
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "change": d.change.describe().to_lowercase(),
                    "here": d.here.describe(),
                    "there": d.there.describe(),
                })
            })
            .collect();
        let doc = json!({
            "profile": args.profile.display().to_string(),
            "against": reference,
            "architecture": arch.to_string(),
            "weaker": weaker,
            "differences": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!(
            "{}",
            table(&args, arch, &reference, &here, &there, &differences)
        );
    }
    Ok(if weaker == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read(file: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|err| {
        UsageError::new(
            format!("cannot read {}: {err}", file.display()),
            "give the path of a seccomp profile (slim writes seccomp.json in its output dir)",
        )
        .into()
    })
}

/// `--arch`, else the profile's first architecture slim knows, else this machine's.
fn architecture(args: &ProfileDiffArgs, text: &str) -> Result<Arch> {
    if let Some(name) = &args.arch {
        return Arch::from_name(name).ok_or_else(|| {
            UsageError::new(
                format!("unknown architecture `{}`", name.escape_debug()),
                "give x86_64, aarch64, x86 or arm",
            )
            .into()
        });
    }
    let listed = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|doc| {
            doc["architectures"].as_array().and_then(|arches| {
                arches.iter().find_map(|a| {
                    let name = a.as_str()?;
                    [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm]
                        .into_iter()
                        .find(|arch| arch.scmp_arch() == name)
                })
            })
        });
    listed.or_else(Arch::host).ok_or_else(|| {
        UsageError::new(
            "cannot tell which architecture to compare on",
            "give --arch x86_64, aarch64, x86 or arm",
        )
        .into()
    })
}

/// The headline counts, then one row per differing call (weaker ones first).
fn table(
    args: &ProfileDiffArgs,
    arch: Arch,
    reference: &str,
    here: &Verdicts,
    there: &Verdicts,
    differences: &[diff::Difference],
) -> String {
    let count = |verdicts: &Verdicts| verdicts.allowed_count(arch.names());
    let ((here_allowed, here_args), (there_allowed, there_args)) = (count(here), count(there));
    let weaker = differences
        .iter()
        .filter(|d| d.change == Change::Weaker)
        .count();
    let mut out = format!(
        "{} against {reference} ({arch})\n  \
         allows {here_allowed} calls ({here_args} with argument rules); the other allows \
         {there_allowed} ({there_args} with argument rules)\n  \
         {weaker} allowed here that the other refuses, {} taken away or narrowed\n",
        args.profile.display(),
        differences.len() - weaker,
    );
    if differences.is_empty() {
        return out;
    }
    let width = differences
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "\n{:<9} {:<width$} {:<18} {}\n",
        "CHANGE", "CALL", "HERE", "THE OTHER"
    ));
    for d in differences {
        out.push_str(&format!(
            "{:<9} {:<width$} {:<18} {}\n",
            d.change.describe(),
            d.name,
            d.here.describe(),
            d.there.describe()
        ));
    }
    out
}
