//! docker-slim's HTTP probe command file, accepted as is:
//! `{"commands": [{"protocol": "http", "method": "GET", "resource": "/", "port": 8080,
//! "headers": ["Name: value"], "body": "...", "body_file": "...", "username": "...",
//! "password": "..."}]}`. Syntax and type errors carry `file:line:col`; unknown fields are
//! reported as warnings, never silently dropped.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A probe file that does not parse: shown as `probe.json:LINE:COL: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFileError {
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot read probe file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The protocol of an HTTP probe, written in any case in probe files (`"HTTPS"`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https` in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }
}

impl TryFrom<String> for Scheme {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("protocol `{text}` is not http or https"))
    }
}

/// One HTTP probe.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct HttpCommand {
    #[serde(default)]
    pub protocol: Scheme,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_resource")]
    pub resource: String,
    /// Container port; default: every exposed TCP port.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// File whose bytes are the body, relative to the probe file.
    #[serde(default)]
    pub body_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}
fn default_resource() -> String {
    "/".into()
}

#[derive(Debug, Deserialize)]
struct FileShape {
    #[serde(default)]
    commands: Vec<HttpCommand>,
}

const KNOWN_TOP: &[&str] = &["commands"];
const KNOWN_COMMAND: &[&str] = &[
    "protocol",
    "method",
    "resource",
    "port",
    "headers",
    "body",
    "body_file",
    "username",
    "password",
];

/// A parsed probe file: its commands and warnings about what it contained that slim ignores.
#[derive(Debug)]
pub struct ProbeFile {
    pub commands: Vec<HttpCommand>,
    pub warnings: Vec<String>,
}

/// Reads and checks a probe file.
/// One inline probe as docker-slim's `--http-probe-cmd` writes it: `[PROTO:][METHOD:]PATH`
/// (`/health`, `POST:/api`, `https:GET:/`; `crawl:` stands for `http:` plus crawling). Returns
/// the command and whether to crawl from it.
pub fn parse_inline(text: &str) -> Result<(HttpCommand, bool), String> {
    let mut protocol = Scheme::Http;
    let mut method = default_method();
    let mut crawl = false;
    let mut rest = text.trim();
    // PATH starts with `/`; what comes before it, split at `:`, is PROTO and METHOD.
    let path_at = rest.find('/').unwrap_or(rest.len());
    let prefix = &rest[..path_at];
    let path = &rest[path_at..];
    let parts: Vec<&str> = prefix.split(':').filter(|p| !p.is_empty()).collect();
    for part in parts {
        if let Some(scheme) = Scheme::parse(part) {
            protocol = scheme;
            continue;
        }
        match part.to_ascii_lowercase().as_str() {
            "crawl" => crawl = true,
            _ if part.chars().all(|c| c.is_ascii_alphabetic()) => {
                method = part.to_ascii_uppercase()
            }
            _ => {
                return Err(format!(
                    "`{text}`: `{part}` is neither a protocol nor a method"
                ))
            }
        }
    }
    rest = if path.is_empty() { "/" } else { path };
    Ok((
        HttpCommand {
            protocol,
            method,
            resource: rest.to_owned(),
            port: None,
            headers: Vec::new(),
            body: None,
            body_file: None,
            username: None,
            password: None,
        },
        crawl,
    ))
}

pub fn load(path: &Path) -> Result<ProbeFile, ProbeFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProbeFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, path)
}

/// Parses probe-file text; `path` names it in messages and anchors `body_file`.
pub fn parse(text: &str, path: &Path) -> Result<ProbeFile, ProbeFileError> {
    let shown = path.display().to_string();
    let syntax = |err: serde_json::Error| ProbeFileError::Syntax {
        path: shown.clone(),
        line: err.line(),
        column: err.column(),
        message: strip_position(&err.to_string()),
    };
    let raw: serde_json::Value = serde_json::from_str(text).map_err(syntax)?;
    let invalid = |message: String| ProbeFileError::Invalid {
        path: shown.clone(),
        message,
    };
    // A protocol other than http or https is named with its command's number, not a position.
    for (i, command) in raw["commands"].as_array().into_iter().flatten().enumerate() {
        if let Some(protocol) = command["protocol"].as_str() {
            if let Err(message) = Scheme::try_from(protocol.to_owned()) {
                return Err(invalid(format!("command {}: {message}", i + 1)));
            }
        }
    }
    let typed: FileShape = serde_json::from_str(text).map_err(syntax)?;
    let mut warnings = Vec::new();
    if let Some(object) = raw.as_object() {
        for key in object.keys().filter(|k| !KNOWN_TOP.contains(&k.as_str())) {
            warnings.push(format!("{shown}: unknown field `{key}` ignored"));
        }
    } else {
        return Err(invalid("expected an object with a `commands` list".into()));
    }
    if let Some(commands) = raw["commands"].as_array() {
        for (i, command) in commands.iter().enumerate() {
            for key in command
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .filter(|k| !KNOWN_COMMAND.contains(&k.as_str()))
            {
                warnings.push(format!(
                    "{shown}: command {}: unknown field `{key}` ignored",
                    i + 1
                ));
            }
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut commands = typed.commands;
    for (i, command) in commands.iter_mut().enumerate() {
        let n = i + 1;
        command.method = command.method.to_ascii_uppercase();
        if command.method.is_empty() || !command.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "command {n}: `{}` is not an HTTP method",
                command.method
            )));
        }
        if !command.resource.starts_with('/') {
            command.resource.insert(0, '/');
        }
        for header in &command.headers {
            if !header.contains(':') {
                return Err(invalid(format!(
                    "command {n}: header `{header}` is not `Name: value`"
                )));
            }
        }
        if command.body.is_some() && command.body_file.is_some() {
            return Err(invalid(format!(
                "command {n}: give body or body_file, not both"
            )));
        }
        if let Some(file) = &command.body_file {
            let resolved = base.join(file);
            let body = std::fs::read_to_string(&resolved).map_err(|e| {
                invalid(format!(
                    "command {n}: cannot read body_file {}: {e}",
                    resolved.display()
                ))
            })?;
            command.body = Some(body);
            command.body_file = Some(resolved);
        }
    }
    Ok(ProbeFile { commands, warnings })
}

/// serde_json appends " at line L column C"; the message is shown with its own position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn inline_probes_read_as_docker_slim_writes_them() {
        let probe = |text| {
            let (c, crawl) = super::parse_inline(text).unwrap();
            (c.protocol, c.method, c.resource, crawl)
        };
        let own = |p, m: &str, r: &str, c| (p, m.to_owned(), r.to_owned(), c);
        use super::Scheme::{Http, Https};
        assert_eq!(probe("/health"), own(Http, "GET", "/health", false));
        assert_eq!(
            probe("POST:/api/v1?x=1"),
            own(Http, "POST", "/api/v1?x=1", false)
        );
        assert_eq!(probe("https:GET:/"), own(Https, "GET", "/", false));
        assert_eq!(probe("HTTPS:/"), own(Https, "GET", "/", false));
        assert_eq!(probe("crawl:/"), own(Http, "GET", "/", true));
        assert_eq!(probe("get"), own(Http, "GET", "/", false));
        assert!(super::parse_inline("8080:/x").is_err());
    }

    use super::*;

    fn parse_str(text: &str) -> Result<ProbeFile, ProbeFileError> {
        parse(text, Path::new("probe.json"))
    }

    #[test]
    fn docker_slim_format_with_defaults() {
        let file = parse_str(
            r#"{"commands": [
                {"protocol": "http", "method": "post", "resource": "/echo", "port": 8080,
                 "headers": ["Content-Type: text/plain"], "body": "hi"},
                {"resource": "health"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(file.commands[0].method, "POST");
        assert_eq!(file.commands[0].port, Some(8080));
        assert_eq!(file.commands[1].protocol, Scheme::Http);
        assert_eq!(file.commands[1].resource, "/health");
        assert!(file.warnings.is_empty());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse_str("{\"commands\": [\n  {\"resource\": \"/\",}\n]}").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("probe.json:2:"), "{text}");
        assert!(!text.contains(" at line "), "{text}");
    }

    #[test]
    fn type_errors_have_line_and_column() {
        let err = parse_str("{\"commands\": [{\"port\": \"eighty\"}]}").unwrap_err();
        assert!(err.to_string().starts_with("probe.json:1:"), "{err}");
    }

    #[test]
    fn unknown_fields_are_warned_about() {
        let file =
            parse_str(r#"{"commands": [{"resource": "/", "crawl": true}], "extra": 1}"#).unwrap();
        assert_eq!(file.warnings.len(), 2, "{:?}", file.warnings);
        assert!(file.warnings.iter().any(|w| w.contains("`crawl`")));
    }

    #[test]
    fn every_example_in_probes_parses_and_every_invalid_one_fails() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let file = load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!file.commands.is_empty(), "{}", path.display());
                assert!(file.warnings.is_empty(), "{:?}", file.warnings);
                seen += 1;
            }
        }
        assert!(seen >= 3);
        for entry in std::fs::read_dir(dir.join("invalid")).unwrap() {
            let path = entry.unwrap().path();
            assert!(load(&path).is_err(), "{} should not parse", path.display());
        }
    }

    #[test]
    fn bad_values_are_explained() {
        let err = parse_str(r#"{"commands": [{"protocol": "ftp"}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "probe.json: command 1: protocol `ftp` is not http or https"
        );
        let file = parse_str(r#"{"commands": [{"protocol": "HTTPS"}]}"#).unwrap();
        assert_eq!(file.commands[0].protocol, Scheme::Https);
        assert!(parse_str(r#"{"commands": [{"headers": ["nocolon"]}]}"#).is_err());
        assert!(parse_str(r#"[1, 2]"#).is_err());
    }
}
