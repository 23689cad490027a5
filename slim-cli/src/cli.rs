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
    #[arg(long, global = true, action = clap::ArgAction::Count, visible_alias = "debug")]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (as docker-slim's --log-level).
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
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
    /// Show what is in one image and not the other, by directory and package, with sizes.
    ///
    /// FAT and SLIM are any two images: names or ids in the engine, or docker-archive:PATH (a
    /// `docker save` tar or an OCI layout tar). Packages are those of FAT's dpkg or apk
    /// database.
    Diff(DiffArgs),
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
    /// Open a shell in a running slim container's namespaces, from its fat image.
    ///
    /// The shell shares the container's processes, network, IPC (when the container's is
    /// shareable) and host name, starts in the container's filesystem (`/proc/1/root`), and
    /// runs as the container's user with its capabilities, no more (--privileged-debug for
    /// more). The debug container is removed when the shell ends, and when slim is stopped (on
    /// a terminal, Ctrl-C goes to the shell).
    Debug(DebugArgs),
    /// Remove what slim runs that no longer run left behind (killed with -9, by the OOM killer
    /// or a CI timeout): their containers, unverified images and work dirs. What a running
    /// slim uses, and what slim did not make, is never touched; what a slim in another pid
    /// namespace or on another host made is left unless --stale says it is old enough.
    Prune(PruneArgs),
    /// Render report.html again from a report.json that `slim build` or `slim profile` wrote
    /// (with the kept paths of the files.txt next to it): one self-contained page, no network.
    Report(ReportArgs),
    /// Print a shell completion script: `slim completions bash > /etc/bash_completion.d/slim`.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `slim man > /usr/local/share/man/man1/slim.1`.
    Man,
    /// Install slim as a Docker CLI plugin, so that `docker slim build ...` runs it.
    InstallPlugin(InstallPluginArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report.json to render.
    #[arg(value_name = "REPORT_JSON")]
    pub report: std::path::PathBuf,
    /// Where to write the page (default: report.html next to REPORT_JSON).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Print the page's file:// URL to open (slim starts no browser).
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InstallPluginArgs {
    /// Install for every user, in /usr/local/lib/docker/cli-plugins (default: the user's
    /// $DOCKER_CONFIG/cli-plugins, ~/.docker/cli-plugins).
    #[arg(long)]
    pub system: bool,
    /// Install into this cli-plugins directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "system")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove what slim runs this slim cannot check made (a slim in another pid
    /// namespace, such as a CI job container sharing the engine, or on another host), once
    /// they started longer than AGE ago: 90s, 30m, 12h, 7d. Left alone otherwise.
    #[arg(long, value_name = "AGE", value_parser = crate::commands::prune::parse_age)]
    pub stale: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The fat image (name or id in the engine); or give it with --target.
    #[arg(default_value = "", hide_default_value = true, value_name = "TARGET")]
    pub target: String,
    /// The fat image, as docker-slim's --target.
    #[arg(long = "target", value_name = "IMAGE", conflicts_with = "target")]
    pub target_flag: Option<String>,
    /// Tag of the slim image (default: NAME.slim:TAG, as docker-slim names it).
    #[arg(long, short)]
    pub tag: Option<String>,
    /// Where report.json, files.txt, sbom.spdx.json and the security profiles go (default:
    /// slim-out/NAME).
    #[arg(long, value_name = "DIR", visible_alias = "copy-meta-artifacts")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Also write the slim image as docker-archive:PATH or oci:DIR (repeatable).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub output: Vec<String>,
    /// Skip running the slim image (under its seccomp profile) against the same probes.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub pull: PullArgs,
    /// Push the slim image to its registry (the --tag names it) once it is verified, with the
    /// login `docker login` keeps.
    #[arg(long)]
    pub push: bool,
    /// With --push, attach seccomp.json, seccomp-profile.yaml, apparmor.profile and the SBOM
    /// to the pushed image as OCI artifacts (their `subject` is the image), so they travel
    /// with it.
    #[arg(long, requires = "push")]
    pub attach_profiles: bool,
    /// Slim these platforms of a multi-platform image in a registry, one after the other
    /// (`linux/amd64,linux/arm64,linux/arm/v7`, or `all` it has); each is verified, tagged
    /// TAG-OS-ARCH, and with --push pushed with one index under --tag that lists them all.
    #[arg(long, value_name = "OS/ARCH,...|all")]
    pub platform: Option<String>,
    /// The final summary as a line of text, or as one JSON object on stdout for scripts.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Only the final line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub compose: ComposeArgs,

    /// Keep this path (a directory with everything under it).
    #[arg(long, help_heading = "Keep")]
    pub include_path: Vec<String>,
    /// Keep every path listed in FILE (one per line).
    #[arg(long, value_name = "FILE", help_heading = "Keep")]
    pub include_path_file: Vec<std::path::PathBuf>,
    /// Keep this binary with its ELF interpreter and libraries.
    #[arg(long, help_heading = "Keep")]
    pub include_bin: Vec<String>,
    /// Keep every binary listed in FILE (one per line), as --include-bin.
    #[arg(long, value_name = "FILE", help_heading = "Keep")]
    pub include_bin_file: Vec<std::path::PathBuf>,
    /// Keep this executable, found on the image's PATH, with its libraries.
    #[arg(long, help_heading = "Keep")]
    pub include_exe: Vec<String>,
    /// Keep every executable listed in FILE (one per line), as --include-exe.
    #[arg(long, value_name = "FILE", help_heading = "Keep")]
    pub include_exe_file: Vec<std::path::PathBuf>,
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
    /// Keep every path listed in FILE (one per line) as it is, as --preserve-path.
    #[arg(long, value_name = "FILE", help_heading = "Keep")]
    pub preserve_path_file: Vec<std::path::PathBuf>,
    /// docker-slim's: keep permissions and owners as they are; slim always does.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Keep")]
    pub keep_perms: Option<bool>,
    /// Switch off an always-keep group: users, dns, certs, tmp, state (trees the app writes
    /// state in, kept whole), app (the app's own trees and language packages, kept whole)
    /// (repeatable).
    #[arg(
        long,
        value_name = "GROUP",
        hide_possible_values = true,
        help_heading = "Keep"
    )]
    pub skip_keep: Vec<crate::minify::KeepGroup>,
    /// Most the app's own trees may add (its working and program directories, and each
    /// language package a kept file is in: files no OS package owns, kept whole); a tree past
    /// what is left is cut to what was used, and reported. `64MB`, `1GB`, or bytes.
    #[arg(long, value_name = "SIZE", default_value = "64MB", value_parser = parse_size, help_heading = "Keep")]
    pub app_budget: u64,
    /// Keep the modules that kept Python, Ruby, JavaScript, Perl and PHP sources load by
    /// literal name, anywhere in the file (function bodies and `try` blocks too), where the
    /// runtime would find them: code paths the probes did not reach still find their modules.
    /// `off` keeps what the recording saw.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"], help_heading = "Keep")]
    pub static_imports: String,
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
    #[command(flatten)]
    pub docker_slim: DockerSlimOnly,
}

/// `--pull`, shared by build and profile.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// When to pull the image from its registry: `--pull=always` (`--pull` alone, as
    /// docker-slim's: missing).
    #[arg(
        long = "pull",
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_value = "missing",
        default_missing_value = "missing"
    )]
    pub when: crate::engine::registry::PullPolicy,
}

/// Slim one service of a Compose project, its dependencies running beside it.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The Compose file of the project whose service to slim (with --target-compose-svc).
    #[arg(long, value_name = "FILE", help_heading = "Compose")]
    pub compose_file: Option<std::path::PathBuf>,
    /// The service to slim: its image, run with its Compose settings on a private network,
    /// its `depends_on` started first (fresh again for the verification).
    #[arg(long, value_name = "SERVICE", help_heading = "Compose")]
    pub target_compose_svc: Option<String>,
    /// Start only these services (and what they depend on) beside the target (repeatable).
    #[arg(long, value_name = "SERVICE", help_heading = "Compose")]
    pub dep_include_compose_svc: Vec<String>,
    /// Do not start this service beside the target (repeatable).
    #[arg(long, value_name = "SERVICE", help_heading = "Compose")]
    pub dep_exclude_compose_svc: Vec<String>,
    /// Start none of the target's dependencies.
    #[arg(long, help_heading = "Compose")]
    pub dep_exclude_compose_svc_all: bool,
    /// Variables for the Compose file's interpolation instead of its directory's .env (the
    /// host's environment still wins).
    #[arg(long, value_name = "FILE", help_heading = "Compose")]
    pub compose_env_file: Option<std::path::PathBuf>,
    /// The project's name (default: the file's `name:`, else its directory's name).
    #[arg(long, value_name = "NAME", help_heading = "Compose")]
    pub compose_project_name: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    pub compose_net: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    pub container_probe_compose_svc: Option<String>,
}

/// docker-slim's build flags for what slim does not do: each is answered with what to do
/// instead (hidden from --help). Each holds the values given (an empty string for the flag
/// alone); only whether any was given matters. (Lists, not `Option<String>`: qemu's x86
/// emulation under a guest kernel now and then misreads the overflow flag that the compiled
/// `Option<String>::is_some` tests, and slim saw flags nobody gave.)
#[derive(Debug, Args)]
pub struct DockerSlimOnly {
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub dockerfile: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub dockerfile_context: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub show_blogs: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub delete_generated_fat_image: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_entrypoint: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_cmd: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_expose: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_workdir: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_env: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_label: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub new_volume: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub path_perms: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub path_perms_file: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub include_new: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub use_local_mounts: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub use_sensor_volume: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub sensor_ipc_mode: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub sensor_ipc_endpoint: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub image_overbuild: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub keep_tmp_artifacts: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub remove_file_artifacts: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub etc_hosts_map: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub container_dns: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub container_dns_search: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub link: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub http_probe_apispec: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", action = clap::ArgAction::Append)]
    pub http_probe_apispec_file: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Append)]
    pub http_probe_full: Vec<String>,
}

impl DockerSlimOnly {
    /// (flag, what slim does instead) for each docker-slim flag given.
    pub fn given(&self) -> Vec<(&'static str, &'static str)> {
        let dockerfile = "build the fat image first (`docker build -t app:fat .`), then \
                          `slim build app:fat`";
        let config = "slim keeps the fat image's config; change it on the slim image with a \
                      Dockerfile `FROM app.slim` (ENTRYPOINT, CMD, ENV, LABEL, EXPOSE, WORKDIR)";
        let sensor = "slim has no sensor container (its recorder is eBPF in the slim process): \
                      drop the flag";
        let perms = "slim keeps every kept path's permissions and owners as they are: drop the \
                     flag, or fix them in a Dockerfile `FROM app.slim`";
        let artifacts = "slim removes its work files itself and writes its outputs to \
                         --output-dir: drop the flag";
        let net = "pass docker's own networking instead: --network NAME (a network with the \
                   names and DNS the app needs)";
        let apispec = "turn the API spec into a --http-probe-cmd-file (docker-slim's JSON \
                       format) or --http-probe-cmd flags";
        let flags: [(&'static str, bool, &'static str); 28] = [
            ("--dockerfile", !self.dockerfile.is_empty(), dockerfile),
            ("--dockerfile-context", !self.dockerfile_context.is_empty(), dockerfile),
            ("--show-blogs", !self.show_blogs.is_empty(), dockerfile),
            ("--delete-generated-fat-image", !self.delete_generated_fat_image.is_empty(), dockerfile),
            ("--new-entrypoint", !self.new_entrypoint.is_empty(), config),
            ("--new-cmd", !self.new_cmd.is_empty(), config),
            ("--new-expose", !self.new_expose.is_empty(), config),
            ("--new-workdir", !self.new_workdir.is_empty(), config),
            ("--new-env", !self.new_env.is_empty(), config),
            ("--new-label", !self.new_label.is_empty(), config),
            ("--new-volume", !self.new_volume.is_empty(), config),
            ("--path-perms", !self.path_perms.is_empty(), perms),
            ("--path-perms-file", !self.path_perms_file.is_empty(), perms),
            ("--include-new", !self.include_new.is_empty(), "files the app creates at run time are not in the image; keep image paths with --include-path"),
            ("--use-local-mounts", !self.use_local_mounts.is_empty(), sensor),
            ("--use-sensor-volume", !self.use_sensor_volume.is_empty(), sensor),
            ("--sensor-ipc-mode", !self.sensor_ipc_mode.is_empty(), sensor),
            ("--sensor-ipc-endpoint", !self.sensor_ipc_endpoint.is_empty(), sensor),
            ("--image-overbuild", !self.image_overbuild.is_empty(), "slim always writes a new single-layer image under --tag: drop the flag"),
            ("--keep-tmp-artifacts", !self.keep_tmp_artifacts.is_empty(), artifacts),
            ("--remove-file-artifacts", !self.remove_file_artifacts.is_empty(), artifacts),
            ("--etc-hosts-map", !self.etc_hosts_map.is_empty(), net),
            ("--container-dns", !self.container_dns.is_empty(), net),
            ("--container-dns-search", !self.container_dns_search.is_empty(), net),
            ("--link", !self.link.is_empty(), net),
            ("--http-probe-apispec", !self.http_probe_apispec.is_empty(), apispec),
            ("--http-probe-apispec-file", !self.http_probe_apispec_file.is_empty(), apispec),
            ("--http-probe-full", !self.http_probe_full.is_empty(), "give every method and path as probes (--http-probe-cmd-file or --http-probe-cmd)"),
        ];
        flags
            .into_iter()
            .filter(|(_, given, _)| *given)
            .map(|(flag, _, hint)| (flag, hint))
            .collect()
    }
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
    /// docker-slim's switch for the default probe: `--http-probe=false` is --http-probe-off.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Probes")]
    pub http_probe: Option<bool>,
    /// An HTTP probe inline, as docker-slim writes it: [PROTO:][METHOD:]PATH, e.g. `/health`,
    /// `POST:/api`, `https:GET:/`, `crawl:/` (repeatable).
    #[arg(long, value_name = "PROBE", help_heading = "Probes")]
    pub http_probe_cmd: Vec<String>,
    /// docker-slim's: stop when a probe fails on the original image; slim always does, so
    /// only `true` is accepted.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Probes")]
    pub http_probe_exit_on_failure: Option<bool>,
    /// docker-slim's retry count: N more attempts after the first (--probe-retries N+1).
    #[arg(long, value_name = "N", help_heading = "Probes")]
    pub http_probe_retry_count: Option<u32>,
    /// docker-slim's seconds between retries: slim backs off by itself from 0.2 s; accepted.
    #[arg(long, value_name = "SECS", help_heading = "Probes")]
    pub http_probe_retry_wait: Option<u64>,
    /// Only probe these container ports over HTTP (comma-separated).
    #[arg(long, value_delimiter = ',', help_heading = "Probes")]
    pub http_probe_ports: Vec<u16>,
    /// Follow same-origin links of HTML answers (at most 50 pages, 3 levels deep).
    #[arg(long, visible_alias = "http-crawl", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Probes")]
    pub http_probe_crawl: Option<bool>,
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
    /// Times the original image is started (a fresh container each time) and probed under the
    /// recorder; the recordings are joined (calls made only on some schedules: thread start-up
    /// order, CPU affinity).
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Probes")]
    pub record_starts: u32,
    /// Times the checked image is started under its profile and probed; every start after the
    /// first runs with every CPU kept busy by slim (a call an app makes only under load fails
    /// here, not in production).
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Probes")]
    pub verify_starts: u32,
    /// Seconds the app gets to stop on its stop signal while recorded (its shutdown path is
    /// part of its life), before the engine kills it. 0 skips the recorded stop.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "SECS",
        help_heading = "Probes"
    )]
    pub stop_timeout: u64,
    /// Run the image's own HEALTHCHECK as an exec probe while recording and verifying (what it
    /// runs is kept; if it fails on the original it is dropped with a warning).
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"], help_heading = "Probes")]
    pub healthcheck_probe: String,
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
    #[arg(
        long,
        short,
        visible_alias = "publish-port",
        help_heading = "Container"
    )]
    pub publish: Vec<String>,
    /// docker-slim's: publish every exposed port; slim always does (on 127.0.0.1).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Container")]
    pub publish_exposed_ports: Option<bool>,
    /// Stream the container's output to stderr while it runs (docker-slim's --show-clogs).
    #[arg(long, help_heading = "Container")]
    pub show_clogs: bool,
    /// Label the container KEY=VALUE (repeatable; `slim.*` is slim's own).
    #[arg(long, help_heading = "Container")]
    pub label: Vec<String>,
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
    /// Allow syscall NAME in seccomp.json with any arguments, even one Docker's default profile
    /// refuses (unshare, setns, clone3, io_uring_setup, keyctl...); repeatable.
    #[arg(long, value_name = "NAME", help_heading = "Container")]
    pub seccomp_allow: Vec<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub action: Option<ProfileAction>,
    /// The image to record (name or id in the engine).
    #[arg(required = true)]
    pub target: Option<String>,
    /// Where seccomp.json, seccomp-profile.yaml, apparmor.profile and report.json go
    /// (default: slim-out/NAME).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Skip running the image again under the profile against the same probes.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub pull: PullArgs,
    /// Only the final line (and errors).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `slim profile` does besides recording an image.
#[derive(Debug, Subcommand)]
pub enum ProfileAction {
    /// Compare a seccomp profile (Docker's JSON) with Docker's default profile, or with another
    /// profile: the calls it allows that the other refuses (exit 1 when there are any), and the
    /// calls it takes away, in one table.
    Diff(ProfileDiffArgs),
    /// Merge the seccomp profiles of several recordings (replicas, probe sets) into one that
    /// allows the union of what they allow, and count how many of them allowed each call:
    /// `slim profile merge OUT DIR...` writes OUT/seccomp.json, seccomp.log.json,
    /// seccomp-profile.yaml and merge.json (the counts), and apparmor.profile when every input
    /// has one of the same name.
    Merge(ProfileMergeArgs),
}

#[derive(Debug, Args)]
pub struct ProfileMergeArgs {
    /// Where the merged profiles and merge.json go (created if missing; not one of the
    /// inputs).
    pub out: std::path::PathBuf,
    /// Output dirs of `slim build` or `slim profile` (their seccomp.json is read), or seccomp
    /// profiles in Docker's JSON format.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<std::path::PathBuf>,
    /// Inputs of different architectures: merge each architecture's apart, into OUT/ARCH/
    /// (x86_64, aarch64...). Without it they are refused.
    #[arg(long)]
    pub per_arch: bool,
}

#[derive(Debug, Args)]
pub struct ProfileDiffArgs {
    /// The profile to check (seccomp.json).
    pub profile: std::path::PathBuf,
    /// Compare with this profile instead of Docker's default (moby's default.json works too).
    #[arg(long, value_name = "FILE")]
    pub against: Option<std::path::PathBuf>,
    /// The architecture to compare on (x86_64, aarch64, x86, arm; default: the profile's
    /// first, else this machine's).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// A capability the container gets on top of Docker's defaults (repeatable): Docker's
    /// default profile gives more calls with some.
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// A capability the container is run without (repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How an image in the engine is read (shared by build, xray, squash and diff).
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
pub struct DiffArgs {
    /// The image to compare from: name or id, or docker-archive:PATH.
    #[arg(value_name = "FAT")]
    pub fat: String,
    /// The image to compare with: name or id, or docker-archive:PATH.
    #[arg(value_name = "SLIM")]
    pub slim: String,
    /// Print JSON: {"left", "right", "only_left", "only_right", "changed"}, every path listed.
    #[arg(long)]
    pub json: bool,
    /// Path components of a top directory (2: /usr/share).
    #[arg(long, default_value_t = crate::image::diff::DEFAULT_DEPTH, value_name = "N")]
    pub depth: usize,
    /// Rows of each table.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct DebugArgs {
    /// The running container (name or id).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Run the shell from this image (name or id) instead of the slim image's fat image,
    /// which slim finds by the image's `slim.base-image.id` label. Any image with `sh` works.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Run `sh -c CMD` there instead of an interactive shell; slim exits with its exit code.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Run the shell as root with the engine's default capabilities and SYS_PTRACE, whatever
    /// the container runs with: enough to enter the files of a container whose processes run
    /// as another user, and to strace them.
    #[arg(long)]
    pub privileged_debug: bool,
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

/// A size: bytes, or a number with a unit (`64MB`, `1.5G`, `512k`; powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: give bytes or a number with KB, MB or GB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`: use KB, MB or GB")),
    };
    Ok((number * scale as f64) as u64)
}

/// `--skip-keep`'s words are the groups' names; clap refuses others, listing them.
impl clap::ValueEnum for crate::minify::KeepGroup {
    fn value_variants<'a>() -> &'a [Self] {
        Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// `--pull` values (the policy lives in `engine::registry`, which knows nothing of clap);
/// docker-slim's `--pull=true|false` read as missing and never.
impl clap::ValueEnum for crate::engine::registry::PullPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Missing, Self::Always, Self::Never]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Self::Missing => PossibleValue::new("missing")
                .alias("true")
                .help("When the engine does not have the image"),
            Self::Always => PossibleValue::new("always").help("Every time, for the latest"),
            Self::Never => PossibleValue::new("never")
                .alias("false")
                .help("Never: the image must be in the engine"),
        })
    }
}

/// `--read-via` values (the choice lives in the pipeline, which knows nothing of clap).
impl clap::ValueEnum for crate::commands::pipeline::ReadVia {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Auto, Self::Storage, Self::Save]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Self::Auto => PossibleValue::new("auto")
                .help("The engine's overlay storage when slim can reach it, else `docker save`"),
            Self::Storage => PossibleValue::new("storage")
                .help("Only the engine's overlay storage (local engine, root)"),
            Self::Save => PossibleValue::new("save").help("Only the `docker save` stream"),
        })
    }
}

/// `--package-db` values (the mode lives in `packages`, which knows nothing of clap).
impl clap::ValueEnum for crate::packages::Mode {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Pruned, Self::Full, Self::None]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Self::Pruned => PossibleValue::new("pruned")
                .help("Only the packages that keep a file, cut to their kept files"),
            Self::Full => PossibleValue::new("full").help(
                "The fat image's database as it is (scanners then list packages that are gone)",
            ),
            Self::None => PossibleValue::new("none")
                .help("No package database (unless the app itself read it)"),
        })
    }
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
    fn every_subcommand_is_in_the_completions_and_the_man_page() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert!(names.len() >= 9, "{names:?}");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = crate::commands::completions(shell);
            for name in &names {
                assert!(script.contains(name.as_str()), "{shell}: no {name}");
            }
            assert!(script.contains("http-probe-cmd-file"), "{shell}");
        }
        let man = crate::commands::man_page().unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH slim"),
            "{}",
            &man[..200]
        );
        for name in &names {
            assert!(
                man.contains(&format!("slim\\-{name}")) || man.contains(name.as_str()),
                "man: no {name}"
            );
        }
        assert!(
            man.contains("http\\-probe\\-cmd\\-file"),
            "man: no build flags"
        );
    }

    #[test]
    fn pull_alone_is_docker_slims_flag_and_never_takes_the_image_as_its_value() {
        use crate::engine::registry::PullPolicy;
        let parse = |line: &str| {
            let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
            let Command::Build(args) = cli.command else {
                panic!("{line}: not a build")
            };
            (args.target.clone(), args.pull.when)
        };
        assert_eq!(
            parse("slim build --pull app:fat"),
            ("app:fat".into(), PullPolicy::Missing)
        );
        assert_eq!(
            parse("slim build --pull=always app:fat"),
            ("app:fat".into(), PullPolicy::Always)
        );
        assert_eq!(
            parse("slim build --pull=false app:fat"),
            ("app:fat".into(), PullPolicy::Never)
        );
        assert_eq!(
            parse("slim build app:fat"),
            ("app:fat".into(), PullPolicy::Missing)
        );
    }

    #[test]
    fn only_the_docker_slim_flags_given_are_named() {
        let given = |line: &str| -> Vec<&'static str> {
            let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
            let Command::Build(args) = cli.command else {
                panic!("not a build: {line}");
            };
            args.docker_slim
                .given()
                .into_iter()
                .map(|(flag, _)| flag)
                .collect()
        };
        assert!(given("slim build --tag a:b --output-dir o app:fat").is_empty());
        assert_eq!(given("slim build --show-blogs app:fat"), ["--show-blogs"]);
        assert_eq!(
            given("slim build --dockerfile Dockerfile --new-cmd x app:fat"),
            ["--dockerfile", "--new-cmd"]
        );
    }

    #[test]
    fn docker_slim_command_lines_parse() {
        for line in [
            // docker-slim's README
            "slim build --target app:fat --http-probe=false --show-clogs --copy-meta-artifacts out",
            "slim build --http-probe-cmd /api/info --http-probe-cmd POST:/api --publish-exposed-ports app:fat",
            "slim --debug build --http-probe-retry-count 2 --http-probe-retry-wait 2 --include-path-file f --include-bin-file g --preserve-path-file h --keep-perms --tag a:b app:fat",
            // the Raspberry Pi Go post
            "slim build --env A=B --env C=D --http-probe-cmd-file probeCmd.json --tag slim_go_app:latest fat_go_app:latest",
            "slim build --publish-port 8080:8080 --http-crawl=false --http-probe-exit-on-failure --continue-after 10 app:fat",
        ] {
            Cli::try_parse_from(line.split_whitespace()).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn skip_keep_takes_the_group_names_and_lists_them_for_another_word() {
        use crate::minify::KeepGroup;
        let cli = Cli::try_parse_from([
            "slim",
            "build",
            "--skip-keep",
            "app",
            "--skip-keep",
            "dns",
            "app:fat",
        ])
        .unwrap();
        let Command::Build(args) = cli.command else {
            panic!("not build");
        };
        assert_eq!(args.skip_keep, [KeepGroup::App, KeepGroup::Dns]);
        let err =
            Cli::try_parse_from(["slim", "build", "--skip-keep", "nope", "app:fat"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        let text = err.to_string();
        assert!(
            text.contains("users, dns, certs, tmp, state, app"),
            "{text}"
        );
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
