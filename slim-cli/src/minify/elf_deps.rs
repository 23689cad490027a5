//! The shared libraries an ELF executable needs, found the way the dynamic loader would inside
//! the image: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH from the image's env,
//! DT_RUNPATH, `/etc/ld.so.cache`, then the default directories. `$ORIGIN` is expanded.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use super::resolve::resolve;
use crate::image::tree::FileTree;

/// Largest dynamic section read (real ones are a few hundred bytes).
const MAX_DYNAMIC: u64 = 1 << 20;
/// Most program headers read.
const MAX_PHDRS: u64 = 4096;
/// Most needed names, and search directories, taken from one file (real ones have tens).
const MAX_NAMES: usize = 256;
/// Longest string read from the dynamic string table.
const MAX_STRING: usize = 4096;

/// What an ELF file declares.
#[derive(Debug, Default, PartialEq, Eq)]
struct Dynamic {
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    is_64: bool,
}

/// Bytes at an offset of a file: the few parts of an ELF file the dependencies are in are read
/// where they are, never the whole file (a 90 MB libnode would be 90 MB of memory).
trait ReadAt {
    /// Up to `len` bytes at `offset` (fewer at the end).
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.len())?;
        let end = start.saturating_add(len).min(self.len());
        Some(self[start..end].to_vec())
    }
}

impl ReadAt for crate::image::tree::FileSlice {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        crate::image::tree::FileSlice::read_at(self, offset, len)
    }
}

/// The `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` of an ELF file, read from its program headers
/// and dynamic segment as the loader reads them; `None` for anything else (or a truncated or
/// hostile file).
fn parse<R: ReadAt + ?Sized>(file: &R) -> Option<Dynamic> {
    let ident = file.read_at(0, 64)?;
    if ident.len() < 52 || &ident[..4] != b"\x7fELF" {
        return None;
    }
    let is_64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match ident[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let uint = |bytes: &[u8], at: usize, width: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(width)?)?;
        let mut value = 0u64;
        for i in 0..width {
            let byte = if little { b[width - 1 - i] } else { b[i] };
            value = (value << 8) | byte as u64;
        }
        Some(value)
    };
    let word = if is_64 { 8 } else { 4 };
    let (phoff, phentsize, phnum) = match is_64 {
        true => (
            uint(&ident, 0x20, 8)?,
            uint(&ident, 0x36, 2)?,
            uint(&ident, 0x38, 2)?,
        ),
        false => (
            uint(&ident, 0x1c, 4)?,
            uint(&ident, 0x2a, 2)?,
            uint(&ident, 0x2c, 2)?,
        ),
    };
    let entry_size = if is_64 { 56 } else { 32 };
    if phentsize != entry_size || phnum == 0 || phnum > MAX_PHDRS {
        return None;
    }
    let table = file.read_at(phoff, (phentsize * phnum) as usize)?;
    let mut loads = Vec::new();
    let mut dynamic = None;
    for n in 0..phnum as usize {
        let at = n * phentsize as usize;
        let header = table.get(at..at + phentsize as usize)?;
        let kind = uint(header, 0, 4)?;
        // (offset, vaddr, filesz)
        let segment = match is_64 {
            true => (
                uint(header, 8, 8)?,
                uint(header, 16, 8)?,
                uint(header, 32, 8)?,
            ),
            false => (
                uint(header, 4, 4)?,
                uint(header, 8, 4)?,
                uint(header, 16, 4)?,
            ),
        };
        match kind {
            1 => loads.push(segment),
            2 => dynamic = Some(segment),
            _ => {}
        }
    }
    let (dyn_offset, _, dyn_size) = dynamic?;
    let entries = file.read_at(dyn_offset, dyn_size.min(MAX_DYNAMIC) as usize)?;
    let mut needed = Vec::new();
    let mut rpath = Vec::new();
    let mut runpath = Vec::new();
    let mut strtab = None;
    for entry in entries.chunks_exact(2 * word) {
        let tag = uint(entry, 0, word)?;
        let value = uint(entry, word, word)?;
        let list = match tag {
            0 => break,
            1 => &mut needed,
            5 => {
                strtab = Some(value);
                continue;
            }
            15 => &mut rpath,
            29 => &mut runpath,
            _ => continue,
        };
        if !list.contains(&value) && list.len() < MAX_NAMES {
            list.push(value);
        }
    }
    if needed.is_empty() && rpath.is_empty() && runpath.is_empty() {
        return Some(Dynamic {
            is_64,
            ..Dynamic::default()
        });
    }
    // The string table is named by its address: the loadable segment holding it says where
    // that is in the file.
    let strtab = strtab?;
    let table_offset = loads.iter().find_map(|&(offset, vaddr, size)| {
        (strtab >= vaddr && strtab - vaddr < size)
            .then(|| offset.checked_add(strtab - vaddr))
            .flatten()
    })?;
    let string = |at: u64| -> Option<String> {
        let bytes = file.read_at(table_offset.checked_add(at)?, MAX_STRING)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        String::from_utf8(bytes[..end].to_vec()).ok()
    };
    let split = |offsets: Vec<u64>| -> Vec<String> {
        let mut dirs: Vec<String> = Vec::new();
        for dir in offsets
            .into_iter()
            .filter_map(string)
            .flat_map(|s| s.split(':').map(str::to_owned).collect::<Vec<_>>())
        {
            if !dirs.contains(&dir) && dirs.len() < MAX_NAMES {
                dirs.push(dir);
            }
        }
        dirs
    };
    Some(Dynamic {
        needed: needed.into_iter().filter_map(string).collect(),
        rpath: split(rpath),
        runpath: split(runpath),
        is_64,
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
            let Some(file) = self.tree.slice(&object) else {
                continue;
            };
            let Some(dynamic) = parse(&file) else {
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

    /// goblin's full parse of the same file, as the reference.
    fn goblin(bytes: &[u8]) -> Option<Dynamic> {
        let elf = goblin::elf::Elf::parse(bytes).ok()?;
        let split = |list: &[&str]| -> Vec<String> {
            list.iter()
                .flat_map(|s| s.split(':'))
                .map(str::to_owned)
                .collect()
        };
        Some(Dynamic {
            needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
            rpath: split(&elf.rpaths),
            runpath: split(&elf.runpaths),
            is_64: elf.is_64,
        })
    }

    #[test]
    fn dependencies_read_in_parts_match_a_full_parse() {
        let mut compared = 0;
        for dir in [
            "/usr/bin",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten().take(400) {
                let Ok(bytes) = std::fs::read(entry.path()) else {
                    continue;
                };
                let Some(expected) = goblin(&bytes) else {
                    continue;
                };
                if expected.needed.is_empty() {
                    continue;
                }
                assert_eq!(
                    parse(&bytes[..]),
                    Some(expected),
                    "{}",
                    entry.path().display()
                );
                compared += 1;
            }
        }
        assert!(compared > 20, "only {compared} host ELF files compared");
    }

    #[test]
    fn truncated_and_hostile_files_are_none_not_panics() {
        let sh = std::fs::read("/bin/sh").expect("/bin/sh exists");
        for cut in [0, 4, 16, 52, 63, 64, 100, 1000, 4096] {
            let _ = parse(&sh[..cut.min(sh.len())]);
        }
        let mut hostile = sh[..64].to_vec();
        hostile[0x38] = 0xff; // e_phnum
        hostile[0x39] = 0xff;
        assert_eq!(parse(&hostile[..]), None);
        let mut bytes = sh.clone();
        for (n, byte) in bytes.iter_mut().enumerate().skip(64).take(2000) {
            *byte = (n * 7) as u8;
        }
        let _ = parse(&bytes[..]);
        assert_eq!(parse(&b"not an elf at all"[..]), None);
    }

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
