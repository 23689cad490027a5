use std::collections::BTreeSet;

use super::*;
use crate::{
    image::tree::Entry,
    recording::{Recording, Touched, Use},
};

fn entry(kind: Kind, link: Option<&str>, size: u64) -> Entry {
    Entry {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        size,
        link: link.map(PathBuf::from),
        device: None,
        xattrs: Vec::new(),
        data: None,
        layer: 0,
    }
}

fn image() -> FileTree {
    let mut tree = FileTree::default();
    for (path, kind, link, size) in [
        ("bin", Kind::Symlink, Some("usr/bin"), 0),
        ("etc", Kind::Dir, None, 0),
        ("etc/passwd", Kind::File, None, 10),
        ("etc/protocols", Kind::File, None, 10),
        ("etc/app.conf", Kind::File, None, 5),
        ("srv", Kind::Dir, None, 0),
        ("srv/static", Kind::Dir, None, 0),
        ("srv/static/a.css", Kind::File, None, 3),
        ("srv/static/b.js", Kind::File, None, 4),
        ("tmp", Kind::Dir, None, 0),
        ("usr", Kind::Dir, None, 0),
        ("usr/bin", Kind::Dir, None, 0),
        ("usr/bin/app", Kind::File, None, 100),
        ("usr/share", Kind::Dir, None, 0),
        ("usr/share/doc", Kind::Dir, None, 0),
        ("usr/share/doc/README", Kind::File, None, 1000),
    ] {
        tree.entries
            .insert(PathBuf::from(path), entry(kind, link, size));
    }
    tree
}

fn recording(paths: &[(&str, Use, bool)]) -> Recording {
    let mut rec = Recording::default();
    for (path, u, ok) in paths {
        let touched = rec
            .paths
            .entry(PathBuf::from(path))
            .or_insert_with(Touched::default);
        if *ok {
            touched.ok.insert(*u);
        } else {
            touched.failed.insert(*u);
        }
        touched.count += 1;
    }
    rec
}

fn kept(set: &KeepSet) -> BTreeSet<String> {
    set.paths.keys().map(|p| p.display().to_string()).collect()
}

#[test]
fn touched_paths_are_resolved_in_the_image_with_their_symlinks() {
    let rec = recording(&[
        ("/bin/app", Use::Exec, true),
        ("/etc/app.conf", Use::Read, true),
        ("/srv/static", Use::Directory, true),
        ("/etc/missing", Use::Stat, false),
        ("/var/run/app.pid", Use::Write, true),
        ("/proc/self/status", Use::Read, true),
    ]);
    let options = Options {
        skip_groups: KeepGroup::ALL.iter().copied().collect(),
        ..Default::default()
    };
    let set = select(&image(), &rec, &options);
    assert_eq!(
        kept(&set),
        ["bin", "etc/app.conf", "srv/static", "usr/bin/app"]
            .map(String::from)
            .into()
    );
    assert_eq!(set.paths[Path::new("bin")].reason, Reason::Symlink);
    assert_eq!(set.paths[Path::new("usr/bin/app")].reason, Reason::Executed);
    assert_eq!(set.paths[Path::new("srv/static")].reason, Reason::Directory);
    assert!(set.not_in_image.contains(Path::new("/var/run/app.pid")));
    // Nothing of /var/run exists in this image: no parent to keep either.
    let rec = recording(&[("/srv/static/new/cache.db", Use::Write, true)]);
    let set = select(&image(), &rec, &options);
    assert_eq!(set.paths[Path::new("srv/static")].reason, Reason::Directory);
    assert!(!set.not_in_image.contains(Path::new("/proc/self/status")));
}

#[test]
fn always_keep_groups_and_their_switches() {
    let rec = recording(&[]);
    let set = select(&image(), &rec, &Options::default());
    assert_eq!(set.paths[Path::new("etc/passwd")].reason, Reason::Users);
    assert_eq!(
        set.paths[Path::new("etc/protocols")].reason,
        Reason::NameResolution
    );
    assert_eq!(set.paths[Path::new("tmp")].reason, Reason::TempDirs);
    let mut options = Options::default();
    options.skip_groups.insert(KeepGroup::Users);
    let set = select(&image(), &rec, &options);
    assert!(!set.paths.contains_key(Path::new("etc/passwd")));
}

#[test]
fn includes_and_excludes() {
    let rec = recording(&[("/etc/app.conf", Use::Read, true)]);
    let options = Options {
        include_paths: vec!["/srv".into()],
        include_exes: vec!["app".into()],
        exclude_patterns: vec!["/srv/**/*.js".into()],
        skip_groups: KeepGroup::ALL.iter().copied().collect(),
        ..Default::default()
    };
    let set = select(&image(), &rec, &options);
    let paths = kept(&set);
    assert!(paths.contains("srv/static/a.css"));
    assert!(!paths.contains("srv/static/b.js"));
    assert!(set.excluded.contains(Path::new("srv/static/b.js")));
    assert_eq!(
        set.paths[Path::new("usr/bin/app")].reason,
        Reason::IncludeExe
    );
}

#[test]
fn summary_counts_removed_bytes_per_top_directory() {
    let rec = recording(&[
        ("/usr/bin/app", Use::Exec, true),
        ("/etc/app.conf", Use::Read, true),
    ]);
    let options = Options {
        skip_groups: KeepGroup::ALL.iter().copied().collect(),
        ..Default::default()
    };
    let tree = image();
    let set = select(&tree, &rec, &options);
    let summary = summarize(&tree, &set);
    assert_eq!(summary.opened_bytes, 105);
    assert_eq!(summary.removed_by_dir["/usr"], (3, 1000));
    assert_eq!(summary.kept_by_reason[&Reason::Executed], 1);
    // The largest kept files, biggest first, with their reasons.
    let largest: Vec<(&str, u64, &str)> = summary
        .largest
        .iter()
        .map(|f| (f.path.as_str(), f.bytes, f.reason.as_str()))
        .collect();
    assert_eq!(
        largest,
        [
            ("/usr/bin/app", 100, "executed"),
            ("/etc/app.conf", 5, "opened")
        ]
    );
}

/// An image with a database's data directory and a few system files around it.
fn database_image() -> FileTree {
    let mut tree = image();
    for (path, kind, size) in [
        ("var", Kind::Dir, 0),
        ("var/lib", Kind::Dir, 0),
        ("var/lib/db", Kind::Dir, 0),
        ("var/lib/db/15", Kind::Dir, 0),
        ("var/lib/db/15/data", Kind::Dir, 0),
        ("var/lib/db/15/data/base", Kind::Dir, 0),
        ("var/lib/db/15/data/base/1", Kind::File, 8192),
        ("var/lib/db/15/data/base/2", Kind::File, 8192),
        ("var/lib/db/15/data/global", Kind::Dir, 0),
        ("var/lib/db/15/data/global/2676", Kind::File, 16384),
        ("var/lib/db/15/data/pg_wal", Kind::Dir, 0),
        ("var/lib/db/15/README", Kind::File, 100),
        ("var/lib/other", Kind::Dir, 0),
        ("var/lib/other/big", Kind::File, 1 << 20),
        ("var/log", Kind::Dir, 0),
        ("var/log/app", Kind::Dir, 0),
        ("var/log/app/old.log", Kind::File, 500),
    ] {
        tree.entries
            .insert(PathBuf::from(path), entry(kind, None, size));
    }
    tree
}

#[test]
fn a_tree_the_app_writes_state_in_is_kept_whole_and_nothing_around_it() {
    let mut rec = recording(&[
        ("/var/lib/db/15/data/base/1", Use::Write, true),
        ("/var/lib/db/15/data/pg_wal/000001", Use::Write, true),
        ("/var/log/app/new.log", Use::Write, true),
        ("/etc/app.conf", Use::Write, true),
        ("/tmp/scratch", Use::Write, true),
    ]);
    rec.paths
        .get_mut(Path::new("/var/lib/db/15/data/base/1"))
        .unwrap()
        .writers
        .insert("postgres".into());
    let set = select(&database_image(), &rec, &Options::default());
    assert_eq!(set.state.len(), 1, "{:?}", set.state);
    let state = &set.state[0];
    assert_eq!(state.root, "/var/lib/db/15/data");
    assert_eq!(state.writers, ["postgres"]);
    assert_eq!((state.written, state.created), (1, 1));
    assert_eq!(state.bytes, 8192 * 2 + 16384);
    // Never opened, kept as part of the state.
    let index = &set.paths[Path::new("var/lib/db/15/data/global/2676")];
    assert_eq!(index.reason, Reason::State);
    assert_eq!(index.why.to_string(), "written by postgres: kept whole");
    assert!(set
        .paths
        .contains_key(Path::new("var/lib/db/15/data/base/2")));
    // Not swallowed: the package's other files, other apps' state, system trees.
    for outside in [
        "var/lib/db/15/README",
        "var/lib/other/big",
        "var/log/app/old.log",
    ] {
        assert!(!set.paths.contains_key(Path::new(outside)), "{outside}");
    }
    // The rule can be switched off, and its files excluded.
    let off = Options {
        skip_groups: [KeepGroup::State].into(),
        ..Default::default()
    };
    let set = select(&database_image(), &rec, &off);
    assert!(set.state.is_empty());
    assert!(!set
        .paths
        .contains_key(Path::new("var/lib/db/15/data/global/2676")));
    let excluded = Options {
        exclude_patterns: vec!["/var/lib/db/15/data/global/**".into()],
        ..Default::default()
    };
    let set = select(&database_image(), &rec, &excluded);
    assert!(!set
        .paths
        .contains_key(Path::new("var/lib/db/15/data/global/2676")));
}

#[test]
fn a_declared_volume_is_kept_whole() {
    let options = Options {
        image_volumes: vec!["/var/lib/other".into()],
        ..Default::default()
    };
    let set = select(&database_image(), &recording(&[]), &options);
    assert_eq!(
        set.paths[Path::new("var/lib/other/big")].reason,
        Reason::Volume
    );
}

/// An image with the NSS modules, both loaders, and `usr/bin/app` holding `app`.
fn nss_image(scratch: &crate::image::testutil::Scratch, app: &[u8]) -> FileTree {
    use crate::image::testutil::{layer, Member::*};
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("etc/"),
        File("etc/protocols", b"ip 0 IP\n"),
        Dir("usr/"),
        Dir("usr/bin/"),
        File("usr/bin/app", app),
        Dir("lib/"),
        File("lib/ld-musl.so.1", b"\x7fELF musl"),
        Dir("lib64/"),
        File("lib64/ld-linux-x86-64.so.2", b"\x7fELF ld.so"),
        Dir("lib/x86_64-linux-gnu/"),
        File("lib/x86_64-linux-gnu/libnss_files.so.2", b"\x7fELF nss"),
        File("lib/x86_64-linux-gnu/libresolv.so.2", b"\x7fELF resolv"),
    ])]);
    crate::image::flatten::flatten(sources, &refs).unwrap().0
}

#[test]
fn nss_modules_are_kept_only_for_a_program_glibc_loads() {
    use std::os::unix::ffi::OsStrExt as _;
    let scratch = crate::image::testutil::Scratch::new();
    let nss = Path::new("lib/x86_64-linux-gnu/libnss_files.so.2");
    // The recording has the program executed and its loader loaded, as production records
    // them: the loader is kept as touched (`interpreter x1`), which names no program; the rule
    // finds the program from the kept executables' ELF headers, not from any text.
    let run = |app: &[u8], loader: &str| {
        let tree = nss_image(&scratch, app);
        let rec = recording(&[
            ("/usr/bin/app", Use::Exec, true),
            (loader, Use::Interpreter, true),
        ]);
        select(&tree, &rec, &Options::default())
    };
    // A static executable (no interpreter): the name-resolution config stays, no NSS module.
    let set = run(b"\x7fELF static, no program headers", "/lib/ld-musl.so.1");
    assert_eq!(
        set.paths[Path::new("etc/protocols")].reason,
        Reason::NameResolution
    );
    assert!(!set.paths.contains_key(nss));
    // A program glibc's loader runs (this host's /bin/sh) is named by its path.
    let glibc = std::fs::read("/bin/sh").expect("/bin/sh");
    let set = run(&glibc, "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(set.paths[nss].reason, Reason::NameResolution);
    let loader = &set.paths[Path::new("lib64/ld-linux-x86-64.so.2")];
    assert_eq!(loader.reason, Reason::Interpreter);
    assert_eq!(
        loader.why,
        Why::Touched {
            uses: vec![Use::Interpreter],
            count: 1
        }
    );
    assert_eq!(loader.why.to_string(), "interpreter x1");
    assert_eq!(
        set.paths[nss].why,
        Why::NssOf {
            program: PathBuf::from("/usr/bin/app")
        }
    );
    assert_eq!(
        set.paths[nss].why.to_string(),
        "needed by /usr/bin/app (glibc NSS)"
    );
    // The same program linked against musl's loader: no NSS module.
    let head = &glibc[..glibc.len().min(crate::elf::HEAD_LEN)];
    let Some(crate::elf::Interpreter::Elf(loader)) = crate::elf::interpreter(head) else {
        panic!("/bin/sh has no ELF interpreter");
    };
    let loader = loader.as_os_str().as_bytes();
    let at = glibc
        .windows(loader.len())
        .position(|w| w == loader)
        .unwrap();
    let mut musl = glibc.clone();
    let mut name = b"/lib/ld-musl.so.1".to_vec();
    name.resize(loader.len(), 0);
    musl[at..at + loader.len()].copy_from_slice(&name);
    assert!(!run(&musl, "/lib/ld-musl.so.1").paths.contains_key(nss));
}

#[test]
fn python_modules_imported_by_literal_name_are_kept_where_python_finds_them() {
    use crate::image::testutil::{layer, Member::*, Scratch};
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("app/"),
        File(
            "app/app.py",
            b"import os\ndef handler(name):\n    import json\n    from csv import reader\n    \
              return importlib.import_module(name)\n# import smtplib\n",
        ),
        Dir("usr/"),
        Dir("usr/lib/"),
        Dir("usr/lib/python3.11/"),
        File(
            "usr/lib/python3.11/os.py",
            b"import sys\ndef helper():\n    import smtplib\n",
        ),
        File("usr/lib/python3.11/re.py", b""),
        File("usr/lib/python3.11/csv.py", b"from _csv import Error\n"),
        File("usr/lib/python3.11/smtplib.py", b""),
        Dir("usr/lib/python3.11/json/"),
        File(
            "usr/lib/python3.11/json/__init__.py",
            b"from .decoder import JSONDecoder\ndef load():\n    import json.scanner\n",
        ),
        File("usr/lib/python3.11/json/scanner.py", b""),
        File("usr/lib/python3.11/json/decoder.py", b"import re\n"),
        File("usr/lib/python3.11/json/tool.py", b""),
        Dir("usr/lib/python3.11/json/__pycache__/"),
        File(
            "usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc",
            b"pyc",
        ),
        Dir("usr/lib/python3.11/lib-dynload/"),
        File(
            "usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
            b"\x7fELF csv",
        ),
    ])]);
    let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
    let rec = recording(&[
        ("/app/app.py", Use::Read, true),
        ("/usr/lib/python3.11/os.py", Use::Read, true),
    ]);
    let options = Options {
        static_imports: true,
        ..Options::default()
    };
    let set = select(&tree, &rec, &options);
    let lib = Path::new("usr/lib/python3.11");
    for kept in [
        "json/__init__.py",
        "json/decoder.py",
        "json/scanner.py",
        "json/__pycache__/__init__.cpython-311.pyc",
        "re.py",
        "csv.py",
        "lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
    ] {
        let path = lib.join(kept);
        assert_eq!(
            set.paths.get(&path).map(|k| k.reason),
            Some(Reason::StaticImport),
            "{kept}"
        );
    }
    assert_eq!(
        set.paths[&lib.join("json/__init__.py")].why.to_string(),
        "imported by /app/app.py (static)"
    );
    assert_eq!(
        set.paths[&lib.join("json/decoder.py")].why.to_string(),
        "imported by /usr/lib/python3.11/json/__init__.py (static)"
    );
    // Not named (json.tool), or named only in a comment of the app and in a function of the
    // standard library importing another package (os's helper, smtplib): left out; a
    // standard-library function importing its own package (json.scanner) is followed.
    assert!(!set.paths.contains_key(&lib.join("json/tool.py")));
    assert!(!set.paths.contains_key(&lib.join("smtplib.py")));
    assert_eq!(set.dynamic_imports, ["/app/app.py:5 import_module(...)"]);
    // Each file the closure kept is counted for the runtime whose imports named it.
    assert_eq!(
        set.imported_for[&lib.join("json/decoder.py")],
        "python",
        "{:?}",
        set.imported_for
    );
    // Off: only what the recording saw.
    let off = select(&tree, &rec, &Options::default());
    assert!(!off.paths.contains_key(&lib.join("json/__init__.py")));
}

#[test]
fn modules_frozen_into_python_3_11_are_followed_but_not_kept() {
    use crate::image::testutil::{layer, Member::*, Scratch};
    let run = |version: &str| {
        let scratch = Scratch::new();
        let lib = format!("usr/lib/{version}/");
        let file = |name: &str| format!("{lib}{name}");
        let (sources, refs) = scratch.layers(&[layer(&[
            Dir("app/"),
            File("app/app.py", b"import posixpath\n"),
            Dir("usr/"),
            Dir("usr/lib/"),
            Dir(&lib),
            File(&file("os.py"), b""),
            File(
                &file("posixpath.py"),
                b"import genericpath\nimport fnmatch\n",
            ),
            File(&file("genericpath.py"), b""),
            File(&file("fnmatch.py"), b""),
        ])]);
        let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
        let rec = recording(&[
            ("/app/app.py", Use::Read, true),
            (&format!("/{lib}os.py"), Use::Read, true),
        ]);
        let options = Options {
            static_imports: true,
            ..Options::default()
        };
        let set = select(&tree, &rec, &options);
        ["posixpath.py", "genericpath.py", "fnmatch.py"]
            .map(|name| set.paths.contains_key(&PathBuf::from(file(name))))
    };
    // 3.11: posixpath and genericpath run from the interpreter; fnmatch, which posixpath
    // imports, is read from its file.
    assert_eq!(run("python3.11"), [false, false, true]);
    assert_eq!(run("python3.10"), [true, true, true]);
}

#[test]
fn ruby_files_required_by_literal_name_are_kept_where_ruby_finds_them() {
    use crate::image::testutil::{layer, Member::*, Scratch};
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("app/"),
        File(
            "app/app.rb",
            b"require 'socket'\ndef handler\n  require 'json'\nend\nrequire_relative 'helper'\n\
              # require 'net/smtp'\nrequire \"plugins/#{name}\"\n",
        ),
        File("app/helper.rb", b""),
        Dir("usr/"),
        Dir("usr/lib/"),
        Dir("usr/lib/ruby/"),
        Dir("usr/lib/ruby/3.1.0/"),
        File("usr/lib/ruby/3.1.0/rubygems.rb", b""),
        File(
            "usr/lib/ruby/3.1.0/json.rb",
            b"require 'json/common'\nrequire 'json/ext'\n",
        ),
        Dir("usr/lib/ruby/3.1.0/json/"),
        File(
            "usr/lib/ruby/3.1.0/json/common.rb",
            b"def mail\n  require 'net/smtp'\nend\n",
        ),
        File(
            "usr/lib/ruby/3.1.0/json/ext.rb",
            b"require 'json/ext/parser'\n",
        ),
        Dir("usr/lib/ruby/3.1.0/net/"),
        File("usr/lib/ruby/3.1.0/net/smtp.rb", b""),
        Dir("usr/lib/x86_64-linux-gnu/"),
        Dir("usr/lib/x86_64-linux-gnu/ruby/"),
        Dir("usr/lib/x86_64-linux-gnu/ruby/3.1.0/"),
        File("usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb", b""),
        Dir("usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/"),
        Dir("usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/"),
        File(
            "usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/parser.so",
            b"\x7fELF parser",
        ),
    ])]);
    let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
    let rec = recording(&[
        ("/app/app.rb", Use::Read, true),
        ("/usr/lib/ruby/3.1.0/rubygems.rb", Use::Read, true),
        (
            "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb",
            Use::Read,
            true,
        ),
    ]);
    let options = Options {
        static_imports: true,
        ..Options::default()
    };
    let set = select(&tree, &rec, &options);
    for kept in [
        "app/helper.rb",
        "usr/lib/ruby/3.1.0/json.rb",
        "usr/lib/ruby/3.1.0/json/common.rb",
        "usr/lib/ruby/3.1.0/json/ext.rb",
        "usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/parser.so",
    ] {
        assert_eq!(
            set.paths.get(Path::new(kept)).map(|k| k.reason),
            Some(Reason::StaticImport),
            "{kept}"
        );
    }
    assert_eq!(
        set.paths[Path::new("usr/lib/ruby/3.1.0/json/common.rb")]
            .why
            .to_string(),
        "required by /usr/lib/ruby/3.1.0/json.rb (static)"
    );
    // Only in a comment of the app, and in a method of Ruby's library: left out.
    assert!(!set
        .paths
        .contains_key(Path::new("usr/lib/ruby/3.1.0/net/smtp.rb")));
    assert_eq!(
        set.dynamic_imports,
        ["/app/app.rb:7 require of a computed name"]
    );
}

#[test]
fn node_modules_required_by_literal_name_are_kept_where_node_finds_them() {
    use crate::image::testutil::{layer, Member::*, Scratch};
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("app/"),
        File(
            "app/app.js",
            b"const http = require('node:http');\nconst fs = require('fs');\n\
              function handler() {\n  return require('./lib/check');\n}\n\
              // require('commented')\nconst p = require(`./plugins/${name}`);\n\
              import('esm-only');\nrequire('missing');\nrequire('from-node-path');\n",
        ),
        Dir("app/lib/"),
        File(
            "app/lib/check.js",
            b"const semver = require('semver');\nconst sub = require('@scope/pkg/feature');\n\
              require('../data.json');\nrequire('../../../etc/../../etc/app-secret');\n",
        ),
        File("app/data.json", b"{}"),
        Dir("app/node_modules/"),
        Dir("app/node_modules/@scope/"),
        Dir("app/node_modules/@scope/pkg/"),
        File(
            "app/node_modules/@scope/pkg/package.json",
            br#"{"exports": {".": "./main.js", "./feature": {"import": "./f.mjs", "require": "./f.cjs"}}}"#,
        ),
        File("app/node_modules/@scope/pkg/main.js", b""),
        File("app/node_modules/@scope/pkg/f.mjs", b""),
        File("app/node_modules/@scope/pkg/f.cjs", b"require('./native.node')\n"),
        File("app/node_modules/@scope/pkg/native.node", b"\x7fELF addon"),
        Dir("app/node_modules/esm-only/"),
        File(
            "app/node_modules/esm-only/package.json",
            b"{\"type\": \"module\", \"main\": \"dist\"",
        ),
        File("app/node_modules/esm-only/index.js", b""),
        Dir("usr/"),
        Dir("usr/share/"),
        Dir("usr/share/nodejs/"),
        Dir("usr/share/nodejs/semver/"),
        File(
            "usr/share/nodejs/semver/package.json",
            br#"{"main": "index.js"}"#,
        ),
        File(
            "usr/share/nodejs/semver/index.js",
            b"const Range = require('./classes/range')\n",
        ),
        Dir("usr/share/nodejs/semver/classes/"),
        File(
            "usr/share/nodejs/semver/classes/range.js",
            b"const LRU = require('lru-cache')\n",
        ),
        File("usr/share/nodejs/semver/functions.js", b""),
        Symlink("usr/share/nodejs/lru-cache", "../../lib/nodejs/lru-cache"),
        Dir("usr/lib/"),
        Dir("usr/lib/nodejs/"),
        Dir("usr/lib/nodejs/lru-cache/"),
        File("usr/lib/nodejs/lru-cache/index.js", b""),
        Dir("usr/share/nodejs/commented/"),
        File("usr/share/nodejs/commented/index.js", b""),
        Dir("etc/"),
        File("etc/app-secret", b"root"),
        Dir("opt/"),
        Dir("opt/mods/"),
        File("opt/mods/from-node-path.js", b""),
    ])]);
    let tree = crate::image::flatten::flatten(sources, &refs).unwrap().0;
    let rec = recording(&[("/app/app.js", Use::Read, true)]);
    let options = Options {
        static_imports: true,
        env: vec!["NODE_PATH=/nowhere:/opt/mods".into()],
        ..Options::default()
    };
    let set = select(&tree, &rec, &options);
    for kept in [
        "app/lib/check.js",
        "app/data.json",
        "app/node_modules/@scope/pkg/package.json",
        "app/node_modules/@scope/pkg/f.mjs",
        "app/node_modules/@scope/pkg/f.cjs",
        "app/node_modules/@scope/pkg/native.node",
        "app/node_modules/esm-only/package.json",
        "app/node_modules/esm-only/index.js",
        "usr/share/nodejs/semver/package.json",
        "usr/share/nodejs/semver/index.js",
        "usr/share/nodejs/semver/classes/range.js",
        "usr/lib/nodejs/lru-cache/index.js",
        "opt/mods/from-node-path.js",
    ] {
        assert_eq!(
            set.paths.get(Path::new(kept)).map(|k| k.reason),
            Some(Reason::StaticImport),
            "{kept}"
        );
    }
    assert_eq!(
        set.paths[Path::new("app/lib/check.js")].why.to_string(),
        "imported by /app/app.js (static)"
    );
    assert_eq!(
        set.paths[Path::new("usr/lib/nodejs/lru-cache/index.js")]
            .why
            .to_string(),
        "imported by /usr/share/nodejs/semver/classes/range.js (static)"
    );
    assert_eq!(
        set.paths
            .get(Path::new("usr/share/nodejs/lru-cache"))
            .map(|k| k.reason),
        Some(Reason::Symlink)
    );
    // Not named (main.js: only "./feature" is), only in a comment, outside the root, or a
    // package's file nobody requires: left out.
    for left in [
        "app/node_modules/@scope/pkg/main.js",
        "usr/share/nodejs/commented/index.js",
        "usr/share/nodejs/semver/functions.js",
        "etc/app-secret",
    ] {
        assert!(!set.paths.contains_key(Path::new(left)), "{left}");
    }
    assert_eq!(
        set.dynamic_imports,
        ["/app/app.js:7 require of a computed name"]
    );
    let off = select(&tree, &rec, &Options::default());
    assert!(!off.paths.contains_key(Path::new("app/lib/check.js")));
}
