//! `cargo xtask dist`: static, stripped slim binaries for the machines slim runs on (servers and
//! arm64 edge boards), each with the eBPF recorder built for its own architecture (aya-ebpf
//! picks the pt_regs layout by target), plus SHA256SUMS, in target/dist.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::util::{cargo, output, run as run_cmd, target_dir, workspace_root};

/// A static build: Rust target, file name in target/dist, its strip, what `file` says of it,
/// and how to run it here.
pub struct Target {
    pub rust: &'static str,
    pub dist_name: &'static str,
    strip: &'static str,
    file_arch: &'static str,
    runner: &'static [&'static str],
}

pub const TARGETS: &[Target] = &[
    Target {
        rust: "x86_64-unknown-linux-musl",
        dist_name: "slim-x86_64-linux-musl",
        strip: "strip",
        file_arch: "x86-64",
        runner: &[],
    },
    Target {
        rust: "aarch64-unknown-linux-musl",
        dist_name: "slim-aarch64-linux-musl",
        strip: "aarch64-linux-gnu-strip",
        file_arch: "ARM aarch64",
        runner: &["qemu-aarch64-static"],
    },
];

pub fn target(rust: &str) -> Result<&'static Target> {
    TARGETS
        .iter()
        .find(|t| t.rust == rust)
        .with_context(|| format!("no static target {rust}"))
}

/// `cargo ARGS --release --target T` with what the cross build needs: `ring`'s C compiler
/// (Debian's gcc-aarch64-linux-gnu for aarch64, gcc for x86_64) and rust-lld to link aarch64.
pub fn cargo_for(target: &Target, args: &[&str]) -> Result<Command> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == target.rust) {
        run_cmd(Command::new("rustup").args(["target", "add", target.rust]))?;
    }
    let env_target = target.rust.replace('-', "_");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(workspace_root())
        .args(args)
        .args(["--release", "--target", target.rust]);
    if target.rust.starts_with("aarch64") {
        cmd.env(format!("CC_{env_target}"), "aarch64-linux-gnu-gcc")
            .env(
                format!("CARGO_TARGET_{}_LINKER", env_target.to_uppercase()),
                "rust-lld",
            );
    } else {
        cmd.env(format!("CC_{env_target}"), "gcc");
    }
    Ok(cmd)
}

/// Builds the static slim for `target`; returns its path in the target dir.
pub fn static_slim(target: &Target) -> Result<PathBuf> {
    println!("dist: building static slim for {}", target.rust);
    run_cmd(&mut cargo_for(target, &["build", "--package", "slim-cli"])?)?;
    Ok(target_dir().join(target.rust).join("release").join("slim"))
}

pub fn run() -> Result<()> {
    let dist = target_dir().join("dist");
    fs::create_dir_all(&dist)?;
    let mut sums = String::new();
    for target in TARGETS {
        let built = static_slim(target)?;
        let out = dist.join(target.dist_name);
        fs::copy(&built, &out)?;
        run_cmd(Command::new(target.strip).arg(&out))?;
        check(target, &out)?;
        let sum = output(Command::new("sha256sum").arg(&out)).context("sha256sum")?;
        let hash = sum.split_whitespace().next().unwrap_or_default();
        sums.push_str(&format!("{hash}  {}\n", target.dist_name));
        println!(
            "dist: {} ({:.1} MB)",
            out.display(),
            fs::metadata(&out)?.len() as f64 / 1e6
        );
    }
    fs::write(dist.join("SHA256SUMS"), sums)?;
    println!("dist: {}", dist.join("SHA256SUMS").display());
    Ok(())
}

/// `file` says static and the right architecture, and `--version` runs (under qemu-user for a
/// foreign architecture).
fn check(target: &Target, binary: &Path) -> Result<()> {
    let described = output(Command::new("file").arg("-b").arg(binary)).context("file")?;
    if !described.contains("statically linked") && !described.contains("static-pie linked") {
        bail!("{} is not static: {described}", binary.display());
    }
    if !described.contains(target.file_arch) {
        bail!(
            "{} is not {}: {described}",
            binary.display(),
            target.file_arch
        );
    }
    let native = target.rust.starts_with(std::env::consts::ARCH);
    let mut version = if native || target.runner.is_empty() {
        Command::new(binary)
    } else {
        let mut cmd = Command::new(target.runner[0]);
        cmd.arg(binary);
        cmd
    };
    let printed = output(version.arg("--version"))
        .with_context(|| format!("{} --version did not run", binary.display()))?;
    if !printed.starts_with("slim ") {
        bail!("{} --version printed {printed:?}", binary.display());
    }
    println!(
        "dist: {}: {}; {}",
        target.dist_name,
        described.trim(),
        printed.trim()
    );
    Ok(())
}
