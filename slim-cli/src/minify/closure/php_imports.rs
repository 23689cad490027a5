//! The files a PHP source file includes by literal path: `require`, `require_once`, `include`
//! and `include_once` of a literal string, of `__DIR__ . '/lit'` or `dirname(__FILE__) .
//! '/lit'` (`dirname(__DIR__, 2)` too), with or without parentheses, anywhere in the file. Only
//! the code inside `<?php ... ?>` (and `<?= ... ?>`) is read; a tokenizer skips `//`, `#` and
//! `/* */` comments and the insides of strings, heredocs and nowdocs, so an include inside any
//! of those is none; an include of a computed path (a variable, a call, an interpolating
//! string) is reported as one that cannot be followed. Pure.

/// Where an included path starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// A literal path: absolute, or relative (searched in the include path, then next to the
    /// including file).
    Literal,
    /// `__DIR__ . '...'`: this many directories above the including file's own (0 for
    /// `__DIR__` and `dirname(__FILE__)`, 1 for `dirname(__DIR__)`...).
    Dir(usize),
}

/// One literal include.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    pub base: Base,
    /// The literal text: the whole path, or what follows the directory (`/lib/x.php`).
    pub path: String,
    pub line: usize,
}

/// An include of a path computed at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    /// `require_once`, `include`...
    pub keyword: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A name or keyword: lowercased (`require_once`, `__dir__`, `dirname`, `foo\bar`), and
    /// as written (`Foo\Bar`).
    Name(String, String),
    /// A variable, without its `$`.
    Var(String),
    Number(String),
    /// A string: its text, and whether it interpolates (`"$x"`, `"{$x}"`, a heredoc's).
    Str(String, bool),
    Op(char),
    /// `?>`: back to inline HTML.
    Close,
}

fn is_word(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80
}

fn interpolates(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 1,
            b'$' if text
                .get(i + 1)
                .is_some_and(|&c| is_word(c) && !c.is_ascii_digit() || c == b'{') =>
            {
                return true
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn tokenize(source: &str) -> Vec<(Token, usize)> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count = |from: usize, to: usize| bytes[from..to].iter().filter(|&&b| b == b'\n').count();
    let mut php = false;
    while i < bytes.len() {
        if !php {
            // Inline HTML, to the next <?php or <?=.
            let Some(at) = (i..bytes.len()).find(|&j| {
                bytes[j..].starts_with(b"<?=")
                    || bytes[j..].len() >= 5
                        && bytes[j..j + 5].eq_ignore_ascii_case(b"<?php")
                        && bytes.get(j + 5).is_none_or(|c| c.is_ascii_whitespace())
            }) else {
                break;
            };
            line += count(i, at);
            i = at
                + if bytes[at..].starts_with(b"<?=") {
                    3
                } else {
                    5
                };
            php = true;
            continue;
        }
        let c = bytes[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'?' if bytes.get(i + 1) == Some(&b'>') => {
                tokens.push((Token::Close, line));
                php = false;
                i += 2;
            }
            b'#' if bytes.get(i + 1) == Some(&b'[') => {
                // An attribute (#[Attr]): code.
                tokens.push((Token::Op('#'), line));
                i += 1;
            }
            b'#' | b'/' if c == b'#' || bytes.get(i + 1) == Some(&b'/') => {
                // To the end of the line or a closing tag.
                while i < bytes.len() && bytes[i] != b'\n' && !bytes[i..].starts_with(b"?>") {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
                line += count(i, end);
                i = end;
            }
            b'\'' | b'"' | b'`' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != c {
                    if bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = j.min(bytes.len());
                let text = &bytes[start..end];
                let dynamic = c != b'\'' && interpolates(text);
                let mut literal = String::from_utf8_lossy(text).into_owned();
                if c == b'\'' {
                    literal = literal.replace("\\'", "'").replace("\\\\", "\\");
                }
                tokens.push((Token::Str(literal, dynamic), line));
                line += count(start, end);
                i = (end + 1).min(bytes.len());
            }
            b'<' if bytes[i..].starts_with(b"<<<") => {
                // A heredoc (<<<ID, <<<"ID") or nowdoc (<<<'ID'), to its closing identifier
                // (indented or not) on a line of its own.
                let mut j = i + 3;
                while bytes.get(j).is_some_and(|&b| b == b' ' || b == b'\t') {
                    j += 1;
                }
                let quote = bytes.get(j).copied().filter(|&q| q == b'\'' || q == b'"');
                if quote.is_some() {
                    j += 1;
                }
                let start = j;
                while bytes.get(j).is_some_and(|&b| is_word(b)) {
                    j += 1;
                }
                let id = &bytes[start..j];
                if id.is_empty() {
                    tokens.push((Token::Op('<'), line));
                    i += 1;
                    continue;
                }
                let line_at = line;
                // The body starts on the next line.
                while j < bytes.len() && bytes[j] != b'\n' {
                    j += 1;
                }
                let mut end = bytes.len();
                let mut k = j;
                while k < bytes.len() {
                    // k at a newline: does the next line close it?
                    let mut m = k + 1;
                    while bytes.get(m).is_some_and(|&b| b == b' ' || b == b'\t') {
                        m += 1;
                    }
                    if bytes[m.min(bytes.len())..].starts_with(id)
                        && !bytes.get(m + id.len()).is_some_and(|&b| is_word(b))
                    {
                        end = m + id.len();
                        break;
                    }
                    k = match bytes[k + 1..].iter().position(|&b| b == b'\n') {
                        Some(p) => k + 1 + p,
                        None => bytes.len(),
                    };
                }
                line += count(i, end);
                tokens.push((Token::Str(String::new(), quote != Some(b'\'')), line_at));
                i = end;
            }
            b'$' => {
                i += 1;
                let start = i;
                while bytes.get(i).is_some_and(|&b| is_word(b)) {
                    i += 1;
                }
                let name = String::from_utf8_lossy(&bytes[start..i]).into_owned();
                tokens.push((Token::Var(name), line));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while bytes.get(i).is_some_and(|&b| is_word(b)) {
                    i += 1;
                }
                let number = String::from_utf8_lossy(&bytes[start..i]).into_owned();
                tokens.push((Token::Number(number), line));
            }
            c if is_word(c) || c == b'\\' => {
                let start = i;
                while bytes.get(i).is_some_and(|&b| is_word(b) || b == b'\\') {
                    i += 1;
                }
                let name = String::from_utf8_lossy(&bytes[start..i]).into_owned();
                tokens.push((Token::Name(name.to_ascii_lowercase(), name), line));
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                tokens.push((Token::Op(c as char), line));
                i += 1;
            }
        }
    }
    tokens
}

/// The levels above the including file's directory an operand names: `__DIR__` and
/// `dirname(__FILE__)` 0, `dirname(__DIR__)` 1, `dirname(__FILE__, 2)` 1...; and the tokens it
/// took.
fn directory(tokens: &[&Token]) -> Option<(usize, usize)> {
    match tokens {
        [Token::Name(n, _), ..] if n == "__dir__" => Some((0, 1)),
        [Token::Name(f, _), Token::Op('('), Token::Name(arg, _), rest @ ..]
            if f == "dirname" || f == "\\dirname" =>
        {
            let extra = match arg.as_str() {
                "__file__" => 0,
                "__dir__" => 1,
                _ => return None,
            };
            match rest {
                [Token::Op(')'), ..] => Some((extra, 4)),
                [Token::Op(','), Token::Number(n), Token::Op(')'), ..] => {
                    let levels: usize = n.parse().ok().filter(|&l| l >= 1)?;
                    Some((extra + levels - 1, 6))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// What an include's expression names, if literal.
fn literal(expression: &[&Token]) -> Option<(Base, String)> {
    let mut expression = expression;
    // Parentheses around the whole expression.
    while let [Token::Op('('), inner @ .., Token::Op(')')] = expression {
        expression = inner;
    }
    let (base, rest) = match directory(expression) {
        Some((levels, taken)) => {
            let rest = &expression[taken..];
            let [Token::Op('.'), rest @ ..] = rest else {
                return None;
            };
            (Base::Dir(levels), rest)
        }
        None => (Base::Literal, expression),
    };
    // One or more literal strings joined by `.`.
    let mut path = String::new();
    for (i, token) in rest.iter().enumerate() {
        match (i % 2, token) {
            (0, Token::Str(text, false)) => path.push_str(text),
            (1, Token::Op('.')) => {}
            _ => return None,
        }
    }
    (rest.len() % 2 == 1 && !path.is_empty()).then_some((base, path))
}

/// The literal includes of `source`, and the includes of a computed path.
pub fn includes(source: &str) -> (Vec<Include>, Vec<Computed>) {
    let tokens = tokenize(source);
    let mut found = Vec::new();
    let mut computed = Vec::new();
    for (i, (token, line)) in tokens.iter().enumerate() {
        let Token::Name(name, _) = token else {
            continue;
        };
        if !matches!(
            name.as_str(),
            "require" | "require_once" | "include" | "include_once"
        ) {
            continue;
        }
        // A method or a constant of that name (`$x->include(...)`, `Foo::require`), a
        // function declared so: no include.
        let prev = i.checked_sub(1).map(|j| &tokens[j].0);
        let member = matches!(prev, Some(Token::Op('>' | ':')))
            || matches!(prev, Some(Token::Name(n, _)) if n == "function" || n == "fn");
        if member {
            continue;
        }
        // The expression: to `;`, `?>`, a `,` or `)` outside its own parentheses, or a
        // lower-precedence `or`/`and`.
        let mut expression: Vec<&Token> = Vec::new();
        let mut depth = 0usize;
        for (token, _) in &tokens[i + 1..] {
            match token {
                Token::Op(';') | Token::Close => break,
                Token::Op(',' | '?' | ':' | '|' | '&') if depth == 0 => break,
                Token::Name(n, _) if depth == 0 && matches!(n.as_str(), "or" | "and" | "xor") => {
                    break
                }
                Token::Op('(') => depth += 1,
                Token::Op(')') => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            expression.push(token);
        }
        match literal(&expression) {
            Some((base, path)) => found.push(Include {
                base,
                path,
                line: *line,
            }),
            None if !expression.is_empty() => computed.push(Computed {
                keyword: name.clone(),
                line: *line,
            }),
            None => {}
        }
    }
    (found, computed)
}

/// The classes `source` names literally, fully qualified, for Composer's autoloader: `use
/// A\B\C;` imports (`as`, lists and groups too) and the traits a class uses, and the names
/// after `new`, `extends`, `implements`, `instanceof`, in `catch (...)` and before `::`,
/// resolved against the file's `namespace` and imports as PHP does. With their lines.
pub fn classes(source: &str) -> Vec<(String, usize)> {
    let tokens = tokenize(source);
    let mut found: Vec<(String, usize)> = Vec::new();
    let mut namespace = String::new();
    // Lowercased alias -> fully qualified name.
    let mut imports: std::collections::BTreeMap<String, String> = Default::default();
    // Open braces: true for a class's (or trait's, interface's, enum's) body.
    let mut braces: Vec<bool> = Vec::new();
    let mut class_pending = false;
    let mut implements = false;
    let mut catch_depth: Option<usize> = None;
    let mut parens = 0usize;
    let name_at = |i: usize| match tokens.get(i) {
        Some((Token::Name(lower, name), _)) => Some((lower.as_str(), name.as_str())),
        _ => None,
    };
    let qualify = |name: &str,
                   namespace: &str,
                   imports: &std::collections::BTreeMap<String, String>| {
        if let Some(absolute) = name.strip_prefix('\\') {
            return Some(absolute.to_owned());
        }
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "self" | "static" | "parent" | "namespace") || name.is_empty() {
            return None;
        }
        let (first, rest) = match name.split_once('\\') {
            Some((first, rest)) => (first, Some(rest)),
            None => (name, None),
        };
        if let Some(imported) = imports.get(&first.to_ascii_lowercase()) {
            return Some(match rest {
                Some(rest) => format!("{imported}\\{rest}"),
                None => imported.clone(),
            });
        }
        Some(match namespace {
            "" => name.to_owned(),
            ns => format!("{ns}\\{name}"),
        })
    };
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        let prev = i.checked_sub(1).map(|j| &tokens[j].0);
        match token {
            Token::Op('{') => {
                braces.push(std::mem::take(&mut class_pending));
                implements = false;
            }
            Token::Op('}') => {
                braces.pop();
            }
            Token::Op('(') => parens += 1,
            Token::Op(')') => {
                parens = parens.saturating_sub(1);
                if catch_depth.is_some_and(|d| parens < d) {
                    catch_depth = None;
                }
            }
            Token::Op(';') => implements = false,
            _ => {}
        }
        let Token::Name(lower, name) = token else {
            i += 1;
            continue;
        };
        let member = matches!(prev, Some(Token::Op('>')))
            || matches!(prev, Some(Token::Op(':')))
                && i >= 2
                && matches!(tokens[i - 2].0, Token::Op(':'));
        if member {
            i += 1;
            continue;
        }
        match lower.as_str() {
            "namespace" if !matches!(tokens.get(i + 1), Some((Token::Op('\\'), _))) => {
                if let Some((_, ns)) = name_at(i + 1) {
                    namespace = ns.trim_start_matches('\\').to_owned();
                    imports.clear();
                    i += 2;
                    continue;
                }
            }
            "class" | "trait" | "interface" | "enum" if !matches!(prev, Some(Token::Op(':'))) => {
                class_pending = true;
            }
            "implements" => implements = true,
            "catch" => catch_depth = Some(parens + 1),
            "use" if !matches!(tokens.get(i + 1), Some((Token::Op('('), _))) => {
                let trait_use = braces.last() == Some(&true);
                let kind = name_at(i + 1).map(|(l, _)| l);
                if matches!(kind, Some("function" | "const")) {
                    i += 1;
                    continue;
                }
                // Names to the `;` (or a trait block's `{`).
                let mut j = i + 1;
                let mut group: Option<String> = None;
                while let Some((token, _)) = tokens.get(j) {
                    match token {
                        Token::Op(';') | Token::Close => break,
                        Token::Op('{') if group.is_none() && !trait_use => {
                            group = name_at(j - 1).map(|(_, n)| n.to_owned());
                        }
                        Token::Op('{') => break,
                        Token::Op('}') => group = None,
                        Token::Name(l, n) if l != "as" => {
                            if name_at(j - 1).is_some_and(|(l, _)| l == "as") {
                                // The alias of the name before `as`.
                                if let (Some((_, imported)), false) = (name_at(j - 2), trait_use) {
                                    let full = match &group {
                                        Some(g) => {
                                            format!("{}{imported}", g.trim_start_matches('\\'))
                                        }
                                        None => imported.trim_start_matches('\\').to_owned(),
                                    };
                                    imports.insert(l.clone(), full);
                                }
                            } else if !matches!(tokens.get(j + 1), Some((Token::Op('{'), _))) {
                                let full = if trait_use {
                                    qualify(n, &namespace, &imports)
                                } else {
                                    Some(match &group {
                                        Some(g) => format!("{}{n}", g.trim_start_matches('\\')),
                                        None => n.trim_start_matches('\\').to_owned(),
                                    })
                                };
                                if let Some(full) = full {
                                    if !trait_use {
                                        let alias = full.rsplit('\\').next().unwrap_or(&full);
                                        imports.insert(alias.to_ascii_lowercase(), full.clone());
                                    }
                                    found.push((full, line));
                                }
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            _ => {}
        }
        let after = matches!(
            prev,
            Some(Token::Name(p, _)) if matches!(p.as_str(), "new" | "extends" | "implements" | "instanceof")
        );
        let listed = implements && matches!(prev, Some(Token::Op(',')));
        let static_call = matches!(tokens.get(i + 1), Some((Token::Op(':'), _)))
            && matches!(tokens.get(i + 2), Some((Token::Op(':'), _)));
        let caught =
            catch_depth.is_some() && !matches!(tokens.get(i + 1), Some((Token::Op('('), _)));
        if after || listed || static_call || caught {
            if let Some(full) = qualify(name, &namespace, &imports) {
                found.push((full, line));
            }
        }
        i += 1;
    }
    found
}

/// A Composer map (`vendor/composer/autoload_classmap.php`, `autoload_psr4.php`): each key (a
/// class, or a namespace prefix) with the paths it maps to, as (variable, rest):
/// `$vendorDir . '/foo/src'` is `("vendorDir", "/foo/src")`.
pub fn composer_map(source: &str) -> Vec<(String, Vec<(String, String)>)> {
    let tokens = tokenize(source);
    let mut map = Vec::new();
    let op_at = |i: usize, op: char| matches!(tokens.get(i), Some((Token::Op(o), _)) if *o == op);
    for (i, (token, _)) in tokens.iter().enumerate() {
        let Token::Str(key, false) = token else {
            continue;
        };
        if !(op_at(i + 1, '=') && op_at(i + 2, '>')) {
            continue;
        }
        let mut j = i + 3;
        let list = match tokens.get(j) {
            Some((Token::Name(array, _), _)) if array == "array" && op_at(j + 1, '(') => {
                j += 2;
                true
            }
            Some((Token::Op('['), _)) => {
                j += 1;
                true
            }
            _ => false,
        };
        let mut paths = Vec::new();
        while let (Some((Token::Var(var), _)), true, Some((Token::Str(rest, false), _))) =
            (tokens.get(j), op_at(j + 1, '.'), tokens.get(j + 2))
        {
            paths.push((var.clone(), rest.clone()));
            j += 3;
            if !(list && op_at(j, ',')) {
                break;
            }
            j += 1;
        }
        if !paths.is_empty() {
            map.push((key.clone(), paths));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<(Base, String)> {
        includes(source)
            .0
            .into_iter()
            .map(|i| (i.base, i.path))
            .collect()
    }

    #[test]
    fn literal_includes_anywhere() {
        let source = "<?php\nrequire 'config.php';\nrequire_once(\"lib/db.php\");\n\
            include __DIR__ . '/partials/header.php';\n\
            include_once dirname(__FILE__) . '/util.php';\n\
            require dirname(__DIR__) . '/vendor/autoload.php';\n\
            require_once dirname(__FILE__, 3) . '/' . 'up.php';\n\
            function handler() {\n    require_once __DIR__ . '/lazy.php';\n}\n\
            INCLUDE('/usr/share/php/Mail.php');\n";
        assert_eq!(
            paths(source),
            [
                (Base::Literal, "config.php".into()),
                (Base::Literal, "lib/db.php".into()),
                (Base::Dir(0), "/partials/header.php".into()),
                (Base::Dir(0), "/util.php".into()),
                (Base::Dir(1), "/vendor/autoload.php".into()),
                (Base::Dir(2), "/up.php".into()),
                (Base::Dir(0), "/lazy.php".into()),
                (Base::Literal, "/usr/share/php/Mail.php".into()),
            ]
        );
    }

    #[test]
    fn html_strings_comments_and_heredocs_hold_no_includes() {
        let source = "require 'before_tag.php';\n<?php\n// require 'line.php';\n\
            # include 'hash.php';\n/* require 'block.php'; */\n$s = 'require \"quoted.php\"';\n\
            $h = <<<EOT\ninclude 'heredoc.php';\nEOT;\n$n = <<<'EOT'\n  require 'nowdoc.php';\n  \
            EOT;\n$o->include('method.php');\nFoo::require('static.php');\n\
            function include_all() {}\n?>\n<p>include 'html.php';</p>\n<?php require 'real.php'; \
            // ?> require 'after_close.php';\n";
        assert_eq!(paths(source), [(Base::Literal, "real.php".into())]);
    }

    #[test]
    fn computed_paths_are_reported() {
        let source = "<?php\nrequire $file;\ninclude \"$dir/x.php\";\n\
            require_once __DIR__ . '/' . $name . '.php';\nrequire 'fixed.php';\n\
            include 'a.php' or die('missing');\n";
        let (found, computed) = includes(source);
        assert_eq!(found.len(), 2);
        let lines: Vec<(String, usize)> =
            computed.into_iter().map(|c| (c.keyword, c.line)).collect();
        assert_eq!(
            lines,
            [
                ("require".into(), 2),
                ("include".into(), 3),
                ("require_once".into(), 4)
            ]
        );
    }

    #[test]
    fn hostile_text_never_panics() {
        for source in [
            "",
            "<?php",
            "<?php '",
            "<?php \"",
            "<?php require",
            "<?php require(",
            "<?php <<<",
            "<?php <<<'",
            "<?php <<<EOT\n",
            "<?php /*",
            "<?php dirname(",
            "<?=",
            "é",
            "<?php #",
        ] {
            let _ = includes(source);
        }
    }

    #[test]
    fn classes_named_literally_are_fully_qualified() {
        let source = "<?php\nnamespace App\\Http;\n\nuse Monolog\\Logger;\n\
            use Symfony\\Component\\{Yaml\\Yaml, Finder\\Finder as Find};\n\
            use function strlen;\n\
            class Controller extends Base implements \\JsonSerializable, Contracts\\Handler {\n    \
            use Helpers;\n    public function run() {\n        $l = new Logger('x');\n        \
            $y = Yaml::parse('');\n        $f = new Find();\n        \
            try { } catch (\\RuntimeException | Errors\\Bad $e) { }\n        \
            $c = function () use ($l) { return new \\Vendor\\Thing(); };\n        \
            // new Commented();\n        return $this->new;\n    }\n}\n";
        let names: Vec<String> = classes(source).into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            names,
            [
                "Monolog\\Logger",
                "Symfony\\Component\\Yaml\\Yaml",
                "Symfony\\Component\\Finder\\Finder",
                "App\\Http\\Base",
                "JsonSerializable",
                "App\\Http\\Contracts\\Handler",
                "App\\Http\\Helpers",
                "Monolog\\Logger",
                "Symfony\\Component\\Yaml\\Yaml",
                "Symfony\\Component\\Finder\\Finder",
                "RuntimeException",
                "App\\Http\\Errors\\Bad",
                "Vendor\\Thing",
            ]
        );
    }

    #[test]
    fn composer_maps_are_read() {
        let source = "<?php\n\n// autoload_psr4.php @generated by Composer\n\n\
            $vendorDir = dirname(__DIR__);\n$baseDir = dirname($vendorDir);\n\nreturn array(\n    \
            'Monolog\\\\' => array($vendorDir . '/monolog/monolog/src/Monolog'),\n    \
            'App\\\\' => array($baseDir . '/src', $baseDir . '/lib'),\n    \
            'Psr\\\\Log\\\\' => $vendorDir . '/psr/log/src',\n);\n";
        let map = composer_map(source);
        let expected: Vec<(String, Vec<(String, String)>)> = vec![
            (
                "Monolog\\".into(),
                vec![("vendorDir".into(), "/monolog/monolog/src/Monolog".into())],
            ),
            (
                "App\\".into(),
                vec![
                    ("baseDir".into(), "/src".into()),
                    ("baseDir".into(), "/lib".into()),
                ],
            ),
            (
                "Psr\\Log\\".into(),
                vec![("vendorDir".into(), "/psr/log/src".into())],
            ),
        ];
        assert_eq!(map, expected);
    }
}
