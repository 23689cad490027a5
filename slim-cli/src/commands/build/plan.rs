//! `slim build`'s arguments checked once into a [`BuildPlan`]: the phases take the plan and
//! the previous phase's output, nothing from clap.

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    cli::BuildArgs,
    commands::{
        pipeline::{Output, ReadVia},
        UsageError,
    },
    compose, minify, packages, shrink,
};

use super::{
    console::Console,
    input::{read_lines, Input},
    neighbours::Neighbours,
    output,
};

/// How a build prints its final summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summary {
    /// One line of text.
    Text,
    /// One JSON object on stdout (`--format json`).
    Json,
    /// Not at all: the caller (a multi-platform build) prints one for all.
    ByCaller,
}

/// What one `slim build` is to do, every input checked before any container starts.
#[derive(Clone)]
pub struct BuildPlan {
    /// The fat image as the user named it.
    pub target: String,
    /// The tag the slim image gets once verified.
    pub tag: String,
    /// How to run and probe the target.
    pub input: Input,
    /// What to keep besides what the app touched.
    pub keep: minify::Options,
    /// Where the image goes besides the engine (`--output`).
    pub outputs: Vec<Output>,
    /// Where seccomp.json, the AppArmor profile and the report go.
    pub output_dir: PathBuf,
    /// How the fat image is read.
    pub read_via: ReadVia,
    pub shrink: shrink::Options,
    pub package_db: packages::Mode,
    /// `--no-verify`.
    pub no_verify: bool,
    /// When to pull the fat image (`--pull`).
    pub pull: crate::engine::registry::PullPolicy,
    /// Push the verified slim image to its registry (`--push`).
    pub push: bool,
    /// Attach the profiles and the SBOM to the pushed image (`--attach-profiles`).
    pub attach_profiles: bool,
    /// How the final summary is printed (`--format`).
    pub summary: Summary,
    /// Every platform of a multi-platform image, or those listed (`--platform`).
    pub platforms: Option<crate::image::platform::PlatformSelection>,
    pub console: Console,
}

impl BuildPlan {
    /// Checks `args`: a clear usage error for anything slim cannot do as asked.
    pub fn from_args(mut args: BuildArgs) -> Result<Self> {
        if let Some((flag, instead)) = args.docker_slim.given().first() {
            return Err(UsageError::new(
                format!("{flag} is a docker-slim flag for what slim does not do"),
                *instead,
            )
            .into());
        }
        let compose = compose_target(&mut args)?;
        if args.target.is_empty() {
            args.target = args.target_flag.take().ok_or_else(|| {
                UsageError::new(
                    "no image to slim",
                    "give it: slim build IMAGE (or --target IMAGE)",
                )
            })?;
        }
        let target_reference = crate::commands::image_reference(&args.target)?;
        let mut input = Input::parse(&args.run)?;
        if let Some(compose) = compose {
            compose.apply(&mut input, Console { quiet: args.quiet });
        }
        let keep = keep_options(&args, &input)?;
        let outputs = outputs(&args)?;
        let tag = match &args.tag {
            Some(tag) => tag.clone(),
            None => super::default_tag(&target_reference),
        };
        crate::commands::tag_reference(&tag).map_err(|err| match &args.tag {
            Some(_) => err,
            None => UsageError::new(
                format!(
                    "the default tag for {} would be {tag}, too long a name",
                    args.target
                ),
                "give the slim image a name with --tag NAME[:TAG]",
            ),
        })?;
        if args.push && args.no_verify {
            return Err(UsageError::new(
                "--push pushes only a verified image, and --no-verify skips the verification",
                "drop --no-verify (or push by hand: `docker push TAG`)",
            )
            .into());
        }
        let output_dir = output::output_dir(args.output_dir.as_deref(), &args.target)?;
        let platforms = platforms(&args, &target_reference, &outputs)?;
        Ok(Self {
            tag,
            input,
            keep,
            outputs,
            output_dir,
            read_via: args.read.via,
            shrink: shrink::Options {
                strip: args.strip_executables,
                compress: args.compress_executables,
            },
            package_db: args.package_db,
            no_verify: args.no_verify,
            pull: args.pull.when,
            push: args.push,
            attach_profiles: args.attach_profiles,
            summary: match args.format.as_str() {
                "json" => Summary::Json,
                _ => Summary::Text,
            },
            platforms,
            console: Console { quiet: args.quiet },
            target: args.target,
        })
    }
}

/// `--platform`, checked: a multi-platform image is read from a registry by name, and its
/// images go to a registry or an OCI layout, never to a docker-archive (one image only).
fn platforms(
    args: &BuildArgs,
    target: &crate::image::reference::Reference,
    outputs: &[Output],
) -> Result<Option<crate::image::platform::PlatformSelection>> {
    let Some(text) = &args.platform else {
        return Ok(None);
    };
    let selection = crate::image::platform::PlatformSelection::parse(text).map_err(|err| {
        UsageError::new(
            format!("--platform {text}: {err}"),
            "list platforms as --platform linux/amd64,linux/arm64, or take every one the image \
             has with --platform all",
        )
    })?;
    if matches!(target, crate::image::reference::Reference::Id(_)) {
        return Err(UsageError::new(
            format!(
                "--platform needs the image's name in a registry, not an id ({})",
                args.target
            ),
            "name it as the registry does: slim build --platform ... REGISTRY/NAME:TAG",
        )
        .into());
    }
    if let Some(tag) = args
        .tag
        .as_deref()
        .filter(|t| same_image_name(&args.target, t))
    {
        return Err(UsageError::new(
            format!("--tag {tag} names the image being slimmed: its index would be replaced"),
            "choose another tag: slim never modifies its input image",
        )
        .into());
    }
    if outputs
        .iter()
        .any(|o| matches!(o, Output::DockerArchive(_)))
    {
        return Err(UsageError::new(
            "a docker-archive holds one image, and --platform makes one per platform",
            "write them all as one multi-platform OCI layout with --output oci:DIR",
        )
        .into());
    }
    Ok(Some(selection))
}

/// Whether two references name the same image in the same registry (`app` is
/// `docker.io/library/app:latest`).
fn same_image_name(a: &str, b: &str) -> bool {
    use crate::image::reference::{parse, Reference};
    let full = |text: &str| match parse(text) {
        Ok(Reference::Named(named)) => {
            let domain = named
                .domain
                .clone()
                .unwrap_or_else(|| "docker.io".to_owned());
            let path = crate::engine::distribution::repository_path(&domain, &named.path);
            let at = named
                .digest
                .clone()
                .or(named.tag.clone())
                .unwrap_or_else(|| "latest".to_owned());
            Some(format!("{domain}/{path}@{at}"))
        }
        _ => None,
    };
    full(a).is_some_and(|a| Some(a) == full(b))
}

/// The service `--compose-file` and `--target-compose-svc` name, with what starts beside it.
struct ComposeTarget {
    file: PathBuf,
    project: std::sync::Arc<compose::Project>,
    service: compose::Service,
    steps: Vec<compose::Step>,
}

/// With `--compose-file`: reads the project, checks the docker-slim Compose flags, and makes
/// the target service's image the build's target.
fn compose_target(args: &mut BuildArgs) -> Result<Option<ComposeTarget>, UsageError> {
    let flags = &args.compose;
    if flags.compose_net.is_some() {
        return Err(UsageError::new(
            "--compose-net: slim puts the target and every service it starts on one private \
             network of its own",
            "drop the flag: each service keeps its name and the aliases of all its networks there",
        ));
    }
    if flags.container_probe_compose_svc.is_some() {
        return Err(UsageError::new(
            "--container-probe-compose-svc: slim probes the target itself, not through another \
             service",
            "probe it with --http-probe-cmd (from the host) or --exec (inside it)",
        ));
    }
    let Some(file) = flags.compose_file.clone() else {
        let given = flags.target_compose_svc.is_some()
            || !flags.dep_include_compose_svc.is_empty()
            || !flags.dep_exclude_compose_svc.is_empty()
            || flags.dep_exclude_compose_svc_all
            || flags.compose_env_file.is_some()
            || flags.compose_project_name.is_some();
        return match given {
            true => Err(UsageError::new(
                "the Compose flags need a Compose file",
                "give it: --compose-file FILE --target-compose-svc SERVICE",
            )),
            false => Ok(None),
        };
    };
    if !args.target.is_empty() || args.target_flag.is_some() {
        return Err(UsageError::new(
            "an image and --compose-file both name what to slim",
            "give one: slim build IMAGE, or --compose-file FILE --target-compose-svc SERVICE",
        ));
    }
    if args.platform.is_some() {
        return Err(UsageError::new(
            "--platform with --compose-file: slim slims a Compose service for the engine's own \
             platform",
            "drop --platform",
        ));
    }
    if args.run.network.is_some() {
        return Err(UsageError::new(
            "--network with --compose-file: slim runs the service on a network of its own",
            "drop --network; the Compose file's services are started beside it",
        ));
    }
    let options = compose::LoadOptions {
        env_file: flags.compose_env_file.clone(),
        project_name: flags.compose_project_name.clone(),
        // `vars()` would panic on a variable that is not UTF-8: such a one is left out.
        host_env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    let unusable = |err: compose::ComposeError| UsageError::new(err.to_string(), err.hint(&file));
    let project = compose::load(&file, &options).map_err(unusable)?;
    let Some(name) = flags.target_compose_svc.clone() else {
        let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
        return Err(UsageError::new(
            "--compose-file needs the service to slim",
            format!(
                "name it: --target-compose-svc SERVICE (one of {})",
                names.join(", ")
            ),
        ));
    };
    let selection = if flags.dep_exclude_compose_svc_all {
        compose::Selection::Nothing
    } else if !flags.dep_include_compose_svc.is_empty() {
        compose::Selection::Only(flags.dep_include_compose_svc.clone())
    } else if !flags.dep_exclude_compose_svc.is_empty() {
        compose::Selection::Excluding(flags.dep_exclude_compose_svc.clone())
    } else {
        compose::Selection::DependsOn
    };
    let steps = compose::start_order(&project, &name, &selection).map_err(unusable)?;
    for service in steps
        .iter()
        .map(|s| s.service.as_str())
        .chain([name.as_str()])
    {
        let service = &project.services[service];
        if service.image.is_none() {
            return Err(match service.build {
                true => unusable(compose::ComposeError::NeedsBuild {
                    service: service.name.clone(),
                }),
                false => unusable(compose::ComposeError::Invalid {
                    at: format!("services.{}", service.name),
                    why: "no `image:` to run".into(),
                }),
            });
        }
    }
    let service = project.services[&name].clone();
    args.target = service.image.clone().unwrap_or_default();
    Ok(Some(ComposeTarget {
        file,
        project: std::sync::Arc::new(project),
        service,
        steps,
    }))
}

impl ComposeTarget {
    /// Runs the target with the service's settings (the run flags win where both say), and
    /// its neighbours beside it.
    fn apply(self, input: &mut Input, console: Console) {
        let (spec, service) = (&mut input.spec, &self.service);
        let mut env = service.environment.clone();
        env.append(&mut spec.env);
        spec.env = env;
        spec.entrypoint = spec
            .entrypoint
            .take()
            .or_else(|| service.entrypoint.clone());
        spec.cmd = spec.cmd.take().or_else(|| service.command.clone());
        spec.user = spec.user.take().or_else(|| service.user.clone());
        spec.workdir = spec.workdir.take().or_else(|| service.working_dir.clone());
        spec.cap_add.extend(service.cap_add.iter().cloned());
        spec.cap_drop.extend(service.cap_drop.iter().cloned());
        spec.tmpfs.extend(service.tmpfs.iter().cloned());
        spec.healthcheck = service.healthcheck.clone();
        for (key, value) in &service.labels {
            spec.labels
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        // Named with its project, as its neighbours are.
        spec.labels.insert(
            super::neighbours::LABEL_PROJECT.into(),
            self.project.name.clone(),
        );
        input.extra_ports.extend(service.ports.iter().copied());
        input
            .volumes
            .extend(service.mounts.iter().map(|m| m.target().to_owned()));
        input.neighbours = Some(std::sync::Arc::new(Neighbours::new(
            self.project,
            self.steps,
            self.service,
            self.file,
            console,
        )));
    }
}

/// The keep flags, checked.
fn keep_options(args: &BuildArgs, input: &Input) -> Result<minify::Options> {
    let volumes = input.volumes.clone();
    let include_paths = with_listed(
        &args.include_path,
        &args.include_path_file,
        "--include-path-file",
    )?;
    let include_bins = with_listed(
        &args.include_bin,
        &args.include_bin_file,
        "--include-bin-file",
    )?;
    let include_exes = with_listed(
        &args.include_exe,
        &args.include_exe_file,
        "--include-exe-file",
    )?;
    let preserve_paths = with_listed(
        &args.preserve_path,
        &args.preserve_path_file,
        "--preserve-path-file",
    )?;
    Ok(minify::Options {
        skip_groups: args.skip_keep.iter().copied().collect(),
        include_paths,
        preserve_paths,
        include_bins,
        include_exes,
        include_shell: args.include_shell,
        include_cert_all: args.include_cert_all,
        exclude_patterns: args.exclude_pattern.clone(),
        volumes,
        static_imports: args.static_imports == "on",
        app_budget: args.app_budget,
        ..Default::default()
    })
}

/// The values of a repeatable flag plus every line of its `-file` flag's files.
fn with_listed(
    given: &[String],
    files: &[std::path::PathBuf],
    flag: &str,
) -> Result<Vec<String>, UsageError> {
    let mut all = given.to_vec();
    for file in files {
        all.extend(read_lines(
            file,
            flag,
            "give a file with one entry per line",
        )?);
    }
    Ok(all)
}

/// The `--output` destinations, checked.
fn outputs(args: &BuildArgs) -> Result<Vec<Output>> {
    Ok(args
        .output
        .iter()
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_compared_as_the_registry_knows_them() {
        assert!(same_image_name("app", "docker.io/library/app:latest"));
        assert!(same_image_name(
            "127.0.0.1:5000/app:1",
            "127.0.0.1:5000/app:1"
        ));
        assert!(!same_image_name(
            "127.0.0.1:5000/app:1",
            "127.0.0.1:5000/app:slim"
        ));
        assert!(!same_image_name(
            "127.0.0.1:5000/app:1",
            "127.0.0.1:5001/app:1"
        ));
        assert!(!same_image_name("sha256:abc", "sha256:abc"));
    }
}
