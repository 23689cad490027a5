//! `cargo xtask setup`: make a fresh Debian/Ubuntu machine (as root) ready to build and test slim.
//!
//! Every step first checks whether it is needed, so a second run only checks and takes seconds.
//! Each step prints one line saying what it found or did.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::util::{output, run as run_cmd};

/// The nightly toolchain the eBPF object is built with (pinned: bpf-linker links against its LLVM).
pub const NIGHTLY: &str = "nightly-2026-05-20";
const BPF_LINKER_VERSION: &str = "0.13";

/// Debian packages and the command each provides (checked first).
const PACKAGES: &[(&str, &str)] = &[
    ("docker.io", "dockerd"),
    ("debootstrap", "debootstrap"),
    ("apparmor", "apparmor_parser"),
    ("qemu-user-static", "qemu-aarch64-static"),
    ("binfmt-support", "update-binfmts"),
    ("seccomp", "scmp_sys_resolver"),
    ("wrk", "wrk"),
    ("time", "/usr/bin/time"),
];

/// Pseudo filesystems slim or its tests use: (fstype, mount point).
const MOUNTS: &[(&str, &str)] = &[
    ("tracefs", "/sys/kernel/tracing"),
    ("bpf", "/sys/fs/bpf"),
    ("securityfs", "/sys/kernel/security"),
    ("binfmt_misc", "/proc/sys/fs/binfmt_misc"),
];

pub fn run() -> Result<()> {
    let started = Instant::now();
    let root = effective_uid() == 0;
    if !root {
        println!("setup: not root: skipping packages, mounts and dockerd (run as root for tests)");
    } else {
        packages()?;
        for (fstype, target) in MOUNTS {
            mount(fstype, target);
        }
        binfmt_arm64();
    }
    nightly()?;
    bpf_linker()?;
    if root {
        dockerd()?;
    }
    println!("setup: ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn effective_uid() -> u32 {
    output(Command::new("id").arg("-u"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, cmd)| !has_command(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        println!("setup: packages: all present");
        return Ok(());
    }
    println!("setup: packages: installing {}", missing.join(" "));
    run_cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

fn is_mounted(target: &str) -> bool {
    fs::read_to_string("/proc/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(target)))
        .unwrap_or(false)
}

fn mount(fstype: &str, target: &str) {
    if is_mounted(target) {
        println!("setup: {fstype}: mounted at {target}");
        return;
    }
    let ok = Command::new("mount")
        .args(["-t", fstype, "nodev", target])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        println!("setup: {fstype}: mounted it at {target}");
    } else {
        println!("setup: {fstype}: could not mount at {target} (continuing)");
    }
}

/// Registers qemu-aarch64 with binfmt_misc so arm64 containers run on x86_64 hosts.
fn binfmt_arm64() {
    if std::env::consts::ARCH == "aarch64" {
        return;
    }
    let entry = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    if entry.exists() {
        println!("setup: binfmt qemu-aarch64: registered");
        return;
    }
    let conf = fs::read_to_string("/usr/lib/binfmt.d/qemu-aarch64.conf").unwrap_or_default();
    let rule = conf.lines().find(|l| l.starts_with(':')).map(str::to_owned);
    let registered = match rule {
        Some(rule) => fs::write("/proc/sys/fs/binfmt_misc/register", rule).is_ok(),
        None => Command::new("update-binfmts")
            .args(["--enable", "qemu-aarch64"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false),
    };
    if registered && entry.exists() {
        println!("setup: binfmt qemu-aarch64: registered it");
    } else {
        println!("setup: binfmt qemu-aarch64: could not register (arm64 tests will skip)");
    }
}

fn nightly_sysroot() -> Option<String> {
    output(Command::new("rustup").args(["run", NIGHTLY, "rustc", "--print", "sysroot"]))
        .map(|s| s.trim().to_owned())
}

fn nightly() -> Result<()> {
    if let Some(sysroot) = nightly_sysroot() {
        if Path::new(&sysroot)
            .join("lib/rustlib/src/rust/library")
            .exists()
        {
            println!("setup: toolchain {NIGHTLY} with rust-src: present");
            return Ok(());
        }
    }
    println!("setup: toolchain {NIGHTLY}: installing with rust-src");
    run_cmd(Command::new("rustup").args([
        "toolchain",
        "install",
        NIGHTLY,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn bpf_linker() -> Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")) {
        println!("setup: {}: present", version.trim());
        return Ok(());
    }
    let sysroot = nightly_sysroot().context("the nightly toolchain has no sysroot")?;
    let lib = Path::new(&sysroot).join("lib");
    let llvm = fs::read_dir(&lib)
        .with_context(|| format!("cannot list {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM") && n.contains(".so"))
        })
        .with_context(|| format!("no libLLVM in {}", lib.display()))?;
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let link_dir = Path::new(&home).join(".cache/slim/llvm");
    fs::create_dir_all(&link_dir)?;
    let link = link_dir.join("libLLVM.so");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&llvm, &link)?;
    println!("setup: bpf-linker: building {BPF_LINKER_VERSION} against {NIGHTLY}'s LLVM (a few minutes, once)");
    run_cmd(
        Command::new("cargo")
            .env(
                "RUSTFLAGS",
                format!(
                    "-L {} -C link-arg=-Wl,-rpath,{}",
                    link_dir.display(),
                    lib.display()
                ),
            )
            .args([
                "install",
                "bpf-linker",
                "--version",
                &format!("^{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
            ]),
    )
}

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn dockerd() -> Result<()> {
    if engine_answers() {
        println!("setup: docker engine: answering");
        return Ok(());
    }
    println!("setup: docker engine: starting dockerd (log: /var/log/dockerd.log)");
    let log = fs::File::create("/var/log/dockerd.log")?;
    Command::new("setsid")
        .arg("dockerd")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start dockerd")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if engine_answers() {
            println!("setup: docker engine: answering");
            return Ok(());
        }
        thread::sleep(Duration::from_millis(250));
    }
    bail!("dockerd did not answer within 60s; see /var/log/dockerd.log")
}
