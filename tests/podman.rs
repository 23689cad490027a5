//! slim driven through Podman's Docker-compatible API (`podman system service`, which
//! `cargo xtask setup` starts): the image is recorded, slimmed and loaded into Podman, verified
//! under its seccomp profile with Podman's own runtime, and nothing of the run is left in
//! Podman or in the temp dir afterwards; `slim trace --container` records a Podman container.

mod support;

use std::process::{Command, Stdio};

use support::*;

const PODMAN_HOST: &str = "unix:///run/podman/podman.sock";

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs (cargo xtask setup installs it)")
}

/// Removes these Podman images when dropped.
struct PodmanImages(Vec<String>);

impl Drop for PodmanImages {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = podman(&["rmi", "-f", image]);
        }
    }
}

/// Removes this Podman container when dropped.
struct PodmanContainer(String);

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", &self.0]);
    }
}

/// Hands a Docker image to Podman: `docker save | podman load` (no registry here).
fn load_into_podman(image: &str) {
    let mut save = Command::new("docker")
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let load = Command::new("podman")
        .args(["load", "-q"])
        .stdin(save.stdout.take().expect("save's output"))
        .output()
        .expect("podman load");
    assert!(save.wait().expect("docker save ends").success());
    assert!(
        load.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
}

#[test]
fn python_http_is_slimmed_and_verified_through_podman() {
    if !is_root("python_http_is_slimmed_and_verified_through_podman") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    load_into_podman(&fat);
    let tag = "slim-test/python-http.slim:podman";
    let _images = PodmanImages(vec![
        tag.into(),
        format!("{tag}-unverified"),
        format!("localhost/{fat}"),
    ]);
    let out_dir = TempDir::new("podman");
    let temp_before = seccomp_temp_files();
    let out = slim()
        .env("DOCKER_HOST", PODMAN_HOST)
        .args(["build", "--http-probe-cmd-file"])
        .arg(probe_file("python-http.json"))
        .args(["--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        .arg(&fat)
        .output()
        .unwrap();
    assert_success(&out);
    let report = read_report(&out_dir.0);
    assert_eq!(report["target"]["engine"], "podman", "{}", report["target"]);
    let verify = &report["verify"];
    assert_eq!(
        verify["failed"].as_array().map(Vec::len),
        Some(0),
        "{verify}"
    );
    assert!(verify["probes"].as_u64().unwrap_or(0) >= 3, "{verify}");
    assert_eq!(verify["matched"], verify["probes"]);
    assert_eq!(verify["under"], verified_under());
    assert_eq!(report["recorder"]["lost"], 0);

    // The slim image is Podman's now, and answers under its profile with Podman's runtime.
    assert!(podman(&["image", "exists", tag]).status.success());
    let seccomp = out_dir.0.join("seccomp.json");
    let run = podman(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1::8000",
        "--security-opt",
        &format!("seccomp={}", seccomp.display()),
        tag,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let container = PodmanContainer(String::from_utf8_lossy(&run.stdout).trim().to_owned());
    let port_line =
        String::from_utf8_lossy(&podman(&["port", &container.0, "8000/tcp"]).stdout).into_owned();
    let port: u16 = port_line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port in {port_line:?}"));
    let (status, _) = http_get(port, "/about.html");
    assert!(status.contains(" 200 "), "{status}");
    drop(container);

    // Nothing of the run is left: no container slim started, no profile file it wrote.
    let left = podman(&["ps", "-aq", "--filter", "label=slim.run=true"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "containers left in Podman: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert_eq!(
        seccomp_temp_files(),
        temp_before,
        "seccomp files left in the temp dir"
    );
}

#[test]
fn a_podman_container_is_traced_by_its_mount_namespace() {
    if !is_root("a_podman_container_is_traced_by_its_mount_namespace") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    load_into_podman(&fat);
    let _images = PodmanImages(vec![format!("localhost/{fat}")]);
    let name = format!("slim-test-trace-podman-{}", std::process::id());
    let run = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        &fat,
        "sh",
        "-c",
        "while true; do cat /etc/debian_version >/dev/null; sleep 0.1; done",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let _container = PodmanContainer(name.clone());
    let mut trace = slim();
    trace
        .env("DOCKER_HOST", PODMAN_HOST)
        .args(["trace", "--json", "--container", &name]);
    let trace = trace_until_interrupted(trace, || {
        std::thread::sleep(std::time::Duration::from_millis(1500))
    });
    let paths = found_paths(&trace);
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/etc/debian_version" && u.contains(&"read".to_owned())),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/usr/bin/cat" && u.contains(&"exec".to_owned())),
        "{paths:?}"
    );
    assert_eq!(trace["recorder"]["lost"], 0);
}

/// The seccomp profile files slim writes for Podman, in the temp dir.
fn seccomp_temp_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("slim-seccomp-"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
