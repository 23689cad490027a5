//! `slim squash IMAGE`: the whole image as one layer with the same config (every file, owner,
//! mode, link and extended attribute kept; deleted and overwritten bytes gone), loaded into the
//! engine and/or written as a docker-archive or OCI layout.

use std::{collections::BTreeSet, path::PathBuf, process::ExitCode};

use anyhow::Result;

use crate::{cli::SquashArgs, engine::Engine, image::xray::human_bytes};

use super::{
    pipeline::{read_image, write_image, ImageSource, LayerContent, Output, WorkDir},
    xray::short_id,
    UsageError,
};

pub async fn run(args: SquashArgs) -> Result<ExitCode> {
    let outputs = args
        .output
        .iter()
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    if args.tag.is_none() && outputs.is_empty() {
        return Err(UsageError::new(
            "nowhere to put the squashed image",
            "give --tag NAME to load it into the engine, or --output docker-archive:PATH / oci:DIR",
        )
        .into());
    }
    let source = ImageSource::parse(&args.image);
    if let ImageSource::Engine(name) = &source {
        super::image_reference(name)?;
    }
    if let Some(tag) = &args.tag {
        super::tag_reference(tag)?;
    }
    if let (Some(tag), ImageSource::Engine(name)) = (&args.tag, &source) {
        if tag == name {
            return Err(UsageError::new(
                format!("--tag {tag} would replace the image being read"),
                "choose another tag: slim never modifies its input image",
            )
            .into());
        }
    }
    let engine = match (&source, &args.tag) {
        (ImageSource::Archive(_), None) => None,
        _ => Some(Engine::connect().await?),
    };
    let work = WorkDir::new()?;
    let fat = read_image(engine.as_ref(), &source, &work, args.read.via).await?;
    let all: BTreeSet<PathBuf> = fat.tree.entries.keys().cloned().collect();
    let slim = write_image(
        engine.as_ref(),
        &fat,
        LayerContent {
            tree: &fat.tree,
            selection: all,
        },
        args.tag.as_deref(),
        &outputs,
        &work,
        format!("slim squash {}", fat.name),
    )
    .await?;
    tracing::debug!(
        read_from = fat.read_from,
        save_ms = fat.save_ms,
        flatten_ms = fat.flatten_ms,
        write_ms = slim.write_ms,
        load_ms = slim.load_ms,
        engine_size = fat.info.as_ref().map(|i| i.size),
        "squash timings"
    );
    eprintln!(
        "squashed {} ({} layer{}, {}) into one layer of {}: {}",
        fat.name,
        fat.layers.len(),
        if fat.layers.len() == 1 { "" } else { "s" },
        human_bytes(fat.layers.iter().map(|l| l.content_bytes).sum()),
        human_bytes(slim.layer.size),
        short_id(&slim.id)
    );
    if let Some(tag) = &args.tag {
        println!("{tag}");
    }
    Ok(ExitCode::SUCCESS)
}
