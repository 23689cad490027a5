//! Resolving a path inside an image's own tree, one component at a time, the way the kernel
//! would inside the container: symlinks (absolute ones from the image root) are followed and
//! remembered, `..` never climbs above the root, and nothing on the host is ever touched.

use std::path::{Component, Path, PathBuf};

use crate::image::tree::{FileTree, Kind};

/// Symlinks followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Where a path leads in the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The entry reached (tree path, relative), if the whole path resolves.
    pub target: Option<PathBuf>,
    /// Every symlink traversed on the way (tree paths), in order.
    pub links: Vec<PathBuf>,
}

/// Resolves `path` (absolute, as the app named it) in `tree`. The final component is followed
/// too when it is a symlink.
pub fn resolve(tree: &FileTree, path: &Path) -> Resolution {
    let mut resolution = Resolution::default();
    let mut pending: Vec<std::ffi::OsString> = components(path);
    pending.reverse();
    let mut current = PathBuf::new();
    let mut followed = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let candidate = current.join(&part);
        let Some(entry) = tree.get(&candidate) else {
            return resolution;
        };
        match entry.kind {
            Kind::Symlink => {
                followed += 1;
                if followed > MAX_LINKS {
                    return resolution;
                }
                if !resolution.links.contains(&candidate) {
                    resolution.links.push(candidate.clone());
                }
                let target = entry.link.clone().unwrap_or_default();
                if target.is_absolute() {
                    current = PathBuf::new();
                }
                let mut parts = components(&target);
                parts.reverse();
                pending.extend(parts);
            }
            Kind::Dir => current = candidate,
            _ => {
                if !pending.is_empty() {
                    return resolution; // a file used as a directory
                }
                current = candidate;
            }
        }
    }
    if !current.as_os_str().is_empty() {
        resolution.target = Some(current);
    }
    resolution
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tree::Entry;

    fn tree(entries: &[(&str, Kind, Option<&str>)]) -> FileTree {
        let mut tree = FileTree::default();
        for (path, kind, link) in entries {
            tree.entries.insert(
                PathBuf::from(path),
                Entry {
                    kind: *kind,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    size: 1,
                    link: link.map(PathBuf::from),
                    device: None,
                    xattrs: Vec::new(),
                    data: None,
                    layer: 0,
                },
            );
        }
        tree
    }

    #[test]
    fn follows_usrmerge_and_versioned_links() {
        let t = tree(&[
            ("lib", Kind::Symlink, Some("usr/lib")),
            ("usr", Kind::Dir, None),
            ("usr/lib", Kind::Dir, None),
            ("usr/lib/libz.so.1", Kind::Symlink, Some("libz.so.1.2.13")),
            ("usr/lib/libz.so.1.2.13", Kind::File, None),
        ]);
        let r = resolve(&t, Path::new("/lib/libz.so.1"));
        assert_eq!(
            r.target.as_deref(),
            Some(Path::new("usr/lib/libz.so.1.2.13"))
        );
        assert_eq!(
            r.links,
            [PathBuf::from("lib"), PathBuf::from("usr/lib/libz.so.1")]
        );
    }

    #[test]
    fn dotdot_and_absolute_links_stay_in_the_tree() {
        let t = tree(&[
            ("etc", Kind::Dir, None),
            ("etc/hosts", Kind::File, None),
            ("escape", Kind::Symlink, Some("/../../../etc")),
        ]);
        assert_eq!(
            resolve(&t, Path::new("/../../etc/hosts")).target.as_deref(),
            Some(Path::new("etc/hosts"))
        );
        assert_eq!(
            resolve(&t, Path::new("/escape/hosts")).target.as_deref(),
            Some(Path::new("etc/hosts"))
        );
    }

    #[test]
    fn loops_and_missing_parts_do_not_resolve() {
        let t = tree(&[
            ("a", Kind::Symlink, Some("b")),
            ("b", Kind::Symlink, Some("a")),
            ("f", Kind::File, None),
        ]);
        assert_eq!(resolve(&t, Path::new("/a")).target, None);
        assert_eq!(resolve(&t, Path::new("/f/x")).target, None);
        assert_eq!(resolve(&t, Path::new("/missing")).target, None);
    }
}
