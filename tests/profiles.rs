//! Security profiles end to end: `slim build` and `slim profile` write seccomp.json,
//! seccomp-profile.yaml and apparmor.profile; the slim image starts and answers its probes under
//! its own seccomp profile with runc and with crun; the profile denies what the app never did;
//! the AppArmor profile parses.

mod support;

use std::{path::Path, process::Command};

use support::*;

/// The names of every SCMP_ACT_ALLOW rule, with or without argument conditions, sorted.
fn names(profile: &serde_json::Value) -> Vec<String> {
    allowed_names(profile).into_iter().collect()
}

/// The names of the ALLOW rule without argument conditions.
fn unconditional(profile: &serde_json::Value) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "SCMP_ACT_ALLOW" && rule.get("args").is_none())
        .flat_map(|rule| rule["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Calls Docker's default seccomp profile (moby's profiles/seccomp/default.json) refuses a
/// container with Docker's default capabilities, listed here by hand from that file so the
/// check does not trust slim's own list.
const DOCKER_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_settime",
    "clone3",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lsm_set_self_attr",
    "mbind",
    "migrate_pages",
    "mount",
    "move_mount",
    "move_pages",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
];

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

/// `slim profile` of `image` into `out`, probed with `probes` (a file of probes/); asserts it
/// succeeded and verified the probes under seccomp.json.
fn profile_with_probes(out: &Path, image: &str, probes: &str) {
    let result = slim()
        .args(["profile", "--output-dir"])
        .arg(out)
        .args([
            "--http-probe-cmd-file",
            probe_file(probes).to_str().unwrap(),
        ])
        .arg(image)
        .output()
        .unwrap();
    assert_success(&result);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("probes under seccomp.json"), "{stdout}");
}

/// Checks what every build writes: the three files, the report's `profiles`, a seccomp profile
/// that allows the app's calls and the runtime's, and nothing of the runtime's set-up.
fn check_profiles(out: &Path, report: &serde_json::Value) {
    assert_not_weaker_than_dockers_default(&out.join("seccomp.json"));
    let seccomp = read_json(&out.join("seccomp.json"));
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
    assert_eq!(
        seccomp["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );
    let allowed = names(&seccomp);
    // Nothing Docker's default refuses; clone only with its namespace flags masked.
    for denied in DOCKER_DENIED {
        assert!(!allowed.iter().any(|n| n == denied), "{denied} allowed");
    }
    assert!(!unconditional(&seccomp).iter().any(|n| n == "clone"));
    let clone_rules: Vec<&serde_json::Value> = seccomp["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["names"] == serde_json::json!(["clone"]))
        .collect();
    assert_eq!(clone_rules.len(), 1, "{clone_rules:?}");
    assert_eq!(
        clone_rules[0]["args"],
        serde_json::json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
    );
    let enosys = &seccomp["syscalls"].as_array().unwrap().last().unwrap();
    assert_eq!(enosys["errnoRet"], 38);
    for name in ["clone3", "io_uring_setup"] {
        assert!(
            enosys["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == name),
            "{name} does not answer ENOSYS"
        );
    }
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
    // The complain-mode copies: the same rules, logging what the enforcing ones refuse.
    let log = read_json(&out.join("seccomp.log.json"));
    assert_eq!(log["defaultAction"], "SCMP_ACT_LOG");
    assert_eq!(log["syscalls"], seccomp["syscalls"]);
    let complain = std::fs::read_to_string(out.join("apparmor.complain.profile")).unwrap();
    assert!(complain.contains("flags=(complain,"), "{complain}");
    assert_eq!(
        report["profiles"]["apparmor"]["complain_file"],
        "apparmor.complain.profile"
    );
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
    assert_eq!(profiles["verified_under"], verified_under());

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

/// Runs `command` in the fat python image under `seccomp` (a file or `unconfined`).
fn run_once(seccomp: &str, command: &[&str]) -> std::process::Output {
    let image = app_image("python-http");
    Command::new("docker")
        .args(["run", "--rm", "--security-opt"])
        .arg(format!("seccomp={seccomp}"))
        .arg(&image)
        .args(command)
        .output()
        .unwrap()
}

/// Python calling clone(2) (x86_64's number 56) with the flags in its argument through ctypes:
/// prints the result and errno; a child exits at once (no wait: the profile need not allow it).
const CLONE: &str = "import ctypes, os, sys\n\
    libc = ctypes.CDLL(None, use_errno=True)\n\
    pid = libc.syscall(56, int(sys.argv[1], 0), 0, 0, 0, 0)\n\
    if pid == 0: os._exit(0)\n\
    print(pid, ctypes.get_errno())";

#[test]
fn python_profile_refuses_new_namespaces_that_unconfined_allows() {
    if !is_root("python_profile_refuses_new_namespaces_that_unconfined_allows") {
        return;
    }
    let _serial = serial();
    let out = TempDir::new("profiles-namespaces");
    let image = app_image("python-http");
    profile_with_probes(&out.0, &image, "python-http.json");
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    assert_eq!(report["verify"]["failed"].as_array().unwrap().len(), 0);
    let seccomp = &report["profiles"]["seccomp"];
    assert!(seccomp["argument_rules"]["clone"].is_array(), "{seccomp}");
    let profile = out.0.join("seccomp.json");
    let profile = profile.to_str().unwrap();
    let clone_newuser = ["python3", "-c", CLONE, "0x10000011"]; // CLONE_NEWUSER|SIGCHLD
    let fork = ["python3", "-c", CLONE, "0x11"]; // SIGCHLD

    // Unconfined, the container makes a user namespace, by unshare(2) and by clone(2)...
    assert_success(&run_once("unconfined", &["unshare", "-U", "true"]));
    let cloned = run_once("unconfined", &clone_newuser);
    assert_success(&cloned);
    let (pid, _) = pid_errno(&cloned);
    assert!(pid > 0, "unconfined clone(CLONE_NEWUSER) failed");

    // ...under the profile neither works, while a plain fork does.
    let denied = run_once(profile, &["unshare", "-U", "true"]);
    assert!(!denied.status.success(), "unshare -U allowed");
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("unshare failed: Operation not permitted"),
        "{stderr}"
    );
    let cloned = run_once(profile, &clone_newuser);
    assert_success(&cloned);
    assert_eq!(
        pid_errno(&cloned),
        (-1, 1),
        "clone(CLONE_NEWUSER) not EPERM"
    );
    let forked = run_once(profile, &fork);
    assert_success(&forked);
    assert!(pid_errno(&forked).0 > 0, "a plain fork was refused");
}

/// A call the app only tried is answered with the errno it got, not allowed: here chroot(2),
/// which a process without the privilege (an exec probe dropped to nobody) is refused with
/// EPERM. Docker's default profile allows chroot to a container with CAP_SYS_CHROOT (root has
/// it), so a profile that allowed every recorded call would let root chroot; slim's does not.
#[test]
fn a_call_the_app_only_tried_is_denied_under_its_profile() {
    if !is_root("a_call_the_app_only_tried_is_denied_under_its_profile") {
        return;
    }
    let _serial = serial();
    let out = TempDir::new("profiles-tried");
    let image = app_image("python-http");
    let tried = "setpriv --reuid=65534 --regid=65534 --clear-groups chroot / true || true";
    let result = slim()
        .args(["profile", "--output-dir"])
        .arg(&out.0)
        .args(["--http-probe-cmd-file"])
        .arg(probe_file("python-http.json"))
        .args(["--exec", tried])
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&result);
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    let seccomp = &report["profiles"]["seccomp"];
    assert_eq!(seccomp["answered_failed_only"]["chroot"], 1, "{seccomp}");
    let profile = out.0.join("seccomp.json");
    assert_not_weaker_than_dockers_default(&profile);
    assert!(
        !allowed_names(&read_json(&profile)).contains("chroot"),
        "chroot allowed"
    );
    let chroot = ["chroot", "/", "true"];
    assert_success(&run_once("unconfined", &chroot));
    let denied = run_once(profile.to_str().unwrap(), &chroot);
    assert!(
        !denied.status.success(),
        "root could chroot under the profile"
    );
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

/// `slim profile diff` finds nothing the profile allows that Docker's default refuses.
fn assert_not_weaker_than_dockers_default(profile: &Path) {
    let diff = slim()
        .args(["profile", "diff"])
        .arg(profile)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("0 allowed here that the other refuses"),
        "{stdout}"
    );
    assert!(!stdout.contains("WEAKER"), "{stdout}");
}

#[test]
fn profile_diff_names_what_a_profile_allows_beyond_dockers_default() {
    let dir = TempDir::new("profile-diff");
    let weak = dir.0.join("weak.json");
    std::fs::write(
        &weak,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "write", "keyctl", "clone"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let diff = slim()
        .args(["profile", "diff"])
        .arg(&weak)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("2 allowed here that the other refuses"),
        "{stdout}"
    );
    let weaker: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("WEAKER"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    // keyctl Docker never gives; clone it gives only without the namespace flags.
    assert_eq!(weaker, ["clone", "keyctl"], "{stdout}");
    // With CAP_SYS_ADMIN, Docker's default gives clone whatever the flags: only keyctl is left.
    let admin = slim()
        .args(["profile", "diff", "--json", "--cap-add", "SYS_ADMIN"])
        .arg(&weak)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&admin.stdout).unwrap();
    assert_eq!(doc["weaker"], 1, "{doc}");
    // Against itself, nothing differs.
    let same = slim()
        .args(["profile", "diff", "--against"])
        .arg(&weak)
        .arg(&weak)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    // What is not a profile is bad input: exit 2, one line and a hint.
    let junk = dir.0.join("junk.json");
    std::fs::write(&junk, "[1, 2]").unwrap();
    for bad in [junk, dir.0.join("missing.json")] {
        let out = slim().args(["profile", "diff"]).arg(&bad).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `slim profile merge OUT DIR...`: two profiles (an output dir and a plain file) merge into the
/// union of what they allow, with per-call counts; still nowhere weaker than Docker's default.
/// Needs no engine.
#[test]
fn profile_merge_unions_two_profiles_and_counts_each_call() {
    let dir = TempDir::new("profile-merge");
    let replica = dir.0.join("replica-1");
    std::fs::create_dir_all(&replica).unwrap();
    std::fs::write(
        replica.join("seccomp.json"),
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
              {"names": ["read", "write", "accept4"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
              {"names": ["clone3", "statx"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    )
    .unwrap();
    let second = dir.0.join("replica-2.json");
    std::fs::write(
        &second,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
              {"names": ["read", "write", "statx"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    )
    .unwrap();
    let out = dir.0.join("merged");
    let merge = slim()
        .args(["profile", "merge"])
        .arg(&out)
        .arg(&replica)
        .arg(&second)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&merge.stdout);
    let stderr = String::from_utf8_lossy(&merge.stderr);
    assert_eq!(merge.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("merged 2 seccomp profiles"), "{stdout}");
    assert!(stdout.contains("2 allowed by only some"), "{stdout}");
    assert!(
        stdout.contains("AppArmor profiles are not merged"),
        "{stdout}"
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("seccomp.json")).unwrap()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        unconditional(&profile),
        ["accept4", "read", "statx", "write"],
        "statx: ENOSYS in one, allowed in the other"
    );
    let families: Vec<u64> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["names"] == serde_json::json!(["socket"]))
        .map(|rule| rule["args"][0]["value"].as_u64().unwrap())
        .collect();
    assert_eq!(families, [1, 2], "the union of the socket rules");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("seccomp.log.json")).unwrap()).unwrap();
    assert_eq!(log["defaultAction"], "SCMP_ACT_LOG");
    assert_eq!(log["syscalls"], profile["syscalls"]);
    let operator = std::fs::read_to_string(out.join("seccomp-profile.yaml")).unwrap();
    assert!(operator.contains("kind: SeccompProfile\n"), "{operator}");
    assert!(operator.contains("  name: slim-merged\n"), "{operator}");
    let counts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("merge.json")).unwrap()).unwrap();
    assert_eq!(counts["inputs"].as_array().unwrap().len(), 2, "{counts}");
    assert_eq!(counts["calls"]["read"], 2, "{counts}");
    assert_eq!(counts["calls"]["socket"], 2, "{counts}");
    assert_eq!(counts["calls"]["accept4"], 1, "{counts}");
    assert_eq!(counts["calls"]["statx"], 1, "{counts}");
    assert_eq!(counts["errno"]["clone3"], 38, "{counts}");
    assert_not_weaker_than_dockers_default(&out.join("seccomp.json"));
    // Bad input: exit 2, one line and a hint, nothing panics.
    let other_arch = dir.0.join("arm64.json");
    std::fs::write(
        &other_arch,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
    )
    .unwrap();
    let junk = dir.0.join("junk.json");
    std::fs::write(&junk, "{").unwrap();
    for bad in [junk, dir.0.join("missing"), other_arch] {
        let out = slim()
            .args(["profile", "merge"])
            .arg(dir.0.join("bad"))
            .arg(&replica)
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

fn pid_errno(output: &std::process::Output) -> (i64, i64) {
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
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
    profile_with_probes(&out.0, &image, "echo.json");
    assert_eq!(images(), images_before, "an image was written");
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_json(&out.0.join("report.json"));
    check_profiles(&out.0, &report);
    assert_eq!(report["verify"]["failed"].as_array().unwrap().len(), 0);
}
