//! Reading an image archive as an engine saves it: docker-archive (`manifest.json`, config,
//! layer tars) or OCI image layout (`index.json`, `blobs/`), layers plain or gzip-compressed.
//! The archive is indexed in place (a seek per member); compressed layers are decompressed once
//! into the work directory so every entry is a byte range of some file.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{
    flatten::{FileRange, LayerRef},
    ImageError,
};

/// Largest JSON document (manifest, index, config) read from an archive.
const MAX_JSON: u64 = 16 * 1024 * 1024;
/// Most members accepted in the outer archive.
const MAX_MEMBERS: usize = 100_000;
/// A decompressed layer may not exceed this many times its compressed size plus 1 GiB.
const MAX_EXPANSION: u64 = 200;

/// A saved image: its config and its layers, ready to flatten.
#[derive(Debug)]
pub struct SavedImage {
    /// The image config as stored (bytes, to keep its digest).
    pub config_bytes: Vec<u8>,
    pub config: Value,
    pub layers: Vec<LayerRef>,
    /// Files the layer refs point into (the archive itself, decompressed layers).
    pub sources: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug)]
struct Member {
    offset: u64,
    size: u64,
}

/// Indexes the archive at `path`; decompressed layers go to `work_dir`.
pub fn read_saved_image(path: &Path, work_dir: &Path) -> Result<SavedImage, ImageError> {
    let members = index_members(path)?;
    let member = |name: &str| -> Result<Member, ImageError> {
        members
            .get(name.trim_start_matches("./"))
            .copied()
            .ok_or_else(|| ImageError::Malformed(format!("archive has no member {name}")))
    };
    let read_json = |name: &str| -> Result<(Vec<u8>, Value), ImageError> {
        let m = member(name)?;
        if m.size > MAX_JSON {
            return Err(ImageError::Malformed(format!(
                "{name} is larger than 16 MiB"
            )));
        }
        let mut bytes = Vec::with_capacity(m.size as usize);
        FileRange::new(
            File::open(path).map_err(ImageError::io("open archive"))?,
            m.offset,
            m.size,
        )
        .map_err(ImageError::io("seek in archive"))?
        .read_to_end(&mut bytes)
        .map_err(ImageError::io(format!("read {name}")))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Malformed(format!("{name}: {e}")))?;
        Ok((bytes, value))
    };

    let (config_name, layer_names) = if members.contains_key("manifest.json") {
        let (_, manifest) = read_json("manifest.json")?;
        let first = manifest
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| ImageError::Malformed("manifest.json lists no image".into()))?;
        let config = first["Config"]
            .as_str()
            .ok_or_else(|| ImageError::Malformed("manifest.json has no Config".into()))?
            .to_owned();
        let layers = string_list(&first["Layers"]);
        (config, layers)
    } else if members.contains_key("index.json") {
        let (_, index) = read_json("index.json")?;
        let manifest = oci_manifest(&index, &read_json)?;
        let config = blob_path(&manifest["config"]["digest"])?;
        let layers: Vec<&Value> = manifest["layers"]
            .as_array()
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        let names = layers
            .iter()
            .map(|l| blob_path(&l["digest"]))
            .collect::<Result<Vec<_>, _>>()?;
        (config, names)
    } else {
        return Err(ImageError::Malformed(
            "neither manifest.json (docker-archive) nor index.json (OCI layout) found".into(),
        ));
    };
    let (config_bytes, config) = read_json(&config_name)?;
    let diff_ids = string_list(&config["rootfs"]["diff_ids"]);
    if !diff_ids.is_empty() && diff_ids.len() != layer_names.len() {
        return Err(ImageError::Malformed(format!(
            "config lists {} layers, the manifest {}",
            diff_ids.len(),
            layer_names.len()
        )));
    }

    let mut sources = vec![path.to_path_buf()];
    let mut layers = Vec::with_capacity(layer_names.len());
    for (i, name) in layer_names.iter().enumerate() {
        let m = member(name)?;
        let digest = diff_ids.get(i).cloned().unwrap_or_else(|| name.clone());
        let magic = read_magic(path, m)?;
        let layer = if magic.starts_with(&[0x1f, 0x8b]) {
            let out = work_dir.join(format!("layer-{i}.tar"));
            let size = gunzip(path, m, &out).map_err(|e| e.in_layer(i))?;
            sources.push(out);
            LayerRef {
                source: (sources.len() - 1) as u32,
                offset: 0,
                size,
                digest,
            }
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(ImageError::Unsupported(format!(
                "layer {i} is zstd-compressed; save the image uncompressed or with gzip"
            )));
        } else {
            LayerRef {
                source: 0,
                offset: m.offset,
                size: m.size,
                digest,
            }
        };
        layers.push(layer);
    }
    Ok(SavedImage {
        config_bytes,
        config,
        layers,
        sources,
    })
}

/// The strings of a JSON array (anything else: none).
fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `blobs/sha256/HEX` for a digest value.
fn blob_path(digest: &Value) -> Result<String, ImageError> {
    let digest = digest
        .as_str()
        .ok_or_else(|| ImageError::Malformed("descriptor without digest".into()))?;
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| ImageError::Malformed(format!("bad digest {digest}")))?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || !algo.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ImageError::Malformed(format!("bad digest {digest}")));
    }
    Ok(format!("blobs/{algo}/{hex}"))
}

/// Reads a JSON member of the archive: its bytes and its value.
type JsonReader<'a> = dyn Fn(&str) -> Result<(Vec<u8>, Value), ImageError> + 'a;

/// An error of the tar reader as one short line: it quotes header bytes, which in a file that
/// is no tar at all are binary noise.
fn printable(err: &io::Error) -> String {
    const MAX: usize = 100;
    let text = err.to_string();
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(
            |c| match c.is_control() || c == char::REPLACEMENT_CHARACTER {
                true => '?',
                false => c,
            },
        )
        .collect();
    if text.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// The image manifest an OCI index points at (following a nested index to the host platform's).
fn oci_manifest(index: &Value, read_json: &JsonReader<'_>) -> Result<Value, ImageError> {
    let manifests = index["manifests"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ImageError::Malformed("index.json lists no manifest".into()))?;
    let host = crate::syscalls::Arch::host().map(|a| match a {
        crate::syscalls::Arch::X86_64 => "amd64",
        crate::syscalls::Arch::Aarch64 => "arm64",
        crate::syscalls::Arch::X86 => "386",
        crate::syscalls::Arch::Arm => "arm",
    });
    let chosen = manifests
        .iter()
        .find(|m| m["platform"]["architecture"].as_str() == host)
        .unwrap_or(&manifests[0]);
    let (_, value) = read_json(&blob_path(&chosen["digest"])?)?;
    if value["manifests"].is_array() {
        return oci_manifest(&value, read_json);
    }
    Ok(value)
}

fn read_magic(path: &Path, m: Member) -> Result<[u8; 4], ImageError> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(ImageError::io("open archive"))?;
    file.seek(SeekFrom::Start(m.offset))
        .map_err(ImageError::io("seek in archive"))?;
    let n = file
        .read(&mut magic)
        .map_err(ImageError::io("read layer"))?;
    if n < 4 {
        magic = [0; 4];
    }
    Ok(magic)
}

fn gunzip(path: &Path, m: Member, out: &Path) -> Result<u64, ImageError> {
    let file = File::open(path).map_err(ImageError::io("open archive"))?;
    let range =
        FileRange::new(file, m.offset, m.size).map_err(ImageError::io("seek in archive"))?;
    let limit = m.size.saturating_mul(MAX_EXPANSION).saturating_add(1 << 30);
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::new(range)).take(limit + 1);
    let mut writer =
        io::BufWriter::new(File::create(out).map_err(ImageError::io("create layer file"))?);
    // Reading and writing apart: a bad stream is a malformed layer, a write that fails (a full
    // work dir) is an I/O error of its own kind.
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_bad_data(&e) => {
                return Err(ImageError::Malformed(format!("gzip layer: {e}")))
            }
            Err(e) => return Err(ImageError::io("read a gzip layer")(e)),
        };
        writer
            .write_all(&buf[..n])
            .map_err(ImageError::io(format!("write {}", out.display())))?;
        size += n as u64;
    }
    writer
        .flush()
        .map_err(ImageError::io(format!("write {}", out.display())))?;
    if size > limit {
        return Err(ImageError::Malformed(
            "layer expands beyond any sane size".into(),
        ));
    }
    Ok(size)
}

/// Whether a read error says the bytes are not what they claim (not the disk failing).
fn is_bad_data(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    )
}

/// Member name -> data range of every file in the outer archive (symlinks resolved).
fn index_members(path: &Path) -> Result<HashMap<String, Member>, ImageError> {
    let file = File::open(path).map_err(ImageError::io(format!("open {}", path.display())))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut members = HashMap::new();
    let mut links = Vec::new();
    let entries = archive
        .entries_with_seek()
        .map_err(|e| ImageError::Malformed(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            ImageError::Malformed(match members.is_empty() && links.is_empty() {
                true => "not a tar archive (its first header is unreadable)".into(),
                false => format!("bad archive entry: {}", printable(&e)),
            })
        })?;
        if members.len() + links.len() >= MAX_MEMBERS {
            return Err(ImageError::Malformed("too many archive members".into()));
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                members.insert(
                    name,
                    Member {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(target) = entry.link_name_bytes() {
                    links.push((
                        name,
                        String::from_utf8_lossy(&target).into_owned(),
                        entry.header().entry_type(),
                    ));
                }
            }
            _ => {}
        }
    }
    for (name, target, kind) in links {
        let resolved = if kind == tar::EntryType::Symlink {
            let base = Path::new(&name).parent().unwrap_or(Path::new(""));
            normalize_member(&base.join(&target))
        } else {
            target.trim_start_matches("./").to_owned()
        };
        if let Some(m) = members.get(&resolved).copied() {
            members.insert(name, m);
        }
    }
    Ok(members)
}

/// `a/b/../c` -> `a/c` for member names (never above the archive root).
fn normalize_member(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testutil::Scratch;

    #[test]
    fn a_file_that_is_no_tar_is_named_so_without_its_bytes() {
        let scratch = Scratch::new();
        let path = scratch.0.join("noise.tar");
        let noise: Vec<u8> = (0..2048u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&path, noise).unwrap();
        let err = read_saved_image(&path, &scratch.0).unwrap_err().to_string();
        assert_eq!(
            err,
            "malformed image: not a tar archive (its first header is unreadable)"
        );
    }

    #[test]
    fn tar_errors_become_one_short_printable_line() {
        let err = io::Error::other(format!("bad \u{1}\n{}", "x".repeat(300)));
        let line = printable(&err);
        assert!(line.starts_with("bad ??x"), "{line}");
        assert_eq!(line.chars().count(), 103);
    }
}
