//! The package database of the slim image, so scanners still read it: dpkg's (and
//! distroless' `status.d`) and apk's are pruned to the packages that keep at least one file,
//! each cut to its kept paths; an RPM database is kept whole (slim cannot rewrite it). What
//! remains is also described as an SPDX 2.3 SBOM ([`spdx`]).

mod apk;
mod dpkg;
pub mod spdx;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    image::tree::{FileTree, Kind},
    minify::resolve::resolve,
};

/// What to do with the image's package database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Only the packages that keep a file, cut to their kept files.
    #[default]
    Pruned,
    /// The fat image's database as it is (scanners then list packages that are gone).
    Full,
    /// No package database (unless the app itself read it).
    None,
}

/// Which database the image has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Db {
    #[default]
    Dpkg,
    /// `var/lib/dpkg/status.d/` as distroless images have it.
    DpkgDistroless,
    Apk,
    Rpm,
}

impl Db {
    /// The purl type of its packages.
    fn purl_type(self) -> &'static str {
        match self {
            Self::Dpkg | Self::DpkgDistroless => "deb",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
        }
    }
}

/// One package of the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package, when the database names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip)]
    pub supplier: Option<String>,
    /// Its files (not directories) in the fat image, and how many the slim image keeps.
    pub files_total: u64,
    pub files_kept: u64,
}

/// The pruned database: files to write into the image, and what it says.
#[derive(Clone, Debug, Default)]
pub struct Pruned {
    pub db: Db,
    /// Files written with new content: (tree path, bytes).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Directories the database needs (kept when the fat image has them).
    pub dirs: Vec<PathBuf>,
    /// Fat-image paths kept as they are (an RPM database, `--package-db full`).
    pub whole: Vec<PathBuf>,
    pub kept: Vec<Package>,
    pub removed: Vec<String>,
    /// Why the database is not what it should be (RPM kept whole).
    pub warning: Option<String>,
}

/// The OS the image says it is (`/etc/os-release`): `debian`, `12`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
}

/// report.json `packages`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub database: Db,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// Packages that keep files: whole, or partly (`files_kept < files_total`).
    pub kept: Vec<Package>,
    /// Packages whose every file was dropped.
    pub removed: Vec<String>,
    pub counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    pub kept: usize,
    pub partly: usize,
    pub removed: usize,
}

impl Report {
    /// `packages: 14 kept (3 partly), 126 removed`.
    pub fn line(&self) -> String {
        format!(
            "packages: {} kept ({} partly), {} removed",
            self.counts.kept, self.counts.partly, self.counts.removed
        )
    }
}

/// Files scanners read to tell the OS: kept with the database.
const OS_FILES: &[&str] = &[
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/lsb-release",
    "etc/redhat-release",
    "etc/system-release",
];

/// Whether a path of the image is kept, and a directory.
pub struct KeptPaths<'a> {
    tree: &'a FileTree,
    selection: &'a BTreeSet<PathBuf>,
    /// Resolved parent directories: a package lists many files of one directory.
    parents: std::cell::RefCell<std::collections::HashMap<PathBuf, Option<PathBuf>>>,
}

/// What [`KeptPaths::state`] knows about one path.
pub struct PathState {
    pub is_dir: bool,
    pub kept: bool,
}

impl KeptPaths<'_> {
    /// The entry at absolute `path` (its parents' symlinks followed, itself not), if the image
    /// has it.
    pub fn state(&self, path: &str) -> Option<PathState> {
        let relative = Path::new(path.trim_start_matches('/'));
        if relative.as_os_str().is_empty() || relative == Path::new(".") {
            return Some(PathState {
                is_dir: true,
                kept: true,
            });
        }
        let at = match (relative.parent(), relative.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                let resolved = self
                    .parents
                    .borrow_mut()
                    .entry(parent.to_path_buf())
                    .or_insert_with(|| resolve(self.tree, parent).target)
                    .clone();
                resolved?.join(name)
            }
            _ => relative.to_path_buf(),
        };
        let entry = self.tree.get(&at)?;
        // A symlink to a directory (usr-merged `/bin`) is listed as the directory.
        let is_dir = match entry.kind {
            Kind::Dir => true,
            Kind::Symlink => resolve(self.tree, &at)
                .target
                .and_then(|t| self.tree.get(&t))
                .is_some_and(|e| e.kind == Kind::Dir),
            _ => false,
        };
        Some(PathState {
            is_dir,
            kept: self.selection.contains(&at),
        })
    }
}

/// Prunes (or keeps whole, or drops) the package database of `tree` for the slim image made of
/// `selection`. `None` when the image has no database slim knows.
pub fn prune(tree: &FileTree, selection: &BTreeSet<PathBuf>, mode: Mode) -> Option<Pruned> {
    if mode == Mode::None {
        return None;
    }
    let read = |path: &str| -> Option<Vec<u8>> {
        let entry = tree.get(Path::new(path))?;
        (entry.kind == Kind::File).then_some(())?;
        tree.read(Path::new(path), 64 << 20)
    };
    let list_dir = |dir: &str| -> Vec<String> {
        let dir = Path::new(dir);
        tree.entries
            .range(dir.to_path_buf()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, e)| p.parent() == Some(dir) && e.kind == Kind::File)
            .filter_map(|(p, _)| p.file_name()?.to_str().map(str::to_owned))
            .collect()
    };
    let kept = KeptPaths {
        tree,
        selection,
        parents: Default::default(),
    };
    let analysed = dpkg::prune(&read, &list_dir, &kept).or_else(|| {
        read(apk::INSTALLED)
            .map(|installed| apk::prune(&String::from_utf8_lossy(&installed), &kept))
    });
    let mut pruned = if let Some(mut analysed) = analysed {
        if mode == Mode::Full {
            // The database as it is; the report still says what really remains.
            analysed.files.clear();
            analysed.dirs.clear();
            analysed.whole = whole_database(tree)?.whole;
        }
        analysed
    } else {
        let mut rpm = whole_database(tree).filter(|p| p.db == Db::Rpm)?;
        rpm.warning = Some(
            "the RPM database is kept whole: slim cannot rewrite it, so scanners also list \
             packages whose files were dropped"
                .into(),
        );
        rpm
    };
    pruned.whole.extend(
        OS_FILES
            .iter()
            .map(PathBuf::from)
            .filter(|p| tree.get(p).is_some()),
    );
    Some(pruned)
}

/// Every path the image's OS packages own (dpkg's `info/*.list` and distroless `status.d`
/// md5sums, apk's `installed`), as tree paths (a path listed through a symlinked directory, as
/// `/bin` on a merged-/usr system, is where it really is). `None` when the image has no
/// database slim reads (an RPM one, or none).
pub fn owned_paths(tree: &FileTree) -> Option<HashSet<PathBuf>> {
    owners(tree).map(|owners| owners.into_keys().collect())
}

/// Which package owns each path of [`owned_paths`]: its name (`libc6`, without the
/// architecture dpkg's multi-arch file names add). A path several packages list (a shared
/// directory) goes to the first one read. `None` as for [`owned_paths`].
pub fn owners(tree: &FileTree) -> Option<HashMap<PathBuf, String>> {
    let files_in = |dir: &str, suffix: &str| -> Vec<PathBuf> {
        let dir = Path::new(dir);
        tree.entries
            .range(dir.to_path_buf()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, e)| {
                p.parent() == Some(dir)
                    && e.kind == Kind::File
                    && p.to_string_lossy().ends_with(suffix)
            })
            .map(|(p, _)| p.clone())
            .collect()
    };
    let text = |path: &Path| {
        tree.read(path, 64 << 20)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    // `libc6:amd64.list` -> `libc6`.
    let package_of = |file: &Path, suffix: &str| -> String {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let name = name.strip_suffix(suffix).unwrap_or(&name);
        name.split(':').next().unwrap_or(name).to_owned()
    };
    // (listed path, package name)
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut found = false;
    for list in files_in(dpkg::INFO, ".list") {
        found = true;
        let package = package_of(&list, ".list");
        let text = text(&list).unwrap_or_default();
        listed.extend(text.lines().map(|l| (l.to_owned(), package.clone())));
    }
    for sums in files_in(dpkg::STATUS_D, ".md5sums") {
        found = true;
        let package = package_of(&sums, ".md5sums");
        let text = text(&sums).unwrap_or_default();
        listed.extend(
            text.lines()
                .filter_map(|l| Some((l.split_once("  ")?.1.to_owned(), package.clone()))),
        );
    }
    if let Some(installed) = text(Path::new(apk::INSTALLED)) {
        found = true;
        let mut package = String::new();
        let mut dir = String::new();
        for line in installed.lines() {
            if let Some(value) = line.strip_prefix("P:") {
                package = value.to_owned();
            } else if let Some(value) = line.strip_prefix("F:") {
                dir = value.to_owned();
                listed.push((dir.clone(), package.clone()));
            } else if let Some(value) = line.strip_prefix("R:") {
                listed.push((format!("{dir}/{value}"), package.clone()));
            }
        }
    }
    if !found {
        return None;
    }
    let mut owners = HashMap::with_capacity(listed.len());
    for (path, package) in listed {
        let relative = PathBuf::from(path.trim_start_matches('/'));
        if relative.as_os_str().is_empty() || relative.as_os_str() == "." {
            continue;
        }
        let at = if tree.get(&relative).is_some() {
            relative
        } else if let Some(target) = resolve(tree, &Path::new("/").join(&relative)).target {
            target
        } else {
            continue;
        };
        owners.entry(at).or_insert(package);
    }
    Some(owners)
}

/// Every path of the image's database, kept as it is.
fn whole_database(tree: &FileTree) -> Option<Pruned> {
    let roots = [
        ("var/lib/dpkg", Db::Dpkg),
        ("lib/apk/db", Db::Apk),
        ("var/lib/rpm", Db::Rpm),
        ("usr/lib/sysimage/rpm", Db::Rpm),
    ];
    let (root, db) = roots.into_iter().find(|(root, _)| {
        tree.get(Path::new(root))
            .is_some_and(|e| e.kind == Kind::Dir)
    })?;
    let whole = tree
        .entries
        .keys()
        .filter(|p| p.starts_with(root))
        .cloned()
        .collect();
    Some(Pruned {
        db,
        whole,
        ..Default::default()
    })
}

/// The image's OS, from its os-release.
pub fn distro(tree: &FileTree) -> Option<Distro> {
    let target = resolve(tree, Path::new("etc/os-release"))
        .target
        .or_else(|| resolve(tree, Path::new("usr/lib/os-release")).target)?;
    let text = String::from_utf8_lossy(&tree.read(&target, 64 << 10)?).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    Some(Distro {
        id: field("ID")?,
        version_id: field("VERSION_ID").unwrap_or_default(),
    })
}

/// The tree to write the slim image from: the `selection` of `tree` with the pruned database's
/// files pointing at copies in `work`, and the paths to add to the selection.
pub fn apply(
    tree: &FileTree,
    pruned: &Pruned,
    selection: &std::collections::BTreeSet<PathBuf>,
    work: &Path,
) -> std::io::Result<(FileTree, Vec<PathBuf>)> {
    let dir = work.join("packages");
    std::fs::create_dir_all(&dir)?;
    // Only what the slim image can hold: the selection and what the database adds.
    let mut out = tree.derived_subset(
        selection
            .iter()
            .chain(pruned.files.iter().map(|(path, _)| path))
            .chain(&pruned.dirs)
            .chain(&pruned.whole)
            .map(PathBuf::as_path),
    );
    let mut added = Vec::new();
    for (path, bytes) in &pruned.files {
        let copy = dir.join(out.sources.len().to_string());
        std::fs::write(&copy, bytes)?;
        out.set_content(path, copy, bytes.len() as u64);
        added.push(path.clone());
    }
    for dir in &pruned.dirs {
        if tree.get(dir).is_some_and(|e| e.kind == Kind::Dir) {
            added.push(dir.clone());
        }
    }
    added.extend(pruned.whole.iter().cloned());
    // Each added path's parent directories come along.
    let parents: Vec<PathBuf> = added
        .iter()
        .flat_map(|p| p.ancestors().skip(1).map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty() && out.get(p).is_some())
        .collect();
    added.extend(parents);
    added.sort();
    added.dedup();
    Ok((out, added))
}

/// report.json's `packages` for `pruned`.
pub fn report(pruned: &Pruned, mode: Mode, distro: Option<Distro>) -> Report {
    let partly = pruned
        .kept
        .iter()
        .filter(|p| p.files_kept < p.files_total)
        .count();
    Report {
        database: pruned.db,
        mode: match mode {
            Mode::Pruned => "pruned",
            Mode::Full => "full",
            Mode::None => "none",
        },
        distro,
        kept: pruned.kept.clone(),
        removed: pruned.removed.clone(),
        counts: Counts {
            kept: pruned.kept.len(),
            partly,
            removed: pruned.removed.len(),
        },
        warning: pruned.warning.clone(),
    }
}

/// Splits a control file (dpkg status, apk installed is line based) into paragraphs of
/// `(field, value)`; a value's continuation lines follow it after `\n`, as written.
pub fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

#[cfg(test)]
mod tests;
