//! Running the target: create with the user's overrides (docker-slim's flags), publish every
//! TCP port on 127.0.0.1 only, start, watch, exec into, read logs, and always remove.

use std::collections::{BTreeMap, HashMap};

use bollard::{
    exec::{CreateExecOptions, StartExecResults},
    models::{ContainerCreateBody, HostConfig, PortBinding},
    query_parameters::{
        CreateContainerOptions, ListContainersOptionsBuilder, LogsOptions, RemoveContainerOptions,
        StopContainerOptions,
    },
};
use futures_util::StreamExt as _;

use super::{is_not_found, Engine, EngineError, EngineKind};

/// How to run the target container.
#[derive(Clone, Debug, Default)]
pub struct RunSpec {
    pub image: String,
    pub env: Vec<String>,
    /// `SRC:DST[:OPTS]` binds and named volumes (`--volume`, and `--mount` converted).
    pub binds: Vec<String>,
    pub network: Option<String>,
    /// Container TCP ports to publish on 127.0.0.1 (exposed by the image, plus `--expose`).
    pub ports: Vec<u16>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `seccomp=...` security option: `unconfined` while recording, a profile when verifying.
    pub seccomp: Option<String>,
    /// `apparmor=...` security option: the name of a profile loaded in the kernel.
    pub apparmor: Option<String>,
    /// Container runtime registered with the engine (`runc`, `crun`); the engine's default when
    /// unset.
    pub runtime: Option<String>,
    pub labels: HashMap<String, String>,
    /// The PID namespace to run in instead of a new one: `container:ID` or `host`.
    pub pid: Option<String>,
    /// The IPC namespace to join: `container:ID` (Docker: only a `shareable` one) or `host`.
    pub ipc: Option<String>,
    /// The UTS namespace to join: `container:ID` (Podman only; Docker refuses it, and gives a
    /// container that joins another's network that one's host name instead).
    pub uts: Option<String>,
    /// Every capability and device, and no seccomp or AppArmor profile (`--privileged`).
    pub privileged: bool,
    /// Keep stdin open for one attach (`docker run -i`), closed when the attach closes it.
    pub stdin: bool,
    /// Give it a terminal (`docker run -t`): stdout and stderr are one stream then.
    pub tty: bool,
    /// DNS names it has on `network` besides its own (a Compose service's name and aliases).
    pub aliases: Vec<String>,
    /// tmpfs mount points, each with its options after a `:` when given.
    pub tmpfs: Vec<String>,
    /// A healthcheck instead of the image's (a Compose service's).
    pub healthcheck: Option<crate::compose::Healthcheck>,
}

/// A started container.
#[derive(Clone, Debug)]
pub struct Started {
    pub id: String,
    /// Container TCP port -> host port on 127.0.0.1.
    pub ports: BTreeMap<u16, u16>,
    /// The container's own address on its network, for readiness checks.
    pub ip: Option<String>,
}

/// State of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: i64,
    pub pid: u32,
}

impl Engine {
    /// Creates the container (not started yet).
    pub async fn create_container(&self, spec: &RunSpec) -> Result<String, EngineError> {
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed: Vec<String> = Vec::new();
        for port in &spec.ports {
            let key = format!("{port}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            );
        }
        let mut security_opt = Vec::new();
        // Podman's API reads `seccomp=` as a file name, Docker's as the profile itself: for
        // Podman the profile goes through a file that lives until the container is created.
        let mut profile_file = None;
        if let Some(seccomp) = &spec.seccomp {
            match self.kind {
                EngineKind::Podman if seccomp != "unconfined" => {
                    let file = ProfileFile::write(seccomp)?;
                    security_opt.push(format!("seccomp={}", file.path.display()));
                    profile_file = Some(file);
                }
                _ => security_opt.push(format!("seccomp={seccomp}")),
            }
        }
        if let Some(apparmor) = &spec.apparmor {
            security_opt.push(format!("apparmor={apparmor}"));
        }
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            network_mode: spec.network.clone(),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            runtime: spec.runtime.clone(),
            pid_mode: spec.pid.clone(),
            ipc_mode: spec.ipc.clone(),
            uts_mode: spec.uts.clone(),
            privileged: spec.privileged.then_some(true),
            tmpfs: (!spec.tmpfs.is_empty()).then(|| {
                spec.tmpfs
                    .iter()
                    .map(|t| match t.split_once(':') {
                        Some((path, options)) => (path.to_owned(), options.to_owned()),
                        None => (t.clone(), String::new()),
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let networking_config = match (&spec.network, spec.aliases.is_empty()) {
            (Some(network), false) => Some(bollard::models::NetworkingConfig {
                endpoints_config: Some(
                    [(
                        network.clone(),
                        bollard::models::EndpointSettings {
                            aliases: Some(spec.aliases.clone()),
                            ..Default::default()
                        },
                    )]
                    .into(),
                ),
            }),
            _ => None,
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            working_dir: spec.workdir.clone(),
            user: spec.user.clone(),
            exposed_ports: Some(exposed),
            labels: Some(spec.labels.clone()),
            host_config: Some(host_config),
            tty: spec.tty.then_some(true),
            open_stdin: spec.stdin.then_some(true),
            stdin_once: spec.stdin.then_some(true),
            attach_stdin: spec.stdin.then_some(true),
            networking_config,
            healthcheck: spec.healthcheck.as_ref().map(health_config),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(|source| EngineError::api("create container", source))?;
        drop(profile_file);
        Ok(created.id)
    }

    /// Starts a created container and reads its published ports.
    pub async fn start_container(&self, id: &str) -> Result<Started, EngineError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|source| EngineError::api("start container", source))?;
        let info = self.inspect(id).await?;
        let settings = info.network_settings.unwrap_or_default();
        let mut ports = BTreeMap::new();
        for (key, bindings) in settings.ports.unwrap_or_default() {
            let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host_port = bindings
                .unwrap_or_default()
                .into_iter()
                .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
                .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
            if let Some(host_port) = host_port {
                ports.insert(port, host_port);
            }
        }
        let ip = settings
            .networks
            .unwrap_or_default()
            .into_values()
            .find_map(|n| n.ip_address.filter(|ip| !ip.is_empty()));
        Ok(Started {
            id: id.to_owned(),
            ports,
            ip,
        })
    }

    async fn inspect(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, EngineError> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(|source| EngineError::api("inspect container", source))
    }

    pub async fn container_state(&self, id: &str) -> Result<ContainerState, EngineError> {
        let info = self.inspect(id).await?;
        let state = info.state.unwrap_or_default();
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            pid: state.pid.unwrap_or(0).max(0) as u32,
        })
    }

    /// Copies the container's output to stderr as it comes, each line behind `  app | `, until
    /// the container stops (or the future is dropped).
    pub async fn stream_logs(&self, id: &str) {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            follow: true,
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut pending = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(end) = pending.find('\n') {
                eprintln!("  app | {}", pending[..end].trim_end_matches('\r'));
                pending.drain(..=end);
            }
        }
        if !pending.is_empty() {
            eprintln!("  app | {pending}");
        }
    }

    /// The last `lines` lines of the container's output.
    pub async fn logs_tail(&self, id: &str, lines: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }

    /// Runs `sh -c COMMAND` inside the container; returns its exit code and output.
    pub async fn exec(&self, id: &str, command: &str) -> Result<(i64, Vec<u8>), EngineError> {
        let api = |operation| move |source| EngineError::api(operation, source);
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(crate::prober::exec_argv(command)),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api("create exec"))?;
        let mut output = Vec::new();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(api("start exec"))?
        {
            while let Some(Ok(chunk)) = stream.next().await {
                output.extend_from_slice(&chunk.into_bytes());
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(api("inspect exec"))?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }

    /// Every container (running or not) carrying `label`: (id, labels).
    pub async fn containers_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let filters: HashMap<&str, Vec<&str>> = [("label", vec![label])].into();
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|source| EngineError::api("list containers", source))?;
        Ok(list
            .into_iter()
            .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
            .collect())
    }

    /// The signal the engine stops the container with (its `StopSignal`), when it names one.
    pub async fn stop_signal(&self, id: &str) -> Result<Option<String>, EngineError> {
        let info = self.inspect(id).await?;
        Ok(info
            .config
            .and_then(|c| c.stop_signal)
            .filter(|s| !s.is_empty()))
    }

    /// Stops the container as `docker stop` does: its stop signal, then SIGKILL once `timeout`
    /// has passed. Returns when it stopped; already stopped or gone is fine.
    pub async fn stop_container(
        &self,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            signal: None,
            t: Some(timeout.as_secs().min(i32::MAX as u64) as i32),
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(source) => Err(EngineError::api("stop container", source)),
        }
    }

    /// Removes the container and its anonymous volumes, whatever its state. Already gone is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(source) => Err(EngineError::api("remove container", source)),
        }
    }
}

/// A Compose healthcheck in the engine's terms (durations in nanoseconds, 0 for the default).
fn health_config(check: &crate::compose::Healthcheck) -> bollard::models::HealthConfig {
    let nanos =
        |d: Option<std::time::Duration>| d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    bollard::models::HealthConfig {
        test: Some(check.test.clone()),
        interval: nanos(check.interval),
        timeout: nanos(check.timeout),
        start_period: nanos(check.start_period),
        start_interval: nanos(check.start_interval),
        retries: check.retries.map(i64::from),
    }
}

/// A seccomp profile written for an engine that reads it from a file (Podman): created new
/// (never through an existing name or link) in the temp dir, removed on drop.
struct ProfileFile {
    path: std::path::PathBuf,
}

impl ProfileFile {
    fn write(profile: &str) -> Result<Self, EngineError> {
        use std::{io::Write as _, sync::atomic::Ordering};
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let mut attempt = 0;
        let (path, mut file) = loop {
            // The pid and a counter, and the clock: a file a crashed run of the same pid left
            // is skipped, not failed on.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!(
                "slim-seccomp-{}-{}-{nanos}.json",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => break (path, file),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(source) => {
                    return Err(EngineError::Io {
                        what: format!("writing the seccomp profile {}", path.display()),
                        source,
                    })
                }
            }
        };
        let what = format!("writing the seccomp profile {}", path.display());
        // From here on the guard removes it, also when the write fails.
        let guard = Self { path };
        file.write_all(profile.as_bytes())
            .map_err(|source| EngineError::Io { what, source })?;
        Ok(guard)
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
