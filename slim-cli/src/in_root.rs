//! Opening a file inside another root (a running container's `/proc/PID/root`) as a process
//! of that root would see it: absolute symlinks and `..` resolve against that root, never
//! against the host's. `openat2(RESOLVE_IN_ROOT)` where the kernel has it (5.6+); elsewhere,
//! or when a seccomp filter denies it, a walk one component at a time that reads each symlink
//! itself and never opens anything through a link. Opens for reading only.

use std::{
    ffi::{CString, OsStr, OsString},
    fs::File,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Component, Path},
};

/// Symlinks followed per open before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Opens `path` (absolute or not, it starts at the root) for reading, resolved inside `root`.
pub fn open(root: &Path, path: &Path) -> io::Result<File> {
    let root = open_dir(root)?;
    match openat2_in_root(&root, path) {
        Err(err) if fall_back(&err) => walk(&root, path),
        result => result,
    }
}

/// Whether openat2 is missing or refused (old kernel, seccomp), so the walk must do it.
fn fall_back(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG | libc::EAGAIN)
    )
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let fd = openat(
        libc::AT_FDCWD,
        dir.as_os_str(),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )?;
    Ok(fd)
}

fn openat(dir: libc::c_int, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = c_string(name)?;
    // SAFETY: a valid C string; the returned fd is checked and then owned.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn c_string(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Flags of the final open: read only, and a FIFO or device does not block it.
const READ_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// `struct open_how` of linux/openat2.h (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2_in_root(root: &OwnedFd, path: &Path) -> io::Result<File> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let name = c_string(if relative.as_os_str().is_empty() {
        OsStr::new(".")
    } else {
        relative.as_os_str()
    })?;
    let how = OpenHow {
        flags: READ_FLAGS as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: a valid dir fd, C string and open_how of the size passed; the returned fd is
    // checked and then owned.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd as libc::c_int) })
}

/// The walk: a stack of the directories entered (the root at the bottom, never popped), the
/// components still to resolve, and each symlink's target read and resolved in their place.
fn walk(root: &OwnedFd, path: &Path) -> io::Result<File> {
    let mut dirs: Vec<OwnedFd> = vec![root.try_clone()?];
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let here = dirs.last().map_or(root.as_raw_fd(), |d| d.as_raw_fd());
        if let Some(target) = read_link(here, &name)? {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = Path::new(OsStr::from_bytes(&target));
            if target.is_absolute() {
                dirs.truncate(1);
            }
            push_components(&mut pending, target);
            continue;
        }
        // Not a link a moment ago; O_NOFOLLOW refuses one that appeared since.
        if pending.is_empty() {
            let fd = openat(here, &name, READ_FLAGS | libc::O_NOFOLLOW)?;
            return Ok(File::from(fd));
        }
        let fd = openat(
            here,
            &name,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )?;
        dirs.push(fd);
    }
    // The path named the root itself (or resolved back to it).
    let here = dirs.last().map_or(root.as_raw_fd(), |d| d.as_raw_fd());
    Ok(File::from(openat(here, OsStr::new("."), READ_FLAGS)?))
}

/// Pushes `path`'s components so that the first is popped first (`.` and `/` dropped).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// The target of `name` in `dir` when it is a symlink; `None` when it is something else.
fn read_link(dir: libc::c_int, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    let c_name = c_string(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid dir fd, C string and buffer of the length passed.
    let n = unsafe {
        libc::readlinkat(
            dir,
            c_name.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINVAL) => Ok(None),
            _ => Err(err),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with an absolute symlink out of it, a relative one, `..` past the top, and a
    /// host file of the same name as one inside: the root's own files are read, never the
    /// host's.
    struct Fixture(std::path::PathBuf);

    impl Fixture {
        fn new(name: &str) -> Self {
            let base =
                std::env::temp_dir().join(format!("slim-in-root-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("root");
            // The host-only file the absolute links name, outside the root.
            let host = base.join("host");
            std::fs::create_dir_all(&host).unwrap();
            std::fs::write(host.join("tool"), "host").unwrap();
            // Inside the root, the same path (relative to the root) holds the root's own file.
            let inside = root.join(host.strip_prefix("/").unwrap());
            std::fs::create_dir_all(&inside).unwrap();
            std::fs::write(inside.join("tool"), "container").unwrap();
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::os::unix::fs::symlink(host.join("tool"), root.join("bin/abs")).unwrap();
            std::os::unix::fs::symlink("../../../../../../../../bin/abs", root.join("bin/up"))
                .unwrap();
            std::os::unix::fs::symlink(&host, root.join("bin/dir")).unwrap();
            std::os::unix::fs::symlink("loop", root.join("bin/loop")).unwrap();
            Self(base)
        }

        fn root(&self) -> std::path::PathBuf {
            self.0.join("root")
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read(file: io::Result<File>) -> String {
        io::read_to_string(file.unwrap()).unwrap()
    }

    #[test]
    fn links_resolve_inside_the_root_by_either_way() {
        let fixture = Fixture::new("both");
        let root_fd = open_dir(&fixture.root()).unwrap();
        for path in ["/bin/abs", "bin/up", "/bin/dir/tool", "/../../bin/abs"] {
            let path = Path::new(path);
            assert_eq!(read(walk(&root_fd, path)), "container", "walk {path:?}");
            match openat2_in_root(&root_fd, path) {
                Err(err) if fall_back(&err) => eprintln!("openat2 not here: {err}"),
                file => assert_eq!(read(file), "container", "openat2 {path:?}"),
            }
            assert_eq!(read(open(&fixture.root(), path)), "container", "{path:?}");
        }
        let err = walk(&root_fd, Path::new("/bin/loop")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        let err = walk(&root_fd, Path::new("/bin/missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
