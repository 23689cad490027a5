//! Lexical path handling for recorded paths. `..` is kept: only the file tree the path is
//! resolved in (with its symlinks) can say where it leads.

use std::path::{Component, Path, PathBuf};

/// Removes `.` components and repeated or trailing slashes; keeps `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `relative` joined onto the absolute directory `base`, normalized.
pub fn absolute(base: &Path, relative: &Path) -> PathBuf {
    normalize(&base.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_and_slashes() {
        assert_eq!(
            normalize(Path::new("/usr//share/./x/")),
            Path::new("/usr/share/x")
        );
        assert_eq!(normalize(Path::new("/a/../b")), Path::new("/a/../b"));
        assert_eq!(
            absolute(
                Path::new("/usr/share"),
                Path::new("./common-licenses/GPL-3")
            ),
            Path::new("/usr/share/common-licenses/GPL-3")
        );
        assert_eq!(
            absolute(Path::new("/x"), Path::new("/etc/hosts")),
            Path::new("/etc/hosts")
        );
    }
}
