//! The Compose subset slim reads to run one service with its neighbours: the file's YAML (an
//! untrusted input: read with limits, never through a symbolic link), `.env` or
//! `--compose-env-file`, variable interpolation, services with their run settings, named
//! volumes, networks with aliases, healthchecks, and `depends_on` in start order. A key that
//! would change how a service runs and that slim does not do is an error naming it, never
//! ignored. Pure: no engine, no tokio; the engine side is in `commands/build/neighbours.rs`.

mod env;
mod interpolate;
mod order;
mod service;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

pub use order::{start_order, Selection, Step};

/// Why a Compose file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read {what} {}: {why}", path.display())]
    File {
        what: String,
        path: PathBuf,
        why: String,
    },
    #[error("{file} is not valid YAML: {why}")]
    Yaml { file: String, why: String },
    #[error("{at}: {why}")]
    Interpolation { at: String, why: String },
    #[error("{at}: variable {variable} is required: {message}")]
    Required {
        at: String,
        variable: String,
        message: String,
    },
    #[error("{file} line {line}: {why}")]
    EnvFile {
        file: String,
        line: usize,
        why: String,
    },
    #[error("{at}: slim does not run Compose's `{key}`")]
    Unsupported { at: String, key: String },
    #[error("{at}: {why}")]
    Invalid { at: String, why: String },
    #[error("no service {name} in the Compose file (it has {known})")]
    NoSuchService { name: String, known: String },
    #[error("service {service} has `build:` and no `image:`: slim slims an image the engine has")]
    NeedsBuild { service: String },
    #[error("depends_on goes round in a circle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
}

impl ComposeError {
    /// What the user can do about it, for the one-line hint.
    pub fn hint(&self, file: &Path) -> String {
        match self {
            Self::Unsupported { .. } => "slim runs a subset of Compose (image, environment, \
                env_file, command, entrypoint, user, working_dir, volumes, tmpfs, ports, \
                networks, healthcheck, depends_on): drop the key for the slim build"
                .into(),
            Self::NeedsBuild { service } => format!(
                "build it first (`docker compose -f {} build {service}`) and name the result \
                 with `image:` next to `build:`",
                file.display()
            ),
            Self::Required { variable, .. } => {
                format!("set {variable} in the environment, in .env or in --compose-env-file")
            }
            Self::NoSuchService { .. } => "name one of its services".into(),
            Self::Cycle { .. } => "break the circle in depends_on".into(),
            Self::File { .. } => {
                "give the path of a readable regular file (relative paths are from the \
                 current directory, an env_file's from the Compose file's)"
                    .into()
            }
            _ => format!(
                "fix {} (the Compose specification's format)",
                file.display()
            ),
        }
    }
}

/// How to read a Compose file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Variables for interpolation instead of the project's `.env` (`--compose-env-file`).
    pub env_file: Option<PathBuf>,
    /// The project's name (`--compose-project-name`), else the file's `name:`, else its
    /// directory's name.
    pub project_name: Option<String>,
    /// The host's environment: wins over the env file, as in Compose.
    pub host_env: Vec<(String, String)>,
}

/// A Compose project as slim runs it.
#[derive(Clone, Debug)]
pub struct Project {
    /// Lowercase letters, digits, `-` and `_`: part of the names of what slim creates.
    pub name: String,
    /// The Compose file's directory: relative paths are resolved against it.
    pub dir: PathBuf,
    pub services: BTreeMap<String, Service>,
    /// Named volumes declared at the top level.
    pub volumes: BTreeSet<String>,
}

/// One service's run settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    /// It has a `build:` section.
    pub build: bool,
    /// `env_file` entries, then `environment` (later wins), as `KEY=VALUE`.
    pub environment: Vec<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    /// tmpfs mount points, with their options after a `:` when given.
    pub tmpfs: Vec<String>,
    /// Container TCP ports (`ports` and `expose`).
    pub ports: Vec<u16>,
    /// DNS names besides the service name (network aliases, `container_name`, `hostname`).
    pub aliases: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<Dependency>,
    pub labels: BTreeMap<String, String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
}

/// A volume of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// A host path (resolved against the project's directory; it exists).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume of the project (slim creates a fresh one for each run).
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    /// An anonymous volume (the engine makes one and removes it with the container).
    Anonymous { target: String },
}

impl Mount {
    /// Where it is mounted in the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. }
            | Self::Volume { target, .. }
            | Self::Anonymous { target } => target,
        }
    }
}

/// A healthcheck in the engine's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD-SHELL", "..."]`, `["CMD", ...]` or `["NONE"]` (disabled).
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl Healthcheck {
    /// Longest a container with this healthcheck takes to be found unhealthy, by the engine's
    /// defaults (30 s interval and timeout, 3 retries) where it does not say.
    pub fn verdict_within(&self) -> Duration {
        let interval = self.interval.unwrap_or(Duration::from_secs(30));
        let timeout = self.timeout.unwrap_or(Duration::from_secs(30));
        let retries = self.retries.unwrap_or(3).max(1);
        self.start_period.unwrap_or_default() + (interval + timeout) * (retries + 1)
    }
}

/// One entry of `depends_on`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// `required: false`: a missing service is skipped.
    pub required: bool,
}

/// What a dependent waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// `service_started` (the default).
    Started,
    /// `service_healthy`: its healthcheck passed.
    Healthy,
    /// `service_completed_successfully`: it exited with 0.
    CompletedSuccessfully,
}

impl Condition {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "service_started" => Some(Self::Started),
            "service_healthy" => Some(Self::Healthy),
            "service_completed_successfully" => Some(Self::CompletedSuccessfully),
            _ => None,
        }
    }
}

/// Reads the Compose file at `file`.
pub fn load(file: &Path, options: &LoadOptions) -> Result<Project, ComposeError> {
    let text = env::read_file(file, "the Compose file")?;
    let dir = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    let env_file = match &options.env_file {
        Some(given) => Some(given.clone()),
        None => Some(dir.join(".env")).filter(|p| p.symlink_metadata().is_ok()),
    };
    if let Some(env_file) = env_file {
        let text = env::read_file(&env_file, "the env file")?;
        variables.extend(env::parse(&text, &env_file.display().to_string())?);
    }
    variables.extend(options.host_env.iter().cloned());
    let default_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".into());
    parse(
        &text,
        &file.display().to_string(),
        &dir,
        &variables,
        (options.project_name.as_deref(), &default_name),
    )
}

/// A Compose file's text, read in `dir` with `variables`; the project is named `given`, else by
/// the file, else `default`.
pub fn parse(
    text: &str,
    file: &str,
    dir: &Path,
    variables: &BTreeMap<String, String>,
    (given, default): (Option<&str>, &str),
) -> Result<Project, ComposeError> {
    let mut root: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| ComposeError::Yaml {
            file: file.to_owned(),
            why: first_line(&e.to_string()),
        })?;
    let lookup = |name: &str| variables.get(name).cloned();
    interpolate_all(&mut root, &lookup, &mut String::new())?;
    let top = service::mapping(&root, "the file")?;
    for key in top.keys() {
        match key.as_str() {
            "version" | "name" | "services" | "volumes" | "networks" => {}
            key if key.starts_with("x-") => {}
            key => {
                return Err(ComposeError::Unsupported {
                    at: "the top level".into(),
                    key: key.to_owned(),
                })
            }
        }
    }
    let name = match (given, top.get("name").and_then(|n| n.as_str())) {
        (Some(name), _) | (None, Some(name)) => name.to_owned(),
        (None, None) => default.to_owned(),
    };
    let name = project_name(&name)?;
    let volumes = service::top_volumes(top.get("volumes"))?;
    let networks = service::top_networks(top.get("networks"))?;
    let context = service::Context {
        dir,
        volumes: &volumes,
        networks: &networks,
        variables,
    };
    let mut services = BTreeMap::new();
    let listed = match top.get("services") {
        Some(serde_json::Value::Object(map)) => map,
        _ => {
            return Err(ComposeError::Invalid {
                at: "services".into(),
                why: "the file has no services".into(),
            })
        }
    };
    for (service_name, value) in listed {
        services.insert(
            service_name.clone(),
            service::service(service_name, value, &context)?,
        );
    }
    Ok(Project {
        name,
        dir: dir.to_owned(),
        services,
        volumes,
    })
}

/// `name` as Compose normalizes a project name: lowercase, only `a-z0-9_-`, starting with a
/// letter or digit.
fn project_name(name: &str) -> Result<String, ComposeError> {
    let normal: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    match normal.is_empty() {
        true => Err(ComposeError::Invalid {
            at: "name".into(),
            why: format!(
                "`{}` has no letter or digit to name the project by",
                interpolate::shorten(name).escape_debug()
            ),
        }),
        false => Ok(normal),
    }
}

/// Interpolates every string value under `value` (keys stay as written); `at` is the path.
fn interpolate_all(
    value: &mut serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &mut String,
) -> Result<(), ComposeError> {
    match value {
        serde_json::Value::String(text) if text.contains('$') => {
            *text = interpolate::interpolate(text, lookup, at)?;
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{index}]"));
                interpolate_all(item, lookup, at)?;
                at.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(interpolate::shorten(key));
                interpolate_all(item, lookup, at)?;
                at.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    interpolate::shorten(text.lines().next().unwrap_or("")).to_owned()
}

#[cfg(test)]
mod tests;
