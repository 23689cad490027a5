//! Printing a recording: a table for people, JSON for programs, and a warning when it is
//! incomplete.

use std::io::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::recording::Recording;

/// Warns on stderr when the recording lost events: it must never look complete.
pub fn warn_if_incomplete(recording: &Recording) {
    let lost = recording.stats.lost;
    if lost > 0 {
        tracing::warn!("{lost} events were lost (ring buffer full): this recording is incomplete");
    }
}

/// The recording as JSON on stdout, with `head` fields first.
pub fn print_json(recording: &Recording, head: serde_json::Value) -> Result<()> {
    let paths: Vec<_> = recording
        .paths
        .iter()
        .map(|(path, t)| {
            json!({
                "path": path.to_string_lossy(),
                "found": t.found(),
                "uses": t.ok,
                "failed": t.failed,
                "count": t.count,
            })
        })
        .collect();
    let mut out = head;
    let extra = json!({
        "arch": recording.arch.map(|a| a.to_string()),
        "paths": paths,
        "execs": recording.execs.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "syscalls": recording.syscall_names(),
        "recorder": {
            "events": recording.stats.events,
            "lost": recording.stats.lost,
            "deduped": recording.stats.deduped,
            "truncated": recording.stats.truncated,
            "read_failed": recording.stats.read_failed,
            "unresolved": recording.unresolved,
            "kernel_offsets": recording.offsets_source,
            "complete": recording.stats.lost == 0,
        },
    });
    if let (Some(out), serde_json::Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}

/// The recording as a table on stdout: uses, count, path; then the syscall names.
pub fn print_table(recording: &Recording, missing: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let found: Vec<_> = recording.paths.iter().filter(|(_, t)| t.found()).collect();
    let not_found = recording.paths.len() - found.len();
    writeln!(
        out,
        "PATHS ({} found, {not_found} looked up but missing{})",
        found.len(),
        if missing || not_found == 0 {
            ""
        } else {
            ": --missing lists them"
        }
    )?;
    let uses = |set: &std::collections::BTreeSet<crate::recording::Use>| {
        set.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
    };
    for (path, touched) in &found {
        writeln!(
            out,
            "  {:<24} {:>6}  {}",
            uses(&touched.ok),
            touched.count,
            path.display()
        )?;
    }
    if missing {
        writeln!(out, "MISSING")?;
        for (path, touched) in recording.paths.iter().filter(|(_, t)| !t.found()) {
            writeln!(
                out,
                "  {:<24} {:>6}  {}",
                uses(&touched.failed),
                touched.count,
                path.display()
            )?;
        }
    }
    let names = recording.syscall_names();
    let arch = recording.arch.map(|a| a.to_string()).unwrap_or_default();
    writeln!(out, "SYSCALLS ({arch}, {})", names.len())?;
    for chunk in names.chunks(8) {
        writeln!(out, "  {}", chunk.join(" "))?;
    }
    let s = &recording.stats;
    writeln!(
        out,
        "RECORDER  {} events, {} lost, {} repeats folded in the kernel{}",
        s.events,
        s.lost,
        s.deduped,
        if recording.unresolved > 0 {
            format!(
                ", {} relative paths with an unknown base",
                recording.unresolved
            )
        } else {
            String::new()
        }
    )?;
    Ok(())
}
