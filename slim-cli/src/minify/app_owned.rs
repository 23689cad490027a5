//! What the app owns is kept whole: files no OS package owns under the working directory and
//! under the directories of the programs and scripts the container runs (the app's own code,
//! templates and data, which a probe may never read), and each language package (an npm
//! package, a pip-installed distribution, a gem, a composer package) of which any file is kept.
//! Bounded by a budget: a tree past what is left of it is not kept whole, and is reported.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::{Component, Path, PathBuf},
};

use serde::Serialize;

use super::{resolve::resolve, KeepSet, Reason, Why};
use crate::image::tree::{FileTree, Kind};

/// Version-control directories: never what an app reads at run time, often large.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// What kind of tree the app owns; report.json names it in lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeKind {
    /// A working or program directory.
    App,
    /// A language package.
    Package,
}

/// A tree the rule looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppTree {
    /// Absolute path of the tree (`/app`, `/app/node_modules/express`).
    pub path: String,
    /// `app` (a working or program directory) or `package` (a language package).
    pub kind: TreeKind,
    /// Bytes and files the image has there that no OS package owns.
    pub bytes: u64,
    pub files: u64,
    /// Whether it was kept whole (false: past the budget).
    pub kept: bool,
}

/// What the rule did: every tree it looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppOwned {
    pub budget_bytes: u64,
    pub trees: Vec<AppTree>,
}

impl AppOwned {
    /// The trees past the budget.
    pub fn over_budget(&self) -> impl Iterator<Item = &AppTree> {
        self.trees.iter().filter(|t| !t.kept)
    }
}

/// Where the app lives: its working directory and the programs and scripts it runs.
#[derive(Clone, Debug, Default)]
pub struct AppDirs {
    /// The container's working directory (absolute).
    pub workdir: Option<String>,
    /// The container's command line (entrypoint then cmd).
    pub command: Vec<String>,
}

/// The directories whose trees are the app's: the working directory and the directories of the
/// command's words that name a file of the image (the program, a script it is given), none of
/// them a system directory.
pub fn app_dirs(tree: &FileTree, dirs: &AppDirs) -> BTreeSet<PathBuf> {
    let workdir = dirs.workdir.as_deref().map(tree_path).unwrap_or_default();
    let mut found = BTreeSet::new();
    let mut add = |dir: PathBuf| {
        let system = super::system_dirs::is_system_dir(&dir);
        if !system {
            found.insert(dir);
        }
    };
    if let Some(target) = resolve(tree, &Path::new("/").join(&workdir)).target {
        if tree.get(&target).is_some_and(|e| e.kind == Kind::Dir) {
            add(target);
        }
    }
    for word in &dirs.command {
        // A word naming a file: absolute, or relative to the working directory (`app.py`,
        // `./server`); options and plain program names looked up in PATH are not.
        if word.starts_with('-') || word.contains('=') || word.is_empty() {
            continue;
        }
        let path = if word.starts_with('/') {
            PathBuf::from(word)
        } else {
            Path::new("/").join(&workdir).join(word)
        };
        let resolution = resolve(tree, &path);
        let Some(target) = resolution.target else {
            continue;
        };
        if tree.get(&target).is_some_and(|e| e.kind != Kind::Dir) {
            if let Some(parent) = target.parent() {
                add(parent.to_path_buf());
            }
        }
    }
    // A tree inside another is part of it.
    let all: Vec<PathBuf> = found.iter().cloned().collect();
    found.retain(|dir| {
        !all.iter()
            .any(|other| other != dir && dir.starts_with(other))
    });
    found
}

/// A language package tree a kept file is in: `node_modules/NAME` (or `@scope/NAME`), a
/// pip-installed distribution's top-level package in `site-packages`/`dist-packages`, a gem
/// under `gems/NAME-VERSION`, a composer package `vendor/VENDOR/NAME`.
fn package_root(tree: &FileTree, path: &Path) -> Option<PathBuf> {
    let parts: Vec<Component> = path.components().collect();
    let name = |i: usize| parts.get(i).map(|c| c.as_os_str().to_string_lossy());
    // The innermost package wins (node_modules nest).
    for i in (0..parts.len()).rev() {
        let here = name(i).unwrap_or_default();
        let root_of = |len: usize| -> PathBuf { parts[..len].iter().collect() };
        match here.as_ref() {
            "node_modules" if parts.len() > i + 2 => {
                let scoped = name(i + 1).is_some_and(|n| n.starts_with('@'));
                return match scoped {
                    true if parts.len() > i + 3 => Some(root_of(i + 3)),
                    true => None,
                    false => Some(root_of(i + 2)),
                };
            }
            "site-packages" | "dist-packages" if parts.len() > i + 2 => {
                // A package directory (a lone module file is its own package, already kept).
                let top = name(i + 1)?;
                if top.ends_with(".dist-info") || top.ends_with(".egg-info") || top == "__pycache__"
                {
                    return None;
                }
                return Some(root_of(i + 2));
            }
            "gems" if parts.len() > i + 2 => {
                // rubygems' `gems/NAME-VERSION/...` (bundler's vendor/bundle too).
                return Some(root_of(i + 2));
            }
            "vendor" if parts.len() > i + 3 => {
                let dir = root_of(i + 1);
                if tree.get(&dir.join("composer")).is_some() {
                    return Some(root_of(i + 3));
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `dir` holds a language package manager's packages: `node_modules`, pip's
/// `site-packages`/`dist-packages`, composer's or bundler's `vendor`.
fn is_package_tree(tree: &FileTree, dir: &Path) -> bool {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("node_modules" | "site-packages" | "dist-packages") => true,
        Some("vendor") => ["composer", "bundle"]
            .iter()
            .any(|inside| tree.get(&dir.join(inside)).is_some()),
        _ => false,
    }
}

/// The files, symlinks and directories under `dir` that no OS package owns (VCS directories
/// and language package trees left out: see [`is_package_tree`]), with their bytes.
fn unowned_under(
    tree: &FileTree,
    dir: &Path,
    owned: Option<&HashSet<PathBuf>>,
) -> (Vec<PathBuf>, u64, u64) {
    let mut paths = Vec::new();
    let (mut bytes, mut files) = (0, 0);
    let mut skipped: Option<PathBuf> = None;
    for (path, entry) in tree.entries.range(dir.to_path_buf()..) {
        if !path.starts_with(dir) {
            break;
        }
        if skipped.as_ref().is_some_and(|s| path.starts_with(s)) {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy());
        let vcs = name
            .as_ref()
            .is_some_and(|n| VCS_DIRS.contains(&n.as_ref()));
        // A language package manager's tree: its packages are kept one by one, when used.
        let packages = path != dir && is_package_tree(tree, path);
        if entry.kind == Kind::Dir && (vcs || packages) {
            skipped = Some(path.clone());
            continue;
        }
        if owned.is_some_and(|o| o.contains(path)) {
            continue;
        }
        if entry.kind == Kind::File {
            bytes += entry.size;
            files += 1;
        }
        paths.push(path.clone());
    }
    (paths, bytes, files)
}

/// Keeps the app's trees and its language packages whole, within `budget` bytes; `owned` are
/// the paths the image's OS packages own (`None`: the image has no database slim reads, and
/// nothing under an app directory counts as the OS's). A native file kept so (a program, a
/// shared object, a Node addon) gets its libraries through `keep_closure`. Returns the trees
/// looked at.
pub(super) fn keep_app_owned(
    tree: &FileTree,
    set: &mut KeepSet,
    (dirs, owned, budget): (&AppDirs, Option<&HashSet<PathBuf>>, u64),
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) -> AppOwned {
    let mut report = AppOwned {
        budget_bytes: budget,
        ..Default::default()
    };
    let mut left = budget;
    let mut candidates: BTreeMap<PathBuf, TreeKind> = app_dirs(tree, dirs)
        .into_iter()
        .map(|d| (d, TreeKind::App))
        .collect();
    let packages: BTreeSet<PathBuf> = set
        .paths
        .keys()
        .filter_map(|p| package_root(tree, p))
        .filter(|root| tree.get(root).is_some_and(|e| e.kind == Kind::Dir))
        .collect();
    candidates.extend(packages.into_iter().map(|p| (p, TreeKind::Package)));
    for (dir, kind) in candidates {
        let (paths, bytes, files) = unowned_under(tree, &dir, owned);
        if paths.is_empty() {
            continue;
        }
        let fits = bytes <= left;
        report.trees.push(AppTree {
            path: format!("/{}", dir.display()),
            kind,
            bytes,
            files,
            kept: fits,
        });
        if !fits {
            continue;
        }
        left -= bytes;
        let root = Path::new("/").join(&dir);
        let why = match kind {
            TreeKind::App => Why::InAppTree { root },
            TreeKind::Package => Why::InPackage { root },
        };
        for path in paths {
            let native = tree.get(&path).is_some_and(|e| {
                let name = path.to_string_lossy();
                e.kind == Kind::File
                    && (e.mode & 0o111 != 0 || name.ends_with(".so") || name.contains(".so."))
            }) || path.extension().is_some_and(|x| x == "node");
            set.keep(path.clone(), Reason::AppOwned, || why.clone());
            if native {
                keep_closure(set, &path);
            }
        }
        // The way to the tree (its parents), and symlinks in it that lead out of it.
        set.keep_resolved(tree, &Path::new("/").join(&dir), Reason::AppOwned, &why);
    }
    report
}

/// `/app/` -> `app`.
fn tree_path(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tree::Entry;

    fn image(files: &[(&str, u64)]) -> FileTree {
        let mut tree = FileTree::default();
        for (path, size) in files {
            let path = PathBuf::from(path);
            for parent in path.ancestors().skip(1) {
                if !parent.as_os_str().is_empty() {
                    tree.entries
                        .insert(parent.to_path_buf(), Entry::bare(Kind::Dir, None));
                }
            }
            let mut entry = Entry::bare(Kind::File, None);
            entry.mode = 0o644;
            entry.size = *size;
            tree.entries.insert(path, entry);
        }
        tree
    }

    fn dirs(workdir: &str, command: &[&str]) -> AppDirs {
        AppDirs {
            workdir: Some(workdir.into()),
            command: command.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn no_closure() -> impl FnMut(&mut KeepSet, &Path) {
        |_: &mut KeepSet, _: &Path| {}
    }

    #[test]
    fn the_working_and_script_directories_are_the_apps_but_system_ones_are_not() {
        let tree = image(&[
            ("app/server.py", 10),
            ("srv/www/run.sh", 10),
            ("usr/bin/python3", 10),
            ("usr/local/bin/entry.sh", 10),
        ]);
        let found = |workdir, command: &[&str]| app_dirs(&tree, &dirs(workdir, command));
        assert_eq!(
            found("/app", &["python3", "server.py", "--port=80"]),
            [PathBuf::from("app")].into()
        );
        assert_eq!(
            found("/", &["/usr/bin/python3", "/srv/www/run.sh"]),
            [PathBuf::from("srv/www")].into()
        );
        // /usr/local/bin and / are system directories: the script alone is the app.
        assert!(found("/", &["/usr/local/bin/entry.sh"]).is_empty());
        // A tree inside another is part of it.
        assert_eq!(
            found("/srv", &["/srv/www/run.sh"]),
            [PathBuf::from("srv")].into()
        );
    }

    #[test]
    fn the_app_tree_is_kept_whole_except_what_packages_own_and_vcs_dirs() {
        let tree = image(&[
            ("app/server.py", 100),
            ("app/templates/index.html", 50),
            ("app/.git/objects/pack", 10_000),
            ("app/dpkg-owned.conf", 5),
        ]);
        let owned: HashSet<PathBuf> = [PathBuf::from("app/dpkg-owned.conf")].into();
        let mut set = KeepSet::default();
        let report = keep_app_owned(
            &tree,
            &mut set,
            (
                &dirs("/app", &["python3", "server.py"]),
                Some(&owned),
                1 << 20,
            ),
            &mut no_closure(),
        );
        assert!(set
            .paths
            .contains_key(Path::new("app/templates/index.html")));
        assert_eq!(
            set.paths[Path::new("app/templates/index.html")].reason,
            Reason::AppOwned
        );
        assert!(!set.paths.contains_key(Path::new("app/dpkg-owned.conf")));
        assert!(!set.paths.contains_key(Path::new("app/.git/objects/pack")));
        assert_eq!(
            report.trees,
            [AppTree {
                path: "/app".into(),
                kind: TreeKind::App,
                bytes: 150,
                files: 2,
                kept: true
            }]
        );
    }

    #[test]
    fn a_used_language_package_is_kept_whole_and_a_tree_past_the_budget_is_not() {
        let tree = image(&[
            ("srv/node_modules/mime/index.js", 10),
            ("srv/node_modules/mime/types/standard.js", 30),
            ("srv/node_modules/@scope/util/lib/a.js", 10),
            ("srv/node_modules/@scope/util/lib/b.js", 10),
            ("srv/node_modules/unused/index.js", 10),
            ("usr/lib/python3/site-packages/requests/__init__.py", 10),
            ("usr/lib/python3/site-packages/requests/adapters.py", 10_000),
            ("var/www/vendor/composer/autoload_real.php", 10),
            ("var/www/vendor/monolog/monolog/src/Logger.php", 10),
            ("var/www/vendor/monolog/monolog/src/Handler.php", 10),
        ]);
        let mut set = KeepSet::default();
        for used in [
            "srv/node_modules/mime/index.js",
            "srv/node_modules/@scope/util/lib/a.js",
            "usr/lib/python3/site-packages/requests/__init__.py",
            "var/www/vendor/monolog/monolog/src/Logger.php",
        ] {
            set.keep(PathBuf::from(used), Reason::Opened, || Why::Touched {
                uses: vec![crate::recording::Use::Read],
                count: 1,
            });
        }
        let report = keep_app_owned(
            &tree,
            &mut set,
            (&dirs("/", &[]), None, 1000),
            &mut no_closure(),
        );
        for kept in [
            "srv/node_modules/mime/types/standard.js",
            "srv/node_modules/@scope/util/lib/b.js",
            "var/www/vendor/monolog/monolog/src/Handler.php",
        ] {
            assert_eq!(
                set.paths[Path::new(kept)].reason,
                Reason::AppOwned,
                "{kept}"
            );
        }
        assert!(!set
            .paths
            .contains_key(Path::new("srv/node_modules/unused/index.js")));
        // 10 KB of requests is past the 1000-byte budget: only what was used stays.
        assert!(!set.paths.contains_key(Path::new(
            "usr/lib/python3/site-packages/requests/adapters.py"
        )));
        let over: Vec<&str> = report.over_budget().map(|t| t.path.as_str()).collect();
        assert_eq!(over, ["/usr/lib/python3/site-packages/requests"]);
    }

    #[test]
    fn an_app_trees_packages_are_kept_one_by_one_not_with_the_tree() {
        let tree = image(&[
            ("srv/server.js", 100),
            ("srv/views/index.html", 50),
            ("srv/node_modules/mime/index.js", 10),
            ("srv/node_modules/mime/types.js", 30),
            ("srv/node_modules/big/huge.js", 100_000),
        ]);
        let mut set = KeepSet::default();
        for used in ["srv/server.js", "srv/node_modules/mime/index.js"] {
            set.keep(PathBuf::from(used), Reason::Opened, || Why::Rule("test"));
        }
        let report = keep_app_owned(
            &tree,
            &mut set,
            (&dirs("/srv", &["node", "server.js"]), None, 1000),
            &mut no_closure(),
        );
        assert!(set.paths.contains_key(Path::new("srv/views/index.html")));
        assert!(set
            .paths
            .contains_key(Path::new("srv/node_modules/mime/types.js")));
        // An unused package is not the app's tree: its 100 KB neither kept nor counted.
        assert!(!set
            .paths
            .contains_key(Path::new("srv/node_modules/big/huge.js")));
        assert!(report.over_budget().next().is_none(), "{report:?}");
        assert_eq!(report.trees[0].bytes, 150, "{report:?}");
    }
}
