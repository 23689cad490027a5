//! One build per tag at a time: `slim build` holds an exclusive lock on its tag from start to
//! end, so two builds that target the same tag cannot interleave their tagging. The kernel
//! drops the lock when its holder dies, even by `kill -9`: a stale lock cannot exist.
//!
//! The lock files live where only their owner can write: `/run/slim/locks` for root (one place
//! for every slim on the host, whatever its `SLIM_WORK_DIR`), `$TMPDIR/slim-locks-UID` for
//! anyone else. The dir is made 0700 and refused when another user owns it or others can write
//! it or a parent of it. A lock file is opened without following symlinks, and only a file this
//! slim just created is written: one a killed holder left is removed and made anew, never
//! truncated. Nothing outside the lock dir is created, opened or removed.

use std::{
    ffi::CString,
    fs::File,
    io::{Read as _, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::fs::{DirBuilderExt as _, MetadataExt as _},
    },
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};

use crate::commands::Fault;

/// A held tag lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct TagLock {
    dir: OwnedFd,
    name: CString,
    file: File,
}

/// Where the lock files live: one place for every slim of this user on this host.
fn lock_dir() -> PathBuf {
    match euid() {
        0 => PathBuf::from("/run/slim/locks"),
        uid => std::env::temp_dir().join(format!("slim-locks-{uid}")),
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The lock file's name for `tag`: no `/`, no NUL, no leading dot.
fn lock_name(tag: &str) -> String {
    let name: String = tag
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '+',
        })
        .collect();
    format!("{name}.lock")
}

#[cfg(test)]
fn lock_path(dir: &Path, tag: &str) -> PathBuf {
    dir.join(lock_name(tag))
}

impl TagLock {
    /// Takes the lock of `tag`, or says which slim holds it.
    pub fn acquire(tag: &str) -> Result<Self> {
        Self::acquire_in(&lock_dir(), tag)
    }

    fn acquire_in(dir: &Path, tag: &str) -> Result<Self> {
        let dir_fd = open_lock_dir(dir)?;
        let shown = dir.join(lock_name(tag));
        let name = CString::new(lock_name(tag)).context("a tag lock name holds a NUL byte")?;
        loop {
            let (file, created) = match open_at(&dir_fd, &name, true) {
                Ok(file) => (file, true),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    match open_at(&dir_fd, &name, false) {
                        Ok(file) => (file, false),
                        // Its holder removed it meanwhile: make it.
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(err) if is_not_a_file(&err) => return Err(not_a_lock(&shown)),
                        Err(err) => {
                            return Err(err).with_context(|| {
                                format!("cannot open the tag lock {}", shown.display())
                            })
                        }
                    }
                }
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("cannot create the tag lock {}", shown.display()))
                }
            };
            if !file.metadata()?.file_type().is_file() {
                return Err(not_a_lock(&shown));
            }
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Fault::new(
                        format!("another slim{} is building {tag} right now", holder(&file)),
                        "wait for it to finish, or give this build another --tag",
                    )
                    .into());
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("cannot lock {}", shown.display()));
                }
            }
            // The holder before us may have removed the file after we opened it: then our
            // lock is on an orphan; take the one at the path instead.
            if !at_name(&dir_fd, &name).is_some_and(|(dev, ino)| {
                let ours = file.metadata().ok();
                ours.is_some_and(|m| m.dev() == dev && m.ino() == ino)
            }) {
                continue;
            }
            if !created {
                // Left by a holder that died: ours now, but not ours to write. Made anew.
                unlink_at(&dir_fd, &name)
                    .with_context(|| format!("cannot remove the stale {}", shown.display()))?;
                continue;
            }
            let mut file = file;
            write!(file, "{}", std::process::id())
                .with_context(|| format!("cannot write the tag lock {}", shown.display()))?;
            return Ok(Self {
                dir: dir_fd,
                name,
                file,
            });
        }
    }
}

impl Drop for TagLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody can lock this file and lose it.
        let _ = unlink_at(&self.dir, &self.name);
        let _ = self.file.unlock();
    }
}

/// The pid a holder wrote into its lock file, as ` (pid N)`; empty when it has not yet.
fn holder(file: &File) -> String {
    let mut text = String::new();
    let _ = file.take(20).read_to_string(&mut text);
    match text.trim() {
        pid if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            format!(" (pid {pid})")
        }
        _ => String::new(),
    }
}

/// Makes the lock dir when it is missing (0700, and its missing parents too), checks that no
/// other user can change what is in it, and opens it.
fn open_lock_dir(dir: &Path) -> Result<OwnedFd> {
    let refuse_hint = format!(
        "remove it (`rm -r {}`: it holds only tag locks) and rerun; slim makes it again, 0700",
        dir.display()
    );
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the tag lock dir {}", dir.display()))?;
    let real = dir
        .canonicalize()
        .with_context(|| format!("cannot find the tag lock dir {}", dir.display()))?;
    let me = euid();
    let meta = std::fs::symlink_metadata(&real)
        .with_context(|| format!("cannot read the tag lock dir {}", dir.display()))?;
    if meta.uid() != me {
        return Err(Fault::new(
            format!(
                "the tag lock dir {} is owned by uid {}, not by this user (uid {me})",
                dir.display(),
                meta.uid()
            ),
            refuse_hint,
        )
        .into());
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Fault::new(
            format!(
                "others can write the tag lock dir {} (mode {:o})",
                dir.display(),
                meta.mode() & 0o7777
            ),
            refuse_hint,
        )
        .into());
    }
    // A parent others can write (but for a sticky one such as /tmp) lets them swap the dir.
    for parent in real.ancestors().skip(1) {
        let meta = std::fs::metadata(parent)
            .with_context(|| format!("cannot read {}", parent.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if (meta.uid() != 0 && meta.uid() != me) || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(Fault::new(
                format!(
                    "others can change {}, a parent of the tag lock dir {}",
                    parent.display(),
                    dir.display()
                ),
                "point TMPDIR at a directory only you can write (root's locks are in /run/slim)",
            )
            .into());
        }
    }
    let path = CString::new(real.as_os_str().as_encoded_bytes())
        .context("the tag lock dir's path holds a NUL byte")?;
    // SAFETY: a valid C string; the returned fd is checked and then owned.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot open the tag lock dir {}", dir.display()));
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `name` in `dir` for reading and writing, never through a symlink and never
/// truncating; `create` makes it, failing when something is there already.
fn open_at(dir: &OwnedFd, name: &CString, create: bool) -> std::io::Result<File> {
    let mut flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    if create {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: a valid dir fd and C string; the returned fd is checked and then owned.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// (device, inode) of what `name` in `dir` is now, not following a symlink.
fn at_name(dir: &OwnedFd, name: &CString) -> Option<(u64, u64)> {
    // SAFETY: a zeroed stat is a valid out buffer.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid dir fd, C string and out buffer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut stat,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (rc == 0).then_some((stat.st_dev, stat.st_ino))
}

fn unlink_at(dir: &OwnedFd, name: &CString) -> std::io::Result<()> {
    // SAFETY: a valid dir fd and C string.
    match unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Whether opening failed because the name is a symlink or a directory.
fn is_not_a_file(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EISDIR))
}

fn not_a_lock(path: &Path) -> anyhow::Error {
    Fault::new(
        format!(
            "the tag lock {} is not a lock file slim made (a symlink, or not a regular file)",
            path.display()
        ),
        format!("remove it (`rm {}`) and rerun", path.display()),
    )
    .into()
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
        assert!(lock_path(&lock_dir(), &tag).exists());
        drop(first);
        assert!(
            !lock_path(&lock_dir(), &tag).exists(),
            "the lock file is left behind"
        );
        let again = TagLock::acquire(&tag).unwrap();
        drop(again);
        // Other tags never clash.
        let _a = TagLock::acquire(&format!("{tag}-a")).unwrap();
        let _b = TagLock::acquire(&format!("{tag}-b")).unwrap();
    }

    /// A fresh directory for one test (removed at its end) and a lock dir in it, 0700.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            use std::os::unix::fs::PermissionsExt as _;
            let root = std::env::temp_dir()
                .join(format!("slim-tag-lock-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir(&root).unwrap();
            let scratch = Self(root);
            std::fs::create_dir(scratch.locks()).unwrap();
            std::fs::set_permissions(scratch.locks(), std::fs::Permissions::from_mode(0o700))
                .unwrap();
            scratch
        }

        fn locks(&self) -> PathBuf {
            self.0.join("locks")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refusal(dir: &std::path::Path, tag: &str) -> String {
        match TagLock::acquire_in(dir, tag) {
            Ok(_) => panic!("the lock of {tag} in {} was taken", dir.display()),
            Err(err) => format!("{err:#}"),
        }
    }

    /// Another user's symlink named like the lock (pointing at /etc/shadow, say) must not
    /// make slim truncate or write its target.
    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_left_whole() {
        let scratch = Scratch::new("symlink");
        let target = scratch.0.join("precious");
        std::fs::write(&target, "not yours to truncate").unwrap();
        let tag = "app:slim";
        std::os::unix::fs::symlink(&target, lock_path(&scratch.locks(), tag)).unwrap();
        let err = refusal(&scratch.locks(), tag);
        assert!(err.contains("is not a lock file slim made"), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "not yours to truncate"
        );
    }

    /// A lock dir others can write (as `/tmp/.slim-tag-locks` was, 1777) is refused, and
    /// nothing is created or opened in it.
    #[test]
    fn a_lock_dir_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let scratch = Scratch::new("writable");
        let dir = scratch.locks();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = refusal(&dir, "app:slim");
        assert!(err.contains("others can write"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert!(!lock_path(&dir, "app:slim").exists());
    }

    /// A lock dir another user owns is refused: its owner could swap the lock files.
    #[test]
    fn a_lock_dir_owned_by_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping a_lock_dir_owned_by_another_user_is_refused: needs root to chown");
            return;
        }
        let scratch = Scratch::new("foreign");
        let dir = scratch.locks();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = refusal(&dir, "app:slim");
        assert!(err.contains("is owned by uid 65534"), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert!(!lock_path(&dir, "app:slim").exists());
    }

    /// A lock file slim did not just create (left by a killed holder) is replaced, never
    /// truncated: another name of the same file keeps its content.
    #[test]
    fn a_stale_lock_file_is_replaced_not_truncated() {
        let scratch = Scratch::new("stale");
        let tag = "app:slim";
        let stale = lock_path(&scratch.locks(), tag);
        std::fs::write(&stale, "4242").unwrap();
        let other_name = scratch.0.join("other-name");
        std::fs::hard_link(&stale, &other_name).unwrap();
        let lock = TagLock::acquire_in(&scratch.locks(), tag).unwrap();
        assert_eq!(std::fs::read_to_string(&other_name).unwrap(), "4242");
        assert_eq!(
            std::fs::read_to_string(&stale).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!stale.exists());
    }
}
