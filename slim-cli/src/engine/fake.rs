//! An in-memory engine for tests of the build's orchestration (no root, no engine): each
//! container's "app" is a small HTTP server on 127.0.0.1 that its published ports point at, or
//! an app that exits at once; every operation is written to a journal the tests read, and any
//! operation can be made to fail.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use super::{ContainerEngine, ContainerState, EngineError, RunSpec, Started};

/// What a fake container runs.
#[derive(Clone, Debug)]
pub enum App {
    /// Answers every HTTP request with 200 and this body.
    Http { body: String },
    /// Exits with this code as soon as it starts, printing `logs`.
    ExitsAtStart { code: i64, logs: String },
}

/// Operations the fake can be told to refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Create,
    Start,
    Remove,
}

#[derive(Debug)]
struct Container {
    running: bool,
    exit_code: i64,
    logs: String,
    server: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u32,
    containers: BTreeMap<String, Container>,
    journal: Vec<String>,
    failing: BTreeSet<Op>,
}

/// The fake engine; clones share their containers and journal.
#[derive(Clone, Debug)]
pub struct FakeEngine {
    app: App,
    state: Arc<Mutex<State>>,
}

impl FakeEngine {
    /// An engine whose containers all run `app`.
    pub fn new(app: App) -> Self {
        Self {
            app,
            state: Default::default(),
        }
    }

    /// Makes `op` fail from now on (as an engine that refuses it).
    pub fn fail(&self, op: Op) {
        self.lock().failing.insert(op);
    }

    /// Every operation so far, as `create c1`, `start c1`, `remove c1`...
    pub fn journal(&self) -> Vec<String> {
        self.lock().journal.clone()
    }

    /// Containers that exist now (created and not removed).
    pub fn containers(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refused(operation: &'static str) -> EngineError {
        EngineError::Stopped {
            operation,
            reason: "refused by the fake engine".into(),
        }
    }

    fn note(&self, op: Option<Op>, line: String) -> Result<(), EngineError> {
        let mut state = self.lock();
        state.journal.push(line);
        match op {
            Some(op) if state.failing.contains(&op) => Err(Self::refused("fake")),
            _ => Ok(()),
        }
    }
}

/// Answers every request on `listener` with 200 and `body` (one request per connection).
async fn serve(listener: TcpListener, body: String) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = request.starts_with(b"HEAD ");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                if head { "" } else { body.as_str() }
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

impl ContainerEngine for FakeEngine {
    async fn create_container(&self, spec: &RunSpec) -> Result<String, EngineError> {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            format!("c{}", state.next_id)
        };
        self.note(Some(Op::Create), format!("create {id} {}", spec.image))?;
        self.lock().containers.insert(
            id.clone(),
            Container {
                running: false,
                exit_code: 0,
                logs: String::new(),
                server: None,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<Started, EngineError> {
        self.note(Some(Op::Start), format!("start {id}"))?;
        let mut ports = BTreeMap::new();
        let (running, exit_code, logs, server) = match &self.app {
            App::Http { body } => {
                let listener = TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .map_err(|source| EngineError::Io {
                        what: "the fake app's listener".into(),
                        source,
                    })?;
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                for exposed in [80, 8000, 8080] {
                    ports.insert(exposed, port);
                }
                let server = tokio::spawn(serve(listener, body.clone()));
                (true, 0, "listening\n".to_owned(), Some(server))
            }
            App::ExitsAtStart { code, logs } => (false, *code, logs.clone(), None),
        };
        let mut state = self.lock();
        let container = state
            .containers
            .get_mut(id)
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_owned()))?;
        container.running = running;
        container.exit_code = exit_code;
        container.logs = logs;
        container.server = server;
        Ok(Started {
            id: id.to_owned(),
            ports,
            ip: None,
        })
    }

    async fn container_state(&self, id: &str) -> Result<ContainerState, EngineError> {
        let state = self.lock();
        let container = state
            .containers
            .get(id)
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_owned()))?;
        Ok(ContainerState {
            running: container.running,
            exit_code: container.exit_code,
            // The test process stands in for the app's init (its namespaces, its status).
            pid: if container.running {
                std::process::id()
            } else {
                0
            },
        })
    }

    async fn stream_logs(&self, _id: &str) {}

    async fn logs_tail(&self, id: &str, _lines: usize) -> String {
        self.lock()
            .containers
            .get(id)
            .map(|c| c.logs.clone())
            .unwrap_or_default()
    }

    async fn exec(&self, id: &str, command: &str) -> Result<(i64, Vec<u8>), EngineError> {
        self.note(None, format!("exec {id} {command}"))?;
        Ok((0, format!("ran {command}\n").into_bytes()))
    }

    async fn stop_signal(&self, _id: &str) -> Result<Option<String>, EngineError> {
        Ok(None)
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<(), EngineError> {
        self.note(None, format!("stop {id}"))?;
        if let Some(container) = self.lock().containers.get_mut(id) {
            container.running = false;
            if let Some(server) = container.server.take() {
                server.abort();
            }
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        self.note(Some(Op::Remove), format!("remove {id}"))?;
        if let Some(container) = self.lock().containers.remove(id) {
            if let Some(server) = container.server {
                server.abort();
            }
        }
        Ok(())
    }
}
