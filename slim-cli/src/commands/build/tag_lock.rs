//! One build per tag at a time: `slim build` holds an exclusive lock on its tag from start to
//! end, so two builds that target the same tag cannot interleave their tagging. The kernel
//! drops the lock when its holder dies, even by `kill -9`: a stale lock cannot exist.

use std::{fs::File, io::Write as _, os::unix::fs::MetadataExt as _, path::PathBuf};

use anyhow::{Context as _, Result};

use crate::commands::Fault;

/// A held tag lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct TagLock {
    path: PathBuf,
    file: File,
}

/// Where the lock files live: one place for every slim on this host, whatever its
/// `SLIM_WORK_DIR`.
fn lock_dir() -> PathBuf {
    std::env::temp_dir().join(".slim-tag-locks")
}

fn lock_path(tag: &str) -> PathBuf {
    let name: String = tag
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '+',
        })
        .collect();
    lock_dir().join(format!("{name}.lock"))
}

impl TagLock {
    /// Takes the lock of `tag`, or says which slim holds it.
    pub fn acquire(tag: &str) -> Result<Self> {
        let dir = lock_dir();
        if std::fs::create_dir(&dir).is_ok() {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
        }
        let path = lock_path(tag);
        loop {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot open the tag lock {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = match holder.trim() {
                        "" => String::new(),
                        pid => format!(" (pid {pid})"),
                    };
                    return Err(Fault::new(
                        format!("another slim{holder} is building {tag} right now"),
                        "wait for it to finish, or give this build another --tag",
                    )
                    .into());
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            // The holder before us may have removed the file after we opened it: then our
            // lock is on an orphan; take the one at the path instead.
            let same = std::fs::metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(at_path, ours)| {
                    at_path.ino() == ours.ino() && at_path.dev() == ours.dev()
                });
            if !same {
                continue;
            }
            file.set_len(0)?;
            write!(file, "{}", std::process::id())?;
            return Ok(Self { path, file });
        }
    }
}

impl Drop for TagLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody can lock this file and lose it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_a_tag_is_refused_until_the_first_is_released() {
        let tag = format!("slim-test/lock-unit:{}", std::process::id());
        let first = TagLock::acquire(&tag).unwrap();
        let second = TagLock::acquire(&tag).unwrap_err().to_string();
        assert!(
            second.contains(&format!(
                "another slim (pid {}) is building",
                std::process::id()
            )),
            "{second}"
        );
        assert!(lock_path(&tag).exists());
        drop(first);
        assert!(!lock_path(&tag).exists(), "the lock file is left behind");
        let again = TagLock::acquire(&tag).unwrap();
        drop(again);
        // Other tags never clash.
        let _a = TagLock::acquire(&format!("{tag}-a")).unwrap();
        let _b = TagLock::acquire(&format!("{tag}-b")).unwrap();
    }
}
