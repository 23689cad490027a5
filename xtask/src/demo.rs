//! `cargo xtask demo`: set up, build, and show what slim records for a small Python program.

use std::process::Command;

use anyhow::Result;

use crate::{
    setup,
    util::{build_release, run as run_cmd},
};

pub fn run() -> Result<()> {
    setup::run()?;
    let slim = build_release()?;
    println!("\n$ slim trace -- python3 -c 'import json'\n");
    run_cmd(Command::new(&slim).args(["trace", "--", "python3", "-c", "import json"]))
}
