//! Python's closure: modules named by `import`, `from ... import`, `importlib.import_module` and
//! `__import__` with literal names (see [`super::python_imports`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{entries_named, python_imports, SOURCE_LIMIT};
use crate::{
    image::tree::FileTree,
    minify::{Import, KeepSet, Reason, Why},
};

/// Python's static import closure: every module a kept `.py` file names literally (see
/// [`python_imports`]) is kept where Python would find it, with its parent packages'
/// `__init__.py`, its compiled `__pycache__` files and, for an extension module, its ELF
/// dependencies; then the same for what that added. In the app's code and installed packages,
/// imports anywhere count; in the standard library, a function's imports count only within its
/// own package (what runs on import is always followed): following every helper's lazy import
/// there would keep most of the standard library. Modules are looked up in the image's own
/// import roots: the directories above the kept modules' top-level packages, and next to the
/// standard library (`lib-dynload`, `site-packages`, Debian's `dist-packages`).
pub(super) fn keep_python_imports(
    tree: &FileTree,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let is_source = |p: &Path| p.extension().is_some_and(|e| e == "py");
    let mut work: Vec<PathBuf> = set.paths.keys().filter(|p| is_source(p)).cloned().collect();
    if work.is_empty() {
        return;
    }
    let roots = python_roots(tree, set);
    // The standard library: its functions' own lazy imports of other modules (a helper that
    // needs `pwd` or `subprocess` when called) are followed only within the same package.
    let stdlib: Vec<&PathBuf> = roots
        .iter()
        .filter(|r| tree.entries.contains_key(&r.join("os.py")))
        .collect();
    let stdlib_package = |file: &Path| -> Option<String> {
        let root = stdlib.iter().find(|r| file.starts_with(r))?;
        let rel = file.strip_prefix(root).ok()?;
        let mut parts = rel.components();
        let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
        if matches!(first.as_str(), "site-packages" | "dist-packages") {
            return None;
        }
        // A top-level module is a package of its own name.
        Some(match parts.next() {
            Some(_) => first,
            None => first.trim_end_matches(".py").to_owned(),
        })
    };
    // Python 3.11 and later run some of the standard library from copies frozen into the
    // interpreter: their files are not read (not kept), their imports are followed.
    let frozen_in_interpreter = stdlib.iter().any(|root| {
        root.file_name()
            .and_then(|n| n.to_str()?.strip_prefix("python3."))
            .and_then(|minor| minor.parse::<u32>().ok())
            .is_some_and(|minor| minor >= 11)
    });
    // A file of the standard library, by the module it is (`importlib/util.py`).
    let frozen = |file: &Path| {
        frozen_in_interpreter
            && stdlib.iter().any(|root| {
                file.strip_prefix(root).is_ok_and(|rel| {
                    let module = rel.with_extension("").to_string_lossy().replace('/', ".");
                    FROZEN_SINCE_3_11.contains(&module.as_str())
                })
            })
    };
    let mut frozen_files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = work.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        if !frozen_files.contains(&file) {
            keep_pycache(tree, set, &file);
        }
        let Some(bytes) = tree.read(&file, SOURCE_LIMIT) else {
            continue;
        };
        let (imports, dynamic) = python_imports::imports(&String::from_utf8_lossy(&bytes));
        for call in dynamic {
            set.dynamic_imports.push(format!(
                "/{}:{} {}",
                file.display(),
                call.line,
                call.expression
            ));
        }
        let why = Why::imported(Import::Imported, &file);
        let package = stdlib_package(&file);
        for import in imports {
            let elsewhere = |module: &str| package.as_deref() != module.split('.').next();
            if import.in_function
                && import.level == 0
                && package.is_some()
                && elsewhere(&import.module)
            {
                continue;
            }
            let base: Vec<PathBuf> = if import.level == 0 {
                roots.clone()
            } else {
                // The package the file is in, and as many levels up as dots past the first.
                let mut dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
                for _ in 1..import.level {
                    dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
                }
                vec![dir]
            };
            let mut modules = vec![import.module.clone()];
            for name in &import.names {
                modules.push(match import.module.as_str() {
                    "" => name.clone(),
                    module => format!("{module}.{name}"),
                });
            }
            for module in modules.iter().filter(|m| !m.is_empty()) {
                let found = find_python_module(tree, &base, module);
                let last = found.len().saturating_sub(1);
                for (i, found) in found.into_iter().enumerate() {
                    if i == last && frozen(&found) {
                        // In the interpreter itself: its file is never read, but what it
                        // imports when it runs is.
                        if !set.paths.contains_key(&found) && frozen_files.insert(found.clone()) {
                            work.push(found);
                        }
                        continue;
                    }
                    let new = !set.paths.contains_key(&found);
                    set.keep(found.clone(), Reason::StaticImport, || why.clone());
                    if !new {
                        continue;
                    }
                    if is_source(&found) {
                        work.push(found);
                    } else {
                        keep_closure(set, &found);
                    }
                }
            }
        }
    }
}

/// The standard library modules CPython 3.11 and later freeze into the interpreter (its
/// `Python/frozen.c`, without the test modules): imported from there, not from their files.
const FROZEN_SINCE_3_11: &[&str] = &[
    "importlib._bootstrap",
    "importlib._bootstrap_external",
    "zipimport",
    "abc",
    "codecs",
    "io",
    "_collections_abc",
    "_sitebuiltins",
    "genericpath",
    "ntpath",
    "posixpath",
    "os",
    "site",
    "stat",
    "importlib.util",
    "importlib.machinery",
    "runpy",
];

/// The directories the image's Python imports from, as far as the kept files show: for each
/// kept module, the directory above its top-level package; next to a standard library (the
/// root holding `os.py`), its `lib-dynload` and `site-packages`, and Debian's `dist-packages`.
fn python_roots(tree: &FileTree, set: &KeepSet) -> Vec<PathBuf> {
    let has = |p: &Path| tree.entries.contains_key(p);
    let mut roots: BTreeSet<PathBuf> = BTreeSet::new();
    for path in set.paths.keys() {
        let module = path.extension().is_some_and(|e| e == "py")
            || path.to_string_lossy().ends_with(".so")
                && path.to_string_lossy().contains(".cpython-");
        if !module {
            continue;
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| has(&d.join("__init__.py"))) {
            dir = d.parent();
        }
        if let Some(dir) = dir {
            roots.insert(dir.to_path_buf());
        }
    }
    let stdlibs: Vec<PathBuf> = roots
        .iter()
        .filter(|r| has(&r.join("os.py")))
        .cloned()
        .collect();
    for stdlib in stdlibs {
        for sibling in ["lib-dynload", "site-packages", "dist-packages"] {
            roots.insert(stdlib.join(sibling));
        }
        if let (Some(lib), Some(version)) = (stdlib.parent(), stdlib.file_name()) {
            roots.insert(lib.join("python3").join("dist-packages"));
            if let Some(prefix) = lib.parent() {
                let local = prefix.join("local").join("lib").join(version);
                roots.insert(local.join("dist-packages"));
                roots.insert(local.join("site-packages"));
            }
        }
    }
    roots.into_iter().filter(|r| has(r)).collect()
}

/// Where `module` (dotted) is under the first of `roots` that has its top-level name: its
/// parent packages' `__init__.py` and the module itself (`name.py`, `name/__init__.py`, or an
/// extension `name.*.so`). Empty when no root has it (a built-in module, or not in the image).
fn find_python_module(tree: &FileTree, roots: &[PathBuf], module: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = module.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == ".." || p.contains('/'))
    {
        return Vec::new();
    }
    let has = |p: &Path| tree.entries.contains_key(p);
    for root in roots {
        let top = root.join(parts[0]);
        let top_is_there = has(&top)
            || has(&root.join(format!("{}.py", parts[0])))
            || !extensions(tree, root, parts[0]).is_empty();
        if !top_is_there {
            continue;
        }
        let mut found = Vec::new();
        let mut dir = root.clone();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let package = dir.join(part);
            let init = package.join("__init__.py");
            if has(&init) {
                found.push(init);
                if last {
                    return found;
                }
                dir = package;
                continue;
            }
            if !last {
                // A namespace package (no __init__.py) or nothing: go on only if it exists.
                if !has(&package) {
                    return Vec::new();
                }
                dir = package;
                continue;
            }
            let source = dir.join(format!("{part}.py"));
            if has(&source) {
                found.push(source);
            }
            found.extend(extensions(tree, &dir, part));
            if found
                .last()
                .is_some_and(|f| f.parent() == Some(dir.as_path()))
            {
                return found;
            }
            return Vec::new();
        }
        return found;
    }
    Vec::new()
}

/// Extension modules `name.so`, `name.abi3.so`, `name.cpython-311-x86_64-linux-gnu.so` in `dir`.
fn extensions(tree: &FileTree, dir: &Path, name: &str) -> Vec<PathBuf> {
    entries_named(tree, dir, &format!("{name}."))
        .filter(|p| p.to_string_lossy().ends_with(".so"))
        .collect()
}

/// The compiled forms of a kept source file the image has (`__pycache__/name.cpython-311.pyc`),
/// so Python does not compile it again at every start.
fn keep_pycache(tree: &FileTree, set: &mut KeepSet, source: &Path) {
    let (Some(dir), Some(stem)) = (source.parent(), source.file_stem()) else {
        return;
    };
    let cache = dir.join("__pycache__");
    let prefix = format!("{}.", stem.to_string_lossy());
    let compiled: Vec<PathBuf> = entries_named(tree, &cache, &prefix)
        .filter(|p| p.extension().is_some_and(|e| e == "pyc"))
        .collect();
    for pyc in compiled {
        set.keep(pyc, Reason::StaticImport, || Why::CompiledFormOf {
            source: Path::new("/").join(source),
        });
    }
}
