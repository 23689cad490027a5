//! PHP's closure: files included by `require`, `require_once`, `include` and `include_once`
//! with literal paths (see [`super::php_imports`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{perl::keep_file, php_imports, SOURCE_LIMIT};
use crate::{
    image::tree::FileTree,
    minify::{resolve::resolve, KeepSet},
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
/// in the working directory (taken the same way). Composer's class autoloading (a class file
/// loaded when a class is first used) is not followed: it has no literal path.
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
        let detail = format!("included by /{} (static)", file.display());
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
                if let Some(found) = keep_file(tree, set, &candidate, &detail) {
                    if !done.contains(&found) {
                        work.push(found);
                    }
                    break;
                }
            }
        }
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
            set.paths[Path::new("var/www/config.php")].detail,
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
}
