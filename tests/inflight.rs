//! Calls in flight and concurrent recordings, end to end.
//!
//! - An app started by an init wrapper (dumb-init) whose idle threads block for their whole life
//!   in poll, epoll_wait and sigtimedwait: every such call is in its seccomp profile (the
//!   recorder marks calls at entry), and the slim image starts 20 times out of 20 under that
//!   profile with the CPU loaded. A recorder that marks calls only at their return leaves those
//!   calls out, and the app exits at its first start under the profile.
//! - Four builds at once, several rounds: each records exactly what the same build records
//!   alone: a namespace number freed by another slim's container goes to the next container at
//!   once, and the recorder files a namespace made while recording under a key of its own, so
//!   the ended one's events and calls never count as the recorded container's.

mod support;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use support::*;

/// A temporary output dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("slim-inflight-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Busy threads on every CPU until dropped.
struct Load(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Load {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(2862933555777941757) + 3);
                    }
                })
            })
            .collect();
        Self(stop, threads)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs `image` under `profile`, waits for its answer on 8080, and says whether it still runs
/// a moment later (an idle thread whose call the profile denies ends the process at once).
fn start_under_profile(image: &str, profile: &Path) -> Result<(), String> {
    let id = docker(&[
        "run",
        "-d",
        "--label",
        "slim-test=inflight",
        "--security-opt",
        &format!("seccomp={}", profile.display()),
        "-p",
        "127.0.0.1::8080",
        image,
    ]);
    let id = id.trim().to_owned();
    let result = (|| {
        let port = published_port(&id, 8080);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read as _, Write as _};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.contains("idle!") {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err("no answer within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            &id,
        ]);
        match state.trim() {
            "true 0" => Ok(()),
            other => Err(format!("stopped (running, exit code: {other})")),
        }
    })();
    let logs = std::process::Command::new("docker")
        .args(["logs", &id])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    docker(&["rm", "-f", &id]);
    result.map_err(|e| format!("{e}; its output: {logs}"))
}

#[test]
fn blocked_calls_are_allowed_and_the_app_starts_20_of_20_under_load() {
    if !is_root("blocked_calls_are_allowed_and_the_app_starts_20_of_20_under_load") {
        return;
    }
    let _serial = serial();
    let image = app_image("init-poll");
    let out = TempDir::new("blocked");
    let tag = "slim-test/init-poll:slim";
    let result = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(&out.0)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&result);
    assert!(slim_containers().is_empty(), "containers left behind");

    let profile = out.0.join("seccomp.json");
    let names = allowed_names(&read_json(&profile));
    // The idle threads' calls (and dumb-init's signal wait), never returned while recording.
    let blocked: &[&str] = if cfg!(target_arch = "aarch64") {
        &["ppoll", "epoll_pwait", "rt_sigtimedwait"]
    } else {
        &["poll", "epoll_wait", "rt_sigtimedwait"]
    };
    for call in blocked {
        assert!(names.contains(*call), "{call} is not allowed: {names:?}");
    }
    let report = read_json(&out.0.join("report.json"));
    assert_eq!(
        report["recorder"]["stop_recorded"], true,
        "dumb-init handles SIGTERM: its stop is recorded"
    );
    assert_eq!(
        report["verify"]["stopped_like_original"], true,
        "the slim image stops on its stop signal with the original's exit code: {}",
        report["verify"]
    );
    assert_eq!(report["verify"]["starts"], 2, "{}", report["verify"]);
    assert_eq!(report["verify"]["loaded_starts"], 1, "{}", report["verify"]);
    // The shutdown path: dumb-init forwards the signal (kill) and reaps its child (wait4).
    for call in ["kill", "wait4"] {
        assert!(names.contains(call), "{call} (the stop) is not allowed");
    }

    let load = Load::start();
    let mut failures = Vec::new();
    for start in 1..=20 {
        if let Err(err) = start_under_profile(tag, &profile) {
            failures.push(format!("start {start}: {err}"));
        }
    }
    drop(load);
    let _ = std::process::Command::new("docker")
        .args(["rmi", tag])
        .output();
    assert!(
        failures.is_empty(),
        "{} of 20 starts under the profile failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What one build recorded: the kept files and the syscalls its profile allows (the app's,
/// with the fixed runtime groups). The runtime's own set-up before the app's exec is not
/// compared: runc's Go runtime preempts itself (tgkill, rt_sigreturn, sched_yield) on some
/// schedules only, and none of it reaches the profile.
#[derive(Debug, PartialEq, Eq)]
struct Recorded {
    kept: BTreeSet<String>,
    syscalls: BTreeSet<String>,
}

/// `slim build --no-verify` of a test app into `out`, returning what it recorded.
fn record(app: &str, extra: &[&str], out: &Path) -> std::process::Child {
    let mut command = slim();
    command
        .args(["build", "--no-verify", "--tag"])
        .arg(format!("slim-test/{app}:stress"))
        .arg("--output-dir")
        .arg(out)
        .args(extra)
        .arg(format!("slim-test/{app}:fat"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command.spawn().expect("slim runs")
}

fn recorded(out: &Path) -> Recorded {
    let report = read_json(&out.join("report.json"));
    let files = std::fs::read_to_string(out.join("files.txt")).expect("files.txt");
    Recorded {
        kept: files
            .lines()
            .filter(|l| l.starts_with("kept") || l.starts_with('/'))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect(),
        syscalls: report["profiles"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
    }
}

fn finish(app: &str, child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{app}: slim failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Four builds at once, `SLIM_STRESS_ROUNDS` rounds (2 by default): each build keeps the files
/// and calls it keeps alone.
#[test]
fn concurrent_builds_record_what_each_records_alone() {
    if !is_root("concurrent_builds_record_what_each_records_alone") {
        return;
    }
    let _serial = serial();
    // CI runs a few rounds; SLIM_STRESS_ROUNDS=10 is the full run.
    let rounds: usize = std::env::var("SLIM_STRESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let apps: [(&str, &[&str]); 4] = [
        ("init-poll", &[]),
        ("python-http", &[]),
        ("busybox-static", &[]),
        (
            "perl-echo",
            &["--http-probe-cmd-file", "../probes/echo.json"],
        ),
    ];
    let probe_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let extra = |flags: &[&str]| -> Vec<String> {
        flags
            .iter()
            .map(|f| {
                if f.ends_with(".json") {
                    probe_dir.join(f).display().to_string()
                } else {
                    (*f).to_owned()
                }
            })
            .collect()
    };
    for (app, _) in &apps {
        app_image(app);
    }
    let alone: Vec<Recorded> = apps
        .iter()
        .map(|(app, flags)| {
            let out = TempDir::new(&format!("alone-{app}"));
            let flags = extra(flags);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            finish(app, record(app, &flags, &out.0));
            recorded(&out.0)
        })
        .collect();
    for (recording, (app, _)) in alone.iter().zip(&apps) {
        assert!(
            recording.kept.len() > 5 && recording.syscalls.len() > 20,
            "{app} alone recorded too little: {recording:?}"
        );
    }
    let mut differences = Vec::new();
    for round in 1..=rounds {
        let outs: Vec<TempDir> = apps
            .iter()
            .map(|(app, _)| TempDir::new(&format!("round{round}-{app}")))
            .collect();
        let children: Vec<_> = apps
            .iter()
            .zip(&outs)
            .map(|((app, flags), out)| {
                let flags = extra(flags);
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                record(app, &flags, &out.0)
            })
            .collect();
        for ((app, _), child) in apps.iter().zip(children) {
            finish(app, child);
        }
        for (((app, _), out), alone) in apps.iter().zip(&outs).zip(&alone) {
            let together = recorded(&out.0);
            if &together != alone {
                let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
                    a.difference(b).cloned().collect()
                };
                differences.push(format!(
                    "round {round}, {app}: kept only alone {:?}, only together {:?}; syscalls \
                     only alone {:?}, only together {:?}",
                    only(&alone.kept, &together.kept),
                    only(&together.kept, &alone.kept),
                    only(&alone.syscalls, &together.syscalls),
                    only(&together.syscalls, &alone.syscalls),
                ));
            }
        }
    }
    for (app, _) in &apps {
        let _ = std::process::Command::new("docker")
            .args(["rmi", &format!("slim-test/{app}:stress")])
            .output();
    }
    assert!(slim_containers().is_empty(), "containers left behind");
    assert!(
        differences.is_empty(),
        "builds run together recorded other sets than alone:\n{}",
        differences.join("\n")
    );
}
