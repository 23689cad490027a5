//! dpkg's database: `/var/lib/dpkg/status` with `info/PKG.list` and `info/PKG.md5sums`, or
//! distroless' `status.d/PKG` with `status.d/PKG.md5sums`. Pruned to the packages that still
//! have a kept file, each cut to its kept paths.

use std::path::PathBuf;

use super::{paragraphs, Db, KeptPaths, Package, Pruned};

const STATUS: &str = "var/lib/dpkg/status";
pub const INFO: &str = "var/lib/dpkg/info";
pub const STATUS_D: &str = "var/lib/dpkg/status.d";

/// One package's entry as the database holds it.
struct Entry {
    fields: Vec<(String, String)>,
    /// Listed paths (absolute), from `.list` (files and directories) or `.md5sums` (files).
    listed: Vec<String>,
    /// `.md5sums` lines: (hash, path without the leading `/`).
    md5sums: Option<Vec<(String, String)>>,
    /// The `.md5sums` file it came from.
    md5sums_path: Option<PathBuf>,
    list_path: Option<PathBuf>,
    /// `status.d/NAME` when the database is distroless' kind.
    own_status: Option<PathBuf>,
}

impl Entry {
    /// A package paragraph, its files not read yet.
    fn new(fields: Vec<(String, String)>, own_status: Option<PathBuf>) -> Self {
        Self {
            fields,
            listed: Vec::new(),
            md5sums: None,
            md5sums_path: None,
            list_path: None,
            own_status,
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn installed(&self) -> bool {
        self.field("Status")
            .is_none_or(|s| s.split_whitespace().nth(2) == Some("installed"))
    }
}

/// Reads the dpkg database of the tree through `read`; `None` when the image has none.
pub fn prune(
    files: &dyn Fn(&str) -> Option<Vec<u8>>,
    list_dir: &dyn Fn(&str) -> Vec<String>,
    kept: &KeptPaths,
) -> Option<Pruned> {
    let (mut entries, distroless) = read_entries(files, list_dir);
    if entries.is_empty() {
        return None;
    }
    for entry in &mut entries {
        entry.read_files(files);
    }

    let mut pruned = Pruned {
        db: if distroless {
            Db::DpkgDistroless
        } else {
            Db::Dpkg
        },
        ..Default::default()
    };
    let mut status_out = String::new();
    for entry in &entries {
        prune_entry(&mut pruned, &mut status_out, entry, kept);
    }
    if !distroless || files(STATUS).is_some() {
        pruned
            .files
            .push((PathBuf::from(STATUS), status_out.into_bytes()));
    }
    // Small files that say how to read the rest: `info/format` (the multi-arch layout,
    // `PKG:ARCH.list`), the architectures, diversions and owner overrides.
    pruned.whole = [
        "var/lib/dpkg/info/format",
        "var/lib/dpkg/arch",
        "var/lib/dpkg/diversions",
        "var/lib/dpkg/statoverride",
    ]
    .into_iter()
    .filter(|path| files(path).is_some())
    .map(PathBuf::from)
    .collect();
    pruned.dirs = [
        "var",
        "var/lib",
        "var/lib/dpkg",
        INFO,
        "var/lib/dpkg/updates",
        STATUS_D,
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    Some(pruned)
}

/// The package paragraphs of `status`, then of `status.d/`, and whether the database is
/// distroless' kind (has a `status.d/`).
fn read_entries(
    files: &dyn Fn(&str) -> Option<Vec<u8>>,
    list_dir: &dyn Fn(&str) -> Vec<String>,
) -> (Vec<Entry>, bool) {
    let mut entries = Vec::new();
    let mut distroless = false;
    if let Some(status) = files(STATUS) {
        for fields in paragraphs(&String::from_utf8_lossy(&status)) {
            entries.push(Entry::new(fields, None));
        }
    }
    let status_d: Vec<String> = list_dir(STATUS_D);
    if !status_d.is_empty() {
        distroless = true;
        for name in status_d.iter().filter(|n| !n.ends_with(".md5sums")) {
            let path = format!("{STATUS_D}/{name}");
            let Some(text) = files(&path) else { continue };
            for fields in paragraphs(&String::from_utf8_lossy(&text)) {
                entries.push(Entry::new(fields, Some(PathBuf::from(&path))));
            }
        }
    }
    (entries, distroless)
}

impl Entry {
    /// Reads the package's `.md5sums` and `.list` files; without a list, the md5sums' paths
    /// are the listed ones.
    fn read_files(&mut self, files: &dyn Fn(&str) -> Option<Vec<u8>>) {
        let name = self.field("Package").unwrap_or_default().to_owned();
        let arch = self.field("Architecture").unwrap_or_default().to_owned();
        self.read_md5sums(files, &name, &arch);
        if self.own_status.is_none() {
            self.read_list(files, &name, &arch);
        }
        if self.listed.is_empty() {
            if let Some(sums) = &self.md5sums {
                self.listed = sums.iter().map(|(_, p)| format!("/{p}")).collect();
            }
        }
    }

    /// Reads the first `.md5sums` file there is for package `name` of `arch`.
    fn read_md5sums(&mut self, files: &dyn Fn(&str) -> Option<Vec<u8>>, name: &str, arch: &str) {
        let candidates: Vec<String> = match &self.own_status {
            Some(own) => vec![format!("{}.md5sums", own.display())],
            None => [format!("{INFO}/{name}:{arch}"), format!("{INFO}/{name}")]
                .into_iter()
                .map(|base| format!("{base}.md5sums"))
                .collect(),
        };
        for candidate in candidates {
            if let Some(bytes) = files(&candidate) {
                let sums: Vec<(String, String)> = String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter_map(|l| l.split_once("  "))
                    .map(|(hash, path)| (hash.to_owned(), path.trim_start_matches('/').to_owned()))
                    .collect();
                self.md5sums = Some(sums);
                self.md5sums_path = Some(candidate.into());
                break;
            }
        }
    }

    /// Reads the first `info/` `.list` file there is for package `name` of `arch`.
    fn read_list(&mut self, files: &dyn Fn(&str) -> Option<Vec<u8>>, name: &str, arch: &str) {
        for base in [format!("{INFO}/{name}:{arch}"), format!("{INFO}/{name}")] {
            let list = format!("{base}.list");
            if let Some(bytes) = files(&list) {
                self.listed = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                self.list_path = Some(list.into());
                break;
            }
        }
    }
}

/// Of `listed`, the files in the image, the files kept, and the kept paths as a `.list` file.
fn count_kept(listed: &[String], kept: &KeptPaths) -> (u64, u64, String) {
    let mut total = 0;
    let mut kept_files = 0;
    let mut list_out = String::new();
    for path in listed {
        let Some(state) = kept.state(path) else {
            continue; // not in the image (dpkg path excludes)
        };
        if !state.is_dir {
            total += 1;
        }
        if state.kept {
            if !state.is_dir {
                kept_files += 1;
            }
            list_out.push_str(path);
            list_out.push('\n');
        }
    }
    (total, kept_files, list_out)
}

/// Files an installed package as kept or removed; a kept one's paragraph goes to `status_out`
/// (or its own `status.d/` file) and its `.list` and `.md5sums` are cut to the kept paths.
fn prune_entry(pruned: &mut Pruned, status_out: &mut String, entry: &Entry, kept: &KeptPaths) {
    let name = entry.field("Package").unwrap_or_default().to_owned();
    if !entry.installed() {
        return;
    }
    let (total, kept_files, list_out) = count_kept(&entry.listed, kept);
    let package = Package {
        name: name.clone(),
        version: entry.field("Version").unwrap_or_default().to_owned(),
        arch: entry.field("Architecture").unwrap_or_default().to_owned(),
        source: entry.field("Source").map(source_name),
        supplier: entry.field("Maintainer").map(str::to_owned),
        files_total: total,
        files_kept: kept_files,
    };
    if kept_files == 0 {
        pruned.removed.push(package.name);
        return;
    }
    pruned.kept.push(package);
    let paragraph = render(&entry.fields, kept);
    match &entry.own_status {
        Some(own) => pruned.files.push((own.clone(), paragraph.into_bytes())),
        None => {
            status_out.push_str(&paragraph);
            status_out.push('\n');
        }
    }
    if let Some(list) = &entry.list_path {
        pruned.files.push((list.clone(), list_out.into_bytes()));
    }
    if let (Some(sums), Some(path)) = (&entry.md5sums, &entry.md5sums_path) {
        let mut out = String::new();
        for (hash, file) in sums {
            if kept.state(&format!("/{file}")).is_some_and(|s| s.kept) {
                out.push_str(&format!("{hash}  {file}\n"));
            }
        }
        pruned.files.push((path.clone(), out.into_bytes()));
    }
}

/// `Source: glibc (2.36-9)` -> `glibc`.
fn source_name(field: &str) -> String {
    field
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A paragraph written back, its `Conffiles` cut to the kept ones.
fn render(fields: &[(String, String)], kept: &KeptPaths) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        let value = if name.eq_ignore_ascii_case("Conffiles") {
            let lines: Vec<&str> = value
                .lines()
                .filter(|l| {
                    l.split_whitespace()
                        .next()
                        .is_some_and(|p| kept.state(p).is_some_and(|s| s.kept))
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            format!(
                "\n{}",
                lines
                    .iter()
                    .map(|l| format!(" {}", l.trim()))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        } else {
            value.clone()
        };
        if value.starts_with('\n') {
            out.push_str(&format!("{name}:{value}\n"));
        } else {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    out
}
