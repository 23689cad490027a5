//! One module per subcommand: each wires the library modules into a short pipeline. Only this
//! layer knows about several concerns at once.

mod build;
mod diff;
pub(crate) mod pipeline;
mod profile_diff;
mod profile_merge;
pub mod prune;
mod report;
mod report_page;
mod squash;
mod trace;
mod xray;

use std::process::ExitCode;

use crate::cli::Command;

/// Exit code for bad input (usage, unreadable files).
pub const EXIT_USAGE: u8 = 2;

/// Exit code when the app itself failed under slim's watch: it exited, never answered, or
/// stopped answering its probes (on the fat image).
pub const EXIT_APP_FAILED: u8 = 4;

/// Exit code when something outside slim failed: the engine stopped, the disk filled, the input
/// image changed, another slim holds the tag.
pub const EXIT_FAULT: u8 = 5;

/// Runs a subcommand; its `Ok` value is the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Trace(args) => trace::run(args),
        Command::Xray(args) => run_async(|shutdown| interruptible(shutdown, xray::run(args))),
        Command::Diff(args) => run_async(|shutdown| interruptible(shutdown, diff::run(args))),
        Command::Squash(args) => run_async(|shutdown| interruptible(shutdown, squash::run(args))),
        Command::Build(args) => run_async(|shutdown| build::run(*args, shutdown)),
        Command::Profile(args) => match args.action {
            Some(crate::cli::ProfileAction::Diff(diff)) => profile_diff::run(diff),
            Some(crate::cli::ProfileAction::Merge(merge)) => profile_merge::run(merge),
            None => run_async(|shutdown| build::profile(*args, shutdown)),
        },
        Command::Prune(args) => run_async(|shutdown| interruptible(shutdown, prune::run(args))),
        Command::Report(args) => report_page::run(args),
        Command::Completions(args) => {
            print!("{}", completions(args.shell));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            print!("{}", man_page()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::InstallPlugin(args) => install_plugin(args),
    }
}

/// The completion script for `shell`, generated from the clap types.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "slim", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (roff), generated from the clap types: the top page, then every subcommand's.
pub fn man_page() -> anyhow::Result<String> {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub.clone().name(format!("slim-{}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        out.extend_from_slice(&page);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `slim install-plugin`: the running binary as `docker-slim` in a cli-plugins dir.
fn install_plugin(args: crate::cli::InstallPluginArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .dir
        .unwrap_or_else(|| crate::plugin::plugin_dir(args.system));
    let target = crate::plugin::install(&dir).map_err(|err| {
        UsageError::new(
            format!("cannot install the plugin in {}: {err}", dir.display()),
            "pass --dir DIR with a writable cli-plugins directory (or run as root for --system)",
        )
    })?;
    println!(
        "installed {}: `docker slim build IMAGE` now runs slim",
        target.display()
    );
    Ok(ExitCode::SUCCESS)
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

    /// `Err(Interrupted)` once a stop was requested: checked between phases.
    pub fn check(&self) -> Result<(), Interrupted> {
        match *self.0.borrow() {
            true => Err(Interrupted),
            false => Ok(()),
        }
    }

    /// Runs `work` unless a stop is requested first (then it is dropped). Only for work that
    /// owns nothing outside slim's process while it runs.
    pub async fn unless_stopped<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = work => result,
            _ = self.requested() => Err(Interrupted.into()),
        }
    }
}

/// Test hook of the host-fault tests (`tests/faults.rs`): with `SLIM_TEST_HOLD=PHASE:FILE`
/// (`record`, `select`, `write` or `verify`), slim waits at `phase` while FILE exists, so a
/// test can stop or restart the real engine, fill the real disk, or stop slim while a real
/// container runs under verification, at a known point, which no fake shows. Stops, engine refusals and image changes in every phase are tested through the
/// fakes instead. Without it, a no-op.
pub async fn hold(phase: &str, shutdown: &Shutdown) -> Result<(), Interrupted> {
    let Ok(spec) = std::env::var("SLIM_TEST_HOLD") else {
        return Ok(());
    };
    let Some((at, file)) = spec.split_once(':') else {
        return Ok(());
    };
    if at != phase {
        return Ok(());
    }
    eprintln!("slim: holding at {phase}");
    let file = std::path::Path::new(file);
    while file.exists() {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = shutdown.requested() => return Err(Interrupted),
        }
    }
    shutdown.check()
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

/// `text` as an image to read or run, checked before any engine is asked: bad input (exit 2)
/// with what a valid reference looks like.
pub fn image_reference(text: &str) -> Result<crate::image::reference::Reference, UsageError> {
    crate::image::reference::parse(text).map_err(|why| bad_reference(text, &why))
}

/// `text` as a name to tag an image with (no digest, not an id), checked like
/// [`image_reference`].
pub fn tag_reference(text: &str) -> Result<crate::image::reference::Named, UsageError> {
    crate::image::reference::parse_tag(text).map_err(|why| bad_reference(text, &why))
}

fn bad_reference(text: &str, why: &crate::image::reference::ReferenceError) -> UsageError {
    let message = match text {
        "" => "an empty name is not a valid image reference".to_owned(),
        _ => format!(
            "`{}` is not a valid image reference: {why}",
            text.escape_debug()
        ),
    };
    UsageError::new(
        message,
        format!("give {}", crate::image::reference::VALID_FORMS),
    )
}

/// Exit code for an error that reached main: its class (see README, "Exit codes").
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    let code = if err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else if err.downcast_ref::<Interrupted>().is_some() {
        EXIT_INTERRUPTED
    } else if err.downcast_ref::<AppFailed>().is_some()
        || err.downcast_ref::<build::RunError>().is_some()
    {
        EXIT_APP_FAILED
    } else if err.downcast_ref::<Fault>().is_some() || fault_hint(err).is_some() {
        EXIT_FAULT
    } else {
        1
    };
    ExitCode::from(code)
}

/// What to do about a fault found in the error's chain (the engine gone, a full disk), for the
/// errors that do not carry their own hint.
pub fn fault_hint(err: &anyhow::Error) -> Option<&'static str> {
    for cause in err.chain() {
        if let Some(engine) = cause.downcast_ref::<crate::engine::EngineError>() {
            if engine.engine_gone() {
                return Some(
                    "start the engine again (`cargo xtask setup` here, or `systemctl start \
                     docker`) and rerun; `slim prune` removes what this run could not",
                );
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull {
                return Some(
                    "free space there, or point SLIM_WORK_DIR (work files) and --output-dir \
                     at a disk with room; nothing was tagged",
                );
            }
        }
    }
    None
}

/// Something outside slim failed or changed under it: a one-line cause and a hint, exit 5.
#[derive(Debug, thiserror::Error)]
#[error("{message}\n  hint: {hint}")]
pub struct Fault {
    pub message: String,
    pub hint: String,
}

impl Fault {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// The app failed on the fat image (not slim's doing): a one-line cause and a hint, exit 4.
#[derive(Debug, thiserror::Error)]
#[error("{message}\n  hint: {hint}")]
pub struct AppFailed {
    pub message: String,
    pub hint: String,
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
