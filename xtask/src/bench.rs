//! `cargo xtask bench [recorder]`: measured ratios, one run, written to `bench/results.json`
//! (sections merged by name) and `bench/results.md`.
//!
//! recorder: an open/stat-heavy workload untraced vs under `slim trace`, on every core: the
//! time ratio, the events per second the recorder delivered, and how many it lost.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::{
    fixtures, setup,
    util::{build_release, run as run_cmd, workspace_root},
};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("recorder") => {
            setup::run()?;
            let slim = build_release()?;
            write_results("recorder", recorder(&slim)?)
        }
        Some("image") => {
            setup::run()?;
            fixtures::base_image()?;
            let slim = build_release()?;
            write_results("image", image(&slim)?)
        }
        Some("apps") => {
            setup::run()?;
            fixtures::base_image()?;
            fixtures::arm64_base_image()?;
            let slim = build_release()?;
            write_results("apps", apps(&slim)?)
        }
        None => {
            setup::run()?;
            fixtures::base_image()?;
            fixtures::arm64_base_image()?;
            let slim = build_release()?;
            write_results("apps", apps(&slim)?)?;
            write_results("recorder", recorder(&slim)?)?;
            write_results("image", image(&slim)?)
        }
        Some(other) => bail!("unknown benchmark `{other}` (known: apps, recorder, image)"),
    }
}

/// Iterations per workload thread; each does 4 path syscalls.
const ITERATIONS: u64 = 200_000;
const REPEATS: usize = 3;

fn recorder(slim: &Path) -> Result<Value> {
    Ok(json!({
        "repeated_paths": recorder_workload(slim, "repeated")?,
        "unique_paths": recorder_workload(slim, "unique")?,
    }))
}

fn recorder_workload(slim: &Path, mode: &str) -> Result<Value> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let work = tempdir("slim-bench-recorder")?;
    let me = std::env::current_exe()?;
    let workload = |traced: bool, round: usize| -> Result<(f64, Option<Value>)> {
        let out_file = work.join(format!("result-{traced}-{round}.json"));
        let mut cmd = if traced {
            let mut c = Command::new(slim);
            c.args(["trace", "--json", "--"]).arg(&me);
            c
        } else {
            Command::new(&me)
        };
        cmd.arg("__workload")
            .arg(mode)
            .arg(ITERATIONS.to_string())
            .arg(threads.to_string())
            .arg(&work)
            .arg(&out_file);
        let out = cmd.output().context("running the workload")?;
        if !out.status.success() {
            bail!(
                "workload failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let result: Value = serde_json::from_slice(&fs::read(&out_file)?)?;
        let seconds = result["seconds"].as_f64().context("workload seconds")?;
        let trace = traced
            .then(|| serde_json::from_slice::<Value>(&out.stdout))
            .transpose()?;
        Ok((seconds, trace))
    };
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    for round in 0..REPEATS {
        untraced.push(workload(false, round)?.0);
        let (seconds, trace) = workload(true, round)?;
        let trace = trace.context("trace output")?;
        traced.push((seconds, trace));
        println!(
            "bench recorder {mode}: round {}: untraced {:.3}s, traced {:.3}s",
            round + 1,
            untraced[round],
            seconds
        );
    }
    let _ = fs::remove_dir_all(&work);
    untraced.sort_by(f64::total_cmp);
    traced.sort_by(|a, b| a.0.total_cmp(&b.0));
    let untraced_s = untraced[REPEATS / 2];
    let (traced_s, trace) = &traced[REPEATS / 2];
    let events = trace["recorder"]["events"].as_u64().unwrap_or(0);
    let lost: u64 = traced
        .iter()
        .map(|(_, t)| t["recorder"]["lost"].as_u64().unwrap_or(0))
        .sum();
    let syscalls = ITERATIONS * threads as u64 * 4;
    Ok(json!({
        "workload": format!("{mode}: {threads} threads x {ITERATIONS} iterations of open+read, 2 stats, open"),
        "path_syscalls": syscalls,
        "untraced_seconds": untraced_s,
        "traced_seconds": traced_s,
        "traced_over_untraced": traced_s / untraced_s,
        "events": events,
        "events_per_second": events as f64 / traced_s,
        "kernel_deduplicated": trace["recorder"]["deduped"],
        "lost_events_all_rounds": lost,
        "rounds": REPEATS,
    }))
}

/// The workload itself (`cargo xtask __workload MODE ITER THREADS DIR OUT`).
///
/// `repeated`: like an application at work, it opens, reads and stats the same 256 files
/// over and over (the kernel side folds the repeats into counters).
/// `unique`: every iteration names two paths the recorder has not seen (a missing absolute path
/// and a relative one), so every one of them is an event: the highest event rate we can make.
pub fn workload(args: &[String]) -> Result<()> {
    let [mode, iterations, threads, dir, out] = args else {
        bail!("usage: __workload repeated|unique ITERATIONS THREADS DIR OUT");
    };
    let unique = match mode.as_str() {
        "unique" => true,
        "repeated" => false,
        other => bail!("unknown workload mode {other}"),
    };
    let iterations: u64 = iterations.parse()?;
    let threads: usize = threads.parse()?;
    let dir = PathBuf::from(dir);
    let files: Vec<PathBuf> = (0..256).map(|i| dir.join(format!("file-{i}"))).collect();
    for file in &files {
        fs::write(file, "some bytes of content\n")?;
    }
    std::env::set_current_dir(&dir)?;
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                for i in 0..iterations {
                    let file = &files[i as usize % files.len()];
                    if let Ok(mut f) = fs::File::open(file) {
                        let _ = std::io::Read::read(&mut f, &mut buf);
                    }
                    let _ = fs::metadata(file);
                    if unique {
                        let _ = fs::metadata(format!("/nonexistent/slim-bench/{t}/{i}"));
                        let _ = fs::File::open(format!("missing-{t}-{i}"));
                    } else {
                        let _ = fs::metadata(&files[(i as usize * 7) % files.len()]);
                        let _ = fs::File::open(format!("file-{}", i % 256));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let seconds = started.elapsed().as_secs_f64();
    fs::write(out, json!({ "seconds": seconds }).to_string())?;
    Ok(())
}

/// One bench row: the test app directory, its probe file (empty: slim's default GET / on each
/// port), extra `slim build` flags, and the row's name.
struct BenchApp {
    app: &'static str,
    probes: &'static str,
    flags: &'static [&'static str],
    row: &'static str,
}

const SHRINK: &[&str] = &["--strip-executables", "--compress-executables"];
const STATIC_IMPORTS_OFF: &[&str] = &["--static-imports", "off"];

const fn bench_app(app: &'static str, probes: &'static str) -> BenchApp {
    BenchApp {
        app,
        probes,
        flags: &[],
        row: app,
    }
}

/// The bench apps.
const APPS: &[BenchApp] = &[
    bench_app("python-http", "python-http.json"),
    // What a second recorded start buys (calls made only on some schedules), and its cost.
    BenchApp {
        flags: &["--record-starts", "2"],
        row: "python-http --record-starts 2",
        ..bench_app("python-http", "python-http.json")
    },
    // What the static import closure costs (slim size and select time), and apps whose
    // handlers import lazily (their held-out endpoints are what it is for: see tests/unprobed.rs).
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "python-http --static-imports off",
        ..bench_app("python-http", "python-http.json")
    },
    bench_app("python-lazy", "python-lazy.json"),
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "python-lazy --static-imports off",
        ..bench_app("python-lazy", "python-lazy.json")
    },
    bench_app("ruby-lazy", "ruby-lazy.json"),
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "ruby-lazy --static-imports off",
        ..bench_app("ruby-lazy", "ruby-lazy.json")
    },
    bench_app("node-lazy", "node-lazy.json"),
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "node-lazy --static-imports off",
        ..bench_app("node-lazy", "node-lazy.json")
    },
    bench_app("perl-lazy", "perl-lazy.json"),
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "perl-lazy --static-imports off",
        ..bench_app("perl-lazy", "perl-lazy.json")
    },
    bench_app("php-lazy", "php-lazy.json"),
    BenchApp {
        flags: STATIC_IMPORTS_OFF,
        row: "php-lazy --static-imports off",
        ..bench_app("php-lazy", "php-lazy.json")
    },
    // An init wrapper and idle threads blocked in poll/epoll_wait/sigtimedwait.
    bench_app("init-poll", ""),
    bench_app("nginx", "nginx.json"),
    bench_app("python-unix", "python-unix.json"),
    bench_app("perl-echo", "echo.json"),
    // The python app on arm64, run through qemu-user (slower, not comparable in time).
    bench_app("python-http-arm64", "python-http.json"),
    // Static executables in fat Debian images: a Go server (CGO off) and busybox httpd, as
    // they are and with their executables stripped and packed.
    bench_app("go-static", ""),
    BenchApp {
        flags: SHRINK,
        row: "go-static +strip +upx",
        ..bench_app("go-static", "")
    },
    bench_app("busybox-static", ""),
    BenchApp {
        flags: SHRINK,
        row: "busybox-static +strip +upx",
        ..bench_app("busybox-static", "")
    },
    // The largest image: compiler toolchains left in a one-stage build (peak RSS on big trees).
    bench_app("toolchain", ""),
];

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// Runs `docker ARGS PATH` and returns how long it took.
fn docker_seconds(args: &[&str], path: &Path) -> Result<f64> {
    let started = Instant::now();
    run_cmd(Command::new("docker").args(args).arg(path))?;
    Ok(secs(started))
}

/// `slim build` of each bench app: sizes against the opened-bytes floor, time per phase,
/// verification, lost events; the image I/O part against `docker save` + `docker load`; and
/// nginx throughput under wrk with the recorder attached vs not.
fn apps(slim: &Path) -> Result<Value> {
    let work = tempdir("slim-bench-apps")?;
    let root = workspace_root();
    let mut rows = Vec::new();
    // The previous run's build time of each app, shown beside this run's.
    let previous: Value = fs::read(root.join("bench/results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let previous_build = |row: &str| -> Value {
        previous["apps"]["apps"]
            .as_array()
            .and_then(|apps| apps.iter().find(|a| a["app"] == row))
            .map(|a| a["build_seconds"].clone())
            .unwrap_or(Value::Null)
    };
    for BenchApp {
        app,
        probes,
        flags,
        row: row_name,
    } in APPS
    {
        let image = format!("slim-bench/{app}:fat");
        let tag = format!("slim-bench/{app}.slim:1");
        run_cmd(
            Command::new("docker")
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "-q", "-t", &image])
                .arg(root.join("tests/apps").join(app)),
        )?;
        let out_dir = work.join(row_name.replace(' ', "_"));
        // GNU time measures the build's peak RSS.
        let rss_file = work.join(format!("{app}.rss"));
        let mut build = Command::new("/usr/bin/time");
        build
            .args(["-f", "%M", "-o"])
            .arg(&rss_file)
            .arg(slim)
            .args(["build", "--quiet", "--tag", &tag, "--output-dir"])
            .arg(&out_dir)
            .args(*flags);
        if !probes.is_empty() {
            build
                .arg("--http-probe-cmd-file")
                .arg(root.join("probes").join(probes));
        }
        let started = Instant::now();
        run_cmd(build.arg(&image))?;
        let build_seconds = secs(started);
        let peak_rss_mb = fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.trim().lines().last()?.trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0);
        let report: Value = serde_json::from_slice(&fs::read(out_dir.join("report.json"))?)?;
        // The engine's own cost for the image I/O slim does: save the fat image, load the slim one.
        let slim_tar = work.join(format!("{app}-slim.tar"));
        let save = docker_seconds(&["save", &image, "-o"], &work.join("fat.tar"))?;
        docker_seconds(&["save", &tag, "-o"], &slim_tar)?;
        run_cmd(Command::new("docker").args(["rmi", &tag]))?;
        let load = docker_seconds(&["load", "-q", "-i"], &slim_tar)?;
        let _ = fs::remove_file(work.join("fat.tar"));
        // Reading the fat image alone (in a build it overlaps the app's run): `slim xray` reads
        // and flattens it the same way, from the engine's storage (the default) and through
        // `docker save`.
        let read_alone = |via: &str| -> Result<f64> {
            let started = Instant::now();
            run_cmd(
                Command::new(slim)
                    .args(["xray", "--json", "--read-via", via, &image])
                    .stdout(std::process::Stdio::null()),
            )?;
            Ok(secs(started))
        };
        let read_alone_via_save = read_alone("save")?;
        let read_alone = read_alone("auto")?;
        let t = &report["timings_ms"];
        let ms = |k: &str| t[k].as_f64().unwrap_or(0.0) / 1000.0;
        let non_probe = read_alone + ms("select") + ms("write_image");
        let non_probe_via_save = read_alone_via_save + ms("select") + ms("write_image");
        let added_wall =
            (ms("read_image") - ms("record_and_probe")).max(0.0) + ms("select") + ms("write_image");
        let slim_bytes = report["slim"]["size_bytes"].as_u64().unwrap_or(0);
        let against_docker = profile_diff(slim, &out_dir.join("seccomp.json"));
        let row = json!({
            "app": row_name,
            "shrink": report["shrink"],
            "fat_bytes": report["target"]["size_bytes"],
            "slim_bytes": slim_bytes,
            "ratio": report["ratio"],
            "opened_bytes": report["floor"]["opened_bytes"],
            "touched_bytes": report["floor"]["touched_bytes"],
            "slim_over_opened": report["floor"]["slim_over_opened"],
            "slim_over_touched": slim_bytes as f64 / report["floor"]["touched_bytes"].as_f64().unwrap_or(1.0).max(1.0),
            "verified": format!("{}/{}", report["verify"]["matched"], report["verify"]["probes"]),
            "lost_events": report["recorder"]["lost"],
            "recorded_starts": report["recorder"]["starts"],
            "stop_recorded": report["recorder"]["stop_recorded"],
            "verify_starts": report["verify"]["starts"],
            "packages": report["packages"]["counts"],
            "package_db": report["packages"]["database"],
            "build_seconds": build_seconds,
            "previous_build_seconds": previous_build(row_name),
            "peak_rss_mb": peak_rss_mb,
            "phase_seconds": {
                "inspect": ms("inspect"),
                "read_image": ms("read_image"),
                "record_and_probe": ms("record_and_probe"),
                "probe": ms("probe"),
                "start_until_ready": ms("start_until_ready"),
                "select": ms("select"),
                "packages": ms("packages"),
                "write_image": ms("write_image"),
                "profiles": ms("profiles"),
                "verify": ms("verify"),
                // What the named phases leave of the wall time: connecting, the report,
                // publishing the files, tagging, clean-up.
                "rest": (build_seconds
                    - ["inspect", "record_and_probe", "select", "packages", "write_image", "profiles", "verify"]
                        .iter()
                        .map(|k| ms(k))
                        .sum::<f64>())
                .max(0.0),
            },
            "read_from": report["target"]["read_from"],
            "profiles": {
                "seccomp_allowed": report["profiles"]["seccomp"]["allowed"],
                "from_app": report["profiles"]["seccomp"]["from_app"],
                "from_runtime": report["profiles"]["seccomp"]["from_runtime"],
                "fixed_extras": report["profiles"]["seccomp"]["fixed_extras"],
                "enosys": report["profiles"]["seccomp"]["enosys"].as_array().map(|a| a.len()),
                "seccomp_skipped": report["profiles"]["seccomp_skipped"],
                "apparmor_rules": report["profiles"]["apparmor"]["rules"],
                "apparmor_parse_check": report["profiles"]["apparmor"]["parse_check"],
                "verified_under": report["profiles"]["verified_under"],
                "failed_only_denied": report["profiles"]["seccomp"]["answered_failed_only"]
                    .as_object()
                    .map(|o| o.len())
                    .or_else(|| report["profiles"]["seccomp"]["answered_failed_only"]
                        .as_array()
                        .map(|a| a.len())),
                "argument_rules": report["profiles"]["seccomp"]["argument_rules"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>()),
                "docker_denied_recorded": report["profiles"]["seccomp"]["docker_denied_recorded"],
                "against_docker_default": against_docker,
            },
            "read_image_alone_seconds": read_alone,
            "read_image_via_save_alone_seconds": read_alone_via_save,
            "non_probe_seconds": non_probe,
            "non_probe_via_save_over_docker": non_probe_via_save / (save + load),
            "non_probe_wall_seconds_added_to_the_run": added_wall,
            "docker_save_plus_load_seconds": save + load,
            "non_probe_over_docker": non_probe / (save + load),
        });
        println!("bench apps: {app}: {}", row);
        rows.push(row);
        let _ = Command::new("docker").args(["rmi", &tag]).output();
    }
    let throughput = nginx_throughput(slim, "slim-bench/nginx:fat")?;
    let _ = fs::remove_dir_all(&work);
    Ok(json!({ "apps": rows, "nginx_throughput": throughput }))
}

/// wrk against nginx: requests/s with no recorder, then with `slim trace --container`
/// attached to it. Traffic goes to the container's own address (a container we started), so
/// the host's userland port proxy does not double the syscalls being measured.
fn nginx_throughput(slim: &Path, image: &str) -> Result<Value> {
    let id = crate::util::output(Command::new("docker").args(["run", "-d", "--rm", image]))
        .context("start nginx")?
        .trim()
        .to_owned();
    let result = (|| -> Result<Value> {
        let ip = crate::util::output(Command::new("docker").args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &id,
        ]))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .context("nginx address")?;
        let url = format!("http://{ip}/");
        std::thread::sleep(std::time::Duration::from_secs(1));
        let wrk = |label: &str| -> Result<f64> {
            let out = crate::util::output(Command::new("wrk").args(["-t2", "-c32", "-d5s", &url]))
                .context("wrk")?;
            let rps = out
                .lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse().ok())
                .context("wrk output")?;
            println!("bench apps: nginx {label}: {rps:.0} requests/s");
            Ok(rps)
        };
        wrk("warm-up")?;
        // Off and on alternate, so drift on a shared machine hits both alike; medians of 3.
        let mut offs = Vec::new();
        let mut ons = Vec::new();
        let mut recording = Value::Null;
        for _ in 0..3 {
            offs.push(wrk("recorder off")?);
            let mut trace = Command::new(slim)
                .args(["trace", "--json", "--container", &id])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()?;
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let on = wrk("recorder on");
            // SAFETY: signalling our own child.
            unsafe { libc::kill(trace.id() as i32, libc::SIGINT) };
            let mut stdout = String::new();
            std::io::Read::read_to_string(
                trace.stdout.as_mut().context("trace stdout")?,
                &mut stdout,
            )?;
            trace.wait()?;
            ons.push(on?);
            recording = serde_json::from_str(&stdout).unwrap_or_default();
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (off, on) = (median(&mut offs), median(&mut ons));
        Ok(json!({
            "requests_per_second_off": off,
            "requests_per_second_on": on,
            "on_over_off": on / off,
            "recorder_events": recording["recorder"]["events"],
            "recorder_lost": recording["recorder"]["lost"],
            "wrk": "-t2 -c32 -d5s to the container address; off and on alternated 3 times, medians",
        }))
    })();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    result
}

/// A ~1 GB image in three layers (the Debian base, then two layers of incompressible files).
const BIG_IMAGE: &str = "slim-bench/fat-1g:1";
const BIG_DOCKERFILE: &str = "FROM slim-test/debian:bookworm
RUN mkdir -p /opt/a && for i in $(seq 1 40); do head -c 10M /dev/urandom > /opt/a/blob$i; done
RUN mkdir -p /opt/b && for i in $(seq 1 3000); do head -c 100K /dev/urandom > /opt/b/f$i; done && head -c 100M /dev/urandom > /opt/b/big
";

/// Full round trip of a ~1 GB image (`slim squash --tag`: save, index, flatten, write, load)
/// against the engine's own `docker save` of it plus `docker load` of the squashed result.
fn image(slim: &Path) -> Result<Value> {
    if !fixtures::image_exists(BIG_IMAGE) {
        println!("bench image: building {BIG_IMAGE} (once)");
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", BIG_IMAGE, "-"])
            .env("DOCKER_BUILDKIT", "0")
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(
            &mut child.stdin.take().context("stdin")?,
            BIG_DOCKERFILE.as_bytes(),
        )?;
        if !child.wait()?.success() {
            bail!("docker build of {BIG_IMAGE} failed");
        }
    }
    let work = tempdir("slim-bench-image")?;
    let squashed = "slim-bench/squashed-1g:1";
    let fat_tar = work.join("fat.tar");
    let slim_tar = work.join("squashed.tar");
    // The squashed image's archive, for the engine's own load (not timed).
    let _ = Command::new("docker").args(["rmi", squashed]).output();
    run_cmd(
        Command::new(slim)
            .args(["squash", BIG_IMAGE, "--output"])
            .arg(format!("docker-archive:{}", slim_tar.display()))
            .args(["--tag", squashed]),
    )?;
    let mut rounds = Vec::new();
    for round in 0..2 {
        let _ = Command::new("docker").args(["rmi", squashed]).output();
        let save = docker_seconds(&["save", BIG_IMAGE, "-o"], &fat_tar)?;
        let load = docker_seconds(&["load", "-q", "-i"], &slim_tar)?;
        let _ = fs::remove_file(&fat_tar);
        let _ = Command::new("docker").args(["rmi", squashed]).output();
        // GNU time reports slim's own peak RSS (a child forked from this process would inherit
        // its high-water mark at exec, and this process may have parsed big JSON by now).
        let rss_file = work.join("rss");
        let started = Instant::now();
        run_cmd(
            Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&rss_file)
                .arg(slim)
                .args(["squash", BIG_IMAGE, "--tag", squashed])
                .stdout(std::process::Stdio::null()),
        )?;
        let ours = started.elapsed().as_secs_f64();
        let max_rss_kb: u64 = fs::read_to_string(&rss_file)?
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .context("GNU time output")?;
        println!(
            "bench image: round {}: docker save {save:.2}s + docker load {load:.2}s vs slim {ours:.2}s, max RSS {} MB",
            round + 1,
            max_rss_kb / 1024
        );
        rounds.push((save, load, ours, max_rss_kb));
    }
    let _ = Command::new("docker").args(["rmi", squashed]).output();
    let _ = fs::remove_dir_all(&work);
    rounds.sort_by(|a, b| a.2.total_cmp(&b.2));
    let (save, load, ours, _) = rounds[0];
    let max_rss_kb = rounds.iter().map(|r| r.3).max().unwrap_or(0);
    let image_bytes = crate::util::output(Command::new("docker").args([
        "image",
        "inspect",
        "-f",
        "{{.Size}}",
        BIG_IMAGE,
    ]))
    .and_then(|s| s.trim().parse::<u64>().ok())
    .unwrap_or(0);
    Ok(json!({
        "image": BIG_IMAGE,
        "image_bytes": image_bytes,
        "docker_save_seconds": save,
        "docker_load_seconds": load,
        "slim_round_trip_seconds": ours,
        "slim_over_docker": ours / (save + load),
        "slim_max_rss_mb": max_rss_kb as f64 / 1024.0,
        "rounds": rounds.len(),
    }))
}

fn tempdir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Merges `section` into bench/results.json and rewrites bench/results.md from it.
pub fn write_results(section: &str, value: Value) -> Result<()> {
    let dir = workspace_root().join("bench");
    fs::create_dir_all(&dir)?;
    let json_path = dir.join("results.json");
    let mut all: Value = fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    all[section] = value;
    fs::write(&json_path, serde_json::to_string_pretty(&all)? + "\n")?;
    let mut md = String::from("# slim benchmarks\n\nWritten by `cargo xtask bench`.\n");
    if let Some(sections) = all.as_object() {
        for (name, value) in sections {
            md.push_str(&format!("\n## {name}\n"));
            if let Some(apps) = value["apps"].as_array() {
                md.push_str(&apps_tables(apps));
            }
            md.push_str("\n| metric | value |\n|---|---|\n");
            let mut rows = Vec::new();
            flatten("", value, &mut rows);
            for (key, text) in rows.into_iter().filter(|(key, _)| key != "apps") {
                md.push_str(&format!("| {key} | {text} |\n"));
            }
        }
    }
    fs::write(dir.join("results.md"), md)?;
    println!("bench: wrote {} and results.md", json_path.display());
    println!("{}", serde_json::to_string_pretty(&all[section])?);
    Ok(())
}

/// The per-app tables: sizes against the floor, then build time by phase against the engine.
fn apps_tables(apps: &[Value]) -> String {
    let mb = |v: &Value| format!("{:.1} MB", v.as_f64().unwrap_or(0.0) / 1e6);
    let f = |v: &Value| format!("{:.2}", v.as_f64().unwrap_or(0.0));
    let mut md = String::from(
        "\n| app | fat | slim | ratio | opened floor | slim/opened | slim/(opened+looked-up) | verified | lost events | packages kept (partly) / removed |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in apps {
        md.push_str(&format!(
            "| {} | {} | {} | {}x | {} | {} | {} | {} | {} | {} |\n",
            a["app"].as_str().unwrap_or(""),
            mb(&a["fat_bytes"]),
            mb(&a["slim_bytes"]),
            f(&a["ratio"]),
            mb(&a["opened_bytes"]),
            f(&a["slim_over_opened"]),
            f(&a["slim_over_touched"]),
            a["verified"].as_str().unwrap_or(""),
            a["lost_events"],
            match a["packages"].is_null() {
                true => "no database".to_owned(),
                false => format!(
                    "{} ({}) / {}",
                    a["packages"]["kept"], a["packages"]["partly"], a["packages"]["removed"]
                ),
            },
        ));
    }
    md.push_str("\nSeconds. Phases of one build (reading the fat image overlaps the recorded run); then the non-probe part alone (read + select + write and load) against `docker save` of the fat image plus `docker load` of the slim one.\n\n| app | build | read | record+probe | select | write+load | verify | read alone (storage) | read alone (save) | non-probe | docker save+load | non-probe/docker | same via save/docker |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in apps {
        let p = &a["phase_seconds"];
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | **{}** | {} |\n",
            a["app"].as_str().unwrap_or(""),
            f(&a["build_seconds"]),
            f(&p["read_image"]),
            f(&p["record_and_probe"]),
            f(&p["select"]),
            f(&p["write_image"]),
            f(&p["verify"]),
            f(&a["read_image_alone_seconds"]),
            f(&a["read_image_via_save_alone_seconds"]),
            f(&a["non_probe_seconds"]),
            f(&a["docker_save_plus_load_seconds"]),
            f(&a["non_probe_over_docker"]),
            f(&a["non_probe_via_save_over_docker"]),
        ));
    }
    md.push_str("\nBuild time by phase (seconds; the named phases and the rest sum to the build's wall time) and the build's peak RSS.\n\n| app | build | previous | inspect | record+probe | select | packages | write+load | profiles | verify | rest | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in apps {
        let p = &a["phase_seconds"];
        let opt = |v: &Value| match v.as_f64() {
            Some(x) => format!("{x:.2}"),
            None => "-".to_owned(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            a["app"].as_str().unwrap_or(""),
            f(&a["build_seconds"]),
            opt(&a["previous_build_seconds"]),
            f(&p["inspect"]),
            f(&p["record_and_probe"]),
            f(&p["select"]),
            f(&p["packages"]),
            f(&p["write_image"]),
            f(&p["profiles"]),
            f(&p["verify"]),
            f(&p["rest"]),
            match a["peak_rss_mb"].as_f64() {
                Some(x) => format!("{x:.0}"),
                None => "-".to_owned(),
            },
        ));
    }
    md.push_str("\nSecurity profiles (Docker's default seccomp profile allows about 350 syscalls). `slim profile diff` against Docker's default: allowed here and refused there (must be 0) / taken away.\n\n| app | seccomp allowed | from the app | runtime | fixed | ENOSYS | denied, only failed | argument rules | vs Docker's default | AppArmor file / socket / state / network / capability rules | parse check | verified under |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for a in apps {
        let p = &a["profiles"];
        let r = &p["apparmor_rules"];
        let under: Vec<&str> = p["verified_under"]
            .as_array()
            .map(|u| u.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let allowed = if p["seccomp_allowed"].is_null() {
            "none (emulated: the calls seen are qemu's)".to_owned()
        } else {
            p["seccomp_allowed"].to_string()
        };
        let argument_rules: Vec<&str> = p["argument_rules"]
            .as_array()
            .map(|u| u.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let d = &p["against_docker_default"];
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} / {} / {} / {} | {} | {} |\n",
            a["app"].as_str().unwrap_or(""),
            allowed,
            p["from_app"],
            p["from_runtime"],
            p["fixed_extras"],
            p["enosys"],
            p["failed_only_denied"],
            if argument_rules.is_empty() {
                "-".to_owned()
            } else {
                argument_rules.join(", ")
            },
            d["weaker"],
            d["removed"],
            r["file"],
            r["socket"],
            r["state"],
            r["network"],
            r["capability"],
            p["apparmor_parse_check"].as_str().unwrap_or(""),
            if under.is_empty() {
                "-".to_owned()
            } else {
                under.join(", ")
            },
        ));
    }
    md
}

/// `a.b.c -> value text` rows of a JSON tree.
fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, v, rows);
            }
        }
        Value::Number(n) if n.is_f64() => rows.push((
            prefix.to_owned(),
            format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        )),
        Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

/// `slim profile diff PROFILE --json` against Docker's default: how many calls the profile
/// allows that Docker's default refuses (`weaker`), and how many it takes away.
fn profile_diff(slim: &Path, profile: &Path) -> Value {
    let Ok(output) = Command::new(slim)
        .args(["profile", "diff", "--json"])
        .arg(profile)
        .output()
    else {
        return Value::Null;
    };
    let Ok(diff) = serde_json::from_slice::<Value>(&output.stdout) else {
        return Value::Null;
    };
    let removed = diff["differences"]
        .as_array()
        .map(|d| d.iter().filter(|x| x["change"] == "removed").count());
    json!({ "weaker": diff["weaker"], "removed": removed })
}
