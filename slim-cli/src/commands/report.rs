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
    /// The engine that ran it: `docker` or `podman`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<&'static str>,
}

/// A probe the slim image answered differently.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub name: String,
    pub fat: String,
    pub slim: String,
}

/// The paths a failed verification found missing, one per line: what `--include-path-file`
/// takes as it is.
pub const MISSING_PATHS_FILE: &str = "missing-paths.txt";

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verify {
    pub skipped: bool,
    /// Why it was skipped, when not by `--no-verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_because: Option<String>,
    pub probes: usize,
    pub matched: usize,
    pub failed: Vec<Mismatch>,
    /// Paths the fat image has and the slim one lacks, that the slim run looked for or that
    /// the held-out checks used on the fat image (also in [`MISSING_PATHS_FILE`]).
    pub missing_paths: Vec<String>,
    /// Syscalls the checked run made that its seccomp profile does not allow.
    pub denied_syscalls: Vec<String>,
    /// Profiles the checked image ran under (`seccomp.json`).
    pub under: Vec<String>,
    /// Starts of the checked image (`--verify-starts`; it stops at the first that fails).
    pub starts: u32,
    /// Of those, the starts with every CPU kept busy.
    pub loaded_starts: u32,
    /// With no probes: the seconds the checked image ran and was found as the original was
    /// after as long (still running, or exited with the same code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_like_original_s: Option<u64>,
    /// The checked image stopped on its stop signal with the original's exit code.
    pub stopped_like_original: bool,
}

impl Verify {
    /// `verified 3/3 probes under seccomp.json`, or what went wrong.
    pub fn summary(&self) -> String {
        if self.skipped {
            return format!(
                "not verified ({})",
                self.skipped_because.as_deref().unwrap_or("--no-verify")
            );
        }
        let under = if self.under.is_empty() {
            String::new()
        } else {
            format!(" under {}", self.under.join(" and "))
        };
        if let (true, Some(seconds)) = (self.failed.is_empty(), self.ran_like_original_s) {
            format!("started and ran {seconds} s like the original{under}; no probes")
        } else if self.failed.is_empty() {
            format!("verified {}/{} probes{under}", self.matched, self.probes)
        } else {
            format!(
                "VERIFICATION FAILED: {}/{} probes matched{under}",
                self.matched, self.probes
            )
        }
    }

    /// Prints the mismatches and the hints to stderr; `output_dir` holds
    /// [`MISSING_PATHS_FILE`] when paths were missing.
    pub fn explain(&self, checked: &str, original: &str, output_dir: Option<&Path>) {
        eprintln!("{checked} does not answer like {original}:");
        for m in &self.failed {
            eprintln!("  {}\n    fat:  {}\n    slim: {}", m.name, m.fat, m.slim);
        }
        if !self.missing_paths.is_empty() {
            eprintln!(
                "  the original used {} path(s) the slim image lacks:",
                self.missing_paths.len()
            );
            for path in self.missing_paths.iter().take(10) {
                eprintln!("    --include-path {path}");
            }
            if self.missing_paths.len() > 10 {
                eprintln!("    ... and {} more", self.missing_paths.len() - 10);
            }
            match output_dir {
                Some(dir) => eprintln!(
                    "  hint: rebuild with --include-path-file {}",
                    dir.join(MISSING_PATHS_FILE).display()
                ),
                None => eprintln!("  hint: rebuild with those --include-path flags"),
            }
        }
        if !self.denied_syscalls.is_empty() {
            eprintln!(
                "  the seccomp profile denied: {}\n  hint: if the app needs them in production, \
                 record a run that exercises them (more probes, --exec), or add them to the \
                 profile's SCMP_ACT_ALLOW names",
                self.denied_syscalls.join(", ")
            );
        }
    }
}

/// report.json's `profiles`.
#[derive(Clone, Debug, Serialize)]
pub struct ProfilesReport {
    pub seccomp: Option<SeccompReport>,
    /// Why no seccomp profile was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_skipped: Option<String>,
    pub apparmor: AppArmorReport,
    /// Profiles the verification ran under.
    pub verified_under: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeccompReport {
    pub file: &'static str,
    /// The same profile in complain mode (SCMP_ACT_LOG instead of EPERM).
    pub log_file: &'static str,
    pub operator_file: &'static str,
    pub architectures: Vec<&'static str>,
    /// Set when the image ran under qemu-user: the profile is mapped from the emulator's host
    /// calls, not observed, and was not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_under_emulation: Option<String>,
    /// Syscalls allowed, and how many of them the app made, the runtime needs, or are fixed.
    pub allowed: usize,
    pub from_app: usize,
    pub from_runtime: usize,
    pub fixed_extras: usize,
    /// Allowed only for the stub of a packer slim ran (`--compress-executables`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packer: Option<PackerReport>,
    /// Named with `--seccomp-allow` and not recorded.
    pub user_allowed: usize,
    pub syscalls: Vec<String>,
    /// Of `syscalls`, those allowed only with these argument conditions (any one of them):
    /// `clone` without namespace flags, `socket` for the recorded families, `personality`.
    pub argument_rules: std::collections::BTreeMap<String, Vec<crate::profiles::seccomp::ArgRule>>,
    /// Calls the app made that Docker's default profile refuses it: left out (io_uring answers
    /// ENOSYS) unless named with `--seccomp-allow`.
    pub docker_denied_recorded: Vec<String>,
    /// Calls the app only tried (nothing but errors while recording), answered with the errno
    /// they got instead of allowed: name -> errno.
    pub answered_failed_only: std::collections::BTreeMap<String, u32>,
    /// Answered with ENOSYS so a fallback runs.
    pub enosys: Vec<String>,
    /// What the runtime did to set the container up before the filter point that the profile
    /// does not allow (mount, pivot_root...): never needed by the app.
    pub runtime_setup_denied: Vec<String>,
    /// Recorded syscall numbers with no name on this architecture.
    pub unnamed: Vec<u32>,
}

/// The packer stub's group in the seccomp profile.
#[derive(Clone, Debug, Serialize)]
pub struct PackerReport {
    /// The group's name (`upx-stub`, see `profiles::seccomp::UPX_STUB`).
    pub group: &'static str,
    /// Its calls on the profile's architectures.
    pub syscalls: Vec<String>,
    /// How many of them nothing else allowed.
    pub added: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppArmorReport {
    pub file: &'static str,
    /// The same profile in complain mode (logs what it would refuse).
    pub complain_file: &'static str,
    /// Socket families the app created that AppArmor's rules cannot name: refused under the
    /// profile (add a rule by hand, or run without the AppArmor profile).
    pub unnamed_socket_families: Vec<u32>,
    pub name: String,
    pub rules: crate::profiles::apparmor::RuleCounts,
    pub capabilities: Vec<&'static str>,
    /// `passed`, `failed: ...` or `skipped: ...` (apparmor_parser -Q).
    pub parse_check: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecorderReport {
    #[serde(flatten)]
    pub stats: RecorderStats,
    /// Relative paths whose base could not be known.
    pub unresolved: u64,
    /// How the recorder found the mount-namespace struct offsets: `btf` or `calibrated`.
    pub kernel_offsets: crate::tracer::OffsetsSource,
    /// Starts of the original image recorded (`--record-starts`).
    pub starts: u32,
    /// Whether the app stopped on its stop signal while recorded: false when its init does not
    /// handle the signal, when it was still running at the timeout (killed), or with
    /// `--stop-timeout 0`.
    pub stop_recorded: bool,
    /// Times this build loaded the recorder's eBPF programs into the kernel (once: every later
    /// recording reuses them).
    pub object_loads: u32,
    /// Times it loaded the small calibration program that confirms the kernel's offsets.
    pub calibration_loads: u32,
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

/// report.json of `slim profile`: the run and its profiles, no image written.
#[derive(Debug, Serialize)]
pub struct ProfileReport {
    /// When the report was written (RFC 3339, UTC).
    pub created: String,
    pub target: ImageSummary,
    pub probes: Vec<ProbeResult>,
    pub verify: Verify,
    pub recorder: RecorderReport,
    pub timings_ms: BTreeMap<String, u128>,
    /// Every syscall the app made (libseccomp names).
    pub syscalls: Vec<String>,
    pub profiles: ProfilesReport,
}

/// report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// When the report was written (RFC 3339, UTC).
    pub created: String,
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
    /// Bytes of the kept files per reason (`static-import`: what the import closure added).
    pub kept_bytes: BTreeMap<String, u64>,
    /// Imports of a computed name the static import closure could not follow
    /// (`/path.py:LINE expression`).
    pub dynamic_imports: Vec<String>,
    /// What the static import closure added, per runtime (`python`: files and bytes).
    pub static_imports: BTreeMap<String, crate::minify::Added>,
    /// The app's own trees and language packages the app-owned rule looked at: kept whole, or
    /// past the budget.
    pub app_owned: crate::minify::app_owned::AppOwned,
    pub kept_files: u64,
    /// The largest kept files, biggest first.
    pub largest_kept: Vec<crate::minify::LargeFile>,
    pub removed: Removed,
    /// The fat image by directory (up to three components, `/usr/lib/python3.11`): entries
    /// and bytes kept and removed, and the packages owning most of it.
    pub by_dir: BTreeMap<String, crate::minify::by_dir::DirShare>,
    pub floor: Floor,
    pub syscalls: Vec<String>,
    /// Paths the app used that the fat image does not have (created at run time or missing).
    pub not_in_image: Vec<String>,
    /// Trees the app keeps state in, kept whole.
    pub state: Vec<crate::minify::StateRoot>,
    pub profiles: Option<ProfilesReport>,
    /// What `--strip-executables` / `--compress-executables` did, per file, bytes before/after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink: Option<crate::shrink::Report>,
    /// The package database kept for scanners: packages kept (whole or partly), removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<crate::packages::Report>,
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

    /// `minified by 10.7x [211.5 MB -> 19.8 MB], verified 3/3 probes under seccomp.json`.
    pub fn summary_line(&self) -> String {
        format!(
            "minified by {:.1}x [{} -> {}], {}",
            self.ratio,
            human_bytes(self.target.size_bytes),
            human_bytes(self.slim.size_bytes),
            self.verify.summary()
        )
    }

    /// The summary as one JSON object, for scripts (`--format json`): the images, the ratio,
    /// the verification, where the slim image was pushed, and the files this build wrote
    /// (`written`, in `dir`).
    pub fn summary_json(
        &self,
        dir: &Path,
        written: &[std::path::PathBuf],
        pushed_to: Option<&str>,
    ) -> serde_json::Value {
        let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let image = |summary: &ImageSummary| {
            serde_json::json!({
                "image": summary.image,
                "id": summary.id,
                "size_bytes": summary.size_bytes,
            })
        };
        serde_json::json!({
            "fat": image(&self.target),
            "slim": image(&self.slim),
            "ratio": self.ratio,
            "verified": !self.verify.skipped && self.verify.failed.is_empty(),
            "verify": {
                "skipped": self.verify.skipped,
                "probes": self.verify.probes,
                "matched": self.verify.matched,
                "failed": self.verify.failed.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                "under": self.verify.under,
            },
            "pushed_to": pushed_to,
            "output_dir": dir.display().to_string(),
            "files": written,
        })
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
            let shown = format!("/{}", path.display());
            let shrink = self
                .shrink
                .as_ref()
                .map(|r| r.describe(&shown))
                .unwrap_or_default();
            writeln!(
                files,
                "{shown}\t{}\t{}{shrink}",
                kept.reason.as_str(),
                kept.why
            )?;
        }
        for path in &keep.excluded {
            writeln!(files, "# excluded: /{}", path.display())?;
        }
        files.flush()?;
        if !self.verify.missing_paths.is_empty() {
            let mut text = format!(
                "# paths {} used and {} lacks: `slim build --include-path-file THIS_FILE ...`\n",
                self.target.image, self.slim.image
            );
            for path in &self.verify.missing_paths {
                text.push_str(path);
                text.push('\n');
            }
            std::fs::write(dir.join(MISSING_PATHS_FILE), text)
                .with_context(|| format!("write {MISSING_PATHS_FILE}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_summary_says_how_and_under_what() {
        let passed = Verify {
            probes: 3,
            matched: 3,
            under: vec!["seccomp.json".into(), "apparmor.profile".into()],
            ..Default::default()
        };
        assert_eq!(
            passed.summary(),
            "verified 3/3 probes under seccomp.json and apparmor.profile"
        );
        let failed = Verify {
            probes: 3,
            matched: 1,
            failed: vec![Mismatch {
                name: "GET /".into(),
                fat: "200".into(),
                slim: "500".into(),
            }],
            ..Default::default()
        };
        assert_eq!(failed.summary(), "VERIFICATION FAILED: 1/3 probes matched");
        let no_probes = Verify {
            ran_like_original_s: Some(10),
            under: vec!["seccomp.json".into()],
            ..Default::default()
        };
        assert_eq!(
            no_probes.summary(),
            "started and ran 10 s like the original under seccomp.json; no probes"
        );
        let skipped = Verify {
            skipped: true,
            ..Default::default()
        };
        assert_eq!(skipped.summary(), "not verified (--no-verify)");
    }
}
