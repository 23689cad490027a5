//! `slim`: make container images small by watching them run.

use std::process::ExitCode;

use clap::Parser as _;
use slim_cli::{cli, commands};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let level = match cli.verbose {
        0 => "slim=info",
        1 => "slim=debug",
        _ => "slim=trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    if let Some(source) = cli.kernel_btf {
        slim_cli::tracer::use_kernel_btf(source);
    }
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            // One line: the error and its causes; then what to do, when slim knows.
            eprintln!("error: {err:#}");
            if let Some(hint) = commands::fault_hint(&err) {
                eprintln!("  hint: {hint}");
            }
            commands::exit_code(&err)
        }
    }
}
