//! What slim needs to move images between the engine and a registry: when to pull, and the
//! credentials the docker CLI keeps for a registry (`docker login` writes them to
//! `~/.docker/config.json`, or `$DOCKER_CONFIG/config.json`). Pure: text in, values out.

use std::path::PathBuf;

/// When `slim build` pulls the fat image (`--pull`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Never: the image must be in the engine.
    Never,
    /// When the engine does not have it (the default; docker-slim's `--pull`).
    #[default]
    Missing,
    /// Always, so the engine has the registry's latest under that name.
    Always,
}

/// A registry login, as the engine takes it with a pull or push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The registry, as `docker login` named it.
    pub server: String,
}

/// The registry host of an image name (`127.0.0.1:5000/app:1` -> `127.0.0.1:5000`), Docker
/// Hub's for a name without one.
pub fn registry_host(reference: &str) -> String {
    match crate::image::reference::parse(reference) {
        Ok(crate::image::reference::Reference::Named(named)) => {
            named.domain.unwrap_or_else(|| DOCKER_HUB.to_owned())
        }
        _ => DOCKER_HUB.to_owned(),
    }
}

/// Docker Hub's registry, as the docker CLI keys its login.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The docker CLI's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The login `config` (the docker CLI's config.json) holds for registry `host`: its `auths`
/// entry (`auth`: base64 of `user:password`, or `username` and `password`). `None` when there
/// is none, or the login lives in a credential helper (not read).
pub fn credentials_for(config: &str, host: &str) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let wanted = |key: &str| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let key = key.strip_suffix("/v1").unwrap_or(key);
        key == host
            || (host == DOCKER_HUB && (key == "index.docker.io" || key == "registry-1.docker.io"))
    };
    let (key, entry) = auths.iter().find(|(key, _)| wanted(key))?;
    let server = match host {
        DOCKER_HUB => DOCKER_HUB_KEY.to_owned(),
        _ => key.clone(),
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64_decode(auth)?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            server,
        });
    }
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some(Credentials {
        username: field("username")?,
        password: field("password")?,
        server,
    })
}

/// Standard base64 (padding optional); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits = text.trim().trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= value(c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64_decode("Y"), None);
    }

    #[test]
    fn credentials_come_from_the_auths_entry_of_the_registry() {
        let config = r#"{"auths": {
            "127.0.0.1:5000": {"auth": "dXNlcjpzZWNyZXQ6d2l0aDpjb2xvbnM="},
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
            "registry.example:443": {"username": "u", "password": "p"}
        }, "credsStore": "desktop"}"#;
        let local = credentials_for(config, "127.0.0.1:5000").unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("user", "secret:with:colons")
        );
        assert_eq!(local.server, "127.0.0.1:5000");
        let hub = credentials_for(config, "docker.io").unwrap();
        assert_eq!(hub.username, "hub");
        assert_eq!(hub.server, "https://index.docker.io/v1/");
        let plain = credentials_for(config, "registry.example:443").unwrap();
        assert_eq!(
            (plain.username.as_str(), plain.password.as_str()),
            ("u", "p")
        );
        assert_eq!(credentials_for(config, "other:5000"), None);
        assert_eq!(credentials_for("not json", "127.0.0.1:5000"), None);
        assert_eq!(
            credentials_for(r#"{"auths": {"h": {"auth": "%%%"}}}"#, "h"),
            None
        );
    }

    #[test]
    fn the_registry_host_is_the_first_component_when_it_names_one() {
        assert_eq!(registry_host("127.0.0.1:5000/app:slim"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost:5000/team/app"), "localhost:5000");
        assert_eq!(registry_host("team/app:1"), "docker.io");
        assert_eq!(registry_host("app"), "docker.io");
        assert_eq!(registry_host(""), "docker.io");
    }
}
