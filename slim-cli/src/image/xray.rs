//! `slim xray`'s analysis of a flattened image: per-layer changes and waste, the largest files
//! and directories of the final tree, and an efficiency score.

use std::{collections::HashMap, path::Path};

use serde::Serialize;

use super::{
    flatten::LayerStats,
    tree::{FileTree, Kind},
};

/// How many of the largest files and directories are listed.
pub const TOP: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct SizedPath {
    pub path: String,
    pub bytes: u64,
}

/// The whole report, also printed as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Xray {
    pub layers: Vec<LayerStats>,
    /// Bytes of all layer tars.
    pub total_bytes: u64,
    /// Bytes of file content shipped in layers but overwritten or deleted by a later one.
    pub wasted_bytes: u64,
    /// Bytes of file content in the final tree.
    pub content_bytes: u64,
    pub files: u64,
    /// 1 - wasted / all content shipped: 1.0 means no layer ships bytes that never show.
    pub efficiency: f64,
    pub largest_files: Vec<SizedPath>,
    pub largest_directories: Vec<SizedPath>,
}

pub fn analyze(tree: &FileTree, layers: Vec<LayerStats>) -> Xray {
    let total_bytes = layers.iter().map(|l| l.size_bytes).sum();
    let wasted_bytes: u64 = layers.iter().map(|l| l.wasted_bytes).sum();
    let shipped: u64 = layers.iter().map(|l| l.content_bytes).sum();
    let mut files: Vec<(&Path, u64)> = Vec::new();
    let mut dirs: HashMap<&Path, u64> = HashMap::new();
    for (path, entry) in &tree.entries {
        if entry.kind != Kind::File {
            continue;
        }
        files.push((path, entry.size));
        for dir in path.ancestors().skip(1) {
            *dirs.entry(dir).or_default() += entry.size;
        }
    }
    files.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut dirs: Vec<(&Path, u64)> = dirs
        .into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Xray {
        total_bytes,
        wasted_bytes,
        content_bytes: tree.content_bytes(),
        files: files.len() as u64,
        efficiency: if shipped == 0 {
            1.0
        } else {
            1.0 - wasted_bytes as f64 / shipped as f64
        },
        largest_files: top(&files),
        largest_directories: top(&dirs),
        layers,
    }
}

/// Human-readable bytes (`211.5 MB`), decimal units as `docker images` shows them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The first [`TOP`] of a list sorted largest first, as `/path` and bytes.
fn top(sorted: &[(&Path, u64)]) -> Vec<SizedPath> {
    sorted
        .iter()
        .take(TOP)
        .map(|(path, bytes)| SizedPath {
            path: format!("/{}", path.display()),
            bytes: *bytes,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(211_500_000), "211.5 MB");
        assert_eq!(human_bytes(19_800_000), "19.8 MB");
    }
}
