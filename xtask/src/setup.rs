//! `cargo xtask setup`: make a fresh Debian/Ubuntu machine (as root) ready to build and test slim.
//!
//! Every step first checks whether it is needed, so a second run only checks and takes seconds.
//! Each step prints one line saying what it found or did.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::util::{output, run as run_cmd};

/// The nightly toolchain the eBPF object is built with (pinned: bpf-linker links against its LLVM).
pub const NIGHTLY: &str = "nightly-2026-05-20";
const BPF_LINKER_VERSION: &str = "0.13";

/// Debian packages and the command (or file, when absolute) each provides (checked first).
const PACKAGES: &[(&str, &str)] = &[
    ("docker.io", "dockerd"),
    ("debootstrap", "debootstrap"),
    ("apparmor", "apparmor_parser"),
    ("qemu-user-static", "qemu-aarch64-static"),
    ("binfmt-support", "update-binfmts"),
    ("crun", "crun"),
    ("podman", "podman"),
    ("kmod", "depmod"),
    ("e2fsprogs", "mkfs.ext4"),
    ("gcc-aarch64-linux-gnu", "aarch64-linux-gnu-gcc"),
    (
        "libc6-dev-arm64-cross",
        "/usr/aarch64-linux-gnu/include/stdio.h",
    ),
    ("postgresql-client", "psql"),
    ("wrk", "wrk"),
    ("time", "/usr/bin/time"),
    ("llvm", "llvm-strip"),
    ("python3-venv", "/usr/share/doc/python3-venv"),
    // A registry on 127.0.0.1 for the pull/push tests, its htpasswd, and an independent client.
    ("docker-registry", "/usr/bin/docker-registry"),
    ("apache2-utils", "htpasswd"),
    ("skopeo", "skopeo"),
    // Headless, network-less browser for report.html (tests/report_html.rs).
    ("chromium", "chromium"),
];

/// The SPDX project's validator (PyPI `spdx-tools`), for the SBOM tests.
const SPDX_TOOLS_VERSION: &str = "0.8.5";

/// Where setup installs `pyspdxtools` (a venv; the tests look for it there).
pub fn spdx_tools_venv() -> std::path::PathBuf {
    cache_dir().join("spdx-tools")
}

/// The schema checkers for the CI templates (tests/ci_templates.rs): check-jsonschema with its
/// vendored GitHub and GitLab schemas, and kubernetes-validate with Kubernetes' own schemas,
/// both offline.
const CI_SCHEMA_TOOLS: &[(&str, &str)] = &[
    ("check-jsonschema", "0.39.0"),
    ("kubernetes-validate", "1.37.0"),
];

/// Where setup installs `check-jsonschema` and `kubernetes-validate` (a venv; the tests look for
/// them there).
pub fn ci_schema_tools_venv() -> std::path::PathBuf {
    cache_dir().join("check-jsonschema")
}

fn cache_dir() -> std::path::PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/slim")
}

/// Pseudo filesystems slim or its tests use: (fstype, mount point).
const MOUNTS: &[(&str, &str)] = &[
    ("tracefs", "/sys/kernel/tracing"),
    ("bpf", "/sys/fs/bpf"),
    ("securityfs", "/sys/kernel/security"),
    ("binfmt_misc", "/proc/sys/fs/binfmt_misc"),
];

pub fn run() -> Result<()> {
    let started = Instant::now();
    let root = effective_uid() == 0;
    if !root {
        println!("setup: not root: skipping packages, mounts and dockerd (run as root for tests)");
    } else {
        packages()?;
        backports_packages()?;
        for (fstype, target) in MOUNTS {
            mount(fstype, target);
        }
        binfmt_arm64();
    }
    nightly()?;
    bpf_linker()?;
    pypi_tools(&spdx_tools_venv(), &[("spdx-tools", SPDX_TOOLS_VERSION)])?;
    pypi_tools(&ci_schema_tools_venv(), CI_SCHEMA_TOOLS)?;
    if root {
        crun_cgroups();
        let registered = register_crun()?;
        dockerd()?;
        if registered {
            reload_dockerd()?;
        }
        podman_service()?;
    }
    println!("setup: ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn effective_uid() -> u32 {
    output(Command::new("id").arg("-u"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, cmd)| !(has_command(cmd) || cmd.starts_with('/') && Path::new(cmd).exists()))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        println!("setup: packages: all present");
        return Ok(());
    }
    println!("setup: packages: installing {}", missing.join(" "));
    run_cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

/// Packages from bookworm-backports (the kernel test bench's qemu-system: bookworm's 7.2
/// conflicts with the preinstalled qemu-utils 10.0 from there; UPX 4 for
/// `--compress-executables`): (package, command).
const BACKPORTS: &[(&str, &str)] = &[
    ("qemu-system-x86", "qemu-system-x86_64"),
    ("qemu-system-arm", "qemu-system-aarch64"),
    ("upx-ucl", "upx-ucl"),
];

const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

fn backports_packages() -> Result<()> {
    let missing: Vec<&str> = BACKPORTS
        .iter()
        .filter(|(_, cmd)| !has_command(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        println!("setup: bookworm-backports packages: present");
        return Ok(());
    }
    let release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !release.contains("VERSION_CODENAME=bookworm") {
        println!(
            "setup: qemu-system: not on Debian bookworm, installing {} from the default suite",
            missing.join(" ")
        );
    } else if !Path::new(BACKPORTS_SOURCES).exists() {
        fs::write(
            BACKPORTS_SOURCES,
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        )?;
        println!("setup: apt: added bookworm-backports ({BACKPORTS_SOURCES})");
    }
    run_cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    let mut install = Command::new("apt-get");
    install.env("DEBIAN_FRONTEND", "noninteractive").args([
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
    ]);
    if release.contains("VERSION_CODENAME=bookworm") {
        install.args(["-t", "bookworm-backports"]);
    }
    println!(
        "setup: bookworm-backports: installing {}",
        missing.join(" ")
    );
    run_cmd(install.args(&missing))
}

fn is_mounted(target: &str) -> bool {
    fs::read_to_string("/proc/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(target)))
        .unwrap_or(false)
}

fn mount(fstype: &str, target: &str) {
    if is_mounted(target) {
        println!("setup: {fstype}: mounted at {target}");
        return;
    }
    let ok = Command::new("mount")
        .args(["-t", fstype, "nodev", target])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        println!("setup: {fstype}: mounted it at {target}");
    } else {
        println!("setup: {fstype}: could not mount at {target} (continuing)");
    }
}

/// Registers qemu-aarch64 with binfmt_misc so arm64 containers run on x86_64 hosts.
fn binfmt_arm64() {
    if std::env::consts::ARCH == "aarch64" {
        return;
    }
    let entry = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    if entry.exists() {
        println!("setup: binfmt qemu-aarch64: registered");
        return;
    }
    let conf = fs::read_to_string("/usr/lib/binfmt.d/qemu-aarch64.conf").unwrap_or_default();
    let rule = conf.lines().find(|l| l.starts_with(':')).map(str::to_owned);
    let registered = match rule {
        Some(rule) => fs::write("/proc/sys/fs/binfmt_misc/register", rule).is_ok(),
        None => Command::new("update-binfmts")
            .args(["--enable", "qemu-aarch64"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false),
    };
    if registered && entry.exists() {
        println!("setup: binfmt qemu-aarch64: registered it");
    } else {
        println!("setup: binfmt qemu-aarch64: could not register (arm64 tests will skip)");
    }
}

fn nightly_sysroot() -> Option<String> {
    output(Command::new("rustup").args(["run", NIGHTLY, "rustc", "--print", "sysroot"]))
        .map(|s| s.trim().to_owned())
}

/// Installs pinned PyPI `tools` (name, version) into the venv at `venv`, unless each is there.
fn pypi_tools(venv: &Path, tools: &[(&str, &str)]) -> Result<()> {
    let pip = venv.join("bin/pip");
    let missing: Vec<String> = tools
        .iter()
        .filter(|(name, version)| {
            !output(Command::new(&pip).args(["show", name]))
                .is_some_and(|s| s.contains(&format!("Version: {version}")))
        })
        .map(|(name, version)| format!("{name}=={version}"))
        .collect();
    let names: Vec<&str> = tools.iter().map(|(name, _)| *name).collect();
    if missing.is_empty() {
        println!("setup: {}: present", names.join(", "));
        return Ok(());
    }
    println!(
        "setup: {}: installing from PyPI into {}",
        missing.join(", "),
        venv.display()
    );
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || Path::new(p).exists())
        .unwrap_or("python3");
    if !pip.exists() {
        run_cmd(Command::new(python).arg("-m").arg("venv").arg(venv))?;
    }
    run_cmd(
        Command::new(&pip)
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(&missing),
    )
}

fn nightly() -> Result<()> {
    if let Some(sysroot) = nightly_sysroot() {
        if Path::new(&sysroot)
            .join("lib/rustlib/src/rust/library")
            .exists()
        {
            println!("setup: toolchain {NIGHTLY} with rust-src: present");
            return Ok(());
        }
    }
    println!("setup: toolchain {NIGHTLY}: installing with rust-src");
    run_cmd(Command::new("rustup").args([
        "toolchain",
        "install",
        NIGHTLY,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn bpf_linker() -> Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")) {
        println!("setup: {}: present", version.trim());
        return Ok(());
    }
    let sysroot = nightly_sysroot().context("the nightly toolchain has no sysroot")?;
    let lib = Path::new(&sysroot).join("lib");
    let llvm = fs::read_dir(&lib)
        .with_context(|| format!("cannot list {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM") && n.contains(".so"))
        })
        .with_context(|| format!("no libLLVM in {}", lib.display()))?;
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let link_dir = Path::new(&home).join(".cache/slim/llvm");
    fs::create_dir_all(&link_dir)?;
    let link = link_dir.join("libLLVM.so");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&llvm, &link)?;
    println!("setup: bpf-linker: building {BPF_LINKER_VERSION} against {NIGHTLY}'s LLVM (a few minutes, once)");
    run_cmd(
        Command::new("cargo")
            .env(
                "RUSTFLAGS",
                format!(
                    "-L {} -C link-arg=-Wl,-rpath,{}",
                    link_dir.display(),
                    lib.display()
                ),
            )
            .args([
                "install",
                "bpf-linker",
                "--version",
                &format!("^{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
            ]),
    )
}

const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// Registers crun with the engine as a second runtime (`docker run --runtime crun`), merged
/// into an existing daemon.json, never replacing it. True when daemon.json changed.
fn register_crun() -> Result<bool> {
    let Some(path) = output(Command::new("sh").args(["-c", "command -v crun"])) else {
        println!("setup: crun: not installed (crun tests will skip)");
        return Ok(false);
    };
    let path = path.trim().to_owned();
    let mut config: serde_json::Value = match fs::read_to_string(DAEMON_JSON) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text)
            .with_context(|| format!("{DAEMON_JSON} is not valid JSON; fix it by hand"))?,
        _ => serde_json::json!({}),
    };
    let Some(object) = config.as_object_mut() else {
        bail!("{DAEMON_JSON} is not a JSON object; fix it by hand");
    };
    let runtimes = object
        .entry("runtimes")
        .or_insert_with(|| serde_json::json!({}));
    if runtimes.get("crun").is_some() {
        println!("setup: crun: registered with the engine");
        return Ok(false);
    }
    let Some(runtimes) = runtimes.as_object_mut() else {
        bail!("{DAEMON_JSON}: `runtimes` is not an object; fix it by hand");
    };
    runtimes.insert("crun".into(), serde_json::json!({ "path": path }));
    fs::create_dir_all("/etc/docker")?;
    fs::write(DAEMON_JSON, serde_json::to_string_pretty(&config)? + "\n")?;
    println!("setup: crun: registered it in {DAEMON_JSON}");
    Ok(true)
}

/// crun refuses a cgroup v1 host whose v2 (unified) hierarchy holds controllers ("cgroups in
/// hybrid mode not supported"): the controllers no v1 hierarchy has yet (hugetlb on this kind of
/// machine) are bound to their own v1 hierarchies, as on a classic v1 host.
fn crun_cgroups() {
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let Ok(controllers) = fs::read_to_string(unified) else {
        return; // not a hybrid host
    };
    for controller in controllers.split_whitespace() {
        let target = format!("/sys/fs/cgroup/{controller}");
        if is_mounted(&target) {
            continue;
        }
        let ok = fs::create_dir_all(&target).is_ok()
            && Command::new("mount")
                .args(["-t", "cgroup", "-o", controller, "cgroup", &target])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        if ok {
            println!("setup: cgroup {controller}: moved to a v1 hierarchy at {target} (for crun)");
        } else {
            println!(
                "setup: cgroup {controller}: could not move it to v1 (crun may refuse to run)"
            );
        }
    }
}

/// Makes a running dockerd re-read daemon.json (runtimes are reloaded on SIGHUP).
fn reload_dockerd() -> Result<()> {
    let _ = Command::new("pkill")
        .args(["-HUP", "-x", "dockerd"])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let runtimes =
            output(Command::new("docker").args(["info", "--format", "{{json .Runtimes}}"]))
                .unwrap_or_default();
        if runtimes.contains("crun") {
            println!("setup: docker engine: crun runtime available");
            return Ok(());
        }
        thread::sleep(Duration::from_millis(250));
    }
    bail!("dockerd did not pick up the crun runtime from {DAEMON_JSON}; see /var/log/dockerd.log")
}

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Podman's Docker-compatible API, the second engine the tests drive slim through.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

fn podman_answers() -> bool {
    Command::new("docker")
        .args([
            "-H",
            &format!("unix://{PODMAN_SOCKET}"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `podman system service` on [`PODMAN_SOCKET`]. Podman's default ulimits ask for more
/// than this machine's hard limits (setrlimit is refused here), so a containers.conf with lower
/// ones is written first where there is none.
fn podman_service() -> Result<()> {
    const CONF: &str = "/etc/containers/containers.conf";
    match fs::read_to_string(CONF) {
        Err(_) => {
            fs::create_dir_all("/etc/containers")?;
            fs::write(
                CONF,
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"]\n",
            )?;
            println!("setup: podman: wrote {CONF} (ulimits within this host's hard limits)");
        }
        // The user's own file is never rewritten.
        Ok(conf) if !conf.contains("default_ulimits") => println!(
            "setup: podman: {CONF} sets no default_ulimits: if containers fail with \"setrlimit\", \
             add default_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"] under [containers]"
        ),
        Ok(_) => {}
    }
    if podman_answers() {
        println!("setup: podman service: answering on {PODMAN_SOCKET}");
        return Ok(());
    }
    fs::create_dir_all("/run/podman")?;
    let service = format!("unix://{PODMAN_SOCKET}");
    start_daemon(
        "podman system service",
        &["podman", "system", "service", "--time=0", &service],
        "/var/log/podman-service.log",
        (podman_answers, Duration::from_secs(30)),
    )?;
    println!("setup: podman service: answering on {PODMAN_SOCKET}");
    Ok(())
}

/// Starts `command` in its own session (`setsid -f` forks, so the daemon is nobody's child here:
/// when a test stops it, init reaps it rather than it being left a zombie of this process,
/// which would look like it still runs), logging to `log`, and waits until `answers` says so.
fn start_daemon(
    name: &str,
    command: &[&str],
    log: &str,
    (answers, patience): (fn() -> bool, Duration),
) -> Result<()> {
    let log_file = fs::File::create(log)?;
    let status = Command::new("setsid")
        .arg("-f")
        .args(command)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .with_context(|| format!("cannot start {name}"))?;
    if !status.success() {
        bail!("{name} failed to start ({status}); see {log}");
    }
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if answers() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(250));
    }
    bail!(
        "{name} did not answer within {}s; see {log}",
        patience.as_secs()
    )
}

fn dockerd() -> Result<()> {
    if engine_answers() {
        println!("setup: docker engine: answering");
        return Ok(());
    }
    println!("setup: docker engine: starting dockerd (log: /var/log/dockerd.log)");
    start_daemon(
        "dockerd",
        &["dockerd"],
        "/var/log/dockerd.log",
        (engine_answers, Duration::from_secs(60)),
    )?;
    println!("setup: docker engine: answering");
    Ok(())
}
