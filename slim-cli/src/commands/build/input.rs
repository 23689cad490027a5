//! The user's run and probe flags, checked before any container starts: each mistake is one
//! line with a hint.

use std::{collections::BTreeSet, path::Path, time::Duration};

use anyhow::Result;

use crate::{
    cli::RunArgs,
    engine::RunSpec,
    prober::{self, Plan, TcpProbe},
};

use super::run::ContinueAfter;
use crate::commands::UsageError;

/// How the target runs and is probed, checked.
#[derive(Clone)]
pub struct Input {
    pub spec: RunSpec,
    /// Container ports to publish and probe besides the image's exposed ones.
    pub extra_ports: Vec<u16>,
    pub plan: Plan,
    /// Checks held out of the recording (`--verify-exec`, `--verify-probe-file`).
    pub held_out: Option<Plan>,
    pub continue_after: Option<ContinueAfter>,
    /// Volume mount points (kept in the slim image).
    pub volumes: Vec<String>,
    pub probe_wait: Duration,
    /// Stream the container's output to stderr (`--show-clogs`).
    pub show_logs: bool,
    /// Fresh starts of the original image under the recorder (`--record-starts`).
    pub record_starts: u32,
    /// Starts of the checked image under its profile (`--verify-starts`).
    pub verify_starts: u32,
    /// Run the image's HEALTHCHECK as a probe (`--healthcheck-probe`).
    pub healthcheck_probe: bool,
    /// How long a recorded stop waits before the kill; `None` skips it (`--stop-timeout 0`).
    pub stop_timeout: Option<Duration>,
    /// Syscalls seccomp.json allows whatever Docker's default says (`--seccomp-allow`).
    pub seccomp_allow: BTreeSet<String>,
    /// The Compose services each run starts beside the target (`--compose-file`).
    pub neighbours: Option<std::sync::Arc<super::neighbours::Neighbours>>,
}

impl Input {
    pub fn parse(args: &RunArgs) -> Result<Self> {
        let mut warnings = Vec::new();
        if args.http_probe_exit_on_failure == Some(false) {
            return Err(UsageError::new(
                "--http-probe-exit-on-failure=false: slim stops whenever a probe fails on the original image",
                "drop the probe the original image fails (a status such as 404 is an answer)",
            )
            .into());
        }
        let mut plan = probe_plan(args);
        let held_out = held_out_plan(args, &plan, &mut warnings)?;
        add_http_probes(args, &mut plan, &mut warnings)?;
        add_exec_and_tcp_probes(args, &mut plan)?;
        let continue_after = parse_continue_after(args)?;
        let env = parse_env(args)?;
        let (binds, volumes) = parse_binds(args)?;
        let extra_ports = parse_extra_ports(args)?;
        let spec = run_spec(args, env, binds)?;
        let seccomp_allow = parse_seccomp_allow(&args.seccomp_allow)?;
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(Self {
            spec,
            extra_ports,
            plan,
            held_out,
            continue_after,
            volumes,
            probe_wait: Duration::from_secs(args.probe_wait),
            show_logs: args.show_clogs,
            record_starts: args.record_starts.max(1),
            verify_starts: args.verify_starts.max(1),
            healthcheck_probe: args.healthcheck_probe == "on",
            stop_timeout: (args.stop_timeout > 0).then(|| Duration::from_secs(args.stop_timeout)),
            seccomp_allow,
            neighbours: None,
        })
    }
}

/// The probe plan's settings (default HTTP probe, ports, attempts, timeout, rounds), without
/// its probes.
fn probe_plan(args: &RunArgs) -> Plan {
    let attempts = match args.http_probe_retry_count {
        Some(retries) => retries.saturating_add(1),
        None => args.probe_retries,
    };
    Plan {
        default_http: !args.http_probe_off && args.http_probe != Some(false),
        http_ports: (!args.http_probe_ports.is_empty()).then(|| args.http_probe_ports.clone()),
        crawl: args.http_probe_crawl.unwrap_or(false),
        exec: args.exec.clone(),
        attempts: attempts.max(1),
        timeout: Duration::from_secs(args.probe_timeout.max(1)),
        rounds: args.probe_rounds.max(1),
        ..Default::default()
    }
}

/// The checks held out of the recording (`--verify-exec`, `--verify-probe-file`), if any;
/// the probe file's warnings go to `warnings`.
fn held_out_plan(
    args: &RunArgs,
    plan: &Plan,
    warnings: &mut Vec<String>,
) -> Result<Option<Plan>, UsageError> {
    let mut held_out = Plan {
        exec: args.verify_exec.clone(),
        attempts: plan.attempts,
        timeout: plan.timeout,
        rounds: 1,
        ..Default::default()
    };
    if let Some(file) = &args.verify_probe_file {
        let probes = prober::probe_file::load(file).map_err(|e| {
            UsageError::new(
                format!("--verify-probe-file: {e}"),
                "fix the probe file (docker-slim's format: {\"commands\": [...]})",
            )
        })?;
        warnings.extend(probes.warnings);
        held_out.http = probes.commands;
    }
    Ok((!held_out.exec.is_empty() || !held_out.http.is_empty()).then_some(held_out))
}

/// Adds the HTTP probes of `--http-probe-cmd-file` and `--http-probe-cmd` to `plan`; the probe
/// file's warnings go to `warnings`.
fn add_http_probes(
    args: &RunArgs,
    plan: &mut Plan,
    warnings: &mut Vec<String>,
) -> Result<(), UsageError> {
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
    for inline in &args.http_probe_cmd {
        let (command, crawl) = prober::probe_file::parse_inline(inline).map_err(|e| {
            UsageError::new(
                format!("--http-probe-cmd {e}"),
                "write [PROTO:][METHOD:]PATH, e.g. --http-probe-cmd POST:/api",
            )
        })?;
        plan.crawl |= crawl;
        plan.http.push(command);
    }
    Ok(())
}

/// Adds the commands of `--exec-file` and the probes of `--tcp-probe` to `plan`.
fn add_exec_and_tcp_probes(args: &RunArgs, plan: &mut Plan) -> Result<(), UsageError> {
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
        plan.tcp.push(
            TcpProbe::parse(tcp).map_err(|e| {
                UsageError::new(e, "--tcp-probe 6379 or --tcp-probe 6379:PING\\r\\n")
            })?,
        );
    }
    Ok(())
}

/// `--continue-after`, if given.
fn parse_continue_after(args: &RunArgs) -> Result<Option<ContinueAfter>, UsageError> {
    args.continue_after
        .as_deref()
        .map(|c| {
            ContinueAfter::parse(c).ok_or_else(|| {
                UsageError::new(
                    format!("--continue-after {c} is not understood"),
                    "use probe, timeout:SECS, signal or enter",
                )
            })
        })
        .transpose()
}

/// The container's environment: `--env`, then the lines of each `--env-file`, all KEY=VALUE.
fn parse_env(args: &RunArgs) -> Result<Vec<String>, UsageError> {
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
            ));
        }
    }
    Ok(env)
}

/// The binds of `--volume` and `--mount`, and the mount points they give (kept in the image).
fn parse_binds(args: &RunArgs) -> Result<(Vec<String>, Vec<String>), UsageError> {
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
    Ok((binds, volumes))
}

/// The container ports of `--expose` and `--publish`.
fn parse_extra_ports(args: &RunArgs) -> Result<Vec<u16>, UsageError> {
    let mut extra_ports = args.expose.clone();
    for publish in &args.publish {
        extra_ports.push(parse_publish(publish)?);
    }
    Ok(extra_ports)
}

/// How the container runs: `env`, `binds` and the run flags, with slim's labels and the
/// user's (`--label`).
fn run_spec(args: &RunArgs, env: Vec<String>, binds: Vec<String>) -> Result<RunSpec, UsageError> {
    let mut spec = RunSpec {
        env,
        binds,
        network: args.network.clone(),
        entrypoint: args.entrypoint.as_deref().map(split_command).transpose()?,
        cmd: args.cmd.as_deref().map(split_command).transpose()?,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        runtime: args.runtime.clone(),
        labels: crate::owner::Owner::current().labels(),
        ..Default::default()
    };
    for label in &args.label {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        if key.is_empty() || key.starts_with("slim.") {
            return Err(UsageError::new(
                format!("--label {label}: not KEY=VALUE, or a `slim.` label (slim's own)"),
                "write --label KEY=VALUE with a key outside `slim.`",
            ));
        }
        spec.labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(spec)
}

/// `--seccomp-allow NAME`: a syscall name libseccomp knows on some architecture slim records.
fn parse_seccomp_allow(names: &[String]) -> Result<BTreeSet<String>, UsageError> {
    use crate::syscalls::Arch;
    let mut allow = BTreeSet::new();
    for name in names {
        let known = [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm]
            .iter()
            .any(|arch| arch.number(name).is_some());
        if !known {
            return Err(UsageError::new(
                format!("--seccomp-allow {name}: not a syscall name slim knows"),
                "use libseccomp's name, as seccomp.json lists them (unshare, io_uring_setup...)",
            ));
        }
        allow.insert(name.clone());
    }
    Ok(allow)
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
    crate::shell_words::split(text)
        .ok_or_else(|| UsageError::new(format!("unbalanced quote in `{text}`"), "close the quote"))
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
pub(super) fn read_lines(file: &Path, flag: &str, hint: &str) -> Result<Vec<String>, UsageError> {
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
    fn seccomp_allow_takes_known_syscall_names_only() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let allow = parse_seccomp_allow(&names(&["unshare", "io_uring_setup", "unshare"])).unwrap();
        assert_eq!(
            allow,
            ["io_uring_setup", "unshare"].map(String::from).into()
        );
        // set_tls exists only on 32-bit arm: still a name slim knows.
        assert!(parse_seccomp_allow(&names(&["set_tls"])).is_ok());
        let err = parse_seccomp_allow(&names(&["unshare", "CLONE_NEWUSER"])).unwrap_err();
        assert!(err.to_string().contains("CLONE_NEWUSER"), "{err}");
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
