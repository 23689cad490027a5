//! `cargo xtask bench [recorder]`: measured ratios, written to `bench/results.json` and a table.

use anyhow::{bail, Result};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("recorder") => bail!("the recorder benchmark is not written yet"),
        Some(other) => bail!("unknown benchmark `{other}` (known: recorder)"),
    }
}
