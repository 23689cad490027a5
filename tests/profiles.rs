//! Security profiles end to end: `slim build` and `slim profile` write seccomp.json,
//! seccomp-profile.yaml and apparmor.profile; the slim image starts and answers its probes under
//! its own seccomp profile with runc and with crun; the profile denies what the app never did;
//! the AppArmor profile parses.

mod support;

use std::{path::Path, process::Command};

use support::*;

/// One `slim` run at a time (the engine is shared, and 2 cores).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

fn names(profile: &serde_json::Value) -> Vec<String> {
    profile["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Whether the engine has `runtime` registered (`cargo xtask setup` registers crun).
fn runtime_registered(runtime: &str) -> bool {
    docker(&["info", "--format", "{{json .Runtimes}}"]).contains(&format!("\"{runtime}\""))
}

/// `slim build` of `app` with `extra` flags into `out`; returns the report.
fn build(app: &str, tag: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let image = app_image(app);
    let result = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(out)
        .args(extra)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&result);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("probes under seccomp.json"),
        "not verified under the profile: {stdout}"
    );
    assert!(slim_containers().is_empty(), "containers left behind");
    read_json(&out.join("report.json"))
}

/// Checks what every build writes: the three files, the report's `profiles`, a seccomp profile
/// that allows the app's calls and the runtime's, and nothing of the runtime's set-up.
fn check_profiles(out: &Path, report: &serde_json::Value) {
    let seccomp = read_json(&out.join("seccomp.json"));
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
    assert_eq!(
        seccomp["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );
    let allowed = names(&seccomp);
    for needed in [
        "execve",
        "openat",
        "fstatfs",
        "close_range",
        "exit_group",
        "futex",
    ] {
        assert!(allowed.iter().any(|n| n == needed), "{needed} not allowed");
    }
    for denied in [
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "ptrace",
        "bpf",
    ] {
        assert!(!allowed.iter().any(|n| n == denied), "{denied} allowed");
    }
    let yaml = std::fs::read_to_string(out.join("seccomp-profile.yaml")).unwrap();
    assert!(yaml.contains("kind: SeccompProfile"));
    for name in &allowed {
        assert!(
            yaml.contains(&format!("    - {name}\n")),
            "{name} not in the yaml"
        );
    }
    let profiles = &report["profiles"];
    let counted = &profiles["seccomp"];
    assert_eq!(counted["allowed"].as_u64().unwrap() as usize, allowed.len());
    assert_eq!(
        counted["from_app"].as_u64().unwrap()
            + counted["from_runtime"].as_u64().unwrap()
            + counted["fixed_extras"].as_u64().unwrap(),
        allowed.len() as u64
    );
    assert!(counted["from_app"].as_u64().unwrap() > 20, "{counted}");
    // runc's own set-up before the filter point is seen, and kept out of the profile.
    let setup: Vec<&str> = counted["runtime_setup_denied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(setup.contains(&"pivot_root"), "{setup:?}");
    assert_eq!(
        profiles["verified_under"],
        serde_json::json!(["seccomp.json"])
    );

    let apparmor = std::fs::read_to_string(out.join("apparmor.profile")).unwrap();
    let name = profiles["apparmor"]["name"].as_str().unwrap();
    assert!(name.starts_with("slim-"), "{name}");
    assert!(apparmor.contains(&format!(
        "profile {name} flags=(attach_disconnected,mediate_deleted)"
    )));
    assert!(apparmor.contains("#include <abstractions/base>"));
    assert!(profiles["apparmor"]["rules"]["file"].as_u64().unwrap() > 5);
    if Command::new("apparmor_parser")
        .arg("--version")
        .output()
        .is_ok()
    {
        assert_eq!(profiles["apparmor"]["parse_check"], "passed", "{profiles}");
        let parsed = Command::new("apparmor_parser")
            .args(["-Q", "-K"])
            .arg(out.join("apparmor.profile"))
            .output()
            .unwrap();
        assert_success(&parsed);
    }
}

/// Runs `image` detached under `seccomp` (a file, or `unconfined`) with `runtime`.
fn run_under(image: &str, seccomp: &str, runtime: Option<&str>, port: u16) -> Container {
    let publish = format!("127.0.0.1::{port}");
    let seccomp = format!("seccomp={seccomp}");
    let mut args = vec!["-p", &publish, "--security-opt", &seccomp];
    if let Some(runtime) = runtime {
        args.extend(["--runtime", runtime]);
    }
    args.push(image);
    Container::run_detached(&args)
}

#[test]
fn python_profile_starts_under_runc_and_crun_and_denies_what_the_app_never_did() {
    if !is_root("python_profile_starts_under_runc_and_crun_and_denies_what_the_app_never_did") {
        return;
    }
    let _serial = serial();
    let out = TempDir::new("profiles-python");
    let tag = "slim-test/python-http.slim:profiles";
    let _image = Image(tag.to_owned());
    let report = build(
        "python-http",
        tag,
        &out.0,
        &[
            "--http-probe-cmd-file",
            probe_file("python-http.json").to_str().unwrap(),
        ],
    );
    check_profiles(&out.0, &report);
    let profile = out.0.join("seccomp.json");
    let profile = profile.to_str().unwrap();
    assert!(
        !names(&read_json(Path::new(profile))).contains(&"getsid".to_owned()),
        "the negative check needs a syscall the app never made"
    );

    let mut runtimes = vec![None];
    if runtime_registered("crun") {
        runtimes.push(Some("crun"));
    } else {
        eprintln!("crun is not registered with the engine (cargo xtask setup does it): runc only");
    }
    for runtime in runtimes {
        let container = run_under(tag, profile, runtime, 8000);
        let port = published_port(&container.0, 8000);
        let (status, body) = http_get(port, "/about.html");
        assert!(status.contains("200"), "{runtime:?}: {status}");
        assert!(!body.is_empty());
        // The app never called getsid: under its profile the call fails with EPERM...
        let denied = Command::new("docker")
            .args(["exec", &container.0, "python3", "-c"])
            .arg("import os; os.getsid(0)")
            .output()
            .unwrap();
        assert!(!denied.status.success(), "{runtime:?}: getsid was allowed");
        assert!(
            String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"),
            "{runtime:?}: {}",
            String::from_utf8_lossy(&denied.stderr)
        );
    }
    // ...while the same image without the profile makes it.
    let unconfined = run_under(tag, "unconfined", None, 8000);
    let allowed = Command::new("docker")
        .args(["exec", &unconfined.0, "python3", "-c"])
        .arg("import os; os.getsid(0)")
        .output()
        .unwrap();
    assert_success(&allowed);
}

#[test]
fn nginx_is_verified_under_its_profile_with_crun() {
    if !is_root("nginx_is_verified_under_its_profile_with_crun") {
        return;
    }
    if !runtime_registered("crun") {
        eprintln!("skipped: crun is not registered with the engine (cargo xtask setup does it)");
        return;
    }
    let _serial = serial();
    let out = TempDir::new("profiles-nginx");
    let tag = "slim-test/nginx.slim:profiles";
    let _image = Image(tag.to_owned());
    let report = build(
        "nginx",
        tag,
        &out.0,
        &[
            "--runtime",
            "crun",
            "--http-probe-cmd-file",
            probe_file("nginx.json").to_str().unwrap(),
        ],
    );
    check_profiles(&out.0, &report);
    // nginx's master starts as root and drops to www-data: AppArmor must let it.
    let capabilities = &report["profiles"]["apparmor"]["capabilities"];
    for cap in ["setuid", "setgid", "net_bind_service"] {
        assert!(
            capabilities.as_array().unwrap().iter().any(|c| c == cap),
            "{cap} missing: {capabilities}"
        );
    }
}

#[test]
fn slim_profile_writes_the_profiles_without_an_image() {
    if !is_root("slim_profile_writes_the_profiles_without_an_image") {
        return;
    }
    let _serial = serial();
    let image = app_image("perl-echo");
    let images = || {
        let mut list: Vec<String> =
            docker(&["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])
                .lines()
                .map(str::to_owned)
                .collect();
        list.sort();
        list
    };
    let images_before = images();
    let out = TempDir::new("profiles-perl");
    let result = slim()
        .args(["profile", "--output-dir"])
        .arg(&out.0)
        .args([
            "--http-probe-cmd-file",
            probe_file("echo.json").to_str().unwrap(),
        ])
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&result);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("probes under seccomp.json"), "{stdout}");
    assert_eq!(images(), images_before, "an image was written");
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    check_profiles(&out.0, &report);
    assert_eq!(report["verify"]["failed"].as_array().unwrap().len(), 0);
}
