//! One module per subcommand: each wires the library modules into a short pipeline. Only this
//! layer knows about several concerns at once.

mod pipeline;
mod squash;
mod trace;
mod trace_container;
mod xray;

use std::process::ExitCode;

use crate::cli::Command;

/// Exit code for bad input (usage, unreadable files).
pub const EXIT_USAGE: u8 = 2;

/// Runs a subcommand; its `Ok` value is the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Trace(args) => trace::run(args),
        Command::Xray(args) => run_async(xray::run(args)),
        Command::Squash(args) => run_async(squash::run(args)),
    }
}

/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs an async command on a small runtime. Ctrl-C or SIGTERM drops the command's future, so
/// every guard it holds (work dir, container, recorder) cleans up before slim exits.
fn run_async<F>(command: F) -> anyhow::Result<ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = command => result,
            _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
            _ = terminate.recv() => Err(Interrupted.into()),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// The user stopped slim; everything it started has been cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: stopped and cleaned up")]
pub struct Interrupted;

/// Exit code for an error that reached main.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else if err.downcast_ref::<Interrupted>().is_some() {
        ExitCode::from(EXIT_INTERRUPTED)
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
