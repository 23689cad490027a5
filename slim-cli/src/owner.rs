//! Who made a container, a temporary tag or a work dir: the slim process (pid), when it started
//! (so a reused pid is not mistaken for it), the boot it ran in, its pid namespace, its host and
//! the wall-clock time it started. A later slim tells the leftovers of a run that was killed
//! (`kill -9`, the OOM killer, a CI timeout) from what a running slim still uses, and only where
//! it can check: a slim in another pid namespace (a CI job container sharing the host's docker
//! socket) or on another host using the same engine cannot be seen from here, so its work is
//! never taken for dead. Reading /proc is all this module does; it removes nothing.

use std::{collections::HashMap, fs, os::unix::fs::MetadataExt as _, sync::OnceLock};

/// Container label marking what slim made.
pub const LABEL_RUN: &str = "slim.run";
pub const LABEL_PID: &str = "slim.owner.pid";
pub const LABEL_START: &str = "slim.owner.start";
pub const LABEL_BOOT: &str = "slim.owner.boot";
pub const LABEL_PIDNS: &str = "slim.owner.pidns";
pub const LABEL_HOST: &str = "slim.owner.host";
pub const LABEL_SINCE: &str = "slim.owner.since";

/// Repository of the temporary tags a slim image has until it is verified and gets its tag.
pub const WORK_REPO: &str = "slim-work";

/// Most characters of the host name an owner records (the temporary tag holds 128).
const HOST_MAX: usize = 32;

/// The owner of a resource slim made. The last three fields are absent in what a slim
/// before them wrote (their formats stay readable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Start time of the process, in clock ticks since boot (/proc/PID/stat field 22).
    pub start: u64,
    /// /proc/sys/kernel/random/boot_id.
    pub boot: String,
    /// Inode of its pid namespace (/proc/self/ns/pid): `pid` means this process only there.
    pub pidns: Option<u64>,
    /// When it started, in seconds since the Unix epoch (for `slim prune --stale AGE`).
    pub since: Option<u64>,
    /// Its host name (/proc/sys/kernel/hostname), characters a tag cannot hold as `-`, at most
    /// 32 of them: tells a reboot of this host from another host.
    pub host: Option<String>,
}

/// Whether an owner still runs, as far as this process can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// It may run or not: this slim cannot see its process.
    Unchecked(Unchecked),
}

/// Why an owner's liveness cannot be checked from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unchecked {
    /// Another boot id and another host name: another machine using the same engine.
    OtherHost,
    /// Same kernel, another pid namespace (a container, `unshare -p`): its pid means nothing here.
    OtherPidNamespace,
    /// Written by an older slim that did not record its pid namespace (or no owner at all).
    NotRecorded,
}

impl Unchecked {
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherHost => "on another host",
            Self::OtherPidNamespace => "in another pid namespace",
            Self::NotRecorded => "made by an older slim that did not record its pid namespace",
        }
    }
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn pid_namespace() -> Option<u64> {
    fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

fn host_name() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name: String = name
        .trim()
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                true => c,
                false => '-',
            },
        )
        .take(HOST_MAX)
        .collect();
    (!name.is_empty()).then_some(name)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Start time of process `pid` (in this pid namespace), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    /// This process (the same value for its whole life, so every label and tag agree).
    pub fn current() -> Self {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                Self {
                    pid,
                    start: start_time(pid).unwrap_or(0),
                    boot: boot_id(),
                    pidns: pid_namespace(),
                    since: Some(unix_now()),
                    host: host_name(),
                }
            })
            .clone()
    }

    /// Whether the owner still runs, seen from this process.
    pub fn liveness(&self) -> Liveness {
        self.liveness_from(&Self::current(), start_time)
    }

    /// Whether the owner still runs, seen from `here` where `running(pid)` gives the start time
    /// of a process. Checked only on the same boot in the same pid namespace; another boot on
    /// the same host means this host rebooted, so nothing of the owner runs.
    fn liveness_from(&self, here: &Owner, running: impl Fn(u32) -> Option<u64>) -> Liveness {
        if self.boot != here.boot {
            return match self.host.is_some() && self.host == here.host {
                true => Liveness::Dead,
                false => Liveness::Unchecked(Unchecked::OtherHost),
            };
        }
        let same_process = running(self.pid) == Some(self.start);
        match self.pidns {
            Some(ns) if Some(ns) != here.pidns => Liveness::Unchecked(Unchecked::OtherPidNamespace),
            Some(_) if same_process => Liveness::Alive,
            Some(_) => Liveness::Dead,
            // An older slim: alive if its pid here is it, else it may run in another namespace.
            None if same_process => Liveness::Alive,
            None => Liveness::Unchecked(Unchecked::NotRecorded),
        }
    }

    /// Seconds since the owner started, when it says when that was.
    pub fn age_secs(&self, now: u64) -> Option<u64> {
        self.since.map(|since| now.saturating_sub(since))
    }

    /// The container labels naming this owner (and that slim made it).
    pub fn labels(&self) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = [
            (LABEL_RUN, "true".to_owned()),
            (LABEL_PID, self.pid.to_string()),
            (LABEL_START, self.start.to_string()),
            (LABEL_BOOT, self.boot.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let optional = [
            (LABEL_PIDNS, self.pidns.map(|n| n.to_string())),
            (LABEL_SINCE, self.since.map(|s| s.to_string())),
            (LABEL_HOST, self.host.clone()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                labels.insert(key.to_owned(), value);
            }
        }
        labels
    }

    /// The owner named by a container's labels.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            pid: labels.get(LABEL_PID)?.parse().ok()?,
            start: labels.get(LABEL_START)?.parse().ok()?,
            boot: labels.get(LABEL_BOOT)?.clone(),
            pidns: labels.get(LABEL_PIDNS).and_then(|n| n.parse().ok()),
            since: labels.get(LABEL_SINCE).and_then(|s| s.parse().ok()),
            host: labels.get(LABEL_HOST).filter(|h| !h.is_empty()).cloned(),
        })
    }

    /// The temporary tag of an image this owner wrote: `slim-work:PID-START-BOOT.PIDNS.SINCE.HOST`,
    /// the host name shortened when the tag would pass the engine's 128 characters (slims
    /// before the pid namespace was recorded wrote `slim-work:PID-START-BOOT`).
    pub fn work_tag(&self) -> String {
        const MAX_TAG: usize = 128;
        let mut tag = format!("{}-{}-{}", self.pid, self.start, self.boot);
        if let (Some(pidns), Some(since), Some(host)) = (self.pidns, self.since, &self.host) {
            let fixed = format!(".{pidns}.{since}.");
            let room = MAX_TAG.saturating_sub(tag.len() + fixed.len());
            if room > 0 {
                tag.push_str(&fixed);
                tag.extend(host.chars().take(room));
            }
        }
        format!("{WORK_REPO}:{tag}")
    }

    /// The owner named by a temporary tag.
    pub fn from_work_tag(reference: &str) -> Option<Self> {
        let tag = reference.strip_prefix(WORK_REPO)?.strip_prefix(':')?;
        let (head, tail) = match tag.split_once('.') {
            Some((head, tail)) => (head, Some(tail)),
            None => (tag, None),
        };
        let mut parts = head.splitn(3, '-');
        let mut owner = Self {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            boot: parts.next().filter(|b| !b.is_empty())?.to_owned(),
            pidns: None,
            since: None,
            host: None,
        };
        if let Some(tail) = tail {
            let mut parts = tail.splitn(3, '.');
            owner.pidns = Some(parts.next()?.parse().ok()?);
            owner.since = Some(parts.next()?.parse().ok()?);
            owner.host = Some(parts.next().filter(|h| !h.is_empty())?.to_owned());
        }
        Some(owner)
    }

    /// One line for a work dir's owner file: `pid start boot [pidns since host]`.
    pub fn to_line(&self) -> String {
        let mut line = format!("{} {} {}", self.pid, self.start, self.boot);
        if let (Some(pidns), Some(since), Some(host)) = (self.pidns, self.since, &self.host) {
            line.push_str(&format!(" {pidns} {since} {host}"));
        }
        line.push('\n');
        line
    }

    pub fn from_line(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        Some(Self {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            boot: parts.next()?.to_owned(),
            pidns: parts.next().and_then(|n| n.parse().ok()),
            since: parts.next().and_then(|s| s.parse().ok()),
            host: parts.next().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_rebooted_owner_is_not() {
        let me = Owner::current();
        assert!(me.start > 0 && !me.boot.is_empty());
        assert!(me.pidns.is_some() && me.host.is_some() && me.since.is_some());
        assert_eq!(me.liveness(), Liveness::Alive);
        assert_eq!(Owner::from_labels(&me.labels()), Some(me.clone()));
        assert_eq!(Owner::from_line(&me.to_line()), Some(me.clone()));
        assert_eq!(Owner::from_work_tag(&me.work_tag()), Some(me.clone()));
        assert_eq!(Owner::from_work_tag("slim-work:12-34"), None);
        assert_eq!(Owner::from_work_tag("other:12-34-boot"), None);
        assert_eq!(Owner::from_work_tag("slim-work:12-34-boot.x.1.h"), None);
        let reused_pid = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert_eq!(reused_pid.liveness(), Liveness::Dead);
        // Another boot on this host: it rebooted, nothing of the owner runs.
        let rebooted = Owner {
            boot: "another-boot".into(),
            ..me.clone()
        };
        assert_eq!(rebooted.liveness(), Liveness::Dead);
        assert!(Owner::from_labels(&HashMap::new()).is_none());
    }

    #[test]
    fn the_longest_work_tag_fits_the_engine() {
        let longest = Owner {
            pid: 4_194_304,
            start: u64::MAX,
            boot: "8a2f5c1e-9d4b-4e0b-8f7a-1c2d3e4f5a6b".into(),
            pidns: Some(u64::MAX),
            since: Some(u64::MAX),
            host: Some("h".repeat(HOST_MAX)),
        };
        let tag = longest.work_tag();
        let (_, part) = tag.split_once(':').unwrap();
        assert!(part.len() <= 128, "{} characters: {tag}", part.len());
        let read = Owner::from_work_tag(&tag).unwrap();
        assert_eq!((read.pidns, read.since), (longest.pidns, longest.since));
        assert!(longest.host.unwrap().starts_with(&read.host.unwrap()));
    }

    #[test]
    fn only_owners_in_this_pid_namespace_on_this_boot_are_judged() {
        let here = Owner {
            pid: 100,
            start: 5000,
            boot: "boot-a".into(),
            pidns: Some(4026531836),
            since: Some(1),
            host: Some("builder".into()),
        };
        // A slim in a CI job container on the same engine: pid 1 there, and pid 1 here runs
        // (the host's init, another start time). That says nothing about it.
        let in_ci = Owner {
            pid: 1,
            start: 7000,
            pidns: Some(4026532999),
            host: Some("3f2a9c1d0b7e".into()),
            ..here.clone()
        };
        let init_runs = |pid| (pid == 1).then_some(1);
        assert_eq!(
            in_ci.liveness_from(&here, init_runs),
            Liveness::Unchecked(Unchecked::OtherPidNamespace)
        );
        assert_eq!(
            in_ci.liveness_from(&here, |_| None),
            Liveness::Unchecked(Unchecked::OtherPidNamespace)
        );
        // Another machine using the same engine.
        let elsewhere = Owner {
            boot: "boot-b".into(),
            host: Some("other-host".into()),
            ..here.clone()
        };
        assert_eq!(
            elsewhere.liveness_from(&here, |_| None),
            Liveness::Unchecked(Unchecked::OtherHost)
        );
        // What an older slim wrote (no namespace): alive when its pid here is it, else unknown.
        let older = Owner {
            pidns: None,
            since: None,
            host: None,
            ..here.clone()
        };
        assert_eq!(older.liveness_from(&here, |_| Some(5000)), Liveness::Alive);
        assert_eq!(
            older.liveness_from(&here, |_| None),
            Liveness::Unchecked(Unchecked::NotRecorded)
        );
        assert_eq!(
            Owner::from_line("12 34 boot-a\n").map(|o| o.pidns),
            Some(None)
        );
        assert_eq!(
            Owner {
                boot: "boot-b".into(),
                ..older.clone()
            }
            .liveness_from(&here, |_| None),
            Liveness::Unchecked(Unchecked::OtherHost)
        );
        // Same namespace, same boot: checked.
        assert_eq!(here.liveness_from(&here, |_| Some(5000)), Liveness::Alive);
        assert_eq!(here.liveness_from(&here, |_| Some(5001)), Liveness::Dead);
        assert_eq!(here.liveness_from(&here, |_| None), Liveness::Dead);
    }
}
