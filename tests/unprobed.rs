//! Slim images that survive what the probes did not exercise, end to end.
//!
//! - A Python web app whose handlers import their modules when first called (json, a package's
//!   submodule through `from xml.dom import minidom`, decimal with its C extension and its pure
//!   Python fallback): recorded with "/" alone, its held-out endpoints answer like the fat
//!   image's, because the static import closure kept what the handlers name. With the closure
//!   off, the same held-out check fails: the test proves the mechanism, not luck.

mod support;

use support::*;

/// `slim build` of python-lazy probed on "/" and checked on the held-out endpoints.
fn build_lazy(tag: &str, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let image = app_image("python-lazy");
    slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(out)
        .arg("--http-probe-cmd-file")
        .arg(probe_file("python-lazy.json"))
        .arg("--verify-probe-file")
        .arg(probe_file("python-lazy-held-out.json"))
        .args(extra)
        .arg(&image)
        .output()
        .unwrap()
}

#[test]
fn lazily_imported_python_modules_answer_held_out_endpoints() {
    if !is_root("lazily_imported_python_modules_answer_held_out_endpoints") {
        return;
    }
    let _serial = serial();
    let out = TempDir::new("unprobed-python");
    let tag = "slim-test/python-lazy.slim:unprobed";
    let _image = Image(tag.to_owned());
    let built = build_lazy(tag, &out.0, &[]);
    assert_success(&built);
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    let kept = &report["kept"];
    assert!(
        kept["static-import"].as_u64().unwrap_or(0) > 0,
        "nothing kept by the closure: {kept}"
    );
    assert!(report["kept_bytes"]["static-import"].as_u64().unwrap_or(0) > 0);
    let files = std::fs::read_to_string(out.0.join("files.txt")).unwrap();
    for module in ["json/__init__.py", "xml/dom/minidom.py", "decimal.py"] {
        let line = files
            .lines()
            .find(|l| l.contains(&format!("/usr/lib/python3.11/{module}")))
            .unwrap_or_else(|| panic!("{module} not in files.txt"));
        assert!(line.contains("static"), "{line}");
    }

    // Off: the held-out endpoints fail on the slim image, and it is not tagged.
    let off_out = TempDir::new("unprobed-python-off");
    let off_tag = "slim-test/python-lazy.slim:unprobed-off";
    let _off_image = Image(off_tag.to_owned());
    let _unverified = Image(format!("{off_tag}-unverified"));
    let off = build_lazy(off_tag, &off_out.0, &["--static-imports", "off"]);
    assert_eq!(
        off.status.code(),
        Some(3),
        "held-out endpoints passed without the closure:\n{}",
        String::from_utf8_lossy(&off.stdout)
    );
    assert!(slim_containers().is_empty(), "containers left behind");
}
