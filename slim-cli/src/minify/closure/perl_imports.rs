//! The files a Perl source file loads by literal name: `use X::Y`, `no X::Y`, `require X::Y`,
//! `require "X/Y.pm"`, `do "file.pl"` and the classes of `use parent`/`use base` (not with
//! `-norequire`), anywhere in the file; and the directories `use lib` adds to `@INC`. A
//! tokenizer skips comments, POD (`=pod` ... `=cut`), the insides of strings and quote-like
//! operators (`q qq qw qr m s tr y`), regular expressions, here-documents and everything after
//! `__END__`/`__DATA__`, so a `use` inside any of those is none; a `require` of a computed name
//! (`require $class`, `require "$dir/x.pm"`) is reported as one that cannot be followed. Pure.

/// One literal load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    /// The file name searched in `@INC` (`X/Y.pm`), or a path (`/abs/x.pl`, `./x.pl`).
    pub path: String,
    pub line: usize,
    /// A `require`/`do` inside a sub's body: it runs only when the sub is called. (`use` runs
    /// when the file is compiled, wherever it is.)
    pub in_sub: bool,
}

/// A directory `use lib` puts in front of `@INC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibDir {
    /// `use lib '/opt/app/lib'`.
    Absolute(String),
    /// `use lib "$FindBin::Bin/lib"`: the rest after the running script's directory.
    ScriptDir(String),
}

/// What [`loads`] finds in a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loads {
    pub loads: Vec<Load>,
    /// Lines of a `require` of a computed name, and whether it is inside a sub.
    pub dynamic: Vec<(usize, bool)>,
    pub lib_dirs: Vec<LibDir>,
    /// The packages the file declares (`package X::Y;`), in order.
    pub packages: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A bareword or a package name (`File::Spec`).
    Name(String),
    /// A variable (`$x`, `@x`, `%x`, `$x::y`, `$#x`, `$_`).
    Var,
    /// A number or a version (`5.010`, `v5.36`).
    Number,
    /// A string or quote-like literal: its text, and whether it interpolates a variable.
    Str(String, bool),
    /// `qw(...)`: its words.
    Words(Vec<String>),
    Op(char),
}

fn is_word(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80
}

/// The closing delimiter of an opening one (brackets pair, others close themselves).
fn closing(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        b'<' => b'>',
        c => c,
    }
}

/// Whether a double-quoted text interpolates a variable (`$x`, `${x}`, `@x`, `@{...}`).
fn interpolates(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 1,
            b'$' | b'@'
                if text
                    .get(i + 1)
                    .is_some_and(|&c| is_word(c) || c == b'{' || c == b':') =>
            {
                return true;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

struct Lexer<'a> {
    bytes: &'a [u8],
    i: usize,
    line: usize,
    tokens: Vec<(Token, usize)>,
    /// Here-documents announced on the current line: (terminator, indented `<<~`).
    heredocs: Vec<(String, bool)>,
}

impl Lexer<'_> {
    fn at_line_start(&self, i: usize) -> bool {
        i == 0 || self.bytes[i - 1] == b'\n'
    }

    fn skip_to_line_end(&mut self) {
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// The text of a delimited part starting after `open`, up to its closing delimiter
    /// (nested brackets counted, backslash escapes skipped); `self.i` ends after it.
    fn delimited(&mut self, open: u8) -> String {
        let close = closing(open);
        let start = self.i;
        let mut depth = 0;
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            if c == b'\\' {
                self.i += 2;
                continue;
            }
            if c == b'\n' {
                self.line += 1;
            }
            if c == close && open != close {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if c == open && open != close {
                depth += 1;
            } else if c == close {
                break;
            }
            self.i += 1;
        }
        let end = self.i.min(self.bytes.len());
        self.i = (self.i + 1).min(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[start..end]).into_owned()
    }

    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.i)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            if self.bytes[self.i] == b'\n' {
                self.line += 1;
            }
            self.i += 1;
        }
    }

    /// A quote-like operator `name` whose delimiter is at `self.i`.
    fn quote_like(&mut self, name: &str) {
        let line = self.line;
        let open = self.bytes[self.i];
        self.i += 1;
        let text = self.delimited(open);
        match name {
            "qw" => {
                let words = text.split_whitespace().map(str::to_owned).collect();
                self.tokens.push((Token::Words(words), line));
            }
            "s" | "tr" | "y" => {
                // A second part: its own brackets (`s{a}{b}`), or up to the same delimiter.
                if open != closing(open) {
                    self.skip_space();
                    if let Some(&second) = self.bytes.get(self.i) {
                        self.i += 1;
                        self.delimited(second);
                    }
                } else {
                    self.delimited(open);
                }
                self.skip_modifiers();
                self.tokens.push((Token::Str(String::new(), true), line));
            }
            "m" | "qr" => {
                self.skip_modifiers();
                self.tokens.push((Token::Str(text, true), line));
            }
            "qq" => {
                let dynamic = interpolates(text.as_bytes());
                self.tokens.push((Token::Str(text, dynamic), line));
            }
            _ => self.tokens.push((Token::Str(text, false), line)),
        }
    }

    fn skip_modifiers(&mut self) {
        while self.bytes.get(self.i).is_some_and(u8::is_ascii_alphabetic) {
            self.i += 1;
        }
    }

    /// After a newline: the bodies of the here-documents announced on the line before.
    fn skip_heredocs(&mut self) {
        for (terminator, indented) in std::mem::take(&mut self.heredocs) {
            while self.i < self.bytes.len() {
                let start = self.i;
                self.skip_to_line_end();
                let text = String::from_utf8_lossy(&self.bytes[start..self.i]);
                let text = text.trim_end_matches('\r');
                let text = if indented { text.trim_start() } else { text };
                self.i = (self.i + 1).min(self.bytes.len());
                self.line += 1;
                if text == terminator {
                    break;
                }
            }
        }
    }

    /// Whether a `/` or `?` here starts a pattern rather than dividing: not after a value.
    fn pattern_expected(&self) -> bool {
        match self.tokens.last() {
            None => true,
            Some((Token::Name(name), _)) => matches!(
                name.as_str(),
                "split"
                    | "if"
                    | "unless"
                    | "while"
                    | "until"
                    | "and"
                    | "or"
                    | "not"
                    | "return"
                    | "grep"
                    | "map"
                    | "join"
                    | "push"
                    | "unshift"
                    | "when"
                    | "x"
                    | "lt"
                    | "gt"
                    | "le"
                    | "ge"
                    | "eq"
                    | "ne"
                    | "cmp"
            ),
            Some((Token::Op(c), _)) => !matches!(c, ')' | ']' | '}'),
            Some(_) => false,
        }
    }

    fn run(mut self) -> Vec<(Token, usize)> {
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                    self.skip_heredocs();
                }
                b'=' if self.at_line_start(self.i)
                    && self
                        .bytes
                        .get(self.i + 1)
                        .is_some_and(u8::is_ascii_alphabetic) =>
                {
                    // POD, to the line starting with =cut.
                    while self.i < self.bytes.len()
                        && !(self.at_line_start(self.i)
                            && self.bytes[self.i..].starts_with(b"=cut"))
                    {
                        if self.bytes[self.i] == b'\n' {
                            self.line += 1;
                        }
                        self.i += 1;
                    }
                    self.skip_to_line_end();
                }
                b'#' => self.skip_to_line_end(),
                b'\'' | b'"' | b'`' => {
                    let line = self.line;
                    self.i += 1;
                    let text = self.delimited(c);
                    let dynamic = c != b'\'' && interpolates(text.as_bytes());
                    self.tokens.push((Token::Str(text, dynamic), line));
                }
                b'$' | b'@' | b'%' | b'&' | b'*'
                    if c == b'$'
                        || c == b'@'
                        || self
                            .bytes
                            .get(self.i + 1)
                            .is_some_and(|&n| n == b'$' || n == b'{' || is_word(n))
                            && !matches!(
                                self.tokens.last(),
                                Some((Token::Var | Token::Number | Token::Str(..), _))
                                    | Some((Token::Op(')' | ']' | '}'), _))
                            ) =>
                {
                    self.i += 1;
                    match self.bytes.get(self.i) {
                        Some(b'#') if c == b'$' => {
                            // $#array, $#{...}, $#$ref, or the variable $#.
                            self.i += 1;
                        }
                        Some(&n) if is_word(n) || n == b':' => {}
                        Some(b'{' | b'$') => {}
                        // A punctuation variable ($', $", $/, $;, @_ ...).
                        Some(_) => self.i += 1,
                        None => {}
                    }
                    while self
                        .bytes
                        .get(self.i)
                        .is_some_and(|&n| is_word(n) || n == b':')
                    {
                        self.i += 1;
                    }
                    self.tokens.push((Token::Var, self.line));
                }
                c if c.is_ascii_digit() => {
                    while self
                        .bytes
                        .get(self.i)
                        .is_some_and(|&n| is_word(n) || n == b'.')
                    {
                        self.i += 1;
                    }
                    self.tokens.push((Token::Number, self.line));
                }
                c if is_word(c) => {
                    let start = self.i;
                    while self.bytes.get(self.i).is_some_and(|&n| {
                        is_word(n)
                            || n == b':'
                                && self.bytes.get(self.i + 1) == Some(&b':')
                                && self.bytes.get(self.i + 2).is_some_and(|&m| is_word(m))
                    }) {
                        self.i += if self.bytes[self.i] == b':' { 2 } else { 1 };
                    }
                    let name = String::from_utf8_lossy(&self.bytes[start..self.i]).into_owned();
                    if matches!(name.as_str(), "__END__" | "__DATA__") && self.at_line_start(start)
                    {
                        break;
                    }
                    if name.len() > 1
                        && name.starts_with('v')
                        && name[1..].bytes().all(|b| b.is_ascii_digit())
                    {
                        // A version string (v5.36.0).
                        while self
                            .bytes
                            .get(self.i)
                            .is_some_and(|&n| n.is_ascii_digit() || n == b'.')
                        {
                            self.i += 1;
                        }
                        self.tokens.push((Token::Number, self.line));
                        continue;
                    }
                    let after_arrow = matches!(self.tokens.last(), Some((Token::Op('>'), _)))
                        && matches!(
                            self.tokens.len().checked_sub(2).map(|j| &self.tokens[j].0),
                            Some(Token::Op('-'))
                        );
                    let sub_name =
                        matches!(self.tokens.last(), Some((Token::Name(n), _)) if n == "sub");
                    if matches!(
                        name.as_str(),
                        "q" | "qq" | "qw" | "qr" | "m" | "s" | "tr" | "y"
                    ) && !after_arrow
                        && !sub_name
                    {
                        // A delimiter follows (maybe after spaces, but then not `#`): not a
                        // hash key (`{s}`, `s => 1`) or a call (`s(1)` is a substitution too).
                        let mut j = self.i;
                        while self.bytes.get(j).is_some_and(|&n| n == b' ' || n == b'\t') {
                            j += 1;
                        }
                        let fat_comma = |d: u8| d == b'=' && self.bytes.get(j + 1) == Some(&b'>');
                        let delimiter = self.bytes.get(j).copied().filter(|&d| {
                            let not_one = d.is_ascii_whitespace()
                                || is_word(d)
                                || matches!(d, b',' | b';' | b')' | b'}')
                                || fat_comma(d)
                                || d == b'#' && j > self.i;
                            !not_one
                        });
                        if delimiter.is_some() {
                            self.i = j;
                            self.quote_like(&name);
                            continue;
                        }
                    }
                    self.tokens.push((Token::Name(name), self.line));
                }
                b'/' | b'?' if c == b'/' && self.pattern_expected() => {
                    let line = self.line;
                    self.i += 1;
                    let text = self.delimited(c);
                    self.skip_modifiers();
                    self.tokens.push((Token::Str(text, true), line));
                }
                b'<' if self.bytes.get(self.i + 1) == Some(&b'<') => {
                    // A here-document (<<"EOF", <<'EOF', <<EOF, <<~EOF) or a left shift.
                    let mut j = self.i + 2;
                    let indented = self.bytes.get(j) == Some(&b'~');
                    if indented {
                        j += 1;
                    }
                    let quote = self.bytes.get(j).copied();
                    let terminator = match quote {
                        Some(b'"' | b'\'') => {
                            let start = j + 1;
                            let mut end = start;
                            while self
                                .bytes
                                .get(end)
                                .is_some_and(|&n| Some(n) != quote && n != b'\n')
                            {
                                end += 1;
                            }
                            j = end + 1;
                            Some(String::from_utf8_lossy(&self.bytes[start..end]).into_owned())
                        }
                        Some(n) if n.is_ascii_alphabetic() || n == b'_' => {
                            let start = j;
                            while self.bytes.get(j).is_some_and(|&n| is_word(n)) {
                                j += 1;
                            }
                            Some(String::from_utf8_lossy(&self.bytes[start..j]).into_owned())
                        }
                        _ => None,
                    };
                    match terminator {
                        Some(terminator) => {
                            self.heredocs.push((terminator, indented));
                            self.tokens
                                .push((Token::Str(String::new(), true), self.line));
                            self.i = j.min(self.bytes.len());
                        }
                        None => {
                            self.tokens.push((Token::Op('<'), self.line));
                            self.i += 2;
                        }
                    }
                }
                c if c.is_ascii_whitespace() => self.i += 1,
                _ => {
                    self.tokens.push((Token::Op(c as char), self.line));
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
        heredocs: Vec::new(),
    }
    .run()
}

/// `X::Y` -> `X/Y.pm`, for a plausible package name.
fn module_file(name: &str) -> Option<String> {
    let name = name.strip_prefix("::").unwrap_or(name);
    if name.is_empty()
        || !name.split("::").all(|part| {
            !part.is_empty() && part.bytes().all(is_word) && !part.as_bytes()[0].is_ascii_digit()
        })
    {
        return None;
    }
    Some(format!("{}.pm", name.replace("::", "/")))
}

/// The literal loads of `source`, the lines of loads of a computed name, and `use lib` dirs.
pub fn loads(source: &str) -> Loads {
    let tokens = tokenize(source);
    let mut found = Loads::default();
    let op_at = |i: usize, op: char| matches!(tokens.get(i), Some((Token::Op(o), _)) if *o == op);
    // Open blocks, true for a sub's body.
    let mut blocks: Vec<bool> = Vec::new();
    let mut sub_pending = false;
    for (i, (token, line)) in tokens.iter().enumerate() {
        let line = *line;
        match token {
            Token::Op('{') => {
                blocks.push(std::mem::take(&mut sub_pending));
                continue;
            }
            Token::Op('}') => {
                blocks.pop();
                continue;
            }
            Token::Op(';') => {
                sub_pending = false;
                continue;
            }
            _ => {}
        }
        let Token::Name(name) = token else {
            continue;
        };
        // A method (`->require`), a sub's name (`sub require`, `&require`), a hash key
        // (`{use}`, `use => 1`) is no load.
        let prev = i.checked_sub(1).map(|j| &tokens[j].0);
        let not_a_call = matches!(prev, Some(Token::Op('>' | '&')))
            || matches!(prev, Some(Token::Name(n)) if n == "sub")
            || op_at(i + 1, '=') && op_at(i + 2, '>')
            || op_at(i + 1, '}') && matches!(prev, Some(Token::Op('{')));
        if name == "sub" && !not_a_call {
            sub_pending = true;
            continue;
        }
        if not_a_call {
            continue;
        }
        let in_sub = blocks.iter().any(|&sub| sub);
        match name.as_str() {
            "package" => {
                if let Some((Token::Name(package), _)) = tokens.get(i + 1) {
                    found.packages.push(package.clone());
                }
            }
            "use" | "no" => {
                let statement = matches!(prev, None | Some(Token::Op(';' | '{' | '}')));
                if !statement {
                    continue;
                }
                let Some((Token::Name(module), _)) = tokens.get(i + 1) else {
                    continue;
                };
                let Some(file) = module_file(module) else {
                    continue;
                };
                found.loads.push(Load {
                    path: file,
                    line,
                    in_sub: false,
                });
                let args = arguments(&tokens[i + 2..]);
                match module.as_str() {
                    "parent" | "base" if name == "use" => {
                        if args.iter().any(|a| a == "-norequire") {
                            continue;
                        }
                        for class in &args {
                            if let Some(file) = module_file(class) {
                                found.loads.push(Load {
                                    path: file,
                                    line,
                                    in_sub: false,
                                });
                            }
                        }
                    }
                    "lib" if name == "use" => {
                        found.lib_dirs.extend(lib_dirs(&tokens[i + 2..]));
                    }
                    _ => {}
                }
            }
            "require" | "do" => {
                let mut j = i + 1;
                if op_at(j, '(') {
                    j += 1;
                }
                match tokens.get(j) {
                    Some((Token::Name(module), _)) if name == "require" => {
                        if let Some(file) = module_file(module) {
                            found.loads.push(Load {
                                path: file,
                                line,
                                in_sub,
                            });
                        }
                    }
                    Some((Token::Str(path, false), _)) if !path.is_empty() => {
                        found.loads.push(Load {
                            path: path.clone(),
                            line,
                            in_sub,
                        })
                    }
                    Some((Token::Str(_, true) | Token::Var, _)) if name == "require" => {
                        found.dynamic.push((line, in_sub))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    found
}

/// The literal words of a `use` statement's arguments, to its `;`.
fn arguments(tokens: &[(Token, usize)]) -> Vec<String> {
    let mut words = Vec::new();
    for (i, (token, _)) in tokens.iter().enumerate() {
        match token {
            Token::Op(';') => break,
            Token::Str(text, false) => words.push(text.clone()),
            Token::Words(list) => words.extend(list.iter().cloned()),
            // -norequire as a bareword.
            Token::Name(name) if i > 0 && matches!(tokens[i - 1].0, Token::Op('-')) => {
                words.push(format!("-{name}"))
            }
            Token::Name(name) if !matches!(tokens.get(i + 1), Some((Token::Op('('), _))) => {
                words.push(name.clone())
            }
            _ => {}
        }
    }
    words
}

/// The directories of a `use lib` statement: literal absolute ones, and ones under the script's
/// directory (`"$FindBin::Bin/lib"`, `"$FindBin::RealBin/../lib"`).
fn lib_dirs(tokens: &[(Token, usize)]) -> Vec<LibDir> {
    let mut dirs = Vec::new();
    for (token, _) in tokens {
        let texts: Vec<(&str, bool)> = match token {
            Token::Op(';') => break,
            Token::Str(text, dynamic) => vec![(text.as_str(), *dynamic)],
            Token::Words(list) => list.iter().map(|w| (w.as_str(), false)).collect(),
            _ => continue,
        };
        for (text, dynamic) in texts {
            if !dynamic {
                if text.starts_with('/') {
                    dirs.push(LibDir::Absolute(text.to_owned()));
                }
                continue;
            }
            for bin in [
                "$FindBin::Bin",
                "${FindBin::Bin}",
                "$FindBin::RealBin",
                "${FindBin::RealBin}",
            ] {
                if let Some(rest) = text.strip_prefix(bin) {
                    let word_follows = rest.bytes().next().is_some_and(is_word);
                    if !word_follows && !interpolates(rest.as_bytes()) {
                        dirs.push(LibDir::ScriptDir(rest.to_owned()));
                    }
                    break;
                }
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<String> {
        loads(source).loads.into_iter().map(|l| l.path).collect()
    }

    #[test]
    fn literal_loads_anywhere() {
        let source = "#!/usr/bin/perl\nuse strict;\nuse warnings;\nuse 5.010;\nuse v5.36;\n\
            use File::Spec::Functions qw(catfile);\nuse POSIX ();\n\
            sub handler {\n    require JSON::PP;\n    require 'Time/Local.pm';\n    \
            return JSON::PP->new;\n}\neval { require Storable; 1 };\nno warnings 'once';\n\
            do 'config.pl';\nrequire(Data::Dumper);\n";
        assert_eq!(
            paths(source),
            [
                "strict.pm",
                "warnings.pm",
                "File/Spec/Functions.pm",
                "POSIX.pm",
                "JSON/PP.pm",
                "Time/Local.pm",
                "Storable.pm",
                "warnings.pm",
                "config.pl",
                "Data/Dumper.pm",
            ]
        );
    }

    #[test]
    fn parent_and_base_classes_are_loaded_unless_norequire() {
        let source = "use parent 'Exporter';\nuse parent -norequire, 'My::Local';\n\
            use base qw(Class::Accessor Tie::Hash);\nuse parent qw(-norequire Other);\n";
        assert_eq!(
            paths(source),
            [
                "parent.pm",
                "Exporter.pm",
                "parent.pm",
                "base.pm",
                "Class/Accessor.pm",
                "Tie/Hash.pm",
                "parent.pm",
            ]
        );
    }

    #[test]
    fn strings_comments_pod_heredocs_and_data_hold_no_loads() {
        let source = "# use Comment::Module;\nmy $s = 'require Quoted';\n\
            my $t = \"use Double::Quoted\";\nmy $q = q{require Q::Braces};\n\
            my @w = qw(use Words);\nmy $re = qr/require Regex/;\n$x =~ s{use A}{use B}g;\n\
            $y =~ m#require Hash#;\nmy $h = $o->{require};\nmy %k = (use => 1);\n$o->require;\n\
            sub require_it { 1 }\nprint <<\"EOT\";\nuse Heredoc::Module;\nEOT\n\
            print <<~'EOT';\n    require Indented;\n    EOT\n\
            =pod\n\nuse Pod::Module;\n\n=cut\nuse Real;\nmy $r = $a / 2; require After::Div;\n\
            __END__\nuse After::End;\n";
        assert_eq!(paths(source), ["Real.pm", "After/Div.pm"]);
    }

    #[test]
    fn requires_inside_subs_are_told_apart() {
        let source = "require A;\nsub m {\n    if ($x) { require B; }\n}\n\
            my $cb = sub { require C };\nsub forward;\nBEGIN { require D }\n\
            package Foo { require E; sub f { use F; } }\n";
        let found: Vec<(String, bool)> = loads(source)
            .loads
            .into_iter()
            .map(|l| (l.path, l.in_sub))
            .collect();
        let expected: Vec<(String, bool)> = [
            ("A.pm", false),
            ("B.pm", true),
            ("C.pm", true),
            ("D.pm", false),
            ("E.pm", false),
            ("F.pm", false),
        ]
        .iter()
        .map(|&(p, s)| (p.to_owned(), s))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn computed_names_are_reported() {
        let source = "require $class;\nsub f { require \"Plugins/$name.pm\" }\nrequire Fixed;\n\
            require 5.006;\n";
        let found = loads(source);
        assert_eq!(found.loads.len(), 1);
        assert_eq!(found.dynamic, [(1, false), (2, true)]);
    }

    #[test]
    fn use_lib_directories() {
        let source = "use FindBin;\nuse lib \"$FindBin::Bin/../lib\";\n\
            use lib '/opt/app/lib', 'relative';\nuse lib qw(/srv/lib);\nuse lib \"$ENV{HOME}/x\";\n";
        assert_eq!(
            loads(source).lib_dirs,
            [
                LibDir::ScriptDir("/../lib".into()),
                LibDir::Absolute("/opt/app/lib".into()),
                LibDir::Absolute("/srv/lib".into()),
            ]
        );
    }

    #[test]
    fn hostile_text_never_panics() {
        for source in [
            "",
            "'",
            "\"",
            "require",
            "require(",
            "use",
            "use parent",
            "<<",
            "<<\"",
            "<<~",
            "<<EOF\n",
            "q",
            "q(",
            "s{a}",
            "s/a",
            "$",
            "$#",
            "@",
            "=pod",
            "=",
            "/",
            "é",
            "tr",
            "qw",
            "use lib \"$FindBin::Bin",
        ] {
            let _ = loads(source);
        }
    }
}
