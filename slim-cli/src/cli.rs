//! Command-line types only (clap derive); the doc comments are the help text.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

use crate::commands::pipeline::ReadVia;

/// Make container images small by watching them run.
#[derive(Debug, Parser)]
#[command(name = "slim", version, propagate_version = true)]
pub struct Cli {
    /// More log output (--verbose: debug, twice: trace). RUST_LOG overrides it. (`-v` is
    /// `--volume`, as in `docker run`.)
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Kernel type information for the recorder: a BTF file of the running kernel (pahole,
    /// BTFHub), or `none` to act as on a kernel without BTF (slim then finds the struct
    /// offsets it needs by calibration). Default: /sys/kernel/btf/vmlinux when present.
    #[arg(long, global = true, value_name = "FILE|none", env = "SLIM_KERNEL_BTF")]
    pub kernel_btf: Option<crate::tracer::KernelBtf>,
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
    /// Make a slim image: run the target under the recorder, probe it, keep only what it used,
    /// write a single-layer image, verify it answers like the original, and report.
    Build(Box<BuildArgs>),
    /// Write security profiles without making an image: run the target under the recorder,
    /// probe it, write seccomp.json, seccomp-profile.yaml and apparmor.profile, and verify that
    /// it answers every probe under the seccomp profile.
    Profile(Box<ProfileArgs>),
    /// Remove what slim runs that no longer run left behind (killed with -9, by the OOM killer
    /// or a CI timeout): their containers and work dirs. What a running slim uses, and what
    /// slim did not make, is never touched.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The fat image (name or id in the engine).
    pub target: String,
    /// Tag of the slim image (default: NAME.slim:TAG, as docker-slim names it).
    #[arg(long, short)]
    pub tag: Option<String>,
    /// Where report.json, files.txt and the security profiles go (default: slim-out/NAME).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Also write the slim image as docker-archive:PATH or oci:DIR (repeatable).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub output: Vec<String>,
    /// Skip running the slim image (under its seccomp profile) against the same probes.
    #[arg(long)]
    pub no_verify: bool,
    /// Only the final line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// Keep this path (a directory with everything under it).
    #[arg(long, help_heading = "Keep")]
    pub include_path: Vec<String>,
    /// Keep every path listed in FILE (one per line).
    #[arg(long, value_name = "FILE", help_heading = "Keep")]
    pub include_path_file: Vec<std::path::PathBuf>,
    /// Keep this binary with its ELF interpreter and libraries.
    #[arg(long, help_heading = "Keep")]
    pub include_bin: Vec<String>,
    /// Keep this executable, found on the image's PATH, with its libraries.
    #[arg(long, help_heading = "Keep")]
    pub include_exe: Vec<String>,
    /// Keep /bin/sh and what it needs.
    #[arg(long, help_heading = "Keep")]
    pub include_shell: bool,
    /// Keep every CA certificate, not only the bundle.
    #[arg(long, help_heading = "Keep")]
    pub include_cert_all: bool,
    /// Drop kept paths matching this glob (`*`, `**`, `?`, `[...]`).
    #[arg(long, help_heading = "Keep")]
    pub exclude_pattern: Vec<String>,
    /// Keep this path as it is in the original image.
    #[arg(long, help_heading = "Keep")]
    pub preserve_path: Vec<String>,
    /// Switch off an always-keep group: users, dns, certs, tmp, state (trees the app writes
    /// state in, kept whole) (repeatable).
    #[arg(long, value_name = "GROUP", help_heading = "Keep")]
    pub skip_keep: Vec<String>,
    /// The slim image's package database, for scanners: `pruned` keeps the packages that
    /// still have a kept file, cut to those files; `full` the fat image's whole; `none` none.
    #[arg(
        long,
        value_enum,
        default_value_t,
        value_name = "HOW",
        help_heading = "Keep"
    )]
    pub package_db: crate::packages::Mode,
    /// Drop symbol tables and debug sections of kept ELF executables and libraries (what no
    /// segment maps: `.dynsym`, `.gopclntab` and the build id stay). Needs llvm-strip or strip.
    #[arg(long, help_heading = "Keep")]
    pub strip_executables: bool,
    /// Pack kept ELF executables with UPX (never libraries, setuid/setgid or file-capability
    /// binaries, or what another kept file maps). Needs upx.
    #[arg(long, help_heading = "Keep")]
    pub compress_executables: bool,
}

/// How the target runs and is probed (shared by build and profile).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// HTTP probes in docker-slim's command-file format.
    #[arg(long, value_name = "FILE", help_heading = "Probes")]
    pub http_probe_cmd_file: Option<std::path::PathBuf>,
    /// No default GET / probe on the exposed ports.
    #[arg(long, help_heading = "Probes")]
    pub http_probe_off: bool,
    /// Only probe these container ports over HTTP (comma-separated).
    #[arg(long, value_delimiter = ',', help_heading = "Probes")]
    pub http_probe_ports: Vec<u16>,
    /// Follow same-origin links of HTML answers (at most 50 pages, 3 levels deep).
    #[arg(long, help_heading = "Probes")]
    pub http_probe_crawl: bool,
    /// Run a shell command inside the container while recording (repeatable).
    #[arg(long, value_name = "CMD", help_heading = "Probes")]
    pub exec: Vec<String>,
    /// Run each line of FILE inside the container while recording.
    #[arg(long, value_name = "FILE", help_heading = "Probes")]
    pub exec_file: Option<std::path::PathBuf>,
    /// Connect to a container TCP port, optionally sending PAYLOAD (\r \n escapes).
    #[arg(long, value_name = "PORT[:PAYLOAD]", help_heading = "Probes")]
    pub tcp_probe: Vec<String>,
    /// When recording stops: probe (after the probes), timeout:SECS, signal (SIGUSR1 to slim),
    /// enter (Enter on the terminal). Default: probe when there are probes, else enter on a
    /// terminal, else timeout:30.
    #[arg(long, value_name = "WHEN", help_heading = "Probes")]
    pub continue_after: Option<String>,
    /// Seconds to wait for the app's ports to answer.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        help_heading = "Probes"
    )]
    pub probe_wait: u64,
    /// Seconds per probe request.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "SECS",
        help_heading = "Probes"
    )]
    pub probe_timeout: u64,
    /// Attempts per probe request (with backoff).
    #[arg(long, default_value_t = 3, value_name = "N", help_heading = "Probes")]
    pub probe_retries: u32,
    /// Times the whole probe set runs while recording, and again when verifying (apps answer
    /// the first request differently: caches, lazy loading, connection pools).
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Probes")]
    pub probe_rounds: u32,
    /// A check held out of the recording: run in the fat container after recording stopped
    /// (for the expected answer) and in the slim one (repeatable).
    #[arg(long, value_name = "CMD", help_heading = "Probes")]
    pub verify_exec: Vec<String>,
    /// HTTP checks held out of the recording, in docker-slim's command-file format.
    #[arg(long, value_name = "FILE", help_heading = "Probes")]
    pub verify_probe_file: Option<std::path::PathBuf>,

    /// Set an environment variable (KEY=VALUE, repeatable).
    #[arg(long, short, help_heading = "Container")]
    pub env: Vec<String>,
    /// Read environment variables from FILE (KEY=VALUE lines).
    #[arg(long, value_name = "FILE", help_heading = "Container")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Bind mount or volume, as docker's --mount (type=bind|volume,source=,target=[,readonly]).
    #[arg(long, help_heading = "Container")]
    pub mount: Vec<String>,
    /// Bind mount or volume, as docker's -v (SRC:DST[:ro]).
    #[arg(long, short, help_heading = "Container")]
    pub volume: Vec<String>,
    /// Network to attach the container to.
    #[arg(long, help_heading = "Container")]
    pub network: Option<String>,
    /// Also publish (on 127.0.0.1) and probe this container port.
    #[arg(long, help_heading = "Container")]
    pub expose: Vec<u16>,
    /// Publish a container port ([127.0.0.1:][HOST:]CONTAINER); always on 127.0.0.1.
    #[arg(long, short, help_heading = "Container")]
    pub publish: Vec<String>,
    /// Override the entrypoint (a command line, or a JSON array).
    #[arg(long, help_heading = "Container")]
    pub entrypoint: Option<String>,
    /// Override the command (a command line, or a JSON array).
    #[arg(long, help_heading = "Container")]
    pub cmd: Option<String>,
    /// Override the working directory.
    #[arg(long, short, help_heading = "Container")]
    pub workdir: Option<String>,
    /// Run as this user.
    #[arg(long, short, help_heading = "Container")]
    pub user: Option<String>,
    /// Run the container with this runtime (as docker run --runtime), e.g. crun.
    #[arg(long, value_name = "NAME", help_heading = "Container")]
    pub runtime: Option<String>,
    /// Add a Linux capability to the container (as docker run --cap-add).
    #[arg(long, help_heading = "Container")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability from the container (as docker run --cap-drop).
    #[arg(long, help_heading = "Container")]
    pub cap_drop: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The image to record (name or id in the engine).
    pub target: String,
    /// Where seccomp.json, seccomp-profile.yaml, apparmor.profile and report.json go
    /// (default: slim-out/NAME).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Skip running the image again under the profile against the same probes.
    #[arg(long)]
    pub no_verify: bool,
    /// Only the final line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How an image in the engine is read (shared by build, xray and squash).
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// How to read an engine image: straight from its overlay storage (fast; local engine,
    /// root) with `docker save` as the fallback, or only one of them.
    #[arg(long = "read-via", value_enum, default_value_t, value_name = "HOW")]
    pub via: ReadVia,
}

#[derive(Debug, Args)]
pub struct XrayArgs {
    /// Image name or id, or docker-archive:PATH.
    pub image: String,
    /// Print JSON: {"layers": [...], "total_bytes", "wasted_bytes", ...}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub read: ReadArgs,
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
    #[command(flatten)]
    pub read: ReadArgs,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// clap's own consistency checks over the whole CLI (a short flag used twice, a default that
    /// is not a possible value...): a debug build would panic on them at run time.
    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dash_v_is_volume_as_in_docker_run() {
        let cli = Cli::try_parse_from(["slim", "build", "-v", "/data:/data", "app:fat"]).unwrap();
        let Command::Build(args) = cli.command else {
            panic!("not build");
        };
        assert_eq!(args.run.volume, ["/data:/data"]);
        assert_eq!(cli.verbose, 0);
    }
}
