//! apk's database, `/lib/apk/db/installed`: one paragraph per package of `X:value` lines, where
//! `F:` names a directory and the `R:` lines after it its files (each followed by its `Z:`
//! checksum and `a:` attributes). Pruned to the packages with a kept file, each to its kept
//! files and their directories.

use std::path::PathBuf;

use super::{Db, KeptPaths, Package, Pruned};

pub const INSTALLED: &str = "lib/apk/db/installed";

/// Prunes the `installed` database `text`.
pub fn prune(text: &str, kept: &KeptPaths) -> Pruned {
    let mut pruned = Pruned {
        db: Db::Apk,
        dirs: ["lib", "lib/apk", "lib/apk/db"]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        ..Default::default()
    };
    let mut out = String::new();
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut package = Package::default();
        let mut head = String::new();
        let mut body = String::new();
        // The current directory block: its lines, and whether a file of it is kept.
        let mut block = String::new();
        let mut block_kept = false;
        let mut dir = String::new();
        // Whether the lines after the current `R:` belong to a kept file.
        let mut file_kept = false;
        let mut in_files = false;
        for line in paragraph.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => package.name = value.to_owned(),
                "V" => package.version = value.to_owned(),
                "A" => package.arch = value.to_owned(),
                "o" => package.source = Some(value.to_owned()),
                "m" => package.supplier = Some(value.to_owned()),
                _ => {}
            }
            match key {
                "F" => {
                    if block_kept {
                        body.push_str(&block);
                    }
                    in_files = true;
                    dir = value.to_owned();
                    block = format!("{line}\n");
                    block_kept = false;
                    file_kept = true; // the directory's own attribute lines
                }
                "R" if in_files => {
                    let path = format!("/{dir}/{value}");
                    let state = kept.state(&path);
                    if state.is_some() {
                        package.files_total += 1;
                    }
                    file_kept = state.is_some_and(|s| s.kept);
                    if file_kept {
                        package.files_kept += 1;
                        block_kept = true;
                        block.push_str(line);
                        block.push('\n');
                    }
                }
                _ if in_files => {
                    if file_kept {
                        block.push_str(line);
                        block.push('\n');
                    }
                }
                _ => {
                    head.push_str(line);
                    head.push('\n');
                }
            }
        }
        if block_kept {
            body.push_str(&block);
        }
        if package.files_kept == 0 {
            if !package.name.is_empty() {
                pruned.removed.push(package.name);
            }
            continue;
        }
        out.push_str(&head);
        out.push_str(&body);
        out.push('\n');
        pruned.kept.push(package);
    }
    pruned
        .files
        .push((PathBuf::from(INSTALLED), out.into_bytes()));
    pruned
}
