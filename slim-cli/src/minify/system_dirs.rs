//! The system's own directories (the FHS skeleton), shared by the rules that must never treat
//! one of them as an app's tree or as a state tree.

use std::path::Path;

/// Directories of the system, not of an app (tree paths: no leading `/`).
const SYSTEM_DIRS: &[&str] = &[
    "",
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "media",
    "mnt",
    "opt",
    "proc",
    "root",
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/games",
    "usr/include",
    "usr/lib",
    "usr/lib32",
    "usr/lib64",
    "usr/libexec",
    "usr/local",
    "usr/local/bin",
    "usr/local/games",
    "usr/local/include",
    "usr/local/lib",
    "usr/local/libexec",
    "usr/local/sbin",
    "usr/local/share",
    "usr/sbin",
    "usr/share",
    "usr/src",
    "var",
    "var/backups",
    "var/cache",
    "var/lib",
    "var/local",
    "var/log",
    "var/mail",
    "var/opt",
    "var/spool",
    "var/tmp",
];

/// Directories that hold served content (`/srv`, `/var/www`): an app's own tree when it runs
/// from there, but never one state tree as a whole.
pub const SERVED_DIRS: &[&str] = &["srv", "var/www"];

/// Whether `path` (a tree path) is one of the system's directories, multiarch library
/// directories (`usr/lib/x86_64-linux-gnu`) included.
pub fn is_system_dir(path: &Path) -> bool {
    let text = path.to_string_lossy();
    SYSTEM_DIRS.contains(&text.as_ref())
        || (path.parent() == Some(Path::new("usr/lib"))
            && (text.ends_with("-linux-gnu")
                || text.ends_with("-linux-gnueabihf")
                || text.ends_with("-linux-musl")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skeleton_and_multiarch_dirs_are_the_systems() {
        for dir in ["", "usr/lib", "var/lib", "usr/local/sbin", "var/mail"] {
            assert!(is_system_dir(Path::new(dir)), "{dir}");
        }
        assert!(is_system_dir(Path::new("usr/lib/x86_64-linux-gnu")));
        assert!(is_system_dir(Path::new("usr/lib/arm-linux-gnueabihf")));
        for dir in ["app", "srv", "var/lib/postgresql", "usr/lib/python3.11"] {
            assert!(!is_system_dir(Path::new(dir)), "{dir}");
        }
    }
}
