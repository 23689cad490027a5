//! Leftovers of slim runs that were killed (`kill -9`, the OOM killer, a CI timeout): their
//! containers (labelled `slim.run` with their owner), temporary tags and work dirs (an owner
//! file inside). `slim build`, `profile` and `trace --container` reap them at start; `slim
//! prune` on demand. What a running slim owns, and what slim did not make, is never touched;
//! what a slim this one cannot check made (another pid namespace, another host) is left, with
//! a note, until `slim prune --stale AGE` finds it older than AGE.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Result;

use crate::{
    cli::PruneArgs,
    engine::Engine,
    owner::{Liveness, Owner, Unchecked, LABEL_RUN, WORK_REPO},
};

use super::{
    build::Console,
    pipeline::{WorkDir, OWNER_FILE},
};

/// What a reap found (and, unless a dry run, removed), and what it left.
#[derive(Debug, Default)]
pub struct Reaped {
    pub containers: Vec<String>,
    /// Networks and volumes a Compose build started (`--compose-file`).
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Temporary tags of slim images that were never verified.
    pub images: Vec<String>,
    pub work_dirs: Vec<PathBuf>,
    /// Pids of the slim runs they belonged to.
    pub owners: Vec<u32>,
    /// What belongs to slim runs whose liveness this slim cannot check, left in place.
    pub left: Vec<Left>,
}

/// What slim makes and reaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Container,
    Network,
    Volume,
    /// A temporary tag of a slim image that was never verified.
    Image,
    WorkDir,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Image => "unverified image",
            Self::WorkDir => "work dir",
        }
    }
}

/// A resource of a slim run this slim cannot check, left in place.
#[derive(Debug)]
pub struct Left {
    pub kind: Kind,
    /// Its short id, tag or path.
    pub name: String,
    /// The owner's pid (in its own namespace), when it is known.
    pub pid: Option<u32>,
    pub why: Unchecked,
}

/// How a reap treats what it cannot check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Only list what would be removed.
    pub dry_run: bool,
    /// Also remove what slim runs this slim cannot check made, once their owner started this
    /// long ago (or does not say when: an older slim made it).
    pub stale: Option<Duration>,
}

fn plural(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// `a, b and c`.
fn listing(mut parts: Vec<String>) -> String {
    let last = parts.pop().unwrap_or_default();
    match parts.is_empty() {
        true => last,
        false => format!("{} and {last}", parts.join(", ")),
    }
}

impl Reaped {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.images.is_empty()
            && self.work_dirs.is_empty()
    }

    /// `2 containers and 1 work dir of slim runs that no longer run (pid 4242)`.
    pub fn describe(&self) -> String {
        let mut owners = self.owners.clone();
        owners.sort_unstable();
        owners.dedup();
        let pids: Vec<String> = owners.iter().map(u32::to_string).collect();
        let mut parts = vec![plural(self.containers.len(), "container")];
        if !self.volumes.is_empty() {
            parts.push(plural(self.volumes.len(), "volume"));
        }
        if !self.networks.is_empty() {
            parts.push(plural(self.networks.len(), "network"));
        }
        if !self.images.is_empty() {
            parts.push(plural(self.images.len(), "unverified image"));
        }
        parts.push(plural(self.work_dirs.len(), "work dir"));
        format!(
            "{} of slim runs that no longer run (pid {})",
            listing(parts),
            pids.join(", ")
        )
    }

    /// One line on what was left and why, when something was: `left 1 container of a slim
    /// run in another pid namespace (pid 1 there): this slim cannot tell whether it still
    /// runs; `slim prune --stale AGE` removes such leftovers once older than AGE`.
    pub fn describe_left(&self) -> Option<String> {
        if self.left.is_empty() {
            return None;
        }
        let count = |kind: Kind| self.left.iter().filter(|l| l.kind == kind).count();
        let parts: Vec<String> = [
            Kind::Container,
            Kind::Volume,
            Kind::Network,
            Kind::Image,
            Kind::WorkDir,
        ]
        .into_iter()
        .filter(|&kind| count(kind) > 0)
        .map(|kind| plural(count(kind), kind.noun()))
        .collect();
        let mut whys: Vec<Unchecked> = self.left.iter().map(|l| l.why).collect();
        whys.sort_unstable();
        whys.dedup();
        let whys: Vec<String> = whys
            .into_iter()
            .map(|why| {
                let mut pids: Vec<String> = self
                    .left
                    .iter()
                    .filter(|l| l.why == why)
                    .filter_map(|l| l.pid.map(|p| p.to_string()))
                    .collect();
                pids.sort_unstable();
                pids.dedup();
                match pids.is_empty() {
                    true => why.describe().to_owned(),
                    false => format!("{} (pid {} there)", why.describe(), pids.join(", ")),
                }
            })
            .collect();
        Some(format!(
            "left {} of slim runs {}: this slim cannot tell whether they still run; \
             `slim prune --stale AGE` removes such leftovers once older than AGE",
            listing(parts),
            listing(whys)
        ))
    }
}

/// Whether an owner's work goes: dead, or unchecked and stale. `Err` says why it stays.
fn judge(owner: Option<&Owner>, options: Options, now: u64) -> Result<bool, Unchecked> {
    let liveness = owner.map_or(Liveness::Unchecked(Unchecked::NotRecorded), Owner::liveness);
    match liveness {
        Liveness::Alive => Ok(false),
        Liveness::Dead => Ok(true),
        Liveness::Unchecked(why) => {
            let age = owner.and_then(|o| o.age_secs(now));
            match options.stale {
                Some(stale) if age.is_none_or(|age| age >= stale.as_secs()) => Ok(true),
                _ => Err(why),
            }
        }
    }
}

impl Reaped {
    /// Whether a resource of a slim run goes, as `judge` finds; one that stays because its
    /// owner cannot be checked is noted in `left` as `name`, with the owner's pid and why.
    fn goes(
        &mut self,
        kind: Kind,
        name: impl std::fmt::Display,
        owner: Option<&Owner>,
        options: Options,
        now: u64,
    ) -> bool {
        match judge(owner, options, now) {
            Ok(goes) => goes,
            Err(why) => {
                self.left.push(Left {
                    kind,
                    name: name.to_string(),
                    pid: owner.map(|o| o.pid),
                    why,
                });
                false
            }
        }
    }
}

/// Finds the leftovers of dead slim runs (and, with `--stale`, of old ones this slim cannot
/// check); removes them unless a dry run.
pub async fn reap(engine: &Engine, options: Options) -> Result<Reaped> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut reaped = Reaped::default();
    for (id, labels) in engine.containers_labelled(LABEL_RUN).await? {
        let owner = Owner::from_labels(&labels);
        let short = id[..id.len().min(12)].to_owned();
        if !reaped.goes(Kind::Container, &short, owner.as_ref(), options, now) {
            continue;
        }
        if !options.dry_run {
            engine.remove_container(&id).await?;
        }
        reaped.owners.extend(owner.map(|o| o.pid));
        reaped.containers.push(short);
    }
    // Then what those containers used: volumes, and the networks last.
    for (name, labels) in engine.volumes_labelled(LABEL_RUN).await? {
        let owner = Owner::from_labels(&labels);
        if !reaped.goes(Kind::Volume, &name, owner.as_ref(), options, now) {
            continue;
        }
        if !options.dry_run {
            engine.remove_volume(&name).await?;
        }
        reaped.owners.extend(owner.map(|o| o.pid));
        reaped.volumes.push(name);
    }
    for (name, labels) in engine.networks_labelled(LABEL_RUN).await? {
        let owner = Owner::from_labels(&labels);
        if !reaped.goes(Kind::Network, &name, owner.as_ref(), options, now) {
            continue;
        }
        if !options.dry_run {
            engine.remove_network(&name).await?;
        }
        reaped.owners.extend(owner.map(|o| o.pid));
        reaped.networks.push(name);
    }
    for reference in engine.references_of(WORK_REPO).await? {
        // A `slim-work` tag that names no owner is not slim's.
        let Some(owner) = Owner::from_work_tag(&reference) else {
            continue;
        };
        if !reaped.goes(Kind::Image, &reference, Some(&owner), options, now) {
            continue;
        }
        if !options.dry_run {
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
            if !reaped.goes(Kind::WorkDir, path.display(), Some(&owner), options, now) {
                continue;
            }
            if !options.dry_run {
                std::fs::remove_dir_all(&path)?;
            }
            reaped.owners.push(owner.pid);
            reaped.work_dirs.push(path);
        }
    }
    Ok(reaped)
}

/// At the start of a run: reap, and say so in one line (and in one more what was left and
/// why). A failure only warns.
pub async fn reap_at_start(engine: &Engine, console: Console) {
    match reap(engine, Options::default()).await {
        Ok(reaped) => {
            if !reaped.is_empty() {
                console.say(format!("slim: removed {}", reaped.describe()));
            }
            if let Some(left) = reaped.describe_left() {
                console.say(format!("slim: {left}"));
            }
        }
        Err(err) => tracing::warn!("could not check for leftovers of earlier slim runs: {err:#}"),
    }
}

/// `slim prune [--dry-run] [--stale AGE]`.
pub async fn run(args: PruneArgs) -> Result<ExitCode> {
    let engine = Engine::connect().await?;
    let options = Options {
        dry_run: args.dry_run,
        stale: args.stale,
    };
    let reaped = reap(&engine, options).await?;
    for left in &reaped.left {
        let pid = left
            .pid
            .map(|p| format!(", pid {p} there"))
            .unwrap_or_default();
        println!(
            "left {} {} (owner {}{pid})",
            left.kind.noun(),
            left.name,
            left.why.describe()
        );
    }
    if let Some(left) = reaped.describe_left() {
        println!("{left}");
    }
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
    for volume in &reaped.volumes {
        println!("{verb} volume {volume}");
    }
    for network in &reaped.networks {
        println!("{verb} network {network}");
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

/// `--stale AGE`: `90s`, `30m`, `12h`, `7d`, or plain seconds.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is not an age: give 90s, 30m, 12h or 7d")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an age: give 90s, 30m, 12h or 7d"))?;
    Ok(Duration::from_secs(number.saturating_mul(scale)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "h", "1w", "-1h", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_cannot_be_checked_stays_until_stale() {
        let here = Owner::current();
        let in_ci = Owner {
            pid: 1,
            pidns: here.pidns.map(|n| n + 1),
            since: Some(1_000),
            ..here.clone()
        };
        let keep = Options::default();
        assert_eq!(
            judge(Some(&in_ci), keep, 1_060),
            Err(Unchecked::OtherPidNamespace)
        );
        let stale = |secs| Options {
            stale: Some(Duration::from_secs(secs)),
            ..keep
        };
        assert_eq!(
            judge(Some(&in_ci), stale(120), 1_060),
            Err(Unchecked::OtherPidNamespace)
        );
        assert_eq!(judge(Some(&in_ci), stale(60), 1_060), Ok(true));
        // No owner labels at all: left, then gone with --stale (its age is unknown).
        assert_eq!(judge(None, keep, 1_060), Err(Unchecked::NotRecorded));
        assert_eq!(judge(None, stale(3600), 1_060), Ok(true));
        // A live owner stays whatever --stale says.
        assert_eq!(judge(Some(&here), stale(0), u64::MAX), Ok(false));

        let reaped = Reaped {
            left: vec![
                Left {
                    kind: Kind::Container,
                    name: "3f2a9c1d0b7e".into(),
                    pid: Some(1),
                    why: Unchecked::OtherPidNamespace,
                },
                Left {
                    kind: Kind::Image,
                    name: "slim-work:1-2-b.3.4.h".into(),
                    pid: Some(1),
                    why: Unchecked::OtherPidNamespace,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            reaped.describe_left().unwrap(),
            "left 1 container and 1 unverified image of slim runs in another pid namespace \
             (pid 1 there): this slim cannot tell whether they still run; `slim prune --stale \
             AGE` removes such leftovers once older than AGE"
        );
        assert_eq!(Reaped::default().describe_left(), None);
    }

    /// What a killed Compose build left is named with the containers.
    #[test]
    fn networks_and_volumes_are_named() {
        let reaped = Reaped {
            containers: vec!["3f2a9c1d0b7e".into(), "0b7e3f2a9c1d".into()],
            volumes: vec!["slim-shop-42-1-pgdata".into()],
            networks: vec!["slim-shop-42-1".into()],
            owners: vec![42],
            ..Default::default()
        };
        assert!(!reaped.is_empty());
        assert_eq!(
            reaped.describe(),
            "2 containers, 1 volume, 1 network and 0 work dirs of slim runs that no longer run \
             (pid 42)"
        );
        let only_a_network = Reaped {
            networks: vec!["slim-shop-42-1".into()],
            ..Default::default()
        };
        assert!(!only_a_network.is_empty(), "a network alone is a leftover");
    }
}
