//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`.
//! Defaults may hold further interpolation (`${A:-${B}}`), nested to a small bounded depth.
//! Pure: the variables come in as a lookup.

use super::ComposeError;

/// Deepest nesting of `${...}` inside a default that is expanded.
const MAX_DEPTH: usize = 8;

/// Expands `text` with `lookup`; `at` names where the text is (for the error).
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &str,
) -> Result<String, ComposeError> {
    expand(text, lookup, at, 0)
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &str,
    depth: usize,
) -> Result<String, ComposeError> {
    let bad = |why: String| ComposeError::Interpolation {
        at: at.to_owned(),
        why,
    };
    if depth > MAX_DEPTH {
        return Err(bad(format!("`${{...}}` nested deeper than {MAX_DEPTH}")));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| {
                bad(format!(
                    "`${{` without its `}}` in `{}`",
                    shorten(text).escape_debug()
                ))
            })?;
            out.push_str(&braced(&inner[..end], lookup, at, depth)?);
            rest = &inner[end + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                // A lone `$` (compose keeps it as it is).
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..name_len]).unwrap_or_default());
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose content starts `inner`, counting nested ones.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Length of the variable name at the start of `text` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_length(text: &str) -> usize {
    let mut len = 0;
    for (i, b) in text.bytes().enumerate() {
        let ok = b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + 1;
    }
    len
}

/// The value of one `${...}`.
fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &str,
    depth: usize,
) -> Result<String, ComposeError> {
    let name_len = name_length(inner);
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return Err(ComposeError::Interpolation {
            at: at.to_owned(),
            why: format!("`${{{}}}` names no variable", shorten(inner).escape_debug()),
        });
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |skip: usize| expand(&op[skip..], lookup, at, depth + 1);
    let result = match op.as_bytes() {
        [] => value.unwrap_or_default(),
        [b':', b'-', ..] => match non_empty {
            true => value.unwrap_or_default(),
            false => arg(2)?,
        },
        [b'-', ..] => match set {
            true => value.unwrap_or_default(),
            false => arg(1)?,
        },
        [b':', b'?', ..] | [b'?', ..] => {
            let colon = op.starts_with(':');
            let missing = if colon { !non_empty } else { !set };
            if missing {
                let message = arg(if colon { 2 } else { 1 })?;
                return Err(ComposeError::Required {
                    at: at.to_owned(),
                    variable: name.to_owned(),
                    message: shorten(&message).to_owned(),
                });
            }
            value.unwrap_or_default()
        }
        [b':', b'+', ..] => match non_empty {
            true => arg(2)?,
            false => String::new(),
        },
        [b'+', ..] => match set {
            true => arg(1)?,
            false => String::new(),
        },
        _ => {
            return Err(ComposeError::Interpolation {
                at: at.to_owned(),
                why: format!(
                    "`${{{}}}` is not a form Compose knows (${{VAR}}, ${{VAR:-default}}, \
                     ${{VAR-default}}, ${{VAR:?error}}, ${{VAR:+alt}})",
                    shorten(inner).escape_debug()
                ),
            })
        }
    };
    Ok(result)
}

/// At most 80 characters of `text`, for messages.
pub(super) fn shorten(text: &str) -> &str {
    match text.char_indices().nth(80) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn run(text: &str, vars: &[(&str, &str)]) -> Result<String, ComposeError> {
        interpolate(text, &with(vars), "services.web.image")
    }

    #[test]
    fn the_forms_compose_knows() {
        let vars = [("TAG", "1.2"), ("EMPTY", ""), ("USER_1", "ann")];
        assert_eq!(run("app:${TAG}", &vars).unwrap(), "app:1.2");
        assert_eq!(run("app:$TAG-x", &vars).unwrap(), "app:1.2-x");
        assert_eq!(run("$USER_1/$NOPE.", &vars).unwrap(), "ann/.");
        assert_eq!(run("${NOPE:-dflt}", &vars).unwrap(), "dflt");
        assert_eq!(run("${EMPTY:-dflt}", &vars).unwrap(), "dflt");
        assert_eq!(run("${EMPTY-dflt}", &vars).unwrap(), "");
        assert_eq!(run("${NOPE-dflt}", &vars).unwrap(), "dflt");
        assert_eq!(run("${TAG:+set}", &vars).unwrap(), "set");
        assert_eq!(run("${EMPTY:+set}", &vars).unwrap(), "");
        assert_eq!(run("${EMPTY+set}", &vars).unwrap(), "set");
        assert_eq!(run("${NOPE:-${TAG}}", &vars).unwrap(), "1.2");
        assert_eq!(run("${NOPE:-a:b-c}", &vars).unwrap(), "a:b-c");
        assert_eq!(
            run("cost $$5 and $$TAG", &vars).unwrap(),
            "cost $5 and $TAG"
        );
        assert_eq!(run("a $ b $", &vars).unwrap(), "a $ b $");
    }

    #[test]
    fn required_variables_name_themselves() {
        let vars = [("EMPTY", "")];
        let err = run("${DB_PASSWORD:?set the password}", &vars).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("DB_PASSWORD"), "{text}");
        assert!(text.contains("set the password"), "{text}");
        assert!(text.contains("services.web.image"), "{text}");
        assert!(run("${EMPTY:?no}", &vars).is_err());
        assert_eq!(run("${EMPTY?no}", &vars).unwrap(), "");
        assert!(run("${NOPE?no}", &vars).is_err());
    }

    #[test]
    fn malformed_forms_are_errors_not_panics() {
        for text in [
            "${",
            "${TAG",
            "${}",
            "${:-x}",
            "${TAG/x/y}",
            "${TAG:x}",
            "${1A}",
        ] {
            assert!(run(text, &[("TAG", "1")]).is_err(), "{text}");
        }
        let deep = format!("{}x{}", "${A:-".repeat(40), "}".repeat(40));
        assert!(run(&deep, &[]).is_err(), "too deep is refused");
        let wide = "${A:-x}".repeat(1000);
        assert_eq!(run(&wide, &[]).unwrap(), "x".repeat(1000));
    }
}
