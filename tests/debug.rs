//! `slim debug` end to end on the real engine: a shell from the fat image, in a running slim
//! python container's namespaces (the slim image has no shell of its own), sees the app's files
//! and its process, passes its exit code on, reads piped input, and leaves no container behind:
//! not after it ends, not after Ctrl-C, and a killed one is `slim prune`'s. Bad input is exit 2.

mod support;

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use support::*;

const TAG: &str = "slim-debug-test/python-http.slim:test";

/// The debug containers (labelled with the container they joined), running or not.
fn debug_containers() -> Vec<String> {
    docker(&["ps", "-aq", "--filter", "label=slim.debug.target"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn debug(args: &[&str]) -> Output {
    slim().arg("debug").args(args).output().expect("slim runs")
}

/// Waits until a debug container exists (the shell runs), at most 30 s.
fn wait_for_debug_container() -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(id) = debug_containers().into_iter().next() {
            return id;
        }
        assert!(Instant::now() < deadline, "no debug container started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_shell_from_the_fat_image_sees_the_slim_containers_files_and_process() {
    if !is_root("a_shell_from_the_fat_image_sees_the_slim_containers_files_and_process") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let out_dir = TempDir::new("debug");
    let _slim_image = Image(TAG.to_owned());
    let started = Instant::now();
    let build = slim()
        .args(["build", "--tag", TAG, "--output-dir"])
        .arg(&out_dir.0)
        .arg("--http-probe-cmd-file")
        .arg(probe_file("python-http.json"))
        .arg(&fat)
        .output()
        .unwrap();
    assert_success(&build);
    eprintln!("slim build: {:.1} s", started.elapsed().as_secs_f64());

    // The slim image has no shell: nothing to `docker exec` into.
    let no_shell = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "sh", TAG, "-c", "true"])
        .output()
        .unwrap();
    assert!(!no_shell.status.success(), "the slim image has a shell");

    let app = Container::run_detached(&["--label", "slim-debug-test=1", TAG]);

    // Its files (the app serves /srv) and its python process, from the fat image's shell. The
    // fat image has no procps: the processes are read from /proc, as `ps` does.
    let started = Instant::now();
    let out = debug(&[
        &app.0,
        "--exec",
        "ls /proc/1/root/srv; pwd; for p in /proc/[0-9]*; do echo \"pid ${p#/proc/}: $(tr '\\0' ' ' < $p/cmdline)\"; done",
    ]);
    eprintln!(
        "slim debug --exec: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_success(&out);
    let stdout = text(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains("about.html\nindex.html\n"),
        "the app's files: {stdout}"
    );
    assert!(
        stdout.contains("\n/proc/1/root\n"),
        "starts in the container's root: {stdout}"
    );
    assert!(
        stdout.contains("pid 1: python3 -m http.server 8000"),
        "the app's process: {stdout}"
    );

    // The shell's exit code is slim's.
    let out = debug(&[&app.0, "--exec", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));

    // Without --exec and a terminal, the shell reads its commands from stdin.
    let mut shell = slim()
        .args(["debug", &app.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"cd srv && ls index.html\nexit 3\n")
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "index.html\n");
    assert!(debug_containers().is_empty(), "debug containers left");

    // Ctrl-C stops the shell and removes its container (stdin held open: the shell waits).
    let shell = slim()
        .args(["debug", &app.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_debug_container();
    let _ = Command::new("kill")
        .args(["-INT", &shell.id().to_string()])
        .status();
    let out = shell.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(debug_containers().is_empty(), "left after Ctrl-C");

    // A killed `slim debug` leaves its container to `slim prune` (it carries slim's owner).
    let mut shell = slim()
        .args(["debug", &app.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let left = wait_for_debug_container();
    shell.kill().unwrap();
    let _ = shell.wait();
    assert_eq!(debug_containers(), vec![left.clone()]);
    assert_success(&slim().arg("prune").output().unwrap());
    assert!(debug_containers().is_empty(), "prune left {left}");

    // The app ran on untouched.
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &app.0]),
        "true"
    );
}

#[test]
fn bad_targets_are_exit_2_with_a_hint() {
    if !is_root("bad_targets_are_exit_2_with_a_hint") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");

    let out = debug(&["slim-debug-test-no-such-container", "--exec", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .starts_with("error: no such container: slim-debug-test-no-such-container\n  hint: "),
        "{}",
        text(&out.stderr)
    );

    // Not a slim image: --image is needed, and enough.
    let app = Container::run_detached(&["--label", "slim-debug-test=1", &fat]);
    let out = debug(&[&app.0, "--exec", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("which slim did not make"), "{stderr}");
    assert!(stderr.contains("hint: pass --image IMAGE"), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    let out = debug(&[&app.0, "--image", &fat, "--exec", "ls /proc/1/root/srv"]);
    assert_success(&out);
    assert_eq!(text(&out.stdout), "about.html\nindex.html\n");

    // Not running.
    docker(&["stop", "-t", "0", &app.0]);
    let out = debug(&[&app.0, "--image", &fat, "--exec", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    assert!(debug_containers().is_empty(), "debug containers left");
}

/// A container whose process changed user is out of a shell's reach with the container's own
/// privileges (the kernel's ptrace read check wants the same uid, or SYS_PTRACE), and within
/// it with --privileged-debug.
#[test]
fn a_container_that_changed_user_needs_privileged_debug() {
    if !is_root("a_container_that_changed_user_needs_privileged_debug") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let app = Container::run_detached(&[
        "--label",
        "slim-debug-test=1",
        &fat,
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "python3",
        "-m",
        "http.server",
    ]);
    let out = debug(&[&app.0, "--image", &fat, "--exec", "ls /proc/1/root/srv"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("slim debug: cannot enter /proc/1/root (the container's files)"),
        "{stderr}"
    );
    assert!(stderr.contains("--privileged-debug gets in"), "{stderr}");
    let out = debug(&[
        &app.0,
        "--image",
        &fat,
        "--privileged-debug",
        "--exec",
        "id -u; ls /proc/1/root/srv",
    ]);
    assert_success(&out);
    assert_eq!(text(&out.stdout), "0\nabout.html\nindex.html\n");
    assert!(debug_containers().is_empty(), "debug containers left");
}

/// On a terminal (here `script`'s pseudo-terminal) the shell gets one too, of the same size,
/// starting in the container's root; its exit code is slim's.
#[test]
fn an_interactive_shell_gets_a_terminal_of_the_same_size() {
    if !is_root("an_interactive_shell_gets_a_terminal_of_the_same_size") {
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping an_interactive_shell_gets_a_terminal_of_the_same_size: no `script` (util-linux)");
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let app = Container::run_detached(&["--label", "slim-debug-test=1", &fat]);
    let command = format!(
        "stty rows 30 cols 100; {} debug {} --image {fat}",
        slim_bin().display(),
        app.0
    );
    let mut terminal = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Typed ahead: the terminal holds it until the shell reads. Stdin stays open until the end
    // (its end would end `script`).
    let mut keys = terminal.stdin.take().unwrap();
    use std::io::Write as _;
    keys.write_all(b"echo \"at $(pwd) size $(stty size) on $(tty)\"; exit 5\r")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while terminal.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the shell did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(keys);
    let out = terminal.wait_with_output().unwrap();
    let screen = text(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{screen}");
    assert!(
        screen.contains("at /proc/1/root size 30 100 on /dev/pts/"),
        "{screen}"
    );
    assert!(debug_containers().is_empty(), "debug containers left");
}

/// Runs `podman ARGS`, asserting success; returns trimmed stdout.
fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs (cargo xtask setup installs it)");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

/// Runs `podman rm -f` or `podman rmi -f` on drop.
struct InPodman(&'static str, String);

impl Drop for InPodman {
    fn drop(&mut self) {
        // No stop timeout: python as pid 1 ignores SIGTERM.
        let now: &[&str] = match self.0 {
            "rm" => &["-t", "0"],
            _ => &[],
        };
        let _ = Command::new("podman")
            .args([self.0, "-f"])
            .args(now)
            .arg(&self.1)
            .output();
    }
}

/// Through Podman's Docker-compatible API the shell joins all four namespaces (Podman joins
/// any container's IPC and its UTS namespace too).
#[test]
fn a_podman_container_is_debugged_in_all_its_namespaces() {
    const PODMAN_HOST: &str = "unix:///run/podman/podman.sock";
    if !is_root("a_podman_container_is_debugged_in_all_its_namespaces") {
        return;
    }
    if !std::path::Path::new(PODMAN_HOST.trim_start_matches("unix://")).exists() {
        eprintln!("skipping a_podman_container_is_debugged_in_all_its_namespaces: no Podman socket (`cargo xtask setup` starts it)");
        return;
    }
    let _serial = serial();
    // A tag of its own, so that only it is loaded into Podman and removed from there.
    let fat = app_image("python-http");
    let ours = "slim-debug-test/python-http:fat";
    docker(&["tag", &fat, ours]);
    let _tag = Image(ours.to_owned());
    let mut save = Command::new("docker")
        .args(["save", ours])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = Command::new("podman")
        .args(["load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success() && load.status.success());
    let image = format!("localhost/{ours}");
    let _image = InPodman("rmi", image.clone());
    let app = InPodman("rm", podman(&["run", "-d", &image]));

    let out = slim()
        .env("DOCKER_HOST", PODMAN_HOST)
        .args(["debug", &app.1, "--image", &image, "--exec"])
        .arg(
            "ls; for ns in pid net ipc uts; do \
             [ $(readlink /proc/self/ns/$ns) = $(readlink /proc/1/ns/$ns) ] && echo $ns; done; \
             exit 6",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\nsrv\n"), "the container's root: {stdout}");
    assert!(stdout.ends_with("pid\nnet\nipc\nuts\n"), "{stdout}");
    assert!(
        podman(&["ps", "-aq", "--filter", "label=slim.debug.target"]).is_empty(),
        "debug containers left in Podman"
    );
}
