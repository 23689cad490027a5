//! One module per subcommand: each wires the library modules into a short pipeline. Only this
//! layer knows about several concerns at once.

mod trace;
mod trace_container;

use std::process::ExitCode;

use crate::cli::Command;

/// Exit code for bad input (usage, unreadable files).
pub const EXIT_USAGE: u8 = 2;

/// Runs a subcommand; its `Ok` value is the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Trace(args) => trace::run(args),
    }
}

/// Exit code for an error that reached main.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Bad input: a one-line cause and a hint, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{message}\n  hint: {hint}")]
pub struct UsageError {
    pub message: String,
    pub hint: String,
}

impl UsageError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}
