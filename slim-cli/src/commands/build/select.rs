//! Phase 3: choose what the slim image keeps: every path the app touched that the image has,
//! with its symlinks, parents and ELF dependencies, the user's includes and the always-keep
//! groups, each with its reason.

use std::{collections::BTreeSet, path::PathBuf};

use crate::{
    image::xray::human_bytes,
    minify::{self, app_owned::TreeKind, KeepSet, Reason, Summary},
};

use super::record::Recorded;

/// The selection and its sizes.
pub struct Selected {
    pub keep: KeepSet,
    pub summary: Summary,
}

impl Selected {
    /// The kept tree paths.
    pub fn selection(&self) -> BTreeSet<PathBuf> {
        self.keep.paths.keys().cloned().collect()
    }

    /// `[3/7] select    keep 232 paths (20.6 MB), drop 9425 files (251.4 MB)` and the largest
    /// kept files on a second line.
    pub fn line(&self) -> String {
        let largest: Vec<String> = self
            .summary
            .largest
            .iter()
            .take(3)
            .map(|f| format!("{} {}", f.path, human_bytes(f.bytes)))
            .collect();
        let mut line = format!(
            "[3/7] select    keep {} paths ({}), drop {} files ({})",
            self.summary.kept_files,
            human_bytes(self.summary.kept_bytes),
            self.summary.removed_files,
            human_bytes(self.summary.removed_bytes)
        );
        if !largest.is_empty() {
            line.push_str(&format!("\n      largest   {}", largest.join(", ")));
        }
        let imported = self.summary.kept_by_reason.get(&Reason::StaticImport);
        if let Some(&files) = imported {
            let bytes = self
                .summary
                .kept_bytes_by_reason
                .get(&Reason::StaticImport)
                .copied()
                .unwrap_or(0);
            let by_runtime: Vec<String> = self
                .summary
                .static_imports
                .iter()
                .map(|(runtime, added)| {
                    format!("{runtime} {} ({})", added.files, human_bytes(added.bytes))
                })
                .collect();
            line.push_str(&format!(
                "\n      imports   {files} paths ({}) named by kept sources' imports [{}]; {} \
                 computed imports not followed (report.json dynamic_imports)",
                human_bytes(bytes),
                by_runtime.join(", "),
                self.summary.dynamic_imports.len()
            ));
        }
        let app = &self.keep.app_owned;
        if let Some(&files) = self.summary.kept_by_reason.get(&Reason::AppOwned) {
            let bytes = self
                .summary
                .kept_bytes_by_reason
                .get(&Reason::AppOwned)
                .copied()
                .unwrap_or(0);
            let kept: Vec<&str> = app
                .trees
                .iter()
                .filter(|t| t.kept && t.kind == TreeKind::App)
                .map(|t| t.path.as_str())
                .collect();
            let packages = app
                .trees
                .iter()
                .filter(|t| t.kept && t.kind == TreeKind::Package)
                .count();
            line.push_str(&format!(
                "\n      app       {files} paths ({}) of the app's own trees ({}) and {packages} \
                 language packages, kept whole",
                human_bytes(bytes),
                if kept.is_empty() {
                    "none".to_owned()
                } else {
                    kept.join(", ")
                },
            ));
        }
        for tree in app.over_budget() {
            line.push_str(&format!(
                "\n      app       {} ({}, {} files) is past the --app-budget of {}: kept only \
                 what was used",
                tree.path,
                human_bytes(tree.bytes),
                tree.files,
                human_bytes(app.budget_bytes)
            ));
        }
        line
    }
}

/// Selects from the recorded run's image.
pub fn select(recorded: &Recorded, mut options: minify::Options) -> Selected {
    options.workdir = Some(recorded.workdir.clone());
    options.env = recorded.env.clone();
    options.command = recorded.command();
    let image_volumes = recorded.image_volumes();
    options.volumes.extend(image_volumes.iter().cloned());
    options.image_volumes.extend(image_volumes);
    let keep = minify::select(&recorded.fat.tree, &recorded.recording, &options);
    let mut summary = minify::summarize(&recorded.fat.tree, &keep);
    let naming = std::time::Instant::now();
    if let Some(owners) = crate::packages::owners(&recorded.fat.tree) {
        minify::by_dir::name_packages(&mut summary.by_dir, &recorded.fat.tree, &owners);
    }
    tracing::debug!(
        ms = naming.elapsed().as_millis() as u64,
        dirs = summary.by_dir.len(),
        "named the packages owning each directory"
    );
    Selected { keep, summary }
}
