//! slim as a Docker CLI plugin (`docker slim build ...`) and the docker CLI's endpoint choice.
//!
//! Installed as `docker-slim` in a cli-plugins directory, slim answers the
//! `docker-cli-plugin-metadata` handshake; `docker slim ARGS` then runs it as
//! `docker-slim [DOCKER GLOBAL FLAGS] slim ARGS`. The engine is the one the docker CLI would
//! use: `-H`/`--host`, else `DOCKER_HOST`, else `--context`/`DOCKER_CONTEXT`/the current
//! context of `$DOCKER_CONFIG/config.json` and that context's docker endpoint.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use sha2::Digest as _;

/// The name the docker CLI finds the plugin by.
pub const PLUGIN_FILE: &str = "docker-slim";

/// How slim was invoked.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// The docker CLI asks for the plugin's metadata.
    Metadata,
    /// Run with these arguments (argv[0] first); the docker CLI's global `--host`/`--context`
    /// when given before the plugin name.
    Run {
        args: Vec<OsString>,
        host: Option<String>,
        context: Option<String>,
    },
}

/// The metadata JSON of the plugin handshake.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "slim",
        "Version": env!("CARGO_PKG_VERSION"),
        "ShortDescription": "Make container images small by watching them run",
    })
    .to_string()
}

/// Reads the process arguments: as a plugin (argv[0] is `docker-slim`) they are
/// `[GLOBAL FLAGS] slim ARGS` and become `docker slim ARGS`; otherwise they pass as they are.
pub fn invocation(args: Vec<OsString>) -> Invocation {
    let as_plugin = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == PLUGIN_FILE);
    if !as_plugin {
        return Invocation::Run {
            args,
            host: None,
            context: None,
        };
    }
    if args
        .get(1)
        .is_some_and(|a| a == "docker-cli-plugin-metadata")
    {
        return Invocation::Metadata;
    }
    let (mut host, mut context) = (None, None);
    let mut rest = args.iter().skip(1);
    let mut after = Vec::new();
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if text == "slim" {
            after.extend(rest.cloned());
            break;
        }
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (text.into_owned(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().map(|v| v.to_string_lossy().into_owned()))
        };
        match flag.as_str() {
            "-H" | "--host" => host = value(),
            "-c" | "--context" => context = value(),
            "--config" | "-l" | "--log-level" | "--tlscacert" | "--tlscert" | "--tlskey" => {
                let _ = value();
            }
            _ => {} // other global flags (`--debug`, `--tls`) take no value
        }
    }
    let mut args = vec![OsString::from("docker slim")];
    args.extend(after);
    Invocation::Run {
        args,
        host,
        context,
    }
}

/// Why the docker CLI's endpoint could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("docker context `{0}` does not exist")]
    Missing(String),
    #[error("docker context `{name}` cannot be read ({path}): {reason}")]
    Unreadable {
        name: String,
        path: String,
        reason: String,
    },
}

/// The docker CLI's configuration dir: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".docker")
        })
}

/// The engine endpoint the docker CLI would use, when it is not the default socket: `host`,
/// else `DOCKER_HOST`, else the named or current context's endpoint.
pub fn docker_endpoint(
    host: Option<&str>,
    context: Option<&str>,
) -> Result<Option<String>, ContextError> {
    if let Some(host) = host {
        return Ok(Some(host.to_owned()));
    }
    if context.is_none() {
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            return Ok(Some(host));
        }
    }
    let config = docker_config_dir();
    let name = context
        .map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_CONTEXT").ok())
        .or_else(|| {
            let text = std::fs::read_to_string(config.join("config.json")).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            json["currentContext"].as_str().map(str::to_owned)
        })
        .filter(|n| !n.is_empty());
    let Some(name) = name.filter(|n| n != "default") else {
        return Ok(None);
    };
    let digest = hex(&sha2::Sha256::digest(name.as_bytes()));
    let meta = config.join("contexts/meta").join(digest).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|_| ContextError::Missing(name.clone()))?;
    let unreadable = |reason: String| ContextError::Unreadable {
        name: name.clone(),
        path: meta.display().to_string(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    json["Endpoints"]["docker"]["Host"]
        .as_str()
        .map(|h| Some(h.to_owned()))
        .ok_or_else(|| unreadable("no docker endpoint".into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where `slim install-plugin` puts the plugin: the user's cli-plugins dir, or with `system`
/// the system one (`/usr/local/lib/docker/cli-plugins`).
pub fn plugin_dir(system: bool) -> PathBuf {
    match system {
        true => PathBuf::from("/usr/local/lib/docker/cli-plugins"),
        false => docker_config_dir().join("cli-plugins"),
    }
}

/// Copies the running slim to `dir/docker-slim` (written beside it, then renamed into place).
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let me = std::env::current_exe()?;
    std::fs::create_dir_all(dir)?;
    let target = dir.join(PLUGIN_FILE);
    let partial = dir.join(format!(".{PLUGIN_FILE}.partial-{}", std::process::id()));
    let copied = std::fs::copy(&me, &partial).and_then(|_| {
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&partial, &target)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn as_a_plugin_the_docker_cli_arguments_become_slims() {
        assert_eq!(
            invocation(os(&[
                "/home/u/.docker/cli-plugins/docker-slim",
                "docker-cli-plugin-metadata"
            ])),
            Invocation::Metadata
        );
        assert_eq!(
            invocation(os(&[
                "docker-slim",
                "--context",
                "edge",
                "-H=tcp://127.0.0.1:2375",
                "--debug",
                "slim",
                "build",
                "--tag",
                "a:slim",
                "a:fat",
            ])),
            Invocation::Run {
                args: os(&["docker slim", "build", "--tag", "a:slim", "a:fat"]),
                host: Some("tcp://127.0.0.1:2375".into()),
                context: Some("edge".into()),
            }
        );
        // Not a plugin: untouched, even with a `slim` argument.
        let plain = os(&["slim", "build", "slim"]);
        assert_eq!(
            invocation(plain.clone()),
            Invocation::Run {
                args: plain,
                host: None,
                context: None
            }
        );
        let meta: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(meta["SchemaVersion"], "0.1.0");
    }
}
