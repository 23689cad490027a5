//! Where a run's files go: the output dir, checked writable before anything runs, and filled
//! only at the end from a staging dir inside the work dir, so an interrupted or failed run
//! leaves the previous run's files whole instead of a mix.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::commands::UsageError;

/// The output dir, created and checked writable before anything runs: finding out after the
/// image was written would leave a slim image tagged with no report. A dir slim may not
/// create or write is bad input; a disk with no room left is a fault, its cause kept.
pub fn output_dir(given: Option<&Path>, target: &str) -> Result<PathBuf> {
    let dir = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new("slim-out").join(sanitize_name(target)));
    let probe = dir.join(format!(".slim-write-check-{}", std::process::id()));
    let writable = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&probe, b""));
    let _ = std::fs::remove_file(&probe);
    match writable {
        Ok(()) => Ok(dir),
        Err(err) if err.kind() == std::io::ErrorKind::StorageFull => {
            Err(err).with_context(|| format!("cannot write the output dir {}", dir.display()))
        }
        Err(err) => Err(UsageError::new(
            format!("cannot write the output dir {}: {err}", dir.display()),
            "pass --output-dir DIR with a directory slim can create and write",
        )
        .into()),
    }
}

/// The staging dir in `work` that the phases write their files into.
pub fn staging(work: &Path) -> Result<PathBuf> {
    let dir = work.join("out");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Moves every file of `staging` into `dir`: all are copied next to their place first, then
/// renamed over it, so a full disk leaves no file half written and none replaced.
pub fn publish(staging: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut names: Vec<_> = std::fs::read_dir(staging)
        .with_context(|| format!("cannot read {}", staging.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name())
        .collect();
    names.sort();
    let partial = |name: &std::ffi::OsStr| {
        dir.join(format!(
            ".{}.slim-partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ))
    };
    let mut copied = Vec::new();
    for name in &names {
        let to = partial(name);
        let result = std::fs::copy(staging.join(name), &to)
            .and_then(|_| std::fs::File::open(&to)?.sync_all());
        if let Err(err) = result {
            let _ = std::fs::remove_file(&to);
            for earlier in &copied {
                let _ = std::fs::remove_file(earlier);
            }
            return Err(err).with_context(|| format!("cannot write {}", dir.join(name).display()));
        }
        copied.push(to);
    }
    for (name, from) in names.iter().zip(&copied) {
        std::fs::rename(from, dir.join(name))
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(names.iter().map(|name| dir.join(name)).collect())
}

fn sanitize_name(target: &str) -> String {
    target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_replaces_files_whole_and_leaves_no_partials() {
        let root = std::env::temp_dir().join(format!("slim-publish-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (staging, dir) = (root.join("staging"), root.join("out"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), "old").unwrap();
        std::fs::write(dir.join("mine.txt"), "the user's").unwrap();
        std::fs::write(staging.join("report.json"), "new").unwrap();
        std::fs::write(staging.join("files.txt"), "kept").unwrap();
        let written = publish(&staging, &dir).unwrap();
        assert!(written
            .iter()
            .all(|path| path.starts_with(&dir) && path.exists()));
        assert_eq!(
            std::fs::read_to_string(dir.join("report.json")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("files.txt")).unwrap(),
            "kept"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("mine.txt")).unwrap(),
            "the user's"
        );
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["files.txt", "mine.txt", "report.json"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
