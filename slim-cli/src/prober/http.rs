//! One HTTP(S) request with hyper over a fresh connection: http/1.1, a timeout, bodies capped.
//! Probes accept any certificate (the target is a container we started, on loopback); a
//! registry's is checked against the system's CA bundle ([`send_checked`]).

use std::{sync::Arc, time::Duration};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpStream;

/// Most body bytes read from one answer.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A request to send.
#[derive(Clone, Debug)]
pub struct Request {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub basic_auth: Option<(String, String)>,
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_sha256: String,
    /// SHA-256 of the body with its changing tokens masked ([`super::body_shape`]).
    pub shape_sha256: String,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("HTTP: {0}")]
    Protocol(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl HttpError {
    /// Errors worth retrying (the app may still be starting).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Timeout(_) | Self::Protocol(_)
        )
    }
}

/// Sends `request`, giving up after `timeout`; over https any certificate is accepted.
pub async fn send(request: &Request, timeout: Duration) -> Result<Answer, HttpError> {
    match tokio::time::timeout(timeout, send_inner(request, any_certificate())).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
}

/// Sends `request`, giving up after `timeout`; over https the server's certificate must chain
/// to the system's CA bundle.
pub async fn send_checked(request: &Request, timeout: Duration) -> Result<Answer, HttpError> {
    let tls = system_roots().map_err(HttpError::Tls)?;
    match tokio::time::timeout(timeout, send_inner(request, tls)).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
}

async fn send_inner(
    request: &Request,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Answer, HttpError> {
    let tcp = TcpStream::connect((request.host.as_str(), request.port))
        .await
        .map_err(HttpError::Connect)?;
    let _ = tcp.set_nodelay(true);
    if request.https {
        let connector = tokio_rustls::TlsConnector::from(tls);
        let name =
            rustls::pki_types::ServerName::try_from(request.host.clone()).unwrap_or_else(|_| {
                rustls::pki_types::ServerName::try_from("localhost").expect("valid")
            });
        let tls = connector.connect(name, tcp).await.map_err(HttpError::Tls)?;
        exchange(TokioIo::new(tls), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<T>(io: T, request: &Request) -> Result<Answer, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| HttpError::Protocol(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(protocol)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(request.path.as_str())
        .header(
            hyper::header::HOST,
            match request.host.contains(':') {
                true => format!("[{}]:{}", request.host, request.port),
                false => format!("{}:{}", request.host, request.port),
            },
        )
        .header(
            hyper::header::USER_AGENT,
            concat!("slim/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some((user, password)) = &request.basic_auth {
        let token = base64(format!("{user}:{password}").as_bytes());
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
    }
    let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
    let http_request = builder
        .body(body)
        .map_err(|e| HttpError::Protocol(e.to_string()))?;
    let response = sender.send_request(http_request).await.map_err(protocol)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| HttpError::Protocol(format!("reading the body: {e}")))?
        .to_bytes()
        .to_vec();
    driver.abort();
    let body_sha256 = crate::image::writer::hex(&Sha256::digest(&body));
    let shape_sha256 = crate::image::writer::hex(&Sha256::digest(super::body_shape(&body)));
    Ok(Answer {
        status,
        content_type,
        headers,
        body,
        body_sha256,
        shape_sha256,
    })
}

/// A TLS client that trusts the system's CA bundle (Debian's, or `SSL_CERT_FILE`).
fn system_roots() -> Result<Arc<rustls::ClientConfig>, std::io::Error> {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let unreadable = |e: &dyn std::fmt::Display| {
        std::io::Error::other(format!(
            "cannot read the CA bundle {}: {e}",
            bundle.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&bundle).map_err(|e| unreadable(&e))? {
        let _ = roots.add(cert.map_err(|e| unreadable(&e))?);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client that accepts any certificate: probes go to our own container on loopback.
fn any_certificate() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Standard base64 (for HTTP basic auth).
pub fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Same-origin links (`href="..."`) of an HTML page at `page`, as absolute paths.
pub fn same_origin_links(html: &[u8], page: &str, host: &str, port: u16) -> Vec<String> {
    let text = String::from_utf8_lossy(html);
    let mut links = Vec::new();
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("href=") {
        rest = &rest[i + 5..];
        let (quote, tail) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => (q, &rest[1..]),
            _ => continue,
        };
        let Some(end) = tail.find(quote) else { break };
        let link = tail[..end].trim();
        rest = &tail[end..];
        let link = link.split('#').next().unwrap_or("");
        if link.is_empty()
            || link.starts_with("//")
            || link.contains("javascript:")
            || link.starts_with("mailto:")
        {
            continue;
        }
        let path = if let Some(after) = link
            .strip_prefix("http://")
            .or_else(|| link.strip_prefix("https://"))
        {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let same = authority == format!("{host}:{port}") || (authority == host && port == 80);
            if !same {
                continue;
            }
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        } else if link.starts_with('/') {
            link.to_owned()
        } else if link.contains(':') {
            continue;
        } else {
            let dir = &page[..page.rfind('/').map(|i| i + 1).unwrap_or(0)];
            format!("{}{link}", if dir.is_empty() { "/" } else { dir })
        };
        if !links.contains(&path) {
            links.push(path);
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn links_stay_on_the_origin() {
        let html = br#"<a href="/a">a</a> <a href='b.html'>b</a> <a href="http://127.0.0.1:8080/c#x">c</a>
            <a href="https://example.com/x">x</a> <a href="//cdn/y">y</a> <a href="mailto:m@x">m</a>"#;
        let links = same_origin_links(html, "/dir/index.html", "127.0.0.1", 8080);
        assert_eq!(links, ["/a", "/dir/b.html", "/c"]);
    }
}
