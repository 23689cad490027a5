//! Shell-style globs for `--exclude-pattern`: `*` (within one path component), `?`, `**` (across
//! components), `[abc]` character sets.

/// Whether `path` matches `pattern` (both absolute, e.g. `/usr/share/doc/**`).
pub fn matches(pattern: &str, path: &str) -> bool {
    matches_bytes(pattern.as_bytes(), path.as_bytes())
}

fn matches_bytes(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            let rest = p[2..]
                .strip_prefix(b"/")
                .filter(|_| p.len() > 2)
                .unwrap_or(&p[2..]);
            (0..=s.len()).any(|i| matches_bytes(rest, &s[i..]) || matches_bytes(&p[2..], &s[i..]))
        }
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| matches_bytes(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && s[0] != b'/' && matches_bytes(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().position(|&c| c == b']') else {
                return s.first() == Some(&b'[') && matches_bytes(&p[1..], &s[1..]);
            };
            let set = &p[1..end];
            let (negate, set) = match set.first() {
                Some(b'!' | b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            match s.first() {
                Some(&c) if c != b'/' => {
                    let mut hit = false;
                    let mut i = 0;
                    while i < set.len() {
                        if i + 2 < set.len() && set[i + 1] == b'-' {
                            hit |= set[i] <= c && c <= set[i + 2];
                            i += 3;
                        } else {
                            hit |= set[i] == c;
                            i += 1;
                        }
                    }
                    hit != negate && matches_bytes(&p[end + 1..], &s[1..])
                }
                _ => false,
            }
        }
        Some(&c) => s.first() == Some(&c) && matches_bytes(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_double_stars() {
        assert!(matches("/usr/share/doc/**", "/usr/share/doc/a/b/c"));
        assert!(matches("/usr/share/doc/**", "/usr/share/doc/x"));
        assert!(!matches("/usr/share/doc/*", "/usr/share/doc/a/b"));
        assert!(matches("/**/*.pyc", "/usr/lib/python3/x.pyc"));
        assert!(matches("/etc/*.conf", "/etc/host.conf"));
        assert!(!matches("/etc/*.conf", "/etc/x/host.conf"));
        assert!(matches("/lib/libc.so.?", "/lib/libc.so.6"));
        assert!(matches("/var/log/[a-c]*", "/var/log/apt"));
        assert!(!matches("/var/log/[!a-c]*", "/var/log/apt"));
    }
}
