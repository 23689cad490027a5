//! Faults a build must survive with a clear word and nothing half done: a stop (SIGTERM,
//! SIGINT) in each phase, the engine stopping or restarting, the fat image retagged or removed
//! while it is read, a full disk, the app dying or hanging under its probes, two builds of one
//! tag. Each drives the real binary against the real engine. Where the fault is the host's
//! (the engine stops or restarts, the disk fills), `SLIM_TEST_HOLD=PHASE:FILE` makes slim wait
//! at a phase so the fault lands there and nowhere else; the same faults and stops in every phase, with the
//! tag rules, are also covered without an engine through the fakes. After each, the engine's
//! own listings must show nothing of the run: no container, no temporary tag, no slim tag, no
//! work dir, and the fat image unchanged.

mod support;

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use support::*;

/// The `error: ` line of slim's stderr.
fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
        .to_owned()
}

/// A `slim build` running in the background, its stderr collected line by line.
struct Build {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    hold_file: Option<PathBuf>,
}

impl Build {
    /// Starts `slim build ARGS`, holding at `hold` (a phase) until released.
    fn start(args: &[&str], hold: Option<&str>, env: &[(&str, &Path)]) -> Self {
        let mut command = slim();
        command.arg("build").args(args);
        let hold_file = hold.map(|phase| {
            let file = std::env::temp_dir().join(format!(
                "slim-hold-{}-{phase}-{}",
                std::process::id(),
                Instant::now().elapsed().as_nanos()
            ));
            std::fs::write(&file, b"").unwrap();
            command.env("SLIM_TEST_HOLD", format!("{phase}:{}", file.display()));
            file
        });
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            hold_file,
        }
    }

    /// Starts `slim build --output-dir OUT_DIR --tag TAG FAT` holding at `phase`, and waits
    /// until it says it holds there.
    fn held_at(phase: &str, out_dir: &str, tag: &str, fat: &str) -> Self {
        let mut build = Self::start(
            &["--output-dir", out_dir, "--tag", tag, fat],
            Some(phase),
            &[],
        );
        build.wait_for(&format!("slim: holding at {phase}"));
        build
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stderr has a line containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("slim never printed {text:?}:\n{}", self.seen.join("\n"));
    }

    fn release(&mut self) {
        if let Some(file) = self.hold_file.take() {
            std::fs::remove_file(file).unwrap();
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit: (pid, code, all of stderr).
    fn finish(mut self) -> (u32, Option<i32>, String) {
        let pid = self.pid();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (pid, status.code(), self.seen.join("\n"))
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        if let Some(file) = self.hold_file.take() {
            let _ = std::fs::remove_file(file);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that the run of `pid` left nothing: no container, no temporary tag, no work dir, no
/// `tag` (unless `tagged`), and that the fat image still has `fat_id`.
fn assert_nothing_left(pid: u32, tag: &str, tagged: bool, fat: &str, fat_id: &str) {
    let containers = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=slim.owner.pid={pid}"),
    ]);
    assert!(containers.is_empty(), "containers left: {containers}");
    let work_tags = docker(&["images", "slim-work", "--format", "{{.Tag}}"]);
    assert!(
        !work_tags.lines().any(|t| t.starts_with(&format!("{pid}-"))),
        "temporary tags left: {work_tags}"
    );
    assert_eq!(image_present(tag), tagged, "is {tag} tagged?");
    let work_dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("slim-{pid}-"))
        })
        .collect();
    assert!(work_dirs.is_empty(), "work dirs left: {work_dirs:?}");
    assert_eq!(image_id(fat), fat_id, "the fat image changed");
}

/// Stops dockerd (and so every container: no live restore here); started again when dropped.
struct EngineOutage;

impl EngineOutage {
    fn begin() -> Self {
        let status = Command::new("pkill")
            .args(["-TERM", "-x", "dockerd"])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "no dockerd to stop");
        // From here on the engine comes back when the test ends, also when it fails.
        let outage = Self;
        let deadline = Instant::now() + Duration::from_secs(60);
        while engine_answers() || process_runs("dockerd") {
            assert!(Instant::now() < deadline, "dockerd does not stop");
            thread::sleep(Duration::from_millis(100));
        }
        outage
    }

    /// Starts dockerd the way `cargo xtask setup` does and waits until it answers.
    fn end(self) {
        drop(self);
    }
}

impl Drop for EngineOutage {
    fn drop(&mut self) {
        if !engine_answers() {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open("/var/log/dockerd.log")
                .unwrap();
            // `setsid -f` forks: dockerd is not this process's child (no zombie once stopped).
            let status = Command::new("setsid")
                .args(["-f", "dockerd"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .status()
                .expect("dockerd starts");
            assert!(status.success());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine_answers() {
            assert!(Instant::now() < deadline, "dockerd did not come back");
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Stops the engine while `build` holds, releases it, and starts the engine again once slim
/// waits for it to clean up.
fn restart_engine_after_release(build: &mut Build) {
    let outage = EngineOutage::begin();
    build.release();
    build.wait_for("waiting for it to clean up");
    outage.end();
}

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a live (not zombie) process named `name` runs: a stopped dockerd whose parent has
/// not reaped it yet still shows in `pgrep`.
fn process_runs(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            return false;
        };
        let state = stat[close + 1..].split_whitespace().next();
        &stat[open + 1..close] == name && !matches!(state, Some("Z" | "X"))
    })
}

/// Ctrl-C and SIGTERM reach the build and stop it cleanly. Here they land while the app runs
/// under the recorder (it is kept running for a while, no hook needed); a stop in every other
/// phase is covered without an engine by the orchestration tests through the fakes
/// (`slim-cli/src/commands/build/orchestration_tests.rs`).
#[test]
fn a_stop_signal_cleans_up() {
    if !is_root("a_stop_signal_cleans_up") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let fat_id = image_id(&fat);
    for signal in ["TERM", "INT"] {
        let tag = format!("slim-test/python-http.slim:stop-{signal}");
        let _image = Image(tag.clone());
        let out = TempDir::new(&format!("stop-{signal}"));
        let out_dir = out.0.display().to_string();
        let mut build = Build::start(
            &[
                "--output-dir",
                &out_dir,
                "--tag",
                &tag,
                "--http-probe-off",
                "--continue-after",
                "60",
                &fat,
            ],
            None,
            &[],
        );
        build.wait_for("[2/7] record");
        wait_until_owned_container(build.pid());
        build.signal(signal);
        let (pid, code, stderr) = build.finish();
        assert_eq!(code, Some(130), "{signal}: {stderr}");
        assert!(
            stderr.contains("error: interrupted: stopped and cleaned up"),
            "{signal}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_nothing_left(pid, &tag, false, &fat, &fat_id);
        assert!(
            !out.0.join("report.json").exists() && !out.0.join("seccomp.json").exists(),
            "{signal}: the output dir has files of an unfinished run"
        );
        eprintln!("SIG{signal} while recording: exit 130, `interrupted: stopped and cleaned up`");
    }

    // And once while the slim image runs under verification (held there): the temporary tag
    // goes only after the verification container, so the slim image does not stay behind
    // untagged.
    let dangling_before = dangling_images();
    let tag = "slim-test/python-http.slim:stop-verify";
    let _image = Image(tag.to_owned());
    let out = TempDir::new("stop-verify");
    let out_dir = out.0.display().to_string();
    let build = Build::held_at("verify", &out_dir, tag, &fat);
    build.signal("INT");
    let (pid, code, stderr) = build.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert_nothing_left(pid, tag, false, &fat, &fat_id);
    assert_eq!(
        dangling_images(),
        dangling_before,
        "an untagged image stayed behind"
    );
    eprintln!("SIGINT during verification: exit 130, no image left behind");
}

/// Ids of the engine's images that have no tag.
fn dangling_images() -> String {
    docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"])
}

/// Waits until the slim of `pid` has its container running.
fn wait_until_owned_container(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let listed = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=slim.owner.pid={pid}"),
        ]);
        if !listed.trim().is_empty() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("slim (pid {pid}) never started its container");
}

#[test]
fn the_engine_stopping_or_restarting_mid_build() {
    if !is_root("the_engine_stopping_or_restarting_mid_build") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let fat_id = image_id(&fat);
    let tag = "slim-test/python-http.slim:engine-fault";
    let _image = Image(tag.to_owned());

    // Stopped for good during record: one line, the leftovers named, and the next run's reap
    // (here `slim prune`) removes them once the engine is back.
    let out = TempDir::new("engine-record");
    let out_dir = out.0.display().to_string();
    let mut build = Build::held_at("record", &out_dir, tag, &fat);
    let outage = EngineOutage::begin();
    build.release();
    let (pid, code, stderr) = build.finish();
    assert_eq!(code, Some(5), "{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.contains("stopped answering") || error.contains("cannot reach the container engine"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  hint: start the engine again"),
        "{stderr}"
    );
    assert!(stderr.contains("is left behind"), "{stderr}");
    outage.end();
    let pruned = slim().arg("prune").output().unwrap();
    assert_success(&pruned);
    let pruned = String::from_utf8_lossy(&pruned.stdout).into_owned();
    assert!(pruned.contains(&format!("pid {pid}")), "{pruned}");
    assert_nothing_left(pid, tag, false, &fat, &fat_id);
    eprintln!("engine stopped during record: exit 5, `{error}`; `slim prune`: {pruned}");

    // Restarted during write (the image is in the engine under its temporary tag): slim waits
    // for the engine, removes the unverified image, and fails in one line.
    let mut build = Build::held_at("write", &out_dir, tag, &fat);
    restart_engine_after_release(&mut build);
    let (pid, code, stderr) = build.finish();
    assert_eq!(code, Some(5), "{stderr}");
    let error = error_line(&stderr);
    assert!(error.contains("stopped answering"), "{stderr}");
    assert!(!stderr.contains("left behind"), "{stderr}");
    assert_nothing_left(pid, tag, false, &fat, &fat_id);
    assert!(!out.0.join("report.json").exists());
    eprintln!("engine restarted during write: exit 5, `{error}`");

    // Restarted during verify, after the probes answered: slim waits for it, removes the
    // container, and the build completes.
    let mut build = Build::held_at("verify", &out_dir, tag, &fat);
    restart_engine_after_release(&mut build);
    let (pid, code, stderr) = build.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let report = read_report(&out.0);
    assert!(
        report["verify"]["failed"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        report["verify"]["matched"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_nothing_left(pid, tag, true, &fat, &fat_id);
    eprintln!("engine restarted during verify: exit 0, the build completed");
}

/// Mounts a tmpfs of `size` at a new temp dir; unmounted when dropped.
struct SmallDisk(TempDir);

impl SmallDisk {
    fn new(name: &str, size: &str) -> Self {
        let dir = TempDir::new(name);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir.0)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0 .0).status();
    }
}

#[test]
fn a_full_disk_while_writing() {
    if !is_root("a_full_disk_while_writing") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let fat_id = image_id(&fat);
    let tag = "slim-test/python-http.slim:disk-full";
    let _image = Image(tag.to_owned());

    // The work dir fills while the layer is written (an archive output needs a layer file).
    let work = SmallDisk::new("full-work", "2m");
    let out = TempDir::new("full-work-out");
    let archive = out.0.join("slim.tar");
    let build = Build::start(
        &[
            "--output-dir",
            &out.0.display().to_string(),
            "--output",
            &format!("docker-archive:{}", archive.display()),
            "--tag",
            tag,
            &fat,
        ],
        None,
        &[("SLIM_WORK_DIR", &work.0 .0)],
    );
    let (pid, code, stderr) = build.finish();
    assert_disk_full("work dir full", code, &stderr);
    assert!(!archive.exists(), "a partial archive is left");
    assert_empty_work_dir(work.path());
    assert_nothing_left(pid, tag, false, &fat, &fat_id);
    assert!(!out.0.join("report.json").exists());

    // The output dir fills when the run's files are published: no file is half written, and
    // the image is not tagged.
    let out = SmallDisk::new("full-out", "16k");
    let build = Build::start(
        &[
            "--output-dir",
            &out.0 .0.display().to_string(),
            "--tag",
            tag,
            &fat,
        ],
        None,
        &[],
    );
    let (pid, code, stderr) = build.finish();
    assert_disk_full("output dir full", code, &stderr);
    let left: Vec<_> = std::fs::read_dir(&out.0 .0).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "files left in the full output dir: {left:?}"
    );
    assert_nothing_left(pid, tag, false, &fat, &fat_id);
}

impl SmallDisk {
    /// Fills the disk to the last byte (the filler is removed with `empty`).
    fn fill(&self) {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while filler.write_all(&chunk).is_ok() {}
        while filler.write_all(&[0]).is_ok() {}
    }

    fn empty(&self) {
        let _ = std::fs::remove_file(self.filler());
    }

    fn filler(&self) -> PathBuf {
        self.0 .0.join(".filler")
    }

    fn path(&self) -> &Path {
        &self.0 .0
    }
}

/// Asserts the work dir at `dir` was left empty.
fn assert_empty_work_dir(dir: &Path) {
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "work dir left");
}

/// Asserts a run ended with exit 5, the full disk as its cause and the hint.
fn assert_disk_full(what: &str, code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(5), "{what}: {stderr}");
    let error = error_line(stderr);
    assert!(
        error.contains("No space left on device"),
        "{what}: {stderr}"
    );
    assert!(
        stderr.contains("  hint: free space there"),
        "{what}: {stderr}"
    );
    eprintln!("{what}: exit 5, `{error}`");
}

/// Every path that writes keeps the full disk's cause typed to the end: exit 5 and its hint,
/// never exit 1 with the cause flattened into text (nor exit 2 for an output dir the disk has
/// no room to create). Complements `a_full_disk_while_writing` (the layer file, publishing).
#[test]
fn a_full_disk_on_every_write_path() {
    if !is_root("a_full_disk_on_every_write_path") {
        return;
    }
    let _serial = serial();
    require_base_image();
    let scratch = TempDir::new("full-paths");

    // The work dir, while a gzip-compressed layer of an archive is unpacked into it.
    let work = SmallDisk::new("full-gunzip", "1m");
    let archive = gzip_layer_archive(&scratch.0);
    let out = slim()
        .args(["xray", &format!("docker-archive:{}", archive.display())])
        .env("SLIM_WORK_DIR", work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_disk_full("gunzip into the work dir", out.status.code(), &stderr);
    assert_empty_work_dir(work.path());

    // The work dir, while `docker save` streams the image into it.
    let out = slim()
        .args(["squash", "--read-via", "save", "--output"])
        .arg(format!(
            "docker-archive:{}",
            scratch.0.join("saved.tar").display()
        ))
        .arg(BASE_IMAGE)
        .env("SLIM_WORK_DIR", work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_disk_full("docker save into the work dir", out.status.code(), &stderr);
    assert_empty_work_dir(work.path());
    drop(work);

    // The image writer's outputs: a docker-archive and an OCI layout on a full disk.
    let full = SmallDisk::new("full-outputs", "64k");
    for output in [
        format!("docker-archive:{}", full.path().join("slim.tar").display()),
        format!("oci:{}", full.path().join("oci").display()),
    ] {
        let out = slim()
            .args(["squash", "--output", &output, BASE_IMAGE])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_disk_full(&output, out.status.code(), &stderr);
        assert!(
            !full.path().join("slim.partial").exists(),
            "a partial archive is left"
        );
    }
    drop(full);

    // The output dir, when the disk has no room left to create it (no inode left).
    let no_inodes = TempDir::new("full-inodes");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,nr_inodes=1", "tmpfs"])
        .arg(&no_inodes.0)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs");
    let full = SmallDisk(no_inodes);
    let out = slim()
        .args(["build", "--output-dir"])
        .arg(full.path().join("out"))
        .args(["--tag", "slim-test/full.slim:never", BASE_IMAGE])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_disk_full("creating the output dir", out.status.code(), &stderr);
    assert!(slim_containers().is_empty());
    drop(full);

    // The work dir filling mid-build: at the copies `--strip-executables` makes and at the
    // package database (after `select`), and at the profiles and the report (after `write`).
    let fat = app_image("python-http");
    let fat_id = image_id(&fat);
    let tag = "slim-test/python-http.slim:full-paths";
    let _image = Image(tag.to_owned());
    for (phase, what, extra) in [
        (
            "select",
            "the shrunk executables",
            &["--strip-executables"][..],
        ),
        ("select", "the package database", &[][..]),
        ("write", "the profiles", &[][..]),
    ] {
        let work = SmallDisk::new(&format!("full-{phase}"), "1m");
        let out_dir = scratch.0.join(phase);
        let out = out_dir.display().to_string();
        let mut args = vec!["--output-dir", &out, "--tag", tag];
        args.extend_from_slice(extra);
        args.push(&fat);
        let mut build = Build::start(&args, Some(phase), &[("SLIM_WORK_DIR", work.path())]);
        build.wait_for(&format!("slim: holding at {phase}"));
        work.fill();
        build.release();
        let (pid, code, stderr) = build.finish();
        work.empty();
        assert_disk_full(what, code, &stderr);
        assert_empty_work_dir(work.path());
        assert!(!out_dir.join("report.json").exists());
        assert_nothing_left(pid, tag, false, &fat, &fat_id);
    }
}

/// A docker-archive whose one layer is gzip-compressed: 8 MiB of zeros, a few KiB packed.
fn gzip_layer_archive(dir: &Path) -> PathBuf {
    let mut layer = Vec::new();
    tar_member(&mut layer, "zeros", b'0', "", &vec![0u8; 8 << 20]);
    layer.extend([0u8; 1024]);
    let mut gzip = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    let writer = thread::spawn(move || std::io::Write::write_all(&mut stdin, &layer).unwrap());
    let packed = gzip.wait_with_output().unwrap().stdout;
    writer.join().unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
    let manifest =
        br#"[{"Config":"config.json","RepoTags":["zeros:1"],"Layers":["layer.tar.gz"]}]"#;
    let mut archive = Vec::new();
    tar_member(&mut archive, "config.json", b'0', "", config);
    tar_member(&mut archive, "layer.tar.gz", b'0', "", &packed);
    tar_member(&mut archive, "manifest.json", b'0', "", manifest);
    archive.extend([0u8; 1024]);
    let path = dir.join("gzip-layer.tar");
    std::fs::write(&path, archive).unwrap();
    path
}

#[test]
fn the_app_dying_or_hanging_under_its_probes() {
    if !is_root("the_app_dying_or_hanging_under_its_probes") {
        return;
    }
    let _serial = serial();
    require_base_image();
    let dir = TempDir::new("dying-app");
    let probes = dir.0.join("probes.json");
    std::fs::write(
        &probes,
        r#"{"commands": [
            {"protocol": "http", "method": "GET", "resource": "/a"},
            {"protocol": "http", "method": "GET", "resource": "/b"},
            {"protocol": "http", "method": "GET", "resource": "/c"},
            {"protocol": "http", "method": "GET", "resource": "/d"}
        ]}"#,
    )
    .unwrap();
    // Answers three requests (the readiness check and the first probe, perhaps twice), then
    // exits with 7, or stops answering with its port still open.
    let server = |after: &str| {
        format!(
            "FROM {BASE_IMAGE}\nEXPOSE 8000\nCMD [\"python3\", \"-c\", \"import http.server as h, os, time\\n\
             s = h.HTTPServer(('', 8000), h.SimpleHTTPRequestHandler)\\n\
             [s.handle_request() for _ in range(3)]\\nprint('served 3', flush=True)\\n{after}\"]\n"
        )
    };
    for (name, after, expect) in [
        (
            "dies",
            "os._exit(7)",
            "the container exited with code 7 during the probes",
        ),
        (
            "hangs",
            "time.sleep(600)",
            "failed on the fat image: no answer within 2s",
        ),
    ] {
        let fat = format!("slim-test/{name}:fat");
        build_image(&fat, &server(after));
        let _fat_image = Image(fat.clone());
        let fat_id = image_id(&fat);
        let tag = format!("slim-test/{name}.slim:fault");
        let build = Build::start(
            &[
                "--http-probe-cmd-file",
                &probes.display().to_string(),
                "--probe-timeout",
                "2",
                "--output-dir",
                &dir.0.join(name).display().to_string(),
                "--tag",
                &tag,
                &fat,
            ],
            None,
            &[],
        );
        let (pid, code, stderr) = build.finish();
        assert_eq!(code, Some(4), "{name}: {stderr}");
        let error = error_line(&stderr);
        assert!(error.contains(expect), "{name}: {stderr}");
        if name == "dies" {
            assert!(stderr.contains("served 3"), "no logs: {stderr}");
        } else {
            assert!(stderr.contains("hint:"), "{stderr}");
        }
        assert_nothing_left(pid, &tag, false, &fat, &fat_id);
        eprintln!("app {name} mid-probe: exit 4, `{error}`");
    }
}

#[test]
fn two_builds_of_one_tag() {
    if !is_root("two_builds_of_one_tag") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let fat_id = image_id(&fat);
    let tag = "slim-test/python-http.slim:contended";
    let _image = Image(tag.to_owned());
    let out = TempDir::new("contended");
    let out_dir = out.0.display().to_string();
    // The first keeps its app running for a while: the second comes while it builds.
    let mut first = Build::start(
        &[
            "--output-dir",
            &out_dir,
            "--tag",
            tag,
            "--http-probe-off",
            "--continue-after",
            "8",
            "--no-verify",
            &fat,
        ],
        None,
        &[],
    );
    first.wait_for("[2/7] record");
    let second = slim()
        .args(["build", "--output-dir", &out_dir, "--tag", tag, &fat])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    assert_eq!(second.status.code(), Some(5), "{stderr}");
    let error = stderr.lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        error,
        format!(
            "error: another slim (pid {}) is building {tag} right now",
            first.pid()
        )
    );
    assert!(stderr.contains("hint: wait for it to finish"), "{stderr}");
    // The first never noticed.
    let (pid, code, first_stderr) = first.finish();
    assert_eq!(code, Some(0), "{first_stderr}");
    assert_nothing_left(pid, tag, true, &fat, &fat_id);
    eprintln!("two builds of one tag: the second exits 5, `{error}`");
}
