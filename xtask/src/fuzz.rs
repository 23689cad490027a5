//! `cargo xtask fuzz [SECONDS]`: runs the cargo-fuzz targets of `slim-cli/fuzz` (layer reader
//! and flattener; image archive reader) for SECONDS each, from seeds made here: small real tars
//! and a real `docker save` of a tiny image. Installs cargo-fuzz when missing.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result};

use crate::{
    setup::NIGHTLY,
    util::{output, run as run_cmd, workspace_root},
};

pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(60);
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_none() {
        println!("fuzz: installing cargo-fuzz");
        run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz_dir = workspace_root().join("slim-cli/fuzz");
    let seeds = fuzz_dir.join("seeds");
    make_seeds(&seeds)?;
    for target in ["layer", "archive"] {
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        println!("fuzz: {target} for {seconds}s");
        run_cmd(
            Command::new("cargo")
                .current_dir(&fuzz_dir)
                .env("AYA_BUILD_SKIP", "1")
                .args([&format!("+{NIGHTLY}"), "fuzz", "run", target])
                .arg(&corpus)
                .arg(seeds.join(target))
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-rss_limit_mb=1024",
                ]),
        )?;
    }
    Ok(())
}

fn make_seeds(seeds: &Path) -> Result<()> {
    let layer = seeds.join("layer");
    let archive = seeds.join("archive");
    fs::create_dir_all(&layer)?;
    fs::create_dir_all(&archive)?;
    let src = seeds.join("src");
    let _ = fs::remove_dir_all(&src);
    fs::create_dir_all(src.join("usr/bin"))?;
    fs::write(src.join("usr/bin/app"), b"#!/bin/sh\necho hi\n")?;
    fs::write(src.join("usr/bin/.wh.gone"), b"")?;
    fs::create_dir_all(src.join("etc/opq"))?;
    fs::write(src.join("etc/opq/.wh..wh..opq"), b"")?;
    fs::hard_link(src.join("usr/bin/app"), src.join("usr/bin/app2"))?;
    std::os::unix::fs::symlink("usr/bin", src.join("bin"))?;
    fs::write(src.join("etc").join("a".repeat(150)), b"long name")?;
    run_cmd(
        Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(layer.join("gnu.tar"))
            .arg("."),
    )?;
    run_cmd(
        Command::new("tar")
            .arg("--format=pax")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(layer.join("pax.tar"))
            .arg("."),
    )?;
    // A real saved image, tiny: one layer with the files above.
    let image = "slim-fuzz/seed:1";
    let layer_tar = layer.join("gnu.tar");
    if output(Command::new("docker").args(["version"])).is_some() {
        run_cmd(
            Command::new("docker")
                .args(["import"])
                .arg(&layer_tar)
                .arg(image),
        )?;
        run_cmd(
            Command::new("docker")
                .args(["save", image, "-o"])
                .arg(archive.join("docker-archive.tar")),
        )?;
        let _ = Command::new("docker").args(["rmi", image]).output();
        run_cmd(Command::new("sh").arg("-c").arg(format!(
            "gzip -c {} > {}",
            layer_tar.display(),
            layer.join("gzip.tar.gz").display()
        )))?;
    }
    fs::remove_dir_all(&src).context("clean seed source")?;
    Ok(())
}
