//! Test and demo images, built without any registry: a Debian rootfs from Debian's own packages
//! (debootstrap, cached as a tarball under ~/.cache/slim) imported into the engine.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result};

use crate::util::run as run_cmd;

/// The base image every test image builds on.
pub const BASE_IMAGE: &str = "slim-test/debian:bookworm";
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// Packages on top of minbase: the apps the tests and the bench slim.
const PACKAGES: &str = "python3,nginx-light,ca-certificates,curl";

pub fn cache_dir() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/slim")
}

pub fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Makes sure [`BASE_IMAGE`] exists in the engine (about a minute the first time).
pub fn base_image() -> Result<()> {
    if image_exists(BASE_IMAGE) {
        println!("fixtures: {BASE_IMAGE}: present");
        return Ok(());
    }
    let tarball = rootfs_tarball("rootfs", "amd64", PACKAGES)?;
    println!("fixtures: importing {BASE_IMAGE}");
    run_cmd(
        Command::new("docker")
            .args(["import", "--change", "CMD [\"/bin/bash\"]"])
            .arg(&tarball)
            .arg(BASE_IMAGE),
    )
}

/// An arm64 Debian with python3, run here through qemu-user (binfmt_misc, set up by
/// `cargo xtask setup`): how slim is tested on what edge boards run.
pub const ARM64_BASE_IMAGE: &str = "slim-test/debian-arm64:bookworm";
const ARM64_PACKAGES: &str = "python3";

/// Makes sure [`ARM64_BASE_IMAGE`] exists (about 1.5 minutes the first time). `docker import`
/// cannot label an image arm64 on an amd64 engine, so the rootfs is loaded as a one-layer
/// docker-archive with an arm64 config.
pub fn arm64_base_image() -> Result<()> {
    if image_exists(ARM64_BASE_IMAGE) {
        println!("fixtures: {ARM64_BASE_IMAGE}: present");
        return Ok(());
    }
    let native = std::env::consts::ARCH == "aarch64";
    if !native && !std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        println!("fixtures: {ARM64_BASE_IMAGE}: skipped, qemu-aarch64 is not in binfmt_misc");
        return Ok(());
    }
    let tarball = rootfs_tarball("rootfs", "arm64", ARM64_PACKAGES)?;
    let layer_name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .context("cache path is UTF-8")?
        .to_owned();
    let sha = crate::util::output(Command::new("sha256sum").arg(&tarball)).context("sha256sum")?;
    let diff_id = format!(
        "sha256:{}",
        sha.split_whitespace().next().unwrap_or_default()
    );
    let config = serde_json::json!({
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": format!("debootstrap --arch=arm64 --include={ARM64_PACKAGES}")}],
    });
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [ARM64_BASE_IMAGE],
        "Layers": [layer_name],
    }]);
    let dir = std::env::temp_dir().join(format!("slim-arm64-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<()> {
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&config)?)?;
        std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
        let archive = dir.join("image.tar");
        let cache = tarball.parent().context("tarball has a directory")?;
        run_cmd(
            Command::new("tar")
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&dir)
                .args(["manifest.json", "config.json"])
                .arg("-C")
                .arg(cache)
                .arg(&layer_name),
        )?;
        println!("fixtures: loading {ARM64_BASE_IMAGE}");
        run_cmd(
            Command::new("docker")
                .args(["load", "-q", "-i"])
                .arg(&archive),
        )
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A minbase Debian rootfs of `arch` with `packages`, as a tarball cached under ~/.cache/slim
/// as `debian-SUITE[-ARCH]-KIND.tar` (debootstrap from Debian's mirror; foreign architectures
/// run their scripts through qemu).
pub fn rootfs_tarball(kind: &str, arch: &str, packages: &str) -> Result<PathBuf> {
    let name = match arch {
        "amd64" => format!("debian-{SUITE}-{kind}"),
        other => format!("debian-{SUITE}-{other}-{kind}"),
    };
    let tarball = cache_dir().join(format!("{name}.tar"));
    if tarball.exists() {
        return Ok(tarball);
    }
    let rootfs = cache_dir().join(&name);
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(&rootfs)?;
    println!("fixtures: debootstrap {SUITE} ({arch}) with {packages} (once, cached)");
    run_cmd(Command::new("debootstrap").args([
        &format!("--arch={arch}"),
        "--variant=minbase",
        &format!("--include={packages}"),
        SUITE,
        rootfs.to_str().context("cache path is UTF-8")?,
        MIRROR,
    ]))?;
    let partial = tarball.with_extension("tar.partial");
    run_cmd(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    )?;
    std::fs::rename(&partial, &tarball)?;
    std::fs::remove_dir_all(&rootfs)?;
    Ok(tarball)
}
