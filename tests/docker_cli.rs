//! At home in the docker CLI and in docker-slim users' scripts: `docker slim build` through the
//! real docker CLI (plugin installed by `slim install-plugin`, the CLI's context honoured), and
//! command lines written for docker-slim run against the engine unchanged.

mod support;

use std::{path::Path, process::Command};

use support::*;

/// The docker CLI with its own config dir (plugins, contexts), not the user's.
fn docker_cli(config: &Path) -> Command {
    let mut command = Command::new("docker");
    command
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST");
    command
}

#[test]
fn docker_slim_build_runs_through_the_docker_cli() {
    if !is_root("docker_slim_build_runs_through_the_docker_cli") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");
    let config = TempDir::new("docker-config");
    let installed = slim()
        .args(["install-plugin", "--dir"])
        .arg(config.0.join("cli-plugins"))
        .output()
        .unwrap();
    assert_success(&installed);
    assert!(config.0.join("cli-plugins/docker-slim").exists());

    // The docker CLI sees the plugin (it ran the metadata handshake).
    let info = docker_cli(&config.0)
        .args(["info", "--format", "{{json .ClientInfo.Plugins}}"])
        .output()
        .unwrap();
    let plugins = String::from_utf8_lossy(&info.stdout);
    assert!(plugins.contains("\"Name\":\"slim\""), "{plugins}");
    assert!(plugins.contains("Make container images small"), "{plugins}");

    let tag = "slim-test/python-http.slim:docker-cli";
    let _image = Image(tag.to_owned());
    let out = TempDir::new("docker-cli-out");
    let built = docker_cli(&config.0)
        .args(["slim", "build", "--http-probe-cmd-file"])
        .arg(probe_file("python-http.json"))
        .args(["--tag", tag, "--output-dir"])
        .arg(&out.0)
        .arg(&fat)
        .output()
        .unwrap();
    assert_success(&built);
    assert!(image_present(tag));
    let report = read_report(&out.0);
    assert!(report["verify"]["failed"].as_array().unwrap().is_empty());
    assert!(report["verify"]["matched"].as_u64().unwrap() > 0);

    // `docker slim --help` is slim's, named as the docker CLI runs it.
    let help = docker_cli(&config.0)
        .args(["slim", "--help"])
        .output()
        .unwrap();
    assert_success(&help);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: docker slim"));

    // The CLI's current context picks the engine: one that points nowhere is honoured (and
    // says where it looked), as is `docker --context`.
    let created = docker_cli(&config.0)
        .args([
            "context",
            "create",
            "nowhere",
            "--docker",
            "host=unix:///tmp/slim-no-engine.sock",
        ])
        .output()
        .unwrap();
    assert_success(&created);
    for args in [
        vec!["--context", "nowhere", "slim", "xray", &fat],
        vec!["slim", "xray", &fat],
    ] {
        if args.len() == 3 {
            let used = docker_cli(&config.0)
                .args(["context", "use", "nowhere"])
                .output()
                .unwrap();
            assert_success(&used);
        }
        let out = docker_cli(&config.0).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot reach the container engine at unix:///tmp/slim-no-engine.sock"),
            "{args:?}: {stderr}"
        );
    }
    assert!(slim_containers().is_empty());
}

#[test]
fn docker_slim_command_lines_run_unchanged() {
    if !is_root("docker_slim_command_lines_run_unchanged") {
        return;
    }
    let _serial = serial();
    let fat = app_image("python-http");

    // docker-slim's README: --target, inline probes, container logs, meta artifacts.
    let tag = "slim-test/python-http.slim:docker-slim";
    let _image = Image(tag.to_owned());
    let artifacts = TempDir::new("meta-artifacts");
    let out = slim()
        .args(["build", "--target", &fat, "--tag", tag])
        .args([
            "--http-probe-cmd",
            "/about.html",
            "--http-probe-cmd",
            "GET:/",
        ])
        .args([
            "--show-clogs",
            "--publish-exposed-ports",
            "--copy-meta-artifacts",
        ])
        .arg(&artifacts.0)
        .output()
        .unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  app | ") && stderr.contains("GET /about.html"),
        "no container logs: {stderr}"
    );
    let report = read_report(&artifacts.0);
    let probes: Vec<&str> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        probes.iter().any(|p| p.contains("/about.html")),
        "{probes:?}"
    );

    // `--http-probe=false` with docker-slim's numeric --continue-after.
    let tag = "slim-test/python-http.slim:no-probe";
    let _image = Image(tag.to_owned());
    let out_dir = TempDir::new("no-probe");
    let out = slim()
        .args([
            "build",
            "--http-probe=false",
            "--continue-after",
            "2",
            "--tag",
            tag,
        ])
        .arg("--output-dir")
        .arg(&out_dir.0)
        .arg(&fat)
        .output()
        .unwrap();
    assert_success(&out);
    let report = read_report(&out_dir.0);
    assert!(report["probes"].as_array().unwrap().is_empty(), "{report}");
    // No probes: verified by the slim container running as long as the original did.
    assert!(
        report["verify"]["ran_like_original_s"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "{}",
        report["verify"]
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("like the original") && summary.contains("no probes"),
        "{summary}"
    );

    // The Raspberry Pi Go post, verbatim but for the names of the images.
    let go = app_image("go-static");
    docker(&["tag", &go, "fat_go_app:latest"]);
    let _fat_go = Image("fat_go_app:latest".into());
    let _slim_go = Image("slim_go_app:latest".into());
    let dir = TempDir::new("pi-post");
    std::fs::write(
        dir.0.join("probeCmd.json"),
        r#"{"commands": [{"protocol": "http", "method": "GET", "resource": "/healthz", "port": 8080}]}"#,
    )
    .unwrap();
    let out = slim()
        .current_dir(&dir.0)
        .args([
            "build",
            "--env",
            "A=B",
            "--env",
            "C=D",
            "--http-probe-cmd-file",
            "probeCmd.json",
            "--tag",
            "slim_go_app:latest",
            "fat_go_app:latest",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(image_present("slim_go_app:latest"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verified 2/2 probes"), "{stdout}");

    // What slim does not do: one line each, and what to do instead.
    for (args, says) in [
        (
            vec!["--dockerfile", "Dockerfile"],
            "docker build -t app:fat",
        ),
        (
            vec!["--container-probe-compose-svc", "probe"],
            "--http-probe-cmd",
        ),
        (vec!["--http-probe-exit-on-failure=false"], "drop the probe"),
    ] {
        let out = slim().arg("build").args(&args).arg(&fat).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 2, "{stderr}");
        assert!(
            stderr.contains("hint:") && stderr.contains(says),
            "{stderr}"
        );
    }
    assert!(slim_containers().is_empty());
}
