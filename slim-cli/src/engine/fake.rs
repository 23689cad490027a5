//! An in-memory engine for tests of the build's orchestration (no root, no engine): images are
//! docker-archives held in memory (loaded, saved, tagged as the engine does), each container's
//! "app" is a small HTTP server on 127.0.0.1 that its published ports point at (answering from
//! its image's files), or an app that exits at once; every operation is written to a journal
//! the tests read, any operation can be made to fail, and a stop can be requested at any one.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{Read as _, Write},
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use super::{
    ContainerEngine, ContainerState, EngineError, EngineKind, Health, HealthStatus, ImageInfo,
    RunSpec, Started, StorageRoot,
};
use crate::image::writer::sha256_digest;

/// What a fake container runs.
#[derive(Clone, Debug)]
pub enum App {
    /// Answers every HTTP request with 200 and this body.
    Http { body: String },
    /// Answers every HTTP request with the content of this file of its image (200), or 500
    /// when the image lacks it: an app that breaks when the slim image dropped its data.
    ServesFile { path: String },
    /// Exits with this code as soon as it starts, printing `logs`.
    ExitsAtStart { code: i64, logs: String },
}

/// Operations the fake can be told to refuse, or to request a stop at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Create,
    Start,
    Remove,
    Load,
    Tag,
    Untag,
    Save,
    Pull,
    Push,
    /// Attaching to a container (`slim debug`).
    Attach,
    /// Creating a network.
    Network,
    /// Creating a volume.
    Volume,
}

/// Something that happens meanwhile, scheduled at an operation ([`FakeEngine::at`]).
#[derive(Debug)]
pub enum Then {
    /// A stop is requested through the sender, as Ctrl-C does.
    Stop(tokio::sync::watch::Sender<bool>),
    /// The tag (first) moves to the image the second names, as `docker tag` does.
    Retag(String, String),
    /// The tag goes, and the image with it unless a container uses it (`docker rmi -f`).
    Remove(String),
    /// The tag goes and its image with it, even one a container uses (as `docker rmi -f`
    /// does to an image whose container was only created).
    Delete(String),
}

#[derive(Debug)]
struct Container {
    image: String,
    spec: RunSpec,
    running: bool,
    exit_code: i64,
    logs: String,
    server: Option<tokio::task::JoinHandle<()>>,
    /// As its healthcheck finds it: none without one, unhealthy when it is `exit 1`.
    health: HealthStatus,
}

/// An image the fake holds: its docker-archive and what the build asks of it.
#[derive(Debug)]
struct Image {
    archive: Vec<u8>,
    tcp_ports: Vec<u16>,
    labels: BTreeMap<String, String>,
    /// Regular files of its layers by absolute path (later layers win).
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u32,
    containers: BTreeMap<String, Container>,
    /// Images by id (`sha256:...`).
    images: BTreeMap<String, Image>,
    /// `repo:tag` -> image id.
    tags: BTreeMap<String, String>,
    /// The registry: `repo:tag` -> the docker-archive pushed or served under it.
    registry: BTreeMap<String, Vec<u8>>,
    journal: Vec<String>,
    /// Every container created, as it was asked for.
    created: Vec<RunSpec>,
    failing: BTreeSet<Op>,
    /// What happens when an operation happens for the n-th time.
    scheduled: Vec<(Op, u32, Then)>,
    seen: BTreeMap<Op, u32>,
    /// Networks and volumes that exist now, with their labels.
    networks: BTreeMap<String, HashMap<String, String>>,
    volumes: BTreeMap<String, HashMap<String, String>>,
    /// The labels of every network and volume made so far.
    labels_made: Vec<HashMap<String, String>>,
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

    /// Requests a stop through `stop` (as Ctrl-C does) when `op` happens for the `nth` time
    /// (from 1); the operation itself still succeeds.
    pub fn stop_at(&self, op: Op, nth: u32, stop: tokio::sync::watch::Sender<bool>) {
        self.at(op, nth, Then::Stop(stop));
    }

    /// Makes `then` happen just before `op` happens for the `nth` time (from 1).
    pub fn at(&self, op: Op, nth: u32, then: Then) {
        self.lock().scheduled.push((op, nth, then));
    }

    /// Adds an image of one layer holding `files` (path, content; mode 0755) under `tag`, its
    /// config's `config` section being `config` (Cmd, ExposedPorts...); returns its id.
    pub fn add_image(
        &self,
        tag: &str,
        files: &[(&str, &[u8])],
        config: serde_json::Value,
    ) -> String {
        let archive = archive_of(tag, files, config).expect("an in-memory archive");
        let id = self.store(archive).expect("an archive this module made");
        self.lock().tags.insert(full_reference(tag), id.clone());
        id
    }

    /// Puts an image of one layer holding `files` in the fake registry under `reference` (not
    /// in the engine: a pull brings it).
    pub fn serve_in_registry(
        &self,
        reference: &str,
        files: &[(&str, &[u8])],
        config: serde_json::Value,
    ) {
        let archive = archive_of(reference, files, config).expect("an in-memory archive");
        self.lock()
            .registry
            .insert(full_reference(reference), archive);
    }

    /// References the registry holds, with the files of each.
    pub fn registry(&self) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
        let archives = self.lock().registry.clone();
        archives
            .into_iter()
            .filter_map(|(reference, archive)| {
                Some((reference, parse_archive(archive).ok()?.2.files))
            })
            .collect()
    }

    /// Tags that exist now, with the image ids they name.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.lock().tags.clone()
    }

    /// Ids of the images the engine holds.
    pub fn images(&self) -> Vec<String> {
        self.lock().images.keys().cloned().collect()
    }

    /// The files of image `name` (a tag or id), when it exists.
    pub fn files_of(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let state = self.lock();
        let id = resolve(&state, name)?;
        state.images.get(&id).map(|image| image.files.clone())
    }

    /// Stores a docker-archive (its tags from its manifest); returns the image id.
    fn store(&self, archive: Vec<u8>) -> std::io::Result<String> {
        let (id, tags, image) = parse_archive(archive)?;
        let mut state = self.lock();
        state.images.insert(id.clone(), image);
        for tag in tags {
            state.tags.insert(full_reference(&tag), id.clone());
        }
        Ok(id)
    }

    /// Every operation so far, as `create c1`, `start c1`, `remove c1`...
    pub fn journal(&self) -> Vec<String> {
        self.lock().journal.clone()
    }

    /// Containers that exist now (created and not removed).
    pub fn containers(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// Every container created so far, as it was asked for.
    pub fn created(&self) -> Vec<RunSpec> {
        self.lock().created.clone()
    }

    /// Adds a running container of `spec` (its app not started: it only runs); returns its id.
    pub fn add_running(&self, spec: RunSpec) -> String {
        let mut state = self.lock();
        let image = resolve(&state, &spec.image).expect("an image the fake holds");
        state.next_id += 1;
        let id = format!("c{}", state.next_id);
        state.containers.insert(
            id.clone(),
            Container {
                image,
                spec,
                running: true,
                exit_code: 0,
                logs: String::new(),
                server: None,
                health: HealthStatus::None,
            },
        );
        id
    }

    /// Networks that exist now.
    pub fn networks(&self) -> Vec<String> {
        self.lock().networks.keys().cloned().collect()
    }

    /// The labels of every network and volume made so far (removed or not).
    pub fn labels_made(&self) -> Vec<HashMap<String, String>> {
        self.lock().labels_made.clone()
    }

    /// Volumes that exist now.
    pub fn volumes(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
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
        let Some(op) = op else {
            return Ok(());
        };
        let count = {
            let seen = state.seen.entry(op).or_default();
            *seen += 1;
            *seen
        };
        let due: Vec<usize> = (state.scheduled.iter().enumerate())
            .filter(|(_, (at, nth, _))| *at == op && *nth == count)
            .map(|(index, _)| index)
            .collect();
        for index in due.into_iter().rev() {
            let (_, _, then) = state.scheduled.remove(index);
            match then {
                Then::Stop(stop) => {
                    let _ = stop.send(true);
                }
                Then::Retag(tag, to) => {
                    if let Some(id) = resolve(&state, &to) {
                        state.tags.insert(full_reference(&tag), id);
                    }
                }
                Then::Remove(name) => remove_tag(&mut state, &name),
                Then::Delete(name) => {
                    if let Some(id) = state.tags.remove(&full_reference(&name)) {
                        state.images.remove(&id);
                    }
                }
            }
        }
        match state.failing.contains(&op) {
            true => Err(Self::refused("fake")),
            false => Ok(()),
        }
    }
}

/// `name` as the engine stores tags: `repo:tag`, `latest` when untagged.
fn full_reference(name: &str) -> String {
    let (repo, tag) = crate::image::reference::split_reference(name);
    format!("{repo}:{tag}")
}

/// The image id `name` (an id, or a tag) names.
fn resolve(state: &State, name: &str) -> Option<String> {
    if state.images.contains_key(name) {
        return Some(name.to_owned());
    }
    state.tags.get(&full_reference(name)).cloned()
}

/// Removes the tag `name`, and its image when no other tag and no container has it.
fn remove_tag(state: &mut State, name: &str) {
    if let Some(id) = state.tags.remove(&full_reference(name)) {
        let tagged = state.tags.values().any(|other| *other == id);
        let used = state.containers.values().any(|c| c.image == id);
        if !tagged && !used {
            state.images.remove(&id);
        }
    }
}

/// A docker-archive (as `docker save` writes) of one layer holding `files`.
fn archive_of(
    tag: &str,
    files: &[(&str, &[u8])],
    config: serde_json::Value,
) -> std::io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for (path, _) in files {
        let mut at = Path::new(path.trim_start_matches('/'));
        while let Some(parent) = at.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(parent.to_path_buf());
            at = parent;
        }
    }
    for dir in &dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        layer.append_data(&mut header, format!("{}/", dir.display()), std::io::empty())?;
    }
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_size(content.len() as u64);
        layer.append_data(&mut header, path.trim_start_matches('/'), *content)?;
    }
    let layer = layer.into_inner()?;
    let diff_id = sha256_digest(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    let config = serde_json::to_vec(&config)?;
    let hex = sha256_digest(&config)["sha256:".len()..].to_owned();
    let manifest = serde_json::json!([{
        "Config": format!("{hex}.json"),
        "RepoTags": [full_reference(tag)],
        "Layers": [format!("{hex}/layer.tar")],
    }]);
    let mut archive = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        (format!("{hex}.json"), config),
        (format!("{hex}/layer.tar"), layer),
        ("manifest.json".to_owned(), serde_json::to_vec(&manifest)?),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, name, bytes.as_slice())?;
    }
    archive.into_inner()
}

/// Reads a docker-archive: its image id, its tags and the image.
fn parse_archive(archive: Vec<u8>) -> std::io::Result<(String, Vec<String>, Image)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut members = BTreeMap::new();
    for entry in tar::Archive::new(archive.as_slice()).entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        members.insert(name, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        members
            .get("manifest.json")
            .ok_or_else(|| invalid("no manifest.json"))?,
    )?;
    let manifest = &manifest[0];
    let config_bytes = manifest["Config"]
        .as_str()
        .and_then(|name| members.get(name))
        .ok_or_else(|| invalid("no config"))?;
    let id = sha256_digest(config_bytes);
    let config: serde_json::Value = serde_json::from_slice(config_bytes)?;
    let mut files = BTreeMap::new();
    for layer in manifest["Layers"].as_array().into_iter().flatten() {
        let layer = layer
            .as_str()
            .and_then(|name| members.get(name))
            .ok_or_else(|| invalid("a layer is missing"))?;
        for entry in tar::Archive::new(layer.as_slice()).entries()? {
            let mut entry = entry?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = format!(
                "/{}",
                entry.path()?.to_string_lossy().trim_start_matches("./")
            );
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            files.insert(path, bytes);
        }
    }
    let mut tcp_ports: Vec<u16> = config["config"]["ExposedPorts"]
        .as_object()
        .into_iter()
        .flat_map(|ports| ports.keys())
        .filter_map(|port| port.strip_suffix("/tcp")?.parse().ok())
        .collect();
    tcp_ports.sort();
    let labels = config["config"]["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect();
    let tags = manifest["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    Ok((
        id,
        tags,
        Image {
            archive,
            tcp_ports,
            labels,
            files,
        },
    ))
}

/// Answers every request on `listener` with `status` and `body` (one request per connection).
async fn serve(listener: TcpListener, status: u16, body: String) {
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
                "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                if status == 200 { "OK" } else { "Internal Server Error" },
                body.len(),
                if head { "" } else { body.as_str() }
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

impl ContainerEngine for FakeEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Docker
    }

    async fn image(&self, name: &str) -> Result<ImageInfo, EngineError> {
        let state = self.lock();
        let id = resolve(&state, name).ok_or_else(|| EngineError::NoSuchImage(name.to_owned()))?;
        let image = &state.images[&id];
        Ok(ImageInfo {
            size: image.files.values().map(|f| f.len() as u64).sum(),
            tcp_ports: image.tcp_ports.clone(),
            layer_dirs: None,
            healthcheck: None,
            id,
        })
    }

    async fn storage_root(&self) -> Result<Option<StorageRoot>, EngineError> {
        Ok(None)
    }

    async fn save_image(&self, name: &str, dest: &Path) -> Result<u64, EngineError> {
        self.note(Some(Op::Save), format!("save {name}"))?;
        let archive = {
            let state = self.lock();
            let id =
                resolve(&state, name).ok_or_else(|| EngineError::NoSuchImage(name.to_owned()))?;
            state.images[&id].archive.clone()
        };
        std::fs::write(dest, &archive).map_err(|source| EngineError::Io {
            what: format!("write {}", dest.display()),
            source,
        })?;
        Ok(archive.len() as u64)
    }

    async fn load_image<F, T>(&self, produce: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut dyn Write) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let io = |source| EngineError::Io {
            what: "load the image".into(),
            source,
        };
        let mut archive = Vec::new();
        let produced = produce(&mut archive).map_err(io)?;
        let (id, _, _) = parse_archive(archive.clone()).map_err(io)?;
        self.note(Some(Op::Load), format!("load {id}"))?;
        self.store(archive).map_err(io)?;
        Ok(produced)
    }

    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        self.note(Some(Op::Tag), format!("tag {reference}"))?;
        let mut state = self.lock();
        let id = resolve(&state, id).ok_or_else(|| EngineError::NoSuchImage(id.to_owned()))?;
        state.tags.insert(full_reference(reference), id);
        Ok(())
    }

    async fn untag_image(&self, reference: &str) -> Result<(), EngineError> {
        self.note(Some(Op::Untag), format!("untag {reference}"))?;
        remove_tag(&mut self.lock(), reference);
        Ok(())
    }

    async fn pull_image(
        &self,
        reference: &str,
        _credentials: Option<super::registry::Credentials>,
    ) -> Result<(), EngineError> {
        self.note(Some(Op::Pull), format!("pull {reference}"))?;
        let archive = self
            .lock()
            .registry
            .get(&full_reference(reference))
            .cloned();
        let Some(archive) = archive else {
            return Err(EngineError::Registry {
                operation: "pull",
                reference: reference.to_owned(),
                status: Some(404),
                message: "manifest unknown".into(),
            });
        };
        let id = self.store(archive).map_err(|source| EngineError::Io {
            what: "pull".into(),
            source,
        })?;
        self.lock().tags.insert(full_reference(reference), id);
        Ok(())
    }

    async fn push_image(
        &self,
        reference: &str,
        _credentials: Option<super::registry::Credentials>,
    ) -> Result<(), EngineError> {
        self.note(Some(Op::Push), format!("push {reference}"))?;
        let mut state = self.lock();
        let id = resolve(&state, reference)
            .ok_or_else(|| EngineError::NoSuchImage(reference.to_owned()))?;
        let archive = state.images[&id].archive.clone();
        state.registry.insert(full_reference(reference), archive);
        Ok(())
    }

    async fn create_container(&self, spec: &RunSpec) -> Result<String, EngineError> {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            format!("c{}", state.next_id)
        };
        self.note(Some(Op::Create), format!("create {id} {}", spec.image))?;
        let image = {
            let state = self.lock();
            resolve(&state, &spec.image)
                .ok_or_else(|| EngineError::NoSuchImage(spec.image.clone()))?
        };
        let mut state = self.lock();
        state.created.push(spec.clone());
        state.containers.insert(
            id.clone(),
            Container {
                image,
                spec: spec.clone(),
                running: false,
                exit_code: 0,
                logs: String::new(),
                server: None,
                health: match spec.healthcheck.as_ref().map(|h| h.test.join(" ")) {
                    None => HealthStatus::None,
                    Some(test) if test == "NONE" => HealthStatus::None,
                    Some(test) if test.contains("exit 1") => HealthStatus::Unhealthy,
                    Some(_) => HealthStatus::Healthy,
                },
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<Started, EngineError> {
        self.note(Some(Op::Start), format!("start {id}"))?;
        let mut ports = BTreeMap::new();
        let answer = match &self.app {
            App::Http { body } => Some((200, body.clone())),
            App::ServesFile { path } => {
                let state = self.lock();
                let file = state
                    .containers
                    .get(id)
                    .and_then(|c| state.images.get(&c.image))
                    .and_then(|image| image.files.get(path));
                Some(match file {
                    Some(content) => (200, String::from_utf8_lossy(content).into_owned()),
                    None => (500, format!("{path}: no such file\n")),
                })
            }
            App::ExitsAtStart { .. } => None,
        };
        let (running, exit_code, logs, server) = match (&self.app, answer) {
            (_, Some((status, body))) => {
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
                let server = tokio::spawn(serve(listener, status, body));
                (true, 0, "listening\n".to_owned(), Some(server))
            }
            (App::ExitsAtStart { code, logs }, None) => (false, *code, logs.clone(), None),
            (_, None) => unreachable!("every app but ExitsAtStart answers"),
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

    async fn container_info(&self, name: &str) -> Result<super::ContainerInfo, EngineError> {
        let state = self.lock();
        let container = state
            .containers
            .get(name)
            .ok_or_else(|| EngineError::NoSuchContainer(name.to_owned()))?;
        let spec = &container.spec;
        Ok(super::ContainerInfo {
            id: name.to_owned(),
            name: format!("{name}-name"),
            running: container.running,
            pid: match container.running {
                true => std::process::id(),
                false => 0,
            },
            image_id: container.image.clone(),
            image: spec.image.clone(),
            user: spec.user.clone().unwrap_or_default(),
            privileged: spec.privileged,
            cap_add: spec.cap_add.clone(),
            cap_drop: spec.cap_drop.clone(),
            ipc_mode: spec.ipc.clone().unwrap_or_else(|| "private".into()),
            pid_mode: spec.pid.clone().unwrap_or_default(),
        })
    }

    async fn image_labels(&self, name: &str) -> Result<BTreeMap<String, String>, EngineError> {
        let state = self.lock();
        let id = resolve(&state, name).ok_or_else(|| EngineError::NoSuchImage(name.to_owned()))?;
        Ok(state.images[&id].labels.clone())
    }

    /// An app that exits at start writes its logs and exits with its code; any other runs
    /// until the container is stopped or removed.
    async fn run_attached(&self, id: &str, stdio: super::Stdio) -> Result<i64, EngineError> {
        self.note(Some(Op::Attach), format!("attach {id}"))?;
        self.note(Some(Op::Start), format!("start {id}"))?;
        if !self.lock().containers.contains_key(id) {
            return Err(EngineError::NoSuchContainer(id.to_owned()));
        }
        let mut stdout = stdio.stdout;
        if let App::ExitsAtStart { code, logs } = &self.app {
            let _ = stdout.write_all(logs.as_bytes()).await;
            if let Some(container) = self.lock().containers.get_mut(id) {
                container.exit_code = *code;
            }
            return Ok(*code);
        }
        if let Some(container) = self.lock().containers.get_mut(id) {
            container.running = true;
        }
        loop {
            let running = self.lock().containers.get(id).is_some_and(|c| c.running);
            if !running {
                return Ok(137);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn health(&self, id: &str) -> Result<Health, EngineError> {
        let state = self.lock();
        let container = state
            .containers
            .get(id)
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_owned()))?;
        Ok(Health {
            status: container.health,
            last_output: match container.health {
                HealthStatus::Unhealthy => "exit status 1".into(),
                _ => String::new(),
            },
        })
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        self.note(Some(Op::Network), format!("network {name}"))?;
        let mut state = self.lock();
        state.networks.insert(name.to_owned(), labels.clone());
        state.labels_made.push(labels.clone());
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.note(None, format!("remove network {name}"))?;
        self.lock().networks.remove(name);
        Ok(())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        self.note(Some(Op::Volume), format!("volume {name}"))?;
        let mut state = self.lock();
        state.volumes.insert(name.to_owned(), labels.clone());
        state.labels_made.push(labels.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.note(None, format!("remove volume {name}"))?;
        self.lock().volumes.remove(name);
        Ok(())
    }
}
