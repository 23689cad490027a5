//! Phase 6: run the checked image (the slim one, or the target for `slim profile`) with the same
//! settings under its seccomp profile, replay the probes, and compare every answer. When one
//! differs, say what the slim run missed: paths it looked for that were dropped, syscalls the
//! profile denied (a denied call still reaches the recorder's sys_exit).

use std::time::Duration;

use anyhow::Result;

use crate::{
    commands::{
        report::{Mismatch, Verify},
        Interrupted, Shutdown,
    },
    engine::{ContainerEngine, ContainerState},
    image::tree::{FileTree, Kind},
    minify::{resolve::resolve, KeepSet},
    prober::{ProbeKind, ProbeResult},
    profiles::seccomp::SeccompProfile,
    recording::{Filter, Recording},
    tracer::StartRecording,
};

use super::{
    console::Console,
    inspect::Inspected,
    profiles::APPARMOR_FILE,
    record::{describe, Recorded},
    run::{ContinueAfter, Run, RunOutcome},
};

/// What is verified and how.
pub struct Check<'a> {
    /// The image to run.
    pub image: &'a str,
    /// Its name on the console.
    pub shown: &'a str,
    /// Run it under this profile (written as `file` in the output dir).
    pub seccomp: Option<(&'a SeccompProfile, &'a str)>,
    /// And under this AppArmor profile, loaded into the kernel (its name).
    pub apparmor: Option<&'a str>,
    /// The slim image's selection from the fat tree, to name missing paths.
    pub selection: Option<(&'a FileTree, &'a KeepSet)>,
}

/// Runs the check `starts` times (every start after the first with the CPU kept busy), stopping
/// at the first start that fails; errors only when interrupted or when the engine is gone, a
/// failed start is a failed verification.
pub async fn verify<E: ContainerEngine, R: StartRecording>(
    inspected: &Inspected<E, R>,
    recorded: &Recorded,
    check: Check<'_>,
    (probe_wait, starts): (Duration, u32),
    shutdown: &Shutdown,
    console: Console,
) -> Result<Verify> {
    let under_files: Vec<&str> = check
        .seccomp
        .map(|(_, file)| file)
        .into_iter()
        .chain(check.apparmor.map(|_| APPARMOR_FILE))
        .collect();
    let under = match under_files.is_empty() {
        true => String::new(),
        false => format!(" under {}", under_files.join(" and ")),
    };
    let times = match starts {
        0 | 1 => String::new(),
        n => format!(", {n} starts ({} with the CPU loaded)", n - 1),
    };
    let spin = console.phase(format!(
        "[6/7] verify    replaying {} probes against {}{under}{times}",
        recorded.fat_run.probes.len(),
        check.shown
    ));
    let mut verify = Verify::default();
    for start in 1..=starts.max(1) {
        let loaded = start > 1;
        let mut this = verify_start(
            inspected, recorded, &check, probe_wait, loaded, shutdown, console,
        )
        .await?;
        verify.starts += 1;
        verify.loaded_starts += u32::from(loaded);
        if start == 1 {
            let (starts, loaded_starts) = (verify.starts, verify.loaded_starts);
            verify = Verify {
                starts,
                loaded_starts,
                ..this
            };
        } else {
            for mismatch in &mut this.failed {
                mismatch.name = format!("start {start} (CPU loaded): {}", mismatch.name);
            }
            verify.failed.append(&mut this.failed);
            extend_unique(&mut verify.missing_paths, this.missing_paths);
            extend_unique(&mut verify.denied_syscalls, this.denied_syscalls);
        }
        if !verify.failed.is_empty() {
            break;
        }
    }
    spin.done();
    if let (false, Some((tree, keep))) = (verify.failed.is_empty(), check.selection) {
        // What the held-out checks used on the fat image: a runtime that cached a directory
        // listing never even looks for the file it lacks in the slim one.
        extend_unique(
            &mut verify.missing_paths,
            used_and_dropped(tree, keep, &recorded.held_out),
        );
    }
    verify
        .under
        .extend(under_files.iter().map(|f| f.to_string()));
    Ok(verify)
}

fn extend_unique(list: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// One start of the checked image: replay the probes and compare; name what the slim run
/// missed and what its profile denied (also when it did not even start).
async fn verify_start<E: ContainerEngine, R: StartRecording>(
    inspected: &Inspected<E, R>,
    recorded: &Recorded,
    check: &Check<'_>,
    probe_wait: Duration,
    load_cpu: bool,
    shutdown: &Shutdown,
    console: Console,
) -> Result<Verify> {
    // With no probes, the check is that it starts and stays up as the original did.
    let no_probes = recorded.fat_run.probes.is_empty();
    let fat_ran = Duration::from_millis(recorded.fat_run.ran_ms as u64);
    let fat_exited = recorded
        .fat_run
        .state_at_end
        .as_ref()
        .is_some_and(|s| !s.running);
    // Up to as long as the original ran (at most NO_PROBE_RUN), or, if it ended by itself,
    // until this one ends too (with some slack).
    let stay_up = match fat_exited {
        true => fat_ran + NO_PROBE_SLACK,
        false => fat_ran.min(NO_PROBE_RUN),
    };
    let mut spec = recorded.spec.clone();
    spec.image = check.image.to_owned();
    spec.seccomp = check.seccomp.map(|(profile, _)| profile.to_docker_json());
    spec.apparmor = check.apparmor.map(str::to_owned);
    let run = Run {
        engine: &inspected.engine,
        spec,
        plan: &recorded.plan,
        replay: Some(&recorded.fat_run.probes),
        held_out: None,
        recorder: Some(&inspected.recorder),
        probe_wait,
        continue_after: match no_probes {
            true => ContinueAfter::Timeout(stay_up),
            false => ContinueAfter::Probe,
        },
        shutdown,
        show_logs: false,
        // Stopped as the original was, when it stopped on its stop signal: the exit code it
        // ends with is compared too.
        stop_timeout: recorded
            .stop_timeout
            .filter(|_| recorded.fat_run.stopped_gracefully),
        load_cpu,
        console,
        removals: Some(&inspected.removals),
        neighbours: inspected.neighbours.as_deref(),
    };
    let (mut verify, raw, mntns) = match run.execute().await {
        Ok(outcome) => {
            let mut verify = compare(&recorded.fat_run.probes, &outcome.probes);
            if no_probes {
                ran_like(&recorded.fat_run, &outcome, stay_up, &mut verify);
            }
            if recorded.fat_run.stopped_gracefully {
                stopped_like(&recorded.fat_run, &outcome, &mut verify);
            }
            (verify, outcome.recording, outcome.mntns)
        }
        // Stopped, or the engine gone: that says nothing about the image.
        Err(failure)
            if failure.error.downcast_ref::<Interrupted>().is_some()
                || crate::commands::fault_hint(&failure.error).is_some() =>
        {
            return Err(failure.error)
        }
        Err(failure) => (
            Verify {
                probes: recorded.fat_run.probes.len(),
                failed: vec![Mismatch {
                    name: "start".into(),
                    fat: "started and answered".into(),
                    slim: format!("{:#}", failure.error),
                }],
                ..Default::default()
            },
            failure.recording,
            failure.mntns,
        ),
    };
    let Some(raw) = raw.filter(|_| mntns != 0) else {
        return Ok(verify);
    };
    if let Some((tree, keep)) = check.selection {
        // Every phase: the runtime's own lookups (the program of an exec probe) count.
        let everything =
            Recording::build(&raw, &Filter::running_container(mntns, &recorded.workdir));
        verify.missing_paths = missing_paths(tree, keep, &everything);
    }
    if let Some((profile, _)) = check.seccomp {
        let recording =
            Recording::build(&raw, &Filter::started_container(mntns, &recorded.workdir));
        verify.denied_syscalls = recording
            .names_of(&recording.app_syscalls)
            .into_iter()
            .filter(|name| !profile.allowed.contains_key(name))
            // Answered with an errno on purpose (clone3's ENOSYS, a call that only failed
            // while recorded): the app saw the same answer while recorded.
            .filter(|name| {
                !profile.enosys.contains(name) && !profile.answered_failed.contains_key(name)
            })
            .collect();
    }
    Ok(verify)
}

/// Longest a check with no probes runs to see that it stays up like the original.
const NO_PROBE_RUN: Duration = Duration::from_secs(10);
/// How much longer than the original a checked image that should end by itself may take.
const NO_PROBE_SLACK: Duration = Duration::from_secs(5);

/// For a run with no probes: the checked container must be as the original was after the same
/// time (still running, or exited by itself with the same code).
fn ran_like(fat: &RunOutcome, checked: &RunOutcome, ran: Duration, verify: &mut Verify) {
    let seconds = Duration::from_millis(checked.ran_ms as u64)
        .min(ran)
        .as_secs()
        .max(1);
    let describe = |state: Option<&ContainerState>| match state {
        Some(s) if s.running => format!("running after {seconds} s"),
        Some(s) => format!("exited with code {} within {seconds} s", s.exit_code),
        None => "gone".to_owned(),
    };
    let same = match (&fat.state_at_end, &checked.state_at_end) {
        (Some(f), Some(c)) => f.running == c.running && (f.running || f.exit_code == c.exit_code),
        _ => false,
    };
    if same {
        verify.ran_like_original_s = Some(seconds);
    } else {
        verify.failed.push(Mismatch {
            name: "start (no probes)".into(),
            fat: describe(fat.state_at_end.as_ref()),
            slim: describe(checked.state_at_end.as_ref()),
        });
    }
}

/// For an original that stopped on its stop signal: the checked container must stop on it
/// too, with the same exit code (a shutdown path that lost a file fails here).
fn stopped_like(fat: &RunOutcome, checked: &RunOutcome, verify: &mut Verify) {
    let describe = |run: &RunOutcome| match (run.stopped_gracefully, run.exit_after_stop) {
        (true, Some(code)) => format!("stopped on its stop signal, exit code {code}"),
        (true, None) => "stopped on its stop signal".to_owned(),
        (false, _) => "did not stop on its stop signal".to_owned(),
    };
    let same = checked.stopped_gracefully && checked.exit_after_stop == fat.exit_after_stop;
    match same {
        true => verify.stopped_like_original = true,
        false => verify.failed.push(Mismatch {
            name: "stop".into(),
            fat: describe(fat),
            slim: describe(checked),
        }),
    }
}

/// Compares each probe's answers: status (and the body's shape when the fat app gave a body of
/// the same shape twice), exit codes, and that TCP probes still get through.
pub fn compare(fat: &[ProbeResult], slim: &[ProbeResult]) -> Verify {
    let mut verify = Verify {
        probes: fat.len(),
        ..Default::default()
    };
    for (f, s) in fat.iter().zip(slim) {
        let body_changed = f.stable_body && f.shape_sha256 != s.shape_sha256;
        let same = match f.kind {
            ProbeKind::Http => f.status == s.status && !body_changed,
            ProbeKind::Exec => f.exit_code == s.exit_code && f.error.is_none() == s.error.is_none(),
            ProbeKind::Tcp => f.error.is_none() == s.error.is_none(),
        };
        if same {
            verify.matched += 1;
            continue;
        }
        let describe_body =
            |p: &ProbeResult| match (&p.body_head, body_changed && f.status == s.status) {
                (Some(head), true) => format!("{}: {head}", describe(p)),
                _ => describe(p),
            };
        verify.failed.push(Mismatch {
            name: f.name.clone(),
            fat: describe_body(f),
            slim: describe_body(s),
        });
    }
    verify
}

/// Paths the slim run looked for and missed that the fat image has: what `--include-path`
/// would fix.
fn missing_paths(tree: &FileTree, keep: &KeepSet, recording: &Recording) -> Vec<String> {
    recording
        .paths
        .iter()
        .filter(|(_, t)| !t.found())
        .filter_map(|(path, _)| {
            let target = resolve(tree, path).target?;
            (!keep.paths.contains_key(&target)).then(|| path.display().to_string())
        })
        .collect()
}

/// Files (and symlinks) `recording` found in the fat image that the slim image does not keep.
/// Directories are left out: naming one would keep all of it, its files are named themselves.
fn used_and_dropped(tree: &FileTree, keep: &KeepSet, recording: &Recording) -> Vec<String> {
    recording
        .paths
        .iter()
        .filter(|(_, t)| t.found())
        .filter(|(path, _)| {
            let resolved = resolve(tree, path);
            let Some(target) = resolved.target else {
                return false;
            };
            let is_dir = tree
                .entries
                .get(&target)
                .is_some_and(|e| matches!(e.kind, Kind::Dir));
            !is_dir
                && (!keep.paths.contains_key(&target)
                    || resolved
                        .links
                        .iter()
                        .any(|link| !keep.paths.contains_key(link)))
        })
        .map(|(path, _)| path.display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::prober::body_shape;

    fn answer(body: &str, stable: bool) -> ProbeResult {
        let mut probe = ProbeResult::new(ProbeKind::Http, "GET http://:8080/".into());
        probe.status = Some(200);
        probe.bytes = body.len() as u64;
        probe.shape_sha256 = Some(String::from_utf8(body_shape(body.as_bytes())).unwrap());
        probe.body_head = Some(body.into());
        probe.stable_body = stable;
        probe
    }

    #[test]
    fn what_held_out_checks_used_and_the_slim_image_lacks_is_named() {
        use crate::{
            image::tree::Entry,
            minify::{Kept, Reason, Why},
            recording::Use,
        };
        let mut tree = FileTree::default();
        for (path, kind, link) in [
            ("lib", Kind::Symlink, Some("usr/lib")),
            ("usr", Kind::Dir, None),
            ("usr/lib", Kind::Dir, None),
            ("usr/lib/json", Kind::Dir, None),
            ("usr/lib/json/__init__.py", Kind::File, None),
            ("usr/lib/json/decoder.py", Kind::File, None),
            ("usr/lib/json/tool.py", Kind::File, None),
        ] {
            tree.entries
                .insert(PathBuf::from(path), Entry::bare(kind, link));
        }
        let mut keep = KeepSet::default();
        for path in ["lib", "usr/lib/json/__init__.py"] {
            let kept = Kept {
                reason: Reason::Opened,
                why: Why::Touched {
                    uses: vec![Use::Read],
                    count: 1,
                },
            };
            keep.paths.insert(PathBuf::from(path), kept);
        }
        let mut held_out = Recording::default();
        for (path, found) in [
            ("/lib/json", true),             // a directory: its files are named instead
            ("/lib/json/__init__.py", true), // kept
            ("/lib/json/decoder.py", true),  // used and dropped
            ("/lib/json/scanner.py", false), // not in the image either
            ("/proc/self/status", true),     // not in the image
        ] {
            let touched = held_out.paths.entry(PathBuf::from(path)).or_default();
            let uses: &mut std::collections::BTreeSet<Use> = match found {
                true => &mut touched.ok,
                false => &mut touched.failed,
            };
            uses.insert(Use::Read);
        }
        assert_eq!(
            used_and_dropped(&tree, &keep, &held_out),
            ["/lib/json/decoder.py"]
        );
        // Reached through a symlink the slim image dropped: named too.
        keep.paths.remove(&PathBuf::from("lib"));
        assert_eq!(
            used_and_dropped(&tree, &keep, &held_out),
            ["/lib/json/__init__.py", "/lib/json/decoder.py"]
        );
    }

    #[test]
    fn a_changed_clock_matches_and_an_error_page_does_not() {
        let fat = [answer(r#"{"time":"2026-12-04T14:50:01+00:00"}"#, true)];
        let later = [answer(r#"{"time":"2026-12-04T14:50:07+00:00"}"#, true)];
        assert_eq!(compare(&fat, &later).matched, 1);

        let error = [answer(
            "Fatal error: Uncaught Error: Call to undefined function",
            true,
        )];
        let verify = compare(&fat, &error);
        assert_eq!(verify.matched, 0);
        assert!(
            verify.failed[0].slim.contains("Fatal error"),
            "{:?}",
            verify.failed
        );

        // A body that changes shape on its own is not compared: only the status is.
        let random = [answer("token abc", false)];
        assert_eq!(compare(&random, &error).matched, 1);
        let mut failed = error.clone();
        failed[0].status = Some(500);
        assert_eq!(compare(&random, &failed).matched, 0);
    }
}
