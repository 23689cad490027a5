//! Text into HTML: the one escaping helper every value of the report goes through, and the
//! read-only accessors that take figures out of report.json without trusting its shape.

use serde_json::Value;

/// `text` safe as HTML text and inside a quoted attribute: `& < > " '` become entities. Every
/// string that comes from report.json or files.txt (image names, paths of a possibly hostile
/// image, probe answers) is written through this.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The string at JSON pointer `at` (`/target/image`), or "".
pub fn text<'a>(report: &'a Value, at: &str) -> &'a str {
    report.pointer(at).and_then(Value::as_str).unwrap_or("")
}

/// The unsigned number at `at`, or 0.
pub fn number(report: &Value, at: &str) -> u64 {
    report.pointer(at).and_then(Value::as_u64).unwrap_or(0)
}

/// The number at `at`, or 0.0.
pub fn float(report: &Value, at: &str) -> f64 {
    report.pointer(at).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The array at `at`, or empty.
pub fn list<'a>(report: &'a Value, at: &str) -> &'a [Value] {
    report
        .pointer(at)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The strings of the array at `at` (other items shown as JSON).
pub fn strings(report: &Value, at: &str) -> Vec<String> {
    list(report, at)
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape("/srv/<script>alert('x')</script>&\"a\".txt"),
            "/srv/&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;a&quot;.txt"
        );
        assert_eq!(escape("plain/ünïcode path"), "plain/ünïcode path");
    }

    #[test]
    fn accessors_tolerate_any_shape() {
        let report = serde_json::json!({"a": {"s": "x", "n": 3, "f": 1.5, "l": ["p", 2]}});
        assert_eq!(text(&report, "/a/s"), "x");
        assert_eq!(text(&report, "/a/n"), "");
        assert_eq!(number(&report, "/a/n"), 3);
        assert_eq!(number(&report, "/a/s"), 0);
        assert_eq!(float(&report, "/a/f"), 1.5);
        assert_eq!(strings(&report, "/a/l"), ["p", "2"]);
        assert!(list(&report, "/nope").is_empty());
    }
}
