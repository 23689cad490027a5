//! Joining a running container (`slim debug`): what a container runs and with which privileges,
//! the labels of an image, and running a created container attached to slim's own stdin and
//! outputs (its terminal's size followed) until it exits. Creating and removing containers stay
//! in `containers.rs`; what to run, and when to remove it, is the command's.

use std::collections::BTreeMap;

use bollard::{
    container::{AttachContainerResults, LogOutput},
    query_parameters::{
        AttachContainerOptions, ResizeContainerTTYOptions, StartContainerOptions,
        WaitContainerOptions,
    },
};
use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

use super::{Engine, EngineError};

/// A container as `slim debug` joins it: what it runs, and the privileges it runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    pub running: bool,
    /// Host pid of its init process (0 when it does not run).
    pub pid: u32,
    /// The id (`sha256:...`) of the image it runs.
    pub image_id: String,
    /// The image as it was named when the container was created.
    pub image: String,
    /// The user it runs as (`Config.User`, the image's unless overridden; empty: root).
    pub user: String,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `private`, `shareable`, `host`, `container:ID` or `none` (empty: the engine's default).
    pub ipc_mode: String,
    /// `host` or `container:ID`; empty for a PID namespace of its own.
    pub pid_mode: String,
}

/// A terminal's size, in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtySize {
    pub rows: u16,
    pub cols: u16,
}

/// What a container is attached to: an input (its end closes the container's stdin), the two
/// outputs (one stream with a TTY: all goes to `stdout`), and for a container with a TTY the
/// size to give it, followed as it changes.
pub struct Stdio {
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Box<dyn AsyncWrite + Send + Unpin>,
    pub stderr: Box<dyn AsyncWrite + Send + Unpin>,
    pub tty_size: Option<tokio::sync::watch::Receiver<TtySize>>,
}

impl Engine {
    /// Inspects a container by name or id ([`EngineError::NoSuchContainer`] when absent).
    pub async fn container_info(&self, name: &str) -> Result<ContainerInfo, EngineError> {
        let info = self.inspect_container(name).await?;
        let state = info.state.unwrap_or_default();
        let config = info.config.unwrap_or_default();
        let host = info.host_config.unwrap_or_default();
        Ok(ContainerInfo {
            id: info.id.unwrap_or_default(),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            running: state.running == Some(true),
            pid: state.pid.unwrap_or(0).max(0) as u32,
            image_id: info.image.unwrap_or_default(),
            image: config.image.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            privileged: host.privileged == Some(true),
            cap_add: host.cap_add.unwrap_or_default(),
            cap_drop: host.cap_drop.unwrap_or_default(),
            ipc_mode: host.ipc_mode.unwrap_or_default(),
            pid_mode: host.pid_mode.unwrap_or_default(),
        })
    }

    /// The labels of an image present in the engine ([`EngineError::NoSuchImage`] when absent).
    pub async fn image_labels(&self, name: &str) -> Result<BTreeMap<String, String>, EngineError> {
        let info = self.inspect_image(name).await?;
        Ok(info
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// Attaches to the created container `id`, starts it, copies its input and outputs until
    /// it exits, and returns its exit code. The container stays (its removal is the caller's,
    /// also when this future is dropped).
    pub async fn run_attached(&self, id: &str, stdio: Stdio) -> Result<i64, EngineError> {
        let api = |operation| move |source| EngineError::api(operation, source);
        let Stdio {
            stdin,
            mut stdout,
            mut stderr,
            tty_size,
        } = stdio;
        let options = AttachContainerOptions {
            stdin: stdin.is_some(),
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        // Attached before it starts, so nothing it writes first is missed.
        let AttachContainerResults {
            mut output,
            mut input,
        } = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(api("attach to container"))?;
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(api("start container"))?;
        // The terminal's size first, before any input goes in: a command typed ahead would
        // otherwise run on a terminal of 0 x 0.
        let mut tty_size = tty_size;
        if let Some(sizes) = &mut tty_size {
            let size = *sizes.borrow_and_update();
            self.resize_tty(id, size).await;
        }
        let feed = async {
            if let Some(mut stdin) = stdin {
                let _ = tokio::io::copy(&mut stdin, &mut input).await;
                // The end of slim's input is the end of the container's.
                let _ = input.shutdown().await;
            }
            std::future::pending::<()>().await
        };
        let resize = async {
            if let Some(mut sizes) = tty_size {
                while sizes.changed().await.is_ok() {
                    let size = *sizes.borrow_and_update();
                    self.resize_tty(id, size).await;
                }
            }
            std::future::pending::<()>().await
        };
        let copy_out = async {
            while let Some(chunk) = output.next().await {
                let (out, message) = match chunk.map_err(api("attach to container"))? {
                    LogOutput::StdErr { message } => (&mut stderr, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (&mut stdout, message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                // A closed output (`| head`) is no reason to stop the container early.
                let _ = out.write_all(&message).await;
                let _ = out.flush().await;
            }
            Ok::<(), EngineError>(())
        };
        tokio::select! {
            copied = copy_out => copied?,
            () = feed => {}
            () = resize => {}
        }
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error of the wait.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(source)) => Err(api("wait for container")(source)),
            None => Err(EngineError::Stopped {
                operation: "wait for container",
                reason: "the engine ended the wait without an exit code".into(),
            }),
        }
    }

    /// Gives the container's terminal `size` (a failure only costs the right line wrapping).
    async fn resize_tty(&self, id: &str, size: TtySize) {
        let options = ResizeContainerTTYOptions {
            h: size.rows.into(),
            w: size.cols.into(),
        };
        if let Err(err) = self.docker.resize_container_tty(id, options).await {
            tracing::debug!("resizing the terminal: {err}");
        }
    }
}
