//! Image I/O against the real engine: flattening with whiteouts and opaque directories, a
//! squash round trip that keeps every file and still answers like the original, both output
//! formats loading into the engine, determinism, and hostile archives refused with a clear error.

mod support;

use std::{path::Path, process::Command};

use support::*;

const FAT_DOCKERFILE: &str = r#"FROM slim-test/debian:bookworm
RUN mkdir -p /data/keep /data/opq && echo old > /data/opq/old && echo k > /data/keep/k \
 && dd if=/dev/zero of=/data/big bs=1M count=100 status=none \
 && ln /data/keep/k /data/keep/hard && ln -s keep/k /data/sym && chmod 4755 /data/keep/k \
 && chown 1234:5678 /data/keep
RUN rm /data/big && rm -rf /data/opq && mkdir /data/opq && echo new > /data/opq/new
WORKDIR /data
EXPOSE 8000
CMD ["python3", "-m", "http.server", "8000"]
"#;

/// Builds the multi-layer test image once per test binary run (tests share it).
fn fat_image(tag: &str) -> Image {
    require_base_image();
    build_image(tag, FAT_DOCKERFILE);
    Image(tag.to_owned())
}

/// Every path of an image's filesystem with type, mode, owner, link target, and the md5 of
/// every file, listed inside a container (independent of slim's own reader).
fn listing(image: &str) -> Vec<String> {
    let script =
        "cd / && find . -xdev \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o \
        ! -path ./etc/hosts ! -path ./etc/hostname ! -path ./etc/resolv.conf ! -path ./.dockerenv \
        -printf '%p %y %m %U %G %l\\n' | sort; \
        find . -xdev \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o -type f \
        ! -path ./etc/hosts ! -path ./etc/hostname ! -path ./etc/resolv.conf ! -path ./.dockerenv \
        -print0 | sort -z | xargs -0 md5sum";
    docker(&["run", "--rm", "--entrypoint", "sh", image, "-c", script])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn xray_counts_bytes_deleted_by_a_later_layer() {
    if !is_root("xray_counts_bytes_deleted_by_a_later_layer") {
        return;
    }
    let image = fat_image("slim-test/fat-xray:1");
    let xray = run_json(slim().args(["xray", "--json", &image.0]));
    let wasted = xray["wasted_bytes"].as_u64().unwrap();
    assert!(wasted >= 100 * 1024 * 1024, "wasted {wasted}");
    let layers = xray["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers[1]["wasted_bytes"].as_u64().unwrap() >= 100 * 1024 * 1024);
    assert!(
        layers[2]["files_deleted"].as_u64().unwrap() >= 2,
        "{:?}",
        layers[2]
    );
    assert!(xray["total_bytes"].as_u64().unwrap() > wasted);
}

#[test]
fn squash_round_trip_keeps_every_file_and_answers_like_the_original() {
    if !is_root("squash_round_trip_keeps_every_file_and_answers_like_the_original") {
        return;
    }
    let fat = fat_image("slim-test/fat-roundtrip:1");
    let squashed = Image("slim-test/roundtrip-squashed:1".into());
    let dir = TempDir::new("roundtrip");
    let archive = dir.0.join("image.tar");
    let oci = dir.0.join("oci");
    let out = slim()
        .args(["squash", &fat.0, "--tag", &squashed.0])
        .arg("--output")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg("--output")
        .arg(format!("oci:{}", oci.display()))
        .output()
        .unwrap();
    assert_success(&out);

    // Same files, types, modes, owners, sizes, link targets and contents.
    let (before, after) = (listing(&fat.0), listing(&squashed.0));
    assert!(
        before.iter().any(|l| l.starts_with("./data/opq/new ")),
        "{before:?}"
    );
    assert!(!before.iter().any(|l| l.starts_with("./data/opq/old ")));
    assert!(!before.iter().any(|l| l.starts_with("./data/big ")));
    assert!(before
        .iter()
        .any(|l| l.starts_with("./data/keep/k f 4755 0 0 ")));
    assert!(before
        .iter()
        .any(|l| l.starts_with("./data/keep d 755 1234 5678")));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    // Hard links stay hard links.
    let links = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        &squashed.0,
        "-c",
        "%h",
        "/data/keep/k",
    ]);
    assert_eq!(links, "2");
    // One layer, same config.
    let layers = docker(&["image", "inspect", "-f", "{{len .RootFS.Layers}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}}", &squashed.0]);
    assert_eq!(
        layers,
        r#"1 ["python3","-m","http.server","8000"] /data {"8000/tcp":{}}"#
    );

    // It runs and answers like the original.
    let answer = |image: &str| {
        let container = Container::run_detached(&["-p", "127.0.0.1::8000", image]);
        let port = published_port(&container.0, 8000);
        http_get(port, "/")
    };
    let (fat_answer, slim_answer) = (answer(&fat.0), answer(&squashed.0));
    assert!(fat_answer.0.contains("200"), "{}", fat_answer.0);
    assert_eq!(fat_answer, slim_answer);

    // Both archive formats load into the engine, as the same image.
    let id = image_id(&squashed.0);
    let _cleanup = Image("slim-test/roundtrip-squashed:1".into());
    docker(&["rmi", &squashed.0]);
    let loaded = docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains(&squashed.0), "{loaded}");
    assert_eq!(image_id(&squashed.0), id);
    docker(&["rmi", &squashed.0]);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C {} -c . | docker load", oci.display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(image_id(&squashed.0), id);
    assert!(oci.join("index.json").exists() && oci.join("oci-layout").exists());
}

#[test]
fn squash_is_deterministic() {
    if !is_root("squash_is_deterministic") {
        return;
    }
    let fat = fat_image("slim-test/fat-determinism:1");
    let dir = TempDir::new("determinism");
    let write = |name: &str| {
        let path = dir.0.join(name);
        let out = slim()
            .args(["squash", &fat.0, "--output"])
            .arg(format!("docker-archive:{}", path.display()))
            .output()
            .unwrap();
        assert_success(&out);
        std::fs::read(path).unwrap()
    };
    assert!(write("a.tar") == write("b.tar"), "two squashes differ");
}

#[test]
fn reading_from_storage_and_from_docker_save_gives_the_same_image() {
    if !is_root("reading_from_storage_and_from_docker_save_gives_the_same_image") {
        return;
    }
    let _base = fat_image("slim-test/fat-storage-base:1");
    // On top: a file capability (an xattr), a hard link and a whiteout in a later layer.
    let tag = "slim-test/fat-storage:1";
    build_image(
        tag,
        r#"FROM slim-test/fat-storage-base:1
RUN python3 -c "import os, struct; os.setxattr('/data/keep/k', 'security.capability', struct.pack('<IIIII', 0x02000001, 0x400, 0, 0, 0))" \
 && ln /data/opq/new /data/opq/new-hard && rm /data/sym
"#,
    );
    let _image = Image(tag.to_owned());
    let dir = TempDir::new("storage");
    let squash = |via: &str| {
        let path = dir.0.join(format!("{via}.tar"));
        let out = slim()
            .args(["squash", tag, "--read-via", via, "--output"])
            .arg(format!("docker-archive:{}", path.display()))
            .output()
            .unwrap();
        assert_success(&out);
        std::fs::read(path).unwrap()
    };
    let from_storage = squash("storage");
    let from_save = squash("save");
    assert!(from_storage.len() > 100_000);
    assert!(
        from_storage == from_save,
        "the image read from the engine's storage differs from the one read through docker save"
    );
    let xray = |via: &str| {
        let mut json = run_json(slim().args(["xray", "--json", "--read-via", via, tag]));
        for layer in json["layers"].as_array_mut().unwrap() {
            // Tar framing is only counted when reading tars.
            layer.as_object_mut().unwrap().remove("size_bytes");
        }
        json.as_object_mut().unwrap().remove("total_bytes");
        json
    };
    assert_eq!(xray("storage"), xray("save"));
}

/// A docker-archive whose only layer holds `name` (written raw, as an attacker would).
fn hostile_archive(dir: &Path, name: &str, kind: u8, link: &str) -> std::path::PathBuf {
    let mut layer = Vec::new();
    tar_member(
        &mut layer,
        name,
        kind,
        link,
        if kind == b'0' { b"pwned" } else { b"" },
    );
    layer.extend([0u8; 1024]);
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
    let manifest = br#"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["layer.tar"]}]"#;
    let mut archive = Vec::new();
    tar_member(&mut archive, "config.json", b'0', "", config);
    tar_member(&mut archive, "layer.tar", b'0', "", &layer);
    tar_member(&mut archive, "manifest.json", b'0', "", manifest);
    archive.extend([0u8; 1024]);
    let path = dir.join(format!("evil-{}.tar", name.len() + link.len()));
    std::fs::write(&path, archive).unwrap();
    path
}

#[test]
fn hostile_archives_are_refused_with_a_clear_error() {
    let dir = TempDir::new("hostile");
    for (name, kind, link, expect) in [
        ("../../tmp/slim-pwned", b'0', "", "`..`"),
        ("x", b'1', "../../etc/shadow", "`..`"),
        ("y", b'1', "missing", "hard link to a missing"),
    ] {
        let archive = hostile_archive(&dir.0, name, kind, link);
        let out = slim()
            .args(["xray", &format!("docker-archive:{}", archive.display())])
            .env("SLIM_WORK_DIR", &dir.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.starts_with("error: layer 0: unsafe entry"),
            "{stderr}"
        );
        assert!(stderr.contains(expect), "{stderr}");
        assert!(!stderr.contains("panicked"));
        assert!(!Path::new("/tmp/slim-pwned").exists());
    }
    // Nothing left behind in the work dir but the archives themselves.
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("slim-"))
        .collect();
    assert!(left.is_empty(), "work dirs left behind: {left:?}");
}

#[test]
fn docker_host_is_honoured() {
    // A DOCKER_HOST with nothing behind it: one clear line, no panic.
    let out = slim()
        .args(["xray", "slim-test/debian:bookworm"])
        .env("DOCKER_HOST", "unix:///tmp/slim-no-engine.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: cannot reach the container engine at unix:///tmp/slim-no-engine.sock"
        ),
        "{stderr}"
    );
    if !is_root("docker_host_is_honoured (engine part)") {
        return;
    }
    // The engine's own socket, given explicitly, works.
    require_base_image();
    let xray = run_json(
        slim()
            .args(["xray", "--json", BASE_IMAGE])
            .env("DOCKER_HOST", "unix:///var/run/docker.sock"),
    );
    assert_eq!(xray["layers"].as_array().unwrap().len(), 1);
}
