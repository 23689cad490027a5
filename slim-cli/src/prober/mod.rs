//! Exercising the app while it is recorded: HTTP(S) probes (docker-slim's command file, or a
//! default GET / on every exposed TCP port, optionally crawling same-origin links), raw TCP
//! probes, and commands run inside the container. Every result is kept for the report and so
//! that verification can replay exactly the same requests against the slim image.

pub mod http;
pub mod probe_file;

use std::{collections::BTreeMap, future::Future, pin::Pin, time::Duration, time::Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub use probe_file::{HttpCommand, ProbeFile, ProbeFileError, Scheme};

/// Runs a shell command inside the target; returns its exit code and output.
pub type ExecFn<'a> = &'a (dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<(i64, Vec<u8>), String>> + Send>>
         + Sync);

/// A raw TCP probe: connect to a container port and optionally send a payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpProbe {
    pub port: u16,
    pub payload: Option<String>,
}

impl TcpProbe {
    /// `PORT` or `PORT:PAYLOAD`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (port, payload) = match text.split_once(':') {
            Some((p, payload)) => (p, Some(payload.replace("\\n", "\n").replace("\\r", "\r"))),
            None => (text, None),
        };
        let port = port
            .parse()
            .map_err(|_| format!("`{text}` is not PORT or PORT:PAYLOAD"))?;
        Ok(Self { port, payload })
    }
}

/// What to do to the app.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Probes from the command file.
    pub http: Vec<HttpCommand>,
    /// GET / on each exposed TCP port (when there is no command file).
    pub default_http: bool,
    /// Restricts HTTP probing to these container ports.
    pub http_ports: Option<Vec<u16>>,
    /// Follow same-origin links of HTML answers.
    pub crawl: bool,
    pub exec: Vec<String>,
    /// The image's own `HEALTHCHECK`, as an exec command ([`healthcheck_command`]): run last,
    /// and dropped with a warning if it fails on the original.
    pub healthcheck: Option<String>,
    pub tcp: Vec<TcpProbe>,
    /// Attempts per request (with backoff between them).
    pub attempts: u32,
    pub timeout: Duration,
    /// Times the whole plan runs (apps answer the first request differently from later ones:
    /// caches built on first use, lazy loading, connection pools).
    pub rounds: u32,
}

/// The body with what changes from one answer to the next masked: every token (a run of
/// letters, digits and `-_+:./=`) that holds a digit becomes `#`. Timestamps, counters,
/// request ids, UUIDs and nonces differ between two correct answers; the words around them,
/// the markup and the JSON keys do not, and an error page in place of the answer changes them.
pub fn body_shape(body: &[u8]) -> Vec<u8> {
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"-_+:./=".contains(&b);
    let mut shape = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(&first) = rest.first() {
        if !is_token(first) {
            shape.push(first);
            rest = &rest[1..];
            continue;
        }
        let len = rest
            .iter()
            .position(|&b| !is_token(b))
            .unwrap_or(rest.len());
        let (token, tail) = rest.split_at(len);
        if token.iter().any(u8::is_ascii_digit) {
            shape.push(b'#');
        } else {
            shape.extend_from_slice(token);
        }
        rest = tail;
    }
    shape
}

/// How many bytes of a body a mismatch shows.
const BODY_HEAD_BYTES: usize = 120;

fn body_head(body: &[u8]) -> String {
    let head = String::from_utf8_lossy(&body[..body.len().min(BODY_HEAD_BYTES)]);
    let mut head: String = head
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > BODY_HEAD_BYTES {
        head.push_str("...");
    }
    head
}

/// Most pages a crawl visits, and how deep it follows links.
pub const CRAWL_MAX_PAGES: usize = 50;
pub const CRAWL_MAX_DEPTH: usize = 3;

/// An HTTP request as it was made, so verification can make it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpCall {
    pub https: bool,
    /// Container port.
    pub port: u16,
    pub method: String,
    pub path: String,
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Option<Vec<u8>>,
    #[serde(skip)]
    pub basic_auth: Option<(String, String)>,
}

/// What a probe does; report.json names it in lowercase (`"http"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// An HTTP(S) request to a published port.
    Http,
    /// A command run in the container (`--exec`, `--verify-exec`).
    Exec,
    /// A TCP connection to a published port.
    Tcp,
}

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub kind: ProbeKind,
    /// `GET http://:8080/path`, `tcp :6379`, `exec: CMD`.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    /// SHA-256 of the body's shape: its words kept, its changing tokens (numbers, times, ids)
    /// masked. This is what verification compares, so a clock or a request id in the answer
    /// is no mismatch while an error page instead of the answer is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape_sha256: Option<String>,
    /// Whether the same request gave a body of the same shape twice (only then bodies are
    /// compared).
    pub stable_body: bool,
    /// The body's first bytes (lossy UTF-8), to show when verification finds it changed.
    #[serde(skip)]
    pub body_head: Option<String>,
    pub ms: u64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<HttpCall>,
    #[serde(skip)]
    pub tcp: Option<TcpProbe>,
    #[serde(skip)]
    pub command: Option<String>,
    /// Which run of the plan (1, 2, ...).
    pub round: u32,
    /// slim's own default probe (GET / on an exposed port), not one the user asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub guessed: bool,
    /// A `--verify-exec`/`--verify-probe-file` check: run on the fat image after recording
    /// stopped, then on the slim image; never recorded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub held_out: bool,
    /// The last lines an exec probe printed, kept when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl ProbeResult {
    /// A result with no outcome yet.
    pub(crate) fn new(kind: ProbeKind, name: String) -> Self {
        Self {
            kind,
            name,
            status: None,
            exit_code: None,
            bytes: 0,
            body_sha256: None,
            shape_sha256: None,
            stable_body: false,
            body_head: None,
            ms: 0,
            attempts: 1,
            error: None,
            call: None,
            tcp: None,
            command: None,
            round: 1,
            guessed: false,
            held_out: false,
            output: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.exit_code.is_none_or(|c| c == 0)
    }
}

/// Where the app answers: container port -> host port on 127.0.0.1.
pub struct Target<'a> {
    pub host: &'a str,
    pub ports: &'a BTreeMap<u16, u16>,
    pub exec: ExecFn<'a>,
}

impl Target<'_> {
    fn host_port(&self, port: u16) -> Result<u16, String> {
        self.ports
            .get(&port)
            .copied()
            .ok_or_else(|| format!("container port {port} is not published (use --expose {port})"))
    }
}

/// Runs the whole plan: HTTP probes, TCP probes, exec commands, in that order.
pub async fn run(plan: &Plan, target: &Target<'_>) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    for round in 1..=plan.rounds.max(1) {
        for mut result in run_once(plan, target).await {
            result.round = round;
            if round > 1 {
                result.name = format!("{} (round {round})", result.name);
            }
            results.push(result);
        }
    }
    judge_by_rounds(&mut results);
    results
}

/// Whether a request may be sent again just to see if its answer is stable: only methods
/// that change nothing on the server (RFC 9110's safe methods; PUT and DELETE are idempotent
/// but still change state, so they are not sent an extra time either).
pub fn resendable(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// The body stability of the requests that are not sent twice (POST, PUT, ...), judged from
/// the rounds: stable when every round got the same status and a body of the same shape. A
/// request made in one round only is not judged stable (only its status is compared).
fn judge_by_rounds(results: &mut [ProbeResult]) {
    let judged: Vec<Option<bool>> = results
        .iter()
        .map(|probe| {
            let call = probe.call.as_ref().filter(|c| !resendable(&c.method))?;
            let same_call: Vec<&ProbeResult> = results
                .iter()
                .filter(|other| other.call.as_ref() == Some(call))
                .collect();
            Some(
                same_call.len() > 1
                    && same_call.iter().all(|other| {
                        other.status.is_some()
                            && other.status == probe.status
                            && other.shape_sha256 == probe.shape_sha256
                    }),
            )
        })
        .collect();
    for (probe, stable) in results.iter_mut().zip(judged) {
        if let Some(stable) = stable {
            probe.stable_body = stable;
        }
    }
}

/// Runs every probe of the plan once.
async fn run_once(plan: &Plan, target: &Target<'_>) -> Vec<ProbeResult> {
    let mut calls: Vec<HttpCall> = Vec::new();
    let ports: Vec<u16> = target
        .ports
        .keys()
        .copied()
        .filter(|p| plan.http_ports.as_ref().is_none_or(|only| only.contains(p)))
        .collect();
    for command in &plan.http {
        let probe_ports = match command.port {
            Some(port) => vec![port],
            None => ports.clone(),
        };
        for port in probe_ports {
            calls.push(HttpCall {
                https: command.protocol == Scheme::Https,
                port,
                method: command.method.clone(),
                path: command.resource.clone(),
                headers: command
                    .headers
                    .iter()
                    .filter_map(|h| h.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect(),
                body: command.body.clone().map(String::into_bytes),
                basic_auth: command
                    .username
                    .clone()
                    .map(|u| (u, command.password.clone().unwrap_or_default())),
            });
        }
    }
    let mut results = Vec::new();
    if plan.http.is_empty() && plan.default_http {
        for &port in &ports {
            let plain = HttpCall {
                https: false,
                port,
                method: "GET".into(),
                path: "/".into(),
                headers: Vec::new(),
                body: None,
                basic_auth: None,
            };
            let result = http_probe(plan, target, &plain, true).await;
            // Not HTTP? Try HTTPS before giving up on the port.
            if result.status.is_none() {
                let tls = HttpCall {
                    https: true,
                    ..plain
                };
                let second = http_probe(plan, target, &tls, true).await;
                let mut chosen = if second.status.is_some() {
                    second
                } else {
                    result
                };
                chosen.guessed = true;
                results.push(chosen);
            } else {
                results.push(ProbeResult {
                    guessed: true,
                    ..result
                });
            }
        }
    }
    for call in &calls {
        results.push(http_probe(plan, target, call, true).await);
    }
    if plan.crawl {
        crawl(plan, target, &mut results).await;
    }
    for probe in &plan.tcp {
        results.push(tcp_probe(plan, target, probe).await);
    }
    for command in &plan.exec {
        results.push(exec_probe(target, command).await);
    }
    if let Some(command) = &plan.healthcheck {
        let mut result = exec_probe(target, command).await;
        result.name = format!("healthcheck: {command}");
        result.guessed = true;
        results.push(result);
    }
    results
}

/// The exec command of an image's `HEALTHCHECK` test, as the engine runs it: `CMD` words as
/// they are, `CMD-SHELL` through `/bin/sh -c`. Words are quoted for [`exec_argv`] (a word
/// with a `'` makes the whole line go through one more `sh -c`, which unquotes it the same).
pub fn healthcheck_command(test: &[String]) -> Option<String> {
    let (kind, rest) = test.split_first()?;
    let argv: Vec<String> = match kind.as_str() {
        "CMD" if !rest.is_empty() => rest.to_vec(),
        "CMD-SHELL" if !rest.is_empty() => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => return None,
    };
    let quote = |word: &String| -> String {
        let plain = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
        match plain {
            true => word.clone(),
            false => format!("'{}'", word.replace('\'', "'\\''")),
        }
    };
    Some(argv.iter().map(quote).collect::<Vec<_>>().join(" "))
}

/// Replays the probes of an earlier run (same requests, same order), without crawling anew.
pub async fn replay(plan: &Plan, earlier: &[ProbeResult], target: &Target<'_>) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    for probe in earlier {
        let mut result = if let Some(call) = &probe.call {
            http_probe(plan, target, call, false).await
        } else if let Some(tcp) = &probe.tcp {
            tcp_probe(plan, target, tcp).await
        } else if let Some(command) = &probe.command {
            exec_probe(target, command).await
        } else {
            probe.clone()
        };
        result.name = probe.name.clone();
        result.round = probe.round;
        result.guessed = probe.guessed;
        result.held_out = probe.held_out;
        results.push(result);
    }
    results
}

fn describe(call: &HttpCall) -> String {
    format!(
        "{} {}://:{}{}",
        call.method,
        if call.https { "https" } else { "http" },
        call.port,
        call.path
    )
}

async fn http_probe(plan: &Plan, target: &Target<'_>, call: &HttpCall, twice: bool) -> ProbeResult {
    let mut result = ProbeResult {
        attempts: 0,
        call: Some(call.clone()),
        ..ProbeResult::new(ProbeKind::Http, describe(call))
    };
    let host_port = match target.host_port(call.port) {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let request = http::Request {
        https: call.https,
        host: target.host.to_owned(),
        port: host_port,
        method: call.method.clone(),
        path: call.path.clone(),
        headers: call.headers.clone(),
        body: call.body.clone(),
        basic_auth: call.basic_auth.clone(),
    };
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    let attempts = plan.attempts.max(1);
    for attempt in 1..=attempts {
        result.attempts = attempt;
        match http::send(&request, plan.timeout).await {
            Ok(answer) => {
                result.ms = started.elapsed().as_millis() as u64;
                result.status = Some(answer.status);
                result.bytes = answer.body.len() as u64;
                result.body_sha256 = Some(answer.body_sha256.clone());
                result.shape_sha256 = Some(answer.shape_sha256.clone());
                result.body_head = Some(body_head(&answer.body));
                result.error = None;
                // Sent again to see whether its body is stable, unless that changes something.
                if twice && resendable(&call.method) {
                    if let Ok(again) = http::send(&request, plan.timeout).await {
                        result.stable_body = again.status == answer.status
                            && again.shape_sha256 == answer.shape_sha256;
                    }
                }
                return result;
            }
            Err(err) => {
                result.error = Some(err.to_string());
                if !err.is_transient() || attempt == attempts {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
        }
    }
    result.ms = started.elapsed().as_millis() as u64;
    result
}

async fn crawl(plan: &Plan, target: &Target<'_>, results: &mut Vec<ProbeResult>) {
    let mut seen: Vec<(u16, bool, String)> = results
        .iter()
        .filter_map(|r| r.call.as_ref().map(|c| (c.port, c.https, c.path.clone())))
        .collect();
    let mut frontier: Vec<(HttpCall, usize)> = results
        .iter()
        .filter(|r| r.status.is_some_and(|s| s < 400))
        .filter_map(|r| r.call.clone())
        .filter(|c| c.method == "GET")
        .map(|c| (c, 0))
        .collect();
    let mut visited = 0;
    while let Some((page, depth)) = frontier.pop() {
        if depth >= CRAWL_MAX_DEPTH || visited >= CRAWL_MAX_PAGES {
            continue;
        }
        let Ok(host_port) = target.host_port(page.port) else {
            continue;
        };
        let request = http::Request {
            https: page.https,
            host: target.host.to_owned(),
            port: host_port,
            method: "GET".into(),
            path: page.path.clone(),
            headers: Vec::new(),
            body: None,
            basic_auth: page.basic_auth.clone(),
        };
        let Ok(answer) = http::send(&request, plan.timeout).await else {
            continue;
        };
        if !answer
            .content_type
            .as_deref()
            .unwrap_or("")
            .contains("html")
        {
            continue;
        }
        for link in http::same_origin_links(&answer.body, &page.path, target.host, host_port) {
            let key = (page.port, page.https, link.clone());
            if seen.contains(&key) || visited >= CRAWL_MAX_PAGES {
                continue;
            }
            seen.push(key);
            visited += 1;
            let call = HttpCall {
                path: link,
                method: "GET".into(),
                headers: Vec::new(),
                body: None,
                ..page.clone()
            };
            let mut result = http_probe(plan, target, &call, true).await;
            result.name.push_str(" (crawled)");
            if result.status.is_some_and(|s| s < 400) {
                frontier.push((call, depth + 1));
            }
            results.push(result);
        }
    }
}

async fn tcp_probe(plan: &Plan, target: &Target<'_>, probe: &TcpProbe) -> ProbeResult {
    let mut result = ProbeResult {
        tcp: Some(probe.clone()),
        ..ProbeResult::new(ProbeKind::Tcp, format!("tcp :{}", probe.port))
    };
    let started = Instant::now();
    let outcome = async {
        let port = target.host_port(probe.port)?;
        let mut stream = tokio::net::TcpStream::connect((target.host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if let Some(payload) = &probe.payload {
            stream
                .write_all(payload.as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.len() > 1 << 20 {
                        break;
                    }
                }
                Ok(Err(e)) => return Err(format!("read: {e}")),
            }
        }
        Ok::<_, String>(answer)
    };
    match tokio::time::timeout(plan.timeout + Duration::from_secs(2), outcome).await {
        Ok(Ok(answer)) => {
            result.bytes = answer.len() as u64;
            result.body_sha256 = Some(crate::image::writer::hex(
                &<sha2::Sha256 as sha2::Digest>::digest(&answer),
            ));
        }
        Ok(Err(e)) => result.error = Some(e),
        Err(_) => result.error = Some("no answer in time".into()),
    }
    result.ms = started.elapsed().as_millis() as u64;
    result
}

async fn exec_probe(target: &Target<'_>, command: &str) -> ProbeResult {
    let started = Instant::now();
    let outcome = (target.exec)(command.to_owned()).await;
    let mut result = ProbeResult {
        ms: started.elapsed().as_millis() as u64,
        command: Some(command.to_owned()),
        ..ProbeResult::new(ProbeKind::Exec, format!("exec: {command}"))
    };
    match outcome {
        Ok((code, output)) => {
            result.exit_code = Some(code);
            result.bytes = output.len() as u64;
            if code != 0 {
                result.output = Some(last_lines(&output, 10));
            }
        }
        Err(e) => result.error = Some(e),
    }
    result
}

/// The argv an exec probe runs: the words of `command` when it is a plain command line (no
/// shell syntax outside quotes), so images without a shell run it too; else `sh -c command`.
pub fn exec_argv(command: &str) -> Vec<String> {
    match plain_words(command) {
        Some(words) if !words.is_empty() => words,
        _ => vec!["sh".into(), "-c".into(), command.to_owned()],
    }
}

/// Words of a command line with quotes removed; `None` when it needs a shell (operators,
/// expansions, globs, escapes, redirections or variable assignments outside quotes).
fn plain_words(text: &str) -> Option<Vec<String>> {
    const SHELL: &str = "|&;<>()$`*?[]{}~#\\\n!";
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some('"'), '$' | '`' | '\\') => return None,
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) if SHELL.contains(c) => return None,
            (None, '=') if words.is_empty() => return None,
            (None, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if started {
        words.push(word);
    }
    Some(words)
}

/// The last `n` lines of `output`, as text.
fn last_lines(output: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_kinds_are_named_in_lowercase_in_the_report() {
        for (kind, name) in [
            (ProbeKind::Http, "http"),
            (ProbeKind::Exec, "exec"),
            (ProbeKind::Tcp, "tcp"),
        ] {
            let result = serde_json::to_value(ProbeResult::new(kind, String::new())).unwrap();
            assert_eq!(result["kind"], name);
        }
    }

    #[test]
    fn a_body_keeps_its_shape_when_only_clocks_and_ids_change() {
        let shape = |s: &str| String::from_utf8(body_shape(s.as_bytes())).unwrap();
        assert_eq!(
            shape(r#"{"php":"8.2.32","time":"2026-12-04T14:50:01+00:00","ok":true}"#),
            r##"{"php":"#","time":"#","ok":true}"##
        );
        assert_eq!(
            shape("request 3f2b8c1e-9d4a-4e0b-8f7a-1c2d3e4f5a6b served in 12.5 ms"),
            shape("request 0a9b8c7d-6e5f-4a3b-9c8d-7e6f5a4b3c2d served in 3 ms"),
        );
        assert_eq!(shape("<p>Hello, world</p>"), "<p>Hello, world</p>");
        // What an app gives instead of its answer changes the words, not only the numbers.
        assert_ne!(
            shape(r#"{"count": 42}"#),
            shape("Traceback (most recent call last): ModuleNotFoundError: No module named 'x'"),
        );
        assert_ne!(shape("ok 1"), shape("error 1"));
        assert_eq!(body_shape(&[0xff, b'7', 0x00]), [0xff, b'#', 0x00]);
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with `ok N` (N counts
    /// the requests of that method) and counts them per method.
    async fn counting_server() -> (u16, std::sync::Arc<std::sync::Mutex<BTreeMap<String, u32>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let seen = counts.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many body bytes as Content-Length says.
                let (head_end, length) = loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed before its request was whole");
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                let method = String::from_utf8_lossy(&request)
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_owned();
                let n = {
                    let mut counts = seen.lock().unwrap();
                    let n = counts.entry(method).or_insert(0);
                    *n += 1;
                    *n
                };
                let body = format!("ok {n}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (port, counts)
    }

    fn command(method: &str) -> HttpCommand {
        serde_json::from_value(serde_json::json!({
            "protocol": "http", "method": method, "resource": "/api", "port": 80, "body": "{}"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_post_is_sent_once_per_round_and_judged_by_the_rounds() {
        let (host_port, counts) = counting_server().await;
        let ports = BTreeMap::from([(80, host_port)]);
        type Exec = Pin<Box<dyn Future<Output = Result<(i64, Vec<u8>), String>> + Send>>;
        let exec = |_: String| -> Exec { Box::pin(async { Err("no exec here".to_owned()) }) };
        let target = Target {
            host: "127.0.0.1",
            ports: &ports,
            exec: &exec,
        };
        let plan = Plan {
            http: vec![command("POST"), command("GET")],
            attempts: 1,
            timeout: Duration::from_secs(5),
            rounds: 2,
            ..Default::default()
        };
        let results = run(&plan, &target).await;
        assert_eq!(results.len(), 4, "{results:?}");
        assert!(results.iter().all(ProbeResult::ok), "{results:?}");
        let counted = counts.lock().unwrap().clone();
        // Two rounds: the POST once per round, the GET twice per round (its stability check).
        assert_eq!(counted.get("POST"), Some(&2), "{counted:?}");
        assert_eq!(counted.get("GET"), Some(&4), "{counted:?}");
        // `ok 1` and `ok 2` have the same shape: both POSTs are judged stable from the rounds.
        let posts: Vec<&ProbeResult> = results
            .iter()
            .filter(|r| r.call.as_ref().is_some_and(|c| c.method == "POST"))
            .collect();
        assert!(posts.iter().all(|p| p.stable_body), "{posts:?}");

        // One round: nothing to judge a POST's body by, so only its status will be compared.
        let results = run(&Plan { rounds: 1, ..plan }, &target).await;
        assert_eq!(counts.lock().unwrap().get("POST"), Some(&3));
        let post = results.iter().find(|r| r.name.starts_with("POST")).unwrap();
        assert!(!post.stable_body, "{post:?}");
    }

    #[test]
    fn only_safe_methods_are_sent_again() {
        assert!(resendable("GET") && resendable("head") && resendable("OPTIONS"));
        for method in ["POST", "PUT", "DELETE", "PATCH", "post"] {
            assert!(!resendable(method), "{method}");
        }
    }

    #[test]
    fn a_round_with_another_answer_makes_a_post_unstable() {
        let call = HttpCall {
            https: false,
            port: 80,
            method: "POST".into(),
            path: "/api".into(),
            headers: Vec::new(),
            body: None,
            basic_auth: None,
        };
        let answer = |round, shape: &str| ProbeResult {
            status: Some(200),
            shape_sha256: Some(shape.into()),
            call: Some(call.clone()),
            round,
            ..ProbeResult::new(ProbeKind::Http, "POST http://:80/api".into())
        };
        let mut results = vec![answer(1, "a"), answer(2, "b")];
        judge_by_rounds(&mut results);
        assert!(results.iter().all(|r| !r.stable_body));
        let mut results = vec![answer(1, "a"), answer(2, "a")];
        judge_by_rounds(&mut results);
        assert!(results.iter().all(|r| r.stable_body));
    }

    #[test]
    fn a_healthcheck_runs_as_the_engine_runs_it() {
        let test = |words: &[&str]| {
            healthcheck_command(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
        };
        let shell = test(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]).unwrap();
        assert_eq!(
            exec_argv(&shell),
            ["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]
        );
        let words = test(&["CMD", "/bin/check", "--url", "http://x/?a=1&b=2"]).unwrap();
        assert_eq!(
            exec_argv(&words),
            ["/bin/check", "--url", "http://x/?a=1&b=2"]
        );
        // A quote inside goes through one more shell, which gives the same words back.
        let quoted = test(&["CMD-SHELL", "test \"$(cat /ready)\" = 'yes'"]).unwrap();
        assert_eq!(exec_argv(&quoted)[..2], ["sh", "-c"]);
        assert!(test(&["NONE"]).is_none());
        assert!(test(&["CMD"]).is_none());
        assert!(test(&[]).is_none());
    }

    #[test]
    fn exec_probes_run_without_a_shell_when_they_can() {
        assert_eq!(
            exec_argv(r#"python3 -c "open('/etc/x').read()""#),
            ["python3", "-c", "open('/etc/x').read()"]
        );
        assert_eq!(
            exec_argv("psql -U postgres -c 'select 1'"),
            ["psql", "-U", "postgres", "-c", "select 1"]
        );
        for shell in [
            "a | b",
            "echo $HOME",
            "ls *.txt",
            "A=1 env",
            "x > y",
            "cd /tmp && ls",
        ] {
            assert_eq!(exec_argv(shell), ["sh", "-c", shell], "{shell}");
        }
    }

    #[test]
    fn tcp_probe_syntax() {
        assert_eq!(
            TcpProbe::parse("6379").unwrap(),
            TcpProbe {
                port: 6379,
                payload: None
            }
        );
        assert_eq!(
            TcpProbe::parse("6379:PING\\r\\n")
                .unwrap()
                .payload
                .as_deref(),
            Some("PING\r\n")
        );
        assert!(TcpProbe::parse("redis").is_err());
    }
}
