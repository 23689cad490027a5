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

fn cache_dir() -> PathBuf {
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
    let tarball = cache_dir().join(format!("debian-{SUITE}-rootfs.tar"));
    if !tarball.exists() {
        let rootfs = cache_dir().join(format!("debian-{SUITE}-rootfs"));
        let _ = std::fs::remove_dir_all(&rootfs);
        std::fs::create_dir_all(&rootfs)?;
        println!("fixtures: debootstrap {SUITE} with {PACKAGES} (once, cached)");
        run_cmd(Command::new("debootstrap").args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
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
    }
    println!("fixtures: importing {BASE_IMAGE}");
    run_cmd(
        Command::new("docker")
            .args(["import", "--change", "CMD [\"/bin/bash\"]"])
            .arg(&tarball)
            .arg(BASE_IMAGE),
    )
}
