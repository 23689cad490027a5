//! Phase 1: find the target in the engine and check the tag the slim image will get.

use anyhow::Result;

use crate::{
    commands::UsageError,
    engine::{registry::PullPolicy, ContainerEngine, Engine, EngineError, ImageInfo},
    tracer::{EbpfRecorder, StartRecording},
};

/// The target as the engine knows it, with the engine and the recorder the build's runs use.
pub struct Inspected<E = Engine, R = EbpfRecorder> {
    pub engine: E,
    pub recorder: R,
    /// Containers still being removed: the build waits for them before it exits.
    pub removals: super::run::Removals,
    pub name: String,
    pub info: ImageInfo,
    /// The Compose services each run starts beside the target (`--compose-file`).
    pub neighbours: Option<std::sync::Arc<super::neighbours::Neighbours>>,
}

/// Inspects `target`, pulled first as `pull` says (an image id is never pulled).
pub async fn inspect<E: ContainerEngine, R: StartRecording>(
    (engine, recorder): (E, R),
    (target, pull): (&str, PullPolicy),
    removals: super::run::Removals,
    (shutdown, console): (&crate::commands::Shutdown, super::Console),
) -> Result<Inspected<E, R>> {
    let by_name = matches!(
        crate::image::reference::parse(target),
        Ok(crate::image::reference::Reference::Named(_))
    );
    let info =
        match (pull, engine.image(target).await) {
            (PullPolicy::Always, _) | (PullPolicy::Missing, Err(EngineError::NoSuchImage(_)))
                if by_name =>
            {
                shutdown
                    .unless_stopped(super::registry::pull(&engine, target, console))
                    .await?;
                engine.image(target).await?
            }
            (_, Err(EngineError::NoSuchImage(name))) => return Err(UsageError::new(
                format!("no such image: {name}"),
                match pull {
                    PullPolicy::Never => {
                        "`docker images` lists the engine's images; without --pull=never slim \
                         pulls what the engine lacks"
                    }
                    _ => "`docker images` lists the engine's images (an image id is never pulled)",
                },
            )
            .into()),
            (_, found) => found?,
        };
    Ok(Inspected {
        engine,
        recorder,
        removals,
        name: target.to_owned(),
        info,
        neighbours: None,
    })
}

/// Refuses a tag that names the image being slimmed, itself or as `TAG-unverified` (the tag a
/// slim image that fails verification gets): slim never modifies its input.
pub async fn check_tag<E: ContainerEngine, R>(
    inspected: &Inspected<E, R>,
    tag: &str,
) -> Result<()> {
    for candidate in [tag.to_owned(), unverified_tag(tag)] {
        let same = candidate == inspected.name
            || inspected
                .engine
                .image(&candidate)
                .await
                .is_ok_and(|i| i.id == inspected.info.id);
        if same {
            return Err(UsageError::new(
                format!("--tag {tag} names the image being slimmed (as {candidate})"),
                "choose another tag: slim never modifies its input image",
            )
            .into());
        }
    }
    Ok(())
}

/// Longest tag part of a reference the engine accepts.
const MAX_TAG_LEN: usize = 128;

/// Where a slim image that failed verification goes instead of `tag`: its tag part with
/// `-unverified` appended (`app:slim` -> `app:slim-unverified`, `app` ->
/// `app:latest-unverified`), the tag part shortened first when the result would pass the
/// engine's 128 characters.
pub fn unverified_tag(tag: &str) -> String {
    const SUFFIX: &str = "-unverified";
    let (repo, part) = crate::image::reference::split_reference(tag);
    let kept: String = part.chars().take(MAX_TAG_LEN - SUFFIX.len()).collect();
    format!("{repo}:{kept}{SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_image_is_tagged_unverified_within_the_length_limit() {
        assert_eq!(unverified_tag("app:slim"), "app:slim-unverified");
        assert_eq!(unverified_tag("app"), "app:latest-unverified");
        assert_eq!(
            unverified_tag("localhost:5000/app.slim:1.2"),
            "localhost:5000/app.slim:1.2-unverified"
        );
        let long = format!("app:{}", "v".repeat(MAX_TAG_LEN));
        let shortened = unverified_tag(&long);
        let (_, part) = shortened.rsplit_once(':').unwrap();
        assert_eq!(part.len(), MAX_TAG_LEN);
        assert!(part.ends_with("v-unverified"), "{part}");
    }
}
