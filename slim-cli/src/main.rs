//! `slim`: make container images small by watching them run.

use std::process::ExitCode;

use clap::Parser as _;
use slim_cli::{cli, commands, plugin};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    return_large_blocks_when_freed();
    let (args, host, context) = match plugin::invocation(std::env::args_os().collect()) {
        plugin::Invocation::Metadata => {
            println!("{}", plugin::metadata());
            return ExitCode::SUCCESS;
        }
        plugin::Invocation::Run {
            args,
            host,
            context,
        } => (args, host, context),
    };
    // The engine the docker CLI would talk to (its -H, DOCKER_HOST, or its context).
    match plugin::docker_endpoint(host.as_deref(), context.as_deref()) {
        Ok(Some(endpoint)) => std::env::set_var("DOCKER_HOST", endpoint),
        Ok(None) => {}
        Err(err) => {
            eprintln!("error: {err}\n  hint: `docker context ls` lists the contexts; `docker context use default` goes back to the local engine");
            return ExitCode::from(commands::EXIT_USAGE);
        }
    }
    let cli = cli::Cli::parse_from(args);
    // `--quiet` is "only the final line (and errors)": warnings and notes go too, unless a
    // log level is asked for.
    let quiet = match &cli.command {
        cli::Command::Build(args) => args.quiet,
        cli::Command::Profile(args) => args.quiet,
        _ => false,
    };
    let level = match (cli.log_level.as_deref(), cli.verbose) {
        (Some(level), _) => format!("slim={level}"),
        (None, 0) if quiet => "slim=error".into(),
        (None, 0) => "slim=info".into(),
        (None, 1) => "slim=debug".into(),
        (None, _) => "slim=trace".into(),
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

/// glibc's malloc raises its mmap threshold each time a large block is freed, up to 32 MiB; from
/// then on the image's 1 MiB chunks and other large buffers are carved from the heap and kept
/// there after they are freed (8 MB of a build's peak RSS). A fixed threshold (glibc's
/// default) keeps handing them back to the kernel. musl's malloc does so by itself.
fn return_large_blocks_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; called first thing in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
