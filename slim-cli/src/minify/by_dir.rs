//! The fat image's bytes by directory, kept and removed, with the packages that own most of
//! each directory: report.json's `by_dir`, what report.html draws as a treemap. Pure: works on
//! a [`FileTree`], the closed selection and the package owners.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::image::tree::{FileTree, Kind};

/// Path components of a directory in `by_dir` (`/usr/lib/python3.11`): entries deeper down
/// count for their ancestor at this depth.
pub const DEPTH: usize = 3;

/// How many owning packages a directory names, most bytes first.
pub const PACKAGES_NAMED: usize = 3;

/// One directory's share of the fat image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirShare {
    /// Entries (files, links, directories) kept, and the bytes of the regular files among them.
    pub kept_files: u64,
    pub kept_bytes: u64,
    pub removed_files: u64,
    pub removed_bytes: u64,
    /// The packages owning most of its bytes in the fat image, most first (none without a
    /// package database).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

/// The directory `path` (a tree path, relative) counts for: the first [`DEPTH`] components of
/// the directory holding it, absolute (`/` for entries at the top).
pub fn dir_key(path: &Path) -> String {
    let parent = path.parent().unwrap_or(Path::new(""));
    let parts: Vec<String> = parent
        .components()
        .take(DEPTH)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

/// Adds one entry of `size` bytes to its directory's share.
pub fn count(by_dir: &mut BTreeMap<String, DirShare>, path: &Path, size: u64, kept: bool) {
    let share = by_dir.entry(dir_key(path)).or_default();
    if kept {
        share.kept_files += 1;
        share.kept_bytes += size;
    } else {
        share.removed_files += 1;
        share.removed_bytes += size;
    }
}

/// Names in each share the packages (of `owners`: tree path -> package) owning most of the
/// directory's bytes in `tree`.
pub fn name_packages(
    shares: &mut BTreeMap<String, DirShare>,
    tree: &FileTree,
    owners: &HashMap<PathBuf, String>,
) {
    // directory -> package -> bytes
    let mut owned: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    for (path, package) in owners {
        let Some(entry) = tree.get(path) else {
            continue;
        };
        if entry.kind != Kind::File {
            continue;
        }
        *owned
            .entry(dir_key(path))
            .or_default()
            .entry(package.as_str())
            .or_default() += entry.size;
    }
    for (dir, packages) in owned {
        let Some(share) = shares.get_mut(&dir) else {
            continue;
        };
        let mut ranked: Vec<(&str, u64)> = packages.into_iter().filter(|(_, b)| *b > 0).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        share.packages = ranked
            .into_iter()
            .take(PACKAGES_NAMED)
            .map(|(name, _)| name.to_owned())
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_for_their_directory_at_depth_three() {
        assert_eq!(dir_key(Path::new("etc")), "/");
        assert_eq!(dir_key(Path::new("etc/passwd")), "/etc");
        assert_eq!(
            dir_key(Path::new("usr/lib/python3.11/os.py")),
            "/usr/lib/python3.11"
        );
        assert_eq!(
            dir_key(Path::new("usr/lib/python3.11/email/mime/text.py")),
            "/usr/lib/python3.11"
        );
        let mut shares = BTreeMap::new();
        count(&mut shares, Path::new("usr/bin/python3"), 10, true);
        count(&mut shares, Path::new("usr/bin/perl"), 5, false);
        count(&mut shares, Path::new("usr/bin/env"), 7, false);
        assert_eq!(
            shares["/usr/bin"],
            DirShare {
                kept_files: 1,
                kept_bytes: 10,
                removed_files: 2,
                removed_bytes: 12,
                packages: vec![],
            }
        );
    }
}
