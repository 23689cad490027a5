//! `slim trace --container ID`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::TraceArgs;

pub fn run(_container: &str, _args: &TraceArgs) -> Result<ExitCode> {
    anyhow::bail!("--container is not available yet")
}
