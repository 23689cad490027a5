//! A Compose service's neighbours for each run of `slim build --compose-file`: before a run,
//! a private network, fresh named volumes and the dependency containers (in `depends_on`
//! order, each waited for as its dependents ask: started, healthy, or exited with 0); after
//! it, all of them removed again. Everything carries slim's owner labels, so `slim prune`
//! finds what a killed run left. The recording and the verification each get a set-up of
//! their own, started from the same state.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    commands::{AppFailed, Interrupted, Shutdown},
    compose::{Condition, Mount, Project, Service, Step},
    engine::{ContainerEngine, EngineError, HealthStatus, RunSpec},
};

use super::console::Console;

/// Label naming the Compose project on what slim starts for it.
pub const LABEL_PROJECT: &str = "slim.compose.project";

/// How long a dependency without a Compose healthcheck (the image's own) may take to be healthy.
const IMAGE_HEALTH_WAIT: Duration = Duration::from_secs(120);

/// How often a dependency's state is read while it is waited for.
const POLL: Duration = Duration::from_millis(250);

/// The target service's neighbours: what each run starts beside it.
pub struct Neighbours {
    project: Arc<Project>,
    /// The services to start, in order, with what each is waited for.
    steps: Vec<Step>,
    /// The target service (its DNS names and named volumes).
    target: Service,
    /// The Compose file, for hints.
    file: std::path::PathBuf,
    console: Console,
    /// Set-ups made so far (each gets fresh names).
    made: AtomicU32,
}

/// What one set-up made, removed by [`tear_down`].
#[derive(Debug, Default)]
pub struct SetUp {
    pub network: Option<String>,
    /// Engine volume names.
    pub volumes: Vec<String>,
    /// Dependency containers, in start order: (service, id).
    pub containers: Vec<(String, String)>,
}

impl Neighbours {
    pub fn new(
        project: Arc<Project>,
        steps: Vec<Step>,
        target: Service,
        file: std::path::PathBuf,
        console: Console,
    ) -> Self {
        Self {
            project,
            steps,
            target,
            file,
            console,
            made: AtomicU32::new(0),
        }
    }

    /// The services started beside the target, in order.
    pub fn services(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.service.as_str()).collect()
    }

    /// Starts a fresh set-up, noting in `made` what exists so far (a failure or a stop leaves
    /// it there for [`tear_down`]); then sets `spec` (the target's) on its network with its
    /// names and volumes.
    pub async fn up<E: ContainerEngine>(
        &self,
        engine: &E,
        spec: &mut RunSpec,
        made: &mut SetUp,
        shutdown: &Shutdown,
    ) -> Result<()> {
        let n = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        let owner = crate::owner::Owner::current();
        let prefix = format!("slim-{}-{}-{n}", self.project.name, owner.pid);
        let mut labels = owner.labels();
        labels.insert(LABEL_PROJECT.into(), self.project.name.clone());
        engine.create_network(&prefix, &labels).await?;
        made.network = Some(prefix.clone());
        let mut volumes: BTreeMap<String, String> = BTreeMap::new();
        for service in self
            .steps
            .iter()
            .map(|s| &self.project.services[&s.service])
            .chain([&self.target])
        {
            for (index, mount) in service.mounts.iter().enumerate() {
                let key = volume_key(service, index, mount);
                let Some(key) = key.filter(|k| !volumes.contains_key(k)) else {
                    continue;
                };
                let name = format!("{prefix}-{key}");
                shutdown.check()?;
                engine.create_volume(&name, &labels).await?;
                made.volumes.push(name.clone());
                volumes.insert(key, name);
            }
        }
        let started = Instant::now();
        for step in &self.steps {
            shutdown.check()?;
            let service = &self.project.services[&step.service];
            let dependency = self.dependency_spec(service, &prefix, &volumes, &labels);
            if let Err(EngineError::NoSuchImage(_)) = engine.image(&dependency.image).await {
                shutdown
                    .unless_stopped(super::registry::pull(
                        engine,
                        &dependency.image,
                        self.console,
                    ))
                    .await?;
            }
            let id = engine.create_container(&dependency).await?;
            made.containers.push((service.name.clone(), id.clone()));
            engine.start_container(&id).await?;
            self.wait(engine, service, &id, step.wait, shutdown).await?;
        }
        if !self.steps.is_empty() {
            self.console.say(format!(
                "      compose   {} on network {prefix} ({} ms)",
                self.services().join(", "),
                started.elapsed().as_millis()
            ));
        }
        spec.network = Some(prefix);
        spec.aliases = names_of(&self.target);
        spec.binds.extend(binds(&self.target, &volumes));
        Ok(())
    }

    /// How dependency `service` runs in the set-up `prefix`.
    fn dependency_spec(
        &self,
        service: &Service,
        prefix: &str,
        volumes: &BTreeMap<String, String>,
        labels: &HashMap<String, String>,
    ) -> RunSpec {
        let mut labels = labels.clone();
        labels.extend(service.labels.clone());
        RunSpec {
            image: service.image.clone().unwrap_or_default(),
            env: service.environment.clone(),
            binds: binds(service, volumes),
            network: Some(prefix.to_owned()),
            entrypoint: service.entrypoint.clone(),
            cmd: service.command.clone(),
            workdir: service.working_dir.clone(),
            user: service.user.clone(),
            cap_add: service.cap_add.clone(),
            cap_drop: service.cap_drop.clone(),
            labels,
            aliases: names_of(service),
            tmpfs: service.tmpfs.clone(),
            healthcheck: service.healthcheck.clone(),
            ..Default::default()
        }
    }

    /// Waits until dependency `service` (container `id`) is as `condition` asks.
    async fn wait<E: ContainerEngine>(
        &self,
        engine: &E,
        service: &Service,
        id: &str,
        condition: Condition,
        shutdown: &Shutdown,
    ) -> Result<()> {
        if condition == Condition::Started {
            return Ok(());
        }
        let within = match &service.healthcheck {
            Some(check) if condition == Condition::Healthy => check.verdict_within(),
            _ => IMAGE_HEALTH_WAIT,
        } + Duration::from_secs(10);
        let deadline = Instant::now() + within;
        loop {
            let state = engine.container_state(id).await?;
            let verdict = match (condition, state.running) {
                (Condition::CompletedSuccessfully, false) if state.exit_code == 0 => return Ok(()),
                (_, false) => Some(format!(
                    "exited with code {}{}",
                    state.exit_code,
                    last_line(&engine.logs_tail(id, 5).await)
                )),
                (Condition::Healthy, true) => {
                    let health = engine.health(id).await?;
                    match health.status {
                        HealthStatus::Healthy => return Ok(()),
                        HealthStatus::Unhealthy => {
                            Some(format!("is unhealthy{}", last_line(&health.last_output)))
                        }
                        HealthStatus::None => Some("has no healthcheck to pass".into()),
                        HealthStatus::Starting => None,
                    }
                }
                _ => None,
            };
            let verdict = verdict.or_else(|| {
                (Instant::now() >= deadline)
                    .then(|| format!("was not ready within {}s", within.as_secs()))
            });
            if let Some(why) = verdict {
                return Err(self.failed(service, condition, &why).into());
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.requested() => return Err(Interrupted.into()),
            }
        }
    }

    fn failed(&self, service: &Service, condition: Condition, why: &str) -> AppFailed {
        let wanted = match condition {
            Condition::Healthy => "healthy",
            Condition::CompletedSuccessfully => "completed successfully",
            Condition::Started => "started",
        };
        AppFailed {
            message: format!(
                "dependency {} never became {wanted}: it {why}",
                service.name
            ),
            hint: format!(
                "check it alone (`docker compose -f {} up {}`); slim removed the containers, \
                 volumes and network it started",
                self.file.display(),
                service.name
            ),
        }
    }
}

/// The key of a volume a set-up creates for `service`'s `index`-th mount: the Compose name of
/// a named volume (shared by the services that mount it), `SERVICE-anonN` for an anonymous
/// one; `None` for a bind mount.
fn volume_key(service: &Service, index: usize, mount: &Mount) -> Option<String> {
    match mount {
        Mount::Volume { name, .. } => Some(name.clone()),
        Mount::Anonymous { .. } => Some(format!("{}-anon{index}", service.name)),
        Mount::Bind { .. } => None,
    }
}

/// `service`'s mounts as the engine's binds, its volumes the set-up's.
fn binds(service: &Service, volumes: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (index, mount) in service.mounts.iter().enumerate() {
        let (source, read_only) = match mount {
            Mount::Bind {
                source, read_only, ..
            } => (source.display().to_string(), *read_only),
            Mount::Volume { .. } | Mount::Anonymous { .. } => {
                let key = volume_key(service, index, mount).unwrap_or_default();
                let Some(name) = volumes.get(&key) else {
                    continue;
                };
                let read_only = matches!(
                    mount,
                    Mount::Volume {
                        read_only: true,
                        ..
                    }
                );
                (name.clone(), read_only)
            }
        };
        out.push(format!(
            "{source}:{}{}",
            mount.target(),
            if read_only { ":ro" } else { "" }
        ));
    }
    out
}

/// A service's DNS names on the network: its name and aliases.
fn names_of(service: &Service) -> Vec<String> {
    let mut names = vec![service.name.clone()];
    names.extend(service.aliases.iter().cloned());
    names
}

/// `: LINE` for the last non-empty line of `text`, when there is one (at most 160 characters).
fn last_line(text: &str) -> String {
    match text.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(line) => format!(": {}", line.chars().take(160).collect::<String>()),
        None => String::new(),
    }
}

/// Removes what a set-up made: containers (last started first), then volumes, then the
/// network. What the engine refuses is said, for `slim prune` to remove later.
pub async fn tear_down<E: ContainerEngine>(engine: &E, made: SetUp) {
    for (service, id) in made.containers.iter().rev() {
        if let Err(err) = engine.remove_container(id).await {
            warn_left(&format!("the container of {service}"), &err);
        }
    }
    for volume in &made.volumes {
        if let Err(err) = engine.remove_volume(volume).await {
            warn_left(&format!("volume {volume}"), &err);
        }
    }
    if let Some(network) = &made.network {
        if let Err(err) = engine.remove_network(network).await {
            warn_left(&format!("network {network}"), &err);
        }
    }
}

fn warn_left(what: &str, err: &EngineError) {
    tracing::warn!(
        "{what} is left behind ({err}); the next slim run or `slim prune` removes it once the \
         engine answers"
    );
}
