//! `slim build`: inspect -> run and record (while the fat image is read) -> probe -> select ->
//! write image -> verify -> report.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    cli::BuildArgs,
    engine::{Engine, RunSpec},
    image::{tree::FileTree, xray::human_bytes},
    minify::{self, resolve::resolve, KeepSet},
    prober::{self, Plan, ProbeResult, TcpProbe},
    recording::{FileSource, Filter, Recording},
};

use super::{
    build_run::{ContinueAfter, Run},
    pipeline::{read_image, write_image, ImageSource, Output, WorkDir},
    report::{Floor, ImageSummary, Mismatch, RecorderReport, Report, Verify},
    Shutdown, UsageError,
};

/// Exit code when the slim image does not answer like the fat one.
pub const EXIT_VERIFY_FAILED: u8 = 3;

pub async fn run(args: BuildArgs, shutdown: Shutdown) -> Result<ExitCode> {
    let total = Instant::now();
    let quiet = args.quiet;
    let say = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    // Everything the user wrote is checked before any container starts.
    let input = Input::parse(&args)?;
    for warning in &input.warnings {
        tracing::warn!("{warning}");
    }
    let mut timings: BTreeMap<String, u128> = BTreeMap::new();

    let phase = Instant::now();
    let engine = Engine::connect().await?;
    let target = engine.image(&args.target).await?;
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| default_tag(&args.target));
    if tag == args.target || engine.image(&tag).await.is_ok_and(|i| i.id == target.id) {
        return Err(UsageError::new(
            format!("--tag {tag} names the image being slimmed"),
            "choose another tag: slim never modifies its input image",
        )
        .into());
    }
    timings.insert("inspect".into(), phase.elapsed().as_millis());
    say(format!(
        "[1/6] inspect   {}  {}  {}",
        args.target,
        super::xray::short_id(&target.id),
        human_bytes(target.size)
    ));

    let work = WorkDir::new()?;
    let mut spec = input.spec.clone();
    spec.image = args.target.clone();
    spec.seccomp = Some("unconfined".into()); // blocked syscalls would never be seen
    for port in target.tcp_ports.iter().chain(&input.extra_ports) {
        if !spec.ports.contains(port) {
            spec.ports.push(*port);
        }
    }
    let mut plan = input.plan.clone();
    let has_probes = !plan.http.is_empty()
        || !plan.exec.is_empty()
        || !plan.tcp.is_empty()
        || (plan.default_http && !spec.ports.is_empty());
    let continue_after = match &input.continue_after {
        Some(c) => c.clone(),
        None if has_probes => ContinueAfter::Probe,
        None if std::io::stdin().is_terminal() => ContinueAfter::Enter,
        None => ContinueAfter::Timeout(Duration::from_secs(30)),
    };
    plan.default_http &= !spec.ports.is_empty();

    // Record and probe the fat container while the fat image is read from the engine.
    let phase = Instant::now();
    let spin = Phase::start(
        quiet,
        format!(
            "[2/6] record    running {} with the recorder attached",
            args.target
        ),
    );
    let run = Run {
        engine: &engine,
        spec: spec.clone(),
        plan: &plan,
        replay: None,
        record: true,
        probe_wait: Duration::from_secs(args.probe_wait),
        continue_after: continue_after.clone(),
        shutdown: &shutdown,
    };
    let source = ImageSource::Engine(args.target.clone());
    let (fat_run, fat) = tokio::join!(
        run.execute(),
        read_image(Some(&engine), &source, &work, args.read.via)
    );
    spin.done();
    let fat_run = fat_run?;
    let fat = fat?;
    timings.insert("record_and_probe".into(), phase.elapsed().as_millis());
    timings.insert("probe".into(), fat_run.probe_ms);
    timings.insert("start_until_ready".into(), fat_run.ready_ms);
    timings.insert("read_image".into(), fat.save_ms + fat.flatten_ms);
    let raw = fat_run.recording.as_ref().expect("recorded");
    let answered = fat_run.probes.iter().filter(|p| p.ok()).count();
    say(format!(
        "      probes    {answered}/{} answered; recorder {} events, {} lost",
        fat_run.probes.len(),
        raw.stats.events,
        raw.stats.lost
    ));
    for failed in fat_run.probes.iter().filter(|p| !p.ok()) {
        tracing::warn!(
            "probe {} failed on the fat image: {}",
            failed.name,
            describe(failed)
        );
    }
    if raw.stats.lost > 0 {
        tracing::warn!(
            "the recorder lost {} events: the slim image may miss files",
            raw.stats.lost
        );
    }

    let phase = Instant::now();
    let workdir = spec
        .workdir
        .clone()
        .or_else(|| {
            fat.config["config"]["WorkingDir"]
                .as_str()
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "/".into());
    let mut recording = Recording::build(raw, &Filter::started_container(fat_run.mntns, &workdir));
    recording.add_interpreters(&TreeFiles(&fat.tree));
    let mut options = input.keep.clone();
    options.workdir = Some(workdir.clone());
    options.env = image_env(&fat.config, &spec.env);
    if let Some(volumes) = fat.config["config"]["Volumes"].as_object() {
        options.volumes.extend(volumes.keys().cloned());
    }
    let keep = minify::select(&fat.tree, &recording, &options);
    let summary = minify::summarize(&fat.tree, &keep);
    timings.insert("select".into(), phase.elapsed().as_millis());
    say(format!(
        "[3/6] select    keep {} paths ({}), drop {} files ({})",
        summary.kept_files,
        human_bytes(summary.kept_bytes),
        summary.removed_files,
        human_bytes(summary.removed_bytes)
    ));

    let phase = Instant::now();
    let selection: BTreeSet<PathBuf> = keep.paths.keys().cloned().collect();
    let slim = write_image(
        Some(&engine),
        &fat,
        selection,
        Some(&tag),
        &input.outputs,
        &work,
        format!("slim build {}", args.target),
    )
    .await?;
    let slim_info = engine.image(&tag).await?;
    timings.insert("write_image".into(), phase.elapsed().as_millis());
    say(format!(
        "[4/6] write     {tag}  {}  {}",
        super::xray::short_id(&slim.id),
        human_bytes(slim_info.size)
    ));

    let phase = Instant::now();
    let verify = if args.no_verify {
        Verify {
            skipped: true,
            ..Default::default()
        }
    } else {
        let spin = Phase::start(
            quiet,
            format!(
                "[5/6] verify    replaying {} probes against {tag}",
                fat_run.probes.len()
            ),
        );
        let mut slim_spec = spec.clone();
        slim_spec.image = tag.clone();
        slim_spec.seccomp = None;
        let run = Run {
            engine: &engine,
            spec: slim_spec,
            plan: &plan,
            replay: Some(&fat_run.probes),
            record: true,
            probe_wait: Duration::from_secs(args.probe_wait),
            continue_after: ContinueAfter::Probe,
            shutdown: &shutdown,
        };
        let outcome = run.execute().await;
        spin.done();
        match outcome {
            Ok(outcome) => compare(
                &fat_run.probes,
                &outcome.probes,
                missing_paths(
                    &fat.tree,
                    &keep,
                    outcome.recording.as_ref(),
                    outcome.mntns,
                    &workdir,
                ),
            ),
            Err(err) if err.downcast_ref::<super::Interrupted>().is_some() => return Err(err),
            Err(err) => Verify {
                skipped: false,
                probes: fat_run.probes.len(),
                matched: 0,
                failed: vec![Mismatch {
                    name: "start".into(),
                    fat: "started and answered".into(),
                    slim: format!("{err:#}"),
                }],
                missing_paths: Vec::new(),
            },
        }
    };
    timings.insert("verify".into(), phase.elapsed().as_millis());
    timings.insert("total".into(), total.elapsed().as_millis());

    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("slim-out").join(sanitize_name(&args.target)));
    let report = Report {
        target: ImageSummary {
            image: args.target.clone(),
            id: target.id.clone(),
            size_bytes: target.size,
            read_from: Some(fat.read_from),
        },
        slim: ImageSummary {
            image: tag.clone(),
            id: slim.id.clone(),
            size_bytes: slim_info.size,
            read_from: None,
        },
        ratio: target.size as f64 / slim_info.size.max(1) as f64,
        probes: fat_run.probes.clone(),
        verify,
        recorder: RecorderReport {
            stats: recording.stats,
            unresolved: recording.unresolved,
        },
        timings_ms: timings,
        kept: summary.kept_by_reason.clone(),
        kept_files: summary.kept_files,
        removed: Report::removed_from(&summary),
        floor: Floor {
            opened_bytes: summary.opened_bytes,
            touched_bytes: summary.touched_bytes,
            slim_over_opened: slim_info.size as f64 / summary.opened_bytes.max(1) as f64,
        },
        syscalls: recording.syscall_names(),
        not_in_image: keep
            .not_in_image
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    report.write(&output_dir, &keep)?;
    say(format!(
        "[6/6] report    {}",
        output_dir.join("report.json").display()
    ));
    println!("{}", report.summary_line());
    if !report.verify.failed.is_empty() {
        eprintln!("the slim image {tag} does not answer like {}:", args.target);
        for m in &report.verify.failed {
            eprintln!("  {}\n    fat:  {}\n    slim: {}", m.name, m.fat, m.slim);
        }
        if !report.verify.missing_paths.is_empty() {
            let flags: Vec<String> = report
                .verify
                .missing_paths
                .iter()
                .take(10)
                .map(|p| format!("--include-path {p}"))
                .collect();
            eprintln!(
                "  hint: the slim run looked for paths it no longer has; try {}",
                flags.join(" ")
            );
        }
        return Ok(ExitCode::from(EXIT_VERIFY_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// A long phase on the console: a spinner with elapsed time on a terminal, a plain line
/// otherwise, nothing with `--quiet`.
struct Phase(Option<(indicatif::ProgressBar, String, Instant)>);

impl Phase {
    fn start(quiet: bool, line: String) -> Self {
        if quiet {
            return Self(None);
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{line}");
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {spinner} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(line.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some((bar, line, Instant::now())))
    }

    /// Replaces the spinner with the phase's line and its duration.
    fn done(self) {
        if let Some((bar, line, started)) = self.0 {
            bar.finish_and_clear();
            eprintln!("{line} ({:.1}s)", started.elapsed().as_secs_f64());
        }
    }
}

/// Reads executables' heads from the image tree (following symlinks inside it).
struct TreeFiles<'a>(&'a FileTree);

impl FileSource for TreeFiles<'_> {
    fn head(&self, path: &Path, len: usize) -> Option<Vec<u8>> {
        let target = resolve(self.0, path).target?;
        self.0.read(&target, len as u64)
    }
}

fn describe(probe: &ProbeResult) -> String {
    match (&probe.error, probe.status, probe.exit_code) {
        (Some(error), _, _) => error.clone(),
        (None, Some(status), _) => format!("HTTP {status}, {} bytes", probe.bytes),
        (None, None, Some(code)) => format!("exit code {code}, {} bytes of output", probe.bytes),
        _ => format!("{} bytes", probe.bytes),
    }
}

/// Compares each probe's answers: status (and body when the fat app gave the same body twice),
/// exit codes, and that TCP probes still get through.
fn compare(fat: &[ProbeResult], slim: &[ProbeResult], missing_paths: Vec<String>) -> Verify {
    let mut verify = Verify {
        skipped: false,
        probes: fat.len(),
        missing_paths,
        ..Default::default()
    };
    for (f, s) in fat.iter().zip(slim) {
        let same = match f.kind {
            "http" => f.status == s.status && (!f.stable_body || f.body_sha256 == s.body_sha256),
            "exec" => f.exit_code == s.exit_code && f.error.is_none() == s.error.is_none(),
            _ => f.error.is_none() == s.error.is_none(),
        };
        if same {
            verify.matched += 1;
        } else {
            verify.failed.push(Mismatch {
                name: f.name.clone(),
                fat: describe(f),
                slim: describe(s),
            });
        }
    }
    verify
}

/// Paths the slim run looked for and missed that the fat image has: what `--include-path`
/// would fix.
fn missing_paths(
    tree: &FileTree,
    keep: &KeepSet,
    raw: Option<&crate::tracer::RawRecording>,
    mntns: u32,
    workdir: &str,
) -> Vec<String> {
    let Some(raw) = raw else { return Vec::new() };
    let recording = Recording::build(raw, &Filter::started_container(mntns, workdir));
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

/// The container's environment: the image's `Env` overridden by `--env`.
fn image_env(config: &serde_json::Value, overrides: &[String]) -> Vec<String> {
    let mut env: Vec<String> = config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for entry in overrides {
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    env
}

/// docker-slim's naming: `repo:tag` -> `repo.slim:tag`.
pub fn default_tag(target: &str) -> String {
    let (name, tag) = match target.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (target, "latest"),
    };
    let name = name.split('@').next().unwrap_or(name);
    if name.starts_with("sha256") || name.chars().all(|c| c.is_ascii_hexdigit()) {
        return format!(
            "slim-{}:latest",
            &name.trim_start_matches("sha256")[..name.len().min(12)]
        );
    }
    format!("{name}.slim:{tag}")
}

fn sanitize_name(target: &str) -> String {
    target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The user's input, checked.
struct Input {
    spec: RunSpec,
    extra_ports: Vec<u16>,
    plan: Plan,
    continue_after: Option<ContinueAfter>,
    keep: minify::Options,
    outputs: Vec<Output>,
    warnings: Vec<String>,
}

impl Input {
    fn parse(args: &BuildArgs) -> Result<Self> {
        let mut warnings = Vec::new();
        let mut plan = Plan {
            default_http: !args.http_probe_off,
            http_ports: (!args.http_probe_ports.is_empty()).then(|| args.http_probe_ports.clone()),
            crawl: args.http_probe_crawl,
            exec: args.exec.clone(),
            attempts: args.probe_retries.max(1),
            timeout: Duration::from_secs(args.probe_timeout.max(1)),
            ..Default::default()
        };
        if let Some(file) = &args.http_probe_cmd_file {
            let probes = prober::probe_file::load(file).map_err(|e| {
                UsageError::new(
                    e.to_string(),
                    "fix the probe file (docker-slim's format: {\"commands\": [...]})",
                )
            })?;
            warnings.extend(probes.warnings);
            plan.http = probes.commands;
        }
        if let Some(file) = &args.exec_file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError::new(
                    format!("cannot read --exec-file {}: {e}", file.display()),
                    "give a file with one shell command per line",
                )
            })?;
            plan.exec.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        for tcp in &args.tcp_probe {
            plan.tcp.push(TcpProbe::parse(tcp).map_err(|e| {
                UsageError::new(e, "--tcp-probe 6379 or --tcp-probe 6379:PING\\r\\n")
            })?);
        }
        let continue_after = args
            .continue_after
            .as_deref()
            .map(|c| {
                ContinueAfter::parse(c).ok_or_else(|| {
                    UsageError::new(
                        format!("--continue-after {c} is not understood"),
                        "use probe, timeout:SECS, signal or enter",
                    )
                })
            })
            .transpose()?;

        let mut env = args.env.clone();
        for file in &args.env_file {
            env.extend(read_lines(
                file,
                "--env-file",
                "give a file of KEY=VALUE lines",
            )?);
        }
        for entry in &env {
            if !entry.contains('=') {
                return Err(UsageError::new(
                    format!("--env {entry} is not KEY=VALUE"),
                    "write --env KEY=VALUE",
                )
                .into());
            }
        }
        let mut binds = args.volume.clone();
        let mut volumes = Vec::new();
        for volume in &args.volume {
            if let Some(dst) = volume.split(':').nth(1) {
                volumes.push(dst.to_owned());
            }
        }
        for mount in &args.mount {
            let (bind, dst) = mount_to_bind(mount)?;
            binds.push(bind);
            volumes.push(dst);
        }
        let mut extra_ports = args.expose.clone();
        for publish in &args.publish {
            extra_ports.push(parse_publish(publish)?);
        }
        let spec = RunSpec {
            env,
            binds,
            network: args.network.clone(),
            entrypoint: args.entrypoint.as_deref().map(split_command).transpose()?,
            cmd: args.cmd.as_deref().map(split_command).transpose()?,
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            cap_add: args.cap_add.clone(),
            cap_drop: args.cap_drop.clone(),
            labels: [("slim.run".to_owned(), "true".to_owned())].into(),
            ..Default::default()
        };
        let mut include_paths = args.include_path.clone();
        for file in &args.include_path_file {
            include_paths.extend(read_lines(
                file,
                "--include-path-file",
                "give a file with one path per line",
            )?);
        }
        for group in &args.skip_keep {
            if !minify::DEFAULT_GROUPS.contains(&group.as_str()) {
                return Err(UsageError::new(
                    format!("--skip-keep {group}: no such group"),
                    format!("groups: {}", minify::DEFAULT_GROUPS.join(", ")),
                )
                .into());
            }
        }
        let keep = minify::Options {
            skip_groups: args.skip_keep.iter().cloned().collect(),
            include_paths,
            preserve_paths: args.preserve_path.clone(),
            include_bins: args.include_bin.clone(),
            include_exes: args.include_exe.clone(),
            include_shell: args.include_shell,
            include_cert_all: args.include_cert_all,
            exclude_patterns: args.exclude_pattern.clone(),
            volumes,
            ..Default::default()
        };
        let outputs = args
            .output
            .iter()
            .map(|o| Output::parse(o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            spec,
            extra_ports,
            plan,
            continue_after,
            keep,
            outputs,
            warnings,
        })
    }
}

/// `--entrypoint`/`--cmd`: a JSON array, or a command line split like a shell would (quotes).
fn split_command(text: &str) -> Result<Vec<String>, UsageError> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| {
            UsageError::new(
                format!("`{text}` is not a JSON array of strings: {e}"),
                "write [\"prog\", \"arg\"] or a plain command line",
            )
        });
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => word.extend(chars.next()),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() || any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if quote.is_some() {
        return Err(UsageError::new(
            format!("unbalanced quote in `{text}`"),
            "close the quote",
        ));
    }
    if !word.is_empty() || any {
        words.push(word);
    }
    Ok(words)
}

/// docker's `--mount type=bind,source=A,target=B[,readonly]` as a bind `A:B[:ro]`.
fn mount_to_bind(mount: &str) -> Result<(String, String), UsageError> {
    let mut kind = "volume";
    let (mut source, mut target, mut readonly) = (None, None, false);
    for part in mount.split(',') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key {
            "type" => {
                kind = if value == "bind" {
                    "bind"
                } else if value == "volume" {
                    "volume"
                } else {
                    "other"
                }
            }
            "source" | "src" => source = Some(value.to_owned()),
            "target" | "destination" | "dst" => target = Some(value.to_owned()),
            "readonly" | "ro" => readonly = value != "false",
            _ => {}
        }
    }
    let bad = || {
        UsageError::new(
            format!("--mount {mount} is not understood"),
            "use type=bind|volume,source=SRC,target=DST[,readonly]",
        )
    };
    if kind == "other" {
        return Err(bad());
    }
    let (Some(source), Some(target)) = (source, target) else {
        return Err(bad());
    };
    Ok((
        format!("{source}:{target}{}", if readonly { ":ro" } else { "" }),
        target,
    ))
}

/// `[IP:][HOST:]CONTAINER[/tcp]` -> the container port (always published on 127.0.0.1).
fn parse_publish(text: &str) -> Result<u16, UsageError> {
    let bad = || {
        UsageError::new(
            format!("--publish {text} is not [127.0.0.1:][HOST:]CONTAINER"),
            "slim publishes on 127.0.0.1 only",
        )
    };
    let text = text.strip_suffix("/tcp").unwrap_or(text);
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() == 3 && parts[0] != "127.0.0.1" {
        return Err(bad());
    }
    parts.last().and_then(|p| p.parse().ok()).ok_or_else(bad)
}

/// The non-empty, non-comment lines of a file given to `flag`, trimmed.
fn read_lines(file: &Path, flag: &str, hint: &str) -> Result<Vec<String>, UsageError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        UsageError::new(format!("cannot read {flag} {}: {e}", file.display()), hint)
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_slim_default_tags() {
        assert_eq!(default_tag("app:fat"), "app.slim:fat");
        assert_eq!(default_tag("nginx"), "nginx.slim:latest");
        assert_eq!(
            default_tag("localhost:5000/app:1"),
            "localhost:5000/app.slim:1"
        );
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            split_command("python3 -m http.server 80").unwrap(),
            ["python3", "-m", "http.server", "80"]
        );
        assert_eq!(
            split_command("sh -c 'echo hi there'").unwrap(),
            ["sh", "-c", "echo hi there"]
        );
        assert_eq!(split_command(r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        assert!(split_command("sh -c 'oops").is_err());
    }

    #[test]
    fn mounts_and_publish() {
        assert_eq!(
            mount_to_bind("type=bind,source=/a,target=/b,readonly").unwrap(),
            ("/a:/b:ro".into(), "/b".into())
        );
        assert!(mount_to_bind("type=tmpfs,target=/x").is_err());
        assert_eq!(parse_publish("8080").unwrap(), 8080);
        assert_eq!(parse_publish("127.0.0.1:9000:8080/tcp").unwrap(), 8080);
        assert!(parse_publish("0.0.0.0:9000:8080").is_err());
    }
}
