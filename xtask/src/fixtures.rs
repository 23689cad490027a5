//! Test and demo images, built without any registry: a Debian rootfs from Debian's own packages
//! (debootstrap, cached as a tarball under ~/.cache/slim) imported into the engine.

use std::{
    path::{Path, PathBuf},
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
    load_single_layer(
        &tarball,
        ARM64_BASE_IMAGE,
        serde_json::json!({
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/bash"],
            },
            "history": [{"created_by": format!("debootstrap --arch=arm64 --include={ARM64_PACKAGES}")}],
        }),
    )
}

/// Loads the layer `tarball` as the one-layer image `tag` with `config` (its rootfs filled in)
/// through `docker load`: unlike `docker import`, it keeps a foreign architecture.
fn load_single_layer(tarball: &Path, tag: &str, mut config: serde_json::Value) -> Result<()> {
    let layer_name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .context("cache path is UTF-8")?
        .to_owned();
    let sha = crate::util::output(Command::new("sha256sum").arg(tarball)).context("sha256sum")?;
    let diff_id = format!(
        "sha256:{}",
        sha.split_whitespace().next().unwrap_or_default()
    );
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [diff_id]});
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [tag],
        "Layers": [layer_name],
    }]);
    let dir = std::env::temp_dir().join(format!("slim-fixture-{}", std::process::id()));
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
        println!("fixtures: loading {tag}");
        run_cmd(
            Command::new("docker")
                .args(["load", "-q", "-i"])
                .arg(&archive),
        )
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The 32-bit app images this host runs natively (the i386 httpd on x86_64, the armhf one on
/// arm64).
pub fn native_32bit_images() -> Result<()> {
    match std::env::consts::ARCH {
        "x86_64" => httpd_32bit_image("i386").map(|_| ()),
        "aarch64" => httpd_32bit_image("armhf").map(|_| ()),
        _ => Ok(()),
    }
}

/// The 32-bit web server image of Debian architecture `arch` (`i386` or `armhf`):
/// `slim-test/httpd-ARCH:fat`, Debian's busybox (dynamically linked) with its libc, serving
/// /www on port 8080. It runs natively on a 64-bit kernel of the same family (x86_64 runs
/// i386, arm64 runs armhf): how slim's recording of 32-bit (compat) tasks is tested.
pub fn httpd_32bit_image(arch: &str) -> Result<String> {
    let tag = format!("slim-test/httpd-{arch}:fat");
    if image_exists(&tag) {
        println!("fixtures: {tag}: present");
        return Ok(tag);
    }
    let (oci_arch, variant) = match arch {
        "i386" => ("386", None),
        "armhf" => ("arm", Some("v7")),
        other => anyhow::bail!("no 32-bit httpd fixture for {other}"),
    };
    let tarball = cache_dir().join(format!("httpd-{arch}.tar"));
    if !tarball.exists() {
        ensure_dpkg_architecture(arch)?;
        let debs = cache_dir().join("debs").join(arch);
        let rootfs = cache_dir().join(format!("httpd-{arch}-rootfs"));
        let _ = std::fs::remove_dir_all(&rootfs);
        std::fs::create_dir_all(rootfs.join("www"))?;
        for package in ["busybox", "libc6"] {
            let deb = download_deb(&format!("{package}:{arch}"), &debs)?;
            run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&rootfs))?;
        }
        std::fs::write(
            rootfs.join("www/index.html"),
            format!("<h1>hello from a 32-bit {arch} busybox</h1>\n"),
        )?;
        std::fs::write(rootfs.join("www/about.html"), "<p>about</p>\n")?;
        std::fs::create_dir_all(rootfs.join("etc"))?;
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
        // Every file root's, as dpkg installs them, whoever unpacked the packages.
        pack_rootfs(
            &rootfs,
            &tarball,
            &["--owner=0", "--group=0", "--numeric-owner"],
        )?;
    }
    let mut config = serde_json::json!({
        "architecture": oci_arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
            "ExposedPorts": {"8080/tcp": {}},
        },
        "history": [{"created_by": format!("busybox and libc6 ({arch}) from Debian {SUITE}")}],
    });
    if let Some(variant) = variant {
        config["variant"] = variant.into();
    }
    load_single_layer(&tarball, &tag, config)?;
    Ok(tag)
}

/// `dpkg --add-architecture ARCH` and an index update, unless dpkg knows `arch` already.
pub fn ensure_dpkg_architecture(arch: &str) -> Result<()> {
    let native =
        crate::util::output(Command::new("dpkg").arg("--print-architecture")).unwrap_or_default();
    if native.trim() == arch {
        return Ok(());
    }
    let foreign = crate::util::output(Command::new("dpkg").arg("--print-foreign-architectures"))
        .unwrap_or_default();
    if !foreign.lines().any(|a| a.trim() == arch) {
        println!("fixtures: dpkg --add-architecture {arch}");
        run_cmd(Command::new("dpkg").args(["--add-architecture", arch]))?;
        run_cmd(Command::new("apt-get").args(["update", "-q"]))?;
    }
    Ok(())
}

/// Downloads `package` (`name:arch`) with apt into `dir` once; returns the .deb.
pub fn download_deb(package: &str, dir: &Path) -> Result<PathBuf> {
    let name = package.split(':').next().unwrap_or(package);
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
            })
    };
    if let Some(deb) = find() {
        return Ok(deb);
    }
    std::fs::create_dir_all(dir)?;
    println!("fixtures: apt-get download {package}");
    run_cmd(
        Command::new("apt-get")
            .current_dir(dir)
            .args(["download", "-q", package]),
    )
    .with_context(|| {
        format!("cannot download {package}: is Debian's mirror reachable, and apt's index fresh?")
    })?;
    find().with_context(|| format!("apt-get download {package} left no .deb"))
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
    pack_rootfs(&rootfs, &tarball, &[])?;
    Ok(tarball)
}

/// Tars `rootfs` into `tarball` (written aside, then renamed: a cut run leaves no half
/// tarball in the cache) and removes it.
fn pack_rootfs(rootfs: &Path, tarball: &Path, tar_args: &[&str]) -> Result<()> {
    let partial = tarball.with_extension("tar.partial");
    run_cmd(
        Command::new("tar")
            .args(tar_args)
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    )?;
    std::fs::rename(&partial, tarball)?;
    std::fs::remove_dir_all(rootfs)?;
    Ok(())
}
