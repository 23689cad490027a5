//! `slim trace` against the real kernel: what it records, that relative paths come out absolute,
//! that the kernel's own loads (ELF and `#!` interpreters) are listed, that two recordings on one
//! host stay apart, and that bad input gets a clear message.

mod support;

use std::{os::unix::fs::PermissionsExt as _, process::Stdio, thread};

use support::*;

#[test]
fn python_import_lists_module_libc_and_interpreter() {
    if !is_root("python_import_lists_module_libc_and_interpreter") {
        return;
    }
    let trace = run_json(slim().args(["trace", "--json", "--", "python3", "-c", "import json"]));
    let paths = found_paths(&trace);
    let has = |pred: &dyn Fn(&str, &[String]) -> bool| paths.iter().any(|(p, u)| pred(p, u));
    assert!(
        has(&|p, _| p.ends_with("/json/__init__.py")),
        "json's __init__.py missing: {paths:?}"
    );
    assert!(has(&|p, _| p.ends_with("/libc.so.6")), "libc missing");
    assert!(
        has(&|p, u| p.contains("ld-linux") && u.iter().any(|u| u == "interpreter")),
        "python3's ELF interpreter (PT_INTERP) missing"
    );
    let syscalls: Vec<&str> = trace["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(syscalls.contains(&"openat"), "{syscalls:?}");
    assert!(syscalls.contains(&"execve"), "{syscalls:?}");
    assert_eq!(trace["recorder"]["lost"], 0);
    assert_eq!(trace["exit_code"], 0);
}

#[test]
fn unix_socket_paths_bound_and_connected_and_fifos_are_listed() {
    if !is_root("unix_socket_paths_bound_and_connected_and_fifos_are_listed") {
        return;
    }
    let dir = TempDir::new("slim-trace-unix");
    let script = "import os, socket, sys\n\
        d = sys.argv[1]\n\
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        server.bind(d + '/app.sock')\n\
        server.listen(1)\n\
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        client.connect(d + '/app.sock')\n\
        hidden = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        hidden.bind('\\0slim-abstract')\n\
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n\
        tcp.bind(('127.0.0.1', 0))\n\
        os.mkfifo(d + '/app.fifo')\n";
    let trace = run_json(
        slim()
            .args(["trace", "--json", "--", "python3", "-c", script])
            .arg(&dir.0),
    );
    let paths = found_paths(&trace);
    let uses_of = |name: &str| -> Vec<String> {
        let path = dir.0.join(name).display().to_string();
        paths
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| panic!("{path} not listed: {paths:?}"))
    };
    let socket = uses_of("app.sock");
    assert!(socket.contains(&"bind".to_owned()), "{socket:?}");
    assert!(socket.contains(&"connect".to_owned()), "{socket:?}");
    assert!(uses_of("app.fifo").contains(&"mknod".to_owned()));
    assert!(
        !paths
            .iter()
            .any(|(p, _)| p.contains("slim-abstract") || p.is_empty()),
        "abstract names and inet addresses are not paths: {paths:?}"
    );
    assert_eq!(trace["exit_code"], 0);
}

#[test]
fn relative_paths_are_made_absolute() {
    if !is_root("relative_paths_are_made_absolute") {
        return;
    }
    let trace = run_json(slim().args([
        "trace",
        "--json",
        "--",
        "sh",
        "-c",
        "cd /usr/share && cat ./common-licenses/GPL-3 >/dev/null",
    ]));
    let paths = found_paths(&trace);
    let gpl = paths
        .iter()
        .find(|(p, _)| p == "/usr/share/common-licenses/GPL-3")
        .unwrap_or_else(|| panic!("GPL-3 not listed as an absolute path: {paths:?}"));
    assert!(gpl.1.contains(&"read".to_owned()));
    assert!(paths.iter().all(|(p, _)| p.starts_with('/')), "{paths:?}");
}

#[test]
fn shebang_interpreter_and_dirfd_relative_opens() {
    if !is_root("shebang_interpreter_and_dirfd_relative_opens") {
        return;
    }
    let dir = TempDir::new("shebang");
    let script = dir.0.join("hello");
    std::fs::write(&script, "#!/bin/sh\nls sub >/dev/null\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("sub/file"), "x").unwrap();
    let trace = run_json(
        slim()
            .current_dir(&dir.0)
            .args(["trace", "--json", "--", "./hello"]),
    );
    let paths = found_paths(&trace);
    let script_path = script.to_string_lossy().into_owned();
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == &script_path && u.contains(&"exec".to_owned())),
        "the script's exec (relative ./hello) is missing: {paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|(p, u)| p.ends_with("/sh") && u.contains(&"interpreter".to_owned())),
        "the #! interpreter is missing: {paths:?}"
    );
    let sub = format!("{}/sub", dir.0.display());
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == &sub && u.contains(&"directory".to_owned())),
        "ls's directory open of `sub` (relative to the cwd) is missing: {paths:?}"
    );
}

#[test]
fn two_recordings_at_once_do_not_mix() {
    if !is_root("two_recordings_at_once_do_not_mix") {
        return;
    }
    let dir = TempDir::new("isolation");
    let a = dir.0.join("only-a");
    let b = dir.0.join("only-b");
    std::fs::write(&a, "a").unwrap();
    std::fs::write(&b, "b").unwrap();
    // Both loop for a while, so the recordings overlap in time.
    let script = |file: &std::path::Path| {
        format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do cat {} >/dev/null; sleep 0.1; done",
            file.display()
        )
    };
    let spawn = |file: &std::path::Path| {
        slim()
            .args(["trace", "--json", "--", "sh", "-c", &script(file)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slim starts")
    };
    let (child_a, child_b) = (spawn(&a), spawn(&b));
    let wait = |child: std::process::Child| {
        thread::spawn(move || {
            let out = child.wait_with_output().unwrap();
            assert_success(&out);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        })
    };
    let (trace_a, trace_b) = (wait(child_a), wait(child_b));
    let (trace_a, trace_b) = (trace_a.join().unwrap(), trace_b.join().unwrap());
    let names = |t: &serde_json::Value| -> Vec<String> {
        found_paths(t).into_iter().map(|(p, _)| p).collect()
    };
    let (a, b) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    );
    let (names_a, names_b) = (names(&trace_a), names(&trace_b));
    assert!(names_a.contains(&a) && !names_a.contains(&b), "{names_a:?}");
    assert!(names_b.contains(&b) && !names_b.contains(&a), "{names_b:?}");
}

#[test]
fn exit_code_of_the_command_is_kept() {
    if !is_root("exit_code_of_the_command_is_kept") {
        return;
    }
    let out = slim()
        .args(["trace", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SYSCALLS"));
}

#[test]
fn unknown_command_is_a_clear_error() {
    if !is_root("unknown_command_is_a_clear_error") {
        return;
    }
    let out = slim()
        .args(["trace", "--", "no-such-command-slim"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot run `no-such-command-slim`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unprivileged_user_is_told_to_use_root() {
    if !is_root("unprivileged_user_is_told_to_use_root") {
        return;
    }
    // Drop to nobody with no capabilities, then run slim.
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(slim_bin())
        .args(["trace", "--", "true"])
        .output()
        .expect("setpriv (util-linux) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some("error: recording needs root (or CAP_BPF and CAP_PERFMON): run slim with sudo"),
        "{stderr}"
    );
}

#[test]
fn nothing_to_trace_is_a_usage_error() {
    let out = slim().arg("trace").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nothing to trace") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[test]
fn running_container_is_recorded_by_mount_namespace() {
    if !is_root("running_container_is_recorded_by_mount_namespace") {
        return;
    }
    let trace = record_running_container(&[]);
    let has_btf = std::fs::metadata("/sys/kernel/btf/vmlinux").is_ok_and(|m| m.len() > 0);
    let expected = if has_btf { "btf" } else { "calibrated" };
    assert_eq!(trace["recorder"]["kernel_offsets"], expected);
}

/// As on a kernel without BTF: the offsets are found by calibration, with the same result.
#[test]
fn running_container_is_recorded_without_kernel_btf() {
    if !is_root("running_container_is_recorded_without_kernel_btf") {
        return;
    }
    let trace = record_running_container(&["--kernel-btf", "none"]);
    assert_eq!(trace["recorder"]["kernel_offsets"], "calibrated");
}

/// A BTF file that is not the running kernel's is refused before anything is recorded.
#[test]
fn unusable_kernel_btf_file_is_a_clear_error() {
    let out = slim()
        .args(["--kernel-btf", "/etc/hostname", "trace", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if is_root("unusable_kernel_btf_file_is_a_clear_error") {
        assert!(!out.status.success());
        assert!(stderr.contains("--kernel-btf"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Records a container running `cat` in a loop with `slim trace --container` (plus `extra`
/// global flags) and checks what it found; returns the trace.
fn record_running_container(extra: &[&str]) -> serde_json::Value {
    require_base_image();
    let container = Container::run_detached(&[
        BASE_IMAGE,
        "sh",
        "-c",
        "while true; do cat /etc/debian_version >/dev/null; sleep 0.1; done",
    ]);
    // Meanwhile the host reads a file of its own: it must not show up.
    let host_file = TempDir::new("host-only");
    let marker = host_file.0.join("host-marker");
    std::fs::write(&marker, "x").unwrap();
    let trace = trace_container(&container, extra, || {
        for _ in 0..15 {
            let _ = std::fs::read(&marker);
            thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let paths = found_paths(&trace);
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/etc/debian_version" && u.contains(&"read".to_owned())),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/usr/bin/cat" && u.contains(&"exec".to_owned())),
        "{paths:?}"
    );
    let marker = marker.to_string_lossy().into_owned();
    assert!(
        !paths.iter().any(|(p, _)| p == &marker),
        "host activity leaked in"
    );
    trace
}

/// Runs `slim trace --json --container` (plus `extra` global flags) on `container`, calls
/// `during` once it records, stops it with Ctrl-C and returns the trace.
fn trace_container(
    container: &Container,
    extra: &[&str],
    during: impl FnOnce(),
) -> serde_json::Value {
    let mut trace = slim();
    trace
        .args(extra)
        .args(["trace", "--json", "--container", &container.0]);
    let trace = trace_until_interrupted(trace, during);
    assert_eq!(trace["stopped_by"], "interrupted");
    trace
}

/// Executables are read inside the container's root: an absolute symlink in the container
/// (`/usr/local/bin/linked-tool -> /DIR/tool`) names the container's `/DIR/tool`, never the
/// host's file of that name, whose `#!` line must not show up as an interpreter.
#[test]
fn a_containers_absolute_symlink_never_reads_a_host_file() {
    if !is_root("a_containers_absolute_symlink_never_reads_a_host_file") {
        return;
    }
    require_base_image();
    let host = TempDir::new("host-only-tool");
    let dir = host.0.display().to_string();
    let marker = format!("/slim-host-only-interpreter-{}", std::process::id());
    std::fs::write(host.0.join("tool"), format!("#!{marker}\n")).unwrap();
    let tag = format!("slim-test/symlink-out:{}", std::process::id());
    build_image(
        &tag,
        &format!(
            "FROM {BASE_IMAGE}\n\
             RUN mkdir -p {dir} && printf '#!/bin/sh\\nexit 0\\n' > {dir}/tool \\\n\
             && chmod 755 {dir}/tool && ln -s {dir}/tool /usr/local/bin/linked-tool\n"
        ),
    );
    let _image = Image(tag.clone());
    let container = Container::run_detached(&[
        &tag,
        "sh",
        "-c",
        "while true; do linked-tool; sleep 0.1; done",
    ]);
    let trace = trace_container(&container, &[], || {
        thread::sleep(std::time::Duration::from_millis(1500))
    });
    let paths = found_paths(&trace);
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/usr/local/bin/linked-tool" && u.contains(&"exec".to_owned())),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|(p, _)| p.contains("slim-host-only")),
        "the host's file was read through the container's symlink: {paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|(p, u)| p == "/bin/sh" && u.contains(&"interpreter".to_owned())),
        "the container's own script was not read: {paths:?}"
    );
}

#[test]
fn unknown_container_is_a_clear_error() {
    if !is_root("unknown_container_is_a_clear_error") {
        return;
    }
    let out = slim()
        .args(["trace", "--container", "no-such-container-slim"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: no such container: no-such-container-slim"),
        "{stderr}"
    );
}
