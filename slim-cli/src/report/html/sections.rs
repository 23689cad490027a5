//! The page's sections as HTML fragments: the headline, the warnings, the kept files by
//! reason, the probes, the profiles and the packages. Each reads report.json as a [`Value`]
//! (any field may be missing: an older or a `slim profile` report) and escapes every text.

use std::{collections::BTreeMap, fmt::Write as _};

use serde_json::Value;

use super::{
    charts,
    escape::{escape, list, number, strings, text},
};
use crate::image::xray::human_bytes;

/// `verified 6/6 probes under seccomp.json`, or what went wrong, from report.json's `verify`.
pub fn verify_summary(report: &Value) -> String {
    let verify = report.pointer("/verify").unwrap_or(&Value::Null);
    if verify.get("skipped").and_then(Value::as_bool) == Some(true) {
        let why = text(verify, "/skipped_because");
        return format!(
            "not verified ({})",
            if why.is_empty() { "--no-verify" } else { why }
        );
    }
    let under = strings(verify, "/under");
    let under = match under.is_empty() {
        true => String::new(),
        false => format!(" under {}", under.join(" and ")),
    };
    let (matched, probes) = (number(verify, "/matched"), number(verify, "/probes"));
    let failed = list(verify, "/failed").len();
    match verify.get("ran_like_original_s").and_then(Value::as_u64) {
        Some(s) if failed == 0 => {
            format!("started and ran {s} s like the original{under}; no probes")
        }
        _ if failed == 0 => format!("verified {matched}/{probes} probes{under}"),
        _ => format!("VERIFICATION FAILED: {matched}/{probes} probes matched{under}"),
    }
}

/// The headline: fat -> slim with sizes, the ratio, the verification, the time; for a
/// `slim profile` report, the target and the verification.
pub fn headline(report: &Value, build: bool) -> String {
    let verify = report.pointer("/verify").unwrap_or(&Value::Null);
    let failed = !list(verify, "/failed").is_empty();
    let mut html = String::from("<section id=\"headline\" class=\"headline\">");
    if build {
        let _ = write!(
            html,
            "<p class=\"images\">{} <span class=\"arrow\">→</span> {}</p>\
             <p class=\"big\"><span id=\"ratio\" data-ratio=\"{}\">{}</span> smaller</p>",
            charts::image_line(report, "/target", "fat"),
            charts::image_line(report, "/slim", "slim"),
            report
                .pointer("/ratio")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            charts::ratio(report),
        );
    } else {
        let _ = write!(
            html,
            "<p class=\"images\">profiles of {}</p>",
            charts::image_line(report, "/target", "fat")
        );
    }
    let _ = write!(
        html,
        "<p class=\"verify {}\" id=\"verified\" data-matched=\"{}\" data-probes=\"{}\" \
         data-under=\"{}\">{}</p>",
        if failed { "bad" } else { "good" },
        number(verify, "/matched"),
        number(verify, "/probes"),
        escape(&strings(verify, "/under").join(" ")),
        escape(&verify_summary(report))
    );
    let total = number(report, "/timings_ms/total");
    let created = text(report, "/created");
    let _ = write!(
        html,
        "<p class=\"when\">took <span id=\"total-time\" data-ms=\"{total}\">{}</span>{}</p></section>",
        charts::seconds(total),
        match created {
            "" => String::new(),
            at => format!(", written <time>{}</time>", escape(at)),
        }
    );
    html
}

/// Everything report.json flags: failed verification, paths and calls the slim image lacked,
/// imports not followed, budgets exceeded, events the recorder lost, profile gaps.
pub fn warnings(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |text: String| out.push(escape(&text));
    let verify = report.pointer("/verify").unwrap_or(&Value::Null);
    for m in list(verify, "/failed") {
        say(format!(
            "probe {} answered differently: fat {}, slim {}",
            text(m, "/name"),
            text(m, "/fat"),
            text(m, "/slim")
        ));
    }
    if verify.get("skipped").and_then(Value::as_bool) == Some(true) {
        say(verify_summary(report));
    }
    let named = |report: &Value, at: &str| -> Option<(usize, String)> {
        let all = strings(report, at);
        (!all.is_empty()).then(|| (all.len(), all.join(", ")))
    };
    if let Some((n, paths)) = named(verify, "/missing_paths") {
        say(format!(
            "the slim image lacks {n} path(s) the app used: {paths}"
        ));
    }
    if let Some((_, calls)) = named(verify, "/denied_syscalls") {
        say(format!("the seccomp profile denied: {calls}"));
    }
    if let Some((n, imports)) = named(report, "/dynamic_imports") {
        say(format!("{n} computed import(s) not followed: {imports}"));
    }
    let budget = number(report, "/app_owned/budget_bytes");
    for tree in list(report, "/app_owned/trees") {
        if tree.get("kept").and_then(Value::as_bool) == Some(false) {
            say(format!(
                "{} ({}, {} files) is past the app budget of {}: kept only what was used",
                text(tree, "/path"),
                human_bytes(number(tree, "/bytes")),
                number(tree, "/files"),
                human_bytes(budget)
            ));
        }
    }
    for (field, what) in [
        ("lost", "events the recorder lost"),
        ("truncated", "paths the recorder truncated"),
        ("read_failed", "paths the recorder could not read"),
        ("unresolved", "relative paths whose base was unknown"),
    ] {
        let n = number(report, &format!("/recorder/{field}"));
        if n > 0 {
            say(format!("{n} {what}"));
        }
    }
    let seccomp = report.pointer("/profiles/seccomp").unwrap_or(&Value::Null);
    if let Some((_, calls)) = named(seccomp, "/docker_denied_recorded") {
        say(format!(
            "the app called {calls}, which Docker's default profile refuses: left out of seccomp.json"
        ));
    }
    if let Some((_, numbers)) = named(seccomp, "/unnamed") {
        say(format!("syscall numbers with no name: {numbers}"));
    }
    let emulated = text(seccomp, "/derived_under_emulation");
    if !emulated.is_empty() {
        say(format!(
            "seccomp.json was derived under emulation: {emulated}"
        ));
    }
    let skipped = text(report, "/profiles/seccomp_skipped");
    if !skipped.is_empty() {
        say(format!("no seccomp.json: {skipped}"));
    }
    let apparmor = report.pointer("/profiles/apparmor").unwrap_or(&Value::Null);
    if let Some((_, families)) = named(apparmor, "/unnamed_socket_families") {
        say(format!(
            "AppArmor cannot name socket families {families}: refused under apparmor.profile"
        ));
    }
    let parse = text(apparmor, "/parse_check");
    if !parse.is_empty() && parse != "passed" {
        say(format!("AppArmor parse check: {parse}"));
    }
    let packages = text(report, "/packages/warning");
    if !packages.is_empty() {
        say(packages.to_owned());
    }
    out
}

/// One line of files.txt: a kept path, its reason and detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPath {
    pub path: String,
    pub reason: String,
    pub detail: String,
}

/// The kept paths of files.txt (`PATH\tREASON\tDETAIL`; `#` lines are comments).
pub fn parse_files(files: &str) -> Vec<KeptPath> {
    files
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            KeptPath {
                path: parts.next().unwrap_or("").to_owned(),
                reason: parts.next().unwrap_or("").to_owned(),
                detail: parts.next().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

/// The kept paths grouped by reason (most paths first), each a folding table the filter box
/// narrows; the bytes per reason from report.json's `kept_bytes`.
pub fn kept_files(report: &Value, kept: &[KeptPath]) -> String {
    let mut by_reason: BTreeMap<&str, Vec<&KeptPath>> = BTreeMap::new();
    for k in kept {
        by_reason.entry(k.reason.as_str()).or_default().push(k);
    }
    let mut reasons: Vec<(&str, Vec<&KeptPath>)> = by_reason.into_iter().collect();
    reasons.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut html = format!(
        "<div class=\"filter\"><label for=\"filter\">Filter</label> \
         <input id=\"filter\" type=\"search\" placeholder=\"path, reason or detail\" \
         autocomplete=\"off\"> <span><output id=\"kept-shown\">{n}</output> of \
         <span id=\"kept-total\">{n}</span> paths</span></div>",
        n = kept.len()
    );
    for (reason, paths) in reasons {
        let bytes = number(report, &format!("/kept_bytes/{reason}"));
        let _ = write!(
            html,
            "<details class=\"reason\" data-reason=\"{r}\"><summary><b>{r}</b> \
             <span class=\"n\">{}</span> paths, {}</summary><table>",
            paths.len(),
            human_bytes(bytes),
            r = escape(reason)
        );
        for k in paths {
            let _ = write!(
                html,
                "<tr class=\"kept\" data-q=\"{}\"><td class=\"path\">{}</td><td>{}</td></tr>",
                escape(&format!("{} {} {}", k.path, k.reason, k.detail).to_lowercase()),
                escape(&k.path),
                escape(&k.detail)
            );
        }
        html.push_str("</table></details>");
    }
    html
}

/// The largest kept files, from report.json's `largest_kept`.
pub fn largest(report: &Value) -> String {
    let rows = list(report, "/largest_kept");
    if rows.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<table class=\"largest\"><tr><th>largest kept files</th><th>size</th><th>reason</th></tr>",
    );
    for f in rows {
        let _ = write!(
            html,
            "<tr><td class=\"path\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(text(f, "/path")),
            human_bytes(number(f, "/bytes")),
            escape(text(f, "/reason"))
        );
    }
    html.push_str("</table>");
    html
}

/// A probe's answer: `200, 71 B in 1 ms`, `exit 0`, or its error.
fn answer(p: &Value) -> String {
    let code = match (p.get("status"), p.get("exit_code")) {
        (Some(status), _) if !status.is_null() => status.to_string(),
        (_, Some(code)) if !code.is_null() => format!("exit {code}"),
        _ => String::new(),
    };
    let error = text(p, "/error");
    match error {
        "" => format!(
            "{code}, {} in {}",
            human_bytes(number(p, "/bytes")),
            charts::seconds(number(p, "/ms"))
        ),
        _ => format!("{code} {error}").trim().to_owned(),
    }
}

/// The probes: each one's answer on the fat image next to the slim image's (the same, unless
/// verification found it different: those rows are marked).
pub fn probes(report: &Value, build: bool) -> String {
    let verify = report.pointer("/verify").unwrap_or(&Value::Null);
    let skipped = verify.get("skipped").and_then(Value::as_bool) == Some(true);
    let failed: BTreeMap<&str, &Value> = list(verify, "/failed")
        .iter()
        .map(|m| (text(m, "/name"), m))
        .collect();
    let mut html = format!(
        "<table class=\"probes\" id=\"probes\"><tr><th>probe</th><th>round</th>\
         <th>fat image</th><th>{}</th></tr>",
        match build {
            true => "slim image",
            false => "fat image under its profiles",
        }
    );
    let mut shown = std::collections::BTreeSet::new();
    for p in list(report, "/probes") {
        let name = text(p, "/name");
        shown.insert(name);
        let mut label = escape(name);
        if p.get("held_out").and_then(Value::as_bool) == Some(true) {
            label.push_str(" <small>(held out)</small>");
        }
        if p.get("guessed").and_then(Value::as_bool) == Some(true) {
            label.push_str(" <small>(default probe)</small>");
        }
        let (class, fat, slim) = match failed.get(name) {
            Some(m) => (
                "mismatch",
                text(m, "/fat").to_owned(),
                text(m, "/slim").to_owned(),
            ),
            None if skipped => ("", answer(p), "not checked".to_owned()),
            None => ("match", answer(p), "same answer".to_owned()),
        };
        let _ = write!(
            html,
            "<tr class=\"probe {class}\"><td>{label}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td></tr>",
            number(p, "/round"),
            escape(&fat),
            escape(&slim)
        );
    }
    for (name, m) in failed.iter().filter(|(n, _)| !shown.contains(*n)) {
        let _ = write!(
            html,
            "<tr class=\"probe mismatch\"><td>{}</td><td></td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(text(m, "/fat")),
            escape(text(m, "/slim"))
        );
    }
    html.push_str("</table>");
    html
}

/// The names at `at` of `v` as a folding list, or nothing when there are none.
fn names_list(v: &Value, at: &str, title: &str) -> String {
    let names = strings(v, at);
    if names.is_empty() {
        return String::new();
    }
    format!(
        "<details><summary>{} ({})</summary><p class=\"names\">{}</p></details>",
        escape(title),
        names.len(),
        escape(&names.join(" "))
    )
}

/// seccomp.json (allowed calls by group, against Docker's default) and apparmor.profile (rule
/// counts, capabilities).
pub fn profiles(report: &Value) -> String {
    let mut html = String::new();
    let seccomp = report.pointer("/profiles/seccomp").unwrap_or(&Value::Null);
    if seccomp.is_object() {
        let arch = strings(seccomp, "/architectures")
            .iter()
            .find_map(|scmp| arch_of(scmp))
            .unwrap_or(crate::syscalls::Arch::X86_64);
        let docker = crate::profiles::docker_default::allowed_by_default(arch);
        let _ = write!(
            html,
            "<h3>seccomp</h3><p>{} allows {} calls; Docker's default profile allows {} on {}.</p>",
            escape(text(seccomp, "/file")),
            number(seccomp, "/allowed"),
            docker,
            arch.scmp_arch()
        );
        html.push_str(&charts::seccomp_bars(seccomp, docker));
        html.push_str(&names_list(seccomp, "/syscalls", "allowed calls"));
        let rules: Vec<String> = seccomp
            .pointer("/argument_rules")
            .and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if !rules.is_empty() {
            let _ = write!(
                html,
                "<p>allowed only with argument conditions: {}</p>",
                escape(&rules.join(", "))
            );
        }
        html.push_str(&names_list(
            seccomp,
            "/enosys",
            "answered ENOSYS (a fallback runs)",
        ));
        html.push_str(&names_list(
            seccomp,
            "/runtime_setup_denied",
            "runtime setup calls before the filter, not allowed",
        ));
    }
    let apparmor = report.pointer("/profiles/apparmor").unwrap_or(&Value::Null);
    if apparmor.is_object() {
        let _ = write!(
            html,
            "<h3>AppArmor</h3><p>{} (profile <code>{}</code>), parse check {}</p>\
             <table class=\"rules\" id=\"apparmor-rules\"><tr>",
            escape(text(apparmor, "/file")),
            escape(text(apparmor, "/name")),
            escape(text(apparmor, "/parse_check"))
        );
        let counts = apparmor.pointer("/rules").and_then(Value::as_object);
        for (kind, _) in counts.into_iter().flatten() {
            let _ = write!(html, "<th>{} rules</th>", escape(kind));
        }
        html.push_str("</tr><tr>");
        for (_, n) in counts.into_iter().flatten() {
            let _ = write!(html, "<td class=\"num\">{}</td>", n.as_u64().unwrap_or(0));
        }
        let caps = strings(apparmor, "/capabilities");
        let _ = write!(
            html,
            "</tr></table><p>capabilities: {}</p>",
            match caps.is_empty() {
                true => "none".to_owned(),
                false => escape(&caps.join(", ")),
            }
        );
    }
    let under = strings(report, "/profiles/verified_under");
    if !under.is_empty() {
        let _ = write!(
            html,
            "<p>verified under {}</p>",
            escape(&under.join(" and "))
        );
    }
    html
}

fn arch_of(scmp: &str) -> Option<crate::syscalls::Arch> {
    use crate::syscalls::Arch;
    [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm]
        .into_iter()
        .find(|a| a.scmp_arch() == scmp)
}

/// The package database slim kept for scanners: packages kept (whole or partly) and removed.
pub fn packages(report: &Value) -> String {
    let packages = report.pointer("/packages").unwrap_or(&Value::Null);
    if !packages.is_object() {
        return String::new();
    }
    let mut html = format!(
        "<p>{} database: {} packages kept ({} partly), {} removed</p>\
         <details><summary>kept packages</summary><table><tr><th>package</th><th>version</th>\
         <th>files kept</th></tr>",
        escape(text(packages, "/database")),
        number(packages, "/counts/kept"),
        number(packages, "/counts/partly"),
        number(packages, "/counts/removed")
    );
    for p in list(packages, "/kept") {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{} of {}</td></tr>",
            escape(text(p, "/name")),
            escape(text(p, "/version")),
            number(p, "/files_kept"),
            number(p, "/files_total")
        );
    }
    html.push_str("</table></details>");
    html.push_str(&names_list(packages, "/removed", "removed packages"));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_txt_is_read_and_hostile_paths_are_escaped() {
        let kept = parse_files(
            "# kept path\treason\tdetail\n/srv/<script>alert(1)</script>\topened\tread x1\n\
             /usr/bin/python3.11\texecuted\texec\n# excluded: /x\n",
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].reason, "executed");
        let html = kept_files(&serde_json::json!({"kept_bytes": {"opened": 10}}), &kept);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("/srv/&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(html.matches("<tr class=\"kept\"").count(), 2);
        assert!(html.contains("<output id=\"kept-shown\">2</output>"));
    }

    #[test]
    fn mismatches_are_marked_and_matches_said() {
        let report = serde_json::json!({
            "probes": [{"name": "GET /", "status": 200, "bytes": 71, "ms": 1, "round": 1},
                       {"name": "GET /x", "status": 200, "bytes": 5, "ms": 1, "round": 1}],
            "verify": {"skipped": false, "probes": 2, "matched": 1, "under": ["seccomp.json"],
                       "failed": [{"name": "GET /x", "fat": "200", "slim": "500 <b>"}]}
        });
        let html = probes(&report, true);
        assert_eq!(html.matches("probe mismatch").count(), 1);
        assert!(html.contains("same answer"));
        assert!(html.contains("500 &lt;b&gt;"));
        assert_eq!(
            verify_summary(&report),
            "VERIFICATION FAILED: 1/2 probes matched under seccomp.json"
        );
        assert!(warnings(&report)[0].contains("GET /x"));
    }

    #[test]
    fn warnings_name_what_the_report_flags() {
        let report = serde_json::json!({
            "verify": {"skipped": false, "probes": 1, "matched": 1, "failed": [],
                       "denied_syscalls": ["io_uring_setup"], "missing_paths": []},
            "dynamic_imports": ["/a.py:3 __import__(...)"],
            "app_owned": {"budget_bytes": 1000, "trees": [
                {"path": "/app", "bytes": 5000, "files": 9, "kept": false}]},
            "recorder": {"lost": 2},
            "profiles": {"apparmor": {"parse_check": "failed: <x>"}}
        });
        let all = warnings(&report).join("\n");
        for expected in [
            "denied: io_uring_setup",
            "1 computed import(s)",
            "/app (5.0 kB, 9 files) is past the app budget",
            "2 events the recorder lost",
            "parse check: failed: &lt;x&gt;",
        ] {
            assert!(all.contains(expected), "{expected} in {all}");
        }
        assert!(warnings(&serde_json::json!({"verify": {"failed": []}})).is_empty());
    }
}
