//! Images through the engine API: inspect, save (streamed to a file), load (streamed from a
//! producer thread), remove. Nothing is buffered whole in memory.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
};

use bollard::query_parameters::{
    CreateImageOptions, ImportImageOptions, ListImagesOptions, PushImageOptions,
    RemoveImageOptions, TagImageOptions,
};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::{is_not_found, registry::Credentials, Engine, EngineError};

/// What slim needs to know about an image before reading it.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// `sha256:...` image id.
    pub id: String,
    /// Size as the engine reports it (`docker images`).
    pub size: u64,
    /// TCP ports it exposes (`EXPOSE`), sorted.
    pub tcp_ports: Vec<u16>,
    /// Its layers' directories, lowest first, when the engine keeps them as overlay diffs
    /// (`overlay2`); paths on the engine's host.
    pub layer_dirs: Option<Vec<PathBuf>>,
    /// Its `HEALTHCHECK` test (`["CMD-SHELL", "curl -f localhost"]`, `["CMD", ...]`), unless
    /// it has none or `NONE`.
    pub healthcheck: Option<Vec<String>>,
}

/// Where the engine keeps its data (`docker info`).
#[derive(Clone, Debug)]
pub struct StorageRoot {
    /// `DockerRootDir`, e.g. `/var/lib/docker`.
    pub root: PathBuf,
    /// Storage driver, e.g. `overlay2`.
    pub driver: String,
}

impl Engine {
    /// The engine's inspection of an image ([`EngineError::NoSuchImage`] when absent).
    pub(crate) async fn inspect_image(
        &self,
        name: &str,
    ) -> Result<bollard::models::ImageInspect, EngineError> {
        self.docker
            .inspect_image(name)
            .await
            .map_err(|err| match is_not_found(&err) {
                true => EngineError::NoSuchImage(name.to_owned()),
                false => EngineError::api("inspect image", err),
            })
    }

    /// Inspects an image present in the engine.
    pub async fn image(&self, name: &str) -> Result<ImageInfo, EngineError> {
        let info = self.inspect_image(name).await?;
        let healthcheck = info
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.clone())
            .filter(|test| test.first().is_some_and(|kind| kind != "NONE"));
        let mut tcp_ports: Vec<u16> = info
            .config
            .and_then(|c| c.exposed_ports)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.strip_suffix("/tcp").and_then(|n| n.parse().ok()))
            .collect();
        tcp_ports.sort();
        let layer_dirs = info.graph_driver.as_ref().and_then(overlay_layer_dirs);
        Ok(ImageInfo {
            id: info.id.unwrap_or_default(),
            size: info.size.unwrap_or(0).max(0) as u64,
            tcp_ports,
            layer_dirs,
            healthcheck,
        })
    }

    /// Pulls `reference` from its registry (`docker pull`), with `credentials` when given.
    pub async fn pull_image(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), EngineError> {
        let (repository, tag) = repository_and_tag(reference);
        let options = CreateImageOptions {
            from_image: Some(repository.to_owned()),
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let stream =
            self.docker
                .create_image(Some(options), None, credentials.map(docker_credentials));
        follow(stream, "pull", reference, |info| info.error_detail).await
    }

    /// Pushes `reference` (a tag in the engine) to its registry (`docker push`).
    pub async fn push_image(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), EngineError> {
        let (repository, tag) = repository_and_tag(reference);
        let options = PushImageOptions {
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let stream = self.docker.push_image(
            repository,
            Some(options),
            credentials.map(docker_credentials),
        );
        follow(stream, "push", reference, |info| info.error_detail).await
    }

    /// Tags image `id` as `reference` (`repo:tag`), moving the tag if another image had it.
    pub async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = crate::image::reference::split_reference(reference);
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(id, Some(options))
            .await
            .map_err(|source| EngineError::api("tag image", source))
    }

    /// Removes the tag `reference`, and the image when that was its last tag. Already gone is
    /// fine; an image a container uses is only untagged.
    pub async fn untag_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            // In use by a container: the tag goes, the image stays for the container.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                let options = RemoveImageOptions {
                    force: true,
                    noprune: true,
                    platforms: None,
                };
                self.docker
                    .remove_image(reference, Some(options), None)
                    .await
                    .map(|_| ())
                    .map_err(|source| EngineError::api("remove image", source))
            }
            Err(source) => Err(EngineError::api("remove image", source)),
        }
    }

    /// Every `repo:tag` reference of repository `repo`.
    pub async fn references_of(&self, repo: &str) -> Result<Vec<String>, EngineError> {
        let filters: HashMap<String, Vec<String>> =
            [("reference".to_owned(), vec![format!("{repo}:*")])].into();
        let options = ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|source| EngineError::api("list images", source))?;
        let prefix = format!("{repo}:");
        Ok(images
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .filter(|reference| reference.starts_with(&prefix))
            .collect())
    }

    /// Where the engine keeps images (`docker info`); `None` when it does not say.
    pub async fn storage_root(&self) -> Result<Option<StorageRoot>, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|source| EngineError::api("info", source))?;
        Ok(info
            .docker_root_dir
            .zip(info.driver)
            .map(|(root, driver)| StorageRoot {
                root: root.into(),
                driver,
            }))
    }

    /// Streams `docker save IMAGE` into the file at `dest`; returns its size.
    pub async fn save_image(&self, name: &str, dest: &Path) -> Result<u64, EngineError> {
        let file = tokio::fs::File::create(dest)
            .await
            .map_err(|source| EngineError::Io {
                what: format!("create {}", dest.display()),
                source,
            })?;
        // The API hands over small chunks: write them in 4 MiB batches.
        let mut file = tokio::io::BufWriter::with_capacity(4 << 20, file);
        let mut stream = self.docker.export_image(name);
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| EngineError::api("save image", source))?;
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|source| EngineError::Io {
                    what: format!("write {}", dest.display()),
                    source,
                })?;
        }
        file.flush().await.map_err(|source| EngineError::Io {
            what: format!("write {}", dest.display()),
            source,
        })?;
        Ok(size)
    }

    /// `docker load` of the archive that `produce` writes (on a blocking thread, streamed);
    /// returns what `produce` returned.
    pub async fn load_image<F, T>(&self, produce: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut dyn Write) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) =
            tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(CHUNKS_IN_FLIGHT);
        let producer = tokio::task::spawn_blocking(move || {
            let mut writer = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result = produce(&mut writer).and_then(|value| writer.flush().map(|()| value));
            if let Err(err) = &result {
                let _ = tx.blocking_send(Err(std::io::Error::new(err.kind(), err.to_string())));
            }
            result
        });
        let body = tokio_stream_from(rx);
        let mut responses =
            self.docker
                .import_image_stream(ImportImageOptions::default(), body, None);
        let mut failure = None;
        while let Some(response) = responses.next().await {
            if let Err(source) = response {
                failure = Some(source);
                break;
            }
        }
        let produced = producer.await.map_err(|e| EngineError::Io {
            what: "produce the image archive".into(),
            source: std::io::Error::other(e),
        })?;
        match (produced, failure) {
            // The archive could not be made (a full work dir, an unreadable layer): that is the
            // cause, and the engine's failure to load the cut stream only follows from it.
            (Err(source), _) if source.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(EngineError::Io {
                    what: "produce the image archive".into(),
                    source,
                })
            }
            (_, Some(source)) => Err(EngineError::api("load image", source)),
            (produced, None) => produced.map_err(|source| EngineError::Io {
                what: "produce the image archive".into(),
                source,
            }),
        }
    }
}

/// Follows a pull's or push's progress stream to its end: the first failure the engine or the
/// registry reports (in the stream or as an error detail of an item) ends it.
async fn follow<T>(
    mut stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>> + Unpin,
    operation: &'static str,
    reference: &str,
    error_detail: impl Fn(T) -> Option<bollard::models::ErrorDetail>,
) -> Result<(), EngineError> {
    while let Some(item) = stream.next().await {
        let item = item.map_err(|err| registry_error(operation, reference, err))?;
        if let Some(detail) = error_detail(item) {
            return Err(EngineError::Registry {
                operation,
                reference: reference.to_owned(),
                status: None,
                message: detail.message.unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// `repo:tag` or `repo@digest` -> (repository, tag or digest).
fn repository_and_tag(reference: &str) -> (&str, &str) {
    match reference.split_once('@') {
        Some((repository, digest)) => (repository, digest),
        None => crate::image::reference::split_reference(reference),
    }
}

fn docker_credentials(credentials: Credentials) -> bollard::auth::DockerCredentials {
    bollard::auth::DockerCredentials {
        username: Some(credentials.username),
        password: Some(credentials.password),
        serveraddress: Some(credentials.server),
        ..Default::default()
    }
}

/// A failed pull or push: what the registry (through the engine) said, unless the engine itself
/// stopped answering.
fn registry_error(
    operation: &'static str,
    reference: &str,
    err: bollard::errors::Error,
) -> EngineError {
    use bollard::errors::Error as E;
    let (status, message) = match err {
        E::DockerResponseServerError {
            status_code,
            message,
        } => (Some(status_code), message),
        E::DockerStreamError { error } => (None, error),
        err => return EngineError::api(operation, err),
    };
    EngineError::Registry {
        operation,
        reference: reference.to_owned(),
        status,
        message,
    }
}

const CHUNK: usize = 1 << 20;
/// Chunks written ahead of the engine's reading: enough to keep the socket busy, few enough
/// that a slow engine costs at most a few MiB of memory.
const CHUNKS_IN_FLIGHT: usize = 3;

/// A `Write` that sends 1 MiB chunks into a channel (blocking when the consumer lags).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    /// Takes what fits in the current chunk (a chunk never grows past [`CHUNK`]: doubling it
    /// would hold twice the bytes in flight).
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading")
        })
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The diff directories of an overlay-stored image, lowest first: `LowerDir` lists them top
/// first, `UpperDir` is the top one.
fn overlay_layer_dirs(driver: &bollard::models::DriverData) -> Option<Vec<PathBuf>> {
    if !matches!(driver.name.as_str(), "overlay2" | "overlay") {
        return None;
    }
    let upper = driver.data.get("UpperDir")?;
    let mut dirs: Vec<PathBuf> = driver
        .data
        .get("LowerDir")
        .map(|lower| {
            lower
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    dirs.reverse();
    dirs.push(PathBuf::from(upper));
    Some(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_at_the_chunk_size_and_never_grow() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let mut writer = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let piece = vec![7u8; CHUNK / 3 + 5];
        for _ in 0..7 {
            writer.write_all(&piece).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let mut sizes = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            sizes.push(chunk.unwrap().len());
        }
        let total = 7 * piece.len();
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert!(
            sizes[..sizes.len() - 1].iter().all(|&n| n == CHUNK),
            "{sizes:?}"
        );
        assert_eq!(sizes.len(), total.div_ceil(CHUNK));
    }
}
