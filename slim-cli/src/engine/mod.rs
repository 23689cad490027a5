//! The container engine (Docker, or Podman's compatible socket) through its HTTP API (bollard).
//! Connects the way the docker CLI does (`DOCKER_HOST`, unix or tcp) and negotiates the API
//! version, so older engines work too.

mod attach;
mod containers;
pub mod distribution;
#[cfg(test)]
pub mod fake;
mod images;
mod neighbours;
pub mod registry;

use std::{collections::HashMap, future::Future, io::Write, path::Path, time::Duration};

use bollard::Docker;

pub use attach::{ContainerInfo, Stdio, TtySize};
pub use containers::{ContainerState, RunSpec, Started};
pub use images::{ImageInfo, StorageRoot};
pub use neighbours::{Health, HealthStatus};

/// Why talking to the engine failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the container engine at {host}: is dockerd running? (`cargo xtask setup` starts it, or set DOCKER_HOST)")]
    Unreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("no such container: {0} (`docker ps` lists the running ones)")]
    NoSuchContainer(String),
    #[error("no such image: {0} (`docker images` lists local images; `slim build` pulls what the engine lacks)")]
    NoSuchImage(String),
    #[error("{what} failed")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("the container engine stopped answering during `{operation}` ({reason})")]
    Stopped {
        operation: &'static str,
        /// The innermost cause (the client's wrappers say nothing more).
        reason: String,
    },
    #[error("{operation} {reference}: {}", message.trim())]
    Registry {
        operation: &'static str,
        reference: String,
        /// The HTTP status the engine answered with, when it did not stream the failure.
        status: Option<u16>,
        message: String,
    },
    #[error("the engine refused `{operation}`")]
    Api {
        operation: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    /// The error of an API call: [`EngineError::Stopped`] when the engine did not answer at all
    /// (its socket is gone, the connection broke, it timed out), else what it refused.
    pub fn api(operation: &'static str, source: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        let stopped = matches!(
            source,
            E::IOError { .. }
                | E::HyperResponseError { .. }
                | E::HyperLegacyError { .. }
                | E::RequestTimeoutError
                | E::SocketNotFoundError(_)
        );
        if stopped {
            let mut reason: &dyn std::error::Error = &source;
            while let Some(inner) = reason.source() {
                reason = inner;
            }
            Self::Stopped {
                operation,
                reason: reason.to_string(),
            }
        } else {
            Self::Api { operation, source }
        }
    }

    /// Whether the engine itself is gone (not answering), as opposed to refusing a call.
    pub fn engine_gone(&self) -> bool {
        matches!(self, Self::Stopped { .. } | Self::Unreachable { .. })
    }
}

/// What `slim build`, `slim profile` and `slim debug` ask of an engine, images and containers:
/// the seam between the commands and the engine, implemented by [`Engine`] (the Docker Engine API,
/// Docker or Podman) and, in tests, by an in-memory fake whose images are archives in memory and
/// whose containers are small local servers.
pub trait ContainerEngine: Clone + Send + Sync + 'static {
    /// Which engine this is, where their APIs differ.
    fn kind(&self) -> EngineKind;
    /// Inspects an image present in the engine ([`EngineError::NoSuchImage`] when absent).
    fn image(&self, name: &str) -> impl Future<Output = Result<ImageInfo, EngineError>> + Send;
    /// Where the engine keeps its images, when it says.
    fn storage_root(&self)
        -> impl Future<Output = Result<Option<StorageRoot>, EngineError>> + Send;
    /// Writes `docker save NAME` to the file at `dest`; returns its size.
    fn save_image(
        &self,
        name: &str,
        dest: &Path,
    ) -> impl Future<Output = Result<u64, EngineError>> + Send;
    /// Loads the docker-archive that `produce` writes (on a blocking thread, streamed).
    fn load_image<F, T>(&self, produce: F) -> impl Future<Output = Result<T, EngineError>> + Send
    where
        F: FnOnce(&mut dyn Write) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static;
    /// Tags image `id` as `reference`, moving the tag if another image had it.
    fn tag_image(
        &self,
        id: &str,
        reference: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Pulls `reference` from its registry.
    fn pull_image(
        &self,
        reference: &str,
        credentials: Option<registry::Credentials>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Pushes the engine's `reference` to its registry.
    fn push_image(
        &self,
        reference: &str,
        credentials: Option<registry::Credentials>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes the tag `reference` (and the image when it was its last tag; gone is fine),
    /// waiting a while for an engine that stopped answering.
    fn untag_image(&self, reference: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Creates the container (not started yet); returns its id.
    fn create_container(
        &self,
        spec: &RunSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Starts it; returns its published ports and address.
    fn start_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Started, EngineError>> + Send;
    fn container_state(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, EngineError>> + Send;
    /// Copies its output to stderr until it ends (`--show-clogs`).
    fn stream_logs(&self, id: &str) -> impl Future<Output = ()> + Send;
    /// Its last `lines` lines of output (empty when they cannot be had).
    fn logs_tail(&self, id: &str, lines: usize) -> impl Future<Output = String> + Send;
    /// Runs `command` (through `sh -c`) in it: exit code and output.
    fn exec(
        &self,
        id: &str,
        command: &str,
    ) -> impl Future<Output = Result<(i64, Vec<u8>), EngineError>> + Send;
    /// The signal the engine stops it with (`None`: the engine's default, SIGTERM).
    fn stop_signal(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, EngineError>> + Send;
    /// Stops it: its stop signal, then SIGKILL after `timeout`.
    fn stop_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes it (forcibly), waiting a while for an engine that stopped answering.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Inspects a container by name or id ([`EngineError::NoSuchContainer`] when absent).
    fn container_info(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ContainerInfo, EngineError>> + Send;
    /// The labels of an image ([`EngineError::NoSuchImage`] when absent).
    fn image_labels(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, String>, EngineError>> + Send;
    /// Attaches `stdio` to the created container `id`, starts it and returns its exit code
    /// once it exited (it is not removed).
    fn run_attached(
        &self,
        id: &str,
        stdio: Stdio,
    ) -> impl Future<Output = Result<i64, EngineError>> + Send;
    /// Its health, as its healthcheck last found it.
    fn health(&self, id: &str) -> impl Future<Output = Result<Health, EngineError>> + Send;
    /// Creates a private bridge network `name` carrying `labels`.
    fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes network `name` (gone is fine), waiting a while for an engine that stopped
    /// answering.
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Creates an empty local volume `name` carrying `labels`.
    fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes volume `name` (gone is fine), waiting a while for an engine that stopped
    /// answering.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
}

impl ContainerEngine for Engine {
    fn kind(&self) -> EngineKind {
        self.kind
    }

    async fn image(&self, name: &str) -> Result<ImageInfo, EngineError> {
        Engine::image(self, name).await
    }

    async fn storage_root(&self) -> Result<Option<StorageRoot>, EngineError> {
        Engine::storage_root(self).await
    }

    async fn save_image(&self, name: &str, dest: &Path) -> Result<u64, EngineError> {
        Engine::save_image(self, name, dest).await
    }

    async fn load_image<F, T>(&self, produce: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut dyn Write) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Engine::load_image(self, produce).await
    }

    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        Engine::tag_image(self, id, reference).await
    }

    async fn untag_image(&self, reference: &str) -> Result<(), EngineError> {
        self.patiently(|| Engine::untag_image(self, reference))
            .await
    }

    async fn pull_image(
        &self,
        reference: &str,
        credentials: Option<registry::Credentials>,
    ) -> Result<(), EngineError> {
        Engine::pull_image(self, reference, credentials).await
    }

    async fn push_image(
        &self,
        reference: &str,
        credentials: Option<registry::Credentials>,
    ) -> Result<(), EngineError> {
        Engine::push_image(self, reference, credentials).await
    }

    async fn create_container(&self, spec: &RunSpec) -> Result<String, EngineError> {
        Engine::create_container(self, spec).await
    }

    async fn start_container(&self, id: &str) -> Result<Started, EngineError> {
        Engine::start_container(self, id).await
    }

    async fn container_state(&self, id: &str) -> Result<ContainerState, EngineError> {
        Engine::container_state(self, id).await
    }

    async fn stream_logs(&self, id: &str) {
        Engine::stream_logs(self, id).await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> String {
        Engine::logs_tail(self, id, lines).await
    }

    async fn exec(&self, id: &str, command: &str) -> Result<(i64, Vec<u8>), EngineError> {
        Engine::exec(self, id, command).await
    }

    async fn stop_signal(&self, id: &str) -> Result<Option<String>, EngineError> {
        Engine::stop_signal(self, id).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        Engine::stop_container(self, id, timeout).await
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.patiently(|| Engine::remove_container(self, id)).await
    }

    async fn container_info(&self, name: &str) -> Result<ContainerInfo, EngineError> {
        Engine::container_info(self, name).await
    }

    async fn image_labels(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, EngineError> {
        Engine::image_labels(self, name).await
    }

    async fn run_attached(&self, id: &str, stdio: Stdio) -> Result<i64, EngineError> {
        Engine::run_attached(self, id, stdio).await
    }

    async fn health(&self, id: &str) -> Result<Health, EngineError> {
        Engine::health(self, id).await
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        Engine::create_network(self, name, labels).await
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.patiently(|| Engine::remove_network(self, name)).await
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        Engine::create_volume(self, name, labels).await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.patiently(|| Engine::remove_volume(self, name)).await
    }
}

/// Which engine answers the Docker API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }
}

/// A connection to the engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Docker or Podman, where their APIs differ.
    kind: EngineKind,
    /// Set once a clean-up waited for the engine in vain: later ones do not wait again.
    waited_in_vain: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What slim needs to know about a running container.
#[derive(Clone, Debug)]
pub struct RunningContainer {
    pub id: String,
    /// Host pid of its init process.
    pub pid: u32,
    pub working_dir: String,
}

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// How long clean-up waits for an engine that stopped answering (a restart takes seconds).
const CLEANUP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

impl Engine {
    /// Runs the clean-up step `undo`, retrying while the engine does not answer (it may be
    /// restarting) for up to 20 s. Returns the last error when it never came back.
    pub async fn patiently<F, Fut>(&self, mut undo: F) -> Result<(), EngineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), EngineError>>,
    {
        use std::sync::atomic::Ordering;
        let patience = match self.waited_in_vain.load(Ordering::Relaxed) {
            true => std::time::Duration::ZERO,
            false => CLEANUP_PATIENCE,
        };
        let deadline = std::time::Instant::now() + patience;
        let mut told = false;
        loop {
            match undo().await {
                Err(err) if err.engine_gone() && std::time::Instant::now() >= deadline => {
                    self.waited_in_vain.store(true, Ordering::Relaxed);
                    return Err(err);
                }
                Err(err) if err.engine_gone() => {
                    if !told {
                        tracing::warn!("the engine is not answering; waiting for it to clean up");
                        told = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// Connects as the docker CLI would and checks that the engine answers.
    pub async fn connect() -> Result<Self, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            host: host(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        let version = docker
            .version()
            .await
            .map_err(|source| EngineError::api("version", source))?;
        let podman = version
            .components
            .unwrap_or_default()
            .iter()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"));
        let kind = match podman {
            true => EngineKind::Podman,
            false => EngineKind::Docker,
        };
        tracing::debug!(?kind, version = version.version, "connected to the engine");
        Ok(Self {
            docker,
            kind,
            waited_in_vain: Default::default(),
        })
    }

    /// Docker or Podman.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The bollard client, for the modules that stream images and run containers.
    #[allow(
        dead_code,
        reason = "used by image I/O and `slim build` once they land"
    )]
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The engine's inspection of a container by name or id
    /// ([`EngineError::NoSuchContainer`] when absent).
    pub(crate) async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, EngineError> {
        self.docker
            .inspect_container(name, None)
            .await
            .map_err(|err| match is_not_found(&err) {
                true => EngineError::NoSuchContainer(name.to_owned()),
                false => EngineError::api("inspect container", err),
            })
    }

    /// Looks up a running container by name or id.
    pub async fn running_container(&self, name: &str) -> Result<RunningContainer, EngineError> {
        let info = self.inspect_container(name).await?;
        let state = info.state.unwrap_or_default();
        let pid = state.pid.unwrap_or(0);
        if state.running != Some(true) || pid <= 0 {
            return Err(EngineError::NotRunning(name.to_owned()));
        }
        Ok(RunningContainer {
            id: info.id.unwrap_or_default(),
            pid: pid as u32,
            working_dir: info
                .config
                .and_then(|c| c.working_dir)
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
        })
    }
}
