//! Registry in, registry out: a real registry (Debian's docker-registry) on 127.0.0.1, with
//! and without basic auth. The fat image is pushed there and removed from the engine under
//! that name; `slim build --push` pulls it, slims and verifies it, and pushes the slim image;
//! skopeo (an independent client) reads what was pushed, and the engine pulls it back. A
//! registry that is down, lacks the image or refuses the login is one line with a hint.

mod support;

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use support::*;

/// A registry serving on 127.0.0.1 from a temp dir; stopped and removed when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    /// Starts one; with `login`, it asks for that user and password (htpasswd, bcrypt).
    fn start(login: Option<(&str, &str)>) -> Self {
        let dir = TempDir::new("registry");
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, password)) = login {
            let htpasswd = dir.0.join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbc", htpasswd.to_str().unwrap(), user, password])
                .output()
                .expect("htpasswd (apache2-utils) runs");
            assert!(out.status.success(), "{out:?}");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: slim-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config = dir.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's package) runs");
        let registry = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `docker --config CONFIG ARGS`, asserting success.
fn docker_with(config: &Path, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Pushes the local `image` to `reference` and removes that name from the engine again.
fn put_in_registry(config: &Path, image: &str, reference: &str) {
    docker(&["tag", image, reference]);
    docker_with(config, &["push", "-q", reference]);
    docker(&["rmi", reference]);
}

/// `slim build ARGS` with the docker CLI config `config`.
fn slim_build(config: &Path, args: &[&str]) -> Output {
    slim()
        .arg("build")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `error: ` line and the hint of a failed run.
fn error_and_hint(out: &Output) -> (String, String) {
    let text = stderr(out);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    (line("error: "), line("hint: "))
}

#[test]
fn pulled_from_a_registry_slimmed_verified_and_pushed() {
    if !is_root("pulled_from_a_registry_slimmed_verified_and_pushed") {
        return;
    }
    let _serial = serial();
    let app = app_image("python-http");
    let registry = Registry::start(None);
    let host = registry.host();
    let config = TempDir::new("docker-config");
    let fat = format!("{host}/python-http:fat");
    let tag = format!("{host}/python-http:slim");
    let _fat = Image(fat.clone());
    let _slim = Image(tag.clone());
    put_in_registry(&config.0, &app, &fat);
    assert!(!image_present(&fat));

    let out_dir = TempDir::new("registry-out");
    let probes = probe_file("python-http.json");
    let out = slim_build(
        &config.0,
        &[
            "--output-dir",
            out_dir.0.to_str().unwrap(),
            "--http-probe-cmd-file",
            probes.to_str().unwrap(),
            "--tag",
            &tag,
            "--push",
            "--format",
            "json",
            &fat,
        ],
    );
    assert_success(&out);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("pull      {fat} from {host}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("push      {tag} to {host}")),
        "{text}"
    );
    // `--format json`: one object on stdout, for scripts.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["pushed_to"], host.as_str(), "{summary}");
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(summary["slim"]["image"], tag.as_str());
    let files = summary["files"].as_array().unwrap();
    for name in [
        "report.json",
        "seccomp.json",
        "apparmor.profile",
        "files.txt",
    ] {
        assert!(
            files.iter().any(|f| f.as_str().unwrap().ends_with(name)),
            "{name} not listed: {summary}"
        );
    }
    let report = read_report(&out_dir.0);
    assert!(report["verify"]["failed"].as_array().unwrap().is_empty());
    let slim_id = report["slim"]["id"].as_str().unwrap().to_owned();
    assert_eq!(summary["slim"]["id"], slim_id.as_str());
    assert!(summary["ratio"].as_f64().unwrap() > 2.0, "{summary}");

    // An independent client reads the pushed image: one layer, amd64.
    let inspected = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .output()
        .expect("skopeo runs");
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(
        inspected["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspected}"
    );
    assert_eq!(inspected["Architecture"], "amd64");

    // The engine pulls it back: the same image.
    docker(&["rmi", &tag]);
    docker_with(&config.0, &["pull", "-q", &tag]);
    assert_eq!(image_id(&tag), slim_id);
    eprintln!("pulled {fat}, pushed {tag} ({slim_id}), read back by skopeo and docker pull");
}

#[test]
fn a_registry_down_missing_the_image_or_refusing_the_login() {
    if !is_root("a_registry_down_missing_the_image_or_refusing_the_login") {
        return;
    }
    let _serial = serial();
    let app = app_image("python-http");
    let empty_config = TempDir::new("docker-config-empty");

    // Down: nothing listens there.
    let down = format!("127.0.0.1:{}/app:1", free_port());
    let out = slim_build(&empty_config.0, &["--pull=always", &down]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(error.contains(&format!("cannot pull {down}")), "{error}");
    assert!(hint.contains("is the registry up?"), "{hint}");
    assert!(!stderr(&out).contains("panicked"));

    // Up, without the image: the name is the user's to fix.
    let registry = Registry::start(Some(("slim", "s3cret")));
    let host = registry.host();
    let absent = format!("{host}/nothing:here");
    let login = TempDir::new("docker-config-login");
    docker_with(&login.0, &["login", "-u", "slim", "-p", "s3cret", &host]);
    let out = slim_build(&login.0, &[&absent]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let (error, _) = error_and_hint(&out);
    assert!(error.contains("is not in its registry"), "{error}");

    // The image there, behind a login slim does not have: refused, with what to run.
    let fat = format!("{host}/python-http:fat");
    let _fat = Image(fat.clone());
    put_in_registry(&login.0, &app, &fat);
    let out = slim_build(&empty_config.0, &[&fat]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(
        error.contains(&format!("{host} refused the pull")),
        "{error}"
    );
    assert!(hint.contains(&format!("docker login {host}")), "{hint}");
    assert!(!image_present(&fat));

    // With the login `docker login` wrote, the same build pulls and pushes.
    let tag = format!("{host}/python-http:slim");
    let _slim = Image(tag.clone());
    let out_dir = TempDir::new("registry-auth-out");
    let out = slim_build(
        &login.0,
        &[
            "--output-dir",
            out_dir.0.to_str().unwrap(),
            "--tag",
            &tag,
            "--push",
            &fat,
        ],
    );
    assert_success(&out);
    docker(&["rmi", &tag]);
    docker_with(&login.0, &["pull", "-q", &tag]);
    eprintln!(
        "down: exit 5; absent: exit 2; no login: exit 5 with `docker login`; with it: pushed"
    );
}
