//! Choosing what the slim image keeps, and why: every path the app touched that exists in the
//! image (resolved in the image's own tree, symlinks kept), executed files with their ELF
//! interpreter and library closure, directories the app opened, the working directory and
//! volume mount points, a small always-keep set for production needs the probes may not reach,
//! and the user's includes and excludes. Pure: works on a [`FileTree`] and a [`Recording`].

pub mod app_owned;
pub mod by_dir;
mod closure;
mod elf_deps;
pub mod glob;
pub mod resolve;
mod system_dirs;
mod why;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    image::tree::{FileTree, Kind},
    recording::{Recording, Use},
};

use resolve::resolve;
pub use why::{Import, Why};

/// Why a path is in the slim image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Executed,
    Interpreter,
    Opened,
    Library,
    Directory,
    LookedUp,
    Symlink,
    WorkingDir,
    Volume,
    State,
    Users,
    NameResolution,
    Certificates,
    TempDirs,
    IncludePath,
    PreservePath,
    IncludeBin,
    IncludeExe,
    IncludeShell,
    IncludeCertAll,
    /// The pruned package database and the OS release files scanners read.
    PackageDb,
    /// Named literally by an import in a kept source file (the static import closure).
    StaticImport,
    /// In a tree the app owns (its working or program directory, a language package of which
    /// a file is used) and no OS package does.
    AppOwned,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Interpreter => "interpreter",
            Self::Opened => "opened",
            Self::Library => "library",
            Self::Directory => "directory",
            Self::LookedUp => "looked-up",
            Self::Symlink => "symlink",
            Self::WorkingDir => "working-dir",
            Self::Volume => "volume",
            Self::State => "state",
            Self::Users => "users",
            Self::NameResolution => "name-resolution",
            Self::Certificates => "certificates",
            Self::TempDirs => "temp-dirs",
            Self::IncludePath => "include-path",
            Self::PreservePath => "preserve-path",
            Self::IncludeBin => "include-bin",
            Self::IncludeExe => "include-exe",
            Self::IncludeShell => "include-shell",
            Self::IncludeCertAll => "include-cert-all",
            Self::PackageDb => "package-db",
            Self::StaticImport => "static-import",
            Self::AppOwned => "app-owned",
        }
    }
}

/// The always-keep groups, each switchable off with `--skip-keep NAME` (the command line's
/// names are [`KeepGroup::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeepGroup {
    /// /etc/passwd and /etc/group.
    Users,
    /// Name resolution: its configuration files and glibc's NSS modules.
    Dns,
    /// The CA bundle.
    Certs,
    /// Scratch directories (/tmp, /var/tmp, /run).
    Tmp,
    /// Trees the app writes state in, kept whole.
    State,
    /// The app's own trees and language packages, kept whole.
    App,
}

impl KeepGroup {
    pub const ALL: &'static [Self] = &[
        Self::Users,
        Self::Dns,
        Self::Certs,
        Self::Tmp,
        Self::State,
        Self::App,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Dns => "dns",
            Self::Certs => "certs",
            Self::Tmp => "tmp",
            Self::State => "state",
            Self::App => "app",
        }
    }
}

/// User choices that shape the keep set.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Always-keep groups switched off.
    pub skip_groups: BTreeSet<KeepGroup>,
    pub include_paths: Vec<String>,
    pub preserve_paths: Vec<String>,
    pub include_bins: Vec<String>,
    pub include_exes: Vec<String>,
    pub include_shell: bool,
    pub include_cert_all: bool,
    pub exclude_patterns: Vec<String>,
    /// The image's (or overridden) working directory.
    pub workdir: Option<String>,
    /// Volume mount points (image `Volumes` and `--volume`/`--mount` destinations).
    pub volumes: Vec<String>,
    /// The image's declared `Volumes`: their content is kept whole (the engine copies it into
    /// a new volume when the container starts).
    pub image_volumes: Vec<String>,
    /// The container's environment (PATH, LD_LIBRARY_PATH).
    pub env: Vec<String>,
    /// Follow the literal imports of kept source files (`--static-imports`, on by default).
    pub static_imports: bool,
    /// The container's command line (entrypoint then cmd): where the app's own trees are.
    pub command: Vec<String>,
    /// Bytes the app-owned trees may add (`--app-budget`).
    pub app_budget: u64,
}

/// One kept path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub reason: Reason,
    /// More about the reason (`needed by /usr/bin/python3.11`, `on the way to ...`), with its
    /// data.
    pub why: Why,
}

/// The selection and what it leaves out.
#[derive(Clone, Debug, Default)]
pub struct KeepSet {
    /// Tree paths (relative) -> why.
    pub paths: BTreeMap<PathBuf, Kept>,
    /// Paths the app used that the image does not have (created at run time, or missing).
    pub not_in_image: BTreeSet<PathBuf>,
    pub excluded: BTreeSet<PathBuf>,
    /// Trees the app keeps state in, kept whole.
    pub state: Vec<StateRoot>,
    /// Imports of a computed name the static import closure could not follow:
    /// `/path.py:LINE expression`.
    pub dynamic_imports: Vec<String>,
    /// The trees the app-owned rule looked at ([`app_owned`]).
    pub app_owned: app_owned::AppOwned,
    /// The runtime whose closure kept each path kept for a static import (`python`, `node`).
    pub imported_for: BTreeMap<PathBuf, &'static str>,
}

/// A directory tree the app keeps state in (a database's data directory, a spool, a cache it
/// updates): it wrote files that were already in the image there. Keeping part of it corrupts
/// it, so it is kept whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateRoot {
    /// Absolute path in the image.
    pub root: String,
    /// Entries and bytes of regular files kept under it.
    pub files: u64,
    pub bytes: u64,
    /// Files of the image the app wrote there, and files it created.
    pub written: u64,
    pub created: u64,
    /// Programs that wrote them.
    pub writers: Vec<String>,
}

impl KeepSet {
    fn keep(&mut self, path: PathBuf, reason: Reason, why: impl FnOnce() -> Why) {
        if path.as_os_str().is_empty() {
            return;
        }
        self.paths
            .entry(path)
            .or_insert_with(|| Kept { reason, why: why() });
    }

    /// Keeps the entry `path` leads to (and the symlinks on the way); false if it does not exist.
    fn keep_resolved(&mut self, tree: &FileTree, path: &Path, reason: Reason, why: &Why) -> bool {
        let resolution = resolve(tree, path);
        for link in &resolution.links {
            self.keep(link.clone(), Reason::Symlink, || Why::OnTheWayTo {
                target: path.to_path_buf(),
            });
        }
        match resolution.target {
            Some(target) => {
                self.keep(target, reason, || why.clone());
                true
            }
            None => false,
        }
    }

    /// Keeps a path and, when it is a directory, everything under it.
    fn keep_tree(&mut self, tree: &FileTree, path: &Path, reason: Reason, why: &Why) -> bool {
        let resolution = resolve(tree, path);
        for link in &resolution.links {
            self.keep(link.clone(), Reason::Symlink, || Why::OnTheWayTo {
                target: path.to_path_buf(),
            });
        }
        let Some(target) = resolution.target else {
            return false;
        };
        let under: Vec<PathBuf> = tree
            .entries
            .range::<Path, _>((
                std::ops::Bound::Included(target.as_path()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(p, _)| p.starts_with(&target))
            .map(|(p, _)| p.clone())
            .collect();
        for p in under {
            self.keep(p, reason, || why.clone());
        }
        true
    }
}

/// Runtime filesystems: whatever the app touched there is not the image's.
fn runtime_path(path: &Path) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| path.starts_with(p))
        || [
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/.dockerenv",
        ]
        .iter()
        .any(|p| path == Path::new(p))
}

fn reason_for(uses: &BTreeSet<Use>) -> Reason {
    if uses.contains(&Use::Exec) {
        Reason::Executed
    } else if uses.contains(&Use::Interpreter) {
        Reason::Interpreter
    } else if uses.contains(&Use::Read) || uses.contains(&Use::Write) {
        Reason::Opened
    } else if uses.contains(&Use::Directory)
        || uses.contains(&Use::Chdir)
        || uses.contains(&Use::Mkdir)
    {
        Reason::Directory
    } else {
        Reason::LookedUp
    }
}

/// Computes what to keep.
pub fn select(tree: &FileTree, recording: &Recording, options: &Options) -> KeepSet {
    let mut set = KeepSet::default();
    let executables = keep_touched(tree, recording, &mut set);

    let loader = elf_deps::Loader::new(tree, &options.env);
    let mut keep_closure = |set: &mut KeepSet, binary: &Path| keep_libraries(&loader, set, binary);
    for (binary, _) in &executables {
        keep_closure(&mut set, binary);
    }
    if options.static_imports {
        closure::keep_static_imports(tree, &mut set, &options.env, &mut keep_closure);
    }
    if !options.skip_groups.contains(&KeepGroup::App) {
        keep_app_trees(tree, options, &mut set, &mut keep_closure);
    }

    keep_mount_points(tree, options, &mut set);
    if !options.skip_groups.contains(&KeepGroup::State) {
        keep_state(tree, recording, options, &mut set);
    }
    always_keep(tree, options, &mut set, &mut keep_closure);

    keep_include_paths(tree, options, &mut set);
    keep_include_bins(tree, options, &mut set, &mut keep_closure);
    keep_include_exes(tree, options, &mut set, &mut keep_closure);

    exclude(options, &mut set);
    set
}

/// Keeps every path the app touched that the image has (and the directories of those it
/// created); returns the executables and interpreters among them, with the path they ran as.
fn keep_touched(
    tree: &FileTree,
    recording: &Recording,
    set: &mut KeepSet,
) -> Vec<(PathBuf, String)> {
    let mut executables: Vec<(PathBuf, String)> = Vec::new();
    for (path, touched) in &recording.paths {
        if !touched.exists() || runtime_path(path) || path == Path::new("/") {
            continue;
        }
        let uses_set = if touched.found() {
            &touched.ok
        } else {
            &touched.failed
        };
        let reason = reason_for(uses_set);
        let why = Why::Touched {
            uses: uses_set.iter().copied().collect(),
            count: touched.count,
        };
        if !set.keep_resolved(tree, path, reason, &why) {
            set.not_in_image.insert(path.clone());
            if touched.found() {
                // Created at run time (mkdir, O_CREAT, symlink...): its directory must exist.
                for parent in path.ancestors().skip(1) {
                    let why = Why::ParentOfCreated { path: path.clone() };
                    if set.keep_resolved(tree, parent, Reason::Directory, &why) {
                        break;
                    }
                }
            }
            continue;
        }
        if matches!(reason, Reason::Executed | Reason::Interpreter) {
            if let Some(target) = resolve(tree, path).target {
                executables.push((target, path.display().to_string()));
            }
        }
    }
    executables
}

/// Keeps the libraries `binary` needs, as `loader` finds them, and the symlinks to them.
fn keep_libraries(loader: &elf_deps::Loader, set: &mut KeepSet, binary: &Path) {
    for (library, links, needed_by) in loader.closure(binary) {
        for link in links {
            set.keep(link, Reason::Symlink, || Why::OnTheWayToLibraryOf {
                binary: PathBuf::from(&needed_by),
            });
        }
        set.keep(library, Reason::Library, || Why::NeededBy {
            by: PathBuf::from(needed_by),
        });
    }
}

/// Keeps the app's own trees (the app-owned rule), then follows the imports of its code.
fn keep_app_trees(
    tree: &FileTree,
    options: &Options,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    // After the closure, so that the packages it imported from are kept whole too; and
    // the closure again, for the imports of the app's own code kept so.
    let owned = crate::packages::owned_paths(tree);
    let dirs = app_owned::AppDirs {
        workdir: options.workdir.clone(),
        command: options.command.clone(),
    };
    set.app_owned = app_owned::keep_app_owned(
        tree,
        set,
        (&dirs, owned.as_ref(), options.app_budget),
        keep_closure,
    );
    if options.static_imports && set.app_owned.trees.iter().any(|t| t.kept) {
        closure::keep_static_imports(tree, set, &options.env, keep_closure);
        let mut seen = BTreeSet::new();
        set.dynamic_imports.retain(|d| seen.insert(d.clone()));
    }
}

/// Keeps the working directory and the volume mount points; the image's declared volumes
/// whole.
fn keep_mount_points(tree: &FileTree, options: &Options, set: &mut KeepSet) {
    if let Some(workdir) = &options.workdir {
        set.keep_resolved(
            tree,
            Path::new(workdir),
            Reason::WorkingDir,
            &Why::Rule("the container's working directory"),
        );
    }
    for volume in &options.volumes {
        set.keep_resolved(
            tree,
            Path::new(volume),
            Reason::Volume,
            &Why::Rule("a volume mount point"),
        );
    }
    for volume in &options.image_volumes {
        set.keep_tree(
            tree,
            Path::new(volume),
            Reason::Volume,
            &Why::Rule("declared VOLUME: the engine copies its content into a new volume"),
        );
    }
}

/// Keeps the trees of `--include-path` and `--preserve-path`.
fn keep_include_paths(tree: &FileTree, options: &Options, set: &mut KeepSet) {
    for path in &options.include_paths {
        set.keep_tree(
            tree,
            Path::new(path),
            Reason::IncludePath,
            &Why::flag("--include-path"),
        );
    }
    for path in &options.preserve_paths {
        set.keep_tree(
            tree,
            Path::new(path),
            Reason::PreservePath,
            &Why::flag("--preserve-path"),
        );
    }
}

/// Keeps the programs of `--include-bin`, with their libraries and interpreters.
fn keep_include_bins(
    tree: &FileTree,
    options: &Options,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    for bin in &options.include_bins {
        let why = Why::flag("--include-bin");
        if set.keep_resolved(tree, Path::new(bin), Reason::IncludeBin, &why) {
            if let Some(target) = resolve(tree, Path::new(bin)).target {
                keep_closure(set, &target);
                keep_interpreter(tree, &target, set);
            }
        }
    }
}

/// Keeps the programs of `--include-exe` and `--include-shell`, found on the container's PATH,
/// with their libraries and interpreters.
fn keep_include_exes(
    tree: &FileTree,
    options: &Options,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let search_path: Vec<String> = options
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .split(':')
        .map(str::to_owned)
        .collect();
    let mut exes: Vec<(String, Reason, &'static str)> = options
        .include_exes
        .iter()
        .map(|e| (e.clone(), Reason::IncludeExe, "--include-exe"))
        .collect();
    if options.include_shell {
        exes.push(("sh".into(), Reason::IncludeShell, "--include-shell"));
    }
    for (name, reason, flag) in exes {
        let candidates: Vec<PathBuf> = if name.contains('/') {
            vec![PathBuf::from(&name)]
        } else {
            search_path
                .iter()
                .map(|dir| Path::new(dir).join(&name))
                .collect()
        };
        let why = Why::Flag {
            flag,
            value: Some(name),
        };
        for candidate in candidates {
            if set.keep_resolved(tree, &candidate, reason, &why) {
                if let Some(target) = resolve(tree, &candidate).target {
                    keep_closure(set, &target);
                    keep_interpreter(tree, &target, set);
                }
                break;
            }
        }
    }
}

/// Moves the kept paths that match an `--exclude-pattern` to the excluded ones.
fn exclude(options: &Options, set: &mut KeepSet) {
    if !options.exclude_patterns.is_empty() {
        let excluded: Vec<PathBuf> = set
            .paths
            .keys()
            .filter(|p| {
                let shown = format!("/{}", p.display());
                options
                    .exclude_patterns
                    .iter()
                    .any(|g| glob::matches(g, &shown))
            })
            .cloned()
            .collect();
        for path in excluded {
            set.paths.remove(&path);
            set.excluded.insert(path);
        }
    }
}

/// Where written files are scratch, not state.
const SCRATCH_DIRS: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm"];

/// Never a state root, whatever is written below them: the system's directories and the
/// served-content ones.
fn is_system_dir(path: &Path) -> bool {
    system_dirs::is_system_dir(path)
        || system_dirs::SERVED_DIRS.contains(&path.to_string_lossy().as_ref())
}

/// The top directory of `path` below the system directories: its shallowest ancestor that is
/// not a system directory itself. `None` when `path` sits directly in a system directory.
fn state_top(path: &Path) -> Option<PathBuf> {
    let ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors
        .iter()
        .rev()
        .find(|a| !is_system_dir(a))
        .map(|a| a.to_path_buf())
}

/// A tree the recording shows the app keeps state in (see [`StateRoot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTree {
    /// The tree's root (a tree path: no leading `/`).
    pub root: PathBuf,
    /// Files of the image the app wrote there, and how many it created.
    pub written: u64,
    pub created: u64,
    /// Programs that wrote them.
    pub writers: Vec<String>,
}

/// The trees the app keeps state in. Written files are grouped by their top directory below the
/// system directories; a group with at least one file that was already in the image is state,
/// and its root is the deepest directory holding all of the group's written and created files
/// (a database's data directory, not all of /var/lib). Declared volumes are left out: they are
/// kept whole anyway.
pub fn state_trees(
    tree: &FileTree,
    recording: &Recording,
    image_volumes: &[String],
) -> Vec<StateTree> {
    #[derive(Default)]
    struct Group {
        written: Vec<PathBuf>,
        created: Vec<PathBuf>,
        writers: BTreeSet<String>,
    }
    let mut groups: BTreeMap<PathBuf, Group> = BTreeMap::new();
    for (path, touched) in &recording.paths {
        if !touched.ok.contains(&Use::Write)
            || runtime_path(path)
            || SCRATCH_DIRS.iter().any(|d| path.starts_with(d))
            || image_volumes.iter().any(|v| path.starts_with(v))
        {
            continue;
        }
        // Where it is in the image: the file itself, or (created at run time) its directory.
        let (real, existed) = match resolve(tree, path).target {
            Some(target) => {
                let is_file = tree
                    .get(&target)
                    .is_some_and(|e| matches!(e.kind, Kind::File | Kind::Hardlink));
                (target, is_file)
            }
            None => {
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                match resolve(tree, parent).target {
                    Some(dir) => (dir.join(name), false),
                    None => continue,
                }
            }
        };
        let Some(top) = state_top(&real) else {
            continue;
        };
        let group = groups.entry(top).or_default();
        group.writers.extend(touched.writers.iter().cloned());
        if existed {
            group.written.push(real);
        } else {
            group.created.push(real);
        }
    }
    let mut trees = Vec::new();
    for (top, group) in groups {
        if group.written.is_empty() {
            continue; // only new files (logs, sockets): nothing of the image to keep whole
        }
        let mut root = group
            .written
            .iter()
            .chain(&group.created)
            .map(|p| p.parent().unwrap_or(p).to_path_buf())
            .reduce(|a, b| common_ancestor(&a, &b))
            .unwrap_or_else(|| top.clone());
        if !root.starts_with(&top) {
            root = top.clone();
        }
        trees.push(StateTree {
            root,
            written: group.written.len() as u64,
            created: group.created.len() as u64,
            writers: group.writers.into_iter().collect(),
        });
    }
    trees
}

/// Keeps every tree the app keeps state in whole (see [`state_trees`]).
fn keep_state(tree: &FileTree, recording: &Recording, options: &Options, set: &mut KeepSet) {
    for state in state_trees(tree, recording, &options.image_volumes) {
        let root = &state.root;
        let why = Why::StateWrittenBy {
            writers: state.writers.clone(),
        };
        let shown = Path::new("/").join(root);
        // Paths already kept for another reason keep it; the tree is state all the same.
        set.keep_tree(tree, &shown, Reason::State, &why);
        let mut files = 0;
        let mut bytes = 0;
        for (_, entry) in tree
            .entries
            .range::<Path, _>((
                std::ops::Bound::Included(root.as_path()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(p, _)| p.starts_with(root))
        {
            files += 1;
            if entry.kind == Kind::File {
                bytes += entry.size;
            }
        }
        set.state.push(StateRoot {
            root: shown.display().to_string(),
            files,
            bytes,
            written: state.written,
            created: state.created,
            writers: state.writers,
        });
    }
}

/// The deepest directory both paths are in.
fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

fn keep_interpreter(tree: &FileTree, binary: &Path, set: &mut KeepSet) {
    if let Some(head) = tree.read(binary, crate::elf::HEAD_LEN as u64) {
        if let Some(interp) = crate::elf::interpreter(&head) {
            set.keep_resolved(
                tree,
                interp.path(),
                Reason::Interpreter,
                &Why::InterpreterOf {
                    of: Path::new("/").join(binary),
                },
            );
        }
    }
}

/// The always-keep set: what production needs that probes rarely reach. Users of the best
/// existing tool asked for each of these after slimmed images failed in production.
fn always_keep(
    tree: &FileTree,
    options: &Options,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let on = |group: KeepGroup| !options.skip_groups.contains(&group);
    if on(KeepGroup::Users) {
        // getpwnam/getgrnam (user switching, `ls -l`, many servers at start-up) read these.
        for path in ["/etc/passwd", "/etc/group"] {
            set.keep_resolved(
                tree,
                Path::new(path),
                Reason::Users,
                &Why::Rule("user and group database"),
            );
        }
    }
    if on(KeepGroup::Dns) {
        // Name resolution: glibc reads nsswitch.conf and host.conf, then hosts; getservbyname and
        // getprotobyname read services and protocols (a missing /etc/protocols broke images).
        for path in [
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/hosts",
            "/etc/protocols",
            "/etc/services",
            "/etc/gai.conf",
        ] {
            set.keep_resolved(
                tree,
                Path::new(path),
                Reason::NameResolution,
                &Why::Rule("name resolution"),
            );
        }
        // The NSS modules and resolver library glibc loads (dlopen, never seen by a probe that
        // did no lookup) for `files` and `dns` lookups: only when a kept program is dynamically
        // linked against glibc. A static executable (Go with CGO off, a static busybox, Rust
        // musl) resolves names itself, and musl has no NSS.
        let Some(user) = glibc_user(tree, set) else {
            return keep_certs_and_tmp(tree, options, set);
        };
        let why = Why::NssOf { program: user };
        let modules: Vec<PathBuf> = tree
            .entries
            .keys()
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                (name.starts_with("libnss_files.so")
                    || name.starts_with("libnss_dns.so")
                    || name.starts_with("libresolv.so"))
                    && (p.starts_with("lib")
                        || p.starts_with("usr/lib")
                        || p.starts_with("lib64")
                        || p.starts_with("usr/lib64"))
            })
            .cloned()
            .collect();
        for module in modules {
            let shown = Path::new("/").join(&module);
            if set.keep_resolved(tree, &shown, Reason::NameResolution, &why) {
                if let Some(target) = resolve(tree, &shown).target {
                    keep_closure(set, &target);
                }
            }
        }
    }
    keep_certs_and_tmp(tree, options, set);
}

/// A kept program that glibc's dynamic loader runs, as `/usr/bin/python3.11`: one executed, an
/// interpreter, or a binary the user included, whose ELF interpreter (`PT_INTERP`, read from
/// the image) is `ld-linux*.so` or `ld64.so`.
fn glibc_user(tree: &FileTree, set: &KeepSet) -> Option<PathBuf> {
    set.paths
        .iter()
        .filter(|(_, kept)| {
            matches!(
                kept.reason,
                Reason::Executed
                    | Reason::Interpreter
                    | Reason::IncludeBin
                    | Reason::IncludeExe
                    | Reason::IncludeShell
            )
        })
        .find(|(path, _)| loaded_by_glibc(tree, path))
        .map(|(path, _)| Path::new("/").join(path))
}

/// Whether the ELF file at `path` in the image names glibc's dynamic loader as its interpreter.
fn loaded_by_glibc(tree: &FileTree, path: &Path) -> bool {
    let Some(head) = tree.read(path, crate::elf::HEAD_LEN as u64) else {
        return false;
    };
    let Some(crate::elf::Interpreter::Elf(loader)) = crate::elf::interpreter(&head) else {
        return false;
    };
    let name = loader
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (name.starts_with("ld-linux") || name.starts_with("ld64.so")) && !name.contains("musl")
}

/// The CA bundle and scratch directories of the always-keep set.
fn keep_certs_and_tmp(tree: &FileTree, options: &Options, set: &mut KeepSet) {
    let on = |group: KeepGroup| !options.skip_groups.contains(&group);
    if on(KeepGroup::Certs) || options.include_cert_all {
        // TLS clients need the CA bundle; its usual locations across distributions.
        for path in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/ssl/cert.pem",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/ca-bundle.pem",
            "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        ] {
            set.keep_resolved(
                tree,
                Path::new(path),
                Reason::Certificates,
                &Why::Rule("CA bundle"),
            );
        }
    }
    if options.include_cert_all {
        for path in [
            "/etc/ssl/certs",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
            "/etc/pki",
        ] {
            set.keep_tree(
                tree,
                Path::new(path),
                Reason::IncludeCertAll,
                &Why::flag("--include-cert-all"),
            );
        }
    }
    if on(KeepGroup::Tmp) {
        // Scratch directories apps write to at run time, with their modes (1777).
        for path in ["/tmp", "/var/tmp", "/run"] {
            set.keep_resolved(
                tree,
                Path::new(path),
                Reason::TempDirs,
                &Why::Rule("scratch directory"),
            );
        }
    }
}

/// Sizes of what is kept and removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub kept_files: u64,
    pub kept_bytes: u64,
    pub removed_files: u64,
    pub removed_bytes: u64,
    /// Top-level directory -> (files, bytes) removed.
    pub removed_by_dir: BTreeMap<String, (u64, u64)>,
    /// Every directory (up to [`by_dir::DEPTH`] components) -> what of it is kept and removed.
    pub by_dir: BTreeMap<String, by_dir::DirShare>,
    /// Bytes of the regular files the app opened or executed: the least any slim image needs.
    pub opened_bytes: u64,
    /// The same, plus files it only looked up (stat, access, readlink).
    pub touched_bytes: u64,
    /// Kept paths per reason.
    pub kept_by_reason: BTreeMap<Reason, u64>,
    /// Bytes of the kept files per reason.
    pub kept_bytes_by_reason: BTreeMap<Reason, u64>,
    /// Imports the static import closure could not follow (see [`KeepSet::dynamic_imports`]).
    pub dynamic_imports: Vec<String>,
    /// What the static import closure added, per runtime.
    pub static_imports: BTreeMap<String, Added>,
    /// The largest kept files, biggest first: what dominates the slim image.
    pub largest: Vec<LargeFile>,
}

/// One of the largest kept files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LargeFile {
    /// Absolute path in the image.
    pub path: String,
    pub bytes: u64,
    /// Why it is kept.
    pub reason: String,
}

/// How many of the largest kept files a summary lists.
pub const LARGEST_LISTED: usize = 10;

/// Counts what `set` keeps and leaves out of `tree`.
/// Paths and bytes something added to the slim image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Added {
    pub files: u64,
    pub bytes: u64,
}

pub fn summarize(tree: &FileTree, set: &KeepSet) -> Summary {
    let closed = crate::image::writer::close_selection(tree, &set.paths.keys().cloned().collect());
    let mut summary = Summary {
        dynamic_imports: set.dynamic_imports.clone(),
        ..Summary::default()
    };
    for (path, entry) in &tree.entries {
        let size = if matches!(entry.kind, Kind::File) {
            entry.size
        } else {
            0
        };
        by_dir::count(&mut summary.by_dir, path, size, closed.contains(path));
        if closed.contains(path) {
            summary.kept_files += 1;
            summary.kept_bytes += size;
            if size > 0 {
                summary.largest.push(LargeFile {
                    path: format!("/{}", path.display()),
                    bytes: size,
                    reason: set
                        .paths
                        .get(path)
                        .map(|k| k.reason.as_str())
                        .unwrap_or("parent")
                        .to_owned(),
                });
            }
            if let Some(kept) = set.paths.get(path) {
                *summary.kept_bytes_by_reason.entry(kept.reason).or_default() += size;
                if let Some(runtime) = set.imported_for.get(path) {
                    let added = summary
                        .static_imports
                        .entry((*runtime).to_owned())
                        .or_default();
                    added.files += 1;
                    added.bytes += size;
                }
                match kept.reason {
                    Reason::Executed | Reason::Interpreter | Reason::Opened => {
                        summary.opened_bytes += size;
                        summary.touched_bytes += size;
                    }
                    Reason::LookedUp | Reason::Library => summary.touched_bytes += size,
                    _ => {}
                }
            }
        } else {
            summary.removed_files += 1;
            summary.removed_bytes += size;
            let top = path
                .components()
                .next()
                .map(|c| format!("/{}", c.as_os_str().to_string_lossy()))
                .unwrap_or_else(|| "/".into());
            let slot = summary.removed_by_dir.entry(top).or_default();
            slot.0 += 1;
            slot.1 += size;
        }
    }
    summary
        .largest
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    summary.largest.truncate(LARGEST_LISTED);
    for kept in set.paths.values() {
        *summary.kept_by_reason.entry(kept.reason).or_default() += 1;
    }
    summary
}

#[cfg(test)]
mod tests;
