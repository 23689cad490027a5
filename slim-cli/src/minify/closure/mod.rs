//! The static import closure: the modules and files that kept sources of an interpreted runtime
//! name literally, kept where the image's own runtime would find them, and so on for what that
//! added. One module per runtime: [`python`], [`ruby`], [`node`], [`perl`], [`php`].

mod node;
mod node_imports;
mod perl;
mod perl_imports;
mod php;
mod php_imports;
mod python;
mod python_imports;
mod ruby;
mod ruby_imports;

use std::path::{Path, PathBuf};

use super::{resolve::resolve, KeepSet, Reason, Why};
use crate::image::tree::{FileTree, Kind};

/// Runs every runtime's closure over the kept set. `env` is the image's environment (`K=V`);
/// `keep_closure` keeps a native file's ELF dependencies (an extension module's libraries).
pub(super) fn keep_static_imports(
    tree: &FileTree,
    set: &mut KeepSet,
    env: &[String],
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    python::keep_python_imports(tree, set, keep_closure);
    attribute(set, "python");
    ruby::keep_ruby_requires(tree, set, keep_closure);
    attribute(set, "ruby");
    node::keep_node_requires(tree, set, env, keep_closure);
    attribute(set, "node");
    perl::keep_perl_modules(tree, set, keep_closure);
    attribute(set, "perl");
    php::keep_php_includes(tree, set);
    attribute(set, "php");
}

/// Files the closure kept that no runtime has been named for yet are `runtime`'s.
fn attribute(set: &mut KeepSet, runtime: &'static str) {
    let new: Vec<PathBuf> = set
        .paths
        .iter()
        .filter(|(path, kept)| {
            kept.reason == Reason::StaticImport && !set.imported_for.contains_key(*path)
        })
        .map(|(path, _)| path.clone())
        .collect();
    for path in new {
        set.imported_for.insert(path, runtime);
    }
}

/// Keeps the regular file `path` (absolute) leads to, with the symlinks on the way; its tree
/// path, or None when there is none.
pub(super) fn keep_file(
    tree: &FileTree,
    set: &mut KeepSet,
    path: &Path,
    why: &Why,
) -> Option<PathBuf> {
    let resolution = resolve(tree, path);
    let target = resolution.target?;
    if !matches!(tree.get(&target)?.kind, Kind::File | Kind::Hardlink) {
        return None;
    }
    for link in resolution.links {
        set.keep(link, Reason::Symlink, || Why::OnTheWayTo {
            target: path.to_path_buf(),
        });
    }
    set.keep(target.clone(), Reason::StaticImport, || why.clone());
    Some(target)
}

/// The largest source file read for its imports.
pub(super) const SOURCE_LIMIT: u64 = 4 << 20;

/// The entries directly in `dir` whose names start with `prefix`.
pub(super) fn entries_named<'a>(
    tree: &'a FileTree,
    dir: &'a Path,
    prefix: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    tree.entries
        .range(dir.join(prefix)..)
        .map(|(p, _)| p)
        .take_while(move |p| {
            p.parent() == Some(dir)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .cloned()
}
