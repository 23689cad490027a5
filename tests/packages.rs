//! Scanners can still read the slim image: its dpkg database lists exactly the packages that
//! keep a file (checked with dpkg itself on the exported image), cut to their kept files
//! (`dpkg --verify` finds none missing), and `sbom.spdx.json` lists the same packages and
//! validates with the SPDX project's own tool.

mod support;

use std::{collections::BTreeSet, path::Path, process::Command};

use support::*;

/// The image's file system, exported into `dir`.
fn export(image: &str, dir: &Path) {
    let container = docker(&["create", image, "/nothing"]);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker export {container} | tar -x -C '{}'",
            dir.display()
        ))
        .status()
        .unwrap();
    docker(&["rm", &container]);
    assert!(status.success(), "docker export {image}");
}

fn lines(out: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `dpkg-query -W` of an exported root: the installed package names.
fn dpkg_packages(root: &Path) -> BTreeSet<String> {
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
        .args(["-W", "-f", "${Package}\\n"])
        .output()
        .expect("dpkg-query runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

fn pyspdxtools() -> std::path::PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let tool = Path::new(&home).join(".cache/slim/spdx-tools/bin/pyspdxtools");
    assert!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup`",
        tool.display()
    );
    tool
}

fn names(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().or(p["name"].as_str()).unwrap().to_owned())
        .collect()
}

fn check_app(app: &str, probes: &str) {
    let fat = app_image(app);
    let tag = format!("slim-test/{app}.slim:packages");
    let _image = Image(tag.clone());
    let out = TempDir::new(&format!("packages-{app}"));
    let built = slim()
        .args(["build", "--http-probe-cmd-file"])
        .arg(probe_file(probes))
        .args(["--tag", &tag, "--output-dir"])
        .arg(&out.0)
        .arg(&fat)
        .output()
        .unwrap();
    assert_success(&built);
    let stderr = String::from_utf8_lossy(&built.stderr);
    let report = read_report(&out.0);
    let packages = &report["packages"];
    assert_eq!(packages["database"], "dpkg");
    let kept = names(&packages["kept"]);
    let removed = names(&packages["removed"]);
    let counts = &packages["counts"];
    let line = format!(
        "packages: {} kept ({} partly), {} removed",
        counts["kept"], counts["partly"], counts["removed"]
    );
    assert!(stderr.contains(&line), "{stderr}");
    assert!(!kept.is_empty() && !removed.is_empty(), "{packages}");
    assert!(kept.is_disjoint(&removed));

    // Every installed package of the fat image is either kept or removed.
    let fat_root = TempDir::new(&format!("packages-{app}-fat"));
    export(&fat, &fat_root.0);
    let fat_packages = dpkg_packages(&fat_root.0);
    let accounted: BTreeSet<String> = kept.union(&removed).cloned().collect();
    assert_eq!(accounted, fat_packages);
    drop(fat_root);

    // dpkg itself, on the exported slim image: exactly the kept packages, none missing a file.
    let root = TempDir::new(&format!("packages-{app}-slim"));
    export(&tag, &root.0);
    assert_eq!(dpkg_packages(&root.0), kept);
    let verify = Command::new("dpkg")
        .arg(format!("--root={}", root.0.display()))
        .arg("--verify")
        .output()
        .unwrap();
    let verified = String::from_utf8_lossy(&verify.stdout).into_owned()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{verified}");
    assert!(!verified.contains("missing"), "{verified}");
    assert!(root.0.join("etc/os-release").exists());

    // The SBOM: the same packages, the slim image as described element, valid SPDX.
    let sbom_path = out.0.join("sbom.spdx.json");
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    let image_id = image_id(&tag);
    let described = &sbom["packages"][0];
    assert_eq!(described["SPDXID"], "SPDXRef-Image");
    assert_eq!(
        described["checksums"][0]["checksumValue"],
        image_id.trim_start_matches("sha256:")
    );
    let listed: BTreeSet<String> = sbom["packages"].as_array().unwrap()[1..]
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, kept);
    let arch = docker(&["image", "inspect", "--format", "{{.Architecture}}", &fat]);
    for package in &sbom["packages"].as_array().unwrap()[1..] {
        let purl = package["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap();
        assert!(purl.starts_with("pkg:deb/debian/"), "{purl}");
        assert!(purl.contains("&distro=debian-12"), "{purl}");
        assert!(
            purl.contains(&format!("arch={arch}")) || purl.contains("arch=all"),
            "{purl}"
        );
    }
    let validated = Command::new(pyspdxtools())
        .arg("-i")
        .arg(&sbom_path)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    eprintln!("{app}: {line} (of {} in the fat image)", fat_packages.len());
}

#[test]
fn python_image_keeps_a_pruned_dpkg_database_and_an_sbom() {
    if !is_root("python_image_keeps_a_pruned_dpkg_database_and_an_sbom") {
        return;
    }
    let _serial = serial();
    check_app("python-http", "python-http.json");
}

#[test]
fn nginx_image_keeps_a_pruned_dpkg_database_and_an_sbom() {
    if !is_root("nginx_image_keeps_a_pruned_dpkg_database_and_an_sbom") {
        return;
    }
    let _serial = serial();
    check_app("nginx", "nginx.json");
}

#[test]
fn package_db_full_and_none() {
    if !is_root("package_db_full_and_none") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let fat_root = TempDir::new("packages-full-fat");
    export(&fat, &fat_root.0);
    let fat_packages = dpkg_packages(&fat_root.0);
    for mode in ["full", "none"] {
        let tag = format!("slim-test/python-http.slim:db-{mode}");
        let _image = Image(tag.clone());
        let out = TempDir::new(&format!("packages-{mode}"));
        let built = slim()
            .args(["build", "--no-verify", "--package-db", mode, "--tag", &tag])
            .arg("--output-dir")
            .arg(&out.0)
            .arg(&fat)
            .output()
            .unwrap();
        assert_success(&built);
        let root = TempDir::new(&format!("packages-{mode}-slim"));
        export(&tag, &root.0);
        let report = read_report(&out.0);
        if mode == "full" {
            assert_eq!(dpkg_packages(&root.0), fat_packages);
            assert_eq!(report["packages"]["mode"], "full");
        } else {
            assert!(!root.0.join("var/lib/dpkg/status").exists());
            assert!(report.get("packages").is_none());
            assert!(!out.0.join("sbom.spdx.json").exists());
        }
    }
}
