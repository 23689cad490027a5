//! Platforms (`linux/arm64`, `linux/arm/v7`) and multi-platform image indexes: an OCI image
//! index or a Docker manifest list read from a registry, the entries `--platform` selects from
//! it, and the index slim writes over the slim images. Pure: text in, values out; never panics,
//! whatever a registry sends.

use std::fmt;

use serde_json::{json, Map, Value};

/// The media type of an OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of a Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of a Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Most entries slim reads of one index (real ones have a handful).
const MAX_ENTRIES: usize = 256;

/// An operating system, architecture and optional variant, as image configs and indexes name
/// them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Why a `--platform` value or an index is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("`{0}` is not a platform (OS/ARCH[/VARIANT], as in linux/arm64 or linux/arm/v7)")]
    Syntax(String),
    #[error("--platform lists {0} twice")]
    Twice(String),
    #[error("the image index is not JSON with a `manifests` list: {0}")]
    NotAnIndex(String),
    #[error("the image index has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
}

impl Platform {
    /// Parses `OS/ARCH[/VARIANT]`, with the names normalized as the engine does (`aarch64` is
    /// `arm64`, `x86_64` is `amd64`, arm64's `v8` is implied).
    pub fn parse(text: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid_part(p)) {
            return Err(PlatformError::Syntax(text.to_owned()));
        }
        Ok(Self::normalized(
            parts[0],
            parts[1],
            parts.get(2).map(|v| v.to_string()),
        ))
    }

    /// A platform with the engine's normal names.
    pub fn normalized(os: &str, architecture: &str, variant: Option<String>) -> Self {
        let os = os.to_ascii_lowercase();
        let (architecture, implied) = match architecture.to_ascii_lowercase().as_str() {
            "aarch64" | "arm64" => ("arm64".to_owned(), Some("v8")),
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_owned(), None),
            "armhf" | "arm" => ("arm".to_owned(), Some("v7")),
            "armel" => ("arm".to_owned(), Some("v6")),
            "i386" | "i686" | "386" => ("386".to_owned(), None),
            other => (other.to_owned(), None),
        };
        let variant = variant
            .map(|v| v.to_ascii_lowercase())
            .filter(|v| Some(v.as_str()) != implied || architecture == "arm");
        // arm's default variant is v7 (as the engine picks it); arm64's v8 is left implied.
        let variant = match (architecture.as_str(), variant) {
            ("arm", None) => implied.map(str::to_owned),
            (_, variant) => variant,
        };
        Self {
            os,
            architecture,
            variant,
        }
    }

    /// The platform of an index entry's `platform` object; `None` when a part is not a plain
    /// name (a registry's text becomes tags and directory names).
    fn from_json(value: &Value) -> Option<Self> {
        let os = value.get("os")?.as_str().filter(|p| valid_part(p))?;
        let architecture = value
            .get("architecture")?
            .as_str()
            .filter(|p| valid_part(p))?;
        let variant = match value.get("variant").and_then(Value::as_str) {
            None | Some("") => None,
            Some(variant) if valid_part(variant) => Some(variant.to_owned()),
            Some(_) => return None,
        };
        Some(Self::normalized(os, architecture, variant))
    }

    /// The `platform` object of an index entry.
    pub fn to_json(&self) -> Value {
        let mut platform = json!({"os": self.os, "architecture": self.architecture});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }

    /// A tag and directory name for it: `linux-arm64`, `linux-arm-v7`.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

/// A platform part: a short name of letters, digits, `_`, `-` and `.`, starting with a letter
/// or digit.
fn valid_part(part: &str) -> bool {
    part.len() <= 32
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Which platforms of a multi-platform image `--platform` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformSelection {
    /// Every platform the index has (`--platform all`).
    All,
    /// These, in this order.
    Listed(Vec<Platform>),
}

impl PlatformSelection {
    /// Parses `all` or a comma-separated list of platforms.
    pub fn parse(text: &str) -> Result<Self, PlatformError> {
        if text.trim() == "all" {
            return Ok(Self::All);
        }
        let mut listed: Vec<Platform> = Vec::new();
        for part in text.split(',') {
            let platform = Platform::parse(part)?;
            if listed.iter().any(|p| p.slug() == platform.slug()) {
                return Err(PlatformError::Twice(platform.to_string()));
            }
            listed.push(platform);
        }
        Ok(Self::Listed(listed))
    }
}

/// One image of an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub platform: Platform,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// The entry's own annotations, kept for the slim index.
    pub annotations: Map<String, Value>,
}

/// A multi-platform image index, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Index {
    /// The images with a platform (attestations and other artifacts left out).
    pub entries: Vec<Entry>,
    /// The index's own annotations.
    pub annotations: Map<String, Value>,
}

/// Whether a media type is a multi-platform index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

impl Index {
    /// Reads an index document. Entries without a usable platform, with an `unknown` one, or
    /// marked as attestations are not images to slim and are left out.
    pub fn parse(bytes: &[u8]) -> Result<Self, PlatformError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| PlatformError::NotAnIndex(e.to_string()))?;
        let Some(manifests) = doc.get("manifests").and_then(Value::as_array) else {
            return Err(PlatformError::NotAnIndex("no `manifests` list".into()));
        };
        if manifests.len() > MAX_ENTRIES {
            return Err(PlatformError::TooManyEntries);
        }
        let annotations_of = |value: &Value| {
            value
                .get("annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let entries = manifests
            .iter()
            .filter_map(|m| {
                let platform = Platform::from_json(m.get("platform")?)?;
                if platform.os == "unknown" || platform.architecture == "unknown" {
                    return None;
                }
                let annotations = annotations_of(m);
                if annotations.contains_key("vnd.docker.reference.type") {
                    return None; // an attestation manifest, not an image
                }
                let digest = m.get("digest")?.as_str()?;
                if !is_sha256_digest(digest) {
                    return None;
                }
                Some(Entry {
                    platform,
                    digest: digest.to_owned(),
                    media_type: m
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .unwrap_or(OCI_MANIFEST)
                        .to_owned(),
                    size: m.get("size").and_then(Value::as_u64).unwrap_or(0),
                    annotations,
                })
            })
            .collect();
        Ok(Self {
            entries,
            annotations: annotations_of(&doc),
        })
    }

    /// The entries `selection` names, in its order (the index's order for `All`); the listed
    /// platforms the index lacks are the error.
    pub fn select(&self, selection: &PlatformSelection) -> Result<Vec<Entry>, Vec<Platform>> {
        match selection {
            PlatformSelection::All => {
                // One image per tag and directory name: a later entry whose name would be the
                // same (`linux/arm/v7` and `linux/arm-v7`) is left out.
                let mut seen = Vec::new();
                Ok(self
                    .entries
                    .iter()
                    .filter(|e| {
                        let slug = e.platform.slug();
                        let first = !seen.contains(&slug);
                        seen.push(slug);
                        first
                    })
                    .cloned()
                    .collect())
            }
            PlatformSelection::Listed(listed) => {
                let mut found = Vec::new();
                let mut missing = Vec::new();
                for platform in listed {
                    match self.entries.iter().find(|e| &e.platform == platform) {
                        Some(entry) => found.push(entry.clone()),
                        None => missing.push(platform.clone()),
                    }
                }
                match missing.is_empty() {
                    true => Ok(found),
                    false => Err(missing),
                }
            }
        }
    }

    /// The platforms the index offers, for messages.
    pub fn platforms(&self) -> String {
        let names: Vec<String> = self
            .entries
            .iter()
            .map(|e| e.platform.to_string())
            .collect();
        match names.is_empty() {
            true => "none".to_owned(),
            false => names.join(", "),
        }
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// One slim image to list in the slim index.
#[derive(Clone, Debug, PartialEq)]
pub struct SlimEntry {
    pub platform: Platform,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub annotations: Map<String, Value>,
}

/// The OCI image index over the slim images, with the fat index's annotations.
pub fn write_index(entries: &[SlimEntry], annotations: &Map<String, Value>) -> Vec<u8> {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut entry = json!({
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "platform": e.platform.to_json(),
            });
            if !e.annotations.is_empty() {
                entry["annotations"] = Value::Object(e.annotations.clone());
            }
            entry
        })
        .collect();
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    if !annotations.is_empty() {
        index["annotations"] = Value::Object(annotations.clone());
    }
    serde_json::to_vec_pretty(&index).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn platforms_parse_and_normalize_as_the_engine_names_them() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(arm64, Platform::parse("linux/aarch64").unwrap());
        assert_eq!(arm64, Platform::parse("linux/arm64/v8").unwrap());
        assert_eq!(arm64.to_string(), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        let armv7 = Platform::parse("linux/arm").unwrap();
        assert_eq!(armv7.to_string(), "linux/arm/v7");
        assert_eq!(armv7.slug(), "linux-arm-v7");
        assert_eq!(
            Platform::parse("linux/arm/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/am d64",
            "linux/../x",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_selection_is_all_or_a_list_without_repeats() {
        assert_eq!(
            PlatformSelection::parse("all").unwrap(),
            PlatformSelection::All
        );
        let listed = PlatformSelection::parse("linux/amd64,linux/arm64").unwrap();
        assert_eq!(
            listed,
            PlatformSelection::Listed(vec![
                Platform::parse("linux/amd64").unwrap(),
                Platform::parse("linux/arm64").unwrap()
            ])
        );
        assert_eq!(
            PlatformSelection::parse("linux/arm64,linux/aarch64"),
            Err(PlatformError::Twice("linux/arm64".into()))
        );
        assert!(PlatformSelection::parse("linux/amd64,").is_err());
    }

    fn index() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "annotations": {"org.opencontainers.image.source": "https://example.test/app"},
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": digest(1), "size": 500,
                 "platform": {"os": "linux", "architecture": "amd64"},
                 "annotations": {"org.opencontainers.image.revision": "abc"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(2), "size": 501,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(3), "size": 502,
                 "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
                {"mediaType": OCI_MANIFEST, "digest": "sha256:short", "size": 1,
                 "platform": {"os": "linux", "architecture": "386"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(5), "size": 1,
                 "platform": {"os": "linux", "architecture": "../../etc"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(4)}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn an_index_keeps_its_images_and_leaves_attestations_out() {
        let index = Index::parse(&index()).unwrap();
        assert_eq!(index.platforms(), "linux/amd64, linux/arm64");
        assert_eq!(index.entries[0].digest, digest(1));
        assert_eq!(
            index.entries[0].annotations["org.opencontainers.image.revision"],
            "abc"
        );
        assert_eq!(
            index.annotations["org.opencontainers.image.source"],
            "https://example.test/app"
        );
        let all = index.select(&PlatformSelection::All).unwrap();
        assert_eq!(all.len(), 2);
        let listed = PlatformSelection::parse("linux/arm64,linux/amd64").unwrap();
        let picked = index.select(&listed).unwrap();
        assert_eq!(picked[0].digest, digest(2));
        assert_eq!(picked[1].digest, digest(1));
        let missing = PlatformSelection::parse("linux/amd64,linux/arm/v7").unwrap();
        assert_eq!(
            index.select(&missing),
            Err(vec![Platform::parse("linux/arm/v7").unwrap()])
        );
    }

    #[test]
    fn hostile_indexes_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"[]",
            b"{\"manifests\": 3}",
            b"{\"manifests\": [1, null, {\"platform\": 5}]}",
            b"\xff\xfe",
        ] {
            match Index::parse(bad) {
                Ok(index) => assert!(index.entries.is_empty()),
                Err(err) => assert!(!err.to_string().is_empty()),
            }
        }
        let many = json!({"manifests": vec![json!({}); MAX_ENTRIES + 1]});
        assert_eq!(
            Index::parse(&serde_json::to_vec(&many).unwrap()),
            Err(PlatformError::TooManyEntries)
        );
    }

    #[test]
    fn the_slim_index_lists_each_platform_with_the_fat_annotations() {
        let fat = Index::parse(&index()).unwrap();
        let entries = vec![
            SlimEntry {
                platform: Platform::parse("linux/amd64").unwrap(),
                digest: digest(9),
                media_type: DOCKER_MANIFEST.into(),
                size: 429,
                annotations: fat.entries[0].annotations.clone(),
            },
            SlimEntry {
                platform: Platform::parse("linux/arm/v7").unwrap(),
                digest: digest(8),
                media_type: DOCKER_MANIFEST.into(),
                size: 430,
                annotations: Map::new(),
            },
        ];
        let written = write_index(&entries, &fat.annotations);
        let back: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(back["mediaType"], OCI_INDEX);
        assert_eq!(back["annotations"], json!(fat.annotations));
        assert_eq!(back["manifests"][0]["digest"], digest(9));
        assert_eq!(
            back["manifests"][0]["annotations"]["org.opencontainers.image.revision"],
            "abc"
        );
        assert_eq!(
            back["manifests"][1]["platform"],
            json!({"os": "linux", "architecture": "arm", "variant": "v7"})
        );
        assert!(back["manifests"][1].get("annotations").is_none());
        let read = Index::parse(&written).unwrap();
        assert_eq!(read.entries.len(), 2);
    }
}
