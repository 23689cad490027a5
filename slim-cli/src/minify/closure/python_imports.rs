//! The modules a Python source file names literally: `import a.b`, `from a.b import c` (c may
//! be a submodule), relative forms (`from . import x`, `from ..a import b`),
//! `importlib.import_module("lit")` and `__import__("lit")`, anywhere in the file (function
//! bodies, conditional branches and `try` blocks included). A tokenizer skips comments and
//! strings, so an import inside a string or a comment is none. A call whose argument is not a
//! literal is reported as a dynamic import that cannot be followed. Pure.

/// One import statement or call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Leading dots of a relative import (0: absolute).
    pub level: usize,
    /// The dotted module (empty for `from . import x`).
    pub module: String,
    /// For `from M import a, b`: the names, each possibly a submodule of M (`*` left out).
    pub names: Vec<String>,
    pub line: usize,
    /// Inside a function body: it runs only when the function is called, not on import.
    pub in_function: bool,
}

/// An import whose module is computed at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicImport {
    pub line: usize,
    /// The call as written, shortened (`import_module(name)`).
    pub expression: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Name(String),
    Str(String),
    Op(char),
    /// The end of a logical line.
    End,
    /// The start of a logical line, at this column.
    Indent(usize),
}

/// Tokens with their line numbers: names, string literals (their text, prefixes and escapes
/// left as written), single-character operators, and logical line ends (newlines outside
/// brackets). Comments and numbers are dropped.
fn tokenize(source: &str) -> Vec<(Token, usize)> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut depth) = (0, 1, 0usize);
    let (mut line_start, mut at_line_start) = (0, true);
    while i < bytes.len() {
        let c = bytes[i];
        if at_line_start && !matches!(c, b'\n' | b'#' | b' ' | b'\t' | b'\r' | b'\x0c') {
            tokens.push((Token::Indent(i - line_start), line));
            at_line_start = false;
        }
        match c {
            b'\n' => {
                if depth == 0 {
                    tokens.push((Token::End, line));
                    at_line_start = true;
                }
                line += 1;
                i += 1;
                line_start = i;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 2;
                line_start = i;
            }
            b'\'' | b'"' => {
                let (text, end, lines) = string_at(bytes, i);
                tokens.push((Token::Str(text), line));
                line += lines;
                i = end;
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric() || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &source[start..i];
                // A string prefix (r, b, f, u, rb, br, fr...) directly before a quote.
                let prefix = word.len() <= 2
                    && word.chars().all(|ch| "rRbBfFuU".contains(ch))
                    && matches!(bytes.get(i), Some(b'\'' | b'"'));
                if !prefix {
                    tokens.push((Token::Name(word.to_owned()), line));
                }
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                tokens.push((Token::Op(c as char), line));
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                tokens.push((Token::Op(c as char), line));
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
            _ => {
                tokens.push((Token::Op(c as char), line));
                i += 1;
            }
        }
    }
    tokens.push((Token::End, line));
    tokens
}

/// The string literal starting at `start` (a quote): its text, the index after it, and the
/// newlines it spans. Triple quotes and backslash escapes are honoured; an unterminated one
/// runs to the end of its line (or of the file, when triple-quoted).
fn string_at(bytes: &[u8], start: usize) -> (String, usize, usize) {
    let quote = bytes[start];
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let open = if triple { 3 } else { 1 };
    let mut i = start + open;
    let mut lines = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                if bytes.get(i + 1) == Some(&b'\n') {
                    lines += 1;
                }
                i += 2;
                continue;
            }
            b'\n' if !triple => break,
            b'\n' => lines += 1,
            q if q == quote
                && (!triple
                    || (bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote))) =>
            {
                let text = String::from_utf8_lossy(&bytes[start + open..i]).into_owned();
                return (text, i + open, lines);
            }
            _ => {}
        }
        i += 1;
    }
    let end = i.min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start + open..end]).into_owned();
    (text, end, lines)
}

/// The imports of `source`, and the calls that import a computed name.
pub fn imports(source: &str) -> (Vec<Import>, Vec<DynamicImport>) {
    let tokens = tokenize(source);
    let mut found = Vec::new();
    let mut dynamic = Vec::new();
    let name_at = |i: usize| match tokens.get(i) {
        Some((Token::Name(n), _)) => Some(n.as_str()),
        _ => None,
    };
    let op_at = |i: usize, op: char| matches!(tokens.get(i), Some((Token::Op(o), _)) if *o == op);
    // Where a statement may start: the file's start, a line's start, after `;` or `:`.
    let starts_statement = |i: usize| {
        i == 0
            || matches!(
                tokens.get(i - 1),
                Some((Token::End | Token::Indent(_), _)) | Some((Token::Op(';' | ':'), _))
            )
    };
    // The indentation of the `def`s the current line is inside.
    let mut functions: Vec<usize> = Vec::new();
    let mut indent = 0;
    // A dotted name from `i`: the name and the index after it.
    let dotted = |mut i: usize| -> (String, usize) {
        let mut name = String::new();
        while let Some(part) = name_at(i) {
            name.push_str(part);
            if op_at(i + 1, '.') && name_at(i + 2).is_some() {
                name.push('.');
                i += 2;
            } else {
                return (name, i + 1);
            }
        }
        (name, i)
    };
    let mut i = 0;
    while i < tokens.len() {
        let line = tokens[i].1;
        if let (Token::Indent(column), _) = &tokens[i] {
            indent = *column;
            while functions.last().is_some_and(|&f| indent <= f) {
                functions.pop();
            }
            i += 1;
            continue;
        }
        let in_function = !functions.is_empty();
        match name_at(i) {
            Some("def") if starts_statement(i) || name_at(i.wrapping_sub(1)) == Some("async") => {
                functions.push(indent);
                i += 1;
            }
            Some("import") if starts_statement(i) => {
                // import a.b [as c], d
                let mut j = i + 1;
                loop {
                    let (module, next) = dotted(j);
                    if module.is_empty() {
                        break;
                    }
                    found.push(Import {
                        level: 0,
                        module,
                        names: Vec::new(),
                        line,
                        in_function,
                    });
                    j = next;
                    if name_at(j) == Some("as") {
                        j += 2;
                    }
                    if !op_at(j, ',') {
                        break;
                    }
                    j += 1;
                }
                i = j;
            }
            Some("from") if starts_statement(i) => {
                // from [.]*[a.b] import (x [as y], z) | *
                let mut j = i + 1;
                let mut level = 0;
                while op_at(j, '.') {
                    level += 1;
                    j += 1;
                }
                // `from . import x`: no module after the dots.
                let (module, next) = match name_at(j) {
                    Some("import") => (String::new(), j),
                    _ => dotted(j),
                };
                j = next;
                if name_at(j) != Some("import") {
                    i = j.max(i + 1);
                    continue;
                }
                j += 1;
                let mut names = Vec::new();
                let bracketed = op_at(j, '(');
                if bracketed {
                    j += 1;
                }
                while let Some(name) = name_at(j) {
                    names.push(name.to_owned());
                    j += 1;
                    if name_at(j) == Some("as") {
                        j += 2;
                    }
                    if !op_at(j, ',') {
                        break;
                    }
                    j += 1;
                }
                found.push(Import {
                    level,
                    module,
                    names,
                    line,
                    in_function,
                });
                i = j;
            }
            Some(call @ ("import_module" | "__import__")) if op_at(i + 1, '(') => {
                match tokens.get(i + 2) {
                    Some((Token::Str(literal), _)) if op_at(i + 3, ')') || op_at(i + 3, ',') => {
                        let level = literal.chars().take_while(|&c| c == '.').count();
                        found.push(Import {
                            level,
                            module: literal[level..].to_owned(),
                            names: Vec::new(),
                            line,
                            in_function,
                        });
                    }
                    _ => {
                        // A function defined under that name is not a call.
                        let defined = i > 0 && name_at(i - 1) == Some("def");
                        if !defined {
                            dynamic.push(DynamicImport {
                                line,
                                expression: format!("{call}(...)"),
                            });
                        }
                    }
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    (found, dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(source: &str) -> Vec<(usize, String, Vec<String>)> {
        imports(source)
            .0
            .into_iter()
            .map(|i| (i.level, i.module, i.names))
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literal_imports_anywhere_in_the_file() {
        let source = "import os, sys as system\n\
            import xml.dom.minidom\n\
            from email.mime import text, multipart as mp\n\
            from json import (\n    dumps,\n    loads as l,\n)\n\
            def handler():\n    import csv\n    if x: import decimal\n\
            try:\n    from lxml import etree\nexcept ImportError:\n    pass\n\
            x = 1; import zlib\n";
        assert_eq!(
            modules(source),
            vec![
                (0, "os".into(), vec![]),
                (0, "sys".into(), vec![]),
                (0, "xml.dom.minidom".into(), vec![]),
                (0, "email.mime".into(), strings(&["text", "multipart"])),
                (0, "json".into(), strings(&["dumps", "loads"])),
                (0, "csv".into(), vec![]),
                (0, "decimal".into(), vec![]),
                (0, "lxml".into(), strings(&["etree"])),
                (0, "zlib".into(), vec![]),
            ]
        );
    }

    #[test]
    fn imports_inside_functions_are_told_apart() {
        let source = "import a\n\
            try:\n    import b\nexcept ImportError:\n    b = None\n\
            class C:\n    import c\n    def m(self):\n        import d\n\
            \n        # a comment at another indent\n        import e\n    import f\n\
            def g():\n    if x:\n        import h\n\
            async def k():\n    import i\n\
            def one(): import j\n\
            import l\n";
        let found: Vec<(String, bool)> = imports(source)
            .0
            .into_iter()
            .map(|i| (i.module, i.in_function))
            .collect();
        let expected: Vec<(String, bool)> = [
            ("a", false),
            ("b", false),
            ("c", false),
            ("d", true),
            ("e", true),
            ("f", false),
            ("h", true),
            ("i", true),
            ("j", true),
            ("l", false),
        ]
        .iter()
        .map(|&(m, f)| (m.to_owned(), f))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn relative_imports_and_import_calls() {
        let source = "from . import views\nfrom .models import User\nfrom ..core.db import *\n\
            m = importlib.import_module(\"plugins.fast\")\nn = __import__('yaml')\n\
            o = importlib.import_module('.sub', package=__name__)\n";
        assert_eq!(
            modules(source),
            vec![
                (1, "".into(), strings(&["views"])),
                (1, "models".into(), strings(&["User"])),
                (2, "core.db".into(), vec![]),
                (0, "plugins.fast".into(), vec![]),
                (0, "yaml".into(), vec![]),
                (1, "sub".into(), vec![]),
            ]
        );
    }

    #[test]
    fn strings_and_comments_hold_no_imports() {
        let source = "# import secret\n\
            doc = \"\"\"\nimport inside_docstring\nfrom a import b\n\"\"\"\n\
            s = 'import quoted'; t = r\"from x import y\"\n\
            u = f\"{'import nested'}\"\n\
            print('import a', \"\\\" import b\")\n\
            important = 1\nfrom_ = 2\nimport real\n";
        assert_eq!(modules(source), vec![(0, "real".into(), vec![])]);
    }

    #[test]
    fn computed_names_are_reported_not_followed() {
        let source = "import importlib\n\
            def load(name):\n    return importlib.import_module(name)\n\
            mod = __import__(PREFIX + 'x')\n\
            def import_module(name, package=None):\n    pass\n";
        let (found, dynamic) = imports(source);
        assert_eq!(found.len(), 1);
        assert_eq!(
            dynamic,
            vec![
                DynamicImport {
                    line: 3,
                    expression: "import_module(...)".into()
                },
                DynamicImport {
                    line: 4,
                    expression: "__import__(...)".into()
                },
            ]
        );
    }

    #[test]
    fn hostile_text_never_panics() {
        for source in [
            "",
            "'",
            "\"\"\"",
            "from",
            "from .",
            "import",
            "import .",
            "from . import (",
            "\\",
            "é import x",
            "from x import",
            "__import__(",
            "import_module('",
            "from ...... import",
            "\u{feff}import os",
        ] {
            let _ = imports(source);
        }
    }
}
