//! `slim trace`: record a host command's process tree (`command`), or a running container
//! (`container`), and print what it touched (`output`).

mod command;
mod container;
mod output;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::TraceArgs;

use super::UsageError;

pub fn run(args: TraceArgs) -> Result<ExitCode> {
    if let Some(container) = &args.container {
        return container::run(container, &args);
    }
    if args.command.is_empty() {
        return Err(UsageError::new(
            "nothing to trace",
            "give a command after `--` (slim trace -- python3 -c 'import json') or --container ID",
        )
        .into());
    }
    command::run(&args)
}
