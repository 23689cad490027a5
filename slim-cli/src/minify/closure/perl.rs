//! Perl's closure: modules loaded by `use`, `no`, `require`, `do` and `use parent`/`use base`
//! with literal names (see [`super::perl_imports`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::{keep_file, perl_imports, SOURCE_LIMIT};
use crate::{
    image::tree::{FileTree, Kind},
    minify::{glob, resolve::resolve, Import, KeepSet, Why},
};

/// Perl's `@INC` directories, in the order Perl searches them, as distributions lay them out:
/// Debian's (`perl -V` on bookworm), the upstream build's under `/usr/local/lib/perl5` (the
/// official `perl` image), Alpine's. True for Perl's own library (core modules).
const INC: &[(&str, bool)] = &[
    ("/etc/perl", false),
    ("/usr/local/lib/*/perl/5.*", false),
    ("/usr/local/share/perl/5.*", false),
    ("/usr/lib/*/perl5/5.*", false),
    ("/usr/share/perl5", false),
    ("/usr/lib/*/perl-base", true),
    ("/usr/lib/*/perl/5.*", true),
    ("/usr/share/perl/5.*", true),
    ("/usr/local/lib/site_perl", false),
    ("/usr/local/lib/perl5/site_perl/5.*/*-linux*", false),
    ("/usr/local/lib/perl5/site_perl/5.*", false),
    ("/usr/local/lib/perl5/vendor_perl/5.*/*-linux*", false),
    ("/usr/local/lib/perl5/vendor_perl/5.*", false),
    ("/usr/local/lib/perl5/5.*/*-linux*", true),
    ("/usr/local/lib/perl5/5.*", true),
    ("/usr/local/lib/perl5/site_perl", false),
    ("/usr/local/share/perl5/site_perl", false),
    ("/usr/lib/perl5/vendor_perl", false),
    ("/usr/share/perl5/vendor_perl", false),
    ("/usr/lib/perl5/core_perl", true),
    ("/usr/share/perl5/core_perl", true),
];

/// One `@INC` directory: absolute, as Perl names it (maybe through a symlink: Debian's
/// `5.36 -> 5.36.0`).
#[derive(Clone, Debug)]
struct Root {
    dir: PathBuf,
    /// Perl's own library.
    core: bool,
}

/// Perl's static load closure: every file a kept Perl source (`.pm`, `.pl`, a `#!...perl`
/// script) loads by literal name (see [`perl_imports`]) is kept where Perl would find it in
/// `@INC` ([`perl_roots`], with the directories `use lib` adds), with its XS library
/// (`auto/X/Y/Y.so`, and its ELF dependencies); then the same for what that added. In Perl's
/// own library (perl-base, `perl/5.*`: core modules), a `require` inside a sub is not followed
/// (nor reported when computed): what runs when a module is compiled (`use`, a `require` at
/// file level) always is. Following every core helper's lazy require (Carp's, CPAN's,
/// Pod's...) would keep most of the library.
pub(super) fn keep_perl_modules(
    tree: &FileTree,
    set: &mut KeepSet,
    keep_closure: &mut dyn FnMut(&mut KeepSet, &Path),
) {
    let mut work: Vec<PathBuf> = set
        .paths
        .keys()
        .filter(|p| is_perl_source(tree, p))
        .cloned()
        .collect();
    if work.is_empty() {
        return;
    }
    let mut parsed: BTreeMap<PathBuf, perl_imports::Loads> = BTreeMap::new();
    let mut parse = |file: &Path| -> perl_imports::Loads {
        parsed
            .entry(file.to_path_buf())
            .or_insert_with(|| {
                tree.read(file, SOURCE_LIMIT)
                    .map(|bytes| perl_imports::loads(&String::from_utf8_lossy(&bytes)))
                    .unwrap_or_default()
            })
            .clone()
    };
    let standard = standard_roots(tree);
    // The directories of the kept modules outside the standard ones (an app's lib, found
    // through its `package` line), and the ones `use lib` names.
    let mut extra: Vec<Root> = Vec::new();
    for file in &work {
        let loads = parse(file);
        extra.extend(lib_roots(file, &loads));
        if let Some(root) = package_root(file, &loads) {
            if !standard.iter().any(|r| same_dir(tree, &r.dir, &root)) {
                extra.push(Root {
                    dir: root,
                    core: false,
                });
            }
        }
    }
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = work.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        let loads = parse(&file);
        extra.extend(lib_roots(&file, &loads));
        let roots: Vec<&Root> = extra.iter().chain(&standard).collect();
        let core = roots.iter().filter(|r| r.core).any(|r| {
            resolve(tree, &r.dir)
                .target
                .is_some_and(|t| file.starts_with(t))
        });
        for (line, in_sub) in loads.dynamic {
            if in_sub && core {
                continue;
            }
            set.dynamic_imports.push(format!(
                "/{}:{line} require of a computed name",
                file.display()
            ));
        }
        let why = Why::imported(Import::Loaded, &file);
        for load in loads.loads {
            if load.in_sub && core {
                continue;
            }
            let candidates: Vec<PathBuf> = if load.path.starts_with('/') {
                vec![PathBuf::from(&load.path)]
            } else if load.path.starts_with("./") || load.path.starts_with("../") {
                // Relative to the working directory, which is not known here.
                continue;
            } else {
                roots.iter().map(|r| r.dir.join(&load.path)).collect()
            };
            let Some(found) = candidates
                .iter()
                .find_map(|c| keep_file(tree, set, c, &why))
            else {
                continue;
            };
            if !done.contains(&found) {
                work.push(found);
            }
            // An XS module's library, where DynaLoader looks for it: auto/X/Y/Y.so in @INC.
            let Some(module) = load.path.strip_suffix(".pm") else {
                continue;
            };
            let Some(last) = module.rsplit('/').next() else {
                continue;
            };
            let so = format!("auto/{module}/{last}.so");
            let library = roots
                .iter()
                .find_map(|r| keep_file(tree, set, &r.dir.join(&so), &why));
            if let Some(library) = library {
                keep_closure(set, &library);
            }
        }
    }
}

fn same_dir(tree: &FileTree, a: &Path, b: &Path) -> bool {
    let (a, b) = (resolve(tree, a).target, resolve(tree, b).target);
    a.is_some() && a == b
}

/// A Perl source: `.pm`, `.pl`, `.pmc`, `.cgi`, `.psgi`, or a script without an extension
/// whose `#!` line runs perl.
fn is_perl_source(tree: &FileTree, path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pm" | "pl" | "pmc" | "cgi" | "psgi") => true,
        Some(_) => false,
        None => {
            matches!(tree.get(path).map(|e| &e.kind), Some(Kind::File))
                && tree.read(path, 128).is_some_and(|head| {
                    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                    line.starts_with(b"#!") && line.windows(4).any(|w| w == b"perl")
                })
        }
    }
}

/// The image's standard `@INC` directories ([`INC`]) that exist, each directory once (the
/// first name for it: Debian's `5.36` before the `5.36.0` it links to).
fn standard_roots(tree: &FileTree) -> Vec<Root> {
    let mut roots: Vec<Root> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for &(pattern, core) in INC {
        for dir in expand(tree, pattern) {
            if let Some(target) = resolve(tree, &dir).target {
                if matches!(tree.get(&target).map(|e| &e.kind), Some(Kind::Dir))
                    && seen.insert(target)
                {
                    roots.push(Root { dir, core });
                }
            }
        }
    }
    roots
}

/// The absolute paths in the tree matching `pattern` (`*` within one component), sorted.
fn expand(tree: &FileTree, pattern: &str) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::from("/")];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if !part.contains('*') {
                let path = dir.join(part);
                if resolve(tree, &path).target.is_some() {
                    next.push(path);
                }
                continue;
            }
            // The entries directly in the directory it resolves to.
            let Some(target) = resolve(tree, dir).target else {
                continue;
            };
            let names: Vec<String> = tree
                .entries
                .range(target.clone()..)
                .map(|(p, _)| p)
                .skip_while(|p| *p == &target)
                .take_while(|p| p.starts_with(&target))
                .filter(|p| p.parent() == Some(target.as_path()))
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .filter(|n| glob::matches(part, n))
                .collect();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        current = next;
    }
    current
}

/// The directories `use lib` in `file` adds: absolute ones, and for a script (not a module),
/// the ones under its own directory (`$FindBin::Bin`).
fn lib_roots(file: &Path, loads: &perl_imports::Loads) -> Vec<Root> {
    let script_dir = Path::new("/").join(file.parent().unwrap_or(Path::new("")));
    let module = file.extension().is_some_and(|e| e == "pm");
    loads
        .lib_dirs
        .iter()
        .filter_map(|dir| match dir {
            perl_imports::LibDir::Absolute(dir) => Some(PathBuf::from(dir)),
            perl_imports::LibDir::ScriptDir(_) if module => None,
            perl_imports::LibDir::ScriptDir(rest) => {
                Some(PathBuf::from(format!("{}{rest}", script_dir.display())))
            }
        })
        .map(|dir| Root { dir, core: false })
        .collect()
}

/// The `@INC` directory a module was loaded from, by its `package` name: `/app/lib` for
/// `/app/lib/My/App.pm` declaring `package My::App`.
fn package_root(file: &Path, loads: &perl_imports::Loads) -> Option<PathBuf> {
    if file.extension().is_none_or(|e| e != "pm") {
        return None;
    }
    let name = loads.packages.first()?;
    let rel = format!("{}.pm", name.replace("::", "/"));
    let absolute = Path::new("/").join(file);
    let root = absolute.to_str()?.strip_suffix(&rel)?;
    root.ends_with('/').then(|| PathBuf::from(root))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{
        image::testutil::{layer, Member::*, Scratch},
        minify::{select, Options, Reason},
        recording::{Recording, Use},
    };

    fn read(paths: &[&str]) -> Recording {
        let mut rec = Recording::default();
        for path in paths {
            let touched = rec.paths.entry(std::path::PathBuf::from(path)).or_default();
            touched.ok.insert(Use::Read);
            touched.count += 1;
        }
        rec
    }

    #[test]
    fn perl_modules_loaded_by_literal_name_are_kept_where_perl_finds_them() {
        let scratch = Scratch::new();
        let (sources, refs) = scratch.layers(&[layer(&[
            Dir("app/"),
            File(
                "app/server.pl",
                b"use strict;\nuse FindBin;\nuse lib \"$FindBin::Bin/lib\";\nuse My::App;\n\
                  sub handler {\n    require JSON::PP;\n    require List::Util;\n}\n\
                  # require Net::SMTP;\nrequire $plugin;\n",
            ),
            Dir("app/lib/"),
            Dir("app/lib/My/"),
            File(
                "app/lib/My/App.pm",
                b"package My::App;\nuse parent 'My::Base';\n",
            ),
            File("app/lib/My/Base.pm", b"package My::Base;\n1;\n"),
            Dir("usr/"),
            Dir("usr/lib/"),
            Dir("usr/lib/x86_64-linux-gnu/"),
            Dir("usr/lib/x86_64-linux-gnu/perl-base/"),
            File("usr/lib/x86_64-linux-gnu/perl-base/strict.pm", b""),
            File("usr/lib/x86_64-linux-gnu/perl-base/parent.pm", b""),
            File("usr/lib/x86_64-linux-gnu/perl-base/lib.pm", b""),
            Dir("usr/lib/x86_64-linux-gnu/perl-base/List/"),
            File(
                "usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm",
                b"require XSLoader;\nsub f { require Carp }\n",
            ),
            File("usr/lib/x86_64-linux-gnu/perl-base/XSLoader.pm", b""),
            File("usr/lib/x86_64-linux-gnu/perl-base/Carp.pm", b""),
            Dir("usr/lib/x86_64-linux-gnu/perl-base/auto/"),
            Dir("usr/lib/x86_64-linux-gnu/perl-base/auto/List/"),
            Dir("usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/"),
            File(
                "usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/Util.so",
                b"\x7fELF util",
            ),
            Dir("usr/share/"),
            Dir("usr/share/perl/"),
            Symlink("usr/share/perl/5.36", "5.36.0"),
            Dir("usr/share/perl/5.36.0/"),
            File(
                "usr/share/perl/5.36.0/FindBin.pm",
                b"sub again { require Cwd }\n",
            ),
            File("usr/share/perl/5.36.0/Cwd.pm", b""),
            Dir("usr/share/perl/5.36.0/JSON/"),
            File(
                "usr/share/perl/5.36.0/JSON/PP.pm",
                b"package JSON::PP;\nuse Carp ();\n",
            ),
            Dir("usr/share/perl/5.36.0/Net/"),
            File("usr/share/perl/5.36.0/Net/SMTP.pm", b""),
        ])]);
        let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
        let rec = read(&[
            "/app/server.pl",
            "/usr/lib/x86_64-linux-gnu/perl-base/strict.pm",
            "/usr/share/perl/5.36/FindBin.pm",
        ]);
        let options = Options {
            static_imports: true,
            ..Options::default()
        };
        let set = select(&tree, &rec, &options);
        for kept in [
            "app/lib/My/App.pm",
            "app/lib/My/Base.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/lib.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/parent.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/List/Util.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/XSLoader.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/auto/List/Util/Util.so",
            "usr/share/perl/5.36.0/JSON/PP.pm",
            "usr/lib/x86_64-linux-gnu/perl-base/Carp.pm",
        ] {
            assert_eq!(
                set.paths.get(Path::new(kept)).map(|k| k.reason),
                Some(Reason::StaticImport),
                "{kept}"
            );
        }
        assert_eq!(
            set.paths[Path::new("usr/share/perl/5.36.0/JSON/PP.pm")]
                .why
                .to_string(),
            "loaded by /app/server.pl (static)"
        );
        assert_eq!(
            set.paths[Path::new("app/lib/My/Base.pm")].why.to_string(),
            "loaded by /app/lib/My/App.pm (static)"
        );
        // Carp comes through JSON::PP's `use`, not List::Util's sub. Named only in a comment
        // of the app (Net::SMTP) or in a sub of Perl's own library (Cwd): left out.
        assert_eq!(
            set.paths[Path::new("usr/lib/x86_64-linux-gnu/perl-base/Carp.pm")]
                .why
                .to_string(),
            "loaded by /usr/share/perl/5.36.0/JSON/PP.pm (static)"
        );
        assert!(!set
            .paths
            .contains_key(Path::new("usr/share/perl/5.36.0/Net/SMTP.pm")));
        assert!(!set
            .paths
            .contains_key(Path::new("usr/share/perl/5.36.0/Cwd.pm")));
        assert_eq!(
            set.dynamic_imports,
            ["/app/server.pl:10 require of a computed name"]
        );
        // Off: only what the recording saw.
        let off = select(&tree, &rec, &Options::default());
        assert!(!off
            .paths
            .contains_key(Path::new("usr/share/perl/5.36.0/JSON/PP.pm")));
    }
}
