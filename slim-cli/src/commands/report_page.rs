//! `slim report REPORT_JSON`: renders report.html again from a report.json (and the files.txt
//! next to it); and the step `slim build` and `slim profile` end with, the same page written
//! next to their report.json.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result};

use super::UsageError;
use crate::{cli::ReportArgs, report::html};

/// What to do about a file that is not a report.
const HINT: &str = "give the report.json that `slim build` or `slim profile` wrote (in its \
                    --output-dir, slim-out/IMAGE by default)";

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.report.with_file_name(html::FILE));
    let page = render(&args.report)?;
    std::fs::write(&out, page).map_err(|err| {
        UsageError::new(
            format!("cannot write {}: {err}", out.display()),
            "pass --out FILE in a directory slim can write",
        )
    })?;
    tracing::info!(page = %out.display(), "report.html written");
    if args.open {
        println!("{}", absolute(&out).display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The page for the report.json at `path`; a file that cannot be read, is not JSON or is not a
/// slim report is bad input.
fn render(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|err| UsageError::new(format!("cannot read {}: {err}", path.display()), HINT))?;
    let report: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|err| UsageError::new(format!("{} is not JSON: {err}", path.display()), HINT))?;
    let files = files_beside(path);
    html::render(&report, files.as_deref())
        .map_err(|err| UsageError::new(format!("{} is {err}", path.display()), HINT).into())
}

/// files.txt next to `report`, when there is one (a `slim profile` report has none).
fn files_beside(report: &Path) -> Option<String> {
    let files = report.with_file_name("files.txt");
    match std::fs::read_to_string(&files) {
        Ok(text) => Some(text),
        Err(err) => {
            tracing::debug!(file = %files.display(), %err, "no kept paths for the page");
            None
        }
    }
}

/// Writes report.html into `dir` from the report.json (and files.txt) there.
pub(super) fn write_beside(dir: &Path) -> Result<()> {
    let report = dir.join("report.json");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).context("read report.json")?)
            .context("parse report.json")?;
    let page = html::render(&value, files_beside(&report).as_deref())?;
    std::fs::write(dir.join(html::FILE), page).context("write report.html")
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("slim-report-page-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_input_is_a_usage_error_with_its_cause() {
        let dir = dir("bad");
        let missing = dir.join("missing.json");
        let not_json = dir.join("not.json");
        std::fs::write(&not_json, "<html>").unwrap();
        let other = dir.join("other.json");
        std::fs::write(&other, r#"{"name": "x"}"#).unwrap();
        for (path, cause) in [
            (&missing, "cannot read"),
            (&not_json, "is not JSON"),
            (&other, "is not a slim report: no target.image"),
        ] {
            let err = render(path).unwrap_err();
            let usage = err.downcast_ref::<UsageError>().expect("usage error");
            assert!(usage.message.contains(cause), "{}", usage.message);
            assert!(!usage.message.contains('\n'), "one line: {}", usage.message);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_page_is_written_beside_the_report_with_its_kept_paths() {
        let dir = dir("beside");
        let report = serde_json::json!({
            "target": {"image": "a:fat", "size_bytes": 10}, "slim": {"image": "a.slim", "size_bytes": 1},
            "ratio": 10.0, "verify": {"probes": 0, "matched": 0, "failed": []}
        });
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
        std::fs::write(dir.join("files.txt"), "# kept\n/bin/sh\texecuted\texec\n").unwrap();
        write_beside(&dir).unwrap();
        let page = std::fs::read_to_string(dir.join(html::FILE)).unwrap();
        assert!(page.contains("<tr class=\"kept\""));
        assert!(page.contains("/bin/sh"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
