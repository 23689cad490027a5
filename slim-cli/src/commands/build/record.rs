//! Phase 2: run the target under the recorder (seccomp unconfined, so every syscall it wants is
//! seen), probe it, and read the fat image from the engine meanwhile; then turn the raw events
//! into what the app touched.

use std::{
    collections::BTreeSet,
    io::IsTerminal as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    commands::{
        pipeline::{read_image, FatImage, ImageSource, ReadVia, WorkDir},
        xray::short_id,
        AppFailed, Fault, Shutdown,
    },
    engine::{ContainerEngine, RunSpec},
    image::{config::ImageConfig, tree::FileTree},
    minify::resolve::resolve,
    prober::{Plan, ProbeResult},
    recording::{FileSource, Filter, Recording},
    tracer::StartRecording,
};

use super::{
    console::Console,
    input::Input,
    inspect::Inspected,
    run::{ContinueAfter, Run, RunOutcome},
};

/// The recorded run of the target and the image it ran.
pub struct Recorded {
    pub fat_run: RunOutcome,
    pub fat: FatImage,
    pub recording: Recording,
    /// The run settings (ports published), reused to verify.
    pub spec: RunSpec,
    pub plan: Plan,
    /// The app's working directory inside the container.
    pub workdir: String,
    /// The image's environment with `--env` applied.
    pub env: Vec<String>,
    pub record_ms: u128,
    /// Starts of the image that were recorded and joined.
    pub starts: u32,
    /// Syscalls seccomp.json allows whatever Docker's default says (`--seccomp-allow`).
    pub seccomp_allow: BTreeSet<String>,
    /// How long the app gets to stop on its stop signal (`--stop-timeout`).
    pub stop_timeout: Option<Duration>,
    /// What the checks held out of the recording used on the fat image (not kept: it names
    /// what the slim image lacks when it fails them).
    pub held_out: Recording,
}

impl Recorded {
    /// The image's declared volumes (`VOLUME` in its Dockerfile).
    pub fn image_volumes(&self) -> Vec<String> {
        self.fat.image.volumes.clone()
    }

    /// The command line the container ran: entrypoint then cmd, as given or as the image says
    /// (a given entrypoint drops the image's cmd, as the engine does).
    pub fn command(&self) -> Vec<String> {
        let image = &self.fat.image;
        let entrypoint = match &self.spec.entrypoint {
            Some(given) => given.clone(),
            None => image.entrypoint.clone().unwrap_or_default(),
        };
        let cmd = match (&self.spec.cmd, &self.spec.entrypoint) {
            (Some(given), _) => given.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => image.cmd.clone().unwrap_or_default(),
        };
        entrypoint.into_iter().chain(cmd).collect()
    }

    /// Probes that answered on the fat image.
    pub fn answered(&self) -> usize {
        self.fat_run.probes.iter().filter(|p| p.ok()).count()
    }
}

/// Runs, records and probes `inspected` while its image is read into `work`.
pub async fn record<E: ContainerEngine, R: StartRecording>(
    inspected: &Inspected<E, R>,
    input: &Input,
    via: ReadVia,
    work: &WorkDir,
    shutdown: &Shutdown,
    console: Console,
) -> Result<Recorded> {
    let mut spec = input.spec.clone();
    // By id: a tag moved or removed meanwhile changes neither what runs nor what is read.
    spec.image = inspected.info.id.clone();
    spec.seccomp = Some("unconfined".into()); // blocked syscalls would never be seen
    for port in inspected.info.tcp_ports.iter().chain(&input.extra_ports) {
        if !spec.ports.contains(port) {
            spec.ports.push(*port);
        }
    }
    let mut plan = input.plan.clone();
    if input.healthcheck_probe {
        // A Compose service's healthcheck replaces its image's, as it does when it runs.
        plan.healthcheck = (input.spec.healthcheck.as_ref())
            .map(|check| check.test.as_slice())
            .or(inspected.info.healthcheck.as_deref())
            .and_then(crate::prober::healthcheck_command);
    }
    let has_probes = !plan.http.is_empty()
        || !plan.exec.is_empty()
        || !plan.tcp.is_empty()
        || plan.healthcheck.is_some()
        || (plan.default_http && !spec.ports.is_empty());
    let continue_after = match &input.continue_after {
        Some(c) => c.clone(),
        None if has_probes => ContinueAfter::Probe,
        None if std::io::stdin().is_terminal() => ContinueAfter::Enter,
        None => ContinueAfter::Timeout(Duration::from_secs(30)),
    };
    plan.default_http &= !spec.ports.is_empty();

    let started = Instant::now();
    let spin = console.phase(format!(
        "[2/7] record    running {} with the recorder attached",
        inspected.name
    ));
    let run = Run {
        engine: &inspected.engine,
        spec: spec.clone(),
        plan: &plan,
        replay: None,
        held_out: input.held_out.as_ref(),
        recorder: Some(&inspected.recorder),
        probe_wait: input.probe_wait,
        continue_after,
        shutdown,
        show_logs: input.show_logs,
        stop_timeout: input.stop_timeout,
        load_cpu: false,
        console,
        removals: Some(&inspected.removals),
        neighbours: inspected.neighbours.as_deref(),
    };
    let source = ImageSource::Engine(inspected.info.id.clone());
    let read = read_image(Some(&inspected.engine), &source, work, via);
    let (fat_run, fat) = tokio::join!(run.execute(), shutdown.unless_stopped(read));
    let fat_run = fat_run?;
    // More starts, each a fresh container probed the same way: calls made only on some
    // schedules are more likely seen once.
    let mut more_starts = Vec::new();
    for _ in 1..input.record_starts {
        let again = Run {
            engine: &inspected.engine,
            spec: spec.clone(),
            plan: &plan,
            replay: None,
            held_out: None,
            recorder: Some(&inspected.recorder),
            probe_wait: input.probe_wait,
            continue_after: ContinueAfter::Probe,
            shutdown,
            show_logs: input.show_logs,
            stop_timeout: input.stop_timeout,
            load_cpu: false,
            console,
            removals: Some(&inspected.removals),
            neighbours: inspected.neighbours.as_deref(),
        };
        more_starts.push(again.execute().await?);
    }
    spin.done();
    let mut fat = fat.map_err(|err| read_failed(inspected, err))?;
    fat.name = inspected.name.clone();
    say_if_moved(inspected).await;
    let record_ms = started.elapsed().as_millis();

    let raw = fat_run.recording.as_ref().expect("recorded");
    let workdir = spec
        .workdir
        .clone()
        .or_else(|| fat.image.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let mut recording = Recording::build(raw, &Filter::started_container(fat_run.mntns, &workdir));
    for start in &more_starts {
        if let Some(raw) = &start.recording {
            recording.merge(Recording::build(
                raw,
                &Filter::started_container(start.mntns, &workdir),
            ));
        }
    }
    recording.add_interpreters(&TreeFiles(&fat.tree));
    let held_out = Recording::build(
        &raw.held_out(),
        &Filter::running_container(fat_run.mntns, &workdir),
    );
    let env = image_env(&fat.image, &spec.env);
    let mut recorded = Recorded {
        fat_run,
        fat,
        recording,
        spec,
        plan,
        workdir,
        env,
        record_ms,
        starts: 1 + more_starts.len() as u32,
        seccomp_allow: input.seccomp_allow.clone(),
        held_out,
        stop_timeout: input.stop_timeout,
    };
    let starts = match recorded.starts {
        1 => String::new(),
        n => format!(" over {n} starts"),
    };
    let stop = if recorded.fat_run.stopped_gracefully {
        "; its stop recorded"
    } else {
        ""
    };
    console.say(format!(
        "      probes    {}/{} answered; recorder {} events, {} lost{starts}{stop}",
        recorded.answered(),
        recorded.fat_run.probes.len(),
        raw_stats(&recorded).0,
        raw_stats(&recorded).1,
    ));
    check_probes(&mut recorded.fat_run.probes)?;
    if recorded.recording.stats.lost > 0 {
        tracing::warn!(
            "the recorder lost {} events: the slim image may miss files",
            recorded.recording.stats.lost
        );
    }
    Ok(recorded)
}

/// A failed read of an image that is gone meanwhile is that, not a broken read.
fn read_failed<E, R>(inspected: &Inspected<E, R>, err: anyhow::Error) -> anyhow::Error {
    let gone = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::engine::EngineError>(),
            Some(crate::engine::EngineError::NoSuchImage(_))
        )
    });
    if !gone {
        return err;
    }
    Fault::new(
        format!(
            "the fat image {} ({}) was removed while slim read it",
            inspected.name,
            short_id(&inspected.info.id)
        ),
        "keep the image until slim finishes (nothing was written), then rerun",
    )
    .into()
}

/// Warns when the target's name no longer names the image that was inspected (retagged or
/// removed while slim ran): what was slimmed is the image inspected at the start.
async fn say_if_moved<E: ContainerEngine, R>(inspected: &Inspected<E, R>) {
    let now = match inspected.engine.image(&inspected.name).await {
        Ok(info) if info.id == inspected.info.id => return,
        Ok(info) => format!("now names another image ({})", short_id(&info.id)),
        Err(crate::engine::EngineError::NoSuchImage(_)) => "was removed".to_owned(),
        Err(_) => return, // the engine's trouble shows where it matters
    };
    tracing::warn!(
        "{} {now} while slim read it: slimming the image inspected at the start ({})",
        inspected.name,
        short_id(&inspected.info.id)
    );
}

/// A probe that fails on the fat image verifies nothing: the user's probes must all succeed
/// there (an HTTP status such as 404 is an answer), or the build stops before anything is
/// written; slim's own guesses (GET / on an exposed port that does not speak HTTP) are dropped
/// with a warning.
fn check_probes(probes: &mut Vec<ProbeResult>) -> Result<()> {
    probes.retain(|p| {
        let keep = p.ok() || !p.guessed;
        if !keep {
            tracing::warn!(
                "default probe {} got no answer on the fat image ({}): not used to verify; \
                 give probes (--http-probe-cmd-file, --exec, --tcp-probe) or --http-probe-off",
                p.name,
                describe(p)
            );
        }
        keep
    });
    let Some(failed) = probes.iter().find(|p| !p.ok()) else {
        return Ok(());
    };
    let output = failed
        .output
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            let lines: Vec<String> = o.lines().map(|l| format!("\n  | {l}")).collect();
            format!("; its output:{}", lines.concat())
        })
        .unwrap_or_default();
    Err(AppFailed {
        message: format!(
            "probe `{}` failed on the fat image: {}{output}",
            failed.name,
            describe(failed)
        ),
        hint: "fix or drop the probe, or the app if it stopped answering: slim verifies only \
               with probes the original image answers (an HTTP status such as 404 is an answer)"
            .into(),
    }
    .into())
}

fn raw_stats(recorded: &Recorded) -> (u64, u64) {
    let stats = recorded.recording.stats;
    (stats.events, stats.lost)
}

/// Reads executables' heads from the image tree (following symlinks inside it).
pub struct TreeFiles<'a>(pub &'a FileTree);

impl FileSource for TreeFiles<'_> {
    fn head(&self, path: &Path, len: usize) -> Option<Vec<u8>> {
        let target = resolve(self.0, path).target?;
        self.0.read(&target, len as u64)
    }
}

/// One probe's answer in a few words.
pub fn describe(probe: &ProbeResult) -> String {
    match (&probe.error, probe.status, probe.exit_code) {
        (Some(error), _, _) => error.clone(),
        (None, Some(status), _) => format!("HTTP {status}, {} bytes", probe.bytes),
        (None, None, Some(code)) => format!("exit code {code}, {} bytes of output", probe.bytes),
        _ => format!("{} bytes", probe.bytes),
    }
}

/// The container's environment: the image's `Env` overridden by `--env`.
fn image_env(image: &ImageConfig, overrides: &[String]) -> Vec<String> {
    let mut env = image.env.clone();
    for entry in overrides {
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    env
}
