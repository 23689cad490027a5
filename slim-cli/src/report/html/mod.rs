//! report.html: one self-contained page rendered from report.json (and the kept paths of
//! files.txt, when given). No network: styles, script and charts (inline SVG) are in the page,
//! and its Content-Security-Policy refuses anything else, so it works from file:// and as a CI
//! artifact. Pure: takes the parsed JSON and text, returns the page; reading and writing the
//! files is the caller's.

mod charts;
mod escape;
mod sections;
pub mod treemap;

use serde_json::Value;

pub use escape::escape;

/// The page's file name, next to report.json.
pub const FILE: &str = "report.html";

/// Why a JSON value cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Valid JSON, but not what `slim build` or `slim profile` writes.
    #[error("not a slim report: {0}")]
    NotAReport(&'static str),
}

/// Which command wrote the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `slim build`: fat and slim images.
    Build,
    /// `slim profile`: the target and its profiles, no image written.
    Profile,
}

impl Kind {
    fn of(report: &Value) -> Result<Self, RenderError> {
        if !report.is_object() {
            return Err(RenderError::NotAReport("not a JSON object"));
        }
        if report
            .pointer("/target/image")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(RenderError::NotAReport("no target.image"));
        }
        if report.pointer("/verify").is_none_or(|v| !v.is_object()) {
            return Err(RenderError::NotAReport("no verify section"));
        }
        match report.pointer("/slim/image").and_then(Value::as_str) {
            Some(_) => Ok(Self::Build),
            None if report.get("profiles").is_some() => Ok(Self::Profile),
            None => Err(RenderError::NotAReport("neither slim.image nor profiles")),
        }
    }
}

/// Sets a marker on the page for every script error and refused load (the e2e test reads it).
const ERROR_MARKER: &str = "<script>(function(){var d=document.documentElement;\
function mark(m){d.setAttribute('data-js-errors',String((+d.getAttribute('data-js-errors')||0)+1));\
d.setAttribute('data-js-error',String(m));}\
window.addEventListener('error',function(e){mark(e.message||'load error');},true);\
document.addEventListener('securitypolicyviolation',function(e){mark('refused '+e.blockedURI);});})();</script>";

/// Nothing from outside the page: inline style and script only, images as data: URLs.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
img-src data:; base-uri 'none'; form-action 'none'";

/// The page for `report` (report.json, parsed); `files` is files.txt's text, for the kept
/// paths by reason (without it the page gives the counts per reason only).
pub fn render(report: &Value, files: Option<&str>) -> Result<String, RenderError> {
    let kind = Kind::of(report)?;
    let build = kind == Kind::Build;
    let title = match kind {
        Kind::Build => format!(
            "slim: {} → {}",
            escape::text(report, "/target/image"),
            escape::text(report, "/slim/image")
        ),
        Kind::Profile => format!("slim profile: {}", escape::text(report, "/target/image")),
    };
    let mut page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>{ERROR_MARKER}<style>{}</style></head><body><h1>{}</h1>",
        escape(&title),
        include_str!("page.css"),
        escape(&title)
    );
    page.push_str(&sections::headline(report, build));
    let warnings = sections::warnings(report);
    if !warnings.is_empty() {
        page.push_str(&section("warnings", "Warnings", &{
            let items: Vec<String> = warnings.iter().map(|w| format!("<li>{w}</li>")).collect();
            format!("<ul class=\"warnings\">{}</ul>", items.join(""))
        }));
    }
    if build {
        page.push_str(&section(
            "by-dir",
            "The fat image by directory",
            &by_dir(report),
        ));
        page.push_str(&section(
            "kept",
            "Kept files by reason",
            &kept(report, files),
        ));
    }
    page.push_str(&section(
        "probes-section",
        "Probes",
        &sections::probes(report, build),
    ));
    page.push_str(&section(
        "profiles",
        "Profiles",
        &sections::profiles(report),
    ));
    page.push_str(&section(
        "timings-section",
        "Time per phase",
        &timings(report),
    ));
    page.push_str(&format!(
        "<footer>rendered by slim {} from report.json</footer><script>{}</script></body></html>",
        env!("CARGO_PKG_VERSION"),
        include_str!("page.js")
    ));
    Ok(page)
}

fn section(id: &str, title: &str, body: &str) -> String {
    format!("<section id=\"{id}\"><h2>{title}</h2>{body}</section>")
}

fn by_dir(report: &Value) -> String {
    let (leaves, full) = charts::leaves(report);
    let mut html = format!(
        "<p class=\"legend\">each box is a directory, its area the bytes it holds in the fat \
         image<span class=\"key kept\"></span>kept<span class=\"key removed\"></span>removed \
         (hover for sizes and owning packages){}</p>",
        match full {
            true => "",
            false => "; this report predates by_dir: removed bytes only",
        }
    );
    html.push_str(&charts::treemap(&leaves));
    html.push_str(&sections::packages(report));
    html
}

fn kept(report: &Value, files: Option<&str>) -> String {
    let mut html = match files {
        Some(files) => sections::kept_files(report, &sections::parse_files(files)),
        None => {
            let counts = report.pointer("/kept").and_then(Value::as_object);
            let rows: Vec<String> = counts
                .into_iter()
                .flatten()
                .map(|(reason, n)| {
                    format!(
                        "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                        escape(reason),
                        n.as_u64().unwrap_or(0)
                    )
                })
                .collect();
            format!(
                "<p>files.txt was not found next to report.json: paths per reason only.</p>\
                 <table>{}</table>",
                rows.join("")
            )
        }
    };
    html.push_str(&sections::largest(report));
    html
}

fn timings(report: &Value) -> String {
    format!(
        "<p class=\"legend\">the image is read while the app is recorded; start and probes are \
         part of recording</p>{}",
        charts::timings(report)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        serde_json::json!({
            "created": "2026-12-07T21:44:00Z",
            "target": {"image": "app:fat", "id": "sha256:2d2514575d66", "size_bytes": 272077018},
            "slim": {"image": "app.slim:<script>x</script>", "id": "sha256:6746", "size_bytes": 22578301},
            "ratio": 12.05,
            "probes": [{"name": "GET /", "status": 200, "bytes": 71, "ms": 1, "round": 1}],
            "verify": {"skipped": false, "probes": 1, "matched": 1, "failed": [],
                       "under": ["seccomp.json"]},
            "timings_ms": {"total": 3308},
            "kept": {"opened": 1},
            "by_dir": {"/srv": {"kept_files": 1, "kept_bytes": 10, "removed_files": 0,
                                "removed_bytes": 0}},
            "profiles": {"seccomp": {"file": "seccomp.json", "allowed": 88, "from_app": 50,
                "from_runtime": 30, "fixed_extras": 8, "architectures": ["SCMP_ARCH_X86_64"]},
                "apparmor": {"file": "apparmor.profile", "rules": {"file": 111}, "capabilities": []}}
        })
    }

    #[test]
    fn a_build_report_renders_every_section_and_nothing_external() {
        let page = render(&report(), Some("/srv/a\topened\tread\n")).unwrap();
        for id in [
            "headline",
            "by-dir",
            "kept",
            "probes-section",
            "profiles",
            "timings-section",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\"")), "{id}");
        }
        assert!(page.contains("data-ratio=\"12.05\">12.1x<"));
        assert!(page.contains("verified 1/1 probes under seccomp.json"));
        assert!(page.contains("data-bytes=\"272077018\">272.1 MB<"));
        assert!(!page.contains("<script>x</script>"), "the tag is escaped");
        for external in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
        assert!(!page.contains("id=\"warnings\""));
    }

    /// A hostile image's file name cannot open a script: it is text wherever it appears.
    #[test]
    fn script_in_a_path_is_escaped_everywhere() {
        let hostile = "/srv/<script>alert(1)</script>\"'.html";
        let mut report = report();
        report["by_dir"][hostile] = serde_json::json!({"kept_files": 1, "kept_bytes": 5, "removed_files": 1, "removed_bytes": 5});
        report["largest_kept"] =
            serde_json::json!([{"path": hostile, "bytes": 5, "reason": "opened"}]);
        report["verify"]["missing_paths"] = serde_json::json!([hostile]);
        let files = format!("{hostile}\topened\tread x1 <img src=x onerror=alert(1)>\n");
        let page = render(&report, Some(&files)).unwrap();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.matches("&lt;script&gt;alert(1)&lt;/script&gt;")
                .count()
                >= 4
        );
        // Only slim's own scripts remain.
        assert_eq!(page.matches("<script>").count(), 2);
    }

    #[test]
    fn a_profile_report_renders_without_images_or_files() {
        let mut report = report();
        report.as_object_mut().unwrap().remove("slim");
        let page = render(&report, None).unwrap();
        assert!(page.contains("slim profile: app:fat"));
        assert!(!page.contains("id=\"by-dir\""));
        assert!(page.contains("id=\"profiles\""));
    }

    #[test]
    fn other_json_is_refused() {
        for (json, why) in [
            (serde_json::json!([1, 2]), "not a JSON object"),
            (serde_json::json!({"name": "x"}), "no target.image"),
            (
                serde_json::json!({"target": {"image": "a"}}),
                "no verify section",
            ),
            (
                serde_json::json!({"target": {"image": "a"}, "verify": {}}),
                "neither slim.image nor profiles",
            ),
        ] {
            let err = render(&json, None).unwrap_err();
            assert_eq!(err.to_string(), format!("not a slim report: {why}"));
        }
    }
}
