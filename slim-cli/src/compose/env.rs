//! Env files as Compose reads them (the project's `.env`, `--compose-env-file`, a service's
//! `env_file`): `KEY=VALUE` lines, `#` comments, an optional `export `, single quotes taken
//! literally, double quotes with `\n`, `\t`, `\\` and `\"`, and a bare value's ` #` comment.
//! Files are read here, at most 1 MiB each, never through a symbolic link.

use std::path::Path;

use super::ComposeError;

/// Largest env file (or Compose file) read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The `KEY=VALUE` pairs of an env file's text, in order; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<(String, String)>, ComposeError> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let bad = |why: &str| ComposeError::EnvFile {
            file: file.to_owned(),
            line: number + 1,
            why: why.to_owned(),
        };
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim_start()),
            None => (line, ""),
        };
        let valid_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid_key {
            return Err(bad("not KEY=VALUE"));
        }
        pairs.push((
            key.to_owned(),
            value_of(value).ok_or_else(|| bad("unclosed quote"))?,
        ));
    }
    Ok(pairs)
}

/// A value as written after `=`: quoted, or bare up to a ` #` comment.
fn value_of(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('\'') {
        return inner.find('\'').map(|end| inner[..end].to_owned());
    }
    if let Some(inner) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    let bare = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Some(bare.trim_end().to_owned())
}

/// Reads a file Compose names (an env file, the Compose file): a regular file, not a symbolic
/// link, at most [`MAX_FILE_BYTES`]; `what` names it in errors (`env_file of web`).
pub fn read_file(path: &Path, what: &str) -> Result<String, ComposeError> {
    let bad = |why: String| ComposeError::File {
        what: what.to_owned(),
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(bad(
            "a symbolic link (slim reads Compose input only from regular files)".into(),
        ));
    }
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(bad(format!("larger than {} KiB", MAX_FILE_BYTES >> 10)));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let text = "# comment\n\nA=1\nexport B = two words \nC='lit $X \\n'\nD=\"l1\\nl2 \\\"q\\\"\"\nE=bare # note\nF=\nG\nH=a=b\n";
        let pairs = parse(text, ".env").unwrap();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("lit $X \\n"));
        assert_eq!(get("D"), Some("l1\nl2 \"q\""));
        assert_eq!(get("E"), Some("bare"));
        assert_eq!(get("F"), Some(""));
        assert_eq!(get("G"), Some(""));
        assert_eq!(get("H"), Some("a=b"));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let err = parse("A=1\n=x\n", "prod.env").unwrap_err().to_string();
        assert!(err.contains("prod.env") && err.contains("line 2"), "{err}");
        assert!(parse("A=\"open\n", ".env").is_err());
        assert!(parse("A='open\n", ".env").is_err());
        assert!(parse("BAD KEY=1\n", ".env").is_err());
    }

    #[test]
    fn links_and_large_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("slim-compose-env-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("real.env"), "A=1\n").unwrap();
        std::os::unix::fs::symlink(dir.join("real.env"), dir.join("link.env")).unwrap();
        assert!(read_file(&dir.join("real.env"), "env").is_ok());
        let err = read_file(&dir.join("link.env"), "env")
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let big = vec![b'#'; MAX_FILE_BYTES as usize + 1];
        std::fs::write(dir.join("big.env"), big).unwrap();
        assert!(read_file(&dir.join("big.env"), "env").is_err());
        assert!(read_file(&dir, "env").is_err(), "a directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
