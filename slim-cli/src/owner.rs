//! Who made a container or a work dir: the slim process (pid), when it started (so a reused pid
//! is not mistaken for it) and the boot it ran in. A later slim tells the leftovers of a run that
//! was killed (`kill -9`, the OOM killer, a CI timeout) from what a running slim still uses.

use std::{collections::HashMap, fs};

/// Container label marking what slim made.
pub const LABEL_RUN: &str = "slim.run";
pub const LABEL_PID: &str = "slim.owner.pid";
pub const LABEL_START: &str = "slim.owner.start";
pub const LABEL_BOOT: &str = "slim.owner.boot";

/// Repository of the temporary tags a slim image has until it is verified and gets its tag.
pub const WORK_REPO: &str = "slim-work";

/// The owner of a resource slim made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Start time of the process, in clock ticks since boot (/proc/PID/stat field 22).
    pub start: u64,
    /// /proc/sys/kernel/random/boot_id.
    pub boot: String,
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Start time of process `pid`, if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start: start_time(pid).unwrap_or(0),
            boot: boot_id(),
        }
    }

    /// Whether the owner still runs: same boot, and its pid is the same process.
    pub fn alive(&self) -> bool {
        self.boot == boot_id() && start_time(self.pid) == Some(self.start)
    }

    /// The container labels naming this owner (and that slim made it).
    pub fn labels(&self) -> HashMap<String, String> {
        [
            (LABEL_RUN, "true".to_owned()),
            (LABEL_PID, self.pid.to_string()),
            (LABEL_START, self.start.to_string()),
            (LABEL_BOOT, self.boot.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The owner named by a container's labels.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            pid: labels.get(LABEL_PID)?.parse().ok()?,
            start: labels.get(LABEL_START)?.parse().ok()?,
            boot: labels.get(LABEL_BOOT)?.clone(),
        })
    }

    /// The temporary tag of an image this owner wrote: `slim-work:PID-START-BOOT`.
    pub fn work_tag(&self) -> String {
        format!("{WORK_REPO}:{}-{}-{}", self.pid, self.start, self.boot)
    }

    /// The owner named by a temporary tag.
    pub fn from_work_tag(reference: &str) -> Option<Self> {
        let tag = reference.strip_prefix(WORK_REPO)?.strip_prefix(':')?;
        let mut parts = tag.splitn(3, '-');
        Some(Self {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            boot: parts.next().filter(|b| !b.is_empty())?.to_owned(),
        })
    }

    /// One line for a work dir's owner file: `pid start boot`.
    pub fn to_line(&self) -> String {
        format!("{} {} {}\n", self.pid, self.start, self.boot)
    }

    pub fn from_line(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        Some(Self {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            boot: parts.next()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_other_boot_owner_is_not() {
        let me = Owner::current();
        assert!(me.start > 0 && !me.boot.is_empty());
        assert!(me.alive());
        assert_eq!(Owner::from_labels(&me.labels()), Some(me.clone()));
        assert_eq!(Owner::from_line(&me.to_line()), Some(me.clone()));
        assert_eq!(Owner::from_work_tag(&me.work_tag()), Some(me.clone()));
        assert!(me.work_tag().len() <= 128 + WORK_REPO.len() + 1);
        assert_eq!(Owner::from_work_tag("slim-work:12-34"), None);
        assert_eq!(Owner::from_work_tag("other:12-34-boot"), None);
        let reused_pid = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!reused_pid.alive());
        let other_boot = Owner {
            boot: "another-boot".into(),
            ..me.clone()
        };
        assert!(!other_boot.alive());
        assert!(Owner::from_labels(&HashMap::new()).is_none());
    }
}
