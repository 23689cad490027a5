//! The container engine (Docker, or Podman's compatible socket) through its HTTP API (bollard).
//! Connects the way the docker CLI does (`DOCKER_HOST`, unix or tcp) and negotiates the API
//! version, so older engines work too.

mod containers;
mod images;

use bollard::Docker;

pub use containers::{ContainerState, RunSpec, Started};
pub use images::ImageInfo;

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
    #[error("no such image: {0} (`docker images` lists local images; slim never pulls)")]
    NoSuchImage(String),
    #[error("{what} failed")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("the engine refused `{operation}`")]
    Api {
        operation: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

/// A connection to the engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
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

impl Engine {
    /// Connects as the docker CLI would and checks that the engine answers.
    pub async fn connect() -> Result<Self, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            host: host(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// The bollard client, for the modules that stream images and run containers.
    #[allow(
        dead_code,
        reason = "used by image I/O and `slim build` once they land"
    )]
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Looks up a running container by name or id.
    pub async fn running_container(&self, name: &str) -> Result<RunningContainer, EngineError> {
        let info =
            self.docker
                .inspect_container(name, None)
                .await
                .map_err(|err| match is_not_found(&err) {
                    true => EngineError::NoSuchContainer(name.to_owned()),
                    false => EngineError::Api {
                        operation: "inspect container",
                        source: err,
                    },
                })?;
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
