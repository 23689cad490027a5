//! Ruby's closure: files loaded by `require`, `require_relative` and `autoload` with literal
//! names (see [`super::ruby_imports`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{ruby_imports, SOURCE_LIMIT};
use crate::{
    image::tree::{FileTree, Kind},
    minify::{Import, KeepSet, Reason, Why},
};

/// Ruby's static require closure: every file a kept `.rb` loads by literal name (see
/// [`ruby_imports`]) is kept where Ruby would find it: next to the file for
/// `require_relative`, else in the image's load path ([`ruby_roots`]); an extension (`.so`)
/// with its ELF dependencies. Then the same for what that added. In Ruby's own library, a
/// require inside a method is not followed (what runs on load always is): following every one
/// would keep most of the library and the C libraries behind it.
pub(super) fn keep_ruby_requires(
    tree: &FileTree,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let is_source = |p: &Path| p.extension().is_some_and(|e| e == "rb");
    let mut work: Vec<PathBuf> = set.paths.keys().filter(|p| is_source(p)).cloned().collect();
    if work.is_empty() {
        return;
    }
    let roots = ruby_roots(tree, set);
    let has = |p: &Path| tree.entries.contains_key(p);
    // Ruby's own library (not a gem's lib, not the app): a require inside a method there
    // (rubygems' remote fetcher wanting its S3 signer and openssl) is not followed; following
    // every one would keep most of the library and the C libraries behind it.
    let in_library = |file: &Path| {
        roots
            .iter()
            .filter(|r| !r.components().any(|c| c.as_os_str() == "gems"))
            .any(|r| file.starts_with(r))
    };
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = work.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        let Some(bytes) = tree.read(&file, SOURCE_LIMIT) else {
            continue;
        };
        let (requires, dynamic) = ruby_imports::requires(&String::from_utf8_lossy(&bytes));
        for line in dynamic {
            set.dynamic_imports.push(format!(
                "/{}:{line} require of a computed name",
                file.display()
            ));
        }
        let why = Why::imported(Import::Required, &file);
        let library = in_library(&file);
        for require in requires {
            if require.in_method && library {
                continue;
            }
            if require.path.starts_with('/') || require.path.split('/').any(|p| p == "..") {
                continue;
            }
            let here = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let bases: Vec<PathBuf> = match require.how {
                ruby_imports::Load::Relative => vec![here],
                ruby_imports::Load::LoadPath => roots.clone(),
            };
            let named = |base: &Path, suffix: &str| {
                let name = if require.path.ends_with(".rb") || require.path.ends_with(".so") {
                    require.path.clone()
                } else {
                    format!("{}{suffix}", require.path)
                };
                base.join(name)
            };
            let found = bases.iter().find_map(|base| {
                [".rb", ".so"]
                    .into_iter()
                    .map(|suffix| named(base, suffix))
                    .find(|p| has(p))
            });
            let Some(found) = found else {
                continue;
            };
            if set.paths.contains_key(&found) {
                continue;
            }
            set.keep(found.clone(), Reason::StaticImport, || why.clone());
            if is_source(&found) {
                work.push(found);
            } else {
                keep_closure(set, &found);
            }
        }
    }
}

/// Ruby's load path in the image, as far as the kept files show, in the order Ruby searches it:
/// each kept gem's `lib`; then, for the version the kept `rbconfig.rb` is in (its directory's
/// name, `3.1.0`), every `site_ruby` and `vendor_ruby` (with and without the version) and every
/// `ruby/VERSION` directory of the image (the library and the architecture directories, which
/// distributions place differently); and the directory of a kept `rubygems.rb`.
fn ruby_roots(tree: &FileTree, set: &KeepSet) -> Vec<PathBuf> {
    let mut gems: BTreeSet<PathBuf> = BTreeSet::new();
    let mut versions: BTreeSet<String> = BTreeSet::new();
    let mut rubygems: Vec<PathBuf> = Vec::new();
    for path in set.paths.keys() {
        let parts: Vec<_> = path.components().collect();
        for (i, part) in parts.iter().enumerate() {
            if part.as_os_str() == "gems"
                && parts.get(i + 2).is_some_and(|p| p.as_os_str() == "lib")
            {
                gems.insert(parts[..i + 3].iter().collect());
            }
        }
        match path.file_name().and_then(|n| n.to_str()) {
            Some("rbconfig.rb") => {
                if let Some(version) = path.parent().and_then(Path::file_name) {
                    versions.insert(version.to_string_lossy().into_owned());
                }
            }
            Some("rubygems.rb") => rubygems.extend(path.parent().map(Path::to_path_buf)),
            _ => {}
        }
    }
    let mut roots: Vec<PathBuf> = gems.into_iter().collect();
    if !versions.is_empty() {
        // (rank, path): site before vendor before the library.
        let mut found: Vec<(u8, PathBuf)> = Vec::new();
        for (path, entry) in &tree.entries {
            if !matches!(entry.kind, Kind::Dir) {
                continue;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let parent = path
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned());
            let rank = match (name.as_deref(), parent.as_deref()) {
                (Some("site_ruby"), _) => 1,
                (Some("vendor_ruby"), _) => 3,
                (Some(v), Some("site_ruby")) if versions.contains(v) => 0,
                (Some(v), Some("vendor_ruby")) if versions.contains(v) => 2,
                (Some(v), Some("ruby")) if versions.contains(v) => 4,
                _ => continue,
            };
            found.push((rank, path.clone()));
        }
        found.sort();
        roots.extend(found.into_iter().map(|(_, path)| path));
    }
    roots.extend(rubygems);
    let mut seen = BTreeSet::new();
    roots
        .into_iter()
        .filter(|r| tree.entries.contains_key(r) && seen.insert(r.clone()))
        .collect()
}
