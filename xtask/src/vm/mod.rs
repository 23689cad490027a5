//! `cargo xtask test-vm ARCH`: the kernel test bench. Boots Debian's own kernel of ARCH under
//! qemu-system (software emulation: KVM guests stall on this kind of host) with a Debian rootfs
//! that runs a Docker engine, hands in the static slim of that architecture, its trace tests and
//! the test images, and runs the guest tests (`tests/vm/guest.sh`) inside: the trace end-to-end
//! tests, `slim build` of an app image of the VM's own architecture verified under its seccomp
//! profile, and the app under its AppArmor profile, enforced.
//!
//! A machine is one entry of [`MACHINES`]; a guest test is one shell function in guest.sh.

mod assets;
mod cpio;

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    dist, fixtures,
    util::{output, run as run_cmd, target_dir, workspace_root},
};

/// One machine the bench boots.
pub struct Machine {
    /// Debian's architecture name (`amd64`, `arm64`).
    pub arch: &'static str,
    /// The metapackage naming the current kernel (`linux-image-amd64`).
    pub kernel_meta: &'static str,
    pub qemu: &'static str,
    /// The Debian package with `qemu`, installed from bookworm-backports.
    pub qemu_package: &'static str,
    pub qemu_args: &'static [&'static str],
    pub console: &'static str,
    /// Rust target of the static slim and test binaries.
    pub rust_target: &'static str,
    /// The app image of this architecture the guest slims: (tests/apps dir, tag).
    pub apps: &'static [(&'static str, &'static str)],
    /// Base images the apps build on (loaded too, for the trace tests).
    pub base_image: &'static str,
    /// Debian's name of the 32-bit architecture this kernel runs natively (compat): its
    /// busybox httpd fixture is slimmed in the guest.
    pub compat_arch: &'static str,
}

/// The machines: Debian 12's amd64 and arm64 kernels.
pub const MACHINES: &[Machine] = &[
    Machine {
        arch: "amd64",
        kernel_meta: "linux-image-amd64",
        qemu: "qemu-system-x86_64",
        qemu_package: "qemu-system-x86",
        qemu_args: &["-machine", "q35,accel=tcg", "-cpu", "max"],
        console: "ttyS0",
        rust_target: "x86_64-unknown-linux-musl",
        apps: &[
            ("python-http", "slim-test/python-http:fat"),
            ("nginx", "slim-test/nginx:fat"),
            ("python-unix", "slim-test/python-unix:fat"),
        ],
        base_image: fixtures::BASE_IMAGE,
        compat_arch: "i386",
    },
    Machine {
        arch: "arm64",
        kernel_meta: "linux-image-arm64",
        qemu: "qemu-system-aarch64",
        qemu_package: "qemu-system-arm",
        qemu_args: &["-machine", "virt,accel=tcg", "-cpu", "cortex-a72"],
        console: "ttyAMA0",
        rust_target: "aarch64-unknown-linux-musl",
        apps: &[("python-http-arm64", "slim-test/python-http-arm64:fat")],
        base_image: fixtures::ARM64_BASE_IMAGE,
        compat_arch: "armhf",
    },
];

/// Longest a VM may run before it is stopped and reported as too slow.
const VM_TIMEOUT: Duration = Duration::from_secs(25 * 60);

pub fn run(args: &[String]) -> Result<()> {
    let Some(arch) = args.first() else {
        bail!(
            "usage: cargo xtask test-vm <{}|all>",
            MACHINES
                .iter()
                .map(|m| m.arch)
                .collect::<Vec<_>>()
                .join("|")
        );
    };
    if arch == "all" {
        return run_all();
    }
    let machine = MACHINES
        .iter()
        .find(|m| m.arch == arch)
        .with_context(|| format!("no test machine {arch}"))?;
    boot(prepare(machine)?)
}

/// Runs the bench on every machine at once: each is prepared in turn (downloads, cross
/// builds, the engine's images), then all boot together. Software emulation leaves much of a
/// core idle while a guest waits (its engine, its timers), so together they take much less
/// than one after the other. Every machine's result is reported; the error names the failed.
pub fn run_all() -> Result<()> {
    let mut prepared = Vec::new();
    let mut failed: Vec<&str> = Vec::new();
    for machine in MACHINES {
        match prepare(machine) {
            Ok(ready) => prepared.push(ready),
            Err(err) => {
                eprintln!("test-vm {}: {err:#}", machine.arch);
                failed.push(machine.arch);
            }
        }
    }
    let runs: Vec<_> = prepared
        .into_iter()
        .map(|ready| {
            let arch = ready.machine.arch;
            (arch, std::thread::spawn(move || boot(ready)))
        })
        .collect();
    for (arch, run) in runs {
        let outcome = run
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the VM thread panicked")));
        if let Err(err) = outcome {
            eprintln!("test-vm {arch}: {err:#}");
            failed.push(arch);
        }
    }
    if !failed.is_empty() {
        bail!("the kernel test bench failed on {}", failed.join(", "));
    }
    Ok(())
}

/// A machine ready to boot.
struct Prepared {
    machine: &'static Machine,
    qemu: PathBuf,
    kernel: PathBuf,
    kernel_release: String,
    initrd: PathBuf,
    disk: PathBuf,
    payload: PathBuf,
    console: PathBuf,
    started: Instant,
    prepared: Duration,
}

/// Downloads and builds what the machine needs: kernel, root disk, initramfs, payload.
fn prepare(machine: &'static Machine) -> Result<Prepared> {
    let started = Instant::now();
    let qemu = which(machine.qemu).with_context(|| {
        format!(
            "{} is missing: `cargo xtask setup` installs {} from bookworm-backports",
            machine.qemu, machine.qemu_package
        )
    })?;
    assets::ensure_architecture(machine)?;
    let kernel = assets::kernel(machine)?;
    let disk = assets::root_disk(machine, &kernel)?;
    let work = target_dir().join("vm").join(machine.arch);
    fs::create_dir_all(&work)?;
    let initrd = work.join("initramfs.cpio");
    assets::initramfs(machine, &kernel, &initrd)?;
    let payload = payload(machine, &work)?;
    Ok(Prepared {
        machine,
        qemu,
        kernel: kernel.image.clone(),
        kernel_release: kernel.release.clone(),
        initrd,
        disk,
        payload,
        console: work.join("console.log"),
        started,
        prepared: started.elapsed(),
    })
}

/// Boots the prepared machine and runs the guest tests.
fn boot(ready: Prepared) -> Result<()> {
    let machine = ready.machine;
    let console = &ready.console;
    println!(
        "vm {}: booting {} {} under {} (software emulation); console: {}",
        machine.arch,
        machine.kernel_meta,
        ready.kernel_release,
        machine.qemu,
        console.display()
    );
    let booted = Instant::now();
    let mut qemu = Command::new(&ready.qemu);
    qemu.args(machine.qemu_args)
        .args([
            "-m", "3072", "-smp", "2", "-display", "none", "-monitor", "none",
        ])
        .args(["-serial", "stdio", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(&ready.kernel)
        .arg("-initrd")
        .arg(&ready.initrd)
        .args([
            "-append",
            &format!("console={} panic=-1 loglevel=3", machine.console),
        ])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            ready.disk.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio",
            ready.payload.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // qemu dies with this task, however it ends (a CI timeout's SIGKILL included).
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        qemu.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = Guard(qemu.spawn().context("cannot start qemu")?);
    let outcome = watch(child, console, machine.arch);
    let _ = fs::remove_file(&ready.payload);
    let outcome = outcome?;
    println!(
        "vm {}: prepare {:.0}s, VM {:.0}s (boot to init {}, engine start {}), total {:.0}s",
        machine.arch,
        ready.prepared.as_secs_f64(),
        booted.elapsed().as_secs_f64(),
        outcome.timing("boot"),
        outcome.timing("engine"),
        ready.started.elapsed().as_secs_f64()
    );
    match (outcome.passed, outcome.failed, outcome.finished) {
        (_, _, false) => bail!(
            "the VM stopped before its tests finished (see {})",
            console.display()
        ),
        (passed, 0, true) if passed > 0 => Ok(()),
        (passed, failed, true) => bail!(
            "{failed} VM tests failed, {passed} passed (see {})",
            console.display()
        ),
    }
}

/// Kills qemu when dropped (a failed or interrupted run never leaves it behind).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the guest reported.
#[derive(Default)]
struct Outcome {
    passed: u32,
    failed: u32,
    finished: bool,
    timings: Vec<(String, String)>,
}

impl Outcome {
    fn timing(&self, name: &str) -> String {
        self.timings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "?".into())
    }
}

/// Streams the console into `log`, printing the guest's own lines, until qemu exits or the
/// timeout passes.
fn watch(mut qemu: Guard, log: &Path, arch: &str) -> Result<Outcome> {
    let stdout = qemu.0.stdout.take().context("qemu stdout")?;
    let mut file = fs::File::create(log)?;
    let deadline = Instant::now() + VM_TIMEOUT;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            if tx
                .send(String::from_utf8_lossy(&line).trim_end().to_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let mut outcome = Outcome::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "the VM did not finish within {} min: software emulation (no KVM) is too \
                     slow here, or the guest hung (see {})",
                    VM_TIMEOUT.as_secs() / 60,
                    log.display()
                );
            }
        };
        writeln!(file, "{line}")?;
        if line.starts_with("kernel: ") || line.starts_with("vm-test") {
            println!("[{arch}] {line}");
        }
        if let Some(rest) = line.strip_prefix("vm-timing: ") {
            if let Some((name, value)) = rest.split_once('=') {
                outcome.timings.push((name.to_owned(), value.to_owned()));
            }
        }
        if let Some(rest) = line.strip_prefix("vm-tests: ") {
            // "N passed, M failed"
            let numbers: Vec<u32> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            if let [passed, failed] = numbers[..] {
                outcome.passed = passed;
                outcome.failed = failed;
                outcome.finished = true;
            }
        }
    }
    let _ = qemu.0.wait();
    Ok(outcome)
}

fn which(command: &str) -> Option<PathBuf> {
    output(Command::new("sh").args(["-c", &format!("command -v {command}")]))
        .map(|p| PathBuf::from(p.trim()))
        .filter(|p| p.is_absolute())
}

/// The payload disk: static slim and trace tests of the machine's architecture, the guest
/// script, the probe files, and the images (one docker-archive).
fn payload(machine: &Machine, work: &Path) -> Result<PathBuf> {
    let dir = work.join("payload");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("probes"))?;
    let (slim, trace_tests) = static_binaries(machine)?;
    fs::copy(&slim, dir.join("slim"))?;
    fs::copy(&trace_tests, dir.join("trace-tests"))?;
    let root = workspace_root();
    fs::copy(root.join("tests/vm/guest.sh"), dir.join("guest.sh"))?;
    for probe in fs::read_dir(root.join("probes"))? {
        let probe = probe?.path();
        if probe.extension().is_some_and(|e| e == "json") {
            fs::copy(&probe, dir.join("probes").join(probe.file_name().unwrap()))?;
        }
    }
    let mut images = vec![machine.base_image.to_owned()];
    let mut apps = String::new();
    for (app, tag) in machine.apps {
        run_cmd(
            Command::new("docker")
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "-q", "-t", tag])
                .arg(root.join("tests/apps").join(app))
                .stdout(Stdio::null()),
        )?;
        images.push((*tag).to_owned());
        apps.push_str(&format!("{app} {tag}\n"));
    }
    let compat_tag = fixtures::httpd_32bit_image(machine.compat_arch)?;
    apps.push_str(&format!("httpd-32bit {compat_tag}\n"));
    images.push(compat_tag);
    fs::write(dir.join("apps"), apps)?;
    fs::write(
        dir.join("machine"),
        format!("arch={}\nbase_image={}\n", machine.arch, machine.base_image),
    )?;
    println!("vm: docker save {}", images.join(" "));
    run_cmd(
        Command::new("docker")
            .arg("save")
            .arg("-o")
            .arg(dir.join("images.tar"))
            .args(&images),
    )?;
    let disk = work.join("payload.img");
    assets::payload_disk(&dir, &disk)?;
    fs::remove_dir_all(&dir)?;
    Ok(disk)
}

/// Builds slim and the trace tests as static binaries of the machine's architecture.
fn static_binaries(machine: &Machine) -> Result<(PathBuf, PathBuf)> {
    let target = dist::target(machine.rust_target)?;
    let slim = dist::static_slim(target)?;
    let json = output(
        dist::cargo_for(
            target,
            &[
                "test",
                "--package",
                "slim-e2e",
                "--test",
                "trace",
                "--no-run",
                "--message-format=json",
            ],
        )?
        .stderr(Stdio::inherit()),
    )
    .context("building the trace tests failed")?;
    let tests = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "trace")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo named no trace test executable")?;
    Ok((slim, tests))
}
