//! Flattening layers straight from a local engine's overlay storage (`overlay2` diff
//! directories), which skips the `docker save` stream: the engine's own extracted layers are
//! walked, and each kept file's bytes are read from its diff directory when the slim layer is
//! written.
//!
//! The directories are the engine's, not the image author's, but their contents still came
//! from image layers: nothing here follows a symlink (entries are `lstat`ed, directories are
//! walked by name, files are opened with `O_NOFOLLOW` when read), and overlay's own markers
//! are translated, never copied: a `0:0` character device is a whiteout, the `opaque` xattr an
//! opaque directory, and `redirect`/`metacopy` (which an image layer never carries) are refused.

use std::{
    collections::HashMap,
    ffi::{CString, OsStr},
    fs,
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt},
    },
    path::{Path, PathBuf},
};

use super::{
    flatten::{insert, remove_lower, LayerStats},
    tree::{DataRef, Entry, FileTree, Kind, MAX_PATH, MAX_XATTR_BYTES},
    ImageError,
};

/// One layer as an overlay diff directory, with the digest of its tar (`rootfs.diff_ids`).
#[derive(Clone, Debug)]
pub struct LayerDir {
    pub dir: PathBuf,
    pub digest: String,
}

/// Applies the layer directories in order (lowest first); returns the tree (whose sources are
/// the regular files themselves) and what each layer did.
pub fn flatten_dirs(layers: &[LayerDir]) -> Result<(FileTree, Vec<LayerStats>), ImageError> {
    let mut tree = FileTree::default();
    let mut stats = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        stats.push(LayerStats {
            index: index as u32,
            digest: layer.digest.clone(),
            ..Default::default()
        });
        let mut walk = Walk {
            tree: &mut tree,
            stats: &mut stats,
            index: index as u32,
            inodes: HashMap::new(),
        };
        walk.dir(&layer.dir, Path::new(""))
            .map_err(|err| err.in_layer(index))?;
        let layer_stats = &mut stats[index];
        layer_stats.size_bytes = layer_stats.content_bytes;
    }
    tree.sources.seal();
    Ok((tree, stats))
}

struct Walk<'a> {
    tree: &'a mut FileTree,
    stats: &'a mut Vec<LayerStats>,
    index: u32,
    /// (device, inode) of regular files with more than one link -> the first path seen.
    inodes: HashMap<(u64, u64), PathBuf>,
}

impl Walk<'_> {
    /// Applies the entries of `host` (the layer's directory for tree path `path`), sorted by
    /// name so hard links always point at the same first path.
    fn dir(&mut self, host: &Path, path: &Path) -> Result<(), ImageError> {
        let mut names: Vec<_> = fs::read_dir(host)
            .map_err(ImageError::io(format!("read {}", host.display())))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(ImageError::io(format!("read {}", host.display())))?;
        names.sort();
        for name in names {
            let host = host.join(&name);
            let path = path.join(&name);
            if path.as_os_str().len() > MAX_PATH {
                return Err(ImageError::Malformed(format!(
                    "a path longer than {MAX_PATH} bytes under {}",
                    host.display()
                )));
            }
            self.entry(&host, path)?;
        }
        Ok(())
    }

    fn entry(&mut self, host: &Path, path: PathBuf) -> Result<(), ImageError> {
        let meta = fs::symlink_metadata(host)
            .map_err(ImageError::io(format!("stat {}", host.display())))?;
        let file_type = meta.file_type();
        let xattrs = read_xattrs(host)?;
        if xattrs.overlay_only_feature {
            return Err(ImageError::Unsupported(format!(
                "{} uses an overlay redirect or metacopy",
                host.display()
            )));
        }
        if file_type.is_char_device() && meta.rdev() == 0 {
            remove_lower(self.tree, self.stats, self.index, &path, true);
            return Ok(());
        }
        if file_type.is_socket() {
            return Ok(()); // a tar cannot hold one; the engine drops them too
        }
        let mut entry = Entry {
            kind: Kind::File,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime().max(0) as u64,
            size: 0,
            link: None,
            device: None,
            xattrs: xattrs.kept,
            data: None,
            layer: self.index,
        };
        if file_type.is_dir() {
            if xattrs.opaque {
                remove_lower(self.tree, self.stats, self.index, &path, false);
            }
            entry.kind = Kind::Dir;
            self.add(path.clone(), entry)?;
            return self.dir(host, &path);
        }
        if file_type.is_symlink() {
            let target =
                fs::read_link(host).map_err(ImageError::io(format!("read {}", host.display())))?;
            entry.kind = Kind::Symlink;
            entry.link = Some(target);
        } else if file_type.is_file() {
            entry.size = meta.len();
            let linked = match meta.nlink() > 1 {
                true => self
                    .inodes
                    .get(&(meta.dev(), meta.ino()))
                    .and_then(|first| {
                        let linked = self.tree.entries.get(first)?;
                        (linked.layer == self.index).then(|| (first.clone(), linked.data))
                    }),
                false => None,
            };
            match linked {
                Some((first, data)) => {
                    entry.kind = Kind::Hardlink;
                    entry.data = data;
                    entry.link = Some(first);
                }
                None => {
                    if meta.nlink() > 1 {
                        self.inodes.insert((meta.dev(), meta.ino()), path.clone());
                    }
                    let source = self.tree.sources.push(host.to_path_buf());
                    entry.data = Some(DataRef {
                        source,
                        offset: 0,
                        size: entry.size,
                    });
                }
            }
        } else if file_type.is_char_device() || file_type.is_block_device() {
            entry.kind = match file_type.is_char_device() {
                true => Kind::Char,
                false => Kind::Block,
            };
            let rdev = meta.rdev();
            entry.device = Some((libc::major(rdev), libc::minor(rdev)));
        } else if file_type.is_fifo() {
            entry.kind = Kind::Fifo;
        }
        self.add(path, entry)
    }

    fn add(&mut self, path: PathBuf, entry: Entry) -> Result<(), ImageError> {
        insert(self.tree, self.stats, self.index, path, entry)
    }
}

/// The extended attributes of one entry, sorted out.
#[derive(Default)]
struct Xattrs {
    /// What the image carries: `security.capability` and `user.*` (the engine exports no
    /// others, and host labels such as `security.selinux` are not the image's).
    kept: Vec<(String, Vec<u8>)>,
    /// overlay's opaque-directory marker.
    opaque: bool,
    /// overlay redirect or metacopy: a layer written by overlay itself, not by extraction.
    overlay_only_feature: bool,
}

fn read_xattrs(host: &Path) -> Result<Xattrs, ImageError> {
    let mut out = Xattrs::default();
    let c_path = CString::new(host.as_os_str().as_bytes())
        .map_err(|_| ImageError::Malformed(format!("{} holds a NUL", host.display())))?;
    let names = xattr_call(|buf, len| unsafe {
        // SAFETY: c_path is NUL-terminated; buf is valid for len bytes (or null with len 0).
        libc::llistxattr(c_path.as_ptr(), buf.cast(), len)
    })
    .map_err(ImageError::io(format!("list xattrs of {}", host.display())))?;
    let mut total = 0;
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let overlay = name
            .strip_prefix(b"trusted.overlay.")
            .or_else(|| name.strip_prefix(b"user.overlay."));
        if let Some(feature) = overlay {
            match feature {
                b"opaque" => {
                    out.opaque = get_xattr(&c_path, name)
                        .map_err(ImageError::io(format!("read xattrs of {}", host.display())))?
                        == b"y"
                }
                b"redirect" | b"metacopy" => out.overlay_only_feature = true,
                _ => {}
            }
            continue;
        }
        if name != b"security.capability" && !name.starts_with(b"user.") {
            continue;
        }
        let value = get_xattr(&c_path, name)
            .map_err(ImageError::io(format!("read xattrs of {}", host.display())))?;
        total += name.len() + value.len();
        if total > MAX_XATTR_BYTES {
            return Err(ImageError::Malformed(format!(
                "{}: more than 64 KiB of extended attributes",
                host.display()
            )));
        }
        let name = OsStr::from_bytes(name).to_string_lossy().into_owned();
        out.kept.push((name, value));
    }
    out.kept.sort();
    Ok(out)
}

fn get_xattr(c_path: &CString, name: &[u8]) -> std::io::Result<Vec<u8>> {
    let c_name = CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    xattr_call(|buf, len| unsafe {
        // SAFETY: both strings are NUL-terminated; buf is valid for len bytes.
        libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), buf.cast(), len)
    })
}

/// Runs a size-query-then-fill xattr call, retrying when the value grew in between.
fn xattr_call(call: impl Fn(*mut u8, usize) -> isize) -> std::io::Result<Vec<u8>> {
    for _ in 0..4 {
        let len = call(std::ptr::null_mut(), 0);
        if len < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOTSUP) | Some(libc::ENODATA) => Ok(Vec::new()),
                _ => Err(err),
            };
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len as usize];
        let got = call(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return Err(std::io::Error::last_os_error());
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ERANGE))
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
