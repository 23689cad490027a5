//! Opt-in shrinking of kept ELF files, after selection and before the image is written:
//! `--strip-executables` drops symbol tables and debug sections (`strip --strip-all` removes
//! only sections no segment maps: `.symtab`, `.strtab`, `.debug_*`, `.comment`; `.dynsym`, the
//! dynamic section, Go's `.gopclntab` and the build-id note are mapped and stay), and
//! `--compress-executables` packs executables with UPX. Both work on copies in the work dir;
//! the tree the image is written from points at the copies. The normal verification then runs
//! the shrunk image, so a binary that no longer works fails the build.

use std::{
    collections::BTreeSet,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use serde::Serialize;

use crate::{
    image::tree::{FileTree, Kind},
    minify::{KeepSet, Reason},
    syscalls::Arch,
};

/// What to do to kept ELF files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub strip: bool,
    pub compress: bool,
}

impl Options {
    pub fn any(self) -> bool {
        self.strip || self.compress
    }
}

/// What was done to a file, or would have been.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Debug symbols and sections stripped.
    Strip,
    /// Packed with UPX (it unpacks itself at start).
    Upx,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Strip => "strip",
            Self::Upx => "upx",
        })
    }
}

/// One file shrunk.
#[derive(Clone, Debug, Serialize)]
pub struct Shrunk {
    pub path: String,
    pub action: Action,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// One file left as it was, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Left {
    pub path: String,
    pub action: Action,
    pub reason: String,
}

/// What shrinking did, for report.json.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub strip_tool: Option<String>,
    pub compress_tool: Option<String>,
    pub shrunk: Vec<Shrunk>,
    pub left: Vec<Left>,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Report {
    fn record_shrunk(&mut self, path: &str, action: Action, before: u64, after: u64) {
        self.shrunk.push(Shrunk {
            path: path.to_owned(),
            action,
            bytes_before: before,
            bytes_after: after,
        });
    }

    fn record_left(&mut self, path: &str, action: Action, reason: impl Into<String>) {
        self.left.push(Left {
            path: path.to_owned(),
            action,
            reason: reason.into(),
        });
    }

    /// What happened to `path` (`/usr/bin/app`), for files.txt: `; strip 11.0 MB -> 7.9 MB;
    /// upx not packed: setuid/setgid`, or nothing.
    pub fn describe(&self, path: &str) -> String {
        let mut out = String::new();
        for shrunk in self.shrunk.iter().filter(|s| s.path == path) {
            out.push_str(&format!(
                "; {} {} -> {} bytes",
                shrunk.action, shrunk.bytes_before, shrunk.bytes_after
            ));
        }
        for left in self.left.iter().filter(|l| l.path == path) {
            out.push_str(&format!("; no {}: {}", left.action, left.reason));
        }
        out
    }
}

/// Why shrinking could not run. Each says what to install.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error(
        "--strip-executables needs llvm-strip (apt-get install llvm) or binutils' strip for {0}"
    )]
    NoStrip(String),
    #[error("--compress-executables needs upx (apt-get install upx-ucl; on Debian 12 from bookworm-backports)")]
    NoUpx,
    #[error("cannot prepare {path} for shrinking")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a kept ELF file is, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElfKind {
    /// Has PT_INTERP, or is ET_EXEC: something the kernel executes.
    Executable,
    /// ET_DYN without PT_INTERP: a shared library (or a static PIE, treated alike).
    Library,
}

fn elf_kind(head: &[u8]) -> Option<ElfKind> {
    let header = goblin::elf::Elf::parse_header(head).ok()?;
    if matches!(
        crate::elf::interpreter(head),
        Some(crate::elf::Interpreter::Elf(_))
    ) || header.e_type == goblin::elf::header::ET_EXEC
    {
        Some(ElfKind::Executable)
    } else if header.e_type == goblin::elf::header::ET_DYN {
        Some(ElfKind::Library)
    } else {
        None
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A strip that handles `arch`'s ELF files: llvm-strip handles every architecture; binutils'
/// `strip` only the host's, its cross builds (`aarch64-linux-gnu-strip`...) theirs.
fn find_strip(arch: Option<Arch>) -> Option<PathBuf> {
    let llvm = ["llvm-strip".to_owned()]
        .into_iter()
        .chain((14..=21).rev().map(|v| format!("llvm-strip-{v}")));
    let gnu = match arch {
        Some(a) if Some(a) == Arch::host() => vec!["strip"],
        Some(Arch::Aarch64) => vec!["aarch64-linux-gnu-strip"],
        Some(Arch::X86_64) => vec!["x86_64-linux-gnu-strip"],
        Some(Arch::X86) => vec!["i686-linux-gnu-strip"],
        Some(Arch::Arm) => vec!["arm-linux-gnueabihf-strip"],
        None => vec![],
    };
    llvm.chain(gnu.into_iter().map(str::to_owned))
        .find_map(|name| on_path(&name))
}

/// Shrinks the kept ELF files of `keep` as `options` say, working in `work`; returns the tree to
/// write the image from (the fat tree with the shrunk files pointing at their copies).
pub fn shrink(
    tree: &FileTree,
    keep: &KeepSet,
    arch: Option<Arch>,
    options: Options,
    work: &Path,
) -> Result<(FileTree, Report), ShrinkError> {
    let strip = match options.strip {
        true => Some(find_strip(arch).ok_or_else(|| {
            ShrinkError::NoStrip(arch.map_or("this image".into(), |a| a.to_string()))
        })?),
        false => None,
    };
    let upx = match options.compress {
        true => Some(
            on_path("upx")
                .or_else(|| on_path("upx-ucl"))
                .ok_or(ShrinkError::NoUpx)?,
        ),
        false => None,
    };
    let dir = work.join("shrink");
    std::fs::create_dir_all(&dir).map_err(|source| ShrinkError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut out = tree.derived();
    let mut report = Report {
        strip_tool: strip.as_ref().map(|p| p.display().to_string()),
        compress_tool: upx.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    };
    // Bytes shared by hard links are left alone: every name would have to change together.
    let linked: BTreeSet<&PathBuf> = tree
        .entries
        .values()
        .filter(|e| e.kind == Kind::Hardlink)
        .filter_map(|e| e.link.as_ref())
        .collect();
    for (path, kept) in &keep.paths {
        let Some(entry) = tree
            .get(path)
            .filter(|e| e.kind == Kind::File && e.size > 0)
        else {
            continue;
        };
        if !matches!(
            kept.reason,
            Reason::Executed | Reason::Interpreter | Reason::Library | Reason::Opened
        ) {
            continue;
        }
        let Some(head) = tree.read(path, crate::elf::HEAD_LEN as u64) else {
            continue;
        };
        let Some(kind) = elf_kind(&head) else {
            continue;
        };
        let shown = format!("/{}", path.display());
        if linked.contains(path) {
            for action in [
                strip.is_some().then_some(Action::Strip),
                upx.is_some().then_some(Action::Upx),
            ]
            .into_iter()
            .flatten()
            {
                report.record_left(&shown, action, "hard-linked");
            }
            continue;
        }
        let Some(bytes) = tree.read(path, entry.size) else {
            continue;
        };
        let copy = dir.join(out.sources.len().to_string());
        write_copy(&copy, &bytes)?;
        let before = entry.size;
        let mut size = before;
        if let Some(strip) = &strip {
            match run(Command::new(strip).arg("--strip-all").arg(&copy)) {
                Ok(()) => {
                    let after = file_size(&copy);
                    if after < size {
                        report.record_shrunk(&shown, Action::Strip, size, after);
                        size = after;
                    } else {
                        write_copy(&copy, &bytes)?;
                    }
                }
                Err(reason) => {
                    write_copy(&copy, &bytes)?;
                    report.record_left(&shown, Action::Strip, reason);
                }
            }
        }
        if let Some(upx) = &upx {
            match pack_refusal(kept.reason, kind, entry.mode, &entry.xattrs, &head) {
                Some(reason) => {
                    if kind == ElfKind::Executable {
                        report.record_left(&shown, Action::Upx, reason);
                    }
                }
                None => {
                    let packed = copy.with_extension("upx");
                    let _ = std::fs::remove_file(&packed);
                    let result = run(Command::new(upx)
                        .args(["-q", "-9", "--no-progress", "-o"])
                        .arg(&packed)
                        .arg(&copy));
                    let after = file_size(&packed);
                    match result {
                        Ok(()) if after > 0 && after < size => {
                            std::fs::rename(&packed, &copy).map_err(|source| ShrinkError::Io {
                                path: copy.display().to_string(),
                                source,
                            })?;
                            report.record_shrunk(&shown, Action::Upx, size, after);
                            size = after;
                        }
                        Ok(()) => report.record_left(
                            &shown,
                            Action::Upx,
                            "packing did not make it smaller",
                        ),
                        Err(reason) => report.record_left(&shown, Action::Upx, reason),
                    }
                    let _ = std::fs::remove_file(&packed);
                }
            }
        }
        if size < before {
            out.set_content(path, copy, size);
            report.bytes_before += before;
            report.bytes_after += size;
        } else {
            let _ = std::fs::remove_file(&copy);
        }
    }
    Ok((out, report))
}

/// Why a kept file must not be packed, if it must not.
fn pack_refusal(
    reason: Reason,
    kind: ElfKind,
    mode: u32,
    xattrs: &[(String, Vec<u8>)],
    head: &[u8],
) -> Option<&'static str> {
    if kind != ElfKind::Executable {
        return Some("a shared library (only executables are packed)");
    }
    if reason != Reason::Executed {
        // Opened, mapped as a library or loaded as an interpreter by another kept file.
        return Some("another kept file maps or reads it");
    }
    if mode & 0o6000 != 0 {
        return Some("setuid/setgid");
    }
    if xattrs.iter().any(|(name, _)| name == "security.capability") {
        return Some("has file capabilities");
    }
    if head.windows(4).any(|w| w == b"UPX!") {
        return Some("already packed");
    }
    None
}

fn write_copy(path: &Path, bytes: &[u8]) -> Result<(), ShrinkError> {
    let io = |source| ShrinkError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(io)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Runs a tool; its last stderr line is the reason when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("cannot run {:?}: {err}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim();
    Err(line.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binaries_are_told_apart() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(
            elf_kind(&sh[..sh.len().min(crate::elf::HEAD_LEN)]),
            Some(ElfKind::Executable)
        );
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .iter()
        .find_map(|p| std::fs::read(p).ok());
        if let Some(libc) = libc {
            assert_eq!(
                elf_kind(&libc[..crate::elf::HEAD_LEN]),
                Some(ElfKind::Library)
            );
        }
        assert_eq!(elf_kind(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn what_must_not_be_packed() {
        let elf = b"\x7fELF";
        let exe = ElfKind::Executable;
        assert_eq!(pack_refusal(Reason::Executed, exe, 0o755, &[], elf), None);
        assert!(pack_refusal(Reason::Executed, exe, 0o4755, &[], elf).is_some());
        let caps = [("security.capability".to_owned(), vec![1])];
        assert!(pack_refusal(Reason::Executed, exe, 0o755, &caps, elf).is_some());
        assert!(pack_refusal(Reason::Executed, exe, 0o755, &[], b"\x7fELF..UPX!..").is_some());
        assert!(pack_refusal(Reason::Interpreter, exe, 0o755, &[], elf).is_some());
        assert!(pack_refusal(Reason::Executed, ElfKind::Library, 0o755, &[], elf).is_some());
    }
}
