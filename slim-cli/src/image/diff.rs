//! `slim diff`'s comparison of two flattened images: the paths only in one of them, the paths
//! both have but differently (kind, size, link target, mode, owner), and the paths only in the
//! left one totalled by top directory and by the package of the left image that owns them.
//! Pure: two trees and an ownership map in, plain data out; reading the images and their
//! package database is the caller's. File content is not compared (same size, same path is
//! "unchanged").

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::tree::{Entry, FileTree, Kind};

/// How many path components name a top directory by default (`/usr/share`).
pub const DEFAULT_DEPTH: usize = 2;

/// The package name of files no package owns.
pub const NO_PACKAGE: &str = "(no package)";

/// The whole comparison, also printed as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub left: Totals,
    pub right: Totals,
    /// Path components of a top directory in `by_directory`.
    pub depth: usize,
    /// Whether the left image has a package database slim reads (else `by_package` is empty).
    pub package_database: bool,
    pub only_left: OnlyIn,
    pub only_right: OnlyIn,
    pub changed: Changed,
}

/// What one image holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Entries that are not directories (files, links, devices).
    pub files: u64,
    /// Bytes of regular-file content (hard links counted once).
    pub bytes: u64,
}

/// The paths one image has and the other has not.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OnlyIn {
    /// Entries that are not directories.
    pub files: u64,
    pub dirs: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
    /// Files and bytes per top directory, largest first.
    pub by_directory: Vec<Group>,
    /// Files and bytes per package of the left image, largest first ([`NO_PACKAGE`] for the
    /// rest); empty without a package database, and for paths only in the right image.
    pub by_package: Vec<Group>,
    /// Every path, in path order.
    pub paths: Vec<PathInfo>,
}

/// A directory's or a package's share of a difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

/// One path only in one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathInfo {
    /// Absolute (`/usr/bin/perl`).
    pub path: String,
    pub kind: Kind,
    /// Bytes of content (regular files; 0 for the rest).
    pub bytes: u64,
    /// The left image's package owning it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// The paths both images have, but not alike.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Changed {
    /// Changed entries, directories included.
    pub count: u64,
    /// Their regular-file bytes in the left image, and in the right one.
    pub bytes_left: u64,
    pub bytes_right: u64,
    /// Every changed path, in path order.
    pub paths: Vec<ChangedPath>,
}

/// One path both images have, with what differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangedPath {
    pub path: String,
    pub what: Vec<Change>,
    pub left: Side,
    pub right: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// What can differ between two entries at one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Kind,
    Size,
    Link,
    Mode,
    Owner,
}

impl Change {
    /// As JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kind => "kind",
            Self::Size => "size",
            Self::Link => "link",
            Self::Mode => "mode",
            Self::Owner => "owner",
        }
    }
}

/// One image's entry at a changed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub kind: Kind,
    pub bytes: u64,
    /// Permission bits in octal (`0755`), setuid/setgid/sticky included.
    pub mode: String,
    pub uid: u64,
    pub gid: u64,
    /// Symlink target, or hard-link target path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Compares `left` with `right`. `owners` maps paths of `left` to the package owning them
/// (`None`: the left image has no package database); top directories are `depth` components.
pub fn diff(
    left: &FileTree,
    right: &FileTree,
    owners: Option<&HashMap<PathBuf, String>>,
    depth: usize,
) -> Diff {
    let package = |path: &Path| owners.and_then(|o| o.get(path)).cloned();
    let mut only_left = only_in(left, right, depth, &package);
    let only_right = only_in(right, left, depth, &|_: &Path| None);
    if owners.is_some() {
        only_left.by_package = by_package(&only_left.paths);
    }
    Diff {
        left: totals(left),
        right: totals(right),
        depth,
        package_database: owners.is_some(),
        only_left,
        only_right,
        changed: changed(left, right, &package),
    }
}

fn totals(tree: &FileTree) -> Totals {
    Totals {
        files: tree
            .entries
            .values()
            .filter(|e| e.kind != Kind::Dir)
            .count() as u64,
        bytes: tree.content_bytes(),
    }
}

/// The paths of `tree` that `other` lacks, totalled by top directory.
fn only_in(
    tree: &FileTree,
    other: &FileTree,
    depth: usize,
    package: &dyn Fn(&Path) -> Option<String>,
) -> OnlyIn {
    let mut out = OnlyIn::default();
    let mut dirs: HashMap<String, Group> = HashMap::new();
    for (path, entry) in &tree.entries {
        if path.as_os_str().is_empty() || other.entries.contains_key(path) {
            continue;
        }
        let bytes = content_bytes(entry);
        if entry.kind == Kind::Dir {
            out.dirs += 1;
        } else {
            out.files += 1;
            out.bytes += bytes;
            add(&mut dirs, top_directory(path, depth), bytes);
        }
        out.paths.push(PathInfo {
            path: absolute(path),
            kind: entry.kind,
            bytes,
            package: package(path),
        });
    }
    out.by_directory = largest_first(dirs);
    out
}

/// Files and bytes per owning package of `paths` (directories left out).
fn by_package(paths: &[PathInfo]) -> Vec<Group> {
    let mut groups = HashMap::new();
    for info in paths.iter().filter(|p| p.kind != Kind::Dir) {
        let name = info.package.as_deref().unwrap_or(NO_PACKAGE);
        add(&mut groups, name.to_owned(), info.bytes);
    }
    largest_first(groups)
}

/// The paths both trees have with a different kind, size, link, mode or owner.
fn changed(
    left: &FileTree,
    right: &FileTree,
    package: &dyn Fn(&Path) -> Option<String>,
) -> Changed {
    let mut out = Changed::default();
    for (path, a) in &left.entries {
        let Some(b) = right.entries.get(path) else {
            continue;
        };
        let what = differences(a, b);
        if what.is_empty() {
            continue;
        }
        out.count += 1;
        out.bytes_left += content_bytes(a);
        out.bytes_right += content_bytes(b);
        out.paths.push(ChangedPath {
            path: absolute(path),
            what,
            left: side(a),
            right: side(b),
            package: package(path),
        });
    }
    out
}

/// What differs between two entries at one path.
fn differences(a: &Entry, b: &Entry) -> Vec<Change> {
    [
        (a.kind != b.kind, Change::Kind),
        (a.size != b.size, Change::Size),
        (a.link != b.link, Change::Link),
        (a.mode & 0o7777 != b.mode & 0o7777, Change::Mode),
        ((a.uid, a.gid) != (b.uid, b.gid), Change::Owner),
    ]
    .into_iter()
    .filter_map(|(differs, change)| differs.then_some(change))
    .collect()
}

fn side(entry: &Entry) -> Side {
    Side {
        kind: entry.kind,
        bytes: content_bytes(entry),
        mode: format!("{:04o}", entry.mode & 0o7777),
        uid: entry.uid,
        gid: entry.gid,
        link: entry
            .link
            .as_ref()
            .map(|l| l.to_string_lossy().into_owned()),
    }
}

/// Bytes an entry adds to its image: a regular file's size (a hard link shares its target's).
fn content_bytes(entry: &Entry) -> u64 {
    match entry.kind {
        Kind::File => entry.size,
        _ => 0,
    }
}

/// The first `depth` components of the directory holding `path` (`/usr/share` for
/// `usr/share/doc/x/copyright` at depth 2), `/` for a top-level entry.
pub fn top_directory(path: &Path, depth: usize) -> String {
    let parent = path.parent().unwrap_or(Path::new(""));
    let mut top = String::new();
    for part in parent.components().take(depth) {
        top.push('/');
        top.push_str(&part.as_os_str().to_string_lossy());
    }
    if top.is_empty() {
        top.push('/');
    }
    top
}

fn absolute(path: &Path) -> String {
    format!("/{}", path.to_string_lossy())
}

fn add(groups: &mut HashMap<String, Group>, name: String, bytes: u64) {
    let group = groups.entry(name.clone()).or_insert(Group {
        name,
        files: 0,
        bytes: 0,
    });
    group.files += 1;
    group.bytes += bytes;
}

/// Groups by bytes, then files, largest first; ties by name.
fn largest_first(groups: HashMap<String, Group>) -> Vec<Group> {
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        (b.bytes, b.files)
            .cmp(&(a.bytes, a.files))
            .then_with(|| a.name.cmp(&b.name))
    });
    groups
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
