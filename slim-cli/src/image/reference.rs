//! Image references as the docker CLI and the engine read them, checked by slim before any
//! engine is asked: `[HOST[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]` (the grammar of
//! distribution/reference) or an image id (`sha256:HEX`, or the bare 64 hex digits). A
//! malformed one is bad input with a one-line reason, not the engine's raw 400. Pure: text in,
//! parts out; never panics, whatever the input.

/// What a valid reference looks like, for hints.
pub const VALID_FORMS: &str = "NAME[:TAG][@DIGEST], as in app:1.0, \
     localhost:5000/team/app:1.0 or app@sha256:<64 hex>; or an image id: sha256:<hex> \
     (as `docker build -q` prints it) or its 64 hex digits";

/// `repo:tag` -> (`repo`, `tag`); `latest` when no tag is given (a `:` in a registry port is
/// not a tag).
pub fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// An image id: the hex digits after `sha256:` (all 64, or a prefix of them).
    Id(String),
    Named(Named),
}

/// `[DOMAIN/]PATH[:TAG][@DIGEST]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// `host[:port]`, when the first component names a registry.
    pub domain: Option<String>,
    /// The repository path below the domain: `team/app`.
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

impl Named {
    /// `DOMAIN/PATH` (the repository, without tag or digest).
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Why a text is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the name is empty")]
    EmptyName,
    #[error("the name is longer than {MAX_NAME} characters")]
    NameTooLong,
    #[error("`{0}` is not a name component (lowercase letters and digits, single . _ __ or - between them)")]
    Component(String),
    #[error("`{0}` is not a registry HOST[:PORT]")]
    Domain(String),
    #[error("`{0}` is not a tag (up to 128 letters, digits, _ . -, not starting with . or -)")]
    Tag(String),
    #[error("`{0}` is not a digest (ALGORITHM:HEX; sha256 has 64 hex digits)")]
    Digest(String),
    #[error("`{0}` is not an image id (sha256: and lowercase hex digits, at most 64)")]
    Id(String),
    #[error("a 64-digit hex name is an image id, it cannot take a tag or a digest")]
    HexWithTag,
    #[error("a tag cannot carry a digest or be an image id")]
    NotATag,
}

/// The longest `DOMAIN/PATH`, as distribution/reference allows.
pub const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

/// Parses an image reference (something to read or run).
pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
    if let Some(hex) = text.strip_prefix("sha256:") {
        return match hex.len() <= 64 && is_lower_hex(hex) {
            true => Ok(Reference::Id(hex.to_owned())),
            false => Err(ReferenceError::Id(text.to_owned())),
        };
    }
    if text.len() == 64 && is_lower_hex(text) {
        return Ok(Reference::Id(text.to_owned()));
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(ReferenceError::EmptyName);
    }
    if name.len() > MAX_NAME {
        return Err(ReferenceError::NameTooLong);
    }
    let (domain, path) = split_domain(name);
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(ReferenceError::Component(component.to_owned()));
        }
    }
    if domain.is_none() && path.len() == 64 && is_lower_hex(path) {
        return Err(ReferenceError::HexWithTag);
    }
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_owned()));
        }
    }
    if let Some(digest) = digest {
        if !is_digest(digest) {
            return Err(ReferenceError::Digest(digest.to_owned()));
        }
    }
    Ok(Reference::Named(Named {
        domain: domain.map(str::to_owned),
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    }))
}

/// Parses a name to tag an image with: a reference without a digest that is not an id.
pub fn parse_tag(text: &str) -> Result<Named, ReferenceError> {
    match parse(text)? {
        Reference::Named(named) if named.digest.is_none() => Ok(named),
        _ => Err(ReferenceError::NotATag),
    }
}

/// The first component is a registry when more follow and it has a `.` or a `:`, is
/// `localhost`, or has an uppercase letter (which a path component cannot have).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]`: dot-separated labels of letters, digits and inner `-`, or `[IPv6]`.
fn check_domain(domain: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::Domain(domain.to_owned());
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(bad)?;
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            _ => ("", Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    if !host.is_empty() && !host.split('.').all(label_ok) {
        return Err(bad());
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by one `.`, one `_`, `__`, or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(matches!(separator, "." | "_" | "__") || dashes) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex`: letters and digits joined by `+ . - _`; at least 32 hex digits, exactly
/// 64 lowercase ones for sha256.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '-', '_']).all(|part| {
        part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !algorithm_ok {
        return false;
    }
    match algorithm {
        "sha256" => hex.len() == 64 && is_lower_hex(hex),
        _ => hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
    }
}

fn is_lower_hex(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Random texts built from the pieces that matter to the grammar (separators, ids,
/// multi-byte characters), from a fixed seed: inputs for property tests of every helper
/// that takes a name, without a property-testing dependency.
#[cfg(test)]
pub(crate) fn random_texts(count: usize) -> impl Iterator<Item = String> {
    const PIECES: &[&str] = &[
        "",
        ":",
        "@",
        "/",
        ".",
        "-",
        "_",
        "__",
        "sha256",
        "sha256:",
        "abc",
        "0123456789abcdef",
        "App",
        "localhost",
        "host:5000",
        "é",
        "✓",
        "🦀",
        "[::1]",
        " ",
        "latest",
        "a",
        "Z",
        "9",
        "--",
        "..",
        "\0",
        "\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let len = next() % 8;
        (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(text: &str) -> Named {
        match parse(text) {
            Ok(Reference::Named(named)) => named,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn names_tags_domains_and_digests() {
        let n = named("app:fat");
        assert_eq!(
            (n.domain, n.path.as_str(), n.tag.as_deref()),
            (None, "app", Some("fat"))
        );
        let n = named("localhost:5000/team/app:1.0");
        assert_eq!(n.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(
            (n.path.as_str(), n.tag.as_deref()),
            ("team/app", Some("1.0"))
        );
        let n = named("registry.example.com/a-b/c__d.e:v_1-2");
        assert_eq!(n.repository(), "registry.example.com/a-b/c__d.e");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let n = named(&format!("app@{digest}"));
        assert_eq!((n.tag, n.digest.as_deref()), (None, Some(digest.as_str())));
        let n = named(&format!("app:1@{digest}"));
        assert_eq!(n.tag.as_deref(), Some("1"));
        assert_eq!(
            named("[::1]:5000/app").domain.as_deref(),
            Some("[::1]:5000")
        );
        assert_eq!(named("Registry/app").domain.as_deref(), Some("Registry"));
        assert_eq!(named("a---b").path, "a---b");
        // Hex short of 64 digits is a name (docker looks it up as one first).
        assert_eq!(named("0123456789ab").path, "0123456789ab");
    }

    #[test]
    fn ids() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse(&format!("sha256:{hex}")),
            Ok(Reference::Id(hex.clone()))
        );
        assert_eq!(parse(&hex), Ok(Reference::Id(hex.clone())));
        assert_eq!(parse("sha256:0123"), Ok(Reference::Id("0123".into())));
        assert!(matches!(parse("sha256:"), Err(ReferenceError::Id(_))));
        assert!(matches!(parse("sha256:XYZ"), Err(ReferenceError::Id(_))));
        assert!(matches!(
            parse(&format!("sha256:{hex}0")),
            Err(ReferenceError::Id(_))
        ));
        assert_eq!(parse(&format!("{hex}:1")), Err(ReferenceError::HexWithTag));
    }

    #[test]
    fn malformed_references_say_why() {
        use ReferenceError as E;
        for (text, want) in [
            ("", E::EmptyName),
            (":", E::EmptyName),
            ("@sha256:abc", E::EmptyName),
            (":tag", E::EmptyName),
            ("a:b:c", E::Component("a:b".into())),
            ("App:1", E::Component("App".into())),
            ("app/", E::Component(String::new())),
            ("/app", E::Component(String::new())),
            ("a..b", E::Component("a..b".into())),
            ("a_-b", E::Component("a_-b".into())),
            ("-a", E::Component("-a".into())),
            ("app:", E::Tag(String::new())),
            ("app:.x", E::Tag(".x".into())),
            ("app:é", E::Tag("é".into())),
            ("app@sha256:abc", E::Digest("sha256:abc".into())),
            ("app@", E::Digest(String::new())),
            ("-bad.host/app", E::Domain("-bad.host".into())),
            ("host:port/app", E::Domain("host:port".into())),
            ("[zz]:5000/app", E::Domain("[zz]:5000".into())),
        ] {
            assert_eq!(parse(text), Err(want), "{text:?}");
        }
        assert_eq!(parse(&"a".repeat(256)), Err(E::NameTooLong));
        assert_eq!(
            parse(&format!("app:{}", "t".repeat(129))),
            Err(E::Tag("t".repeat(129)))
        );
    }

    #[test]
    fn tags_take_no_digest_and_no_id() {
        assert!(parse_tag("app.slim:fat").is_ok());
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            parse_tag(&format!("app@{digest}")),
            Err(ReferenceError::NotATag)
        );
        assert_eq!(parse_tag(&digest), Err(ReferenceError::NotATag));
        assert_eq!(
            parse_tag("a:b:c"),
            Err(ReferenceError::Component("a:b".into()))
        );
    }

    /// No input panics, and whatever parses prints back to itself.
    #[test]
    fn parse_never_panics_and_round_trips() {
        let mut parsed = 0;
        for text in random_texts(50_000) {
            match parse(&text) {
                Ok(Reference::Id(hex)) => {
                    assert!(text == hex || text == format!("sha256:{hex}"), "{text:?}")
                }
                Ok(Reference::Named(n)) => {
                    parsed += 1;
                    let mut back = n.repository();
                    if let Some(tag) = &n.tag {
                        back = format!("{back}:{tag}");
                    }
                    if let Some(digest) = &n.digest {
                        back = format!("{back}@{digest}");
                    }
                    assert_eq!(back, text);
                }
                Err(_) => {}
            }
        }
        // The generator reaches valid names too, not only garbage.
        assert!(parsed > 1_000, "{parsed}");
    }
}
