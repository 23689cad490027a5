//! `slim build --compose-file`: a web app that needs PostgreSQL at start (it exits without it)
//! slimmed with its database running beside it, on a private network under an alias, the
//! database's data in a named volume, verified against fresh copies of both; and a dependency
//! that never becomes healthy, which stops the build (exit 4) with one line naming it. After
//! each, nothing slim started is left: no container, network or volume of the project.

mod support;

use std::{process::Command, time::Instant};

use support::*;

/// The project name every run here uses, and what it labels.
const PROJECT: &str = "slim-compose-test";

/// Containers, networks and volumes labelled with this test's Compose project.
fn project_leftovers() -> Vec<String> {
    let filter = format!("label=slim.compose.project={PROJECT}");
    let mut left = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-aq", "--filter", &filter]),
        ("network", vec!["network", "ls", "-q", "--filter", &filter]),
        ("volume", vec!["volume", "ls", "-q", "--filter", &filter]),
    ] {
        left.extend(docker(&args).lines().map(|l| format!("{kind} {l}")));
    }
    left
}

/// Removes whatever a failed run left of the project (the assertions report it first).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for left in project_leftovers() {
            let (kind, id) = left.split_once(' ').unwrap_or(("", ""));
            let args: &[&str] = match kind {
                "container" => &["rm", "-f", id],
                "network" => &["network", "rm", id],
                _ => &["volume", "rm", "-f", id],
            };
            let _ = Command::new("docker").args(args).output();
        }
    }
}

/// A Compose project in `dir`: `web` (the app, its image named through `.env`) depends on
/// `db` being healthy under `db_check`; `db` keeps its data in a named volume and answers as
/// `database` on the `back` network.
fn write_project(
    dir: &TempDir,
    (web, db): (&str, &str),
    (db_check, retries): (&str, u32),
) -> std::path::PathBuf {
    std::fs::write(dir.0.join(".env"), format!("WEB_IMAGE={web}\n")).unwrap();
    let file = dir.0.join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
services:
  web:
    image: ${{WEB_IMAGE}}
    environment:
      PGHOST: database
      GREETING: "${{GREETING:-hello}}"
    ports: ["8000"]
    networks: [back]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: {db}
    volumes: ["pgdata:/var/lib/postgresql/15/main"]
    healthcheck:
      test: {db_check}
      interval: 1s
      timeout: 5s
      retries: {retries}
    networks:
      back:
        aliases: [database]
volumes:
  pgdata:
networks:
  back:
"#
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_web_app_is_slimmed_with_its_database_running_and_verified_against_fresh_ones() {
    if !is_root("a_web_app_is_slimmed_with_its_database_running_and_verified_against_fresh_ones") {
        return;
    }
    let _serial = serial();
    let _cleanup = Cleanup;
    let web = app_image("python-pg");
    let db = app_image("postgres");
    let tag = "slim-compose-test/web.slim:test";
    let _slim_image = Image(tag.to_owned());
    let dir = TempDir::new("compose");
    let file = write_project(
        &dir,
        (&web, &db),
        ("pg_isready -h 127.0.0.1 -U postgres", 60),
    );
    let out_dir = dir.0.join("out");

    let started = Instant::now();
    let out = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(&out_dir)
        .arg("--compose-file")
        .arg(&file)
        .args(["--target-compose-svc", "web"])
        .args(["--compose-project-name", PROJECT])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("compose   db on network"), "{stderr}");
    assert!(project_leftovers().is_empty(), "{:?}", project_leftovers());

    let report = read_report(&out_dir);
    let probes = report["probes"].as_array().expect("probes");
    assert!(!probes.is_empty(), "{report}");
    assert_eq!(report["verify"]["failed"].as_array().map(Vec::len), Some(0));
    let verified = report["verify"]["probes"].as_u64().unwrap_or(0);
    assert!(verified >= 1, "{}", report["verify"]);
    let (fat, slim) = (
        report["target"]["size_bytes"].as_u64().unwrap(),
        report["slim"]["size_bytes"].as_u64().unwrap(),
    );
    assert!(slim * 2 < fat, "{fat} -> {slim}");
    eprintln!(
        "compose: {web} {fat} -> {slim} bytes ({:.1}x), {verified} probes verified, {:.1}s",
        fat as f64 / slim as f64,
        took.as_secs_f64()
    );

    // The slim image is the app still: beside a database of its own it answers from a query,
    // and without one it does not start.
    let net = format!("{PROJECT}-check");
    docker(&[
        "network",
        "create",
        "--label",
        &format!("slim.compose.project={PROJECT}"),
        &net,
    ]);
    let database = Container::run_detached(&[
        "--network",
        &net,
        "--network-alias",
        "database",
        "--label",
        &format!("slim.compose.project={PROJECT}"),
        &db,
    ]);
    let app = Container::run_detached(&[
        "--network",
        &net,
        "-e",
        "PGHOST=database",
        "-e",
        "GREETING=hi",
        "-p",
        "127.0.0.1::8000",
        "--label",
        &format!("slim.compose.project={PROJECT}"),
        // The app gives up on a database that is not up yet: it is restarted until it is.
        "--restart",
        "on-failure",
        tag,
    ]);
    let port = published_port(&app.0, 8000);
    let mut answer = String::new();
    for _ in 0..150 {
        let (status, body) = http_get_or_nothing(port);
        if status.contains("200") {
            answer = String::from_utf8_lossy(&body).into_owned();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(answer, "hi from postgres (1 row)\n");
    drop(app);
    drop(database);
    docker(&["network", "rm", &net]);
    let alone = Command::new("docker")
        .args(["run", "--rm", "-e", "PGHOST=nowhere", tag])
        .output()
        .unwrap();
    assert_eq!(
        alone.status.code(),
        Some(1),
        "without its database it exits"
    );
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("cannot reach the database"),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    assert!(project_leftovers().is_empty(), "{:?}", project_leftovers());
}

/// GET / on 127.0.0.1:`port`: the status line and body, or nothing while it does not answer.
fn http_get_or_nothing(port: u16) -> (String, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (String::new(), Vec::new());
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return (String::new(), Vec::new());
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let Some((head, _)) = text.split_once("\r\n\r\n") else {
        return (String::new(), Vec::new());
    };
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, raw[head.len() + 4..].to_vec())
}

#[test]
fn a_dependency_that_never_becomes_healthy_stops_the_build_with_exit_4() {
    if !is_root("a_dependency_that_never_becomes_healthy_stops_the_build_with_exit_4") {
        return;
    }
    let _serial = serial();
    let _cleanup = Cleanup;
    let web = app_image("python-pg");
    let db = app_image("postgres");
    let dir = TempDir::new("compose-unhealthy");
    let file = write_project(&dir, (&web, &db), ("[\"CMD-SHELL\", \"exit 1\"]", 2));
    let started = Instant::now();
    let out = slim()
        .args([
            "build",
            "--tag",
            "slim-compose-test/never:slim",
            "--output-dir",
        ])
        .arg(dir.0.join("out"))
        .arg("--compose-file")
        .arg(&file)
        .args(["--target-compose-svc", "web"])
        .args(["--compose-project-name", PROJECT])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "unhealthy dependency: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains("dependency db never became healthy"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!image_present("slim-compose-test/never:slim"));
    assert!(project_leftovers().is_empty(), "{:?}", project_leftovers());
}

/// A build of the project's `web` started in `dir`, returned once its database runs beside
/// it, with the lines slim wrote until then (the rest is read on, so slim never blocks on a
/// full pipe).
fn build_until_the_database_runs(dir: &TempDir) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead as _;
    let web = app_image("python-pg");
    let db = app_image("postgres");
    let file = write_project(
        dir,
        (&web, &db),
        ("pg_isready -h 127.0.0.1 -U postgres", 60),
    );
    let mut child = slim()
        .args(["build", "--tag", "slim-compose-test/stopped:slim"])
        .arg("--output-dir")
        .arg(dir.0.join("out"))
        .arg("--compose-file")
        .arg(&file)
        .args(["--target-compose-svc", "web"])
        .args(["--compose-project-name", PROJECT])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let up = line.contains("compose   db on network");
        seen.push(line);
        if up {
            break;
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, seen)
}

#[test]
fn a_stopped_build_removes_its_neighbours() {
    if !is_root("a_stopped_build_removes_its_neighbours") {
        return;
    }
    let _serial = serial();
    let _cleanup = Cleanup;
    let dir = TempDir::new("compose-stopped");
    let (mut child, seen) = build_until_the_database_runs(&dir);
    assert!(!project_leftovers().is_empty(), "{seen:#?}");
    // Ctrl-C, as the terminal sends it.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen:#?}");
    assert!(project_leftovers().is_empty(), "{:?}", project_leftovers());
}

#[test]
fn slim_prune_removes_the_neighbours_of_a_killed_build() {
    if !is_root("slim_prune_removes_the_neighbours_of_a_killed_build") {
        return;
    }
    let _serial = serial();
    let _cleanup = Cleanup;
    let dir = TempDir::new("compose-killed");
    let (mut child, seen) = build_until_the_database_runs(&dir);
    // SIGKILL: no clean-up at all.
    child.kill().unwrap();
    child.wait().unwrap();
    let left = project_leftovers();
    assert!(
        left.iter().any(|l| l.starts_with("network"))
            && left.iter().any(|l| l.starts_with("volume"))
            && left.iter().any(|l| l.starts_with("container")),
        "the kill left the set-up: {left:?} after {seen:#?}"
    );
    let out = slim().arg("prune").output().unwrap();
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed network slim-"), "{said}");
    assert!(said.contains("removed volume slim-"), "{said}");
    assert!(project_leftovers().is_empty(), "{:?}", project_leftovers());
}
