//! Node's closure: modules named by `require`, `import` and `export ... from` with literal
//! names (see [`super::node_imports`]), resolved with Node's own algorithm in the image's tree.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{node_imports, SOURCE_LIMIT};
use crate::{
    image::tree::{FileTree, Kind},
    minify::{
        resolve::{resolve, Resolution},
        Import, KeepSet, Reason, Why,
    },
};

/// Node's built-in modules (`require('fs')`): inside the node binary, never files.
const BUILTINS: &[&str] = &[
    "assert",
    "assert/strict",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "dns/promises",
    "domain",
    "events",
    "fs",
    "fs/promises",
    "http",
    "http2",
    "https",
    "inspector",
    "inspector/promises",
    "module",
    "net",
    "os",
    "path",
    "path/posix",
    "path/win32",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "readline/promises",
    "repl",
    "stream",
    "stream/consumers",
    "stream/promises",
    "stream/web",
    "string_decoder",
    "sys",
    "timers",
    "timers/promises",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "util/types",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// The folders Node searches after the `node_modules` walk and `NODE_PATH`, in order:
/// `$HOME/.node_modules` and `$HOME/.node_libraries` (root's); Debian's, which its node is
/// built to search (the architecture's, then `/usr/share/nodejs`; `/usr/lib/nodejs` in older
/// releases); `$PREFIX/lib/node`; last npm's global folders, which Node searches only when
/// `NODE_PATH` names them (as a `docker run -e` may, unseen in the image's config).
const GLOBAL_FOLDERS: &[&str] = &[
    "root/.node_modules",
    "root/.node_libraries",
    "usr/lib/x86_64-linux-gnu/nodejs",
    "usr/lib/aarch64-linux-gnu/nodejs",
    "usr/lib/arm-linux-gnueabihf/nodejs",
    "usr/lib/i386-linux-gnu/nodejs",
    "usr/lib/powerpc64le-linux-gnu/nodejs",
    "usr/lib/s390x-linux-gnu/nodejs",
    "usr/lib/riscv64-linux-gnu/nodejs",
    "usr/share/nodejs",
    "usr/lib/nodejs",
    "usr/local/lib/node",
    "usr/lib/node",
    "usr/local/lib/node_modules",
    "usr/lib/node_modules",
];

/// The `exports` conditions Node matches for `require` and `import` (every target of those is
/// kept: which one a run takes depends on how the module is loaded).
const CONDITIONS: &[&str] = &["node", "require", "import", "node-addons", "default"];

/// Node's static import closure: every module a kept JavaScript file (`.js`, `.cjs`, `.mjs`, or
/// a `#!` script run by node) names literally (see [`node_imports`]) is kept where Node would
/// find it: relative to the file, else in the `node_modules` folders above it, then the image's
/// `NODE_PATH` (its config's environment) and global folders, through `package.json` `exports`
/// or `main` (the `package.json` files consulted are kept too, and the one that scopes each kept
/// file, which tells Node whether it is an ES module); a native addon (`.node`) with its ELF
/// dependencies. Then the same for what that added. Built-in modules (`fs`, `node:fs`) are
/// inside the node binary: skipped. There is no JavaScript standard library on disk, so
/// requires inside functions are followed everywhere.
pub(super) fn keep_node_requires(
    tree: &FileTree,
    set: &mut KeepSet,
    env: &[String],
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let mut work: Vec<PathBuf> = set
        .paths
        .keys()
        .filter(|p| is_source(tree, p))
        .cloned()
        .collect();
    if work.is_empty() {
        return;
    }
    let node_path = env
        .iter()
        .filter_map(|v| v.strip_prefix("NODE_PATH="))
        .flat_map(|v| v.split(':'))
        .filter_map(|dir| dir.strip_prefix('/'))
        .filter_map(|dir| join_inside(Path::new(""), dir));
    let mut globals: Vec<PathBuf> = Vec::new();
    for dir in node_path.chain(GLOBAL_FOLDERS.iter().map(PathBuf::from)) {
        if tree.entries.contains_key(&dir) && !globals.contains(&dir) {
            globals.push(dir);
        }
    }
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = work.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        let Some(bytes) = tree.read(&file, SOURCE_LIMIT) else {
            continue;
        };
        let (imports, dynamic) = node_imports::imports(&String::from_utf8_lossy(&bytes));
        for line in dynamic {
            set.dynamic_imports.push(format!(
                "/{}:{line} require of a computed name",
                file.display()
            ));
        }
        let why = Why::imported(Import::Imported, &file);
        let mut resolver = Resolver {
            tree,
            globals: &globals,
            found: Vec::new(),
        };
        for import in &imports {
            resolver.require(&file, &import.specifier);
        }
        for resolution in resolver.found {
            let Some(target) = resolution.target else {
                continue;
            };
            for link in resolution.links {
                set.keep(link, Reason::Symlink, || {
                    Why::on_the_way_to_tree_path(&target)
                });
            }
            if set.paths.contains_key(&target) {
                continue;
            }
            set.keep(target.clone(), Reason::StaticImport, || why.clone());
            if target.extension().is_some_and(|e| e == "node") {
                keep_closure(set, &target);
            } else if is_source(tree, &target) {
                keep_package_scope(tree, set, &target);
                work.push(target);
            }
        }
    }
}

/// Whether `path` is a JavaScript file: `.js`, `.cjs`, `.mjs`, or a file without an extension
/// whose `#!` line runs node.
fn is_source(tree: &FileTree, path: &Path) -> bool {
    match path.extension() {
        Some(e) => e == "js" || e == "cjs" || e == "mjs",
        None => {
            let file = tree.get(path).is_some_and(|e| e.kind == Kind::File);
            file && tree.read(path, 128).is_some_and(|head| {
                let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                line.starts_with(b"#!") && line.windows(4).any(|w| w == b"node")
            })
        }
    }
}

/// Keeps the `package.json` Node reads to know whether `file` is an ES module: the nearest one
/// above it, not past a `node_modules` folder.
fn keep_package_scope(tree: &FileTree, set: &mut KeepSet, file: &Path) {
    for dir in file.ancestors().skip(1) {
        if dir.file_name().is_some_and(|n| n == "node_modules") {
            return;
        }
        let manifest = dir.join("package.json");
        if tree.get(&manifest).is_some_and(|e| e.kind == Kind::File) {
            set.keep(manifest, Reason::StaticImport, || Why::PackageScopeOf {
                file: Path::new("/").join(file),
            });
            return;
        }
    }
}

/// One module name's resolution: what it leads to, with the `package.json` files read on the
/// way, in `found`.
struct Resolver<'a> {
    tree: &'a FileTree,
    globals: &'a [PathBuf],
    found: Vec<Resolution>,
}

impl Resolver<'_> {
    /// Resolves `specifier` as `require` in `from` would (a tree path, the file's real one).
    fn require(&mut self, from: &Path, specifier: &str) {
        if specifier.starts_with("node:") || BUILTINS.contains(&specifier) {
            return;
        }
        let dir = from.parent().unwrap_or(Path::new(""));
        let relative = specifier == "."
            || specifier == ".."
            || specifier.starts_with("./")
            || specifier.starts_with("../");
        if relative || specifier.starts_with('/') {
            let base = if relative { dir } else { Path::new("") };
            if let Some(target) = join_inside(base, specifier) {
                let _ = self.file(&target) || self.directory(&target);
            }
            return;
        }
        // `#name` (a package's own `imports` map) and URLs are not followed.
        let Some((package, subpath)) = split_package(specifier) else {
            return;
        };
        let walk = dir
            .ancestors()
            .filter(|d| d.file_name().is_none_or(|n| n != "node_modules"))
            .map(|d| d.join("node_modules"));
        let folders: Vec<PathBuf> = walk.chain(self.globals.iter().cloned()).collect();
        for folder in folders {
            if self.package(&folder, package, subpath) {
                return;
            }
        }
    }

    /// Loads `package` (and `subpath` in it) from the folder `modules`; false if it is not there.
    fn package(&mut self, modules: &Path, package: &str, subpath: &str) -> bool {
        let root = modules.join(package);
        if subpath.is_empty() && self.file(&root) {
            return true;
        }
        let Some(root_dir) = self.entry(&root, Kind::Dir).and_then(|r| r.target) else {
            return false;
        };
        if let Some(exports) = self.manifest(&root).and_then(|m| m.get("exports").cloned()) {
            // Only what `exports` lists can be loaded: Node stops here either way.
            let key = if subpath.is_empty() {
                ".".to_owned()
            } else {
                format!("./{subpath}")
            };
            for target in export_targets(&exports, &key) {
                let Some(relative) = target.strip_prefix("./") else {
                    continue;
                };
                if let Some(path) = join_inside(&root_dir, relative)
                    .filter(|p| p.starts_with(&root_dir) && p != &root_dir)
                {
                    if let Some(found) = self.entry(&path, Kind::File) {
                        self.found.push(found);
                    }
                }
            }
            return true;
        }
        let Some(target) = join_inside(&root, subpath) else {
            return true;
        };
        let _ = self.file(&target) || self.directory(&target);
        true
    }

    /// Node's LOAD_AS_FILE: `path` itself, or with an extension Node adds.
    fn file(&mut self, path: &Path) -> bool {
        let name = path.as_os_str().to_string_lossy();
        for suffix in ["", ".js", ".json", ".node", ".cjs", ".mjs"] {
            if let Some(found) = self.entry(Path::new(&format!("{name}{suffix}")), Kind::File) {
                self.found.push(found);
                return true;
            }
        }
        false
    }

    /// Node's LOAD_INDEX.
    fn index(&mut self, dir: &Path) -> bool {
        ["index.js", "index.json", "index.node"]
            .iter()
            .any(|index| match self.entry(&dir.join(index), Kind::File) {
                Some(found) => {
                    self.found.push(found);
                    true
                }
                None => false,
            })
    }

    /// Node's LOAD_AS_DIRECTORY: `package.json` `main`, else the index.
    fn directory(&mut self, dir: &Path) -> bool {
        let main = self
            .manifest(dir)
            .and_then(|m| m.get("main").and_then(Value::as_str).map(str::to_owned));
        if let Some(main) = main.and_then(|m| join_inside(dir, &m)) {
            if self.file(&main) || self.index(&main) {
                return true;
            }
        }
        self.index(dir)
    }

    /// The parsed `dir/package.json`, kept as consulted; `None` if absent or unreadable.
    fn manifest(&mut self, dir: &Path) -> Option<Value> {
        let found = self.entry(&dir.join("package.json"), Kind::File)?;
        let target = found.target.clone()?;
        self.found.push(found);
        let bytes = self.tree.read(&target, SOURCE_LIMIT)?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Where `path` leads in the tree if it is an entry of `kind` there (a hard link counts as
    /// a file).
    fn entry(&self, path: &Path, kind: Kind) -> Option<Resolution> {
        let resolution = resolve(self.tree, &Path::new("/").join(path));
        let entry = self.tree.get(resolution.target.as_ref()?)?;
        let matches = entry.kind == kind || kind == Kind::File && entry.kind == Kind::Hardlink;
        matches.then_some(resolution)
    }
}

/// `package` and the subpath after it (`@scope/name/sub/path` -> `@scope/name`, `sub/path`);
/// `None` for a name Node would not look up in `node_modules`.
fn split_package(specifier: &str) -> Option<(&str, &str)> {
    let parts = if specifier.starts_with('@') { 2 } else { 1 };
    let end = specifier
        .match_indices('/')
        .nth(parts - 1)
        .map_or(specifier.len(), |(i, _)| i);
    let (package, rest) = specifier.split_at(end);
    let subpath = rest.strip_prefix('/').unwrap_or(rest);
    let bad = |p: &str| p.is_empty() || p == "." || p == ".." || p.contains(['\\', ':', '#']);
    if package.split('/').count() != parts || package.split('/').any(bad) {
        return None;
    }
    if !subpath.is_empty() && subpath.split('/').any(|p| p == "..") {
        return None;
    }
    Some((package, subpath))
}

/// `relative` (`/`-separated) joined to `base` with `.` and `..` applied; `None` if it climbs
/// above the root.
fn join_inside(base: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if !path.pop() {
                    return None;
                }
            }
            part => path.push(part),
        }
    }
    Some(path)
}

/// The targets `exports` maps the subpath `key` (`.`, `./sub`) to, for every condition Node
/// matches; empty when it has no entry for it.
fn export_targets(exports: &Value, key: &str) -> Vec<String> {
    let subpaths = match exports {
        Value::Object(map) if map.keys().any(|k| k.starts_with('.')) => map,
        // A string, an array or a conditions object: the package's "." alone.
        other => {
            let mut out = Vec::new();
            if key == "." {
                targets(other, &mut out);
            }
            return out;
        }
    };
    let mut out = Vec::new();
    if let Some(value) = subpaths.get(key) {
        targets(value, &mut out);
        return out;
    }
    // The pattern (`./lib/*.js`) or folder (`./lib/`) entry with the longest prefix.
    let mut best: Option<(usize, &Value, String, bool)> = None;
    for (pattern, value) in subpaths {
        let matched = match pattern.split_once('*') {
            Some((prefix, suffix)) => key
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .filter(|star| !star.is_empty())
                .map(|star| (prefix.len(), star.to_owned(), true)),
            None if pattern.ends_with('/') => key
                .strip_prefix(pattern.as_str())
                .map(|rest| (pattern.len(), rest.to_owned(), false)),
            None => None,
        };
        if let Some((length, star, is_pattern)) = matched {
            if best.as_ref().is_none_or(|b| length > b.0) {
                best = Some((length, value, star, is_pattern));
            }
        }
    }
    if let Some((_, value, star, is_pattern)) = best {
        let mut found = Vec::new();
        targets(value, &mut found);
        out.extend(found.into_iter().map(|target| match is_pattern {
            true => target.replace('*', &star),
            false => format!("{target}{star}"),
        }));
    }
    out
}

/// The target strings of an `exports` value, through arrays and the conditions Node matches.
fn targets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(target) => out.push(target.clone()),
        Value::Array(values) => values.iter().for_each(|v| targets(v, out)),
        Value::Object(conditions) => {
            for (condition, value) in conditions {
                if CONDITIONS.contains(&condition.as_str()) {
                    targets(value, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn package_names_and_subpaths() {
        assert_eq!(split_package("mime"), Some(("mime", "")));
        assert_eq!(split_package("mime/lite"), Some(("mime", "lite")));
        assert_eq!(split_package("@scope/pkg"), Some(("@scope/pkg", "")));
        assert_eq!(split_package("@scope/pkg/a/b"), Some(("@scope/pkg", "a/b")));
        for bad in [
            "@scope",
            "#internal",
            "pkg/../up",
            "..",
            "c:\\x",
            "https://x/y",
        ] {
            assert_eq!(split_package(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_never_climb_above_the_root() {
        assert_eq!(
            join_inside(Path::new("app/lib"), "../x/./y"),
            Some(PathBuf::from("app/x/y"))
        );
        assert_eq!(join_inside(Path::new("app"), "../../etc/passwd"), None);
    }

    #[test]
    fn exports_are_matched_like_node() {
        let exports = json!({
            ".": {"import": {"types": "./a.d.ts", "default": "./a.mjs"}, "require": "./a.cjs",
                  "browser": "./browser.js"},
            "./sub": "./lib/sub.js",
            "./features/*.js": ["./src/features/*.js"],
            "./features/private/*": null,
            "./legacy/": "./old/",
        });
        let mut main = export_targets(&exports, ".");
        main.sort();
        assert_eq!(main, ["./a.cjs", "./a.mjs"]);
        assert_eq!(export_targets(&exports, "./sub"), ["./lib/sub.js"]);
        assert_eq!(
            export_targets(&exports, "./features/x.js"),
            ["./src/features/x.js"]
        );
        assert!(export_targets(&exports, "./features/private/x").is_empty());
        assert_eq!(export_targets(&exports, "./legacy/y.js"), ["./old/y.js"]);
        assert!(export_targets(&exports, "./missing").is_empty());
        assert_eq!(export_targets(&json!("./index.js"), "."), ["./index.js"]);
        assert!(export_targets(&json!("./index.js"), "./sub").is_empty());
        // Every matched condition's target is kept, whichever a run takes.
        let mut conditional = export_targets(&json!({"node": "./n.js", "default": "./d.js"}), ".");
        conditional.sort();
        assert_eq!(conditional, ["./d.js", "./n.js"]);
    }
}
