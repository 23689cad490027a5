//! One run of an image for `slim build`: create the container, record it from its first exec,
//! wait until its ports answer, probe it (or replay earlier probes), wait for `--continue-after`,
//! and always remove the container, also on errors and Ctrl-C.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    engine::{ContainerEngine, Engine, RunSpec},
    prober::{self, http, Plan, ProbeResult, Scheme, Target},
    tracer::{mount_namespace, EbpfRecorder, RawRecording, RecordingSession, StartRecording},
};

use crate::commands::{Interrupted, Shutdown};

use super::{console::Console, cpu_load::CpuLoad};

/// Longest wait for a published port that no probe uses.
const SOFT_PORT_WAIT: Duration = Duration::from_secs(15);

/// When recording stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContinueAfter {
    Probe,
    Timeout(Duration),
    Signal,
    Enter,
}

impl ContinueAfter {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            // docker-slim's `exec` (after the exec probes) is when the probes are done here.
            "probe" | "exec" => Some(Self::Probe),
            "signal" => Some(Self::Signal),
            "enter" => Some(Self::Enter),
            // docker-slim's `timeout` is its default of 60 s, a bare number seconds.
            "timeout" => Some(Self::Timeout(Duration::from_secs(60))),
            other => other
                .strip_prefix("timeout:")
                .unwrap_or(other)
                .parse()
                .ok()
                .map(|s| Self::Timeout(Duration::from_secs(s))),
        }
    }
}

/// Why the app could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the container exited with code {code} before it was ready; its last lines:\n{logs}")]
    Exited { code: i64, logs: String },
    #[error("container port {port} did not answer within {seconds}s (--probe-wait): is the app listening on it, on 0.0.0.0?")]
    NotReady { port: u16, seconds: u64 },
    #[error("the container exited with code {code} during the probes (probe `{probe}` got no answer); its last lines:\n{logs}")]
    ExitedWhileProbed {
        code: i64,
        probe: String,
        logs: String,
    },
    #[error("the container exited with code {code} before slim could tell its processes from others' (slim records apps that keep running while they are probed); its last lines:\n{logs}")]
    ExitedUnseen { code: i64, logs: String },
}

/// What a run produced.
pub struct RunOutcome {
    pub probes: Vec<ProbeResult>,
    pub recording: Option<RawRecording>,
    /// The container's mount namespace (what the recording is filtered to).
    pub mntns: u32,
    pub ready_ms: u128,
    pub probe_ms: u128,
    /// Whether the app was stopped with its stop signal while recorded (it handles it).
    pub stopped_gracefully: bool,
    /// From the start to the end of the probes and the wait after them, and how the container
    /// was then (running, or exited with a code): what a run with no probes is compared by.
    pub ran_ms: u128,
    pub state_at_end: Option<crate::engine::ContainerState>,
    /// The exit code it ended with when stopped with its stop signal (`stopped_gracefully`).
    pub exit_after_stop: Option<i64>,
}

/// A run that failed, with what the recorder saw until then (to name what a profile denied).
pub struct RunFailure {
    pub error: anyhow::Error,
    pub recording: Option<RawRecording>,
    pub mntns: u32,
}

impl From<RunFailure> for anyhow::Error {
    fn from(failure: RunFailure) -> Self {
        failure.error
    }
}

/// What a run holds until it ends, kept by [`Run::execute`] so a failure still has it.
struct Progress<S> {
    recorder: Option<S>,
    mntns: u32,
}

impl<S> Default for Progress<S> {
    fn default() -> Self {
        Self {
            recorder: None,
            mntns: 0,
        }
    }
}

/// How to run and probe: through an engine (Docker's API, or a fake in tests), recorded by a
/// recorder (the eBPF one, or a scripted fake) when one is given.
pub struct Run<'a, E: ContainerEngine = Engine, R: StartRecording = EbpfRecorder> {
    pub engine: &'a E,
    /// Record the run with it (`None`: run and probe only).
    pub recorder: Option<&'a R>,
    pub spec: RunSpec,
    pub plan: &'a Plan,
    /// Replay these probes instead of running the plan afresh.
    pub replay: Option<&'a [ProbeResult]>,
    /// Checks run after the recording stopped (not replayed: a replay repeats them anyway).
    pub held_out: Option<&'a Plan>,
    pub probe_wait: Duration,
    pub continue_after: ContinueAfter,
    pub shutdown: &'a Shutdown,
    /// Copy the container's output to stderr while it runs (`--show-clogs`).
    pub show_logs: bool,
    /// Record the app's stop: its stop signal, waiting this long before the engine kills it.
    pub stop_timeout: Option<Duration>,
    /// Keep every CPU busy from the start until the probes are done (a start under load).
    pub load_cpu: bool,
    pub console: Console,
    /// Remove the container in the background, the next run and the build's end waiting for
    /// it (`None`: before the run returns).
    pub removals: Option<&'a Removals>,
    /// Start these Compose services beside it (fresh for this run), on a network of its own.
    pub neighbours: Option<&'a super::neighbours::Neighbours>,
}

/// Container removals left to finish in the background: nothing the build's result waits for,
/// but the build waits for them all before it exits, on every path.
#[derive(Clone, Default)]
pub struct Removals(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Removals {
    fn push(&self, removal: tokio::task::JoinHandle<()>) {
        if let Ok(mut pending) = self.0.lock() {
            pending.push(removal);
        }
    }

    /// Waits until every removal started so far is done.
    pub async fn wait(&self) {
        let pending = match self.0.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        for removal in pending {
            let _ = removal.await;
        }
    }
}

/// Removes container `id`, saying so when it cannot be.
async fn remove<E: ContainerEngine>(engine: &E, id: &str) {
    if let Err(err) = engine.remove_container(id).await {
        tracing::warn!(
            "container {} is left behind ({err}); the next slim run or `slim prune` removes \
             it once the engine answers",
            &id[..id.len().min(12)]
        );
    }
}

/// The exit code of a process killed by SIGKILL (128 + 9), as the engine reports it.
const EXIT_KILLED: i64 = 137;

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<E: ContainerEngine, R: StartRecording> Run<'_, E, R> {
    pub async fn execute(mut self) -> Result<RunOutcome, RunFailure> {
        let mut progress = Progress::default();
        // The last run's container is gone first: its removal waits for an engine that stopped
        // answering, and this run would only fail on it meanwhile.
        if let Some(removals) = self.removals {
            removals.wait().await;
        }
        // The neighbours run before the recorder attaches: their processes are not the app's.
        let mut set_up = super::neighbours::SetUp::default();
        if let Some(neighbours) = self.neighbours {
            let up = neighbours
                .up(self.engine, &mut self.spec, &mut set_up, self.shutdown)
                .await;
            if let Err(err) = up {
                super::neighbours::tear_down(self.engine, set_up).await;
                return Err(failure(err, progress));
            }
        }
        // Attach before the container exists, so its first exec is seen.
        if let Some(recorder) = self.recorder {
            match recorder.start() {
                Ok(session) => progress.recorder = Some(session),
                Err(err) => {
                    super::neighbours::tear_down(self.engine, set_up).await;
                    return Err(failure(err.into(), progress));
                }
            }
        }
        let id = match self.engine.create_container(&self.spec).await {
            Ok(id) => id,
            Err(err) => {
                super::neighbours::tear_down(self.engine, set_up).await;
                return Err(failure(err.into(), progress));
            }
        };
        let outcome = tokio::select! {
            outcome = self.inside(&id, &mut progress) => outcome,
            _ = self.shutdown.requested() => Err(Interrupted.into()),
        };
        let outcome = outcome.map_err(|error| failure(error, std::mem::take(&mut progress)));
        match self.removals {
            Some(removals) => {
                let engine = self.engine.clone();
                removals.push(tokio::spawn(async move {
                    remove(&engine, &id).await;
                    super::neighbours::tear_down(&engine, set_up).await;
                }));
            }
            None => {
                remove(self.engine, &id).await;
                super::neighbours::tear_down(self.engine, set_up).await;
            }
        }
        outcome
    }

    async fn inside(&self, id: &str, progress: &mut Progress<R::Session>) -> Result<RunOutcome> {
        let started_at = Instant::now();
        let load = self.load_cpu.then(CpuLoad::start);
        let started = self.engine.start_container(id).await?;
        let _logs = self.show_logs.then(|| {
            let engine = self.engine.clone();
            let id = id.to_owned();
            AbortOnDrop(tokio::spawn(async move { engine.stream_logs(&id).await }))
        });
        let state = self.engine.container_state(id).await?;
        let init_pid = state.pid;
        if state.pid != 0 {
            if let Ok(ns) = mount_namespace(&state.pid.to_string()) {
                progress.mntns = ns;
                if let Some(recorder) = progress.recorder.as_mut() {
                    recorder.lock_to_mntns(ns)?;
                }
            }
        }
        let ports_to_check = self.ports_to_check(&started.ports);
        self.wait_ready(id, &started.ports, started.ip.as_deref(), &ports_to_check)
            .await?;
        let ready_ms = started_at.elapsed().as_millis();
        if progress.mntns == 0 && progress.recorder.is_some() && self.replay.is_none() {
            // It exited (cleanly) before its namespace could be read: which of the namespaces
            // seen is its own cannot be told, so the recording would be empty or another's.
            // (A checked image that exits as fast is compared by its probes alone.)
            let state = self.engine.container_state(id).await?;
            let logs = self.engine.logs_tail(id, 40).await;
            return Err(RunError::ExitedUnseen {
                code: state.exit_code,
                logs: indent(&logs),
            }
            .into());
        }

        let probing = Instant::now();
        let engine = self.engine.clone();
        let container = id.to_owned();
        let exec = move |command: String| {
            let engine = engine.clone();
            let container = container.clone();
            Box::pin(async move {
                engine
                    .exec(&container, &command)
                    .await
                    .map_err(|e| e.to_string())
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        };
        let target = Target {
            host: "127.0.0.1",
            ports: &started.ports,
            exec: &exec,
        };
        let probes = match self.replay {
            Some(earlier) => prober::replay(self.plan, earlier, &target).await,
            None => prober::run(self.plan, &target).await,
        };
        let probe_ms = probing.elapsed().as_millis();
        drop(load);
        if self.replay.is_none() {
            // The app died under the probes: say so, not that the probes were wrong.
            if let Some(failed) = probes.iter().find(|p| !p.ok()) {
                let state = self.engine.container_state(id).await?;
                if !state.running {
                    let logs = self.engine.logs_tail(id, 40).await;
                    return Err(RunError::ExitedWhileProbed {
                        code: state.exit_code,
                        probe: failed.name.clone(),
                        logs: indent(&logs),
                    }
                    .into());
                }
            }
        }
        let phase = match self.replay {
            Some(_) => "verify",
            None => "record",
        };
        crate::commands::hold(phase, self.shutdown).await?;
        self.wait_continue(id).await?;
        let ran_ms = started_at.elapsed().as_millis();
        let state_at_end = self.engine.container_state(id).await.ok();
        let mut probes = probes;
        let mut stopped_gracefully = false;
        let mut exit_after_stop = None;
        if let Some(recorder) = progress.recorder.as_mut() {
            // What its threads wait in now (a call entered long ago is marked at entry too).
            recorder.note_in_flight(progress.mntns);
            if let (Some(held_out), None) = (self.held_out, self.replay) {
                // Checks held out of the recording: what they use is filed apart (to name
                // what the slim image lacks if it fails them), not kept.
                recorder.hold_out(true)?;
                probes.extend(held_out_checks(held_out, &target).await);
                recorder.hold_out(false)?;
            }
            if let Some(timeout) = self.stop_timeout {
                let stopping = Instant::now();
                if let Some(ending) = self.stop_recorded(id, init_pid, timeout).await {
                    let code = self
                        .engine
                        .container_state(id)
                        .await
                        .ok()
                        .map(|s| s.exit_code);
                    // Killed when the timeout ran out, or once its init had dropped its
                    // handler and gone idle, it did not stop on its signal: an init whose
                    // handler re-raises the signal to its default action, which a namespace's
                    // pid 1 ignores (node does). Verification then does not wait for a stop
                    // that never comes.
                    let killed = code == Some(EXIT_KILLED)
                        && (ending == StopEnding::KilledIgnored || stopping.elapsed() >= timeout);
                    stopped_gracefully = !killed;
                    if !stopped_gracefully {
                        tracing::debug!("the app was killed: it did not stop on its signal");
                    }
                    exit_after_stop = code.filter(|_| stopped_gracefully);
                }
            }
        } else if let (Some(held_out), None) = (self.held_out, self.replay) {
            probes.extend(held_out_checks(held_out, &target).await);
        }
        let recording = match progress.recorder.take() {
            Some(recorder) => Some(recorder.finish()?),
            None => None,
        };
        Ok(RunOutcome {
            probes,
            recording,
            mntns: progress.mntns,
            ready_ms,
            probe_ms,
            stopped_gracefully,
            ran_ms,
            state_at_end,
            exit_after_stop,
        })
    }

    /// Stops the app the way the engine will in production (its stop signal, then SIGKILL
    /// after `timeout`) while it is recorded, so its shutdown path is in the recording. An init
    /// that does not handle the signal never gets it (pid 1 of a namespace): then there is no
    /// shutdown path to see, and no reason to wait for the kill. One that handles it by
    /// dropping its handler and re-raising the signal (node) ignores it as well from then on:
    /// once its init no longer catches the signal and the whole container has used no CPU for
    /// [`IGNORED_AFTER`], the kill comes then instead of after the timeout (a shutdown that
    /// idles longer than that with its handler dropped is cut short, as the timeout would cut
    /// a longer one).
    ///
    /// Best effort: a container or engine gone meanwhile shows where it matters (its removal).
    async fn stop_recorded(
        &self,
        id: &str,
        init_pid: u32,
        timeout: Duration,
    ) -> Option<StopEnding> {
        let signal = match self.engine.stop_signal(id).await {
            Ok(signal) => signal.unwrap_or_else(|| "SIGTERM".to_owned()),
            Err(err) => {
                tracing::debug!("no recorded stop: {err}");
                return None;
            }
        };
        if init_pid == 0 || !handles_signal(init_pid, &signal) {
            tracing::debug!(signal, "the app's init does not handle its stop signal");
            return None;
        }
        let stopping = Instant::now();
        let stop = self.engine.stop_container(id, timeout);
        tokio::pin!(stop);
        let mut watch = IgnoredStop::default();
        let mut ending = StopEnding::OnSignalOrTimeout;
        let stopped = loop {
            tokio::select! {
                stopped = &mut stop => break stopped,
                _ = tokio::time::sleep(STOP_POLL) => {
                    let caught = handles_signal(init_pid, &signal);
                    if ending == StopEnding::OnSignalOrTimeout
                        && watch.observe(caught, cpu_ticks(init_pid), Instant::now())
                    {
                        tracing::debug!(signal, "the app's init dropped its handler and idles: killed");
                        ending = StopEnding::KilledIgnored;
                        if let Err(err) = self.engine.stop_container(id, Duration::ZERO).await {
                            tracing::debug!("the early kill failed: {err}");
                        }
                    }
                }
            }
        };
        if let Err(err) = stopped {
            tracing::debug!("the recorded stop failed: {err}");
            return None;
        }
        tracing::debug!(
            signal,
            ms = stopping.elapsed().as_millis() as u64,
            "stopped with its stop signal while recorded"
        );
        Some(ending)
    }

    /// Container ports the probes will use, with whether they speak HTTP(S).
    fn ports_to_check(&self, published: &BTreeMap<u16, u16>) -> Vec<(u16, Option<bool>)> {
        let mut ports: Vec<(u16, Option<bool>)> = Vec::new();
        let mut add = |port: u16, https: Option<bool>| {
            if published.contains_key(&port) && !ports.iter().any(|(p, _)| *p == port) {
                ports.push((port, https));
            }
        };
        let earlier_calls: Vec<_> = self
            .replay
            .into_iter()
            .flatten()
            .filter_map(|p| p.call.as_ref())
            .collect();
        for call in earlier_calls {
            add(call.port, Some(call.https));
        }
        for command in &self.plan.http {
            match command.port {
                Some(port) => add(port, Some(command.protocol == Scheme::Https)),
                None => published
                    .keys()
                    .for_each(|&p| add(p, Some(command.protocol == Scheme::Https))),
            }
        }
        if self.plan.http.is_empty() && self.plan.default_http {
            for &port in published.keys() {
                if self
                    .plan
                    .http_ports
                    .as_ref()
                    .is_none_or(|only| only.contains(&port))
                {
                    add(port, None);
                }
            }
        }
        for tcp in &self.plan.tcp {
            add(tcp.port, None);
        }
        ports
    }

    /// Waits until every port accepts connections (and answers HTTP when probed over HTTP);
    /// fails early, with its logs, when the container exits.
    async fn wait_ready(
        &self,
        id: &str,
        published: &BTreeMap<u16, u16>,
        ip: Option<&str>,
        ports: &[(u16, Option<bool>)],
    ) -> Result<()> {
        let deadline = Instant::now() + self.probe_wait;
        let mut pending: Vec<(u16, Option<bool>)> = ports.to_vec();
        // Published ports no probe uses (a database probed by --exec): waited for too, so the
        // probes do not race the app's start, but only for a while and without failing (an
        // image may expose a port it never listens on).
        let soft_deadline = Instant::now() + self.probe_wait.min(SOFT_PORT_WAIT);
        let mut soft: Vec<u16> = published
            .keys()
            .copied()
            .filter(|p| !ports.iter().any(|(q, _)| q == p))
            .collect();
        // Most apps answer within a few hundred milliseconds: asked often at first, then less.
        let mut poll = READY_POLL_MIN;
        loop {
            let state = self.engine.container_state(id).await?;
            if !state.running {
                soft.clear(); // nothing will listen any more
                let exited_ok = state.exit_code == 0 && pending.is_empty();
                if !exited_ok {
                    let logs = self.engine.logs_tail(id, 40).await;
                    return Err(RunError::Exited {
                        code: state.exit_code,
                        logs: indent(&logs),
                    }
                    .into());
                }
            }
            let mut still = Vec::new();
            for (port, https) in pending {
                if !self.answers(published, ip, port, https).await {
                    still.push((port, https));
                }
            }
            pending = still;
            let mut still_soft = Vec::new();
            for port in soft {
                if !self.answers(published, ip, port, None).await {
                    still_soft.push(port);
                }
            }
            soft = still_soft;
            if !soft.is_empty() && Instant::now() > soft_deadline {
                tracing::warn!(
                    "container port {} does not accept connections after {}s: probing anyway",
                    soft[0],
                    SOFT_PORT_WAIT.as_secs()
                );
                soft.clear();
            }
            if pending.is_empty() && soft.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RunError::NotReady {
                    port: pending[0].0,
                    seconds: self.probe_wait.as_secs(),
                }
                .into());
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(READY_POLL_MAX);
        }
    }

    async fn answers(
        &self,
        published: &BTreeMap<u16, u16>,
        ip: Option<&str>,
        port: u16,
        https: Option<bool>,
    ) -> bool {
        // The container's own address tells whether the app listens (the loopback proxy
        // accepts connections even when nothing is behind it); probes still use 127.0.0.1.
        let direct = match ip {
            Some(ip) => tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect((ip, port)),
            )
            .await
            .is_ok_and(|c| c.is_ok()),
            None => true,
        };
        if !direct {
            return false;
        }
        let Some(host_port) = published.get(&port).copied() else {
            return false;
        };
        let Some(https) = https else {
            return tokio::net::TcpStream::connect(("127.0.0.1", host_port))
                .await
                .is_ok();
        };
        let request = http::Request {
            https,
            host: "127.0.0.1".into(),
            port: host_port,
            method: "GET".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: None,
            basic_auth: None,
        };
        http::send(&request, Duration::from_secs(2)).await.is_ok()
    }

    async fn wait_continue(&self, id: &str) -> Result<()> {
        match &self.continue_after {
            ContinueAfter::Probe => {}
            ContinueAfter::Timeout(duration) if self.replay.is_some() => {
                // A check with no probes: does it stay up (or end) as the original did? Until
                // it ends or the time is up.
                tracing::debug!(seconds = duration.as_secs(), "running as the original did");
                let until = Instant::now() + *duration;
                while Instant::now() < until {
                    let running = self.engine.container_state(id).await.map(|s| s.running);
                    if !running.unwrap_or(false) {
                        break;
                    }
                    let left = until.saturating_duration_since(Instant::now());
                    tokio::time::sleep(left.min(Duration::from_millis(250))).await;
                }
            }
            ContinueAfter::Timeout(duration) => {
                self.console.say(format!(
                    "      recording for {}s more (--continue-after timeout)",
                    duration.as_secs()
                ));
                tokio::time::sleep(*duration).await;
            }
            ContinueAfter::Signal => {
                self.console.say(format!(
                    "      recording until slim (pid {}) gets SIGUSR1",
                    std::process::id()
                ));
                let mut usr1 =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
                usr1.recv().await;
            }
            ContinueAfter::Enter => {
                // Asked for even with --quiet: the build waits for it.
                eprintln!("recording: use the app, then press Enter to stop");
                tokio::task::spawn_blocking(|| {
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// First and longest pause between two readiness checks of a starting app.
const READY_POLL_MIN: Duration = Duration::from_millis(20);
const READY_POLL_MAX: Duration = Duration::from_millis(200);

/// Held-out checks, named as such.
async fn held_out_checks(held_out: &Plan, target: &Target<'_>) -> Vec<ProbeResult> {
    let mut results = prober::run(held_out, target).await;
    for result in &mut results {
        result.held_out = true;
        result.name = format!("{} (held out)", result.name);
    }
    results
}

fn failure<S: RecordingSession>(error: anyhow::Error, progress: Progress<S>) -> RunFailure {
    RunFailure {
        error,
        recording: progress.recorder.and_then(|r| r.finish().ok()),
        mntns: progress.mntns,
    }
}

/// The number of a signal as the engine names it (`SIGTERM`, `TERM`, `15`).
pub fn signal_number(name: &str) -> Option<u32> {
    if let Ok(number) = name.parse() {
        return Some(number);
    }
    let upper = name.to_ascii_uppercase();
    let name = upper.trim_start_matches("SIG");
    // The numbers every Linux architecture slim runs on shares (x86, arm).
    const SIGNALS: &[(&str, u32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    if let Some(offset) = name.strip_prefix("RTMIN+") {
        return offset.parse::<u32>().ok().map(|o| 34 + o);
    }
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, number)| number)
}

/// How often a recorded stop looks at the app's init.
const STOP_POLL: Duration = Duration::from_millis(100);
/// How long a container whose init no longer catches its stop signal may idle before slim
/// kills it.
const IGNORED_AFTER: Duration = Duration::from_secs(3);

/// How a recorded stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopEnding {
    /// The engine's stop returned: the app stopped on its signal, or was killed at the timeout.
    OnSignalOrTimeout,
    /// Killed early: its init had dropped its handler (the signal is ignored from then on) and
    /// idled.
    KilledIgnored,
}

/// CPU time (microseconds) a container may use over [`IGNORED_AFTER`] and still count as idle:
/// 1%, what an idle server's timers take (php's polls take about 0.004%); a shutdown at work
/// takes far more.
const IDLE_CPU_US: u64 = 30_000;

/// Watches a container during its stop: true once its init no longer catches the stop signal
/// and the container (every process of it) has been idle ([`IDLE_CPU_US`]) for
/// [`IGNORED_AFTER`].
#[derive(Debug, Default)]
struct IgnoredStop {
    idle_since: Option<(Instant, u64)>,
}

impl IgnoredStop {
    fn observe(&mut self, caught: bool, ticks: Option<u64>, now: Instant) -> bool {
        let Some(ticks) = ticks.filter(|_| !caught) else {
            self.idle_since = None;
            return false;
        };
        match self.idle_since {
            Some((since, before)) if ticks.saturating_sub(before) <= IDLE_CPU_US => {
                now.duration_since(since) >= IGNORED_AFTER
            }
            _ => {
                self.idle_since = Some((now, ticks));
                false
            }
        }
    }
}

/// CPU time (microseconds) of every process in the cgroup of process `pid` (the container's):
/// cgroup v1's `cpuacct.usage`, else cgroup v2's `cpu.stat`; `None` when it is gone or slim
/// cannot read it (then no early kill).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path_of = |controller: &str| {
        cgroups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let path = path.trim();
            (controllers.split(',').any(|c| c == controller) && !path.contains(".."))
                .then(|| path.to_owned())
        })
    };
    let read = |file: String| std::fs::read_to_string(file).ok();
    if let Some(path) = path_of("cpuacct") {
        for mount in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
            if let Some(usage) = read(format!("/sys/fs/cgroup/{mount}{path}/cpuacct.usage")) {
                return usage.trim().parse::<u64>().ok().map(|ns| ns / 1000);
            }
        }
    }
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .to_owned();
    if path.contains("..") {
        return None;
    }
    let stat = ["", "/unified"]
        .iter()
        .find_map(|base| read(format!("/sys/fs/cgroup{base}{path}/cpu.stat")))?;
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()
}

/// Whether process `pid` has a handler for `signal` (`SigCgt` in /proc/PID/status). An
/// unknown signal name counts as handled: the engine may know it, and waiting is safe.
fn handles_signal(pid: u32, signal: &str) -> bool {
    let Some(number) = signal_number(signal).filter(|n| (1..=64).contains(n)) else {
        return true;
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false; // gone
    };
    caught_mask(&status).is_some_and(|mask| mask & (1 << (number - 1)) != 0)
}

/// The `SigCgt` mask of a /proc/PID/status text.
fn caught_mask(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn indent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "  (no output)".into();
    }
    lines
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_that_dropped_its_handler_and_idles_is_killed_after_a_second() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut watch = IgnoredStop::default();
        // Still catching the signal: shutting down, however long it idles.
        assert!(!watch.observe(true, Some(5), at(0)));
        assert!(!watch.observe(true, Some(5), at(5000)));
        // The handler dropped: idle (a server's timers only) for three seconds from the first
        // look without it.
        assert!(!watch.observe(false, Some(5), at(5100)));
        assert!(!watch.observe(false, Some(500), at(7600)));
        assert!(watch.observe(false, Some(900), at(8100)));
        // Working (more than 1% of a CPU): the wait starts again.
        let mut busy = IgnoredStop::default();
        assert!(!busy.observe(false, Some(5), at(0)));
        assert!(!busy.observe(false, Some(90_000), at(2900)));
        assert!(!busy.observe(false, Some(90_100), at(5000)));
        assert!(busy.observe(false, Some(90_200), at(5900)));
        // Gone: nothing to kill.
        assert!(!IgnoredStop::default().observe(false, None, at(0)));
    }

    #[test]
    fn cpu_time_of_this_process_cgroup_is_read() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert_eq!(cpu_ticks(u32::MAX), None);
    }

    #[test]
    fn signal_names_as_the_engine_writes_them() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("sigquit"), Some(3));
        assert_eq!(signal_number("SIGQUIT"), Some(3));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGRTMIN+3"), Some(37));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number(""), None);
    }

    #[test]
    fn a_handled_signal_is_told_from_the_status_mask() {
        let status = "Name:\tdumb-init\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000004002\n";
        let mask = caught_mask(status).unwrap();
        assert_ne!(mask & (1 << (15 - 1)), 0, "SIGTERM is caught");
        assert_ne!(mask & (1 << (2 - 1)), 0, "SIGINT is caught");
        assert_eq!(mask & (1 << (3 - 1)), 0, "SIGQUIT is not");
        assert_eq!(caught_mask("Name:\tx\n"), None);
        // This test process installs no SIGWINCH handler; a pid that does not exist handles
        // nothing.
        assert!(!handles_signal(std::process::id(), "SIGWINCH"));
        assert!(!handles_signal(u32::MAX, "SIGTERM"));
    }

    /// The run's orchestration through the fakes: no root, no engine, no kernel.
    mod orchestration {
        use super::*;
        use crate::{
            commands::{
                exit_code, Interrupted, Shutdown, EXIT_APP_FAILED, EXIT_FAULT, EXIT_INTERRUPTED,
            },
            engine::fake::{App, FakeEngine, Op},
            prober::HttpCommand,
            tracer::fake::ScriptedRecorder,
        };

        fn get(path: &str) -> HttpCommand {
            serde_json::from_value(serde_json::json!({
                "protocol": "http", "method": "GET", "resource": path, "port": 80
            }))
            .expect("a probe command")
        }

        fn plan() -> Plan {
            Plan {
                http: vec![get("/"), get("/about")],
                attempts: 1,
                timeout: Duration::from_secs(2),
                rounds: 1,
                ..Default::default()
            }
        }

        /// A shutdown that is never requested, and the sender that would request it.
        fn shutdown() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
            let (tx, rx) = tokio::sync::watch::channel(false);
            (tx, Shutdown(rx))
        }

        fn run<'a>(
            engine: &'a FakeEngine,
            recorder: &'a ScriptedRecorder,
            plan: &'a Plan,
            shutdown: &'a Shutdown,
        ) -> Run<'a, FakeEngine, ScriptedRecorder> {
            Run {
                engine,
                recorder: Some(recorder),
                spec: RunSpec {
                    image: "app:fat".into(),
                    ports: vec![80],
                    ..Default::default()
                },
                plan,
                replay: None,
                held_out: None,
                probe_wait: Duration::from_secs(5),
                continue_after: ContinueAfter::Probe,
                shutdown,
                show_logs: false,
                stop_timeout: None,
                load_cpu: false,
                console: Console { quiet: true },
                removals: None,
                neighbours: None,
            }
        }

        fn http_app() -> FakeEngine {
            with_fat_image(FakeEngine::new(App::Http {
                body: "hello from the fake app".into(),
            }))
        }

        /// `engine` holding the image the runs start, `app:fat`.
        fn with_fat_image(engine: FakeEngine) -> FakeEngine {
            engine.add_image("app:fat", &[], serde_json::json!({}));
            engine
        }

        #[tokio::test]
        async fn a_run_records_probes_and_removes_its_container() {
            let engine = http_app();
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let outcome = run(&engine, &recorder, &plan, &shutdown)
                .execute()
                .await
                .unwrap_or_else(|f| panic!("{:#}", f.error));
            assert_eq!(outcome.probes.len(), 2, "{:?}", outcome.probes);
            assert!(
                outcome.probes.iter().all(ProbeResult::ok),
                "{:?}",
                outcome.probes
            );
            assert!(outcome.recording.is_some());
            assert_ne!(outcome.mntns, 0, "the container's namespace was read");
            assert_eq!(
                engine.journal(),
                ["create c1 app:fat", "start c1", "remove c1"],
                "created, started, removed: nothing else asked of the engine"
            );
            assert!(engine.containers().is_empty());
            let asked = recorder.journal();
            assert_eq!(asked.first().map(String::as_str), Some("start"));
            assert!(
                asked.contains(&format!("lock {}", outcome.mntns)),
                "{asked:?}"
            );
            assert!(
                asked.contains(&format!("in-flight {}", outcome.mntns)),
                "{asked:?}"
            );
            assert_eq!(asked.last().map(String::as_str), Some("finish"));
        }

        #[tokio::test]
        async fn held_out_checks_are_filed_apart() {
            let engine = http_app();
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let held_out = Plan {
                http: vec![get("/later")],
                ..plan.clone()
            };
            let mut this = run(&engine, &recorder, &plan, &shutdown);
            this.held_out = Some(&held_out);
            let outcome = this
                .execute()
                .await
                .unwrap_or_else(|f| panic!("{:#}", f.error));
            let held: Vec<&ProbeResult> = outcome.probes.iter().filter(|p| p.held_out).collect();
            assert_eq!(held.len(), 1, "{:?}", outcome.probes);
            assert!(held[0].name.ends_with("(held out)"), "{}", held[0].name);
            let asked = recorder.journal();
            let on = asked.iter().position(|l| l == "hold-out on");
            let off = asked.iter().position(|l| l == "hold-out off");
            assert!(on.is_some() && on < off, "{asked:?}");
        }

        #[tokio::test]
        async fn a_container_that_fails_to_start_is_removed_and_the_recording_kept() {
            let engine = http_app();
            engine.fail(Op::Start);
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let failure = match run(&engine, &recorder, &plan, &shutdown).execute().await {
                Ok(_) => panic!("a start the engine refused succeeded"),
                Err(failure) => failure,
            };
            assert!(
                failure.recording.is_some(),
                "what was recorded until then is kept"
            );
            assert_eq!(
                exit_code(&failure.error),
                std::process::ExitCode::from(EXIT_FAULT),
                "an engine that stopped answering is a fault: {:#}",
                failure.error
            );
            assert_eq!(
                engine.journal(),
                ["create c1 app:fat", "start c1", "remove c1"]
            );
            assert!(engine.containers().is_empty(), "nothing left behind");
            assert_eq!(
                recorder.journal().last().map(String::as_str),
                Some("finish")
            );
        }

        #[tokio::test]
        async fn a_refused_create_leaves_nothing_and_detaches_the_recorder() {
            let engine = http_app();
            engine.fail(Op::Create);
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            assert!(run(&engine, &recorder, &plan, &shutdown)
                .execute()
                .await
                .is_err());
            assert_eq!(engine.journal(), ["create c1 app:fat"]);
            assert!(engine.containers().is_empty());
            assert_eq!(recorder.journal(), ["start", "finish"]);
        }

        #[tokio::test]
        async fn a_recorder_that_cannot_start_creates_no_container() {
            let engine = http_app();
            let recorder = ScriptedRecorder::refusing();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let failure = match run(&engine, &recorder, &plan, &shutdown).execute().await {
                Ok(_) => panic!("ran without its recorder"),
                Err(failure) => failure,
            };
            assert!(
                format!("{:#}", failure.error).contains("needs root"),
                "{:#}",
                failure.error
            );
            assert!(engine.journal().is_empty(), "{:?}", engine.journal());
        }

        #[tokio::test]
        async fn an_app_that_exits_at_start_fails_with_its_logs_and_is_removed() {
            let engine = with_fat_image(FakeEngine::new(App::ExitsAtStart {
                code: 3,
                logs: "error: no DATABASE_URL\n".into(),
            }));
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let failure = match run(&engine, &recorder, &plan, &shutdown).execute().await {
                Ok(_) => panic!("an app that exited was probed"),
                Err(failure) => failure,
            };
            match failure.error.downcast_ref::<RunError>() {
                Some(RunError::Exited { code: 3, logs }) => {
                    assert!(logs.contains("no DATABASE_URL"), "{logs}")
                }
                other => panic!("{other:?}: {:#}", failure.error),
            }
            assert_eq!(
                exit_code(&failure.error),
                std::process::ExitCode::from(EXIT_APP_FAILED),
                "the app failing on its own is exit 4"
            );
            assert!(engine.containers().is_empty());
            assert_eq!(
                engine.journal().last().map(String::as_str),
                Some("remove c1")
            );
        }

        #[tokio::test]
        async fn a_stop_request_interrupts_the_run_and_still_removes_the_container() {
            let engine = http_app();
            let recorder = ScriptedRecorder::default();
            let (tx, shutdown) = shutdown();
            let plan = plan();
            let mut this = run(&engine, &recorder, &plan, &shutdown);
            // Recording for a minute after the probes: the stop request comes first.
            this.continue_after = ContinueAfter::Timeout(Duration::from_secs(60));
            let stopper = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tx.send(true);
                tx
            });
            let started = std::time::Instant::now();
            let failure = match this.execute().await {
                Ok(_) => panic!("the run ignored the stop request"),
                Err(failure) => failure,
            };
            let _tx = stopper.await;
            assert!(
                failure.error.downcast_ref::<Interrupted>().is_some(),
                "{:#}",
                failure.error
            );
            assert_eq!(
                exit_code(&failure.error),
                std::process::ExitCode::from(EXIT_INTERRUPTED)
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "it did not wait out the minute"
            );
            assert!(engine.containers().is_empty(), "{:?}", engine.journal());
            assert_eq!(
                engine.journal().last().map(String::as_str),
                Some("remove c1")
            );
            assert_eq!(
                recorder.journal().last().map(String::as_str),
                Some("finish")
            );
        }

        #[tokio::test]
        async fn a_removal_the_engine_refuses_is_reported_not_fatal() {
            let engine = http_app();
            engine.fail(Op::Remove);
            let recorder = ScriptedRecorder::default();
            let (_tx, shutdown) = shutdown();
            let plan = plan();
            let outcome = run(&engine, &recorder, &plan, &shutdown).execute().await;
            assert!(outcome.is_ok(), "the run's result stands");
            assert_eq!(
                engine.containers(),
                ["c1"],
                "the fake keeps what it refused to remove"
            );
        }
    }
}
