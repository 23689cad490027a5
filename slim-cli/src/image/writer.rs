//! Writing images: a single-layer tar from a chosen set of tree paths (deterministic: the same
//! tree and set give the same bytes), the image config derived from the original one, and the
//! two archive formats engines load (docker-archive, OCI layout).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    tree::{ancestors, Entry, FileTree, Kind},
    ImageError,
};

/// The layer that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOutput {
    /// `sha256:HEX` of the uncompressed layer tar.
    pub diff_id: String,
    pub size: u64,
    pub entries: u64,
}

/// A writer that hashes and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// `sha256:HEX`, bytes written, and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex(&self.hasher.finalize())),
            self.written,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:HEX` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// `selection` plus every ancestor directory, in tar order (parents first).
pub fn close_selection(tree: &FileTree, selection: &BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    let mut closed = BTreeSet::new();
    for path in selection {
        if path.as_os_str().is_empty() || tree.get(path).is_none() {
            continue;
        }
        for parent in ancestors(path) {
            closed.insert(parent.to_path_buf());
        }
        closed.insert(path.clone());
    }
    closed
}

/// Writes the layer tar of `selection` (closed over ancestors) to `out`.
pub fn write_layer<W: Write>(
    tree: &FileTree,
    selection: &BTreeSet<PathBuf>,
    out: W,
) -> Result<(LayerOutput, W), ImageError> {
    write_layer_with(tree, selection, out, true)
}

/// The exact size of the layer [`write_layer`] would write, without reading any file content
/// (so a layer can be streamed as a member of another tar, whose header needs its size).
pub fn layer_size(tree: &FileTree, selection: &BTreeSet<PathBuf>) -> Result<u64, ImageError> {
    let (_, counter) = write_layer_with(tree, selection, Counter(0), false)?;
    Ok(counter.0)
}

/// Counts bytes, stores nothing.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_layer_with<W: Write>(
    tree: &FileTree,
    selection: &BTreeSet<PathBuf>,
    out: W,
    with_content: bool,
) -> Result<(LayerOutput, W), ImageError> {
    let closed = close_selection(tree, selection);
    // For each hard-link group, the first kept path carries the bytes; the others link to it.
    let mut carrier: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for path in &closed {
        if let Some(entry) = tree.get(path) {
            if let Some(original) = hardlink_group(path, entry) {
                carrier.entry(original).or_insert_with(|| path.clone());
            }
        }
    }
    let mut sources: Option<(u32, File)> = None;
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    let mut entries = 0;
    for path in &closed {
        let synthetic;
        let entry = match tree.get(path) {
            Some(entry) => entry,
            None => {
                // A parent the layers never listed: a plain root-owned directory.
                synthetic = Entry {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    size: 0,
                    link: None,
                    device: None,
                    xattrs: Vec::new(),
                    data: None,
                    layer: 0,
                };
                &synthetic
            }
        };
        write_entry(
            &mut builder,
            &mut sources,
            tree,
            path,
            entry,
            &carrier,
            with_content,
        )
        .map_err(ImageError::io(format!(
            "write {} to the layer",
            path.display()
        )))?;
        entries += 1;
    }
    let hashing = builder
        .into_inner()
        .map_err(ImageError::io("finish the layer tar"))?;
    let (diff_id, size, out) = hashing.finish();
    Ok((
        LayerOutput {
            diff_id,
            size,
            entries,
        },
        out,
    ))
}

/// The path whose bytes a regular file or hard link shares (its group key).
fn hardlink_group(path: &Path, entry: &Entry) -> Option<PathBuf> {
    match entry.kind {
        Kind::File => Some(path.to_path_buf()),
        Kind::Hardlink => entry.link.clone(),
        _ => None,
    }
}

fn write_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    sources: &mut Option<(u32, File)>,
    tree: &FileTree,
    path: &Path,
    entry: &Entry,
    carrier: &BTreeMap<PathBuf, PathBuf>,
    with_content: bool,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(entry.mtime);
    header.set_size(0);
    if !entry.xattrs.is_empty() {
        let records: Vec<(String, &[u8])> = entry
            .xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        builder.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    match entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut header, path, io::empty())
        }
        Kind::Symlink => {
            header.set_entry_type(tar::EntryType::Symlink);
            let target = entry.link.clone().unwrap_or_default();
            builder.append_link(&mut header, path, target)
        }
        Kind::File | Kind::Hardlink => {
            let group = hardlink_group(path, entry).unwrap_or_else(|| path.to_path_buf());
            let first = carrier.get(&group).map(PathBuf::as_path).unwrap_or(path);
            if first != path {
                header.set_entry_type(tar::EntryType::Link);
                return builder.append_link(&mut header, path, first);
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(entry.size);
            let Some(data) = entry.data else {
                return builder.append_data(&mut header, path, io::empty());
            };
            if !with_content {
                return builder.append_data(&mut header, path, io::repeat(0).take(data.size));
            }
            // One source open at a time: archives are read in order, and trees read from
            // layer directories have a source per file.
            if sources.as_ref().map(|(open, _)| *open) != Some(data.source) {
                *sources = Some((data.source, tree.open_source(data.source)?));
            }
            let (_, file) = sources.as_mut().expect("opened above");
            file.seek(SeekFrom::Start(data.offset))?;
            let mut reader = ExactReader {
                inner: file.take(data.size),
                left: data.size,
            };
            builder.append_data(&mut header, path, &mut reader)
        }
        Kind::Char | Kind::Block | Kind::Fifo => {
            header.set_entry_type(match entry.kind {
                Kind::Char => tar::EntryType::Char,
                Kind::Block => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            });
            if let Some((major, minor)) = entry.device {
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
            }
            builder.append_data(&mut header, path, io::empty())
        }
    }
}

/// Fails instead of writing a short entry when the source ends early.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer data ends early",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Label of a slim image naming its fat image, as it was given to `slim build`.
pub const LABEL_FAT_IMAGE: &str = "slim.base-image";
/// Label of a slim image holding its fat image's id (`sha256:...`): what `slim debug` runs.
pub const LABEL_FAT_IMAGE_ID: &str = "slim.base-image.id";

/// Where an image came from, recorded as labels of the slim image ([`LABEL_FAT_IMAGE`],
/// [`LABEL_FAT_IMAGE_ID`], `slim.version`).
#[derive(Clone, Debug)]
pub struct Provenance {
    pub base_image: String,
    pub base_id: String,
    pub created_by: String,
}

/// The slim image's config: the original one (entrypoint, cmd, env, ports, user, labels,
/// volumes, stop signal, healthcheck, platform...) with one layer, one history entry and
/// provenance labels. Serialized with sorted keys, so it is deterministic.
pub fn slim_config(original: &Value, layer: &LayerOutput, provenance: &Provenance) -> Vec<u8> {
    let mut config = original.clone();
    if !config.is_object() {
        config = json!({});
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.diff_id]});
    let created = original["created"].clone();
    config["history"] = json!([{
        "created": created,
        "created_by": provenance.created_by,
        "comment": format!("slim {}: single layer from {}", env!("CARGO_PKG_VERSION"), provenance.base_image),
    }]);
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    if !config["config"]["Labels"].is_object() {
        config["config"]["Labels"] = json!({});
    }
    let labels = &mut config["config"]["Labels"];
    labels[LABEL_FAT_IMAGE] = json!(provenance.base_image);
    labels[LABEL_FAT_IMAGE_ID] = json!(provenance.base_id);
    labels["slim.version"] = json!(env!("CARGO_PKG_VERSION"));
    // container_config / container describe the build container of the last layer: not ours.
    if let Some(map) = config.as_object_mut() {
        map.remove("container_config");
        map.remove("container");
    }
    serde_json::to_vec(&config).expect("a JSON value serializes")
}

/// Streams a docker-archive to `out` with the layer generated on the fly from `tree` (no layer
/// file): the layer goes first, then the config, whose diff id is known only once the layer has
/// been hashed (`docker load` reads the manifest after the whole stream). Returns the layer and
/// the config bytes.
pub fn stream_docker_archive<W: Write>(
    out: W,
    tree: &FileTree,
    selection: &BTreeSet<PathBuf>,
    make_config: impl FnOnce(&LayerOutput) -> Vec<u8>,
    tags: &[String],
) -> Result<(LayerOutput, Vec<u8>, W), ImageError> {
    let size = layer_size(tree, selection)?;
    let mut builder = tar::Builder::new(out);
    const LAYER_DIR: &str = "layer";
    let layer_name = format!("{LAYER_DIR}/layer.tar");
    append_dir(&mut builder, LAYER_DIR).map_err(ImageError::io("write the image archive"))?;
    let mut header = archive_header(size, tar::EntryType::Regular, 0o644);
    header
        .set_path(&layer_name)
        .map_err(ImageError::io("write the image archive"))?;
    header.set_cksum();
    let mut inner = builder.get_mut();
    inner
        .write_all(header.as_bytes())
        .map_err(ImageError::io("write the image archive"))?;
    let (layer, _) = write_layer(tree, selection, &mut inner)?;
    if layer.size != size {
        return Err(ImageError::Malformed(format!(
            "layer size changed while streaming ({size} then {})",
            layer.size
        )));
    }
    let pad = (512 - size % 512) % 512;
    inner
        .write_all(&vec![0u8; pad as usize])
        .map_err(ImageError::io("write the image archive"))?;
    let config_bytes = make_config(&layer);
    let config_name = format!("{}.json", digest_hex(&sha256_digest(&config_bytes)));
    append_config_and_manifest(&mut builder, &config_name, &config_bytes, tags, &layer_name)
        .map_err(ImageError::io("write the image archive"))?;
    let out = builder
        .into_inner()
        .map_err(ImageError::io("finish the image archive"))?;
    Ok((layer, config_bytes, out))
}

/// Writes a docker-archive (what `docker save` writes and `docker load` reads) to `out`.
pub fn write_docker_archive<W: Write>(
    out: W,
    config_bytes: &[u8],
    layer_path: &Path,
    layer: &LayerOutput,
    tags: &[String],
) -> Result<W, ImageError> {
    let mut builder = tar::Builder::new(out);
    let config_digest = sha256_digest(config_bytes);
    let config_name = format!("{}.json", digest_hex(&config_digest));
    let layer_name = format!("{}/layer.tar", digest_hex(&layer.diff_id));
    (|| -> io::Result<()> {
        append_dir(&mut builder, digest_hex(&layer.diff_id))?;
        append_file(&mut builder, &layer_name, layer_path, layer.size)?;
        append_config_and_manifest(&mut builder, &config_name, config_bytes, tags, &layer_name)
    })()
    .map_err(ImageError::io("write the image archive"))?;
    builder
        .into_inner()
        .map_err(ImageError::io("finish the image archive"))
}

/// Writes an OCI image layout into `dir` (also readable by `docker load` once tarred, thanks
/// to the docker-archive `manifest.json` next to `index.json`, as Docker 25+ writes too).
pub fn write_oci_layout(
    dir: &Path,
    config_bytes: &[u8],
    layer_path: &Path,
    layer: &LayerOutput,
    tags: &[String],
    platform: &Value,
) -> Result<(), ImageError> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)
        .map_err(ImageError::io(format!("create {}", blobs.display())))?;
    let config_digest = sha256_digest(config_bytes);
    write_blob(&blobs, &config_digest, config_bytes)?;
    let layer_blob = blobs.join(digest_hex(&layer.diff_id));
    std::fs::copy(layer_path, &layer_blob).map_err(ImageError::io("copy the layer blob"))?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.diff_id,
            "size": layer.size,
        }],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("serializes");
    let manifest_digest = sha256_digest(&manifest_bytes);
    write_blob(&blobs, &manifest_digest, &manifest_bytes)?;
    let descriptors: Vec<Value> = if tags.is_empty() {
        vec![json!({})]
    } else {
        tags.iter()
            .map(|t| json!({"annotations": {"io.containerd.image.name": t, "org.opencontainers.image.ref.name": t}}))
            .collect()
    };
    let manifests: Vec<Value> = descriptors
        .into_iter()
        .map(|mut d| {
            d["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
            d["digest"] = json!(manifest_digest);
            d["size"] = json!(manifest_bytes.len());
            d["platform"] = platform.clone();
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let docker_manifest = docker_manifest(
        &format!("blobs/sha256/{}", digest_hex(&config_digest)),
        tags,
        &format!("blobs/sha256/{}", digest_hex(&layer.diff_id)),
    );
    let write = |name: &str, value: &Value| {
        std::fs::write(
            dir.join(name),
            serde_json::to_vec(value).expect("serializes"),
        )
        .map_err(ImageError::io(format!("write {name}")))
    };
    write("oci-layout", &json!({"imageLayoutVersion": "1.0.0"}))?;
    write("index.json", &index)?;
    write("manifest.json", &docker_manifest)?;
    Ok(())
}

/// docker-archive's `manifest.json`: one image, one layer.
fn docker_manifest(config_name: &str, tags: &[String], layer_name: &str) -> Value {
    json!([{"Config": config_name, "RepoTags": tags, "Layers": [layer_name]}])
}

/// The end of a docker-archive: the config, then the manifest naming it and the layer.
fn append_config_and_manifest<W: Write>(
    builder: &mut tar::Builder<W>,
    config_name: &str,
    config_bytes: &[u8],
    tags: &[String],
    layer_name: &str,
) -> io::Result<()> {
    append_bytes(builder, config_name, config_bytes)?;
    let manifest = docker_manifest(config_name, tags, layer_name);
    append_bytes(builder, "manifest.json", &serde_json::to_vec(&manifest)?)
}

fn write_blob(blobs: &Path, digest: &str, bytes: &[u8]) -> Result<(), ImageError> {
    std::fs::write(blobs.join(digest_hex(digest)), bytes).map_err(ImageError::io("write a blob"))
}

fn digest_hex(digest: &str) -> &str {
    digest.split_once(':').map(|(_, h)| h).unwrap_or(digest)
}

fn archive_header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = archive_header(bytes.len() as u64, tar::EntryType::Regular, 0o644);
    b.append_data(&mut header, name, bytes)
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut header = archive_header(0, tar::EntryType::Directory, 0o755);
    b.append_data(&mut header, name, io::empty())
}

fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    path: &Path,
    size: u64,
) -> io::Result<()> {
    let mut header = archive_header(size, tar::EntryType::Regular, 0o644);
    let file = File::open(path)?;
    b.append_data(
        &mut header,
        name,
        io::BufReader::with_capacity(1 << 20, file),
    )
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
