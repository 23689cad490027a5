//! `slim diff FAT SLIM`: reads two images (engine or archive), compares their file trees
//! ([`crate::image::diff`]) with FAT's package owners, and prints a short table or JSON.

use std::{io::Write, process::ExitCode};

use anyhow::{Context as _, Result};

use crate::{
    cli::DiffArgs,
    engine::Engine,
    image::{
        diff::{diff, Change, ChangedPath, Diff, Group, Side},
        xray::human_bytes,
    },
};

use super::pipeline::{read_image, FatImage, ImageSource, ReadVia, WorkDir};

pub async fn run(args: DiffArgs) -> Result<ExitCode> {
    let sources = [
        ImageSource::parse(&args.fat),
        ImageSource::parse(&args.slim),
    ];
    for source in &sources {
        if let ImageSource::Engine(name) = source {
            super::image_reference(name)?;
        }
    }
    // One engine connection, and only when an image lives there.
    let engine = match sources.iter().any(|s| matches!(s, ImageSource::Engine(_))) {
        true => Some(Engine::connect().await?),
        false => None,
    };
    let [fat_source, slim_source] = &sources;
    let (fat_work, slim_work) = (WorkDir::new()?, WorkDir::new()?);
    let via = args.read.via;
    let fat = read(engine.as_ref(), ("FAT", fat_source), &fat_work, via).await?;
    let slim = read(engine.as_ref(), ("SLIM", slim_source), &slim_work, via).await?;
    let result = compare(&fat, &slim, args.depth).await?;

    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&result)?;
        value["left"]["image"] = serde_json::json!(fat.name);
        value["left"]["id"] = serde_json::json!(fat.id);
        value["right"]["image"] = serde_json::json!(slim.name);
        value["right"]["id"] = serde_json::json!(slim.id);
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &fat.name, &slim.name, &result, args.limit)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `read_image`, its errors naming which of the two images failed.
async fn read(
    engine: Option<&Engine>,
    (label, source): (&str, &ImageSource),
    work: &WorkDir,
    via: ReadVia,
) -> Result<FatImage> {
    read_image(engine, source, work, via)
        .await
        .with_context(|| format!("reading {label} ({})", source.name()))
}

/// FAT's package owners and the comparison, off the async threads (both read files).
async fn compare(fat: &FatImage, slim: &FatImage, depth: usize) -> Result<Diff> {
    let (left, right) = (fat.tree.clone(), slim.tree.clone());
    Ok(tokio::task::spawn_blocking(move || {
        let owners = crate::packages::owners(&left);
        diff(&left, &right, owners.as_ref(), depth)
    })
    .await?)
}

/// The headline, then the largest groups only in FAT, what only SLIM has, and what changed.
fn print_table(
    out: &mut impl Write,
    fat: &str,
    slim: &str,
    diff: &Diff,
    limit: usize,
) -> std::io::Result<()> {
    let (only_left, only_right) = (&diff.only_left, &diff.only_right);
    writeln!(
        out,
        "{fat} {} -> {slim} {}: {} files ({}) only in {fat}, {} only in {slim}, {} changed",
        human_bytes(diff.left.bytes),
        human_bytes(diff.right.bytes),
        only_left.files,
        human_bytes(only_left.bytes),
        only_right.files,
        diff.changed.count,
    )?;
    groups(
        out,
        "ONLY IN FAT",
        "DIRECTORY",
        &only_left.by_directory,
        limit,
    )?;
    if diff.package_database {
        groups(out, "ONLY IN FAT", "PACKAGE", &only_left.by_package, limit)?;
    }
    groups(
        out,
        "ONLY IN SLIM",
        "DIRECTORY",
        &only_right.by_directory,
        limit,
    )?;
    if !diff.changed.paths.is_empty() {
        writeln!(
            out,
            "\nCHANGED ({} in FAT, {} in SLIM)",
            human_bytes(diff.changed.bytes_left),
            human_bytes(diff.changed.bytes_right)
        )?;
        for change in diff.changed.paths.iter().take(limit) {
            writeln!(out, "  {}  {}", change.path, describe(change))?;
        }
        if diff.changed.paths.len() > limit {
            let rest = diff.changed.paths.len() - limit;
            writeln!(out, "  ... {rest} more (--limit N, or --json for all)")?;
        }
    }
    Ok(())
}

/// One table of groups, largest first (files, bytes, name), and what the rest add up to.
fn groups(
    out: &mut impl Write,
    title: &str,
    by: &str,
    groups: &[Group],
    limit: usize,
) -> std::io::Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}, BY {by}")?;
    writeln!(out, "  {:>7} {:>10}  {by}", "FILES", "SIZE")?;
    for group in groups.iter().take(limit) {
        let size = human_bytes(group.bytes);
        writeln!(out, "  {:>7} {size:>10}  {}", group.files, group.name)?;
    }
    if groups.len() > limit {
        let rest = &groups[limit..];
        let files: u64 = rest.iter().map(|g| g.files).sum();
        let size = human_bytes(rest.iter().map(|g| g.bytes).sum());
        writeln!(out, "  {files:>7} {size:>10}  ... {} more", rest.len())?;
    }
    Ok(())
}

/// What differs at a changed path, FAT's value first: `size 6.0 kB -> 2.0 kB, mode 0755 -> 0700`.
fn describe(change: &ChangedPath) -> String {
    let (a, b) = (&change.left, &change.right);
    let link = |side: &Side| side.link.clone().unwrap_or_else(|| "(none)".into());
    let kind = |side: &Side| format!("{:?}", side.kind).to_lowercase();
    let parts: Vec<String> = change
        .what
        .iter()
        .map(|what| {
            let (from, to) = match what {
                Change::Kind => (kind(a), kind(b)),
                Change::Size => (human_bytes(a.bytes), human_bytes(b.bytes)),
                Change::Link => (link(a), link(b)),
                Change::Mode => (a.mode.clone(), b.mode.clone()),
                Change::Owner => (
                    format!("{}:{}", a.uid, a.gid),
                    format!("{}:{}", b.uid, b.gid),
                ),
            };
            format!("{} {from} -> {to}", what.name())
        })
        .collect();
    parts.join(", ")
}
