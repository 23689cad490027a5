//! `--attach-profiles`: the security profiles and the SBOM travel with the pushed slim image,
//! as OCI artifacts whose `subject` is its manifest (found with `oras discover`, or through the
//! referrers index under the tag `sha256-HEX` on a registry without the referrers API).

use std::path::Path;

use serde_json::json;

use crate::engine::distribution::{Descriptor, DistributionError, ReferrersVia, RegistryClient};

/// The artifact type of the security profiles.
pub const PROFILES_TYPE: &str = "application/vnd.slim.security-profiles.v1";
/// The artifact type of an SPDX SBOM.
pub const SBOM_TYPE: &str = "application/spdx+json";

/// The empty config of an artifact manifest (`{}`).
const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// An artifact: its type and the files in it, each with its media type.
struct Artifact {
    artifact_type: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const ARTIFACTS: [Artifact; 2] = [
    Artifact {
        artifact_type: PROFILES_TYPE,
        files: &[
            (
                super::SECCOMP_FILE,
                "application/vnd.docker.seccomp.v1+json",
            ),
            (
                super::OPERATOR_FILE,
                "application/vnd.slim.seccomp-profile.v1+yaml",
            ),
            (
                super::APPARMOR_FILE,
                "application/vnd.slim.apparmor.v1+text",
            ),
        ],
    },
    Artifact {
        artifact_type: SBOM_TYPE,
        files: &[(crate::packages::spdx::FILE, SBOM_TYPE)],
    },
];

/// One artifact attached.
#[derive(Clone, Debug)]
pub struct Attached {
    pub artifact_type: &'static str,
    pub digest: String,
    pub files: Vec<String>,
    pub via: ReferrersVia,
}

/// Attaches the files of `dir` (a build's output dir) to the pushed image `tag`, with the
/// login the docker CLI keeps; says what it attached.
pub async fn attach_to_pushed(
    tag: &str,
    dir: &Path,
    console: super::Console,
) -> anyhow::Result<()> {
    let registry = crate::engine::registry::registry_host(tag);
    let Ok(crate::image::reference::Reference::Named(named)) = crate::image::reference::parse(tag)
    else {
        return Ok(());
    };
    let repository = crate::engine::distribution::repository_path(&registry, &named.path);
    let reference = named.tag.clone().unwrap_or_else(|| "latest".to_owned());
    let mut client = RegistryClient::new(&registry, super::registry::login_for(tag));
    let failed = |err: &dyn std::fmt::Display| {
        crate::commands::Fault::new(
            format!("{tag} was pushed, but its profiles could not be attached: {err}"),
            format!(
                "the image is published without them; retry with the same command, or attach \
                 them by hand (`oras attach --artifact-type {PROFILES_TYPE} {tag} FILES`)"
            ),
        )
    };
    let subject = client
        .describe(&repository, &reference)
        .await
        .map_err(|err| failed(&err))?;
    let attached = attach(&mut client, &repository, &subject, dir)
        .await
        .map_err(|err| failed(&err))?;
    for line in lines(&attached) {
        console.say(line);
    }
    Ok(())
}

/// Attaches the files of `dir` (a build's output dir) to `subject` in `repository`; an
/// artifact whose files are all missing (no SBOM without a package database) is skipped.
pub async fn attach(
    client: &mut RegistryClient,
    repository: &str,
    subject: &Descriptor,
    dir: &Path,
) -> Result<Vec<Attached>, AttachError> {
    let mut attached = Vec::new();
    for artifact in &ARTIFACTS {
        let mut layers = Vec::new();
        let mut names = Vec::new();
        for (name, media_type) in artifact.files {
            let path = dir.join(name);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let digest = client.upload_blob(repository, &bytes).await?;
            layers.push(json!({
                "mediaType": media_type,
                "digest": digest,
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.title": name},
            }));
            names.push(name.to_string());
        }
        if layers.is_empty() {
            continue;
        }
        let config = client.upload_blob(repository, EMPTY_CONFIG).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": crate::image::platform::OCI_MANIFEST,
            "artifactType": artifact.artifact_type,
            "config": {"mediaType": EMPTY_TYPE, "digest": config, "size": EMPTY_CONFIG.len()},
            "layers": layers,
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
        });
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let descriptor = Descriptor {
            media_type: crate::image::platform::OCI_MANIFEST.to_owned(),
            digest: crate::image::writer::sha256_digest(&bytes),
            size: bytes.len() as u64,
        };
        let via = client
            .put_referrer(
                repository,
                &subject.digest,
                &descriptor,
                artifact.artifact_type,
                &bytes,
            )
            .await?;
        attached.push(Attached {
            artifact_type: artifact.artifact_type,
            digest: descriptor.digest,
            files: names,
            via,
        });
    }
    Ok(attached)
}

/// Why the attachment failed.
#[derive(Debug, thiserror::Error)]
#[error("attaching the profiles: {0}")]
pub struct AttachError(#[from] DistributionError);

/// The attachments as report lines.
pub fn lines(attached: &[Attached]) -> Vec<String> {
    attached
        .iter()
        .map(|a| {
            format!(
                "      attach    {} ({}) {}{}",
                a.artifact_type,
                a.files.join(", "),
                a.digest,
                match &a.via {
                    ReferrersVia::Api => String::new(),
                    ReferrersVia::TagSchema(tag) => format!(", listed under the tag {tag}"),
                }
            )
        })
        .collect()
}
