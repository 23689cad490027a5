//! Security profiles made from a recording: seccomp (Docker's JSON, and the same as a
//! security-profiles-operator object) and AppArmor. Pure: a recording and facts about the image
//! in, file text out; nothing here touches the kernel or the engine.

pub mod apparmor;
pub mod apparmor_merge;
pub mod docker_default;
pub mod seccomp;

use std::path::{Path, PathBuf};

use crate::{
    image::tree::{FileTree, Kind},
    minify::resolve::resolve,
};

/// What the profile generators need to know about the image's files.
pub trait ImageFiles {
    /// Where `path` (absolute, as the app named it) really leads inside the image, symlinks
    /// followed (AppArmor mediates the resolved path); `None` when the image does not have it.
    fn real_path(&self, path: &Path) -> Option<PathBuf>;
    /// Whether the file at `path` (a real path) is an ELF object, which the loader maps.
    fn is_elf(&self, path: &Path) -> bool;
}

impl ImageFiles for FileTree {
    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let target = resolve(self, path).target?;
        Some(Path::new("/").join(target))
    }

    fn is_elf(&self, path: &Path) -> bool {
        let relative = path.strip_prefix("/").unwrap_or(path);
        match self.get(relative) {
            Some(entry) if matches!(entry.kind, Kind::File | Kind::Hardlink) => self
                .read(relative, 4)
                .is_some_and(|head| head.starts_with(b"\x7fELF")),
            _ => false,
        }
    }
}

/// A name usable for an AppArmor profile and a Kubernetes object: `slim-` and the image's
/// repository name (and tag, unless `latest`), lower case, other characters as `-`.
pub fn profile_name(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (image, None),
    };
    let repo = repo.rsplit('/').next().unwrap_or(repo);
    let mut name = format!("slim-{repo}");
    if let Some(tag) = tag.filter(|t| *t != "latest") {
        name.push('-');
        name.push_str(tag);
    }
    let mut clean: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while clean.ends_with(['-', '.']) {
        clean.pop();
    }
    clean.truncate(63);
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(profile_name("app:fat"), "slim-app-fat");
        assert_eq!(profile_name("nginx"), "slim-nginx");
        assert_eq!(profile_name("nginx:latest"), "slim-nginx");
        assert_eq!(
            profile_name("localhost:5000/team/My_App:1.2"),
            "slim-my-app-1.2"
        );
    }
}
