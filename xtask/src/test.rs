//! `cargo xtask test`: set up the machine, build the release binary, run every test.
//!
//! Unit tests run unprivileged; the end-to-end tests in `tests/` drive the built `slim` binary
//! (found through `SLIM_BIN`) against the real kernel and the real engine, so they need root.

use std::process::Command;

use anyhow::Result;

use crate::{
    fixtures, setup,
    util::{build_release, cargo, run as run_cmd, workspace_root},
    vm,
};

fn run_tests(extra: &[String]) -> Result<()> {
    let slim = build_release()?;
    run_cmd(
        Command::new(cargo())
            .current_dir(workspace_root())
            .env("SLIM_BIN", &slim)
            .args(["test", "--release", "--workspace", "--exclude", "slim-ebpf"])
            .args(extra),
    )
}

pub fn run(extra: &[String]) -> Result<()> {
    setup::run()?;
    fixtures::base_image()?;
    fixtures::arm64_base_image()?;
    fixtures::native_32bit_images()?;
    run_tests(extra)?;
    if !extra.is_empty() {
        return Ok(()); // a filtered run: only the matching host tests
    }
    // The kernel test bench: every machine at once, each result reported.
    vm::run_all()
}
