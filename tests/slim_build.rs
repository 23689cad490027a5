//! `slim build` end to end against the real engine and kernel: three apps built without any
//! registry are slimmed, verified and reported; bad input and failing apps give clear errors
//! and leave no container behind; Ctrl-C and SIGTERM clean up.

mod support;

use std::{path::Path, process::Stdio, thread, time::Duration};

use support::*;

/// Builds `app` with `args`, returns the parsed report (asserting success).
fn build(app: &str, tag: &str, extra: &[&str]) -> serde_json::Value {
    build_keeping_image(app, tag, extra).0
}

/// [`build`], also returning the slim image (removed when dropped).
fn build_keeping_image(app: &str, tag: &str, extra: &[&str]) -> (serde_json::Value, Image) {
    let (report, image, _) = build_with_files(app, tag, extra);
    (report, image)
}

/// [`build_keeping_image`], also returning the kept paths listed in files.txt.
fn build_with_files(
    app: &str,
    tag: &str,
    extra: &[&str],
) -> (serde_json::Value, Image, std::collections::BTreeSet<String>) {
    let image = app_image(app);
    let out_dir = TempDir::new(&format!("build-{app}"));
    let slim_image = Image(tag.to_owned());
    let out = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        .args(extra)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("minified by "), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.0.join("report.json")).unwrap()).unwrap();
    let files = std::fs::read_to_string(out_dir.0.join("files.txt")).unwrap();
    assert!(files.lines().count() > 10, "{files}");
    assert!(slim_containers().is_empty(), "containers left behind");
    let kept = files
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split('\t').next())
        .map(str::to_owned)
        .collect();
    (report, slim_image, kept)
}

fn check_report(report: &serde_json::Value, min_ratio: f64) {
    let verify = &report["verify"];
    assert_eq!(verify["failed"].as_array().unwrap().len(), 0, "{verify}");
    assert!(verify["probes"].as_u64().unwrap() >= 1);
    assert_eq!(verify["probes"], verify["matched"]);
    assert_eq!(report["recorder"]["lost"], 0);
    let ratio = report["ratio"].as_f64().unwrap();
    assert!(ratio >= min_ratio, "ratio {ratio}");
    assert!(
        report["slim"]["size_bytes"].as_u64().unwrap()
            < report["target"]["size_bytes"].as_u64().unwrap()
    );
    for phase in [
        "inspect",
        "record_and_probe",
        "select",
        "write_image",
        "verify",
        "total",
    ] {
        assert!(
            report["timings_ms"][phase].is_u64(),
            "timing {phase} missing"
        );
    }
    assert!(report["kept"]["executed"].as_u64().unwrap() >= 1);
    assert!(report["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "execve"));
}

#[test]
fn python_http_server_is_slimmed_and_verified() {
    if !is_root("python_http_server_is_slimmed_and_verified") {
        return;
    }
    let _serial = serial();
    let report = build(
        "python-http",
        "slim-test/python-http.slim:test",
        &[
            "--http-probe-cmd-file",
            probe_file("python-http.json").to_str().unwrap(),
        ],
    );
    check_report(&report, 5.0);
    // The recorder's programs are loaded once for the whole build (the recorded start and
    // every verification start reuse them), after one calibration.
    let starts = report["recorder"]["starts"].as_u64().unwrap()
        + report["verify"]["starts"].as_u64().unwrap();
    assert!(starts >= 3, "{}", report["verify"]);
    assert_eq!(
        report["recorder"]["object_loads"].as_u64(),
        Some(1),
        "{}",
        report["recorder"]
    );
    assert_eq!(
        report["recorder"]["calibration_loads"].as_u64(),
        Some(1),
        "{}",
        report["recorder"]
    );
    // Three probes, two rounds (the default), each answered.
    let probes = report["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 6);
    assert!(probes.iter().all(|p| p["status"] == 200), "{probes:?}");
    assert_eq!(probes.iter().filter(|p| p["round"] == 2).count(), 3);
}

/// On a kernel without BTF (here: acting as one) the recorder calibrates its struct offsets
/// and the build keeps exactly the same files.
#[test]
fn build_without_kernel_btf_keeps_the_same_files() {
    if !is_root("build_without_kernel_btf_keeps_the_same_files") {
        return;
    }
    let _serial = serial();
    let probes = probe_file("python-http.json");
    let probes = ["--http-probe-cmd-file", probes.to_str().unwrap()];
    let (with_btf, _image, kept_with_btf) =
        build_with_files("python-http", "slim-test/python-http.slim:btf", &probes);
    let mut extra = vec!["--kernel-btf", "none"];
    extra.extend(probes);
    let (without, _image, kept_without) =
        build_with_files("python-http", "slim-test/python-http.slim:nobtf", &extra);
    check_report(&without, 5.0);
    assert_eq!(without["recorder"]["kernel_offsets"], "calibrated");
    assert_eq!(with_btf["recorder"]["kernel_offsets"], "btf");
    let only_with: Vec<_> = kept_with_btf.difference(&kept_without).collect();
    let only_without: Vec<_> = kept_without.difference(&kept_with_btf).collect();
    assert!(
        only_with.is_empty() && only_without.is_empty(),
        "kept only with BTF: {only_with:?}; only without: {only_without:?}"
    );
}

/// A 32-bit app (Debian's i386 busybox and libc, or armhf on an arm64 host) runs natively on the
/// 64-bit kernel: its syscalls arrive with the 32-bit numbers, its opens are still recorded,
/// and its seccomp profile lists the 32-bit architecture next to the 64-bit one.
#[test]
fn a_32bit_app_is_slimmed_and_verified_under_its_seccomp_profile() {
    if !is_root("a_32bit_app_is_slimmed_and_verified_under_its_seccomp_profile") {
        return;
    }
    let (image, scmp_arch, libc) = match std::env::consts::ARCH {
        "x86_64" => (
            "slim-test/httpd-i386:fat",
            "SCMP_ARCH_X86",
            "/lib/i386-linux-gnu/libc.so.6",
        ),
        "aarch64" => (
            "slim-test/httpd-armhf:fat",
            "SCMP_ARCH_ARM",
            "/lib/arm-linux-gnueabihf/libc.so.6",
        ),
        other => {
            eprintln!("skipping: no 32-bit image for {other}");
            return;
        }
    };
    assert!(
        image_present(image),
        "{image} is missing: run `cargo xtask fixtures`"
    );
    let _serial = serial();
    let out_dir = TempDir::new("build-32bit");
    let _slim = Image("slim-test/httpd-32bit.slim:test".into());
    let out = slim()
        .args([
            "build",
            "--tag",
            "slim-test/httpd-32bit.slim:test",
            "--output-dir",
        ])
        .arg(&out_dir.0)
        .arg(image)
        .output()
        .unwrap();
    assert_success(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.0.join("report.json")).unwrap()).unwrap();
    check_report(&report, 2.0);
    let seccomp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.0.join("seccomp.json")).unwrap()).unwrap();
    let arches = seccomp["architectures"].as_array().unwrap();
    assert!(arches.iter().any(|a| a == scmp_arch), "{arches:?}");
    // Its listening socket is made through socketcall on i386: the AppArmor profile must still
    // name it, or the server cannot start where AppArmor is enforced.
    let apparmor = std::fs::read_to_string(out_dir.0.join("apparmor.profile")).unwrap();
    assert!(apparmor.contains("  network inet"), "{apparmor}");
    assert_eq!(arches.len(), 2, "{arches:?}");
    assert_eq!(report["verify"]["under"], verified_under());
    let files = std::fs::read_to_string(out_dir.0.join("files.txt")).unwrap();
    for (path, reason) in [(libc, "opened"), ("/www/index.html", "opened")] {
        assert!(
            files.contains(&format!("{path}\t{reason}")),
            "{path} not {reason}: {files}"
        );
    }
}

#[test]
fn arm64_python_http_server_is_slimmed_and_verified_under_emulation() {
    if !is_root("arm64_python_http_server_is_slimmed_and_verified_under_emulation") {
        return;
    }
    if !image_present(ARM64_BASE_IMAGE) {
        eprintln!("skipped: {ARM64_BASE_IMAGE} is missing (no qemu-aarch64 in binfmt_misc?)");
        return;
    }
    let _serial = serial();
    let tag = "slim-test/python-http-arm64.slim:test";
    let (report, _slim) = build_keeping_image(
        "python-http-arm64",
        tag,
        &[
            "--http-probe-cmd-file",
            probe_file("python-http.json").to_str().unwrap(),
        ],
    );
    check_report(&report, 5.0);
    assert_eq!(report["kept"]["interpreter"], 1, "{}", report["kept"]);
    // Its seccomp profile is the emulator's host calls mapped to arm64 names, said so, and not
    // enforced in the verification (the emulator's own x86_64 calls would hit it).
    let seccomp = &report["profiles"]["seccomp"];
    assert_eq!(
        seccomp["architectures"],
        serde_json::json!(["SCMP_ARCH_AARCH64"])
    );
    assert!(
        seccomp["derived_under_emulation"]
            .as_str()
            .is_some_and(|note| note.contains("emulation")),
        "{seccomp}"
    );
    let names = seccomp["syscalls"].as_array().unwrap();
    assert!(names.iter().any(|n| n == "openat"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "open" || n == "stat"),
        "{names:?}"
    );
    assert_eq!(report["verify"]["under"], serde_json::json!([]));
    // The slim image is still an arm64 image, and it was verified by running it.
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Architecture}}", tag]),
        "arm64"
    );
    let listing = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/usr/bin/python3",
        tag,
        "-c",
        "import os; print(sorted(os.listdir('/usr/lib/aarch64-linux-gnu')))",
    ]);
    assert!(listing.contains("ld-linux-aarch64.so.1"), "{listing}");
    assert!(listing.contains("libc.so.6"), "{listing}");
}

#[test]
fn nginx_is_slimmed_and_verified() {
    if !is_root("nginx_is_slimmed_and_verified") {
        return;
    }
    let _serial = serial();
    let report = build(
        "nginx",
        "slim-test/nginx.slim:test",
        &[
            "--http-probe-cmd-file",
            probe_file("nginx.json").to_str().unwrap(),
        ],
    );
    check_report(&report, 5.0);
    let statuses: Vec<u64> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 404, 200, 200, 404]);
}

#[test]
fn post_with_headers_and_body_reaches_the_app_intact() {
    if !is_root("post_with_headers_and_body_reaches_the_app_intact") {
        return;
    }
    let _serial = serial();
    let report = build(
        "perl-echo",
        "slim-test/perl-echo.slim:test",
        &[
            "--http-probe-cmd-file",
            probe_file("echo.json").to_str().unwrap(),
        ],
    );
    check_report(&report, 3.0);
    // The echo app answers with the request line, the X-Slim-Test header and the body.
    let expected = "POST /echo?x=1 HTTP/1.1\nx-slim-test: hello probe\n\n{\"greeting\": \"hello from slim\", \"n\": 42}";
    let digest = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '%s' \"$0\" | sha256sum | cut -d' ' -f1")
        .arg(expected)
        .output()
        .unwrap();
    let digest = String::from_utf8_lossy(&digest.stdout).trim().to_owned();
    let post = &report["probes"][0];
    assert_eq!(post["status"], 200);
    assert_eq!(post["body_sha256"].as_str().unwrap(), digest, "{post}");
    assert_eq!(post["bytes"].as_u64().unwrap(), expected.len() as u64);
}

#[test]
fn probe_file_syntax_error_exits_2_before_any_container() {
    let out = slim()
        .args(["build", "--http-probe-cmd-file"])
        .arg(probe_file("invalid/syntax-error.json"))
        .arg("slim-test/python-http:fat")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let _serial = serial();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("syntax-error.json:4:"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    if is_root("probe_file_syntax_error_exits_2_before_any_container (engine part)") {
        assert!(slim_containers().is_empty());
    }
}

#[test]
fn app_exiting_at_start_reports_code_and_logs() {
    if !is_root("app_exiting_at_start_reports_code_and_logs") {
        return;
    }
    let _serial = serial();
    require_base_image();
    build_image(
        "slim-test/exits:fat",
        "FROM slim-test/debian:bookworm\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"echo starting; echo config missing >&2; exit 3\"]\n",
    );
    let _image = Image("slim-test/exits:fat".into());
    let out = slim()
        .args(["build", "slim-test/exits:fat"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("exited with code 3"), "{stderr}");
    assert!(
        stderr.contains("config missing") && stderr.contains("starting"),
        "{stderr}"
    );
    assert!(slim_containers().is_empty());
}

/// An app that exits at once, cleanly, may be gone before slim reads its mount namespace:
/// then its recording cannot be told from other containers', and the build must say so (exit 4)
/// rather than slim an image from an empty recording. When slim did catch it, the recording
/// holds its program.
#[test]
fn app_exiting_cleanly_at_once_is_never_slimmed_from_an_empty_recording() {
    if !is_root("app_exiting_cleanly_at_once_is_never_slimmed_from_an_empty_recording") {
        return;
    }
    let _serial = serial();
    require_base_image();
    build_image(
        "slim-test/exits-clean:fat",
        "FROM slim-test/debian:bookworm\nCMD [\"true\"]\n",
    );
    let _image = Image("slim-test/exits-clean:fat".into());
    let tag = "slim-test/exits-clean.slim:test";
    let _slim = Image(tag.into());
    let out_dir = std::env::temp_dir().join(format!("slim-exits-clean-{}", std::process::id()));
    let out = slim()
        .args([
            "build",
            "--http-probe-off",
            "--continue-after",
            "1",
            "--tag",
            tag,
        ])
        .arg("--output-dir")
        .arg(&out_dir)
        .arg("slim-test/exits-clean:fat")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(4) => assert!(
            stderr.contains("before slim could tell its processes from others'"),
            "{stderr}"
        ),
        Some(0) => {
            let files = std::fs::read_to_string(out_dir.join("files.txt")).unwrap_or_default();
            assert!(
                files.contains("/usr/bin/true"),
                "built from a recording without its program:\n{files}\n{stderr}"
            );
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(slim_containers().is_empty());
}

#[test]
fn port_that_never_opens_fails_by_the_deadline() {
    if !is_root("port_that_never_opens_fails_by_the_deadline") {
        return;
    }
    let _serial = serial();
    require_base_image();
    build_image(
        "slim-test/silent:fat",
        "FROM slim-test/debian:bookworm\nEXPOSE 8080\nCMD [\"sleep\", \"600\"]\n",
    );
    let _image = Image("slim-test/silent:fat".into());
    let started = std::time::Instant::now();
    let out = slim()
        .args(["build", "--probe-wait", "3", "slim-test/silent:fat"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("container port 8080 did not answer within 3s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(slim_containers().is_empty());
}

fn interrupt_during_probing(signal: i32) {
    let image = app_image("python-http");
    let out_dir = TempDir::new("interrupt");
    let mut child = slim()
        .args(["build", "--continue-after", "timeout:120", "--output-dir"])
        .arg(&out_dir.0)
        .arg(&image)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until slim's container is up, then stop slim.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while slim_containers().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no container started");
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        slim_containers().is_empty(),
        "container left behind after signal {signal}"
    );
    assert!(!Path::new(&out_dir.0).join("report.json").exists());
}

#[test]
fn ctrl_c_during_probing_leaves_no_container() {
    if !is_root("ctrl_c_during_probing_leaves_no_container") {
        return;
    }
    let _serial = serial();
    interrupt_during_probing(2);
}

#[test]
fn sigterm_during_probing_leaves_no_container() {
    if !is_root("sigterm_during_probing_leaves_no_container") {
        return;
    }
    let _serial = serial();
    interrupt_during_probing(15);
}

#[test]
fn tag_equal_to_the_target_is_refused() {
    if !is_root("tag_equal_to_the_target_is_refused") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let out = slim()
        .args(["build", "--tag", &image, &image])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("names the image being slimmed"), "{stderr}");
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A static executable needs no libc: no NSS module or loader is kept for it; stripped and
/// packed, it still answers every probe (the verification runs the packed binary), and
/// report.json and files.txt say what each flag did.
#[test]
fn a_static_executable_is_kept_alone_then_stripped_and_packed() {
    if !is_root("a_static_executable_is_kept_alone_then_stripped_and_packed") {
        return;
    }
    let _serial = serial();
    let (plain, _image, kept) =
        build_with_files("busybox-static", "slim-test/busybox-static.slim:plain", &[]);
    check_report(&plain, 50.0);
    assert!(
        !kept
            .iter()
            .any(|p| p.contains("libnss_") || p.contains("libc.so")),
        "{kept:?}"
    );
    assert!(plain.get("shrink").is_none());
    let (shrunk, _image, _) = build_with_files(
        "busybox-static",
        "slim-test/busybox-static.slim:shrunk",
        &["--strip-executables", "--compress-executables"],
    );
    check_report(&shrunk, 50.0);
    let actions = shrunk["shrink"]["shrunk"].as_array().unwrap();
    let packed = actions
        .iter()
        .find(|a| a["action"] == "upx" && a["path"] == "/usr/bin/busybox")
        .unwrap_or_else(|| panic!("busybox not packed: {}", shrunk["shrink"]));
    assert!(packed["bytes_after"].as_u64().unwrap() < packed["bytes_before"].as_u64().unwrap());
    assert!(
        shrunk["slim"]["size_bytes"].as_u64().unwrap()
            < plain["slim"]["size_bytes"].as_u64().unwrap()
    );
}

/// A dynamically linked program packed by UPX starts through UPX's stub, whose calls
/// (`open` and `readlink` of /proc/self/exe, ...) the recording of the unpacked program never
/// saw: the profile gets them as the `upx-stub` group, and the packed nginx answers every probe
/// under it.
#[test]
fn a_packed_dynamic_executable_runs_under_its_seccomp_profile() {
    if !is_root("a_packed_dynamic_executable_runs_under_its_seccomp_profile") {
        return;
    }
    let _serial = serial();
    let (report, _image, _) = build_with_files(
        "nginx",
        "slim-test/nginx.slim:packed",
        &["--compress-executables"],
    );
    check_report(&report, 5.0);
    let actions = report["shrink"]["shrunk"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a["action"] == "upx" && a["path"] == "/usr/sbin/nginx"),
        "nginx not packed: {}",
        report["shrink"]
    );
    assert_eq!(report["verify"]["under"], verified_under());
    let packer = &report["profiles"]["seccomp"]["packer"];
    assert_eq!(packer["group"], "upx-stub", "{}", report["profiles"]);
    for call in ["open", "readlink"] {
        assert!(
            packer["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == call),
            "{packer}"
        );
    }
}

/// An output dir slim cannot write is found before anything runs: exit 2 with a hint, no
/// container, and no slim image tagged without its report.
#[test]
fn unwritable_output_dir_exits_2_before_any_container_or_image() {
    if !is_root("unwritable_output_dir_exits_2_before_any_container_or_image") {
        return;
    }
    let _serial = serial();
    let image = app_image("busybox-static");
    let parent = TempDir::new("not-a-dir");
    let file = parent.0.join("file");
    std::fs::write(&file, "x").unwrap();
    let tag = "slim-test/busybox-static.slim:unwritable";
    let out = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(file.join("out"))
        .arg(&image)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write the output dir"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!image_present(tag), "{tag} was written");
    assert!(slim_containers().is_empty());
}

/// A malformed image reference is bad input found by slim itself, before any engine is asked
/// (none answers here): exit 2 with one line saying what a valid reference looks like, not
/// the engine's raw 400 (or, for an empty name to `xray`, a bare "status code 301").
#[test]
fn malformed_references_exit_2_before_the_engine_is_asked() {
    let out_dir = TempDir::new("malformed-ref");
    let out = out_dir.0.display().to_string();
    let mut cases: Vec<Vec<&str>> = Vec::new();
    for reference in [":", "a:b:c", "@sha256:abc", "", "App:1", "sha256:xyz"] {
        if !reference.is_empty() {
            // (`build ""` is "no image to slim", exit 2 as well.)
            cases.push(vec!["build", "--output-dir", &out, reference]);
        }
        cases.push(vec!["profile", "--output-dir", &out, reference]);
        cases.push(vec!["xray", reference]);
        cases.push(vec!["squash", "--tag", "slim-test/squashed:1", reference]);
    }
    cases.push(vec![
        "build",
        "--output-dir",
        &out,
        "--tag",
        "a:b:c",
        "app:1",
    ]);
    cases.push(vec!["squash", "--tag", "@sha256:abc", "app:1"]);
    for args in cases {
        let run = slim()
            .args(&args)
            .env("DOCKER_HOST", "unix:///nonexistent/slim-test-docker.sock")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains("is not a valid image reference"),
            "{args:?}: {stderr}"
        );
        assert!(
            lines[1].starts_with("  hint: ") && lines[1].contains("NAME[:TAG][@DIGEST]"),
            "{args:?}: {stderr}"
        );
    }
}

/// An image named by its id (as `docker build -q` prints it) gets its default tag from the
/// short id; it once panicked (exit 101) on the id's length. The unwritable output dir stops
/// the run right after the tag is chosen, before any engine is asked.
#[test]
fn an_image_id_as_target_does_not_panic() {
    let parent = TempDir::new("id-target");
    let file = parent.0.join("file");
    std::fs::write(&file, "x").unwrap();
    let id = format!("sha256:{}", "0123456789abcdef".repeat(4));
    for target in [id.as_str(), &id[7..], &id[..19], "0123456789ab"] {
        let run = slim()
            .args(["build", "--output-dir"])
            .arg(file.join("out"))
            .arg(target)
            .env("DOCKER_HOST", "unix:///nonexistent/slim-test-docker.sock")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!stderr.contains("panicked"), "{target}: {stderr}");
        assert_eq!(run.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains("cannot write the output dir"),
            "{target}: {stderr}"
        );
    }
}

/// The image's own HEALTHCHECK runs as a probe while recording and verifying: what only it
/// uses (a shell and `cat`, which the Python server never runs) is kept, so the engine's
/// health checks still pass on the slim image; with `--healthcheck-probe off` it is not.
#[test]
fn the_images_healthcheck_is_a_probe() {
    if !is_root("the_images_healthcheck_is_a_probe") {
        return;
    }
    let _serial = serial();
    let base = app_image("python-http");
    let fat = "slim-test/python-healthcheck:fat";
    build_image(
        fat,
        &format!(
            "FROM {base}\nHEALTHCHECK --interval=5m CMD cat /srv/about.html >/dev/null || exit 1\n"
        ),
    );
    let _fat = Image(fat.into());
    let build = |tag: &str, extra: &[&str]| {
        let out_dir = TempDir::new("healthcheck");
        let out = slim()
            .args(["build", "--tag", tag, "--output-dir"])
            .arg(&out_dir.0)
            .args(extra)
            .arg(fat)
            .output()
            .unwrap();
        assert_success(&out);
        let files = std::fs::read_to_string(out_dir.0.join("files.txt")).unwrap();
        (read_report(&out_dir.0), files, out_dir)
    };
    let tag = "slim-test/python-healthcheck.slim:test";
    let _slim = Image(tag.into());
    let (report, files, _dir) = build(tag, &[]);
    let probes = report["probes"].as_array().unwrap();
    let check = probes
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("healthcheck: "))
        })
        .unwrap_or_else(|| panic!("no healthcheck probe: {probes:?}"));
    assert_eq!(check["exit_code"], 0, "{check}");
    assert_eq!(report["verify"]["matched"], report["verify"]["probes"]);
    let kept = |name: &str| {
        files
            .lines()
            .any(|l| l.split('\t').next().is_some_and(|p| p.ends_with(name)))
    };
    assert!(
        kept("/bin/cat") && kept("/bin/dash"),
        "the healthcheck's programs are not kept"
    );

    let off_tag = "slim-test/python-healthcheck.slim:off";
    let _off = Image(off_tag.into());
    let (_, off_files, _off_dir) = build(off_tag, &["--healthcheck-probe", "off"]);
    assert!(
        !off_files.lines().any(|l| l.starts_with("/usr/bin/cat\t")),
        "cat kept without the healthcheck probe"
    );
    assert!(slim_containers().is_empty(), "containers left behind");
}
