//! PHP's closure: files included by `require`, `require_once`, `include` and `include_once`
//! with literal paths (see [`super::php_imports`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{keep_file, php_imports, SOURCE_LIMIT};
use crate::{
    image::tree::FileTree,
    minify::{resolve::resolve, Import, KeepSet, Why},
};

/// The include path's directories besides `.`: Debian's default (`/usr/share/php`) and the
/// upstream build's (`/usr/local/lib/php`, the official `php` image).
const INCLUDE_PATH: &[&str] = &["/usr/share/php", "/usr/local/lib/php"];

/// PHP's static include closure: every file a kept PHP source (`.php`, `.phtml`, `.inc`)
/// includes by a literal path (see [`php_imports`]) is kept, with the symlinks on the way; then
/// the same for what that added. `__DIR__ . '/x.php'` is next to the including file; an
/// absolute path is as it is; a relative one is searched where PHP looks: the include path (`.`,
/// the working directory, which is not known here: taken as the including file's directory;
/// then [`INCLUDE_PATH`]), then the including file's directory; `./x.php` and `../x.php` only
/// in the working directory (taken the same way). With Composer (a kept `vendor/autoload.php`
/// or file under `vendor/composer/`), the classes a kept file names literally (`use A\\B;`,
/// `new B`, `B::f()`, see [`php_imports::classes`]) are kept where its class map or PSR-4
/// prefixes (`autoload_classmap.php`, `autoload_psr4.php`) put them; PSR-0 and `files`
/// autoloading are not followed.
pub(super) fn keep_php_includes(tree: &FileTree, set: &mut KeepSet) {
    let is_source = |p: &Path| {
        p.extension()
            .is_some_and(|e| e == "php" || e == "phtml" || e == "inc")
    };
    let mut work: Vec<PathBuf> = set.paths.keys().filter(|p| is_source(p)).cloned().collect();
    if work.is_empty() {
        return;
    }
    let include_path: Vec<PathBuf> = INCLUDE_PATH
        .iter()
        .map(PathBuf::from)
        .filter(|dir| resolve(tree, dir).target.is_some())
        .collect();
    let composer: Vec<Composer> = composer_dirs(set)
        .iter()
        .filter_map(|dir| Composer::read(tree, dir))
        .collect();
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = work.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        let Some(bytes) = tree.read(&file, SOURCE_LIMIT) else {
            continue;
        };
        let (includes, computed) = php_imports::includes(&String::from_utf8_lossy(&bytes));
        for include in computed {
            set.dynamic_imports.push(format!(
                "/{}:{} {} of a computed path",
                file.display(),
                include.line,
                include.keyword
            ));
        }
        if !composer.is_empty() {
            let source = String::from_utf8_lossy(&bytes);
            let mut seen = BTreeSet::new();
            for (class, _) in php_imports::classes(&source) {
                if !seen.insert(class.clone()) {
                    continue;
                }
                let why = Why::AutoloadedFor {
                    by: Path::new("/").join(&file),
                    class: class.clone(),
                };
                let found = composer
                    .iter()
                    .flat_map(|map| map.candidates(&class))
                    .find_map(|candidate| keep_file(tree, set, &candidate, &why));
                if let Some(found) = found {
                    if !done.contains(&found) {
                        work.push(found);
                    }
                }
            }
        }
        let why = Why::imported(Import::Included, &file);
        let here = Path::new("/").join(file.parent().unwrap_or(Path::new("")));
        for include in includes {
            let candidates: Vec<PathBuf> = match include.base {
                php_imports::Base::Dir(levels) => {
                    let mut dir = here.as_path();
                    for _ in 0..levels {
                        dir = dir.parent().unwrap_or(Path::new("/"));
                    }
                    vec![PathBuf::from(format!("{}{}", dir.display(), include.path))
                        .components()
                        .collect()]
                }
                php_imports::Base::Literal if include.path.starts_with('/') => {
                    vec![PathBuf::from(&include.path)]
                }
                php_imports::Base::Literal
                    if include.path.starts_with("./") || include.path.starts_with("../") =>
                {
                    vec![here.join(&include.path)]
                }
                php_imports::Base::Literal => std::iter::once(&here)
                    .chain(&include_path)
                    .map(|dir| dir.join(&include.path))
                    .collect(),
            };
            for candidate in candidates {
                if let Some(found) = keep_file(tree, set, &candidate, &why) {
                    if !done.contains(&found) {
                        work.push(found);
                    }
                    break;
                }
            }
        }
    }
}

/// The `vendor/composer` directories (tree paths) of the Composer autoloaders in use.
fn composer_dirs(set: &KeepSet) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for path in set.paths.keys() {
        if path.ends_with("vendor/autoload.php") {
            dirs.extend(path.parent().map(|vendor| vendor.join("composer")));
        }
        let mut parts = path.ancestors();
        if let Some(dir) = parts.find(|a| a.ends_with("vendor/composer")) {
            dirs.insert(dir.to_path_buf());
        }
    }
    dirs
}

/// One Composer autoloader's maps, with absolute paths.
struct Composer {
    classmap: std::collections::BTreeMap<String, PathBuf>,
    /// Namespace prefix (`Monolog\\`) -> directories, longest prefix first.
    psr4: Vec<(String, Vec<PathBuf>)>,
}

impl Composer {
    /// The maps in the Composer directory `dir` (tree path), if it has any.
    fn read(tree: &FileTree, dir: &Path) -> Option<Composer> {
        let vendor = Path::new("/").join(dir.parent()?);
        let base = vendor.parent().unwrap_or(Path::new("/")).to_path_buf();
        let map = |name: &str| -> Vec<(String, Vec<PathBuf>)> {
            let Some(bytes) = tree.read(&dir.join(name), SOURCE_LIMIT) else {
                return Vec::new();
            };
            php_imports::composer_map(&String::from_utf8_lossy(&bytes))
                .into_iter()
                .map(|(key, paths)| {
                    let paths = paths
                        .into_iter()
                        .filter_map(|(var, rest)| {
                            let root = match var.as_str() {
                                "vendorDir" => &vendor,
                                "baseDir" => &base,
                                _ => return None,
                            };
                            Some(PathBuf::from(format!("{}{rest}", root.display())))
                        })
                        .collect();
                    (key, paths)
                })
                .collect()
        };
        let classmap = map("autoload_classmap.php")
            .into_iter()
            .filter_map(|(class, mut paths)| Some((class, paths.pop()?)))
            .collect();
        let mut psr4 = map("autoload_psr4.php");
        psr4.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let composer = Composer { classmap, psr4 };
        (!composer.classmap.is_empty() || !composer.psr4.is_empty()).then_some(composer)
    }

    /// Where the autoloader would look for `class` (fully qualified), in its order.
    fn candidates(&self, class: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = self.classmap.get(class).cloned().into_iter().collect();
        for (prefix, dirs) in &self.psr4 {
            if let Some(rest) = class.strip_prefix(prefix.as_str()) {
                let file = format!("{}.php", rest.replace('\\', "/"));
                found.extend(dirs.iter().map(|dir| dir.join(&file)));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{
        image::testutil::{layer, Member::*, Scratch},
        minify::{select, Options, Reason},
        recording::{Recording, Use},
    };

    #[test]
    fn php_files_included_by_literal_path_are_kept() {
        let scratch = Scratch::new();
        let (sources, refs) = scratch.layers(&[layer(&[
            Dir("var/"),
            Dir("var/www/"),
            File(
                "var/www/index.php",
                b"<?php\nrequire_once __DIR__ . '/lib/db.php';\nfunction report() {\n    \
                  include 'templates/report.phtml';\n}\n// require 'old.php';\n\
                  require 'Mail.php';\ninclude $page . '.php';\n",
            ),
            File("var/www/old.php", b"<?php\n"),
            Dir("var/www/lib/"),
            File(
                "var/www/lib/db.php",
                b"<?php\nrequire dirname(__DIR__) . '/config.php';\n",
            ),
            File("var/www/config.php", b"<?php\nreturn [];\n"),
            Dir("var/www/templates/"),
            File("var/www/templates/report.phtml", b"<p><?= 1 ?></p>\n"),
            Dir("usr/"),
            Dir("usr/share/"),
            Dir("usr/share/php/"),
            File(
                "usr/share/php/Mail.php",
                b"<?php\nrequire_once 'PEAR.php';\n",
            ),
            File("usr/share/php/PEAR.php", b"<?php\n"),
        ])]);
        let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
        let mut rec = Recording::default();
        let touched = rec
            .paths
            .entry(std::path::PathBuf::from("/var/www/index.php"))
            .or_default();
        touched.ok.insert(Use::Read);
        touched.count = 1;
        let options = Options {
            static_imports: true,
            ..Options::default()
        };
        let set = select(&tree, &rec, &options);
        for kept in [
            "var/www/lib/db.php",
            "var/www/config.php",
            "var/www/templates/report.phtml",
            "usr/share/php/Mail.php",
            "usr/share/php/PEAR.php",
        ] {
            assert_eq!(
                set.paths.get(Path::new(kept)).map(|k| k.reason),
                Some(Reason::StaticImport),
                "{kept}"
            );
        }
        assert_eq!(
            set.paths[Path::new("var/www/config.php")].why.to_string(),
            "included by /var/www/lib/db.php (static)"
        );
        assert!(!set.paths.contains_key(Path::new("var/www/old.php")));
        assert_eq!(
            set.dynamic_imports,
            ["/var/www/index.php:8 include of a computed path"]
        );
        let off = select(&tree, &rec, &Options::default());
        assert!(!off.paths.contains_key(Path::new("var/www/lib/db.php")));
    }

    #[test]
    fn composer_classes_named_literally_are_kept_where_the_autoloader_finds_them() {
        let scratch = Scratch::new();
        let (sources, refs) = scratch.layers(&[layer(&[
            Dir("srv/"),
            Dir("srv/public/"),
            File(
                "srv/public/index.php",
                b"<?php\nrequire __DIR__ . '/../vendor/autoload.php';\nuse App\\Report;\n\
                  function handler() {\n    return (new Report())->render();\n}\n",
            ),
            Dir("srv/src/"),
            File(
                "srv/src/Report.php",
                b"<?php\nnamespace App;\nclass Report { function render() { \
                  return \\Monolog\\Logger::NAME . Format::x(); } }\n",
            ),
            File("srv/src/Format.php", b"<?php\nnamespace App;\n"),
            File("srv/src/Unused.php", b"<?php\n"),
            Dir("srv/vendor/"),
            File("srv/vendor/autoload.php", b"<?php\n"),
            Dir("srv/vendor/composer/"),
            File(
                "srv/vendor/composer/autoload_psr4.php",
                b"<?php\n$vendorDir = dirname(__DIR__);\n$baseDir = dirname($vendorDir);\n\
                  return array(\n    'App\\\\' => array($baseDir . '/src'),\n);\n",
            ),
            File(
                "srv/vendor/composer/autoload_classmap.php",
                b"<?php\n$vendorDir = dirname(__DIR__);\nreturn array(\n    \
                  'Monolog\\\\Logger' => $vendorDir . '/monolog/src/Logger.php',\n);\n",
            ),
            Dir("srv/vendor/monolog/"),
            Dir("srv/vendor/monolog/src/"),
            File("srv/vendor/monolog/src/Logger.php", b"<?php\n"),
        ])]);
        let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
        let mut rec = Recording::default();
        for path in ["/srv/public/index.php", "/srv/vendor/autoload.php"] {
            let touched = rec.paths.entry(std::path::PathBuf::from(path)).or_default();
            touched.ok.insert(Use::Read);
            touched.count = 1;
        }
        let options = Options {
            static_imports: true,
            ..Options::default()
        };
        let set = select(&tree, &rec, &options);
        for kept in [
            "srv/src/Report.php",
            "srv/src/Format.php",
            "srv/vendor/monolog/src/Logger.php",
        ] {
            assert_eq!(
                set.paths.get(Path::new(kept)).map(|k| k.reason),
                Some(Reason::StaticImport),
                "{kept}"
            );
        }
        assert_eq!(
            set.paths[Path::new("srv/src/Report.php")].why.to_string(),
            "autoloaded for /srv/public/index.php (static): App\\Report"
        );
        assert!(!set.paths.contains_key(Path::new("srv/src/Unused.php")));
    }
}
