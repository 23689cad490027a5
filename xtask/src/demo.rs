//! `cargo xtask demo`: set up, build, make a sample fat image without any registry (Debian from
//! debootstrap plus a small static site served by Python), slim it, and show the result.

use std::process::Command;

use anyhow::Result;

use crate::{
    fixtures, setup,
    util::{build_release, run as run_cmd, workspace_root},
};

const FAT: &str = "slim-demo/python-http:fat";
const SLIM: &str = "slim-demo/python-http:slim";

pub fn run() -> Result<()> {
    setup::run()?;
    fixtures::base_image()?;
    let slim = build_release()?;
    let root = workspace_root();
    println!("\n$ docker build -t {FAT} tests/apps/python-http");
    run_cmd(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", FAT])
            .arg(root.join("tests/apps/python-http")),
    )?;
    println!("\n$ slim build --http-probe-cmd-file probes/python-http.json --tag {SLIM} {FAT}\n");
    run_cmd(
        Command::new(&slim)
            .current_dir(&root)
            .args([
                "build",
                "--http-probe-cmd-file",
                "probes/python-http.json",
                "--tag",
                SLIM,
            ])
            .args(["--output-dir", "slim-out/demo", FAT]),
    )?;
    println!("\n$ docker images slim-demo/python-http\n");
    run_cmd(Command::new("docker").args(["images", "slim-demo/python-http"]))?;
    println!("\nreport: slim-out/demo/report.json, kept files and why: slim-out/demo/files.txt");
    Ok(())
}
