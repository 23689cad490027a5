//! Nothing left behind when slim is killed: the containers and work dirs of a `kill -9`ed run
//! carry their owner, the next run (or `slim prune`) removes them, and what a live slim owns or
//! slim did not make is never touched.

mod support;

use std::{process::Stdio, thread, time::Duration};

use support::*;

/// Containers labelled with slim owner `pid`.
fn owned_by(pid: u32) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=slim.owner.pid={pid}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Inode of this process's pid namespace.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self/ns/pid").unwrap().ino()
}

fn work_dirs_of(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("slim-{pid}-")))
        })
        .collect()
}

#[test]
fn a_killed_build_leaves_nothing_after_the_next_run() {
    if !is_root("a_killed_build_leaves_nothing_after_the_next_run") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let victim_out = TempDir::new("killed");
    let mut victim = slim()
        .arg("build")
        .arg("--output-dir")
        .arg(&victim_out.0)
        .args([
            "--continue-after",
            "timeout:300",
            "--tag",
            "slim-test/python-http.slim:killed",
        ])
        .arg(&image)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = victim.id();
    let mut started = false;
    for _ in 0..150 {
        if !owned_by(pid).is_empty() {
            started = true;
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert!(started, "the build never started its container");
    victim.kill().unwrap(); // SIGKILL: no clean-up runs
    victim.wait().unwrap();
    assert_eq!(
        owned_by(pid).len(),
        1,
        "the killed run's container is gone already?"
    );
    assert_eq!(work_dirs_of(pid).len(), 1);

    let listed = slim().args(["prune", "--dry-run"]).output().unwrap();
    assert_success(&listed);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("would remove container"), "{text}");
    assert!(text.contains(&format!("pid {pid}")), "{text}");
    assert_eq!(owned_by(pid).len(), 1, "--dry-run removed something");

    // The next build reaps it first, in one line.
    let tag = "slim-test/python-http.slim:after-kill";
    let _image = Image(tag.to_owned());
    let out_dir = TempDir::new("after-kill");
    let next = slim()
        .args(["build", "--no-verify", "--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&next);
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(
        stderr.contains("slim: removed 1 container and 1 work dir of slim runs that no longer run"),
        "{stderr}"
    );
    assert!(
        owned_by(pid).is_empty(),
        "the leftover container is still there"
    );
    assert!(
        work_dirs_of(pid).is_empty(),
        "the leftover work dir is still there"
    );
    assert!(slim_containers().is_empty(), "containers left behind");
}

#[test]
fn prune_never_touches_a_live_owner_or_what_slim_did_not_make() {
    if !is_root("prune_never_touches_a_live_owner_or_what_slim_did_not_make") {
        return;
    }
    let _serial = serial();
    require_base_image();
    // This test process stands in for a running slim.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let me = std::process::id().to_string();
    let live_labels = [
        "--label".to_owned(),
        "slim.run=true".to_owned(),
        "--label".to_owned(),
        format!("slim.owner.pid={me}"),
        "--label".to_owned(),
        format!("slim.owner.start={start}"),
        "--label".to_owned(),
        format!("slim.owner.boot={}", boot.trim()),
    ];
    let mut args: Vec<&str> = live_labels.iter().map(String::as_str).collect();
    args.extend([BASE_IMAGE, "sleep", "300"]);
    let live = Container::run_detached(&args);
    let foreign = Container::run_detached(&[BASE_IMAGE, "sleep", "300"]);
    // A dead owner in this pid namespace (its pid no longer runs with that start time).
    let dead_start = format!("slim.owner.start={}", start.parse::<u64>().unwrap() + 1);
    let pidns = pid_namespace();
    let dead = Container::run_detached(&[
        "--label",
        "slim.run=true",
        "--label",
        &format!("slim.owner.pid={me}"),
        "--label",
        &dead_start,
        "--label",
        &format!("slim.owner.boot={}", boot.trim()),
        "--label",
        &format!("slim.owner.pidns={pidns}"),
        BASE_IMAGE,
        "sleep",
        "300",
    ]);
    // Temporary tags of unverified slim images: a live owner's stays (in the format slims
    // before the pid namespace wrote, too), a dead one's goes, and a `slim-work` tag that
    // names no owner is not slim's.
    let live_tag = format!("slim-work:{me}-{start}-{}", boot.trim());
    let dead_tag = format!(
        "slim-work:{me}-{}-{}.{pidns}.1.somehost",
        start.parse::<u64>().unwrap() + 1,
        boot.trim()
    );
    let foreign_tag = "slim-work:someone-elses".to_owned();
    for tag in [&live_tag, &dead_tag, &foreign_tag] {
        docker(&["tag", BASE_IMAGE, tag]);
    }
    let _tags: Vec<Image> = [&live_tag, &dead_tag, &foreign_tag]
        .into_iter()
        .map(|t| Image(t.clone()))
        .collect();
    let out = slim().arg("prune").output().unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("removed unverified image {dead_tag}")),
        "{text}"
    );
    assert!(
        image_present(&live_tag),
        "a live owner's image was untagged"
    );
    assert!(
        image_present(&foreign_tag),
        "a tag slim did not make was removed"
    );
    assert!(!image_present(&dead_tag), "a dead owner's image was kept");
    assert!(
        image_present(BASE_IMAGE),
        "untagging removed the base image"
    );
    let running = docker(&["ps", "-aq", "--no-trunc"]);
    assert!(
        running.contains(&live.0),
        "a live owner's container was removed: {text}"
    );
    assert!(
        running.contains(&foreign.0),
        "a container slim did not make was removed"
    );
    assert!(
        !running.contains(&dead.0),
        "a dead owner's container (pid reused) was kept: {text}"
    );
}

/// Labels of a slim owner (the new format, with its pid namespace).
fn owner_labels(pid: u32, start: u64, boot: &str, pidns: u64) -> Vec<String> {
    [
        "slim.run=true".to_owned(),
        format!("slim.owner.pid={pid}"),
        format!("slim.owner.start={start}"),
        format!("slim.owner.boot={boot}"),
        format!("slim.owner.pidns={pidns}"),
    ]
    .into_iter()
    .flat_map(|label| ["--label".to_owned(), label])
    .collect()
}

/// This process's start time and the boot id.
fn start_and_boot() -> (u64, String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    (start, boot.trim().to_owned())
}

/// `--quiet` is only the final line: the notes on what was removed and what was left go too.
#[test]
fn quiet_silences_the_notes_on_leftovers() {
    if !is_root("quiet_silences_the_notes_on_leftovers") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let (start, boot) = start_and_boot();
    let me = std::process::id();
    let mut dead = owner_labels(me, start + 1, &boot, pid_namespace());
    dead.extend([BASE_IMAGE.to_owned(), "sleep".into(), "300".into()]);
    let dead = Container::run_detached(&dead.iter().map(String::as_str).collect::<Vec<_>>());
    let mut elsewhere = owner_labels(1, 1, &boot, pid_namespace() + 1);
    elsewhere.extend([BASE_IMAGE.to_owned(), "sleep".into(), "300".into()]);
    let elsewhere =
        Container::run_detached(&elsewhere.iter().map(String::as_str).collect::<Vec<_>>());

    let tag = "slim-test/python-http.slim:quiet";
    let _image = Image(tag.to_owned());
    let out_dir = TempDir::new("quiet");
    let out = slim()
        .args([
            "build",
            "--quiet",
            "--no-verify",
            "--tag",
            tag,
            "--output-dir",
        ])
        .arg(&out_dir.0)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stderr.trim(),
        "",
        "--quiet printed more than the final line"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let all = docker(&["ps", "-aq", "--no-trunc"]);
    assert!(
        !all.contains(&dead.0),
        "the dead owner's container was kept"
    );
    assert!(
        all.contains(&elsewhere.0),
        "the container of a slim in another pid namespace was removed"
    );
}

/// A `slim build` running in the background; killed when dropped, also when a test fails
/// (SIGTERM: it cleans up).
struct Held {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Held {
    fn start(mut command: std::process::Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_for(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        while !self.seen.iter().any(|l| l.contains(text)) {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    if std::time::Instant::now() < deadline => {}
                Err(_) => panic!("never saw {text:?}: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { kill(self.child.id() as i32, 15) };
            let _ = self.child.wait();
        }
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Two slims on one engine in different pid namespaces (as a CI job container that mounts the
/// host's docker socket and the host, or two such jobs): the second cannot see the first's
/// process, so it must leave the first's running container and work dir alone and say why,
/// not take them for the leftovers of a dead run.
#[test]
fn a_slim_in_another_pid_namespace_does_not_reap_a_live_run() {
    if !is_root("a_slim_in_another_pid_namespace_does_not_reap_a_live_run") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let tag = "slim-test/python-http.slim:pidns";
    let _image = Image(tag.to_owned());
    let out_dir = TempDir::new("pidns");
    // Their own work dir base: the two slims see each other's work dirs, nobody else's.
    let work = TempDir::new("pidns-work");
    let mut first = slim();
    first
        .args(["build", "--no-verify", "--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        // Its app runs for a while under the recorder: the second slim comes meanwhile.
        .args(["--http-probe-off", "--continue-after", "25"])
        .arg(&image)
        .env("SLIM_WORK_DIR", &work.0);
    let mut first = Held::start(first);
    first.wait_for("[2/7] record");
    let pid = first.child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while owned_by(pid).is_empty() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
    let theirs = owned_by(pid);
    assert_eq!(theirs.len(), 1, "the first slim's container: {theirs:?}");
    let their_work = std::fs::read_dir(&work.0).unwrap().count();
    assert_eq!(their_work, 1, "the first slim's work dir");

    // The second, in a pid namespace of its own: the first's pid does not exist there.
    let second = |extra: &[&str]| {
        let out = std::process::Command::new("unshare")
            .args(["-p", "-f", "--mount-proc"])
            .arg(slim_bin())
            .arg("prune")
            .args(extra)
            .env("SLIM_WORK_DIR", &work.0)
            .output()
            .expect("unshare (util-linux) runs");
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // First what it would remove (a dry run, so nobody's work is lost if it is wrong)...
    let listed = second(&["--dry-run"]);
    assert!(
        !listed.contains(&format!("would remove container {}", &theirs[0][..12])),
        "the first slim's live container would be removed: {listed}"
    );
    assert!(!listed.contains("would remove work dir"), "{listed}");
    // ...then for real, with one line on what was left and why.
    let text = second(&[]);
    assert_eq!(
        owned_by(pid),
        theirs,
        "the live container was removed: {text}"
    );
    assert_eq!(std::fs::read_dir(&work.0).unwrap().count(), 1, "{text}");
    assert!(
        text.contains(&format!("in another pid namespace (pid {pid} there)")),
        "no note on what was left: {text}"
    );

    // The first goes on and finishes.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the first slim hangs");
        thread::sleep(Duration::from_millis(200));
    };
    while let Ok(line) = first.lines.recv_timeout(Duration::from_millis(500)) {
        first.seen.push(line);
    }
    assert!(status.success(), "the first slim failed: {:#?}", first.seen);
    assert!(
        owned_by(pid).is_empty(),
        "the first slim left its container"
    );
}
