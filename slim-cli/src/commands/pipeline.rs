//! The stages `slim build`, `slim squash` and `slim xray` share: reading a fat image (from the
//! engine or an archive) into a flattened tree, and writing a single-layer image (loaded into
//! the engine and/or written as archives). Work files live in a [`WorkDir`] removed on drop.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::{
    engine::{ContainerEngine, ImageInfo},
    image::{
        archive::read_saved_image,
        config::ImageConfig,
        flatten::{flatten, LayerStats},
        overlay::{flatten_dirs, LayerDir},
        tree::FileTree,
        writer::{self, LayerOutput, Provenance},
    },
    owner::Owner,
};

use super::UsageError;

/// A private scratch directory, removed with everything in it when dropped (also on errors
/// and Ctrl-C, which unwind through the command's future).
pub struct WorkDir(PathBuf);

/// The file in a work dir naming its owner (`crate::owner::Owner::to_line`).
pub const OWNER_FILE: &str = ".slim-owner";

impl WorkDir {
    pub fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self::create(Self::base().join(format!("slim-{}-{nanos}", std::process::id())))
    }

    /// Makes the work dir `dir`: a new directory of this run, 0700 from the start. One that
    /// exists already (a collision, or planted by someone else in a shared temp dir) is
    /// refused, never used.
    fn create(dir: PathBuf) -> Result<Self> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        if let Some(base) = dir.parent() {
            std::fs::create_dir_all(base)
                .with_context(|| format!("cannot create the work dirs' base {}", base.display()))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create work dir {}", dir.display()))?;
        // Ours from here on: removed on drop, also when a step below fails.
        let work = Self(dir);
        std::fs::set_permissions(&work.0, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make work dir {} private", work.0.display()))?;
        // Who made it: a later slim removes it if this one is killed.
        std::fs::write(work.0.join(OWNER_FILE), Owner::current().to_line())
            .with_context(|| format!("cannot write to work dir {}", work.0.display()))?;
        Ok(work)
    }

    /// Where work dirs are made.
    pub fn base() -> PathBuf {
        std::env::var_os("SLIM_WORK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A name or id in the engine.
    Engine(String),
    /// An archive file as `docker save` writes (`docker-archive:PATH`).
    Archive(PathBuf),
}

impl ImageSource {
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("docker-archive:") {
            Some(path) => Self::Archive(path.into()),
            None => Self::Engine(text.to_owned()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Engine(name) => name.clone(),
            Self::Archive(path) => format!("docker-archive:{}", path.display()),
        }
    }
}

/// Where a written image goes besides the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    DockerArchive(PathBuf),
    Oci(PathBuf),
}

impl Output {
    pub fn parse(text: &str) -> Result<Self, UsageError> {
        if let Some(path) = text.strip_prefix("docker-archive:") {
            return Ok(Self::DockerArchive(path.into()));
        }
        if let Some(dir) = text.strip_prefix("oci:") {
            return Ok(Self::Oci(dir.into()));
        }
        Err(UsageError::new(
            format!("unknown output `{text}`"),
            "use --output docker-archive:PATH or --output oci:DIR",
        ))
    }
}

/// How an image in the engine is read (`--read-via`; its values are in `cli`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadVia {
    /// The engine's overlay storage when slim can reach it, else `docker save`.
    #[default]
    Auto,
    /// Only the engine's overlay storage (local engine, root).
    Storage,
    /// Only the `docker save` stream.
    Save,
}

/// A fat image read and flattened.
pub struct FatImage {
    pub name: String,
    pub id: String,
    /// The image config as stored (the slim image's is written from it).
    pub config: serde_json::Value,
    /// What the build reads of it, typed.
    pub image: ImageConfig,
    pub tree: Arc<FileTree>,
    pub layers: Vec<LayerStats>,
    pub info: Option<ImageInfo>,
    /// Where its bytes came from: `storage`, `save` or `archive`.
    pub read_from: &'static str,
    /// Time to save the archive (or to find the layer directories).
    pub save_ms: u128,
    /// Time to index and flatten the layers.
    pub flatten_ms: u128,
}

/// Writes a docker-archive of the image to the file at `path`; errors name `shown`, the
/// archive `path` becomes.
fn write_archive_file(
    (path, shown): (&Path, &Path),
    config_bytes: &[u8],
    layer_path: &Path,
    layer: &LayerOutput,
    tags: &[String],
) -> Result<()> {
    let cannot = || format!("cannot write {}", shown.display());
    let file = std::fs::File::create(path).with_context(cannot)?;
    let mut out = writer::write_docker_archive(
        std::io::BufWriter::new(file),
        config_bytes,
        layer_path,
        layer,
        tags,
    )
    .with_context(cannot)?;
    std::io::Write::flush(&mut out).with_context(cannot)?;
    Ok(())
}

/// Reads `source`: an engine image straight from the engine's overlay storage when `via`
/// allows and slim can reach it, else saved from the engine into `work`; an archive as is.
/// The layers are then indexed and flattened.
pub async fn read_image<E: ContainerEngine>(
    engine: Option<&E>,
    source: &ImageSource,
    work: &WorkDir,
    via: ReadVia,
) -> Result<FatImage> {
    let started = Instant::now();
    let (archive, info) =
        match source {
            ImageSource::Engine(name) => {
                let Some(engine) = engine else {
                    bail!("reading {name} needs the container engine");
                };
                let info = engine.image(name).await?;
                if via != ReadVia::Save {
                    match read_from_storage(engine, &info).await {
                        Ok((config, layer_dirs)) => {
                            return flatten_stored(source, info, config, layer_dirs, started).await
                        }
                        // The engine itself failing is no reason to try another way.
                        Err(StorageUnreadable::Engine(err)) => return Err(err.into()),
                        Err(why) if via == ReadVia::Storage => return Err(UsageError::new(
                            format!(
                                "cannot read {name} from the engine's storage: {:#}",
                                anyhow::Error::new(why)
                            ),
                            "run as root next to a local overlay2 engine, or use --read-via save",
                        )
                        .into()),
                        Err(why) => tracing::debug!(
                            "reading through docker save: {:#}",
                            anyhow::Error::new(why)
                        ),
                    }
                }
                let archive = work.path().join("fat.tar");
                engine.save_image(name, &archive).await?;
                (archive, Some(info))
            }
            ImageSource::Archive(path) => {
                if !path.is_file() {
                    return Err(UsageError::new(
                        format!("{} is not a file", path.display()),
                        "give a tar written by `docker save`",
                    )
                    .into());
                }
                (path.clone(), None)
            }
        };
    let read_from = match info {
        Some(_) => "save",
        None => "archive",
    };
    let archive_bytes = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    let save_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let work_path = work.path().to_path_buf();
    let (saved, tree, layers) = tokio::task::spawn_blocking(move || -> Result<_> {
        let saved = read_saved_image(&archive, &work_path)?;
        let (tree, layers) = flatten(saved.sources.clone(), &saved.layers)?;
        Ok((saved, tree, layers))
    })
    .await??;
    let flatten_ms = started.elapsed().as_millis();
    tracing::debug!(archive_bytes, save_ms, flatten_ms, "read the image");
    let id = match &info {
        Some(info) => info.id.clone(),
        None => writer::sha256_digest(&saved.config_bytes),
    };
    Ok(FatImage {
        name: source.name(),
        id,
        image: ImageConfig::from_json(&saved.config),
        config: saved.config,
        tree: Arc::new(tree),
        layers,
        info,
        read_from,
        save_ms,
        flatten_ms,
    }
    .with_layer_history())
}

/// Why the image cannot be read from the engine's storage.
#[derive(Debug, thiserror::Error)]
enum StorageUnreadable {
    #[error("the engine does not keep its layers as overlay directories")]
    NoLayerDirs,
    #[error("cannot ask the engine where it keeps images")]
    Engine(#[source] crate::engine::EngineError),
    #[error("the engine does not say where it keeps images")]
    NoRoot,
    #[error("the image id is not a sha256 digest")]
    NotSha256,
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{0} does not hash to the image id")]
    Hash(PathBuf),
    #[error("{0} is not an image config")]
    Config(PathBuf, #[source] serde_json::Error),
    #[error("the image config lists no layers")]
    NoLayers,
    #[error("the config lists {config} layers, the storage {storage}")]
    LayerCount { config: usize, storage: usize },
    #[error("{0} is not a directory here")]
    NotADir(PathBuf),
}

/// The image's config (checked against its id) and its layer directories, from a local
/// engine's overlay storage; why not, when they cannot be reached or do not match.
async fn read_from_storage<E: ContainerEngine>(
    engine: &E,
    info: &ImageInfo,
) -> Result<(serde_json::Value, Vec<LayerDir>), StorageUnreadable> {
    use StorageUnreadable as Why;
    let dirs = info.layer_dirs.clone().ok_or(Why::NoLayerDirs)?;
    let storage = engine
        .storage_root()
        .await
        .map_err(Why::Engine)?
        .ok_or(Why::NoRoot)?;
    let hex = info
        .id
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(Why::NotSha256)?;
    let config_path = storage
        .root
        .join("image")
        .join(&storage.driver)
        .join("imagedb/content/sha256")
        .join(hex);
    let config_bytes = read_small(&config_path).map_err(|e| Why::Read(config_path.clone(), e))?;
    if writer::sha256_digest(&config_bytes) != info.id {
        return Err(Why::Hash(config_path));
    }
    let config: serde_json::Value =
        serde_json::from_slice(&config_bytes).map_err(|e| Why::Config(config_path.clone(), e))?;
    let digests = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or(Why::NoLayers)?;
    if digests.len() != dirs.len() {
        return Err(Why::LayerCount {
            config: digests.len(),
            storage: dirs.len(),
        });
    }
    let mut layer_dirs = Vec::with_capacity(dirs.len());
    for (dir, digest) in dirs.into_iter().zip(digests) {
        if !dir.is_dir() {
            return Err(Why::NotADir(dir));
        }
        layer_dirs.push(LayerDir {
            dir,
            digest: digest.as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok((config, layer_dirs))
}

/// Reads a file of at most 16 MiB.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(16 << 20)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

async fn flatten_stored(
    source: &ImageSource,
    info: ImageInfo,
    config: serde_json::Value,
    layer_dirs: Vec<LayerDir>,
    started: Instant,
) -> Result<FatImage> {
    let save_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let (tree, layers) = tokio::task::spawn_blocking(move || flatten_dirs(&layer_dirs)).await??;
    let flatten_ms = started.elapsed().as_millis();
    tracing::debug!(
        save_ms,
        flatten_ms,
        "read the image from the engine's storage"
    );
    Ok(FatImage {
        name: source.name(),
        id: info.id.clone(),
        image: ImageConfig::from_json(&config),
        config,
        tree: Arc::new(tree),
        layers,
        info: Some(info),
        read_from: "storage",
        save_ms,
        flatten_ms,
    }
    .with_layer_history())
}

impl FatImage {
    /// Names each layer after the history entry that made it (empty layers have no tar).
    fn with_layer_history(mut self) -> Self {
        let made = &self.image.layer_history;
        if made.len() == self.layers.len() {
            for (layer, by) in self.layers.iter_mut().zip(made) {
                layer.created_by = by.clone();
            }
        }
        self
    }
}

/// A written single-layer image.
pub struct SlimImage {
    /// `sha256:...` of its config: the image id.
    pub id: String,
    pub layer: LayerOutput,
    pub write_ms: u128,
    pub load_ms: u128,
}

/// What the slim layer holds: the paths of `selection`, as `tree` has them (the fat image's
/// tree, or one with shrunk executables).
pub struct LayerContent<'a> {
    pub tree: &'a Arc<FileTree>,
    pub selection: BTreeSet<PathBuf>,
}

/// Writes the image made of `content.selection` from `fat`: loads it into the engine as `tag` (when
/// given) and writes each of `outputs`. With only a tag, the layer is generated straight into
/// the engine's load stream (no layer file).
pub async fn write_image<E: ContainerEngine>(
    engine: Option<&E>,
    fat: &FatImage,
    content: LayerContent<'_>,
    tag: Option<&str>,
    outputs: &[Output],
    work: &WorkDir,
    created_by: String,
) -> Result<SlimImage> {
    let LayerContent { tree, selection } = content;
    let provenance = Provenance {
        base_image: fat.name.clone(),
        base_id: fat.id.clone(),
        created_by,
    };
    let tags: Vec<String> = tag.map(str::to_owned).into_iter().collect();
    if outputs.is_empty() {
        let (Some(engine), Some(_)) = (engine, tag) else {
            bail!("nowhere to write the image: give a tag or an output");
        };
        let started = Instant::now();
        let tree = tree.clone();
        let original = fat.config.clone();
        let (layer, config_bytes) = engine
            .load_image(move |out| {
                let make_config =
                    |layer: &LayerOutput| writer::slim_config(&original, layer, &provenance);
                writer::stream_docker_archive(out, &tree, &selection, make_config, &tags)
                    .map(|(layer, config, _)| (layer, config))
                    .map_err(std::io::Error::from)
            })
            .await?;
        return Ok(SlimImage {
            id: writer::sha256_digest(&config_bytes),
            layer,
            write_ms: 0,
            load_ms: started.elapsed().as_millis(),
        });
    }

    let started = Instant::now();
    let layer_path = work.path().join("slim-layer.tar");
    let layer = {
        let file = std::fs::File::create(&layer_path).context("create the slim layer file")?;
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let tree = Arc::clone(tree);
        let (layer, mut out) =
            tokio::task::spawn_blocking(move || writer::write_layer(&tree, &selection, out))
                .await
                .context("the layer writer stopped")?
                .with_context(|| format!("cannot write the slim layer {}", layer_path.display()))?;
        std::io::Write::flush(&mut out).context("write the slim layer file")?;
        layer
    };
    let config_bytes = writer::slim_config(&fat.config, &layer, &provenance);
    let id = writer::sha256_digest(&config_bytes);
    for output in outputs {
        match output {
            Output::DockerArchive(path) => {
                let partial = path.with_extension("partial");
                let written =
                    write_archive_file((&partial, path), &config_bytes, &layer_path, &layer, &tags)
                        .and_then(|()| {
                            std::fs::rename(&partial, path)
                                .with_context(|| format!("cannot write {}", path.display()))
                        });
                if written.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                written?;
            }
            Output::Oci(dir) => {
                let platform = serde_json::json!({
                    "architecture": fat.config["architecture"],
                    "os": fat.config["os"],
                });
                writer::write_oci_layout(
                    dir,
                    &config_bytes,
                    &layer_path,
                    &layer,
                    &tags,
                    &platform,
                )?;
            }
        }
    }
    let write_ms = started.elapsed().as_millis();
    let started = Instant::now();
    if let Some(engine) = engine.filter(|_| tag.is_some()) {
        let layer_out = layer.clone();
        let config = config_bytes.clone();
        engine
            .load_image(move |out| {
                writer::write_docker_archive(out, &config, &layer_path, &layer_out, &tags)
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            })
            .await?;
    }
    Ok(SlimImage {
        id,
        layer,
        write_ms,
        load_ms: started.elapsed().as_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name someone else made first (a collision, or a planted directory or symlink in the
    /// shared temp dir) is refused: the work dir is always a new directory of this run, and
    /// what was there is left alone.
    #[test]
    fn a_work_dir_that_already_exists_is_refused() {
        struct Base(PathBuf);
        impl Drop for Base {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let base =
            Base(std::env::temp_dir().join(format!("slim-workdir-test-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&base.0);
        std::fs::create_dir_all(&base.0).unwrap();
        let base = &base.0;
        let planted = base.join("planted");
        std::fs::create_dir(&planted).unwrap();
        std::fs::write(planted.join("theirs"), "keep").unwrap();
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();

        for dir in [&planted, &link] {
            let err = WorkDir::create(dir.clone()).map(drop).unwrap_err();
            assert!(
                format!("{err:#}").contains("cannot create work dir"),
                "{err:#}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(planted.join("theirs")).unwrap(),
            "keep"
        );
        assert!(!planted.join(OWNER_FILE).exists());
        assert!(!elsewhere.join(OWNER_FILE).exists());
        let fresh = WorkDir::create(base.join("fresh")).unwrap();
        assert!(fresh.path().join(OWNER_FILE).is_file());
        drop(fresh);
        assert!(!base.join("fresh").exists());
    }
}
