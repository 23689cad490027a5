//! Registry in, registry out: a real registry (Debian's docker-registry) on 127.0.0.1, with
//! and without basic auth. The fat image is pushed there and removed from the engine under
//! that name; `slim build --push` pulls it, slims and verifies it, and pushes the slim image;
//! skopeo (an independent client) reads what was pushed, and the engine pulls it back. A
//! registry that is down, lacks the image or refuses the login is one line with a hint.

mod support;

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use support::*;

/// A registry serving on 127.0.0.1 from a temp dir; stopped and removed when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    /// Starts one; with `login`, it asks for that user and password (htpasswd, bcrypt).
    fn start(login: Option<(&str, &str)>) -> Self {
        let dir = TempDir::new("registry");
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, password)) = login {
            let htpasswd = dir.0.join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbc", htpasswd.to_str().unwrap(), user, password])
                .output()
                .expect("htpasswd (apache2-utils) runs");
            assert!(out.status.success(), "{out:?}");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: slim-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config = dir.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's package) runs");
        let registry = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `docker --config CONFIG ARGS`, asserting success.
fn docker_with(config: &Path, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Pushes the local `image` to `reference` and removes that name from the engine again.
fn put_in_registry(config: &Path, image: &str, reference: &str) {
    docker(&["tag", image, reference]);
    docker_with(config, &["push", "-q", reference]);
    docker(&["rmi", reference]);
}

/// `slim build ARGS` with the docker CLI config `config`.
fn slim_build(config: &Path, args: &[&str]) -> Output {
    slim()
        .arg("build")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `error: ` line and the hint of a failed run.
fn error_and_hint(out: &Output) -> (String, String) {
    let text = stderr(out);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    (line("error: "), line("hint: "))
}

#[test]
fn pulled_from_a_registry_slimmed_verified_and_pushed() {
    if !is_root("pulled_from_a_registry_slimmed_verified_and_pushed") {
        return;
    }
    let _serial = serial();
    let app = app_image("python-http");
    let registry = Registry::start(None);
    let host = registry.host();
    let config = TempDir::new("docker-config");
    let fat = format!("{host}/python-http:fat");
    let tag = format!("{host}/python-http:slim");
    let _fat = Image(fat.clone());
    let _slim = Image(tag.clone());
    put_in_registry(&config.0, &app, &fat);
    assert!(!image_present(&fat));

    let out_dir = TempDir::new("registry-out");
    let probes = probe_file("python-http.json");
    let out = slim_build(
        &config.0,
        &[
            "--output-dir",
            out_dir.0.to_str().unwrap(),
            "--http-probe-cmd-file",
            probes.to_str().unwrap(),
            "--tag",
            &tag,
            "--push",
            "--attach-profiles",
            "--format",
            "json",
            &fat,
        ],
    );
    assert_success(&out);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("pull      {fat} from {host}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("push      {tag} to {host}")),
        "{text}"
    );
    // `--format json`: one object on stdout, for scripts.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["pushed_to"], host.as_str(), "{summary}");
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(summary["slim"]["image"], tag.as_str());
    let files = summary["files"].as_array().unwrap();
    for name in [
        "report.json",
        "seccomp.json",
        "apparmor.profile",
        "files.txt",
    ] {
        assert!(
            files.iter().any(|f| f.as_str().unwrap().ends_with(name)),
            "{name} not listed: {summary}"
        );
    }
    let report = read_report(&out_dir.0);
    assert!(report["verify"]["failed"].as_array().unwrap().is_empty());
    let slim_id = report["slim"]["id"].as_str().unwrap().to_owned();
    assert_eq!(summary["slim"]["id"], slim_id.as_str());
    assert!(summary["ratio"].as_f64().unwrap() > 2.0, "{summary}");

    // An independent client reads the pushed image: one layer, amd64.
    let inspected = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .output()
        .expect("skopeo runs");
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(
        inspected["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspected}"
    );
    assert_eq!(inspected["Architecture"], "amd64");
    // The profiles and the SBOM travel with it: artifacts whose subject is its manifest.
    let (subject, _, _) = manifest_descriptor(&host, "python-http", "slim");
    let attached = referrers(&host, "python-http", &subject);
    assert_eq!(
        attached.keys().cloned().collect::<Vec<_>>(),
        [
            "application/spdx+json",
            "application/vnd.slim.security-profiles.v1"
        ]
    );
    let seccomp = &attached["application/vnd.slim.security-profiles.v1"]["seccomp.json"];
    assert_eq!(
        seccomp,
        &std::fs::read(out_dir.0.join("seccomp.json")).unwrap()
    );
    let sbom = &attached["application/spdx+json"]["sbom.spdx.json"];
    assert_eq!(
        sbom,
        &std::fs::read(out_dir.0.join("sbom.spdx.json")).unwrap()
    );

    // The engine pulls it back: the same image.
    docker(&["rmi", &tag]);
    docker_with(&config.0, &["pull", "-q", &tag]);
    assert_eq!(image_id(&tag), slim_id);
    eprintln!("pulled {fat}, pushed {tag} ({slim_id}), read back by skopeo and docker pull");
}

#[test]
fn a_registry_down_missing_the_image_or_refusing_the_login() {
    if !is_root("a_registry_down_missing_the_image_or_refusing_the_login") {
        return;
    }
    let _serial = serial();
    let app = app_image("python-http");
    let empty_config = TempDir::new("docker-config-empty");

    // Down: nothing listens there.
    let down = format!("127.0.0.1:{}/app:1", free_port());
    let out = slim_build(&empty_config.0, &["--pull=always", &down]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(error.contains(&format!("cannot pull {down}")), "{error}");
    assert!(hint.contains("is the registry up?"), "{hint}");
    assert!(!stderr(&out).contains("panicked"));

    // Up, without the image: the name is the user's to fix.
    let registry = Registry::start(Some(("slim", "s3cret")));
    let host = registry.host();
    let absent = format!("{host}/nothing:here");
    let login = TempDir::new("docker-config-login");
    docker_with(&login.0, &["login", "-u", "slim", "-p", "s3cret", &host]);
    let out = slim_build(&login.0, &[&absent]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let (error, _) = error_and_hint(&out);
    assert!(error.contains("is not in its registry"), "{error}");

    // The image there, behind a login slim does not have: refused, with what to run.
    let fat = format!("{host}/python-http:fat");
    let _fat = Image(fat.clone());
    put_in_registry(&login.0, &app, &fat);
    let out = slim_build(&empty_config.0, &[&fat]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(
        error.contains(&format!("{host} refused the pull")),
        "{error}"
    );
    assert!(hint.contains(&format!("docker login {host}")), "{hint}");
    assert!(!image_present(&fat));

    // With the login `docker login` wrote, the same build pulls and pushes.
    let tag = format!("{host}/python-http:slim");
    let _slim = Image(tag.clone());
    let out_dir = TempDir::new("registry-auth-out");
    let out = slim_build(
        &login.0,
        &[
            "--output-dir",
            out_dir.0.to_str().unwrap(),
            "--tag",
            &tag,
            "--push",
            &fat,
        ],
    );
    assert_success(&out);
    docker(&["rmi", &tag]);
    docker_with(&login.0, &["pull", "-q", &tag]);
    eprintln!(
        "down: exit 5; absent: exit 2; no login: exit 5 with `docker login`; with it: pushed"
    );
}

/// (digest, size, media type) of a manifest in the registry at `host`, as curl reads it.
fn manifest_descriptor(host: &str, repository: &str, reference: &str) -> (String, u64, String) {
    let out = Command::new("curl")
        .args(["-sSf", "-I", "-H"])
        .arg(
            "Accept: application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.manifest.v1+json",
        )
        .arg(format!(
            "http://{host}/v2/{repository}/manifests/{reference}"
        ))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let header = |name: &str| {
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {headers}"))
            .trim()
            .to_owned()
    };
    (
        header("docker-content-digest"),
        header("content-length").parse().unwrap(),
        header("content-type"),
    )
}

/// `GET` of `path` on the registry at `host` with `accept`, the body (curl).
fn registry_get(host: &str, path: &str, accept: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sSfL", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(format!("http://{host}{path}"))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {path}: {}", stderr(&out));
    out.stdout
}

/// The artifacts attached to `subject` (the referrers index under the tag `sha256-HEX`, as the
/// OCI distribution spec has clients keep it on a registry without the referrers API): by
/// artifact type, each file's bytes by its title.
fn referrers(
    host: &str,
    repository: &str,
    subject: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<u8>>> {
    let oci_index = "application/vnd.oci.image.index.v1+json";
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let tag = subject.replace(':', "-");
    let index: serde_json::Value = serde_json::from_slice(&registry_get(
        host,
        &format!("/v2/{repository}/manifests/{tag}"),
        oci_index,
    ))
    .unwrap();
    let mut found = std::collections::BTreeMap::new();
    for entry in index["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&registry_get(
            host,
            &format!("/v2/{repository}/manifests/{digest}"),
            oci_manifest,
        ))
        .unwrap();
        assert_eq!(manifest["subject"]["digest"], subject, "{manifest}");
        assert_eq!(manifest["artifactType"], entry["artifactType"]);
        let mut files = std::collections::BTreeMap::new();
        for layer in manifest["layers"].as_array().unwrap() {
            let title = layer["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
                .to_owned();
            let blob = layer["digest"].as_str().unwrap();
            files.insert(
                title,
                registry_get(host, &format!("/v2/{repository}/blobs/{blob}"), "*/*"),
            );
        }
        found.insert(entry["artifactType"].as_str().unwrap().to_owned(), files);
    }
    found
}

/// `skopeo inspect --tls-verify=false ARGS docker://REFERENCE`, as JSON (`--raw`: the bytes).
fn skopeo_inspect(args: &[&str], reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(args)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    assert!(out.status.success(), "skopeo: {}", stderr(&out));
    out.stdout
}

#[test]
fn a_multi_platform_image_is_slimmed_per_platform_and_pushed_as_one_index() {
    if !is_root("a_multi_platform_image_is_slimmed_per_platform_and_pushed_as_one_index") {
        return;
    }
    if !image_present(ARM64_BASE_IMAGE) {
        eprintln!(
            "skipping a_multi_platform_image_is_slimmed_per_platform_and_pushed_as_one_index: \
             {ARM64_BASE_IMAGE} is missing (no qemu-aarch64 in binfmt_misc?)"
        );
        return;
    }
    let _serial = serial();
    let amd64 = app_image("python-http");
    let arm64 = app_image("python-http-arm64");
    let registry = Registry::start(None);
    let host = registry.host();
    let config = TempDir::new("docker-config-multi");
    put_in_registry(&config.0, &amd64, &format!("{host}/py:amd64"));
    put_in_registry(&config.0, &arm64, &format!("{host}/py:arm64"));

    // The fat index, written by hand: an OCI index with annotations, as buildx pushes them.
    let entry = |tag: &str, arch: &str| {
        let (digest, size, media_type) = manifest_descriptor(&host, "py", tag);
        serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch},
            "annotations": {"org.opencontainers.image.revision": format!("rev-{arch}")},
        })
    };
    let fat_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("amd64", "amd64"), entry("arm64", "arm64")],
        "annotations": {"org.opencontainers.image.source": "https://example.test/py"},
    });
    let index_file = TempDir::new("fat-index");
    let index_path = index_file.0.join("index.json");
    std::fs::write(&index_path, serde_json::to_vec(&fat_index).unwrap()).unwrap();
    let put = Command::new("curl")
        .args(["-sSf", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.oci.image.index.v1+json")
        .arg("--data-binary")
        .arg(format!("@{}", index_path.display()))
        .arg(format!("http://{host}/v2/py/manifests/fat"))
        .output()
        .expect("curl runs");
    assert!(put.status.success(), "{}", stderr(&put));

    let fat = format!("{host}/py:fat");
    let tag = format!("{host}/py:slim");
    let mut guards = vec![Image(tag.clone())];
    for platform in ["linux-amd64", "linux-arm64"] {
        guards.push(Image(format!("{tag}-{platform}")));
    }
    for arch in ["amd64", "arm64"] {
        let digest = fat_index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        guards.push(Image(format!("{host}/py@{digest}")));
    }
    let out_dir = TempDir::new("multi-out");
    let layout_dir = TempDir::new("multi-oci");
    let layout = layout_dir.0.join("layout");
    let probes = probe_file("python-http.json");
    let out = slim_build(
        &config.0,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--output-dir",
            out_dir.0.to_str().unwrap(),
            "--http-probe-cmd-file",
            probes.to_str().unwrap(),
            "--tag",
            &tag,
            "--push",
            "--attach-profiles",
            "--output",
            &format!("oci:{}", layout.display()),
            "--format",
            "json",
            &fat,
        ],
    );
    assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(summary["pushed_to"], host.as_str(), "{summary}");
    let platforms = summary["platforms"].as_array().unwrap();
    let names: Vec<&str> = platforms
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    for p in platforms {
        assert_eq!(p["verified"], true, "{p}");
        assert_eq!(p["matched"], p["probes"], "{p}");
        assert!(p["probes"].as_u64().unwrap() >= 3, "{p}");
        assert!(p["ratio"].as_f64().unwrap() > 2.0, "{p}");
        let report = out_dir.0.join(p["report"].as_str().unwrap());
        assert!(report.is_file(), "{}", report.display());
    }
    assert!(platforms[1]["seccomp_derived_under_emulation"].is_string());
    let report = read_report(&out_dir.0);
    assert_eq!(report["platforms"].as_array().unwrap().len(), 2);

    // An independent client reads the slim index: two entries with their platforms and the
    // fat index's annotations, and each entry's config says its architecture.
    let raw = skopeo_inspect(&["--raw"], &tag);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    eprintln!(
        "skopeo inspect --raw {tag}:\n{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["annotations"], fat_index["annotations"]);
    let digest = summary["index_digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"), "{summary}");
    // The registry's digest of what it stores under the tag is the one slim printed.
    let out = Command::new("curl")
        .args([
            "-sSf",
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ])
        .arg(format!("http://{host}/v2/py/manifests/slim"))
        .output()
        .expect("curl runs");
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let pushed_digest = headers
        .lines()
        .find_map(|l| l.strip_prefix("docker-content-digest: "))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(pushed_digest, digest);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for (entry, arch) in entries.iter().zip(["amd64", "arm64"]) {
        assert_eq!(entry["platform"]["architecture"], arch, "{entry}");
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.revision"],
            format!("rev-{arch}")
        );
        let config: serde_json::Value =
            serde_json::from_slice(&skopeo_inspect(&["--override-arch", arch], &tag)).unwrap();
        assert_eq!(config["Architecture"], arch, "{config}");
        assert_eq!(
            config["Layers"].as_array().map(Vec::len),
            Some(1),
            "{config}"
        );
    }

    // Each platform's profiles are attached to its own manifest.
    for (entry, slug) in entries.iter().zip(["linux-amd64", "linux-arm64"]) {
        let attached = referrers(&host, "py", entry["digest"].as_str().unwrap());
        let seccomp = &attached["application/vnd.slim.security-profiles.v1"]["seccomp.json"];
        assert_eq!(
            seccomp,
            &std::fs::read(out_dir.0.join(slug).join("seccomp.json")).unwrap()
        );
    }

    // The same index as an OCI layout, which skopeo reads per platform.
    let oci = format!("oci:{}:slim", layout.display());
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", &oci])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        local["manifests"].as_array().map(Vec::len),
        Some(2),
        "{local}"
    );
    for arch in ["amd64", "arm64"] {
        let out = Command::new("skopeo")
            .args(["inspect", "--override-arch", arch, &oci])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["Architecture"], arch, "{config}");
    }

    // The engine pulls each platform back by the one name, and each runs and answers.
    for arch in ["amd64", "arm64"] {
        docker(&["rmi", "-f", &tag]);
        docker_with(
            &config.0,
            &["pull", "-q", "--platform", &format!("linux/{arch}"), &tag],
        );
        assert_eq!(
            docker(&["image", "inspect", "-f", "{{.Architecture}}", &tag]),
            arch
        );
        let app = Container::run_detached(&["-p", "127.0.0.1::8000", &tag]);
        let port = published_port(&app.0, 8000);
        let (status, body) = http_get(port, "/index.html");
        assert!(status.contains("200"), "{arch}: {status}");
        assert!(!body.is_empty());
    }
    eprintln!(
        "multi-platform: {fat} -> {tag} index {digest}: {}",
        platforms
            .iter()
            .map(|p| format!(
                "{} {} -> {} bytes ({}x, {}/{} probes)",
                p["platform"],
                p["fat_bytes"],
                p["slim_bytes"],
                p["ratio"],
                p["matched"],
                p["probes"]
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    drop(guards);
}
