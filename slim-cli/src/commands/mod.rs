//! One module per subcommand: each wires the library modules into a short pipeline. Only this
//! layer knows about several concerns at once.

mod build;
pub(crate) mod pipeline;
pub mod prune;
mod report;
mod squash;
mod trace;
mod xray;

use std::process::ExitCode;

use crate::cli::Command;

/// Exit code for bad input (usage, unreadable files).
pub const EXIT_USAGE: u8 = 2;

/// Runs a subcommand; its `Ok` value is the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Trace(args) => trace::run(args),
        Command::Xray(args) => run_async(|shutdown| interruptible(shutdown, xray::run(args))),
        Command::Squash(args) => run_async(|shutdown| interruptible(shutdown, squash::run(args))),
        Command::Build(args) => run_async(|shutdown| build::run(*args, shutdown)),
        Command::Profile(args) => run_async(|shutdown| build::profile(*args, shutdown)),
        Command::Prune(args) => run_async(|shutdown| interruptible(shutdown, prune::run(args))),
    }
}

/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Resolves once the user asked slim to stop (Ctrl-C or SIGTERM). Cloneable.
#[derive(Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Waits for the request to stop.
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Runs `command`, dropping it (and so every guard it holds) when a stop is requested.
async fn interruptible<F>(shutdown: Shutdown, command: F) -> anyhow::Result<ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    tokio::select! {
        result = command => result,
        _ = shutdown.requested() => Err(Interrupted.into()),
    }
}

/// Runs an async command on a small runtime. The first Ctrl-C or SIGTERM is handed to the
/// command (it stops and cleans up: containers, recorder, work files); a second one exits.
fn run_async<C, F>(command: C) -> anyhow::Result<ExitCode>
where
    C: FnOnce(Shutdown) -> F,
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            for n in 0..2 {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                if n == 0 {
                    eprintln!("stopping: cleaning up (again to quit at once)");
                    let _ = tx.send(true);
                }
            }
            std::process::exit(EXIT_INTERRUPTED as i32);
        });
        command(Shutdown(rx)).await
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
