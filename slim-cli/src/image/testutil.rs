//! In-memory layer tars for the image unit tests, including hostile ones the tar crate's safe
//! builder refuses to write.

use std::path::PathBuf;

/// One member of a test layer.
pub enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A regular file whose header claims `claimed` bytes but carries `data`.
    Lying(&'a str, u64, &'a [u8]),
}

fn header(name: &[u8], kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_old();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(1000);
    header.set_gid(1000);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    header
}

/// Raw tar bytes of `members` (names are written verbatim, up to 100 bytes).
pub fn layer(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for member in members {
        let (h, data): (tar::Header, &[u8]) = match member {
            Member::Dir(n) => (
                header(n.as_bytes(), tar::EntryType::Directory, 0, 0o755),
                b"",
            ),
            Member::File(n, d) => (
                header(n.as_bytes(), tar::EntryType::Regular, d.len() as u64, 0o644),
                d,
            ),
            Member::Symlink(n, t) | Member::Hardlink(n, t) => {
                let kind = if matches!(member, Member::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(n.as_bytes(), kind, 0, 0o777);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                h.set_cksum();
                (h, b"")
            }
            Member::Lying(n, claimed, d) => (
                header(n.as_bytes(), tar::EntryType::Regular, *claimed, 0o644),
                d,
            ),
        };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "slim-unit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes each layer to a file and returns (sources, layer refs) for `flatten`.
    pub fn layers(&self, layers: &[Vec<u8>]) -> (Vec<PathBuf>, Vec<super::flatten::LayerRef>) {
        let mut sources = Vec::new();
        let mut refs = Vec::new();
        for (i, bytes) in layers.iter().enumerate() {
            let path = self.0.join(format!("layer{i}.tar"));
            std::fs::write(&path, bytes).unwrap();
            sources.push(path);
            refs.push(super::flatten::LayerRef {
                source: i as u32,
                offset: 0,
                size: bytes.len() as u64,
                digest: format!("layer{i}"),
            });
        }
        (sources, refs)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
