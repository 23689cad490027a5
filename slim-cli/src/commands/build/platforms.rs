//! `slim build --platform`: a multi-platform image in a registry, slimmed platform by platform.
//! The fat index is read from the registry; each selected platform's image is pulled by digest
//! and built as any image is (a foreign one under qemu-user), verified, and tagged
//! `TAG-OS-ARCH[-VARIANT]`. Only when every platform is verified is anything published: with
//! `--push` each platform's image, then one OCI index under `TAG` listing them with their
//! platforms and the fat index's annotations; with `--output oci:DIR` the same index as an
//! OCI layout. A platform that fails stops the build, named.

use std::{path::Path, process::ExitCode, time::Instant};

use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value};

use crate::{
    commands::{pipeline::Output, Fault, Shutdown, UsageError},
    engine::{
        distribution::{repository_path, DistributionError, RegistryClient},
        registry::{registry_host, PullPolicy},
        ContainerEngine,
    },
    image::{
        platform::{self, Entry, Index, Platform, PlatformSelection, SlimEntry},
        reference::{parse, split_reference, Named, Reference},
        xray::human_bytes,
    },
    tracer::StartRecording,
};

use super::{build_one, plan::Summary, BuildPlan, Built, Host, EXIT_VERIFY_FAILED};

/// Longest tag part the engine accepts.
const MAX_TAG_LEN: usize = 128;

/// One platform's slim image.
struct PlatformBuilt {
    entry: Entry,
    built: Built,
    /// Where its report and profiles went.
    output_dir: std::path::PathBuf,
}

/// Builds every platform `selection` names of the multi-platform image `plan.target`.
pub async fn build_platforms<E, R>(
    plan: BuildPlan,
    selection: PlatformSelection,
    (engine, recorder): (E, R),
    host: Host,
    shutdown: &Shutdown,
) -> Result<ExitCode>
where
    E: ContainerEngine,
    R: StartRecording + Clone,
{
    let console = plan.console;
    let named = named(&plan.target)?;
    let registry = named
        .domain
        .clone()
        .unwrap_or_else(|| "docker.io".to_owned());
    let repository = repository_path(&registry, &named.path);
    let mut fat_client = RegistryClient::new(&registry, super::registry::login_for(&plan.target));
    let (fat_index, entries) = shutdown
        .unless_stopped(read_index(&mut fat_client, &named, &repository, &selection))
        .await?;
    console.say(format!(
        "      index     {} has {}; slimming {}",
        plan.target,
        fat_index.platforms(),
        entries
            .iter()
            .map(|e| e.platform.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let work = super::WorkDir::new()?;
    let mut done: Vec<PlatformBuilt> = Vec::new();
    let total = entries.len();
    for (n, entry) in entries.into_iter().enumerate() {
        let platform = entry.platform.clone();
        console.say(format!("== {platform} ({}/{total})", n + 1));
        let fat = format!("{}@{}", named.repository(), entry.digest);
        let mut one = plan.clone();
        one.platforms = None;
        one.target = fat.clone();
        one.tag = platform_tag(&plan.tag, &platform);
        one.output_dir =
            super::output::output_dir(Some(&plan.output_dir.join(platform.slug())), &fat)?;
        one.push = false;
        one.summary = Summary::ByCaller;
        one.outputs = match plan.outputs.iter().any(|o| matches!(o, Output::Oci(_))) {
            true => vec![Output::Oci(work.path().join(platform.slug()))],
            false => Vec::new(),
        };
        one.pull = match plan.pull {
            PullPolicy::Never => PullPolicy::Never,
            _ => PullPolicy::Missing, // a digest names one image for good
        };
        let built = build_one(
            one.clone(),
            (engine.clone(), recorder.clone()),
            host,
            shutdown,
            Instant::now(),
        )
        .await
        .with_context(|| format!("{platform}"))?;
        console.say(format!(
            "      {platform}  {} -> {}  {:.1}x, verified {}/{}{}",
            human_bytes(built.fat_size),
            human_bytes(built.slim_size),
            built.ratio,
            built.matched,
            built.probes,
            match &built.emulated {
                Some(_) => " (seccomp derived under emulation)",
                None => "",
            }
        ));
        let failed = built.code != 0;
        done.push(PlatformBuilt {
            entry,
            built,
            output_dir: one.output_dir.clone(),
        });
        if failed {
            let report = write_report(&plan, &done, None, None)?;
            let line = format!(
                "{platform}: the slim image answered differently (tagged {}); nothing was \
                 published. Report: {}",
                done.last()
                    .map(|d| d.built.tag.as_str())
                    .unwrap_or_default(),
                report.display()
            );
            match plan.summary {
                Summary::Json => {
                    eprintln!("{line}");
                    println!("{}", summary_json(&plan, &done, None, None, &report));
                }
                _ => println!("{line}"),
            }
            return Ok(ExitCode::from(EXIT_VERIFY_FAILED));
        }
    }

    let mut index_digest = None;
    let mut pushed_to = None;
    if plan.push {
        let mut client = RegistryClient::new(
            &registry_host(&plan.tag),
            super::registry::login_for(&plan.tag),
        );
        let (digest, host) = shutdown
            .unless_stopped(push_all(&engine, &mut client, &plan, &done, &fat_index))
            .await?;
        index_digest = Some(digest);
        pushed_to = Some(host);
    }
    for output in &plan.outputs {
        if let Output::Oci(dir) = output {
            let digest = write_oci_index(dir, work.path(), &plan.tag, &done, &fat_index)?;
            index_digest.get_or_insert(digest);
        }
    }
    let report = write_report(&plan, &done, index_digest.as_deref(), pushed_to.as_deref())?;
    match plan.summary {
        Summary::Json => println!(
            "{}",
            summary_json(
                &plan,
                &done,
                index_digest.as_deref(),
                pushed_to.as_deref(),
                &report
            )
        ),
        _ => {
            for d in &done {
                println!(
                    "{}: minified by {:.1}x [{} -> {}], verified {}/{} probes, {}",
                    d.entry.platform,
                    d.built.ratio,
                    human_bytes(d.built.fat_size),
                    human_bytes(d.built.slim_size),
                    d.built.matched,
                    d.built.probes,
                    d.built.tag
                );
            }
            match (&index_digest, &pushed_to) {
                (Some(digest), Some(host)) => {
                    println!(
                        "index {} {digest}: {} platforms, pushed to {host}",
                        plan.tag,
                        done.len()
                    )
                }
                (Some(digest), None) => {
                    println!(
                        "index {digest}: {} platforms, written as an OCI layout",
                        done.len()
                    )
                }
                _ => println!(
                    "{} platforms slimmed and verified; --push publishes them with one index \
                     under {}",
                    done.len(),
                    plan.tag
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The target as a registry name.
fn named(target: &str) -> Result<Named> {
    match parse(target) {
        Ok(Reference::Named(named)) => Ok(named),
        _ => Err(UsageError::new(
            format!("--platform needs the image's name in a registry ({target} is not one)"),
            "name it as the registry does: slim build --platform ... REGISTRY/NAME:TAG",
        )
        .into()),
    }
}

/// `app:slim` and linux/arm64 -> `app:slim-linux-arm64`, the tag part shortened to fit.
pub fn platform_tag(tag: &str, platform: &Platform) -> String {
    let (repository, part) = split_reference(tag);
    let suffix = format!("-{}", platform.slug());
    let kept: String = part
        .chars()
        .take(MAX_TAG_LEN.saturating_sub(suffix.len()))
        .collect();
    format!("{repository}:{kept}{suffix}")
}

/// The fat index and the entries `selection` takes from it.
async fn read_index(
    client: &mut RegistryClient,
    named: &Named,
    repository: &str,
    selection: &PlatformSelection,
) -> Result<(Index, Vec<Entry>)> {
    let reference = named
        .digest
        .clone()
        .or_else(|| named.tag.clone())
        .unwrap_or_else(|| "latest".to_owned());
    let shown = format!("{}:{reference}", named.repository());
    let manifest = client
        .manifest(repository, &reference)
        .await
        .map_err(|err| explain(err, "read", &shown))?;
    if !platform::is_index(&manifest.media_type) {
        return Err(UsageError::new(
            format!(
                "{shown} is one image ({}), not a multi-platform index",
                manifest.media_type
            ),
            "drop --platform to slim it as it is",
        )
        .into());
    }
    let index = Index::parse(&manifest.bytes).map_err(|err| {
        Fault::new(
            format!("the index of {shown} is unusable: {err}"),
            "check it with `skopeo inspect --raw docker://IMAGE`",
        )
    })?;
    let entries = index.select(selection).map_err(|missing| {
        UsageError::new(
            format!(
                "{shown} has no image for {} (it has {})",
                missing
                    .iter()
                    .map(Platform::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                index.platforms()
            ),
            "list only the platforms it has, or take them all with --platform all",
        )
    })?;
    if entries.is_empty() {
        return Err(UsageError::new(
            format!("{shown} lists no image with a platform"),
            "drop --platform to slim it as it is",
        )
        .into());
    }
    Ok((index, entries))
}

/// Pushes each platform's image, then the index over them under `plan.tag`; returns the
/// index digest and the registry.
async fn push_all<E: ContainerEngine>(
    engine: &E,
    client: &mut RegistryClient,
    plan: &BuildPlan,
    done: &[PlatformBuilt],
    fat_index: &Index,
) -> Result<(String, String)> {
    let named = named(&plan.tag)?;
    let registry = registry_host(&plan.tag);
    let repository = repository_path(&registry, &named.path);
    let mut entries = Vec::new();
    for d in done {
        super::registry::push(engine, &d.built.tag, plan.console).await?;
        let (_, tag_part) = split_reference(&d.built.tag);
        let pushed = client
            .describe(&repository, tag_part)
            .await
            .map_err(|err| explain(err, "read", &d.built.tag))?;
        if plan.attach_profiles {
            let attached = super::attach::attach(client, &repository, &pushed, &d.output_dir)
                .await
                .map_err(|err| {
                    Fault::new(
                        format!("{}: attaching the profiles failed: {err}", d.entry.platform),
                        "nothing was published under the index tag; retry the same command",
                    )
                })?;
            for line in super::attach::lines(&attached) {
                plan.console.say(line);
            }
        }
        entries.push(SlimEntry {
            platform: d.entry.platform.clone(),
            digest: pushed.digest,
            media_type: pushed.media_type,
            size: pushed.size,
            annotations: d.entry.annotations.clone(),
        });
    }
    let index = platform::write_index(&entries, &fat_index.annotations);
    let (_, tag_part) = split_reference(&plan.tag);
    let digest = client
        .put_manifest(&repository, tag_part, platform::OCI_INDEX, &index)
        .await
        .map_err(|err| explain(err, "push", &plan.tag))?;
    plan.console.say(format!(
        "      push      index {} ({} platforms) {digest}",
        plan.tag,
        entries.len()
    ));
    Ok((digest, registry))
}

/// Merges the platforms' OCI layouts (written under `work`) into one at `dir`: every blob,
/// the slim index as a blob, and `index.json` naming it as `tag`. Returns the index digest.
fn write_oci_index(
    dir: &Path,
    work: &Path,
    tag: &str,
    done: &[PlatformBuilt],
    fat_index: &Index,
) -> Result<String> {
    let cannot = || format!("cannot write the OCI layout {}", dir.display());
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(cannot)?;
    let mut entries = Vec::new();
    for d in done {
        let layout = work.join(d.entry.platform.slug());
        let inner: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).with_context(cannot)?)
                .with_context(cannot)?;
        let manifest = &inner["manifests"][0];
        for blob in std::fs::read_dir(layout.join("blobs/sha256")).with_context(cannot)? {
            let blob = blob.with_context(cannot)?;
            let to = blobs.join(blob.file_name());
            if !to.exists() {
                std::fs::copy(blob.path(), &to).with_context(cannot)?;
            }
        }
        entries.push(SlimEntry {
            platform: d.entry.platform.clone(),
            digest: manifest["digest"].as_str().unwrap_or_default().to_owned(),
            media_type: platform::OCI_MANIFEST.to_owned(),
            size: manifest["size"].as_u64().unwrap_or(0),
            annotations: d.entry.annotations.clone(),
        });
    }
    let index = platform::write_index(&entries, &fat_index.annotations);
    let digest = crate::image::writer::sha256_digest(&index);
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &index)
        .with_context(cannot)?;
    let (_, tag_part) = split_reference(tag);
    let top = json!({
        "schemaVersion": 2,
        "mediaType": platform::OCI_INDEX,
        "manifests": [{
            "mediaType": platform::OCI_INDEX,
            "digest": digest,
            "size": index.len(),
            "annotations": {
                "org.opencontainers.image.ref.name": tag_part,
                "io.containerd.image.name": tag,
            },
        }],
    });
    std::fs::write(
        dir.join("oci-layout"),
        serde_json::to_vec(&json!({"imageLayoutVersion": "1.0.0"}))?,
    )
    .with_context(cannot)?;
    std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&top)?)
        .with_context(cannot)?;
    Ok(digest)
}

/// One platform in the report and the JSON summary.
fn platform_json(d: &PlatformBuilt, base: &Path) -> Value {
    json!({
        "platform": d.entry.platform.to_string(),
        "fat_digest": d.entry.digest,
        "tag": d.built.tag,
        "slim_id": d.built.slim_id,
        "fat_bytes": d.built.fat_size,
        "slim_bytes": d.built.slim_size,
        "ratio": (d.built.ratio * 100.0).round() / 100.0,
        "verified": d.built.code == 0,
        "probes": d.built.probes,
        "matched": d.built.matched,
        "verified_under": d.built.verified_under,
        "seccomp_derived_under_emulation": d.built.emulated,
        "report": d.output_dir.strip_prefix(base).unwrap_or(&d.output_dir).join("report.json"),
    })
}

/// `report.json` of the whole build in the plan's output dir: one section per platform (each
/// platform's own report is in its directory below).
fn write_report(
    plan: &BuildPlan,
    done: &[PlatformBuilt],
    index_digest: Option<&str>,
    pushed_to: Option<&str>,
) -> Result<std::path::PathBuf> {
    let report = json!({
        "target": plan.target,
        "tag": plan.tag,
        "index_digest": index_digest,
        "pushed_to": pushed_to,
        "platforms": done.iter().map(|d| platform_json(d, &plan.output_dir)).collect::<Vec<_>>(),
    });
    let path = plan.output_dir.join("report.json");
    std::fs::create_dir_all(&plan.output_dir)
        .and_then(|_| {
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&report).unwrap_or_default(),
            )
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn summary_json(
    plan: &BuildPlan,
    done: &[PlatformBuilt],
    index_digest: Option<&str>,
    pushed_to: Option<&str>,
    report: &Path,
) -> Value {
    let mut summary = Map::new();
    summary.insert("target".into(), json!(plan.target));
    summary.insert("tag".into(), json!(plan.tag));
    summary.insert(
        "verified".into(),
        json!(done.iter().all(|d| d.built.code == 0)),
    );
    summary.insert("index_digest".into(), json!(index_digest));
    summary.insert("pushed_to".into(), json!(pushed_to));
    summary.insert("report".into(), json!(report));
    summary.insert(
        "platforms".into(),
        json!(done
            .iter()
            .map(|d| platform_json(d, &plan.output_dir))
            .collect::<Vec<_>>()),
    );
    Value::Object(summary)
}

/// A registry's refusal as one line with a hint.
fn explain(err: DistributionError, operation: &str, reference: &str) -> anyhow::Error {
    let host = registry_host(reference);
    match err.status() {
        Some(401) | Some(403) => Fault::new(
            format!("{host} refused to {operation} {reference}: {err}"),
            format!(
                "log in first: `docker login {host}` (slim uses the login in \
                 ~/.docker/config.json; credential helpers are not read)"
            ),
        )
        .into(),
        Some(404) => UsageError::new(
            format!("{reference} is not in its registry: {err}"),
            "check the name and tag (`skopeo inspect docker://IMAGE` says the same)",
        )
        .into(),
        _ => Fault::new(
            format!("cannot {operation} {reference}: {err}"),
            format!(
                "is the registry up? (`curl http://{host}/v2/` answers when it is); slim speaks \
                 plain http only to a registry on this machine"
            ),
        )
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_gets_its_own_tag_within_the_limit() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(platform_tag("app:slim", &arm64), "app:slim-linux-arm64");
        assert_eq!(
            platform_tag(
                "127.0.0.1:5000/team/app",
                &Platform::parse("linux/arm/v7").unwrap()
            ),
            "127.0.0.1:5000/team/app:latest-linux-arm-v7"
        );
        let long = format!("app:{}", "v".repeat(MAX_TAG_LEN));
        let (_, part) = platform_tag(&long, &arm64)
            .rsplit_once(':')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        assert_eq!(part.len(), MAX_TAG_LEN);
        assert!(part.ends_with("v-linux-arm64"));
    }
}
