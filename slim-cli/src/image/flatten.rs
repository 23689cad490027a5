//! Applying layers in order onto one [`FileTree`]: whiteouts (`.wh.NAME`), opaque directories
//! (`.wh..wh..opq`), hard links, and per-layer statistics for `slim xray`. Nothing is unpacked:
//! entries remember where their bytes are.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use tar::EntryType;

use super::{
    tree::{sanitize, DataRef, Entry, FileTree, Kind, MAX_XATTR_BYTES},
    ImageError,
};

/// Most entries accepted in one image (bounds memory whatever the layers claim).
pub const MAX_ENTRIES: usize = 4_000_000;

/// What one layer did to the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerStats {
    pub index: u32,
    /// Layer digest (diff id) when the archive names it.
    pub digest: String,
    /// Size of the layer tar.
    pub size_bytes: u64,
    pub files_added: u64,
    pub files_changed: u64,
    pub files_deleted: u64,
    /// Bytes of regular-file content the layer adds.
    pub content_bytes: u64,
    /// Bytes of this layer's files that a later layer overwrote or deleted: shipped, never seen.
    pub wasted_bytes: u64,
    /// The command that made the layer, from the image history.
    pub created_by: String,
}

/// A byte range of a file, readable and seekable as if it were the whole file.
pub struct FileRange {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl FileRange {
    pub fn new(mut file: File, start: u64, len: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(start))?;
        Ok(Self {
            file,
            start,
            len,
            pos: 0,
        })
    }
}

impl Read for FileRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileRange {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = target as u64;
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        Ok(self.pos)
    }
}

/// A layer to apply: an uncompressed tar stored at `offset..offset+size` of `sources[source]`.
#[derive(Clone, Debug)]
pub struct LayerRef {
    pub source: u32,
    pub offset: u64,
    pub size: u64,
    pub digest: String,
}

/// Applies `layers` in order; returns the tree and what each layer did.
pub fn flatten(
    sources: Vec<PathBuf>,
    layers: &[LayerRef],
) -> Result<(FileTree, Vec<LayerStats>), ImageError> {
    let mut tree = FileTree {
        entries: Default::default(),
        sources: sources.into(),
    };
    let mut stats: Vec<LayerStats> = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        stats.push(LayerStats {
            index: index as u32,
            digest: layer.digest.clone(),
            size_bytes: layer.size,
            ..Default::default()
        });
        let path = tree
            .sources
            .get(layer.source)
            .ok_or_else(|| ImageError::Io {
                what: format!("layer {index}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such layer source"),
            })?;
        let file = File::open(path).map_err(|source| ImageError::Io {
            what: format!("open {}", path.display()),
            source,
        })?;
        let range =
            FileRange::new(file, layer.offset, layer.size).map_err(|source| ImageError::Io {
                what: "seek to a layer".into(),
                source,
            })?;
        apply_layer(&mut tree, &mut stats, index as u32, layer, range)
            .map_err(|err| err.in_layer(index))?;
    }
    Ok((tree, stats))
}

fn malformed(why: impl Into<String>) -> ImageError {
    ImageError::Malformed(why.into())
}

fn apply_layer<R: Read + Seek>(
    tree: &mut FileTree,
    stats: &mut [LayerStats],
    index: u32,
    layer: &LayerRef,
    reader: R,
) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| malformed(format!("not a tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| malformed(format!("bad tar entry: {e}")))?;
        let path = sanitize(&entry.path_bytes())?;
        let entry_type = entry.header().entry_type();
        if matches!(
            entry_type,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            continue;
        }
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
            if hidden == b".wh..opq" {
                remove_lower(tree, stats, index, &parent, false);
            } else {
                let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
                remove_lower(tree, stats, index, &target, true);
            }
            continue;
        }
        if path.as_os_str().is_empty() {
            continue; // the root directory itself
        }
        let header = entry.header();
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::Hardlink,
            EntryType::Char => Kind::Char,
            EntryType::Block => Kind::Block,
            EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(malformed(format!(
                    "{}: unsupported tar entry type {other:?}",
                    path.display()
                )))
            }
        };
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let device = match kind {
            Kind::Char | Kind::Block => Some((
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            )),
            _ => None,
        };
        let link_bytes = entry.link_name_bytes().map(|l| l.into_owned());
        let size = entry.size();
        let position = entry.raw_file_position();
        if position.saturating_add(size) > layer.size {
            return Err(malformed(format!(
                "{} claims {size} bytes, past the end of the layer",
                path.display()
            )));
        }
        let xattrs = read_xattrs(&mut entry)?;
        let (link, data, size) = match kind {
            Kind::File => (
                None,
                Some(DataRef {
                    source: layer.source,
                    offset: layer.offset + position,
                    size,
                }),
                size,
            ),
            Kind::Symlink => {
                let target = link_bytes.ok_or_else(|| malformed("symlink without a target"))?;
                (
                    Some(PathBuf::from(std::ffi::OsStr::from_bytes(&target))),
                    None,
                    0,
                )
            }
            Kind::Hardlink => {
                let target = link_bytes.ok_or_else(|| malformed("hard link without a target"))?;
                let target = sanitize(&target)?;
                let linked = tree
                    .entries
                    .get(&target)
                    .filter(|t| matches!(t.kind, Kind::File | Kind::Hardlink))
                    .ok_or_else(|| ImageError::Unsafe {
                        path: path.display().to_string(),
                        why: "hard link to a missing or non-regular entry",
                    })?;
                // Point at the original file, not at another link.
                let target = match linked.kind {
                    Kind::Hardlink => linked.link.clone().unwrap_or(target),
                    _ => target,
                };
                (Some(target), linked.data, linked.size)
            }
            _ => (None, None, 0),
        };
        let new = Entry {
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            link,
            device,
            xattrs,
            data,
            layer: index,
        };
        insert(tree, stats, index, path, new)?;
    }
    Ok(())
}

fn read_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut xattrs = Vec::new();
    let Some(extensions) = entry
        .pax_extensions()
        .map_err(|e| malformed(format!("bad PAX header: {e}")))?
    else {
        return Ok(xattrs);
    };
    let mut total = 0;
    for ext in extensions {
        let ext = ext.map_err(|e| malformed(format!("bad PAX record: {e}")))?;
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            total += name.len() + ext.value_bytes().len();
            if total > MAX_XATTR_BYTES {
                return Err(malformed("more than 64 KiB of extended attributes"));
            }
            xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

pub(super) fn insert(
    tree: &mut FileTree,
    stats: &mut [LayerStats],
    index: u32,
    path: PathBuf,
    new: Entry,
) -> Result<(), ImageError> {
    if new.kind == Kind::File {
        stats[index as usize].content_bytes += new.size;
    }
    match tree.entries.get(&path) {
        Some(old) => {
            if old.layer < index {
                stats[index as usize].files_changed += 1;
                if old.kind == Kind::File {
                    stats[old.layer as usize].wasted_bytes += old.size;
                }
            }
            if old.kind == Kind::Dir && new.kind != Kind::Dir {
                // A directory replaced by a file: its lower contents are gone.
                remove_descendants(tree, stats, index, &path);
            }
        }
        None => {
            if tree.entries.len() >= MAX_ENTRIES {
                return Err(malformed(format!("more than {MAX_ENTRIES} entries")));
            }
            stats[index as usize].files_added += 1;
        }
    }
    tree.entries.insert(path, new);
    Ok(())
}

/// Deletes `path` (when `itself`) and its descendants that came from layers below `index`.
pub(super) fn remove_lower(
    tree: &mut FileTree,
    stats: &mut [LayerStats],
    index: u32,
    path: &Path,
    itself: bool,
) {
    if itself {
        if let Some(old) = tree.entries.get(path) {
            if old.layer < index {
                let old = tree.entries.remove(path).expect("present");
                count_removed(stats, index, &old);
            }
        }
    }
    remove_descendants(tree, stats, index, path);
}

fn remove_descendants(tree: &mut FileTree, stats: &mut [LayerStats], index: u32, dir: &Path) {
    let doomed: Vec<PathBuf> = tree
        .entries
        .range::<Path, _>((std::ops::Bound::Excluded(dir), std::ops::Bound::Unbounded))
        .take_while(|(p, _)| p.starts_with(dir))
        .filter(|(p, e)| e.layer < index && p.as_path() != dir)
        .map(|(p, _)| p.clone())
        .collect();
    for path in doomed {
        if let Some(old) = tree.entries.remove(&path) {
            count_removed(stats, index, &old);
        }
    }
}

fn count_removed(stats: &mut [LayerStats], index: u32, old: &Entry) {
    stats[index as usize].files_deleted += 1;
    if old.kind == Kind::File {
        stats[old.layer as usize].wasted_bytes += old.size;
    }
}

#[cfg(test)]
#[path = "flatten_tests.rs"]
mod tests;
