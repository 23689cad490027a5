//! Phase 1: find the target in the engine and check the tag the slim image will get.

use anyhow::Result;

use crate::{
    commands::UsageError,
    engine::{Engine, ImageInfo},
};

/// The target as the engine knows it.
pub struct Inspected {
    pub engine: Engine,
    pub name: String,
    pub info: ImageInfo,
}

/// Connects to the engine and inspects `target`.
pub async fn inspect(target: &str) -> Result<Inspected> {
    let engine = Engine::connect().await?;
    crate::commands::prune::reap_at_start(&engine).await;
    let info = engine.image(target).await?;
    Ok(Inspected {
        engine,
        name: target.to_owned(),
        info,
    })
}

/// Refuses a tag that names the image being slimmed: slim never modifies its input.
pub async fn check_tag(inspected: &Inspected, tag: &str) -> Result<()> {
    let same = tag == inspected.name
        || inspected
            .engine
            .image(tag)
            .await
            .is_ok_and(|i| i.id == inspected.info.id);
    if same {
        return Err(UsageError::new(
            format!("--tag {tag} names the image being slimmed"),
            "choose another tag: slim never modifies its input image",
        )
        .into());
    }
    Ok(())
}
