//! Command-line types only (clap derive); the doc comments are the help text.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

/// Make container images small by watching them run.
#[derive(Debug, Parser)]
#[command(name = "slim", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record what a command or a running container touches: paths, executions, syscalls.
    ///
    /// `slim trace -- python3 -c 'import json'` runs the command under the recorder;
    /// `slim trace --container ID` records a running container until Ctrl-C.
    Trace(TraceArgs),
    /// Show what each layer of an image adds, changes, deletes and wastes.
    ///
    /// IMAGE is a name or id in the engine, or docker-archive:PATH (a `docker save` tar).
    Xray(XrayArgs),
    /// Rewrite an image as a single layer with the same config (nothing removed but the bytes
    /// later layers overwrote or deleted).
    Squash(SquashArgs),
}

#[derive(Debug, Args)]
pub struct XrayArgs {
    /// Image name or id, or docker-archive:PATH.
    pub image: String,
    /// Print JSON: {"layers": [...], "total_bytes", "wasted_bytes", ...}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SquashArgs {
    /// Image name or id, or docker-archive:PATH.
    pub image: String,
    /// Load the result into the engine under this tag.
    #[arg(long, short)]
    pub tag: Option<String>,
    /// Also write the result as docker-archive:PATH or oci:DIR (repeatable).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub output: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Record a running container (name or id) until Ctrl-C or until it stops.
    #[arg(long, value_name = "ID", conflicts_with = "command")]
    pub container: Option<String>,
    /// Also list paths that were looked up but not found.
    #[arg(long)]
    pub missing: bool,
    /// The command to run and record, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}
