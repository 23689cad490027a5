//! The page's charts as inline SVG: the treemap of the fat image by directory (kept against
//! removed), the seccomp profile against Docker's default, and the phase timings. Reads
//! report.json as a [`Value`]; every text goes through [`escape`].

use std::fmt::Write as _;

use serde_json::Value;

use super::{
    escape::{escape, float, number, text},
    treemap::{squarify, Rect},
};
use crate::image::xray::human_bytes;

/// The treemap's drawing size (the page scales it to its width).
const MAP_W: f64 = 1000.0;
const MAP_H: f64 = 520.0;

/// One directory of the treemap.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub dir: String,
    pub kept_bytes: u64,
    pub removed_bytes: u64,
    pub kept_files: u64,
    pub removed_files: u64,
    pub packages: Vec<String>,
}

impl Leaf {
    fn bytes(&self) -> u64 {
        self.kept_bytes + self.removed_bytes
    }

    /// `/usr` for `/usr/lib/python3.11`, `/` for `/`.
    fn top(&self) -> String {
        let first = self.dir.trim_start_matches('/').split('/').next();
        format!("/{}", first.unwrap_or(""))
    }
}

/// The directories the treemap draws: report.json's `by_dir`, or for a report written before
/// it, `removed.by_dir` (removed bytes only). The flag says which.
pub fn leaves(report: &Value) -> (Vec<Leaf>, bool) {
    let share = |dir: &str, v: &Value| Leaf {
        dir: dir.to_owned(),
        kept_bytes: number(v, "/kept_bytes"),
        removed_bytes: number(v, "/removed_bytes"),
        kept_files: number(v, "/kept_files"),
        removed_files: number(v, "/removed_files"),
        packages: super::escape::strings(v, "/packages"),
    };
    if let Some(dirs) = report.pointer("/by_dir").and_then(Value::as_object) {
        let leaves = dirs.iter().map(|(dir, v)| share(dir, v));
        return (leaves.filter(|l| l.bytes() > 0).collect(), true);
    }
    let removed = report
        .pointer("/removed/by_dir")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(dir, v)| Leaf {
            dir: dir.clone(),
            kept_bytes: 0,
            removed_bytes: number(v, "/bytes"),
            kept_files: 0,
            removed_files: number(v, "/files"),
            packages: Vec::new(),
        });
    (removed.filter(|l| l.bytes() > 0).collect(), false)
}

/// The treemap: one box per top directory, inside it one per directory of `leaves`, each
/// split into its kept part and its removed part.
pub fn treemap(leaves: &[Leaf]) -> String {
    let mut groups: Vec<(String, Vec<&Leaf>)> = Vec::new();
    for leaf in leaves {
        let top = leaf.top();
        match groups.iter_mut().find(|(t, _)| *t == top) {
            Some((_, members)) => members.push(leaf),
            None => groups.push((top, vec![leaf])),
        }
    }
    let weight = |members: &[&Leaf]| members.iter().map(|l| l.bytes() as f64).sum::<f64>();
    let weights: Vec<f64> = groups.iter().map(|(_, m)| weight(m)).collect();
    let mut svg = format!(
        "<svg class=\"treemap\" id=\"treemap\" viewBox=\"0 0 {MAP_W} {MAP_H}\" role=\"img\" \
         aria-label=\"the fat image by directory, kept and removed\">"
    );
    let boxes = squarify(&weights, Rect::new(0.0, 0.0, MAP_W, MAP_H));
    for ((top, members), area) in groups.iter().zip(boxes) {
        if area.area() < 1.0 {
            continue;
        }
        let labelled = area.w > 40.0 && area.h > 30.0;
        let _ = write!(
            svg,
            "<g class=\"tm-top\"><rect class=\"tm-box\" {}><title>{}</title></rect>",
            coords(&area),
            escape(&format!("{top}: {}", human_bytes(weight(members) as u64)))
        );
        if labelled {
            let _ = write!(
                svg,
                "<text class=\"tm-top-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                area.x + 4.0,
                area.y + 13.0,
                escape(&fit(
                    &format!("{top} {}", human_bytes(weight(members) as u64)),
                    area.w - 6.0,
                ))
            );
        }
        let inner = match labelled {
            true => area.inset(2.0, 17.0, 2.0, 2.0),
            false => area.inset(1.0, 1.0, 1.0, 1.0),
        };
        let sizes: Vec<f64> = members.iter().map(|l| l.bytes() as f64).collect();
        for (leaf, cell) in members.iter().zip(squarify(&sizes, inner)) {
            leaf_svg(&mut svg, leaf, &cell);
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn leaf_svg(svg: &mut String, leaf: &Leaf, cell: &Rect) {
    if cell.area() < 0.5 {
        return;
    }
    let (kept, removed) = cell.split(leaf.kept_bytes as f64 / leaf.bytes().max(1) as f64);
    let mut title = format!(
        "{}: {} in the fat image; {} kept ({} entries), {} removed ({} entries)",
        leaf.dir,
        human_bytes(leaf.bytes()),
        human_bytes(leaf.kept_bytes),
        leaf.kept_files,
        human_bytes(leaf.removed_bytes),
        leaf.removed_files
    );
    if !leaf.packages.is_empty() {
        let _ = write!(title, "; packages: {}", leaf.packages.join(", "));
    }
    let _ = write!(
        svg,
        "<g class=\"tm-dir\" data-dir=\"{}\"><title>{}</title>",
        escape(&leaf.dir),
        escape(&title)
    );
    for (class, part) in [("kept", kept), ("removed", removed)] {
        if part.area() >= 0.5 {
            let _ = write!(svg, "<rect class=\"{class}\" {}/>", coords(&part));
        }
    }
    let _ = write!(svg, "<rect class=\"tm-cell\" {}/>", coords(cell));
    if cell.w > 46.0 && cell.h > 15.0 {
        let mut label = leaf.dir.clone();
        if let Some(package) = leaf.packages.first().filter(|_| cell.h > 28.0) {
            let _ = write!(
                svg,
                "<text class=\"tm-pkg\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                cell.x + 3.0,
                cell.y + 24.0,
                escape(&fit(package, cell.w - 5.0))
            );
        } else if cell.h > 28.0 {
            label = format!("{label} {}", human_bytes(leaf.bytes()));
        }
        let _ = write!(
            svg,
            "<text class=\"tm-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            cell.x + 3.0,
            cell.y + 11.0,
            escape(&fit(&label, cell.w - 5.0))
        );
    }
    svg.push_str("</g>");
}

fn coords(r: &Rect) -> String {
    format!(
        "x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"",
        r.x, r.y, r.w, r.h
    )
}

/// `label` cut to what fits in `width` units of an 11px font (an ellipsis marks the cut).
fn fit(label: &str, width: f64) -> String {
    let room = (width / 6.4).floor().max(0.0) as usize;
    if label.chars().count() <= room {
        return label.to_owned();
    }
    if room == 0 {
        return String::new();
    }
    let kept: String = label.chars().take(room.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Phases in the order they run; others follow in report.json's order.
const PHASES: &[(&str, &str)] = &[
    ("inspect", "inspect"),
    ("read_image", "read the image (while recording)"),
    ("record_and_probe", "record and probe"),
    ("start_until_ready", "  start until ready"),
    ("probe", "  probes"),
    ("select", "select"),
    ("packages", "package database"),
    ("write_image", "write the image"),
    ("profiles", "profiles"),
    ("verify", "verify"),
    ("total", "total"),
];

/// Horizontal bars of `timings_ms`, scaled to the longest (the total).
pub fn timings(report: &Value) -> String {
    let Some(all) = report.pointer("/timings_ms").and_then(Value::as_object) else {
        return String::new();
    };
    let mut rows: Vec<(String, u64)> = PHASES
        .iter()
        .filter_map(|(key, label)| all.get(*key)?.as_u64().map(|ms| ((*label).to_owned(), ms)))
        .collect();
    for (key, value) in all {
        if !PHASES.iter().any(|(k, _)| k == key) {
            rows.push((key.clone(), value.as_u64().unwrap_or(0)));
        }
    }
    let longest = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let (label_w, bar_w, row_h) = (230.0, 620.0, 22.0);
    let height = rows.len() as f64 * row_h + 4.0;
    let mut svg = format!(
        "<svg class=\"bars\" id=\"timings\" viewBox=\"0 0 1000 {height}\" role=\"img\" \
         aria-label=\"time per phase\">"
    );
    for (i, (label, ms)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let w = (*ms as f64 / longest * bar_w).max(1.0);
        let class = if label == "total" { "bar total" } else { "bar" };
        let _ = write!(
            svg,
            "<g class=\"phase\" data-ms=\"{ms}\"><text x=\"0\" y=\"{:.1}\">{}</text>\
             <rect class=\"{class}\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            y + 13.0,
            escape(label.trim_start()),
            label_w + w + 6.0,
            y + 13.0,
            seconds(*ms)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `840 ms`, `3.3 s`.
pub fn seconds(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        _ => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// The seccomp profile's allowed calls by group, stacked, against the `docker` calls Docker's
/// default profile allows.
pub fn seccomp_bars(seccomp: &Value, docker: usize) -> String {
    let groups = [
        ("app", "the app made", number(seccomp, "/from_app")),
        (
            "runtime",
            "the runtime needs",
            number(seccomp, "/from_runtime"),
        ),
        ("fixed", "fixed extras", number(seccomp, "/fixed_extras")),
        ("user", "--seccomp-allow", number(seccomp, "/user_allowed")),
        ("packer", "UPX stub", number(seccomp, "/packer/added")),
    ];
    let allowed = number(seccomp, "/allowed");
    let scale = allowed.max(docker as u64).max(1) as f64;
    let (x0, width) = (230.0, 620.0);
    let mut svg = String::from(
        "<svg class=\"bars\" id=\"seccomp-bars\" viewBox=\"0 0 1000 58\" role=\"img\" \
         aria-label=\"syscalls allowed\">",
    );
    let _ = write!(svg, "<text x=\"0\" y=\"15\">slim's seccomp.json</text>");
    let mut x = x0;
    for (class, label, n) in groups.iter().filter(|g| g.2 > 0) {
        let w = *n as f64 / scale * width;
        let _ = write!(
            svg,
            "<rect class=\"sc-{class}\" x=\"{x:.1}\" y=\"2\" width=\"{w:.1}\" height=\"18\">\
             <title>{n} {}</title></rect>",
            escape(label)
        );
        x += w;
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"15\" id=\"seccomp-allowed\" data-n=\"{allowed}\">{allowed}</text>",
        x + 6.0
    );
    let dw = docker as f64 / scale * width;
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"45\">Docker's default profile</text>\
         <rect class=\"sc-docker\" x=\"{x0}\" y=\"32\" width=\"{dw:.1}\" height=\"18\"/>\
         <text x=\"{:.1}\" y=\"45\" id=\"docker-allowed\" data-n=\"{docker}\">{docker}</text></svg>",
        x0 + dw + 6.0
    );
    let legend: Vec<String> = groups
        .iter()
        .filter(|g| g.2 > 0)
        .map(|(class, label, n)| {
            format!(
                "<span class=\"key sc-{class}\"></span>{n} {}",
                escape(label)
            )
        })
        .collect();
    let _ = write!(svg, "<p class=\"legend\">{}</p>", legend.join(" "));
    svg
}

/// The ratio `fat / slim`, shown as `12.1x`.
pub fn ratio(report: &Value) -> String {
    format!("{:.1}x", float(report, "/ratio"))
}

/// The image name at `at` (`/target`), its size and short id, as the headline shows it.
pub fn image_line(report: &Value, at: &str, id: &str) -> String {
    let size = number(report, &format!("{at}/size_bytes"));
    let image_id = text(report, &format!("{at}/id"));
    let short = image_id
        .strip_prefix("sha256:")
        .unwrap_or(image_id)
        .chars()
        .take(12)
        .collect::<String>();
    format!(
        "<span class=\"image\" id=\"{id}-image\">{}</span> \
         <span class=\"size\" id=\"{id}-size\" data-bytes=\"{size}\">{}</span> \
         <span class=\"id\">{}</span>",
        escape(text(report, &format!("{at}/image"))),
        human_bytes(size),
        escape(&short)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        serde_json::json!({
            "by_dir": {
                "/usr/lib/python3.11": {"kept_files": 3, "kept_bytes": 3000, "removed_files": 9,
                    "removed_bytes": 9000, "packages": ["libpython3.11-stdlib"]},
                "/usr/bin": {"kept_files": 1, "kept_bytes": 500, "removed_files": 0,
                    "removed_bytes": 0},
                "/srv/<script>alert(1)</script>": {"kept_files": 1, "kept_bytes": 100,
                    "removed_files": 0, "removed_bytes": 0},
                "/dev": {"kept_files": 0, "kept_bytes": 0, "removed_files": 15,
                    "removed_bytes": 0}
            },
            "timings_ms": {"verify": 1600, "inspect": 2, "total": 3300, "later": 5}
        })
    }

    #[test]
    fn the_treemap_draws_every_directory_with_bytes_and_escapes_names() {
        let (leaves, full) = leaves(&report());
        assert!(full);
        assert_eq!(leaves.len(), 3, "empty /dev is left out");
        let svg = treemap(&leaves);
        assert_eq!(svg.matches("class=\"tm-dir\"").count(), 3);
        assert_eq!(svg.matches("class=\"tm-top\"").count(), 2, "/usr and /srv");
        assert!(svg.contains("data-dir=\"/usr/lib/python3.11\""));
        assert!(svg.contains("libpython3.11-stdlib"));
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        // A directory kept whole has no removed part.
        let bin = svg.split("data-dir=\"/usr/bin\"").nth(1).unwrap();
        let bin = &bin[..bin.find("</g>").unwrap()];
        assert!(bin.contains("class=\"kept\"") && !bin.contains("class=\"removed\""));
    }

    #[test]
    fn an_older_report_draws_what_it_removed() {
        let old = serde_json::json!({"removed": {"by_dir": {
            "/usr": {"files": 3, "bytes": 1000}, "/dev": {"files": 1, "bytes": 0}}}});
        let (leaves, full) = leaves(&old);
        assert!(!full);
        assert_eq!(leaves.len(), 1);
        assert_eq!(leaves[0].removed_bytes, 1000);
    }

    #[test]
    fn timings_follow_the_phases_then_the_rest() {
        let svg = timings(&report());
        let at = |s: &str| svg.find(s).unwrap();
        assert!(at(">inspect<") < at(">verify<"));
        assert!(at(">verify<") < at(">total<"));
        assert!(at(">total<") < at(">later<"));
        assert!(svg.contains("3.3 s") && svg.contains("2 ms"));
        assert!(timings(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn labels_are_cut_to_fit() {
        assert_eq!(fit("/usr/lib", 100.0), "/usr/lib");
        assert_eq!(fit("/usr/lib/python3.11", 40.0), "/usr/…");
        assert_eq!(fit("/usr", 0.0), "");
    }
}
