//! Phase 3: choose what the slim image keeps: every path the app touched that the image has,
//! with its symlinks, parents and ELF dependencies, the user's includes and the always-keep
//! groups, each with its reason.

use std::{collections::BTreeSet, path::PathBuf};

use anyhow::Result;

use crate::{
    cli::BuildArgs,
    commands::{pipeline::Output, UsageError},
    image::xray::human_bytes,
    minify::{self, KeepSet, Summary},
};

use super::{
    input::{read_lines, Input},
    record::Recorded,
};

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
        line
    }
}

/// Selects from the recorded run's image.
pub fn select(recorded: &Recorded, mut options: minify::Options) -> Selected {
    options.workdir = Some(recorded.workdir.clone());
    options.env = recorded.env.clone();
    if let Some(volumes) = recorded.fat.config["config"]["Volumes"].as_object() {
        options.volumes.extend(volumes.keys().cloned());
        options.image_volumes.extend(volumes.keys().cloned());
    }
    let keep = minify::select(&recorded.fat.tree, &recorded.recording, &options);
    let summary = minify::summarize(&recorded.fat.tree, &keep);
    Selected { keep, summary }
}

/// The keep flags, checked.
pub fn options(args: &BuildArgs, input: &Input) -> Result<minify::Options> {
    let volumes = input.volumes.clone();
    let mut include_paths = args.include_path.clone();
    for file in &args.include_path_file {
        include_paths.extend(read_lines(
            file,
            "--include-path-file",
            "give a file with one path per line",
        )?);
    }
    let mut include_bins = args.include_bin.clone();
    for file in &args.include_bin_file {
        include_bins.extend(read_lines(
            file,
            "--include-bin-file",
            "give a file with one path per line",
        )?);
    }
    let mut include_exes = args.include_exe.clone();
    for file in &args.include_exe_file {
        include_exes.extend(read_lines(
            file,
            "--include-exe-file",
            "give a file with one name per line",
        )?);
    }
    let mut preserve_paths = args.preserve_path.clone();
    for file in &args.preserve_path_file {
        preserve_paths.extend(read_lines(
            file,
            "--preserve-path-file",
            "give a file with one path per line",
        )?);
    }
    for group in &args.skip_keep {
        if !minify::DEFAULT_GROUPS.contains(&group.as_str()) {
            return Err(UsageError::new(
                format!("--skip-keep {group}: no such group"),
                format!("groups: {}", minify::DEFAULT_GROUPS.join(", ")),
            )
            .into());
        }
    }
    Ok(minify::Options {
        skip_groups: args.skip_keep.iter().cloned().collect(),
        include_paths,
        preserve_paths,
        include_bins,
        include_exes,
        include_shell: args.include_shell,
        include_cert_all: args.include_cert_all,
        exclude_patterns: args.exclude_pattern.clone(),
        volumes,
        ..Default::default()
    })
}

/// The `--output` destinations, checked.
pub fn outputs(args: &BuildArgs) -> Result<Vec<Output>> {
    Ok(args
        .output
        .iter()
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?)
}
