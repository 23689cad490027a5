//! A small client of the OCI distribution API, for what the engine's API cannot do: read a
//! multi-platform image index (its entries, platforms and annotations), describe a pushed
//! manifest, and put an index. Registries on loopback are spoken to over plain http (as the
//! engine treats them as insecure by default), all others over https with the system's CA
//! bundle. The login is the docker CLI's (Basic), exchanged for a token when the registry asks
//! for one (Bearer). What a registry sends is untrusted: sizes capped, digests checked.

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::{
    engine::registry::Credentials,
    image::writer::hex,
    prober::http::{self, Answer, HttpError, Request},
};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of a manifest or index slim reads (the distribution spec's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// The manifest and index types slim asks for.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The media types of manifests and indexes.
const MANIFEST_TYPES: [&str; 4] = [
    crate::image::platform::OCI_INDEX,
    crate::image::platform::DOCKER_LIST,
    crate::image::platform::OCI_MANIFEST,
    crate::image::platform::DOCKER_MANIFEST,
];

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("cannot reach {registry}: {source}")]
    Unreachable {
        registry: String,
        #[source]
        source: HttpError,
    },
    #[error("{registry} answered {status} to {what}{}", message_suffix(.message))]
    Status {
        registry: String,
        status: u16,
        what: String,
        message: String,
    },
    #[error("{registry} sent {what} slim cannot use: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },
}

fn message_suffix(message: &str) -> String {
    match message.is_empty() {
        true => String::new(),
        false => format!(": {message}"),
    }
}

impl DistributionError {
    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A manifest or index as read: its bytes, their digest and media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// What a registry says of a manifest without sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// How an artifact was made findable from its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferrersVia {
    /// The registry's referrers API.
    Api,
    /// The referrers index under this tag.
    TagSchema(String),
}

/// A registry, with the login for it.
pub struct RegistryClient {
    /// As image names give it (`127.0.0.1:5000`, `docker.io`).
    registry: String,
    https: bool,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
    /// A token the registry's auth server gave, for the scope last asked.
    token: Option<String>,
}

/// Whether `host` (without port) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` -> (`host`, port), `[v6]:port` too.
fn split_host_port(text: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            return (host.to_owned(), port);
        }
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (text.to_owned(), default_port),
    }
}

/// The repository path a registry knows a name's path by (Docker Hub's official images live
/// under `library/`).
pub fn repository_path(registry: &str, path: &str) -> String {
    match registry == "docker.io" && !path.contains('/') {
        true => format!("library/{path}"),
        false => path.to_owned(),
    }
}

impl RegistryClient {
    /// A client of `registry` (`HOST[:PORT]` as an image name gives it).
    pub fn new(registry: &str, credentials: Option<Credentials>) -> Self {
        let api = match registry {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let (host, _) = split_host_port(api, 0);
        let https = !is_loopback(&host);
        let (host, port) = split_host_port(api, if https { 443 } else { 80 });
        Self {
            registry: registry.to_owned(),
            https,
            host,
            port,
            credentials,
            token: None,
        }
    }

    /// Reads the manifest or index `reference` (a tag or digest) of `repository`.
    pub async fn manifest(
        &mut self,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, DistributionError> {
        let what = format!("the manifest of {repository}:{reference}");
        let answer = self
            .request(
                "GET",
                &format!("/v2/{repository}/manifests/{reference}"),
                &[("Accept", ACCEPT)],
                None,
                (&what, repository, "pull"),
            )
            .await?;
        if answer.body.len() > MAX_MANIFEST {
            return Err(self.protocol(&what, "larger than 4 MiB"));
        }
        let digest = format!("sha256:{}", hex(&Sha256::digest(&answer.body)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(self.protocol(&what, "bytes that do not match their digest"));
        }
        // The header, when it names a manifest type; else what the document says it is (a
        // proxy may serve `application/json`).
        let header = answer
            .content_type
            .as_deref()
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|t| MANIFEST_TYPES.contains(&t.as_str()));
        let media_type = header
            .or_else(|| media_type_of(&answer.body))
            .unwrap_or_default();
        Ok(Manifest {
            media_type,
            digest,
            bytes: answer.body,
        })
    }

    /// The digest, size and media type of `reference` in `repository`.
    pub async fn describe(
        &mut self,
        repository: &str,
        reference: &str,
    ) -> Result<Descriptor, DistributionError> {
        let manifest = self.manifest(repository, reference).await?;
        Ok(Descriptor {
            media_type: manifest.media_type,
            digest: manifest.digest,
            size: manifest.bytes.len() as u64,
        })
    }

    /// Puts `bytes` (a manifest or index of `media_type`) as `reference` of `repository`;
    /// returns its digest.
    pub async fn put_manifest(
        &mut self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, DistributionError> {
        self.put_manifest_answer(repository, reference, media_type, bytes)
            .await
            .map(|(digest, _)| digest)
    }

    async fn put_manifest_answer(
        &mut self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(String, Answer), DistributionError> {
        let what = format!("the upload of {repository}:{reference}");
        let answer = self
            .request(
                "PUT",
                &format!("/v2/{repository}/manifests/{reference}"),
                &[("Content-Type", media_type)],
                Some(bytes.to_vec()),
                (&what, repository, "pull,push"),
            )
            .await?;
        Ok((format!("sha256:{}", hex(&Sha256::digest(bytes))), answer))
    }

    /// Uploads `bytes` as a blob of `repository` (in one request), unless the registry has it;
    /// returns its digest.
    pub async fn upload_blob(
        &mut self,
        repository: &str,
        bytes: &[u8],
    ) -> Result<String, DistributionError> {
        let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
        let what = format!("the upload of a blob to {repository}");
        let scope = (what.as_str(), repository, "pull,push");
        let blob = format!("/v2/{repository}/blobs/{digest}");
        if self.request("HEAD", &blob, &[], None, scope).await.is_ok() {
            return Ok(digest);
        }
        let started = self
            .request(
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                None,
                scope,
            )
            .await?;
        let location = header(&started, "location")
            .ok_or_else(|| self.protocol(&what, "no upload location"))?;
        // The upload continues on this registry only: a location elsewhere is refused.
        let path = match location.starts_with('/') {
            true => location,
            false => match parse_url(&location) {
                Some((_, host, port, path)) if host == self.host && port == self.port => path,
                _ => return Err(self.protocol(&what, "an upload location on another host")),
            },
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        self.request(
            "PUT",
            &format!("{path}{separator}digest={}", percent_encode(&digest)),
            &[("Content-Type", "application/octet-stream")],
            Some(bytes.to_vec()),
            scope,
        )
        .await?;
        Ok(digest)
    }

    /// Puts the artifact manifest `bytes` (whose `subject` is `subject`) by its digest and
    /// makes it findable from the subject: a registry with the referrers API does that itself
    /// (it answers with `OCI-Subject`); for one without, the referrers index under the tag
    /// `sha256-HEX` gets the artifact (the OCI distribution spec's fallback).
    pub async fn put_referrer(
        &mut self,
        repository: &str,
        subject: &str,
        artifact: &Descriptor,
        artifact_type: &str,
        bytes: &[u8],
    ) -> Result<ReferrersVia, DistributionError> {
        let (_, answer) = self
            .put_manifest_answer(repository, &artifact.digest, &artifact.media_type, bytes)
            .await?;
        if header(&answer, "oci-subject").is_some() {
            return Ok(ReferrersVia::Api);
        }
        let tag = subject.replace(':', "-");
        let mut manifests = match self.manifest(repository, &tag).await {
            Ok(found) => serde_json::from_slice::<serde_json::Value>(&found.bytes)
                .ok()
                .and_then(|doc| doc.get("manifests")?.as_array().cloned())
                .unwrap_or_default(),
            Err(err) if err.status() == Some(404) => Vec::new(),
            Err(err) => return Err(err),
        };
        manifests.retain(|m| m.get("digest").and_then(|d| d.as_str()) != Some(&artifact.digest));
        manifests.push(serde_json::json!({
            "mediaType": artifact.media_type,
            "digest": artifact.digest,
            "size": artifact.size,
            "artifactType": artifact_type,
        }));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::image::platform::OCI_INDEX,
            "manifests": manifests,
        });
        let index = serde_json::to_vec(&index).unwrap_or_default();
        self.put_manifest(repository, &tag, crate::image::platform::OCI_INDEX, &index)
            .await?;
        Ok(ReferrersVia::TagSchema(tag))
    }

    fn protocol(&self, what: &str, reason: &str) -> DistributionError {
        DistributionError::Protocol {
            registry: self.registry.clone(),
            what: what.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// One request, logging in as the registry asks (once) when it answers 401.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        (what, repository, actions): (&str, &str, &str),
    ) -> Result<Answer, DistributionError> {
        let mut answer = self.send(method, path, headers, body.clone()).await?;
        if answer.status == 401 {
            let challenge = header(&answer, "www-authenticate").unwrap_or_default();
            self.log_in(&challenge, repository, actions).await?;
            answer = self.send(method, path, headers, body).await?;
        }
        if !(200..300).contains(&answer.status) {
            return Err(DistributionError::Status {
                registry: self.registry.clone(),
                status: answer.status,
                what: what.to_owned(),
                message: error_message(&answer.body),
            });
        }
        Ok(answer)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, DistributionError> {
        let mut request = Request {
            https: self.https,
            host: self.host.clone(),
            port: self.port,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
            basic_auth: None,
        };
        match (&self.token, &self.credentials) {
            (Some(token), _) => request
                .headers
                .push(("Authorization".into(), format!("Bearer {token}"))),
            (None, Some(login)) => {
                request.basic_auth = Some((login.username.clone(), login.password.clone()))
            }
            (None, None) => {}
        }
        http::send_checked(&request, TIMEOUT)
            .await
            .map_err(|source| DistributionError::Unreachable {
                registry: self.registry.clone(),
                source,
            })
    }

    /// Answers a 401: Basic needs the login slim already sends (so it was refused); Bearer
    /// sends it to the named auth server for a token of the needed scope.
    async fn log_in(
        &mut self,
        challenge: &str,
        repository: &str,
        actions: &str,
    ) -> Result<(), DistributionError> {
        let refused = |registry: &str, message: &str| DistributionError::Status {
            registry: registry.to_owned(),
            status: 401,
            what: "the login".to_owned(),
            message: message.to_owned(),
        };
        let Some(bearer) = parse_bearer(challenge) else {
            return Err(refused(
                &self.registry,
                match self.credentials {
                    Some(_) => "the user name or password was refused",
                    None => "a login is needed",
                },
            ));
        };
        // A new token for every challenge: the one held may be for another scope (a pull
        // token meets a push) or have expired. Each request logs in at most once.
        self.token = None;
        let Some((https, host, port, realm_path)) = parse_url(&bearer.realm) else {
            return Err(self.protocol("a login challenge", "a realm that is not an http(s) URL"));
        };
        // The login goes to the realm: never in the clear, unless all of it stays on this
        // machine.
        if !https && self.https && !is_loopback(&host) {
            return Err(self.protocol(
                "a login challenge",
                "a realm over plain http for a registry spoken to over https",
            ));
        }
        let scope = bearer
            .scope
            .unwrap_or_else(|| format!("repository:{repository}:{actions}"));
        let mut query = vec![format!("scope={}", percent_encode(&scope))];
        if let Some(service) = &bearer.service {
            query.insert(0, format!("service={}", percent_encode(service)));
        }
        let separator = if realm_path.contains('?') { '&' } else { '?' };
        let request = Request {
            https,
            host,
            port,
            method: "GET".into(),
            path: format!("{realm_path}{separator}{}", query.join("&")),
            headers: Vec::new(),
            body: None,
            basic_auth: self
                .credentials
                .as_ref()
                .map(|c| (c.username.clone(), c.password.clone())),
        };
        let answer = http::send_checked(&request, TIMEOUT)
            .await
            .map_err(|source| DistributionError::Unreachable {
                registry: bearer.realm.clone(),
                source,
            })?;
        if !(200..300).contains(&answer.status) {
            return Err(refused(&self.registry, &error_message(&answer.body)));
        }
        let token: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|_| self.protocol("a token", "an answer that is not JSON"))?;
        let token = token
            .get("token")
            .or_else(|| token.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| self.protocol("a token", "no usable `token`"))?;
        self.token = Some(token.to_owned());
        Ok(())
    }
}

/// A header's value.
fn header(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// The `mediaType` a manifest document names itself.
fn media_type_of(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    doc.get("mediaType")?.as_str().map(str::to_owned)
}

/// The registry's own words from an error body (`{"errors":[{"message":...}]}`), one line.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|doc| doc.get("errors")?.as_array()?.first().cloned())
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            format!("{} {}", code.to_lowercase().replace('_', " "), message)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// A `Bearer realm="...",service="...",scope="..."` challenge.
#[derive(Debug, PartialEq, Eq)]
struct Bearer {
    realm: String,
    service: Option<String>,
    scope: Option<String>,
}

fn parse_bearer(challenge: &str) -> Option<Bearer> {
    let (scheme, params) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        match key.as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `http(s)://HOST[:PORT][/PATH[?QUERY]]` -> (https, host, port, path).
fn parse_url(url: &str) -> Option<(bool, String, u16, String)> {
    let (https, rest) = match url.split_once("://")? {
        ("https", rest) => (true, rest),
        ("http", rest) => (false, rest),
        _ => return None,
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], rest[at..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = match path.starts_with('?') {
        true => format!("/{path}"),
        false => path,
    };
    let (host, port) = split_host_port(authority, if https { 443 } else { 80 });
    Some((https, host, port, path))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http_others_https() {
        let local = RegistryClient::new("127.0.0.1:5000", None);
        assert!(!local.https);
        assert_eq!((local.host.as_str(), local.port), ("127.0.0.1", 5000));
        let named = RegistryClient::new("localhost", None);
        assert_eq!((named.https, named.port), (false, 80));
        let v6 = RegistryClient::new("[::1]:5001", None);
        assert_eq!((v6.https, v6.host.as_str(), v6.port), (false, "::1", 5001));
        let hub = RegistryClient::new("docker.io", None);
        assert_eq!(
            (hub.https, hub.host.as_str(), hub.port),
            (true, "registry-1.docker.io", 443)
        );
        let other = RegistryClient::new("ghcr.io", None);
        assert_eq!((other.https, other.port), (true, 443));
        assert_eq!(repository_path("docker.io", "python"), "library/python");
        assert_eq!(repository_path("docker.io", "team/app"), "team/app");
        assert_eq!(repository_path("127.0.0.1:5000", "app"), "app");
    }

    #[test]
    fn bearer_challenges_are_read_as_registries_write_them() {
        let challenge = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#;
        assert_eq!(
            parse_bearer(challenge),
            Some(Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/python:pull".into()),
            })
        );
        assert_eq!(
            parse_bearer(r#"Bearer realm=https://a.test/t, service=x"#).map(|b| b.service),
            Some(Some("x".into()))
        );
        assert_eq!(parse_bearer(r#"Basic realm="slim-test""#), None);
        for hostile in [
            "",
            "Bearer",
            "Bearer realm=\"unterminated",
            "Bearer =,=,",
            "Bearer service=x",
        ] {
            assert_eq!(parse_bearer(hostile), None, "{hostile}");
        }
    }

    #[test]
    fn realm_urls_and_query_values() {
        assert_eq!(
            parse_url("https://auth.docker.io/token"),
            Some((true, "auth.docker.io".into(), 443, "/token".into()))
        );
        assert_eq!(
            parse_url("http://127.0.0.1:5001?x=1"),
            Some((false, "127.0.0.1".into(), 5001, "/?x=1".into()))
        );
        assert_eq!(parse_url("ftp://a/b"), None);
        assert_eq!(parse_url("https://user@evil/t"), None);
        assert_eq!(parse_url("https:///t"), None);
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn registry_errors_are_one_short_line() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(body), "manifest unknown manifest unknown");
        assert_eq!(error_message(b"bad\ngateway\x07"), "bad gateway");
        assert_eq!(error_message(&[b'x'; 1000]).len(), 200);
    }
}
