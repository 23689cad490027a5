//! The shared libraries an ELF executable needs, found the way the dynamic loader would inside
//! the image: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH from the image's env,
//! DT_RUNPATH, `/etc/ld.so.cache`, then the default directories. `$ORIGIN` is expanded.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use goblin::elf::Elf;

use super::resolve::resolve;
use crate::image::tree::FileTree;

/// Largest ELF file parsed for its dependencies.
const MAX_ELF: u64 = 512 * 1024 * 1024;

/// What an ELF file declares.
#[derive(Debug, Default)]
struct Dynamic {
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    is_64: bool,
}

fn parse(bytes: &[u8]) -> Option<Dynamic> {
    let elf = Elf::parse(bytes).ok()?;
    Some(Dynamic {
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: elf
            .rpaths
            .iter()
            .flat_map(|s| s.split(':'))
            .map(str::to_owned)
            .collect(),
        runpath: elf
            .runpaths
            .iter()
            .flat_map(|s| s.split(':'))
            .map(str::to_owned)
            .collect(),
        is_64: elf.is_64,
    })
}

/// Library search state for one image.
pub struct Loader<'a> {
    tree: &'a FileTree,
    cache: HashMap<String, Vec<PathBuf>>,
    library_path: Vec<String>,
}

impl<'a> Loader<'a> {
    /// `env` is the image's `Env` (for LD_LIBRARY_PATH).
    pub fn new(tree: &'a FileTree, env: &[String]) -> Self {
        let library_path = env
            .iter()
            .find_map(|e| e.strip_prefix("LD_LIBRARY_PATH="))
            .map(|v| {
                v.split(':')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let cache = tree
            .read(Path::new("etc/ld.so.cache"), 64 * 1024 * 1024)
            .map(|bytes| parse_ld_so_cache(&bytes))
            .unwrap_or_default();
        Self {
            tree,
            cache,
            library_path,
        }
    }

    /// Every library `binary` needs, transitively (resolved tree paths of the files, and the
    /// symlinks leading to them), with the name of the object that needed each.
    pub fn closure(&self, binary: &Path) -> Vec<(PathBuf, Vec<PathBuf>, String)> {
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        let mut work = vec![binary.to_path_buf()];
        while let Some(object) = work.pop() {
            if !seen.insert(object.clone()) || seen.len() > 5000 {
                continue;
            }
            let Some(bytes) = self.tree.read(&object, MAX_ELF) else {
                continue;
            };
            let Some(dynamic) = parse(&bytes) else {
                continue;
            };
            let origin = Path::new("/").join(object.parent().unwrap_or(Path::new("")));
            for name in &dynamic.needed {
                if let Some((target, links)) = self.find(name, &dynamic, &origin) {
                    let needed_by = format!("/{}", object.display());
                    if !found
                        .iter()
                        .any(|(t, _, _): &(PathBuf, Vec<PathBuf>, String)| t == &target)
                    {
                        found.push((target.clone(), links, needed_by));
                    }
                    work.push(target);
                }
            }
        }
        found
    }

    fn find(
        &self,
        name: &str,
        dynamic: &Dynamic,
        origin: &Path,
    ) -> Option<(PathBuf, Vec<PathBuf>)> {
        if name.contains('/') {
            return self.try_path(&origin.join(name));
        }
        let expand = |dir: &String| {
            PathBuf::from(
                dir.replace("$ORIGIN", &origin.to_string_lossy())
                    .replace("${ORIGIN}", &origin.to_string_lossy()),
            )
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        if dynamic.runpath.is_empty() {
            dirs.extend(dynamic.rpath.iter().map(expand));
        }
        dirs.extend(self.library_path.iter().map(PathBuf::from));
        dirs.extend(dynamic.runpath.iter().map(expand));
        for dir in &dirs {
            if let Some(hit) = self.try_path(&dir.join(name)) {
                return Some(hit);
            }
        }
        if let Some(paths) = self.cache.get(name) {
            for path in paths {
                if let Some(hit) = self.try_path(path) {
                    if self.class_matches(&hit.0, dynamic.is_64) {
                        return Some(hit);
                    }
                }
            }
        }
        let defaults: &[&str] = if dynamic.is_64 {
            &[
                "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
                "/lib64",
                "/usr/lib64",
                "/lib",
                "/usr/lib",
                "/usr/local/lib",
            ]
        } else {
            &[
                "/lib/i386-linux-gnu",
                "/usr/lib/i386-linux-gnu",
                "/lib/arm-linux-gnueabihf",
                "/usr/lib/arm-linux-gnueabihf",
                "/lib32",
                "/usr/lib32",
                "/lib",
                "/usr/lib",
            ]
        };
        for dir in defaults {
            if let Some(hit) = self.try_path(&Path::new(dir).join(name)) {
                if self.class_matches(&hit.0, dynamic.is_64) {
                    return Some(hit);
                }
            }
        }
        None
    }

    fn try_path(&self, path: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
        let resolution = resolve(self.tree, path);
        resolution.target.map(|t| (t, resolution.links))
    }

    fn class_matches(&self, path: &Path, is_64: bool) -> bool {
        match self.tree.read(path, 5) {
            Some(head) if head.len() == 5 && head.starts_with(b"\x7fELF") => {
                (head[4] == 2) == is_64
            }
            _ => true,
        }
    }
}

/// soname -> paths, from glibc's `ld.so.cache` (the "glibc-ld.so.cache1.1" format).
pub fn parse_ld_so_cache(bytes: &[u8]) -> HashMap<String, Vec<PathBuf>> {
    const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
    let mut map: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let Some(start) = bytes.windows(MAGIC.len()).position(|w| w == MAGIC) else {
        return map;
    };
    let u32_at = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(count) = u32_at(start + MAGIC.len()) else {
        return map;
    };
    // Header: magic (20), nlibs (4), len_strings (4), flags (1), pad (3), extension offset (4),
    // unused (12) = 48 bytes; entries of 24 bytes follow.
    let entries = start + 48;
    let string = |offset: u32| -> Option<String> {
        let at = start + offset as usize;
        let rest = bytes.get(at..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    for i in 0..count.min(100_000) as usize {
        let at = entries + i * 24;
        let (Some(key), Some(value)) = (u32_at(at + 4), u32_at(at + 8)) else {
            break;
        };
        if let (Some(name), Some(path)) = (string(key), string(value)) {
            map.entry(name).or_default().push(PathBuf::from(path));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ld_so_cache_knows_libc() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            eprintln!("skipping: no /etc/ld.so.cache");
            return;
        };
        let cache = parse_ld_so_cache(&bytes);
        let libc = cache.get("libc.so.6").expect("libc.so.6 in the cache");
        assert!(libc
            .iter()
            .any(|p| p.to_string_lossy().contains("libc.so.6")));
    }
}
