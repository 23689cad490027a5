//! `slim xray IMAGE`: what each layer adds, changes and deletes, the bytes shipped but never
//! visible (overwritten or deleted later), and the biggest files and directories.

use std::{io::Write as _, process::ExitCode};

use anyhow::Result;

use crate::{
    cli::XrayArgs,
    engine::Engine,
    image::xray::{analyze, human_bytes},
};

use super::pipeline::{read_image, ImageSource, WorkDir};

pub async fn run(args: XrayArgs) -> Result<ExitCode> {
    let source = ImageSource::parse(&args.image);
    if let ImageSource::Engine(name) = &source {
        super::image_reference(name)?;
    }
    let engine = match &source {
        ImageSource::Engine(_) => Some(Engine::connect().await?),
        ImageSource::Archive(_) => None,
    };
    let work = WorkDir::new()?;
    let fat = read_image(engine.as_ref(), &source, &work, args.read.via).await?;
    let xray = analyze(&fat.tree, fat.layers);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&xray)?;
        value["image"] = serde_json::json!(fat.name);
        value["id"] = serde_json::json!(fat.id);
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{}  {}  {} in {} layer{}",
        fat.name,
        short_id(&fat.id),
        human_bytes(xray.total_bytes),
        xray.layers.len(),
        if xray.layers.len() == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "\n{:<5} {:>10} {:>8} {:>8} {:>8} {:>10}  CREATED BY",
        "LAYER", "SIZE", "ADDED", "CHANGED", "DELETED", "WASTED"
    )?;
    for layer in &xray.layers {
        let by: String = layer.created_by.chars().take(60).collect();
        writeln!(
            out,
            "{:<5} {:>10} {:>8} {:>8} {:>8} {:>10}  {}",
            layer.index,
            human_bytes(layer.size_bytes),
            layer.files_added,
            layer.files_changed,
            layer.files_deleted,
            human_bytes(layer.wasted_bytes),
            by.trim()
        )?;
    }
    writeln!(
        out,
        "\nwasted {} (shipped in a layer, overwritten or deleted by a later one); efficiency {:.1}%",
        human_bytes(xray.wasted_bytes),
        xray.efficiency * 100.0
    )?;
    writeln!(
        out,
        "{} files, {} of content",
        xray.files,
        human_bytes(xray.content_bytes)
    )?;
    writeln!(out, "\nLARGEST FILES")?;
    for f in &xray.largest_files {
        writeln!(out, "  {:>10}  {}", human_bytes(f.bytes), f.path)?;
    }
    writeln!(out, "LARGEST DIRECTORIES")?;
    for d in &xray.largest_directories {
        writeln!(out, "  {:>10}  {}", human_bytes(d.bytes), d.path)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The 12 hex digits `docker images` shows (the first 12 characters of anything else).
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    match hex.char_indices().nth(12) {
        Some((end, _)) => &hex[..end],
        None => hex,
    }
}
