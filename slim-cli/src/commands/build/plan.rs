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
    minify, packages, shrink,
};

use super::{
    console::Console,
    input::{read_lines, Input},
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
        if args.target.is_empty() {
            args.target = args.target_flag.take().ok_or_else(|| {
                UsageError::new(
                    "no image to slim",
                    "give it: slim build IMAGE (or --target IMAGE)",
                )
            })?;
        }
        let target_reference = crate::commands::image_reference(&args.target)?;
        let input = Input::parse(&args.run)?;
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
