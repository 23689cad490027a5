//! The flattened file tree of an image: path -> entry metadata and where its bytes live.
//! Paths are relative to the image root (`usr/bin/python3`), sanitized, never with `..`.

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use super::ImageError;

/// Longest path accepted from a layer (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Most extended-attribute bytes kept per entry.
pub const MAX_XATTR_BYTES: usize = 64 * 1024;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A hard link to another entry (`link`), sharing its bytes.
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// Where an entry's bytes are: a byte range of one of the tree's source files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRef {
    pub source: u32,
    pub offset: u64,
    pub size: u64,
}

/// A file's bytes in its layer source, read in parts.
#[derive(Debug)]
pub struct FileSlice {
    file: std::fs::File,
    offset: u64,
    size: u64,
}

impl FileSlice {
    /// Up to `len` bytes at `at` of the file (fewer at its end; none past it).
    pub fn read_at(&self, at: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        if at > self.size {
            return None;
        }
        let len = (len as u64).min(self.size - at) as usize;
        let mut bytes = vec![0; len];
        let mut done = 0;
        while done < len {
            match self
                .file
                .read_at(&mut bytes[done..], self.offset + at + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        bytes.truncate(done);
        Some(bytes)
    }

    /// The file's size.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// One file-tree entry with its original metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Bytes of content (regular files and hard links).
    pub size: u64,
    /// Symlink target as stored, or the sanitized hard-link target path.
    pub link: Option<PathBuf>,
    /// Device numbers for char and block devices.
    pub device: Option<(u32, u32)>,
    /// Extended attributes (`security.capability`...), sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub data: Option<DataRef>,
    /// Index of the layer this entry comes from.
    pub layer: u32,
}

impl Entry {
    /// An entry of `kind` with no content (a symlink to `link`), for tests' in-memory trees.
    #[cfg(test)]
    pub fn bare(kind: Kind, link: Option<&str>) -> Self {
        Self {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: link.map(PathBuf::from),
            device: None,
            xattrs: Vec::new(),
            data: None,
            layer: 0,
        }
    }
}

/// The files holding entries' bytes (layer tars, the files of a layer directory, files slim
/// wrote), indexed by [`DataRef::source`]. What a tree had when it was derived is shared with
/// the copy, not copied: an image read from the engine's storage has a source per file.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    shared: Arc<Vec<PathBuf>>,
    own: Vec<PathBuf>,
}

impl Sources {
    /// The path of source `index`.
    pub fn get(&self, index: u32) -> Option<&Path> {
        let index = index as usize;
        match index.checked_sub(self.shared.len()) {
            None => self.shared.get(index).map(PathBuf::as_path),
            Some(own) => self.own.get(own).map(PathBuf::as_path),
        }
    }

    pub fn len(&self) -> usize {
        self.shared.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `path`; returns its index.
    pub fn push(&mut self, path: PathBuf) -> u32 {
        self.own.push(path);
        (self.len() - 1) as u32
    }

    /// Moves the paths added so far to the shared part, which copies only point at (for a
    /// tree just read: its copies then hold only what they add).
    pub fn seal(&mut self) {
        if !self.own.is_empty() {
            let mut all = Vec::with_capacity(self.len());
            all.extend(self.shared.iter().cloned());
            all.append(&mut self.own);
            self.shared = Arc::new(all);
        }
    }
}

impl From<Vec<PathBuf>> for Sources {
    fn from(paths: Vec<PathBuf>) -> Self {
        Sources {
            shared: Arc::new(paths),
            own: Vec::new(),
        }
    }
}

/// The merged file tree of all layers.
#[derive(Debug, Default)]
pub struct FileTree {
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Where entries' bytes are.
    pub sources: Sources,
}

impl FileTree {
    pub fn get(&self, path: &Path) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Up to `limit` bytes of a regular file's (or hard link's) content.
    pub fn read(&self, path: &Path, limit: u64) -> Option<Vec<u8>> {
        use std::io::{Read as _, Seek as _};
        let data = self.entries.get(path)?.data?;
        let mut file = self.open_source(data.source).ok()?;
        file.seek(std::io::SeekFrom::Start(data.offset)).ok()?;
        let mut bytes = Vec::with_capacity(data.size.min(limit).min(1 << 24) as usize);
        file.take(data.size.min(limit))
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    }

    /// The bytes of file `path`, to read parts of where they are ([`FileSlice::read_at`]).
    pub fn slice(&self, path: &Path) -> Option<FileSlice> {
        let data = self.entries.get(path)?.data?;
        let file = self.open_source(data.source).ok()?;
        Some(FileSlice {
            file,
            offset: data.offset,
            size: data.size,
        })
    }

    /// Opens source file `source` for reading, never through a symlink.
    pub fn open_source(&self, source: u32) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.sources.get(source).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such layer source")
        })?;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    }

    /// A copy to change (shrunk executables, a pruned package database): the same entries,
    /// the same sources by index.
    pub fn derived(&self) -> FileTree {
        FileTree {
            entries: self.entries.clone(),
            sources: self.sources.clone(),
        }
    }

    /// A copy to change that holds only `paths` and their parent directories (what a layer of
    /// them is written from), not every entry of a large image.
    pub fn derived_subset<'p>(&self, paths: impl IntoIterator<Item = &'p Path>) -> FileTree {
        let mut entries = BTreeMap::new();
        for path in paths {
            for at in path.ancestors() {
                if at.as_os_str().is_empty() || entries.contains_key(at) {
                    continue;
                }
                if let Some(entry) = self.entries.get(at) {
                    entries.insert(at.to_path_buf(), entry.clone());
                }
            }
        }
        FileTree {
            entries,
            sources: self.sources.clone(),
        }
    }

    /// Makes the content of `path` the whole of `file` (`size` bytes, a file slim wrote in its
    /// work dir). An entry that is not a regular file yet becomes one (mode 0644, root).
    pub fn set_content(&mut self, path: &Path, file: PathBuf, size: u64) {
        let source = self.sources.push(file);
        let data = Some(DataRef {
            source,
            offset: 0,
            size,
        });
        match self.entries.get_mut(path).filter(|e| e.kind == Kind::File) {
            Some(entry) => {
                entry.size = size;
                entry.data = data;
            }
            None => {
                self.entries.insert(
                    path.to_path_buf(),
                    Entry {
                        kind: Kind::File,
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        size,
                        link: None,
                        device: None,
                        xattrs: Vec::new(),
                        data,
                        layer: 0,
                    },
                );
            }
        }
    }

    /// Total bytes of regular-file content (hard links counted once).
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum()
    }
}

/// Turns a member name from a layer into a tree path: leading `/` and `./` dropped, `.` parts
/// removed; `..` anywhere is refused. The root itself becomes the empty path.
pub fn sanitize(name: &[u8]) -> Result<PathBuf, ImageError> {
    if name.len() > MAX_PATH {
        return Err(ImageError::Unsafe {
            path: String::from_utf8_lossy(&name[..64]).into_owned() + "...",
            why: "longer than PATH_MAX",
        });
    }
    if name.contains(&0) {
        return Err(ImageError::Unsafe {
            path: String::from_utf8_lossy(name).into_owned(),
            why: "contains a NUL byte",
        });
    }
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(name)).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ImageError::Unsafe {
                    path: String::from_utf8_lossy(name).into_owned(),
                    why: "has a `..` component",
                })
            }
        }
    }
    Ok(out)
}

/// Every ancestor of `path` (not the root, not `path`), outermost first.
pub fn ancestors(path: &Path) -> impl Iterator<Item = &Path> {
    let mut list: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    list.reverse();
    list.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_roots_and_dots() {
        assert_eq!(sanitize(b"./usr/bin/").unwrap(), Path::new("usr/bin"));
        assert_eq!(sanitize(b"/etc//passwd").unwrap(), Path::new("etc/passwd"));
        assert_eq!(sanitize(b"./").unwrap(), Path::new(""));
    }

    #[test]
    fn sanitize_refuses_escapes() {
        assert!(sanitize(b"../etc/passwd").is_err());
        assert!(sanitize(b"usr/../../x").is_err());
        assert!(sanitize(&vec![b'a'; MAX_PATH + 1]).is_err());
    }

    #[test]
    fn sources_are_shared_by_copies_and_indexed_across_both_parts() {
        let mut sources = Sources::default();
        assert_eq!(sources.push("/a".into()), 0);
        assert_eq!(sources.push("/b".into()), 1);
        sources.seal();
        let mut copy = sources.clone();
        assert!(Arc::ptr_eq(&copy.shared, &sources.shared));
        assert_eq!(copy.push("/c".into()), 2);
        assert_eq!(copy.get(1), Some(Path::new("/b")));
        assert_eq!(copy.get(2), Some(Path::new("/c")));
        assert_eq!(copy.get(3), None);
        assert_eq!((sources.len(), copy.len()), (2, 3));
        copy.seal();
        assert_eq!(copy.get(2), Some(Path::new("/c")));
    }

    #[test]
    fn ancestors_outermost_first() {
        let all: Vec<_> = ancestors(Path::new("a/b/c")).collect();
        assert_eq!(all, [Path::new("a"), Path::new("a/b")]);
    }
}
