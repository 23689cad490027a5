//! Slim images that survive what the probes did not exercise, end to end.
//!
//! - A Python web app whose handlers import their modules when first called (json, a package's
//!   submodule through `from xml.dom import minidom`, decimal with its C extension and its pure
//!   Python fallback): recorded with "/" alone, its held-out endpoints answer like the fat
//!   image's, because the static import closure kept what the handlers name. With the closure
//!   off, the same held-out check fails: the test proves the mechanism, not luck.
//! - The same for a Ruby app whose `/json` handler does `require 'json'` (json.rb, its
//!   json/*.rb files and its C extension, found in Ruby's library and architecture directories).
//! - The same for a Node app whose `/version` handler requires its own `./lib/check.js`, which
//!   requires Debian's `semver` (with `lru-cache`, another package) and `mime` from
//!   `/usr/share/nodejs`, and the `crypto` built-in.
//! - The same for a Perl app whose held-out handlers `require JSON::PP` (pure Perl) and
//!   `require Time::Piece` (with its XS library) inside subs, found in Debian's `@INC`.
//! - The same for a PHP app (`php -S`) whose held-out handler does
//!   `require_once __DIR__ . '/lib/render.php'` in a function, which includes `helpers.php` by
//!   a relative path.
//! - A failed held-out check explains itself: the files the held-out checks used on the fat
//!   image (recorded apart, not kept) and the slim image lacks are in `missing-paths.txt`, and
//!   the same build given that file (`--include-path-file`) passes.

mod support;

use support::*;

/// `slim build` of `app` probed with probes/APP.json and checked on probes/APP-held-out.json.
fn build_lazy(
    app: &str,
    tag: &str,
    out: &std::path::Path,
    extra: &[&str],
    file: Option<&std::path::Path>,
) -> std::process::Output {
    let image = app_image(app);
    slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(out)
        .arg("--http-probe-cmd-file")
        .arg(probe_file(&format!("{app}.json")))
        .arg("--verify-probe-file")
        .arg(probe_file(&format!("{app}-held-out.json")))
        .args(extra)
        .args(file)
        .arg(&image)
        .output()
        .unwrap()
}

/// Builds `app` with the closure (held-out endpoints must pass, `kept` files must be kept by
/// it) and without (they must fail: exit 3, nothing tagged).
fn held_out_endpoints_answer_only_with_the_closure(app: &str, kept: &[&str]) {
    let _serial = serial();
    let out = TempDir::new(&format!("unprobed-{app}"));
    let tag = format!("slim-test/{app}.slim:unprobed");
    let _image = Image(tag.clone());
    // A failed verification tags the image TAG-unverified: removed whatever the test's outcome.
    let _unverified_image = Image(format!("{tag}-unverified"));
    let built = build_lazy(app, &tag, &out.0, &[], None);
    assert_success(&built);
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    let by_reason = &report["kept"];
    assert!(
        by_reason["static-import"].as_u64().unwrap_or(0) > 0,
        "nothing kept by the closure: {by_reason}"
    );
    assert!(report["kept_bytes"]["static-import"].as_u64().unwrap_or(0) > 0);
    let files = std::fs::read_to_string(out.0.join("files.txt")).unwrap();
    for path in kept {
        let line = files
            .lines()
            .find(|l| l.starts_with(&format!("{path}\t")))
            .unwrap_or_else(|| panic!("{path} not in files.txt"));
        assert!(line.contains("\tstatic-import\t"), "{line}");
    }

    // Off: the held-out endpoints fail on the slim image, and it is not tagged.
    let off_out = TempDir::new(&format!("unprobed-{app}-off"));
    let off_tag = format!("slim-test/{app}.slim:unprobed-off");
    let _off_image = Image(off_tag.clone());
    let _unverified = Image(format!("{off_tag}-unverified"));
    let off = build_lazy(
        app,
        &off_tag,
        &off_out.0,
        &["--static-imports", "off", "--skip-keep", "app"],
        None,
    );
    assert_eq!(
        off.status.code(),
        Some(3),
        "held-out endpoints passed without the closure:\n{}",
        String::from_utf8_lossy(&off.stdout)
    );
    assert!(slim_containers().is_empty(), "containers left behind");

    // The failure names what the held-out checks used on the fat image and the slim one lacks,
    // in a file the build takes back as it is: with it, the same build passes.
    let stderr = String::from_utf8_lossy(&off.stderr);
    let missing_file = off_out.0.join("missing-paths.txt");
    assert!(
        stderr.contains(&format!("--include-path-file {}", missing_file.display())),
        "no hint to the missing paths file:\n{stderr}"
    );
    let missing = std::fs::read_to_string(&missing_file).unwrap();
    let named: Vec<&str> = missing.lines().filter(|l| !l.starts_with('#')).collect();
    for path in kept {
        // Named as the app used it: maybe through a symlink (Perl's 5.36 -> 5.36.0).
        let tail: Vec<&str> = path.rsplit('/').take(2).collect();
        let tail = format!("/{}/{}", tail[1], tail[0]);
        assert!(
            named.iter().any(|n| n.ends_with(&tail)),
            "{path} not in missing-paths.txt:\n{missing}"
        );
    }
    let fed_out = TempDir::new(&format!("unprobed-{app}-fed"));
    let fed_tag = format!("slim-test/{app}.slim:unprobed-fed");
    let _fed_image = Image(fed_tag.clone());
    let _fed_unverified = Image(format!("{fed_tag}-unverified"));
    let fed = build_lazy(
        app,
        &fed_tag,
        &fed_out.0,
        &[
            "--static-imports",
            "off",
            "--skip-keep",
            "app",
            "--include-path-file",
        ],
        Some(&missing_file),
    );
    assert_success(&fed);
    assert!(slim_containers().is_empty(), "containers left behind");
}

#[test]
fn lazily_imported_python_modules_answer_held_out_endpoints() {
    if !is_root("lazily_imported_python_modules_answer_held_out_endpoints") {
        return;
    }
    held_out_endpoints_answer_only_with_the_closure(
        "python-lazy",
        &[
            "/usr/lib/python3.11/json/__init__.py",
            "/usr/lib/python3.11/xml/dom/minidom.py",
            "/usr/lib/python3.11/decimal.py",
        ],
    );
}

#[test]
fn lazily_required_ruby_files_answer_held_out_endpoints() {
    if !is_root("lazily_required_ruby_files_answer_held_out_endpoints") {
        return;
    }
    held_out_endpoints_answer_only_with_the_closure(
        "ruby-lazy",
        &[
            "/usr/lib/ruby/3.1.0/json.rb",
            "/usr/lib/ruby/3.1.0/json/common.rb",
        ],
    );
}

#[test]
fn lazily_required_node_modules_answer_held_out_endpoints() {
    if !is_root("lazily_required_node_modules_answer_held_out_endpoints") {
        return;
    }
    held_out_endpoints_answer_only_with_the_closure(
        "node-lazy",
        &[
            "/app/lib/check.js",
            "/usr/share/nodejs/semver/index.js",
            "/usr/share/nodejs/semver/classes/range.js",
            "/usr/share/nodejs/lru-cache/index.js",
            "/usr/share/nodejs/mime/index.js",
            "/usr/share/nodejs/mime/package.json",
        ],
    );
}

#[test]
fn lazily_required_perl_modules_answer_held_out_endpoints() {
    if !is_root("lazily_required_perl_modules_answer_held_out_endpoints") {
        return;
    }
    held_out_endpoints_answer_only_with_the_closure(
        "perl-lazy",
        &[
            "/usr/share/perl/5.36.0/JSON/PP.pm",
            "/usr/lib/x86_64-linux-gnu/perl/5.36.0/Time/Piece.pm",
            "/usr/lib/x86_64-linux-gnu/perl/5.36.0/auto/Time/Piece/Piece.so",
        ],
    );
}

#[test]
fn lazily_included_php_files_answer_held_out_endpoints() {
    if !is_root("lazily_included_php_files_answer_held_out_endpoints") {
        return;
    }
    held_out_endpoints_answer_only_with_the_closure(
        "php-lazy",
        &["/app/lib/render.php", "/app/lib/helpers.php"],
    );
}
