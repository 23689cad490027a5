//! Shared helpers for the end-to-end tests: find the built `slim`, run it, parse its JSON.

#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// One test at a time within a test target (each target has its own copy of this module): the
/// engine is shared, the "no container left behind" checks look at all of it, and two runs on
/// 2 cores would slow each other into timeouts.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes this target's one-at-a-time lock, held until dropped (a lock a failed test poisoned is
/// taken all the same).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The JSON file at `path`, parsed.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// The names of every SCMP_ACT_ALLOW rule of a seccomp profile, with or without argument
/// conditions.
pub fn allowed_names(profile: &serde_json::Value) -> std::collections::BTreeSet<String> {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|rule| rule["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// The `slim` binary under test: `SLIM_BIN` (set by `cargo xtask test`), else the release build.
pub fn slim_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SLIM_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release/slim");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo xtask test` (it builds slim first)",
        bin.display()
    );
    bin
}

pub fn slim() -> Command {
    Command::new(slim_bin())
}

/// True when running as root; privileged tests print why they skip otherwise.
pub fn is_root(test: &str) -> bool {
    let root = unsafe_euid() == 0;
    if !root {
        eprintln!("skipping {test}: needs root (run `sudo cargo xtask test`)");
    }
    root
}

fn unsafe_euid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(u32::MAX)
}

/// Runs `cmd`, asserting success, and returns stdout parsed as JSON.
pub fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("slim runs");
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// report.json of an output dir.
pub fn read_report(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
        .expect("report.json is JSON")
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "slim failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Paths of a `slim trace --json` result that were found, with their uses.
pub fn found_paths(trace: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    trace["paths"]
        .as_array()
        .expect("paths array")
        .iter()
        .filter(|p| p["found"].as_bool() == Some(true))
        .map(|p| {
            let uses = p["uses"]
                .as_array()
                .expect("uses")
                .iter()
                .map(|u| u.as_str().expect("use").to_owned())
                .collect();
            (p["path"].as_str().expect("path").to_owned(), uses)
        })
        .collect()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "slim-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Debian base image `cargo xtask test` imports (debootstrap, no registry).
pub const BASE_IMAGE: &str = "slim-test/debian:bookworm";

/// Runs `docker ARGS`, asserting success; returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The id (`sha256:...`) of `image` in the engine.
pub fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", image])
}

/// The arm64 Debian base image `cargo xtask test` loads (run here through qemu-user).
pub const ARM64_BASE_IMAGE: &str = "slim-test/debian-arm64:bookworm";

/// Asserts the base image exists, with the fix when it does not.
pub fn require_base_image() {
    assert!(
        image_present(BASE_IMAGE),
        "{BASE_IMAGE} is missing: `cargo xtask test` builds it"
    );
}

/// Whether the engine has `image`.
pub fn image_present(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A container removed (with `docker rm -f`) when dropped, also when a test fails.
pub struct Container(pub String);

impl Container {
    pub fn run_detached(args: &[&str]) -> Self {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        Self(docker(&all))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// Builds `tag` from a Dockerfile given on stdin (no build context, no registry).
pub fn build_image(tag: &str, dockerfile: &str) {
    use std::io::Write as _;
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker build starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build {tag} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An image removed when dropped.
pub struct Image(pub String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// Sends `GET path` to 127.0.0.1:port and returns (status line, body), retrying while the
/// server starts.
pub fn http_get(port: u16, path: &str) -> (String, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let attempt = (|| -> std::io::Result<(String, Vec<u8>)> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response)?;
            let split = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| std::io::Error::other("no header end"))?;
            let head = String::from_utf8_lossy(&response[..split]).into_owned();
            let status = head.lines().next().unwrap_or_default().to_owned();
            Ok((status, response[split + 4..].to_vec()))
        })();
        match attempt {
            Ok(answer) => return answer,
            Err(err) if std::time::Instant::now() > deadline => {
                panic!("GET {path} on {port}: {err}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// The host port docker published for `container_port/tcp`.
pub fn published_port(container: &str, container_port: u16) -> u16 {
    let out = docker(&["port", container, &format!("{container_port}/tcp")]);
    out.lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port in {out:?}"))
}

/// Builds the test app `tests/apps/NAME` as `slim-test/NAME:fat` and returns the tag.
pub fn app_image(name: &str) -> String {
    require_base_image();
    // Two tests building the same image at once make the engine fail one of them.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let tag = format!("slim-test/{name}:fat");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("apps")
        .join(name);
    let out = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(&dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build runs");
    assert!(
        out.status.success(),
        "docker build {tag} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

/// A probe file of the repository's `probes/` directory.
pub fn probe_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../probes")
        .join(name)
}

/// Containers slim started (they carry the label slim.run=true), running or not.
pub fn slim_containers() -> Vec<String> {
    docker(&["ps", "-aq", "--filter", "label=slim.run=true"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Appends one tar member (header and padded data) to `out`, written raw: `kind` is the type
/// flag (`b'0'` file, `b'1'` hard link, `b'2'` symlink), `link` its target.
pub fn tar_member(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

/// What a verified native build runs under on this host: its seccomp.json, and its AppArmor
/// profile too where the kernel enforces AppArmor and `apparmor_parser` is installed (as slim
/// decides).
pub fn verified_under() -> serde_json::Value {
    let enforced = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|e| e.trim() == "Y")
        && std::path::Path::new("/sys/kernel/security/apparmor/profiles").exists()
        && Command::new("sh")
            .args(["-c", "command -v apparmor_parser"])
            .output()
            .is_ok_and(|o| o.status.success());
    match enforced {
        true => serde_json::json!(["seccomp.json", "apparmor.profile"]),
        false => serde_json::json!(["seccomp.json"]),
    }
}

/// Runs `trace` (a `slim trace --json --container ...` command), calls `during` once it
/// records, stops it with SIGINT as Ctrl-C would, and returns the trace; fails the test when it
/// never records or does not succeed.
pub fn trace_until_interrupted(mut trace: Command, during: impl FnOnce()) -> serde_json::Value {
    let mut child = trace
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("slim trace starts");
    // Wait until it records (slow under emulation): SIGINT stops it from then on.
    let stderr = child.stderr.take().expect("its stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("recording container") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let recording = rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok();
    during();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("slim trace ends");
    let stderr = reader.join().expect("stderr reader").join("\n");
    assert!(recording, "slim never started recording: {stderr}");
    assert!(
        out.status.success(),
        "slim failed ({}): {stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).expect("the trace is JSON")
}
