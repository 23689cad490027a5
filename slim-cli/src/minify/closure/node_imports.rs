//! The modules a JavaScript source file names literally: `require('x')`,
//! `require.resolve('x')`, `import ... from 'x'`, `import 'x'`, `import('x')` and
//! `export ... from 'x'`, anywhere in the file (function bodies included). A tokenizer skips
//! comments, the insides of strings and template literals (not the code in their `${...}`), and
//! regular expression literals, so a require inside any of those is none; a `require` or
//! `import()` of a computed name (a variable, a template with substitutions, a concatenation)
//! is reported as one that cannot be followed. Pure.

/// One literal module name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub specifier: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// An identifier, keyword or number.
    Name(String),
    /// A string or template literal; `None` for a template with substitutions.
    Str(Option<String>),
    /// `=>`.
    Arrow,
    Punct(char),
}

/// Whether a `/` after `previous` starts a regular expression (else it divides).
fn regex_allowed(previous: Option<&Token>) -> bool {
    match previous {
        None | Some(Token::Arrow) => true,
        Some(Token::Str(_)) => false,
        Some(Token::Punct(c)) => !matches!(c, ')' | ']'),
        Some(Token::Name(name)) => matches!(
            name.as_str(),
            "return"
                | "typeof"
                | "instanceof"
                | "in"
                | "of"
                | "new"
                | "delete"
                | "void"
                | "throw"
                | "case"
                | "do"
                | "else"
                | "yield"
                | "await"
        ),
    }
}

struct Lexer<'a> {
    bytes: &'a [u8],
    i: usize,
    line: usize,
    tokens: Vec<(Token, usize)>,
    /// For each `${` open in a template: the brace depth inside it.
    templates: Vec<usize>,
}

impl Lexer<'_> {
    fn skip_line(&mut self) {
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
    }

    fn block_comment(&mut self) {
        self.i += 2;
        while self.i < self.bytes.len() && !self.bytes[self.i..].starts_with(b"*/") {
            if self.bytes[self.i] == b'\n' {
                self.line += 1;
            }
            self.i += 1;
        }
        self.i += 2;
    }

    /// A quoted string from its opening quote; its text (escapes kept as written).
    fn string(&mut self, quote: u8) {
        let start = self.i + 1;
        let line = self.line;
        self.i += 1;
        while self.i < self.bytes.len() && self.bytes[self.i] != quote {
            match self.bytes[self.i] {
                b'\\' => {
                    if self.bytes.get(self.i + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.i += 1;
                }
                // An unterminated string ends at the line's end.
                b'\n' => break,
                _ => {}
            }
            self.i += 1;
        }
        let end = self.i.min(self.bytes.len());
        let text = String::from_utf8_lossy(&self.bytes[start..end]).into_owned();
        self.tokens.push((Token::Str(Some(text)), line));
        self.i += 1;
    }

    /// A template literal's text from after its backquote (or after the `}` closing a
    /// substitution) to its end or to its next `${`.
    fn template(&mut self, continued: bool) {
        let start = self.i;
        let line = self.line;
        while self.i < self.bytes.len() {
            match self.bytes[self.i] {
                b'\\' => self.i += 1,
                b'\n' => self.line += 1,
                b'`' => break,
                b'$' if self.bytes.get(self.i + 1) == Some(&b'{') => {
                    // Its code is tokenized; the template is no literal name.
                    self.i += 2;
                    self.templates.push(0);
                    if !continued {
                        self.tokens.push((Token::Str(None), line));
                    }
                    return;
                }
                _ => {}
            }
            self.i += 1;
        }
        let end = self.i.min(self.bytes.len());
        if !continued {
            let text = String::from_utf8_lossy(&self.bytes[start..end]).into_owned();
            self.tokens.push((Token::Str(Some(text)), line));
        }
        self.i += 1;
    }

    /// A regular expression literal from its opening `/`, to its closing `/` outside a class
    /// (`[...]`) and its flags; it never spans lines.
    fn regex(&mut self) {
        self.i += 1;
        let mut class = false;
        while self.i < self.bytes.len() {
            match self.bytes[self.i] {
                b'\\' => self.i += 1,
                b'\n' => return,
                b'[' => class = true,
                b']' => class = false,
                b'/' if !class => break,
                _ => {}
            }
            self.i += 1;
        }
        self.i += 1;
        while self.i < self.bytes.len() && self.bytes[self.i].is_ascii_alphabetic() {
            self.i += 1;
        }
        self.tokens.push((Token::Str(None), self.line));
    }

    fn run(mut self) -> Vec<(Token, usize)> {
        // A `#!` line is no code.
        if self.bytes.starts_with(b"#!") {
            self.skip_line();
        }
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b'/' if self.bytes.get(self.i + 1) == Some(&b'/') => self.skip_line(),
                b'/' if self.bytes.get(self.i + 1) == Some(&b'*') => self.block_comment(),
                b'/' if regex_allowed(self.tokens.last().map(|(t, _)| t)) => self.regex(),
                b'\'' | b'"' => self.string(c),
                b'`' => {
                    self.i += 1;
                    self.template(false);
                }
                b'{' => {
                    if let Some(depth) = self.templates.last_mut() {
                        *depth += 1;
                    }
                    self.tokens.push((Token::Punct('{'), self.line));
                    self.i += 1;
                }
                b'}' => {
                    self.i += 1;
                    match self.templates.last_mut() {
                        Some(0) => {
                            // The end of a `${...}`: the template goes on.
                            self.templates.pop();
                            self.template(true);
                        }
                        Some(depth) => {
                            *depth -= 1;
                            self.tokens.push((Token::Punct('}'), self.line));
                        }
                        None => self.tokens.push((Token::Punct('}'), self.line)),
                    }
                }
                b'=' if self.bytes.get(self.i + 1) == Some(&b'>') => {
                    self.tokens.push((Token::Arrow, self.line));
                    self.i += 2;
                }
                c if c == b'_' || c == b'$' || c.is_ascii_alphanumeric() || c >= 0x80 => {
                    let start = self.i;
                    while self.i < self.bytes.len()
                        && (self.bytes[self.i] == b'_'
                            || self.bytes[self.i] == b'$'
                            || self.bytes[self.i].is_ascii_alphanumeric()
                            || self.bytes[self.i] >= 0x80)
                    {
                        self.i += 1;
                    }
                    let name = String::from_utf8_lossy(&self.bytes[start..self.i]).into_owned();
                    self.tokens.push((Token::Name(name), self.line));
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => {
                    self.tokens.push((Token::Punct(c as char), self.line));
                    self.i += 1;
                }
            }
        }
        self.tokens
    }
}

fn tokenize(source: &str) -> Vec<(Token, usize)> {
    Lexer {
        bytes: source.as_bytes(),
        i: 0,
        line: 1,
        tokens: Vec::new(),
        templates: Vec::new(),
    }
    .run()
}

/// What a call's parenthesized argument is.
enum Argument {
    Literal(String),
    Computed,
    /// No call (`require` as a value), or a method definition named so.
    NoCall,
}

/// The argument of the call whose `(` is at `open`.
fn argument(tokens: &[(Token, usize)], open: usize) -> Argument {
    let punct = |i: usize, c: char| matches!(tokens.get(i), Some((Token::Punct(p), _)) if *p == c);
    if !punct(open, '(') {
        return Argument::NoCall;
    }
    if let Some((Token::Str(Some(name)), _)) = tokens.get(open + 1) {
        if punct(open + 2, ')') || punct(open + 2, ',') {
            return Argument::Literal(name.clone());
        }
    }
    // A method named `require` (`require(name) { ... }`) is a definition, not a call.
    let mut depth = 0;
    for (i, (token, _)) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return if punct(i + 1, '{') {
                        Argument::NoCall
                    } else {
                        Argument::Computed
                    };
                }
            }
            _ => {}
        }
    }
    Argument::Computed
}

/// The `from 'x'` ending the `import`/`export` statement at `at`, if it has one: only names,
/// braces, commas and `*` come between.
fn from_clause(tokens: &[(Token, usize)], at: usize) -> Option<(String, usize)> {
    for i in at + 1..tokens.len() {
        match &tokens[i].0 {
            Token::Name(name) if name == "from" => {
                if let Some((Token::Str(Some(module)), line)) = tokens.get(i + 1) {
                    return Some((module.clone(), *line));
                }
            }
            Token::Name(name)
                if matches!(
                    name.as_str(),
                    "import" | "export" | "const" | "let" | "var" | "function" | "class"
                ) =>
            {
                return None
            }
            Token::Name(_) | Token::Punct('{' | '}' | ',' | '*') => {}
            _ => return None,
        }
    }
    None
}

/// The literal module names of `source`, and the lines of `require`s and `import()`s of a
/// computed name.
pub fn imports(source: &str) -> (Vec<Import>, Vec<usize>) {
    let tokens = tokenize(source);
    let mut found = Vec::new();
    let mut dynamic = Vec::new();
    let punct = |i: usize, c: char| matches!(tokens.get(i), Some((Token::Punct(p), _)) if *p == c);
    for (i, (token, line)) in tokens.iter().enumerate() {
        let Token::Name(name) = token else {
            continue;
        };
        // A property (`obj.require`, `obj.import`) is not the module system's.
        if i > 0 && punct(i - 1, '.') {
            continue;
        }
        let call = match name.as_str() {
            // `require.resolve('x')` names a module as well.
            "require"
                if punct(i + 1, '.')
                    && matches!(tokens.get(i + 2), Some((Token::Name(n), _)) if n == "resolve") =>
            {
                Some(i + 3)
            }
            "require" => Some(i + 1),
            "import" if punct(i + 1, '(') => Some(i + 1),
            "import" if punct(i + 1, '.') => None,
            "import" => {
                if let Some((Token::Str(Some(module)), line)) = tokens.get(i + 1) {
                    found.push(Import {
                        specifier: module.clone(),
                        line: *line,
                    });
                } else if let Some((specifier, line)) = from_clause(&tokens, i) {
                    found.push(Import { specifier, line });
                }
                None
            }
            "export" => {
                if let Some((specifier, line)) = from_clause(&tokens, i) {
                    found.push(Import { specifier, line });
                }
                None
            }
            _ => None,
        };
        let Some(open) = call else {
            continue;
        };
        // `function require(...)` defines one.
        if i > 0 && matches!(&tokens[i - 1].0, Token::Name(n) if n == "function") {
            continue;
        }
        match argument(&tokens, open) {
            Argument::Literal(specifier) if !specifier.is_empty() => found.push(Import {
                specifier,
                line: *line,
            }),
            Argument::Literal(_) | Argument::NoCall => {}
            Argument::Computed => dynamic.push(*line),
        }
    }
    (found, dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str) -> Vec<String> {
        imports(source).0.into_iter().map(|i| i.specifier).collect()
    }

    #[test]
    fn literal_names_anywhere() {
        let source = "#!/usr/bin/env node\n'use strict';\nconst fs = require('fs');\n\
            const lib = require(\"./lib/x\");\nfunction handler(req) {\n  \
            const mime = require('mime');\n  return import('../up.mjs');\n}\n\
            import def, { a as b } from 'esm-pkg';\nimport * as ns from \"./ns.js\";\n\
            import './side-effect.js';\nexport { c } from '@scope/pkg/sub';\n\
            export * from './all.js';\nconst p = require.resolve(`./tpl`);\n\
            class C { m() { return require('in-method'); } }\n\
            const f = () => { require('in-arrow') };\n";
        assert_eq!(
            names(source),
            [
                "fs",
                "./lib/x",
                "mime",
                "../up.mjs",
                "esm-pkg",
                "./ns.js",
                "./side-effect.js",
                "@scope/pkg/sub",
                "./all.js",
                "./tpl",
                "in-method",
                "in-arrow",
            ]
        );
        let lines: Vec<usize> = imports(source).0.iter().map(|i| i.line).collect();
        assert_eq!(lines[..4], [3, 4, 6, 7]);
    }

    #[test]
    fn strings_comments_templates_and_regexes_hold_no_imports() {
        let source = "// require('line-comment')\n/* require('block')\n import 'x' */\n\
            const s = \"require('double')\";\nconst t = 'import(\"single\")';\n\
            const u = `require('template') ${ require('in-substitution') } import 'y'`;\n\
            const r = /require\\('regex'\\)[/]/g;\nconst d = a / 2; require('after-division');\n\
            obj.require('method'); obj.import('x');\nconsole.log(import.meta.url);\n\
            function require(name) { }\nclass K { require(x) { return x } }\n\
            const q = x => /'/.test(x); require('after-quote-regex');\n";
        assert_eq!(
            names(source),
            ["in-substitution", "after-division", "after-quote-regex"]
        );
        assert!(imports(source).1.is_empty(), "{:?}", imports(source).1);
    }

    #[test]
    fn computed_names_are_reported() {
        let source = "require(name);\nrequire(`./plugins/${kind}`);\nrequire('./a' + b);\n\
            import(spec);\nrequire('fixed');\nconst r = require;\n";
        let (found, dynamic) = imports(source);
        assert_eq!(found.len(), 1);
        assert_eq!(dynamic, [1, 2, 3, 4]);
    }

    #[test]
    fn hostile_text_never_panics() {
        for source in [
            "", "'", "\"", "`", "`${", "`${}", "}", "/", "/*", "require", "require(", "import",
            "export", "export {", "import(", "#!", "é", "/[", "a/", "`${`${`",
        ] {
            let _ = imports(source);
        }
    }
}
