//! One service's section of a Compose file (already interpolated) into a [`Service`], and the
//! top-level `volumes` and `networks`: each key either taken, deliberately ignored (it does not
//! change how one run behaves), or refused by name.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Map, Value};

use super::{
    env, interpolate::shorten, ComposeError, Condition, Dependency, Healthcheck, Mount, Service,
};

/// What a service's section is read against.
pub(super) struct Context<'a> {
    pub dir: &'a Path,
    pub volumes: &'a BTreeSet<String>,
    pub networks: &'a BTreeSet<String>,
    pub variables: &'a BTreeMap<String, String>,
}

fn invalid(at: &str, why: impl Into<String>) -> ComposeError {
    ComposeError::Invalid {
        at: at.to_owned(),
        why: why.into(),
    }
}

fn unsupported(at: &str, key: &str) -> ComposeError {
    ComposeError::Unsupported {
        at: at.to_owned(),
        key: shorten(key).to_owned(),
    }
}

/// `value` as a mapping.
pub(super) fn mapping<'v>(
    value: &'v Value,
    at: &str,
) -> Result<&'v Map<String, Value>, ComposeError> {
    value
        .as_object()
        .ok_or_else(|| invalid(at, "not a mapping"))
}

/// A name Compose and the engine accept for a service, volume or network.
fn check_name(name: &str, at: &str) -> Result<(), ComposeError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match ok {
        true => Ok(()),
        false => Err(invalid(
            at,
            format!(
                "`{}` is not a valid name (letters, digits, `.`, `_`, `-`)",
                shorten(name).escape_debug()
            ),
        )),
    }
}

/// A scalar as text (Compose takes numbers and booleans where it wants strings).
fn text(value: &Value, at: &str) -> Result<String, ComposeError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid(at, "not a string")),
    }
}

/// A string, or a list of strings (`tmpfs`, `env_file`...).
fn strings(value: &Value, at: &str) -> Result<Vec<String>, ComposeError> {
    match value {
        Value::Array(items) => items.iter().map(|item| text(item, at)).collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![text(other, at)?]),
    }
}

/// The top-level `volumes`: the declared names; what would make one other than a fresh local
/// volume is refused.
pub(super) fn top_volumes(value: Option<&Value>) -> Result<BTreeSet<String>, ComposeError> {
    top_names(
        value,
        "volumes",
        (&["labels", "name"], "local"),
        BTreeSet::new(),
    )
}

/// The top-level `networks`: the declared names (slim puts every service it starts on one
/// private network of its own, with the aliases of all of them).
pub(super) fn top_networks(value: Option<&Value>) -> Result<BTreeSet<String>, ComposeError> {
    top_names(
        value,
        "networks",
        (&["labels", "name", "attachable"], "bridge"),
        ["default".to_owned()].into(),
    )
}

/// The names a top-level `section` declares, added to `names`: each spec may hold the `keys`
/// slim can honour, `driver: DRIVER` and `x-` extensions; any other key is refused by name.
fn top_names(
    value: Option<&Value>,
    section: &str,
    (keys, driver): (&[&str], &str),
    mut names: BTreeSet<String>,
) -> Result<BTreeSet<String>, ComposeError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(names);
    };
    for (name, spec) in mapping(value, section)? {
        let at = format!("{section}.{}", shorten(name));
        check_name(name, &at)?;
        if let Some(spec) = spec.as_object() {
            for key in spec.keys() {
                match key.as_str() {
                    key if keys.contains(&key) => {}
                    "driver" if spec[key].as_str() == Some(driver) => {}
                    key if key.starts_with("x-") => {}
                    key => return Err(unsupported(&at, key)),
                }
            }
        } else if !spec.is_null() {
            return Err(invalid(&at, "not a mapping"));
        }
        names.insert(name.clone());
    }
    Ok(names)
}

/// One service.
pub(super) fn service(name: &str, value: &Value, cx: &Context) -> Result<Service, ComposeError> {
    let base = format!("services.{}", shorten(name));
    check_name(name, &base)?;
    let section = mapping(value, &base)?;
    let mut service = Service {
        name: name.to_owned(),
        ..Default::default()
    };
    let mut env_files = Vec::new();
    let mut environment = Vec::new();
    for (key, value) in section {
        let at = format!("{base}.{}", shorten(key));
        match key.as_str() {
            "image" => service.image = Some(text(value, &at)?),
            "build" => service.build = !value.is_null(),
            "environment" => environment = environment_of(value, &at, cx.variables)?,
            "env_file" => env_files = env_files_of(value, &at, cx.dir)?,
            "command" => service.command = command(value, &at)?,
            "entrypoint" => service.entrypoint = command(value, &at)?,
            "user" => service.user = Some(text(value, &at)?),
            "working_dir" => service.working_dir = Some(text(value, &at)?),
            "volumes" => {
                for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                    let at = format!("{at}[{index}]");
                    match volume(item, &at, cx)? {
                        Entry::Mount(mount) => service.mounts.push(mount),
                        Entry::Tmpfs(target) => service.tmpfs.push(target),
                    }
                }
            }
            "tmpfs" => service.tmpfs.extend(strings(value, &at)?),
            "ports" => {
                for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                    service.ports.extend(port(item, &format!("{at}[{index}]"))?);
                }
            }
            "expose" => {
                for item in strings(value, &at)? {
                    service.ports.extend(port(&Value::String(item), &at)?);
                }
            }
            "networks" => service.aliases.extend(networks(value, &at, cx.networks)?),
            "container_name" | "hostname" => {
                let alias = text(value, &at)?;
                check_name(&alias, &at)?;
                service.aliases.push(alias);
            }
            "healthcheck" => service.healthcheck = Some(healthcheck(value, &at)?),
            "depends_on" => service.depends_on = depends_on(value, &at)?,
            "labels" => service.labels = labels(value, &at)?,
            "cap_add" => service.cap_add = strings(value, &at)?,
            "cap_drop" => service.cap_drop = strings(value, &at)?,
            // Each run starts a service once, and only the ones the target needs.
            "restart" | "profiles" => {}
            key if key.starts_with("x-") => {}
            key => return Err(unsupported(&base, key)),
        }
    }
    service.ports.sort_unstable();
    service.ports.dedup();
    service.aliases.sort();
    service.aliases.dedup();
    service.aliases.retain(|a| a != name);
    service.environment = env_files;
    service.environment.extend(environment);
    Ok(service)
}

/// `environment`: a mapping or a list of `KEY=VALUE`; a key without a value takes the
/// variable of that name (left out when it is not set), as Compose does.
fn environment_of(
    value: &Value,
    at: &str,
    variables: &BTreeMap<String, String>,
) -> Result<Vec<String>, ComposeError> {
    let mut out = Vec::new();
    let mut add = |key: &str, value: Option<String>| -> Result<(), ComposeError> {
        if key.is_empty() || key.contains('=') {
            return Err(invalid(
                at,
                format!("`{}` is not a variable name", shorten(key)),
            ));
        }
        if let Some(value) = value.or_else(|| variables.get(key).cloned()) {
            out.push(format!("{key}={value}"));
        }
        Ok(())
    };
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let value = match value {
                    Value::Null => None,
                    other => Some(text(other, at)?),
                };
                add(key, value)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                let item = text(item, at)?;
                match item.split_once('=') {
                    Some((key, value)) => add(key, Some(value.to_owned()))?,
                    None => add(&item, None)?,
                }
            }
        }
        Value::Null => {}
        _ => return Err(invalid(at, "not a mapping or a list")),
    }
    Ok(out)
}

/// `env_file`: each file's `KEY=VALUE` lines, in order (relative to the project's directory;
/// `required: false` skips a missing one).
fn env_files_of(value: &Value, at: &str, dir: &Path) -> Result<Vec<String>, ComposeError> {
    let mut files: Vec<(String, bool)> = Vec::new();
    for item in match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    } {
        match &item {
            Value::Object(entry) => {
                let path = entry
                    .get("path")
                    .ok_or_else(|| invalid(at, "an entry without `path`"))?;
                let required = entry
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                files.push((text(path, at)?, required));
            }
            other => files.push((text(other, at)?, true)),
        }
    }
    let mut out = Vec::new();
    for (file, required) in files {
        let path = dir.join(&file);
        if !required && path.symlink_metadata().is_err() {
            continue;
        }
        let text = env::read_file(&path, &format!("{at} file"))?;
        for (key, value) in env::parse(&text, &file)? {
            out.push(format!("{key}={value}"));
        }
    }
    Ok(out)
}

/// `command` or `entrypoint`: a list, or a string split as a shell would (quotes, no expansion).
fn command(value: &Value, at: &str) -> Result<Option<Vec<String>>, ComposeError> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|i| text(i, at))
            .collect::<Result<_, _>>()
            .map(Some),
        other => crate::shell_words::split(&text(other, at)?)
            .map(Some)
            .ok_or_else(|| invalid(at, "an unclosed quote")),
    }
}

/// A `volumes` entry of a service.
enum Entry {
    Mount(Mount),
    Tmpfs(String),
}

/// One `volumes` entry: `SRC:DST[:MODE]`, `DST`, or the long form.
fn volume(value: &Value, at: &str, cx: &Context) -> Result<Entry, ComposeError> {
    let (kind, source, target, read_only) = match value {
        Value::String(short) => {
            let parts: Vec<&str> = short.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => (None, *target, None),
                [source, target] => (Some(*source), *target, None),
                [source, target, mode] => (Some(*source), *target, Some(*mode)),
                _ => {
                    return Err(invalid(
                        at,
                        format!("`{}` is not SRC:DST[:MODE]", shorten(short)),
                    ))
                }
            };
            let mut read_only = false;
            for option in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
                match option {
                    "ro" => read_only = true,
                    "rw" | "cached" | "delegated" | "consistent" => {}
                    other => return Err(unsupported(at, other)),
                }
            }
            let kind = match source {
                None => "anonymous",
                Some(s) if s.starts_with(['.', '/', '~']) => "bind",
                Some(_) => "volume",
            };
            (
                kind,
                source.map(str::to_owned),
                target.to_owned(),
                read_only,
            )
        }
        Value::Object(long) => {
            for key in long.keys() {
                match key.as_str() {
                    "type" | "source" | "target" | "read_only" | "consistency" => {}
                    key => return Err(unsupported(at, key)),
                }
            }
            let kind = long.get("type").and_then(Value::as_str).unwrap_or("volume");
            let source = long.get("source").map(|s| text(s, at)).transpose()?;
            let target = long
                .get("target")
                .map(|t| text(t, at))
                .transpose()?
                .ok_or_else(|| invalid(at, "no target"))?;
            let read_only = long
                .get("read_only")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let kind = match (kind, &source) {
                ("volume", None) => "anonymous",
                ("volume" | "bind" | "tmpfs", _) => kind,
                (other, _) => return Err(unsupported(at, &format!("type: {other}"))),
            };
            (kind, source, target, read_only)
        }
        _ => return Err(invalid(at, "not a string or a mapping")),
    };
    if !target.starts_with('/') {
        return Err(invalid(
            at,
            format!("the target `{}` is not an absolute path", shorten(&target)),
        ));
    }
    let entry = match (kind, source) {
        ("tmpfs", _) => Entry::Tmpfs(target),
        ("anonymous", _) | (_, None) => Entry::Mount(Mount::Anonymous { target }),
        ("bind", Some(source)) => Entry::Mount(Mount::Bind {
            source: bind_source(&source, at, cx)?,
            target,
            read_only,
        }),
        (_, Some(name)) => {
            if !cx.volumes.contains(&name) {
                return Err(invalid(
                    at,
                    format!(
                        "volume `{}` is not declared under the top-level `volumes`",
                        shorten(&name)
                    ),
                ));
            }
            Entry::Mount(Mount::Volume {
                name,
                target,
                read_only,
            })
        }
    };
    Ok(entry)
}

/// A bind mount's host path: relative to the project's directory, `~` the user's home. It
/// must exist: the engine would create a missing one on the host (slim creates no host paths).
fn bind_source(source: &str, at: &str, cx: &Context) -> Result<PathBuf, ComposeError> {
    let path = match source.strip_prefix('~') {
        Some(rest) => {
            let home = std::env::var_os("HOME").ok_or_else(|| invalid(at, "`~` and no HOME"))?;
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        None => cx.dir.join(source),
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    if path.symlink_metadata().is_err() {
        return Err(invalid(
            at,
            format!(
                "the host path {} does not exist (slim creates no host paths; create it first)",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// A `ports` or `expose` entry: its container TCP port (none for UDP).
fn port(value: &Value, at: &str) -> Result<Option<u16>, ComposeError> {
    let (container, protocol) = match value {
        Value::Number(n) => (n.to_string(), "tcp".to_owned()),
        Value::String(short) => {
            let (ports, protocol) = short.split_once('/').unwrap_or((short, "tcp"));
            let container = ports.rsplit(':').next().unwrap_or(ports);
            (container.to_owned(), protocol.to_owned())
        }
        Value::Object(long) => {
            for key in long.keys() {
                match key.as_str() {
                    "target" | "published" | "protocol" | "host_ip" | "mode" | "name"
                    | "app_protocol" => {}
                    key => return Err(unsupported(at, key)),
                }
            }
            let target = long.get("target").ok_or_else(|| invalid(at, "no target"))?;
            let protocol = long
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("tcp");
            (text(target, at)?, protocol.to_owned())
        }
        _ => return Err(invalid(at, "not a port")),
    };
    if protocol == "udp" {
        return Ok(None);
    }
    if protocol != "tcp" {
        return Err(invalid(at, format!("protocol `{}`", shorten(&protocol))));
    }
    match container.parse::<u16>() {
        Ok(port) if port > 0 => Ok(Some(port)),
        _ => Err(invalid(
            at,
            format!(
                "`{}` is not one container port (ranges are not run)",
                shorten(&container)
            ),
        )),
    }
}

/// A service's `networks`: the aliases it has on them (every network named must be declared).
fn networks(
    value: &Value,
    at: &str,
    declared: &BTreeSet<String>,
) -> Result<Vec<String>, ComposeError> {
    let mut aliases = Vec::new();
    let check = |name: &str| match declared.contains(name) {
        true => Ok(()),
        false => Err(invalid(
            at,
            format!(
                "network `{}` is not declared under the top-level `networks`",
                shorten(name)
            ),
        )),
    };
    match value {
        Value::Array(names) => {
            for name in names {
                check(&text(name, at)?)?;
            }
        }
        Value::Object(map) => {
            for (name, spec) in map {
                check(name)?;
                let Some(spec) = spec.as_object() else {
                    continue;
                };
                for (key, value) in spec {
                    match key.as_str() {
                        "aliases" => {
                            for alias in strings(value, at)? {
                                check_name(&alias, at)?;
                                aliases.push(alias);
                            }
                        }
                        key => return Err(unsupported(at, key)),
                    }
                }
            }
        }
        _ => return Err(invalid(at, "not a list or a mapping")),
    }
    Ok(aliases)
}

/// `healthcheck`.
fn healthcheck(value: &Value, at: &str) -> Result<Healthcheck, ComposeError> {
    let mut check = Healthcheck::default();
    for (key, value) in mapping(value, at)? {
        let at = format!("{at}.{}", shorten(key));
        match key.as_str() {
            "test" => {
                check.test = match value {
                    Value::String(line) => vec!["CMD-SHELL".into(), line.clone()],
                    other => strings(other, &at)?,
                };
                match check.test.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => {}
                    _ => return Err(invalid(&at, "a list starts with CMD, CMD-SHELL or NONE")),
                }
            }
            "disable" if value.as_bool() == Some(true) => check.test = vec!["NONE".into()],
            "disable" => {}
            "interval" => check.interval = Some(duration(value, &at)?),
            "timeout" => check.timeout = Some(duration(value, &at)?),
            "start_period" => check.start_period = Some(duration(value, &at)?),
            "start_interval" => check.start_interval = Some(duration(value, &at)?),
            "retries" => {
                check.retries = Some(
                    value
                        .as_u64()
                        .and_then(|r| u32::try_from(r).ok())
                        .ok_or_else(|| invalid(&at, "not a count"))?,
                )
            }
            key => return Err(unsupported(&at, key)),
        }
    }
    Ok(check)
}

/// A Compose duration: `1m30s`, `10s`, `500ms`, `2h` (units h, m, s, ms, us, ns).
fn duration(value: &Value, at: &str) -> Result<Duration, ComposeError> {
    let text = text(value, at)?;
    let bad = || {
        invalid(
            at,
            format!(
                "`{}` is not a duration such as 10s or 1m30s",
                shorten(&text)
            ),
        )
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(3600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            "us" => Duration::from_micros(1),
            "ns" => Duration::from_nanos(1),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = unit
            .checked_mul(u32::try_from(number).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// `depends_on`: a list of names, or a mapping with `condition` (and `required`, `restart`).
fn depends_on(value: &Value, at: &str) -> Result<Vec<Dependency>, ComposeError> {
    let mut out = Vec::new();
    match value {
        Value::Array(names) => {
            for name in names {
                out.push(Dependency {
                    service: text(name, at)?,
                    condition: Condition::Started,
                    required: true,
                });
            }
        }
        Value::Object(map) => {
            for (name, spec) in map {
                let mut dependency = Dependency {
                    service: name.clone(),
                    condition: Condition::Started,
                    required: true,
                };
                for (key, value) in spec.as_object().into_iter().flatten() {
                    match key.as_str() {
                        "condition" => {
                            let condition = text(value, at)?;
                            dependency.condition =
                                Condition::parse(&condition).ok_or_else(|| {
                                    invalid(
                                        at,
                                        format!(
                                        "condition `{}` is not service_started, service_healthy \
                                         or service_completed_successfully",
                                        shorten(&condition)
                                    ),
                                    )
                                })?;
                        }
                        "required" => dependency.required = value.as_bool().unwrap_or(true),
                        // Restarting a dependent when its dependency restarts: slim restarts none.
                        "restart" => {}
                        key => return Err(unsupported(at, key)),
                    }
                }
                out.push(dependency);
            }
        }
        Value::Null => {}
        _ => return Err(invalid(at, "not a list or a mapping")),
    }
    Ok(out)
}

/// `labels`: a mapping or a list of `KEY=VALUE`; slim's own `slim.` labels are refused.
fn labels(value: &Value, at: &str) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                out.insert(key.clone(), text(value, at)?);
            }
        }
        Value::Array(items) => {
            for item in items {
                let item = text(item, at)?;
                let (key, value) = item.split_once('=').unwrap_or((&item, ""));
                out.insert(key.to_owned(), value.to_owned());
            }
        }
        Value::Null => {}
        _ => return Err(invalid(at, "not a mapping or a list")),
    }
    if let Some(own) = out.keys().find(|k| k.starts_with("slim.")) {
        return Err(invalid(
            at,
            format!("`{}` is one of slim's own labels", shorten(own)),
        ));
    }
    Ok(out)
}

#[cfg(test)]
pub(super) fn split_for_tests(line: &str) -> Option<Vec<String>> {
    crate::shell_words::split(line)
}

#[cfg(test)]
pub(super) fn duration_for_tests(text: &str) -> Result<Duration, ComposeError> {
    duration(&Value::String(text.to_owned()), "t")
}
