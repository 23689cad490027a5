//! Leftovers of slim runs that were killed (`kill -9`, the OOM killer, a CI timeout): their
//! containers (labelled `slim.run` with their owner) and work dirs (an owner file inside).
//! `slim build`, `profile` and `trace --container` reap them at start; `slim prune` on demand.
//! What a running slim owns, and what slim did not make, is never touched.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;

use crate::{
    cli::PruneArgs,
    engine::Engine,
    owner::{Owner, LABEL_RUN, WORK_REPO},
};

use super::pipeline::{WorkDir, OWNER_FILE};

/// What a reap found (and, unless a dry run, removed).
#[derive(Debug, Default)]
pub struct Reaped {
    pub containers: Vec<String>,
    /// Temporary tags of slim images that were never verified.
    pub images: Vec<String>,
    pub work_dirs: Vec<PathBuf>,
    /// Pids of the slim runs they belonged to.
    pub owners: Vec<u32>,
}

impl Reaped {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.images.is_empty() && self.work_dirs.is_empty()
    }

    /// `2 containers and 1 work dir of slim runs that no longer run (pid 4242)`.
    pub fn describe(&self) -> String {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let mut owners = self.owners.clone();
        owners.sort_unstable();
        owners.dedup();
        let pids: Vec<String> = owners.iter().map(u32::to_string).collect();
        let mut parts = vec![plural(self.containers.len(), "container")];
        if !self.images.is_empty() {
            parts.push(plural(self.images.len(), "unverified image"));
        }
        parts.push(plural(self.work_dirs.len(), "work dir"));
        let last = parts.pop().unwrap_or_default();
        let listed = match parts.is_empty() {
            true => last,
            false => format!("{} and {last}", parts.join(", ")),
        };
        format!(
            "{listed} of slim runs that no longer run (pid {})",
            pids.join(", ")
        )
    }
}

/// Finds the leftovers of dead slim runs; removes them unless `dry_run`.
pub async fn reap(engine: &Engine, dry_run: bool) -> Result<Reaped> {
    let mut reaped = Reaped::default();
    for (id, labels) in engine.containers_labelled(LABEL_RUN).await? {
        // Made by a slim without owner labels (an older one): nothing proves an owner lives.
        let owner = Owner::from_labels(&labels);
        if owner.as_ref().is_some_and(Owner::alive) {
            continue;
        }
        if !dry_run {
            engine.remove_container(&id).await?;
        }
        reaped.owners.extend(owner.map(|o| o.pid));
        reaped.containers.push(id[..id.len().min(12)].to_owned());
    }
    for reference in engine.references_of(WORK_REPO).await? {
        let Some(owner) = Owner::from_work_tag(&reference) else {
            continue;
        };
        if owner.alive() {
            continue;
        }
        if !dry_run {
            engine.untag_image(&reference).await?;
        }
        reaped.owners.push(owner.pid);
        reaped.images.push(reference);
    }
    let base = WorkDir::base();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only slim's own: slim-PID-NANOS, a real directory (not a symlink), owner file inside.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || !name.starts_with("slim-") {
                continue;
            }
            let Some(owner) = std::fs::read_to_string(path.join(OWNER_FILE))
                .ok()
                .and_then(|line| Owner::from_line(&line))
            else {
                continue;
            };
            if owner.alive() {
                continue;
            }
            if !dry_run {
                std::fs::remove_dir_all(&path)?;
            }
            reaped.owners.push(owner.pid);
            reaped.work_dirs.push(path);
        }
    }
    Ok(reaped)
}

/// At the start of a run: reap, and say so in one line. A failure only warns.
pub async fn reap_at_start(engine: &Engine) {
    match reap(engine, false).await {
        Ok(reaped) if !reaped.is_empty() => eprintln!("slim: removed {}", reaped.describe()),
        Ok(_) => {}
        Err(err) => tracing::warn!("could not check for leftovers of earlier slim runs: {err:#}"),
    }
}

/// `slim prune [--dry-run]`.
pub async fn run(args: PruneArgs) -> Result<ExitCode> {
    let engine = Engine::connect().await?;
    let reaped = reap(&engine, args.dry_run).await?;
    if reaped.is_empty() {
        println!("nothing to prune: no leftovers of slim runs that no longer run");
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for id in &reaped.containers {
        println!("{verb} container {id}");
    }
    for image in &reaped.images {
        println!("{verb} unverified image {image}");
    }
    for dir in &reaped.work_dirs {
        println!("{verb} work dir {}", dir.display());
    }
    println!("{verb} {}", reaped.describe());
    Ok(ExitCode::SUCCESS)
}
