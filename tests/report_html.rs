//! report.html end to end: a real `slim build` of the python app writes it next to
//! report.json, `slim report` renders the same page again, and headless Chromium with the
//! network off loads it from file://: the headline shows report.json's figures, the kept-path
//! filter (given as `#filter=...`, as the filter box sets it) narrows the list, no script
//! fails and nothing outside the page is loaded. Saves a screenshot and prints its path.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use support::*;

/// Chromium, or why the test cannot run.
fn chromium() -> Result<PathBuf, String> {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .map_err(|e| e.to_string())?;
        if found.status.success() {
            return Ok(PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()));
        }
    }
    Err("chromium is not installed (`cargo xtask setup` installs it)".into())
}

/// Headless Chromium with no network (every connection goes to a closed local port and no
/// name resolves) and a fresh profile in `profile`; `action` is `--dump-dom` or
/// `--screenshot=PATH`. Returns (stdout, stderr).
fn chromium_run(chromium: &Path, profile: &Path, action: &str, url: &str) -> (String, String) {
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(action)
        .arg(url)
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium {action} failed:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The value of attribute `name` in the first tag holding `marker` (`id="ratio"`).
fn attribute<'a>(dom: &'a str, marker: &str, name: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page"));
    let start = dom[..at].rfind('<').unwrap();
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    let key = format!("{name}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    &tag[from..from + tag[from..].find('"').unwrap()]
}

/// The text of the element whose opening tag holds `marker`.
fn inner_text<'a>(dom: &'a str, marker: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page"));
    let from = at + dom[at..].find('>').unwrap() + 1;
    &dom[from..from + dom[from..].find('<').unwrap()]
}

/// The kept-path rows: (visible, their data-q).
fn kept_rows(dom: &str) -> Vec<(bool, &str)> {
    dom.match_indices("<tr class=\"kept\"")
        .map(|(at, _)| {
            let tag = &dom[at..at + dom[at..].find('>').unwrap()];
            let q = tag.split("data-q=\"").nth(1).unwrap_or("");
            let q = &q[..q.find('"').unwrap_or(q.len())];
            (!tag.ends_with(" hidden=\"\""), q)
        })
        .collect()
}

/// What the page says of itself: no script error, no refused load, the script ran.
fn check_clean(dom: &str, stderr: &str, url: &str) {
    let start = dom.find("<html").expect("an html element");
    let html = &dom[start..start + dom[start..].find('>').unwrap()];
    assert!(
        !html.contains("data-js-error"),
        "{url}: a script failed or a load was refused: {html}"
    );
    assert!(
        html.contains("data-ready=\"1\""),
        "{url}: the script did not run: {html}"
    );
    // The page logs nothing: any console line is an error or a refused load.
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{url}: console: {console:#?}");
}

#[test]
fn report_html_shows_the_build_and_filters_the_kept_paths() {
    let test = "report_html_shows_the_build_and_filters_the_kept_paths";
    if !is_root(test) {
        return;
    }
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            return;
        }
    };
    let _serial = serial();
    let image = app_image("python-http");
    let out_dir = TempDir::new("report-html");
    let tag = "slim-report-test/python-http.slim:html";
    let _slim_image = Image(tag.to_owned());
    let probes = probe_file("python-http.json");
    let started = Instant::now();
    let built = slim()
        .args(["build", "--tag", tag, "--output-dir"])
        .arg(&out_dir.0)
        .arg("--http-probe-cmd-file")
        .arg(&probes)
        .arg(&image)
        .output()
        .unwrap();
    assert_success(&built);
    eprintln!("slim build: {:.1} s", started.elapsed().as_secs_f64());
    assert!(slim_containers().is_empty(), "containers left behind");
    let report = read_report(&out_dir.0);
    let page = out_dir.0.join("report.html");
    let files = std::fs::read_to_string(out_dir.0.join("files.txt")).unwrap();
    let kept_paths = files.lines().filter(|l| !l.starts_with('#')).count();

    // `slim report` renders the same page from report.json and files.txt.
    let again = out_dir.0.join("again.html");
    let rendered = slim()
        .arg("report")
        .arg(out_dir.0.join("report.json"))
        .arg("--out")
        .arg(&again)
        .arg("--open")
        .output()
        .unwrap();
    assert_success(&rendered);
    assert_eq!(
        String::from_utf8_lossy(&rendered.stdout).trim(),
        again.display().to_string()
    );
    assert_eq!(
        std::fs::read(&page).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // Bad input: one line and a hint, exit 2.
    let not_report = out_dir.0.join("files.txt");
    let refused = slim().arg("report").arg(&not_report).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("is not JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    let profile = TempDir::new("report-html-chromium");
    let url = format!("file://{}", page.display());
    let started = Instant::now();
    let (dom, log) = chromium_run(&chromium, &profile.0, "--dump-dom", &url);
    eprintln!(
        "chromium --dump-dom: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    check_clean(&dom, &log, &url);

    // The headline is report.json's.
    assert_eq!(
        inner_text(&dom, "id=\"fat-image\""),
        report["target"]["image"]
    );
    assert_eq!(inner_text(&dom, "id=\"slim-image\""), tag);
    for (id, side) in [("fat-size", "target"), ("slim-size", "slim")] {
        assert_eq!(
            attribute(&dom, &format!("id=\"{id}\""), "data-bytes"),
            report[side]["size_bytes"].to_string()
        );
    }
    let ratio: f64 = attribute(&dom, "id=\"ratio\"", "data-ratio")
        .parse()
        .unwrap();
    assert_eq!(ratio, report["ratio"].as_f64().unwrap());
    assert_eq!(
        inner_text(&dom, "id=\"ratio\""),
        format!("{:.1}x", report["ratio"].as_f64().unwrap())
    );
    let verify = &report["verify"];
    assert_eq!(
        attribute(&dom, "id=\"verified\"", "data-matched"),
        verify["matched"].to_string()
    );
    assert_eq!(
        attribute(&dom, "id=\"verified\"", "data-probes"),
        verify["probes"].to_string()
    );
    assert_eq!(
        attribute(&dom, "id=\"verified\"", "data-under"),
        "seccomp.json"
    );
    assert_eq!(
        inner_text(&dom, "id=\"verified\""),
        format!(
            "verified {}/{} probes under seccomp.json",
            verify["matched"], verify["probes"]
        )
    );
    assert_eq!(
        attribute(&dom, "id=\"total-time\"", "data-ms"),
        report["timings_ms"]["total"].to_string()
    );

    // The treemap, the probes, the profiles, the timings.
    let drawn = dom.matches("class=\"tm-dir\"").count();
    let dirs = report["by_dir"].as_object().unwrap();
    assert!(
        drawn >= 10 && drawn <= dirs.len(),
        "{drawn} of {}",
        dirs.len()
    );
    assert!(dom.contains("data-dir=\"/usr/lib/python3.11\""));
    assert!(
        dom.contains("libpython3.11"),
        "package names in the treemap"
    );
    let probes = report["probes"].as_array().unwrap();
    assert_eq!(
        dom.matches("<tr class=\"probe match\">").count(),
        probes.len()
    );
    assert_eq!(dom.matches("probe mismatch").count(), 0);
    let seccomp = &report["profiles"]["seccomp"];
    assert_eq!(
        attribute(&dom, "id=\"seccomp-allowed\"", "data-n"),
        seccomp["allowed"].to_string()
    );
    let docker: u64 = attribute(&dom, "id=\"docker-allowed\"", "data-n")
        .parse()
        .unwrap();
    assert!(docker > seccomp["allowed"].as_u64().unwrap());
    assert_eq!(
        dom.matches("class=\"phase\"").count(),
        report["timings_ms"].as_object().unwrap().len()
    );
    assert!(
        dom.contains("computed import(s) not followed"),
        "the warnings"
    );

    // Every kept path is listed; the filter narrows them to the matching ones.
    let rows = kept_rows(&dom);
    assert_eq!(rows.len(), kept_paths);
    assert!(rows.iter().all(|(visible, _)| *visible));
    assert_eq!(
        inner_text(&dom, "id=\"kept-shown\""),
        kept_paths.to_string()
    );
    let filtered_url = format!("{url}#filter=python3.11");
    let (filtered, log) = chromium_run(&chromium, &profile.0, "--dump-dom", &filtered_url);
    check_clean(&filtered, &log, &filtered_url);
    let rows = kept_rows(&filtered);
    let visible: Vec<&str> = rows.iter().filter(|r| r.0).map(|r| r.1).collect();
    assert!(
        !visible.is_empty() && visible.len() < kept_paths,
        "{} of {kept_paths} shown",
        visible.len()
    );
    assert!(
        visible.iter().all(|q| q.contains("python3.11")),
        "{visible:?}"
    );
    assert_eq!(
        rows.len() - visible.len(),
        rows.iter().filter(|r| !r.1.contains("python3.11")).count()
    );
    assert_eq!(
        inner_text(&filtered, "id=\"kept-shown\""),
        visible.len().to_string()
    );
    eprintln!(
        "kept paths: {kept_paths}, with the filter python3.11: {}",
        visible.len()
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html.png");
    let _ = std::fs::remove_file(&shot);
    chromium_run(
        &chromium,
        &profile.0,
        &format!("--screenshot={}", shot.display()),
        &url,
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    println!("screenshot: {}", shot.display());
}
