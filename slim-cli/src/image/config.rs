//! The image config (Docker's and OCI's image JSON) as slim reads it: a typed view of the
//! fields the build uses, read once when the image is read. The raw JSON stays with the image:
//! the slim image's config is written from it, so fields slim does not know are kept. Layers and
//! configs are untrusted: reading never fails, a field of the wrong type reads as absent.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::syscalls::Arch;

/// What the build reads of an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `architecture` as the config says it (`amd64`, `arm64`...).
    pub architecture: Option<String>,
    pub os: Option<String>,
    /// `config.Entrypoint` and `config.Cmd`; `None` when unset (or null).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `config.Env`, `NAME=value` entries.
    pub env: Vec<String>,
    /// `config.WorkingDir`, `None` when unset or empty.
    pub working_dir: Option<String>,
    /// `config.Volumes`: the declared volumes' paths.
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `created_by` of each history entry that made a layer (not the empty ones), in order.
    pub layer_history: Vec<String>,
    /// `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value.as_array().map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

impl ImageConfig {
    /// Reads the fields slim uses from the raw config.
    pub fn from_json(json: &Value) -> Self {
        let config = &json["config"];
        let keys = |value: &Value| -> Vec<String> {
            value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        Self {
            architecture: string(&json["architecture"]),
            os: string(&json["os"]),
            entrypoint: strings(&config["Entrypoint"]),
            cmd: strings(&config["Cmd"]),
            env: strings(&config["Env"]).unwrap_or_default(),
            working_dir: string(&config["WorkingDir"]).filter(|w| !w.is_empty()),
            volumes: keys(&config["Volumes"]),
            labels: config["Labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            layer_history: json["history"]
                .as_array()
                .map(|history| {
                    history
                        .iter()
                        .filter(|h| h["empty_layer"].as_bool() != Some(true))
                        .map(|h| h["created_by"].as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            diff_ids: strings(&json["rootfs"]["diff_ids"]).unwrap_or_default(),
        }
    }

    /// The architecture as slim's syscall tables know it.
    pub fn arch(&self) -> Option<Arch> {
        self.architecture.as_deref().and_then(Arch::from_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fields_the_build_uses() {
        let config = ImageConfig::from_json(&json!({
            "architecture": "arm64",
            "os": "linux",
            "config": {
                "Entrypoint": null,
                "Cmd": ["python3", "-m", "http.server"],
                "Env": ["PATH=/usr/bin", 7],
                "WorkingDir": "",
                "Volumes": {"/data": {}},
                "Labels": {"a": "b", "n": 1}
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
            "history": [
                {"created_by": "ADD rootfs"},
                {"created_by": "ENV X=1", "empty_layer": true},
                {"created_by": "COPY app"}
            ]
        }));
        assert_eq!(config.arch(), Some(Arch::Aarch64));
        assert_eq!(config.entrypoint, None);
        assert_eq!(
            config.cmd.as_deref(),
            Some(&["python3".to_owned(), "-m".into(), "http.server".into()][..])
        );
        assert_eq!(
            config.env,
            ["PATH=/usr/bin"],
            "a non-string entry is skipped"
        );
        assert_eq!(config.working_dir, None, "empty means unset");
        assert_eq!(config.volumes, ["/data"]);
        assert_eq!(config.labels.len(), 1);
        assert_eq!(config.layer_history, ["ADD rootfs", "COPY app"]);
        assert_eq!(config.diff_ids.len(), 2);
    }

    #[test]
    fn anything_else_reads_as_absent_never_as_an_error() {
        for odd in [
            json!(null),
            json!([]),
            json!("text"),
            json!({"config": "x", "history": {}, "rootfs": 3, "architecture": 5}),
        ] {
            assert_eq!(
                ImageConfig::from_json(&odd),
                ImageConfig::default(),
                "{odd}"
            );
        }
    }
}
