//! The files a Ruby source file loads by literal name: `require 'x'`, `require_relative 'x'`,
//! `load 'x.rb'` and `autoload :X, 'x'`, anywhere in the file. A tokenizer skips comments
//! (`#` and `=begin`/`=end` blocks) and the insides of strings, so a require inside a string
//! or a comment is none; a require of a computed name (interpolation, a variable) is reported
//! as one that cannot be followed. Pure.

/// How a file is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// `require`, `load`, `autoload`: searched in the load path.
    LoadPath,
    /// `require_relative`: next to the requiring file.
    Relative,
}

/// One literal load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    pub how: Load,
    pub path: String,
    pub line: usize,
    /// Inside a method (`def ... end`): it runs only when the method is called.
    pub in_method: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A name, and whether its line is indented before it.
    Name(String, bool),
    /// A string literal; `None` when it interpolates (`"#{x}"`): no literal name.
    Str(Option<String>),
    Op(char),
    /// A line break outside strings.
    Newline,
}

fn tokenize(source: &str) -> Vec<(Token, usize)> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let at_line_start = |i: usize| i == 0 || bytes[i - 1] == b'\n';
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => {
                tokens.push((Token::Newline, line));
                line += 1;
                i += 1;
                line_start = i;
            }
            b'=' if at_line_start(i) && bytes[i..].starts_with(b"=begin") => {
                // A block comment, to the line starting with =end.
                while i < bytes.len() && !(at_line_start(i) && bytes[i..].starts_with(b"=end")) {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' | b'"' => {
                let quote = c;
                let start = i + 1;
                i += 1;
                let mut interpolated = false;
                while i < bytes.len() && bytes[i] != quote {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'\n' => line += 1,
                        b'#' if quote == b'"' && bytes.get(i + 1) == Some(&b'{') => {
                            interpolated = true
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let end = i.min(bytes.len());
                let text = String::from_utf8_lossy(&bytes[start..end]).into_owned();
                tokens.push((Token::Str((!interpolated).then_some(text)), line));
                i += 1;
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'_'
                        || bytes[i].is_ascii_alphanumeric()
                        || bytes[i] >= 0x80
                        || bytes[i] == b'?'
                        || bytes[i] == b'!')
                {
                    i += 1;
                }
                let indented = start > line_start;
                tokens.push((Token::Name(source[start..i].to_owned(), indented), line));
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                tokens.push((Token::Op(c as char), line));
                i += 1;
            }
        }
    }
    tokens
}

/// Whether the `def` at `at` is an endless method (`def name(args) = expr`), which has no `end`.
fn endless_method(tokens: &[(Token, usize)], at: usize) -> bool {
    let mut i = at + 1;
    // The name, maybe with a receiver (`self.name`).
    while matches!(tokens.get(i), Some((Token::Name(..), _)))
        || matches!(tokens.get(i), Some((Token::Op('.'), _)))
    {
        i += 1;
    }
    if matches!(tokens.get(i), Some((Token::Op('('), _))) {
        let mut depth = 0;
        while let Some((token, _)) = tokens.get(i) {
            match token {
                Token::Op('(') => depth += 1,
                Token::Op(')') => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                Token::Newline if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
    }
    matches!(tokens.get(i), Some((Token::Op('='), _)))
        && !matches!(tokens.get(i + 1), Some((Token::Op('='), _)))
}

/// The literal loads of `source`, and the lines of loads of a computed name.
pub fn requires(source: &str) -> (Vec<Require>, Vec<usize>) {
    let tokens = tokenize(source);
    let mut found = Vec::new();
    let mut dynamic = Vec::new();
    let op_at = |i: usize, op: char| matches!(tokens.get(i), Some((Token::Op(o), _)) if *o == op);
    // Open blocks, true for a method's: `def`, and the keywords `end` closes.
    let mut blocks: Vec<bool> = Vec::new();
    let mut loop_on_line = false;
    for (i, (token, line)) in tokens.iter().enumerate() {
        if matches!(token, Token::Newline) {
            loop_on_line = false;
        }
        let Token::Name(name, _) = token else {
            continue;
        };
        let after_dot = i > 0 && op_at(i - 1, '.');
        let starts = i == 0
            || matches!(
                &tokens[i - 1].0,
                Token::Newline | Token::Op(';' | '=' | '(' | ',' | '|' | '&')
            )
            || matches!(&tokens[i - 1].0, Token::Name(n, _) if n == "return" || n == "then");
        match name.as_str() {
            "def" if !after_dot => {
                if !endless_method(&tokens, i) {
                    blocks.push(true);
                }
                continue;
            }
            "class" | "module" | "begin" | "case" if starts && !after_dot => {
                blocks.push(false);
                continue;
            }
            "if" | "unless" if starts && !after_dot => {
                blocks.push(false);
                continue;
            }
            "while" | "until" | "for" if starts && !after_dot => {
                blocks.push(false);
                loop_on_line = true;
                continue;
            }
            "do" if !after_dot => {
                if !loop_on_line {
                    blocks.push(false);
                }
                continue;
            }
            "end" if !after_dot => {
                blocks.pop();
                continue;
            }
            _ => {}
        }
        let in_method = blocks.iter().any(|&method| method);
        // A method call on something (`foo.require`) or a definition (`def require`) is not
        // Kernel's.
        let method = i > 0
            && (op_at(i - 1, '.') || matches!(&tokens[i - 1].0, Token::Name(n, _) if n == "def"));
        if method {
            continue;
        }
        let how = match name.as_str() {
            "require" | "load" => Load::LoadPath,
            "require_relative" => Load::Relative,
            "autoload" => Load::LoadPath,
            _ => continue,
        };
        let mut j = i + 1;
        if op_at(j, '(') {
            j += 1;
        }
        if name == "autoload" {
            // autoload :Name, 'path'
            if !(op_at(j, ':')
                && matches!(tokens.get(j + 1), Some((Token::Name(..), _)))
                && op_at(j + 2, ','))
            {
                continue;
            }
            j += 3;
        }
        match tokens.get(j) {
            Some((Token::Str(Some(path)), _)) if !path.is_empty() => found.push(Require {
                how,
                path: path.clone(),
                line: *line,
                in_method,
            }),
            // `require` alone as a word (a local variable, a symbol :require) is no call.
            Some((Token::Str(None), _)) | Some((Token::Name(..), _)) if name != "load" => {
                dynamic.push(*line)
            }
            _ => {}
        }
    }
    (found, dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<(Load, String)> {
        requires(source)
            .0
            .into_iter()
            .map(|r| (r.how, r.path))
            .collect()
    }

    #[test]
    fn literal_requires_anywhere() {
        let source = "require 'socket'\nrequire(\"json/ext\")\n\
            def handler\n  require 'time'\n  require_relative 'lib/helper'\nend\n\
            autoload :Set, 'set'\nbegin\n  require 'psych'\nrescue LoadError\nend\n";
        assert_eq!(
            paths(source),
            vec![
                (Load::LoadPath, "socket".into()),
                (Load::LoadPath, "json/ext".into()),
                (Load::LoadPath, "time".into()),
                (Load::Relative, "lib/helper".into()),
                (Load::LoadPath, "set".into()),
                (Load::LoadPath, "psych".into()),
            ]
        );
    }

    #[test]
    fn strings_comments_and_methods_hold_no_requires() {
        let source = "# require 'secret'\n=begin\nrequire 'in_block'\n=end\n\
            s = \"require 'quoted'\"\nobj.require 'not_kernel'\ndef require(x); end\n\
            require 'real'\n";
        assert_eq!(paths(source), vec![(Load::LoadPath, "real".into())]);
    }

    #[test]
    fn requires_inside_methods_are_told_apart() {
        let source = "require 'a'\nmodule M\n  require 'b'\n  class C\n    def m(x)\n      \
            if x\n        require 'c'\n      end\n      [1].each do |i|\n        require 'd'\n      \
            end\n    end\n    def self.e = 1\n    require 'e' if true\n  end\nend\n\
            def f\n  while g do\n    require 'f'\n  end\nend\nrequire 'g'\n";
        let found: Vec<(String, bool)> = requires(source)
            .0
            .into_iter()
            .map(|r| (r.path, r.in_method))
            .collect();
        let expected: Vec<(String, bool)> = [
            ("a", false),
            ("b", false),
            ("c", true),
            ("d", true),
            ("e", false),
            ("f", true),
            ("g", false),
        ]
        .iter()
        .map(|&(p, m)| (p.to_owned(), m))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn computed_names_are_reported() {
        let source = "require name\nrequire \"plugins/#{kind}\"\nrequire 'fixed'\n";
        let (found, dynamic) = requires(source);
        assert_eq!(found.len(), 1);
        assert_eq!(dynamic, vec![1, 2]);
    }

    #[test]
    fn hostile_text_never_panics() {
        for source in [
            "",
            "'",
            "\"",
            "require",
            "require(",
            "autoload :",
            "=begin",
            "#",
            "é",
        ] {
            let _ = requires(source);
        }
    }
}
