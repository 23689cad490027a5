//! A command line split into words as a POSIX shell splits them: single and double quotes and
//! backslashes, no expansion. Pure.

/// The words of `line`; `None` when a quote is left open.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let (mut word, mut started, mut quote) = (String::new(), false, None::<char>);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, '\\') => {
                if let Some(escaped) = chars.next() {
                    word.push(escaped);
                    started = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_quotes_and_backslashes() {
        assert_eq!(
            split(r#"sh -c 'echo "a b"' x\ y "" z"#),
            Some(vec![
                "sh".into(),
                "-c".into(),
                "echo \"a b\"".into(),
                "x y".into(),
                "".into(),
                "z".into()
            ])
        );
        assert_eq!(split("  "), Some(vec![]));
        assert_eq!(split("echo 'open"), None);
    }
}
