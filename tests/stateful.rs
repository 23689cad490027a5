//! Stateful apps end to end: a PostgreSQL server slimmed keeps its data directory whole and
//! serves later connections, new tables and new databases; a probe that fails on the fat image
//! stops the build before anything is written; checks held out of the recording
//! (`--verify-exec`) catch what the recording did not exercise.

mod support;

use std::{
    process::{Command, Output},
    thread,
    time::Duration,
};

use support::*;

/// Runs the host's psql against 127.0.0.1:`port`; returns (success, output).
fn psql(port: u16, database: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(port.to_string())
        .args(["-d", database, "-c", sql])
        .output()
        .expect("psql (Debian's postgresql-client) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `slim build --output-dir OUT_DIR --tag TAG FLAG COMMAND IMAGE`, where FLAG gives a
/// probe or a check (`--exec`, `--verify-exec`); returns its output, whatever its exit.
fn build_with(out_dir: &TempDir, tag: &str, flag: &str, command: &str, image: &str) -> Output {
    slim()
        .args(["build", "--output-dir"])
        .arg(&out_dir.0)
        .args(["--tag", tag, flag, command])
        .arg(image)
        .output()
        .unwrap()
}

/// A check held out of the recording: it reads a file the app never opens.
const READS_LOGIN_DEFS: &str = "python3 -c \"open('/etc/login.defs').read()\"";

#[test]
fn postgres_keeps_its_data_directory_whole_and_serves_every_later_connection() {
    if !is_root("postgres_keeps_its_data_directory_whole_and_serves_every_later_connection") {
        return;
    }
    let _serial = serial();
    let image = app_image("postgres");
    let tag = "slim-test/postgres.slim:test";
    let _slim_image = Image(tag.to_owned());
    let out_dir = TempDir::new("build-postgres");
    let out = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        .args([
            "--http-probe-off",
            "--exec",
            "psql -U postgres -h 127.0.0.1 -c 'select 1'",
        ])
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(slim_containers().is_empty(), "containers left behind");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.0.join("report.json")).unwrap()).unwrap();
    let state = report["state"].as_array().expect("report.json has state");
    let data = state
        .iter()
        .find(|s| {
            s["root"]
                .as_str()
                .is_some_and(|r| "/var/lib/postgresql/15/main".starts_with(r))
        })
        .unwrap_or_else(|| panic!("the data directory is not kept whole: {state:?}"));
    assert!(data["bytes"].as_u64().unwrap() > 1_000_000, "{data}");
    assert!(data["files"].as_u64().unwrap() > 500, "{data}");
    let root = data["root"].as_str().unwrap();
    assert!(
        !["/", "/var", "/var/lib", "/usr"].contains(&root),
        "a system tree swallowed whole: {root}"
    );
    // Every file of the data directory is in the slim image, opened or not.
    let files = std::fs::read_to_string(out_dir.0.join("files.txt")).unwrap();
    let under_root = files
        .lines()
        .filter(|l| l.starts_with(&format!("{root}/")) || l.starts_with(&format!("{root}\t")))
        .count() as u64;
    assert_eq!(under_root, data["files"].as_u64().unwrap(), "{root}");
    assert!(files.contains("\tstate\twritten by postgres: kept whole"));
    // Two probe rounds were recorded and verified.
    assert_eq!(report["probes"].as_array().unwrap().len(), 2);

    let container = Container::run_detached(&["-p", "127.0.0.1::5432", tag]);
    let port = published_port(&container.0, 5432);
    let mut ready = false;
    for _ in 0..100 {
        if psql(port, "postgres", "select 1").0 {
            ready = true;
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert!(ready, "the slim postgres never answered");
    for n in 0..5 {
        let (ok, text) = psql(port, "postgres", "select count(*) from pg_class");
        assert!(ok, "connection {n} failed: {text}");
    }
    let (ok, text) = psql(
        port,
        "postgres",
        "create table t (x int); insert into t values (42); select x from t",
    );
    assert!(ok && text.contains("42"), "create table: {text}");
    let (ok, text) = psql(port, "postgres", "create database slimmed");
    assert!(ok, "create database: {text}");
    let (ok, text) = psql(port, "slimmed", "select 1");
    assert!(ok, "connecting to the new database: {text}");
}

#[test]
fn a_probe_that_fails_on_the_fat_image_stops_the_build() {
    if !is_root("a_probe_that_fails_on_the_fat_image_stops_the_build") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let tag = "slim-test/python-http.slim:broken-probe";
    let out_dir = TempDir::new("broken-probe");
    let out = build_with(
        &out_dir,
        tag,
        "--exec",
        "python3 -c 'import sys; print(\"broken\"); sys.exit(2)'",
        &image,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("failed on the fat image"), "{stderr}");
    assert!(stderr.contains("exit code 2"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!image_present(tag), "an image was written");
    assert!(slim_containers().is_empty(), "containers left behind");
}

#[test]
fn verify_exec_catches_a_file_the_recording_never_saw() {
    if !is_root("verify_exec_catches_a_file_the_recording_never_saw") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let tag = "slim-test/python-http.slim:verify-exec";
    let _slim_image = Image(tag.to_owned());
    let _unverified = Image(format!("{tag}-unverified"));
    let out_dir = TempDir::new("verify-exec");
    let out = build_with(&out_dir, tag, "--verify-exec", READS_LOGIN_DEFS, &image);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("--include-path /etc/login.defs"),
        "the hint names the missing file: {stderr}"
    );
    assert!(slim_containers().is_empty(), "containers left behind");
}

#[test]
fn an_image_that_fails_verification_leaves_the_tag_and_is_tagged_unverified() {
    if !is_root("an_image_that_fails_verification_leaves_the_tag_and_is_tagged_unverified") {
        return;
    }
    let _serial = serial();
    let image = app_image("python-http");
    let tag = "slim-test/python-http.slim:unverified-check";
    let unverified = format!("{tag}-unverified");
    // The previous (good) image under the tag: here simply another image.
    docker(&["tag", BASE_IMAGE, tag]);
    let _previous = Image(tag.to_owned());
    let _failed = Image(unverified.clone());
    let previous_id = image_id(tag);
    let out_dir = TempDir::new("unverified");
    let out = build_with(&out_dir, tag, "--verify-exec", READS_LOGIN_DEFS, &image);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        image_id(tag),
        previous_id,
        "the tag moved to the image that failed verification"
    );
    let report = read_report(&out_dir.0);
    let failed_id = image_id(&unverified);
    assert_eq!(report["slim"]["id"], failed_id.as_str(), "{report}");
    assert_eq!(report["slim"]["image"], unverified.as_str());
    assert!(
        stdout.contains(&format!("tagged {unverified} for inspection")),
        "{stdout}"
    );
    assert!(slim_containers().is_empty(), "containers left behind");
}
