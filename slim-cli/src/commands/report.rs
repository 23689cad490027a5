//! The build report: a stable JSON contract (`report.json`), the kept-path list with reasons
//! (`files.txt`), and the console summary line.

use std::{collections::BTreeMap, io::Write as _, path::Path};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::{
    image::xray::human_bytes,
    minify::{KeepSet, Summary},
    prober::ProbeResult,
    tracer::RecorderStats,
};

#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub image: String,
    pub id: String,
    pub size_bytes: u64,
    /// How the fat image was read: `storage` (the engine's overlay directories) or `save`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_from: Option<&'static str>,
}

/// A probe the slim image answered differently.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub name: String,
    pub fat: String,
    pub slim: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verify {
    pub skipped: bool,
    pub probes: usize,
    pub matched: usize,
    pub failed: Vec<Mismatch>,
    /// Paths the slim run looked for and did not find, that the fat image has.
    pub missing_paths: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecorderReport {
    #[serde(flatten)]
    pub stats: RecorderStats,
    /// Relative paths whose base could not be known.
    pub unresolved: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// Bytes of regular files the app opened or executed.
    pub opened_bytes: u64,
    /// The same plus files only looked up (stat, access, readlink) and libraries.
    pub touched_bytes: u64,
    /// Slim image size over `opened_bytes`.
    pub slim_over_opened: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    pub files: u64,
    pub bytes: u64,
    pub by_dir: BTreeMap<String, RemovedDir>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RemovedDir {
    pub files: u64,
    pub bytes: u64,
}

/// report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: ImageSummary,
    pub slim: ImageSummary,
    /// Target size over slim size.
    pub ratio: f64,
    pub probes: Vec<ProbeResult>,
    pub verify: Verify,
    pub recorder: RecorderReport,
    pub timings_ms: BTreeMap<String, u128>,
    /// Kept paths per reason.
    pub kept: BTreeMap<String, u64>,
    pub kept_files: u64,
    pub removed: Removed,
    pub floor: Floor,
    pub syscalls: Vec<String>,
    /// Paths the app used that the fat image does not have (created at run time or missing).
    pub not_in_image: Vec<String>,
}

impl Report {
    pub fn removed_from(summary: &Summary) -> Removed {
        Removed {
            files: summary.removed_files,
            bytes: summary.removed_bytes,
            by_dir: summary
                .removed_by_dir
                .iter()
                .map(|(dir, &(files, bytes))| (dir.clone(), RemovedDir { files, bytes }))
                .collect(),
        }
    }

    /// `minified by 10.7x [211.5 MB -> 19.8 MB], verified 3/3 probes`.
    pub fn summary_line(&self) -> String {
        let verified = if self.verify.skipped {
            "not verified (--no-verify)".to_owned()
        } else if self.verify.failed.is_empty() {
            format!(
                "verified {}/{} probes",
                self.verify.matched, self.verify.probes
            )
        } else {
            format!(
                "VERIFICATION FAILED: {}/{} probes matched",
                self.verify.matched, self.verify.probes
            )
        };
        format!(
            "minified by {:.1}x [{} -> {}], {verified}",
            self.ratio,
            human_bytes(self.target.size_bytes),
            human_bytes(self.slim.size_bytes)
        )
    }

    /// Writes report.json and files.txt into `dir`.
    pub fn write(&self, dir: &Path, keep: &KeepSet) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(dir.join("report.json"), json).context("write report.json")?;
        let mut files = std::io::BufWriter::new(
            std::fs::File::create(dir.join("files.txt")).context("create files.txt")?,
        );
        writeln!(files, "# kept path\treason\tdetail")?;
        for (path, kept) in &keep.paths {
            writeln!(
                files,
                "/{}\t{}\t{}",
                path.display(),
                kept.reason.as_str(),
                kept.detail
            )?;
        }
        for path in &keep.excluded {
            writeln!(files, "# excluded: /{}", path.display())?;
        }
        files.flush()?;
        Ok(())
    }
}
