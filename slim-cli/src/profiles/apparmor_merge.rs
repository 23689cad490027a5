//! Merging AppArmor profiles textually (`slim profile merge`): one header (the first input's),
//! and the union of the rule lines of the profile bodies. AppArmor's rules add up whatever their
//! order (a deny rule wins over any allow), so a rule line one input has and another lacks is
//! appended after the first input's rules. Only profiles of the same name and flags, without
//! nested blocks, and with the same deny rules are merged: a deny rule only one input had would
//! take away what another allowed. Pure.

use std::collections::BTreeSet;

/// The merged profile, enforcing and in complain mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub complain_text: String,
    /// Rule lines taken from inputs after the first.
    pub added: usize,
}

/// One profile split at its `profile NAME ... {` line and its closing brace.
struct Split<'a> {
    header: Vec<&'a str>,
    profile_line: &'a str,
    body: Vec<&'a str>,
}

fn split<'a>(label: &str, text: &'a str) -> Result<Split<'a>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let l = l.trim();
            l.starts_with("profile ") && l.ends_with('{')
        })
        .ok_or_else(|| format!("{label} has no `profile NAME {{` line"))?;
    let end = lines
        .iter()
        .rposition(|l| l.trim() == "}")
        .filter(|&end| end > start)
        .ok_or_else(|| format!("{label} has no closing brace"))?;
    if lines[end + 1..].iter().any(|l| is_rule(l)) {
        return Err(format!("{label} has more than one profile"));
    }
    let body = lines[start + 1..end].to_vec();
    if body
        .iter()
        .any(|l| is_rule(l) && (l.contains('{') || l.contains('}')))
    {
        return Err(format!(
            "{label} has nested blocks (hats or child profiles)"
        ));
    }
    Ok(Split {
        header: lines[..start].to_vec(),
        profile_line: lines[start],
        body,
    })
}

/// Whether a line is a rule (includes count; comments and blank lines do not).
fn is_rule(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && (!line.starts_with('#') || line.starts_with("#include"))
}

fn deny_rules<'a>(body: &[&'a str]) -> BTreeSet<&'a str> {
    body.iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("deny ") || l.starts_with("audit deny "))
        .collect()
}

/// Merges `inputs` (label, profile text); `Err` says why they are not merged.
pub fn merge(inputs: &[(String, String)]) -> Result<Merged, String> {
    let Some((first_label, first_text)) = inputs.first() else {
        return Err("nothing to merge".into());
    };
    let first = split(first_label, first_text)?;
    let mut seen: BTreeSet<&str> = first
        .body
        .iter()
        .filter(|l| is_rule(l))
        .map(|l| l.trim())
        .collect();
    let mut body: Vec<String> = first.body.iter().map(|l| l.to_string()).collect();
    let mut added = 0;
    for (label, text) in &inputs[1..] {
        let other = split(label, text)?;
        if other.profile_line.trim() != first.profile_line.trim() {
            return Err(format!(
                "{label} is `{}`, {first_label} `{}` (the same profile name and flags are needed)",
                other.profile_line.trim().trim_end_matches('{').trim(),
                first.profile_line.trim().trim_end_matches('{').trim()
            ));
        }
        if deny_rules(&other.body) != deny_rules(&first.body) {
            return Err(format!(
                "{label} and {first_label} have different deny rules"
            ));
        }
        let new: Vec<&str> = other
            .body
            .iter()
            .filter(|l| is_rule(l))
            .map(|l| l.trim())
            .filter(|l| seen.insert(l))
            .collect();
        if !new.is_empty() {
            body.push(String::new());
            body.push(format!("  # Only in {label}."));
            body.extend(new.iter().map(|l| format!("  {l}")));
            added += new.len();
        }
    }
    let mut text = format!(
        "# Merged by slim profile merge from {} profiles: {}.\n",
        inputs.len(),
        inputs
            .iter()
            .map(|(label, _)| label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for line in &first.header {
        text.push_str(line);
        text.push('\n');
    }
    let profile_line = first.profile_line;
    for line in std::iter::once(profile_line.to_owned()).chain(body) {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("}\n");
    let complain_line = if profile_line.contains("complain") {
        profile_line.to_owned()
    } else if profile_line.contains("flags=(") {
        profile_line.replacen("flags=(", "flags=(complain,", 1)
    } else {
        let head = profile_line.trim_end().trim_end_matches('{').trim_end();
        format!("{head} flags=(complain) {{")
    };
    let complain_text = text.replacen(profile_line, &complain_line, 1);
    Ok(Merged {
        text,
        complain_text,
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(rules: &[&str]) -> String {
        let mut text = String::from(
            "# AppArmor profile slim-app.\n#include <tunables/global>\n\n\
             profile slim-app flags=(attach_disconnected,mediate_deleted) {\n  \
             #include <abstractions/base>\n\n  # Files.\n",
        );
        for rule in rules {
            text.push_str(&format!("  {rule}\n"));
        }
        text.push_str("\n  deny /sys/firmware/** rwklx,\n}\n");
        text
    }

    fn labelled(texts: &[String]) -> Vec<(String, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("in{}", i + 1), t.clone()))
            .collect()
    }

    #[test]
    fn rule_lines_add_up_under_one_header() {
        let a = profile(&["/etc/app.conf r,", "network inet stream,"]);
        let b = profile(&[
            "/etc/app.conf r,",
            "/var/lib/app/** rwk,",
            "capability setuid,",
        ]);
        let merged = merge(&labelled(&[a.clone(), b])).unwrap();
        assert_eq!(merged.added, 2);
        let text = &merged.text;
        for rule in [
            "  /etc/app.conf r,\n",
            "  network inet stream,\n",
            "  /var/lib/app/** rwk,\n",
            "  capability setuid,\n",
            "  deny /sys/firmware/** rwklx,\n",
            "  #include <abstractions/base>\n",
        ] {
            assert_eq!(text.matches(rule).count(), 1, "{rule}: {text}");
        }
        assert_eq!(text.matches("profile slim-app ").count(), 1);
        assert!(text.ends_with("  capability setuid,\n}\n"), "{text}");
        assert!(merged
            .complain_text
            .contains("profile slim-app flags=(complain,attach_disconnected,mediate_deleted) {"));
        assert_eq!(merged.complain_text.replace("complain,", ""), *text);
        // With itself: nothing added.
        assert_eq!(merge(&labelled(&[a.clone(), a])).unwrap().added, 0);
    }

    #[test]
    fn other_names_deny_rules_or_shapes_are_not_merged() {
        let a = profile(&["/etc/app.conf r,"]);
        let other_name = a.replace("profile slim-app ", "profile slim-other ");
        assert!(merge(&labelled(&[a.clone(), other_name])).is_err());
        let more_deny = a.replace("}\n", "  deny /etc/app.conf w,\n}\n");
        assert!(merge(&labelled(&[a.clone(), more_deny])).is_err());
        let hat = a.replace("}\n", "  ^hat {\n  }\n}\n");
        assert!(merge(&labelled(&[a.clone(), hat])).is_err());
        for junk in ["", "{}", "profile x {", "not a profile\n}\n"] {
            assert!(
                merge(&labelled(&[a.clone(), junk.to_owned()])).is_err(),
                "{junk}"
            );
        }
        assert!(merge(&[]).is_err());
    }
}
