//! `slim build`: inspect -> record (while the fat image is read) -> select -> write image ->
//! profiles -> verify -> report. Each phase is one file and hands plain data to the next.

mod apparmor_host;
mod attach;
mod console;
mod cpu_load;
mod input;
mod inspect;
pub mod neighbours;
#[cfg(test)]
mod orchestration_tests;
mod output;
mod plan;
mod platforms;
mod profiles;
mod record;
mod registry;
mod run;
mod select;
mod tag_lock;
mod verify;

use std::{collections::BTreeMap, path::Path, process::ExitCode, sync::Arc, time::Instant};

use anyhow::{Context as _, Result};

use crate::{
    cli::{BuildArgs, ProfileArgs},
    engine::{ContainerEngine, Engine},
    image::{reference::Reference, tree::FileTree, xray::human_bytes},
    shrink,
    tracer::{EbpfRecorder, StartRecording},
};

use super::{
    pipeline::{write_image, LayerContent, WorkDir},
    report::{Floor, ImageSummary, ProfileReport, RecorderReport, Report, Verify},
    xray::short_id,
    Shutdown,
};

pub use console::Console;
pub use plan::{BuildPlan, Summary};
pub(super) use profiles::{
    parse_check, APPARMOR_COMPLAIN_FILE, APPARMOR_FILE, OPERATOR_FILE, SECCOMP_FILE,
    SECCOMP_LOG_FILE,
};
pub use run::RunError;

/// Exit code when the checked image does not answer like the original.
pub const EXIT_VERIFY_FAILED: u8 = 3;

/// Milliseconds per phase, for report.json.
type Timings = BTreeMap<String, u128>;

pub async fn run(args: BuildArgs, shutdown: Shutdown) -> Result<ExitCode> {
    let total = Instant::now();
    let plan = BuildPlan::from_args(args)?; // all input checked before any container starts
    let _tag_lock = tag_lock::TagLock::acquire(&plan.tag)?;
    // The engine is connected to once, here at the edge, and handed to the phases.
    let engine = Engine::connect().await?;
    crate::commands::prune::reap_at_start(&engine, plan.console).await;
    if let Some(selection) = plan.platforms.clone() {
        return platforms::build_platforms(
            plan,
            selection,
            (engine, EbpfRecorder),
            Host::THIS,
            &shutdown,
        )
        .await;
    }
    build(plan, (engine, EbpfRecorder), Host::THIS, &shutdown, total).await
}

/// What the build may do to the host it runs on besides the engine.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    /// Load the AppArmor profile for the verification run, where the kernel enforces AppArmor.
    pub load_apparmor: bool,
}

impl Host {
    /// This host, as `slim build` uses it.
    pub const THIS: Self = Self {
        load_apparmor: true,
    };
}

/// `slim build` of a checked plan through `engine` and `recorder`: every phase, then the
/// clean-up of the run's temporary tag, whatever happened.
pub async fn build<E: ContainerEngine, R: StartRecording>(
    plan: BuildPlan,
    engine_and_recorder: (E, R),
    host: Host,
    shutdown: &Shutdown,
    total: Instant,
) -> Result<ExitCode> {
    let built = build_one(plan, engine_and_recorder, host, shutdown, total).await?;
    Ok(ExitCode::from(built.code))
}

/// What one build made, for a caller that builds several (one per platform).
#[derive(Clone, Debug)]
pub struct Built {
    /// 0, or [`EXIT_VERIFY_FAILED`].
    pub code: u8,
    /// The tag the slim image got (`TAG-unverified` when it failed verification).
    pub tag: String,
    pub slim_id: String,
    pub slim_size: u64,
    pub fat_size: u64,
    pub ratio: f64,
    pub probes: usize,
    pub matched: usize,
    /// The profiles the verification ran under.
    pub verified_under: Vec<String>,
    /// Why the seccomp profile was derived under emulation, when it was.
    pub emulated: Option<String>,
}

/// [`build`], with what it made.
pub async fn build_one<E: ContainerEngine, R: StartRecording>(
    plan: BuildPlan,
    engine_and_recorder: (E, R),
    host: Host,
    shutdown: &Shutdown,
    total: Instant,
) -> Result<Built> {
    let removals = run::Removals::default();
    let engine = engine_and_recorder.0.clone();
    // The image is loaded under a temporary tag of this run and gets `tag` only once it is
    // verified and its report written: stopped or failed before, it is removed again, once
    // no container of the run uses it (else the engine would only untag it).
    let work_tag = crate::owner::Owner::current().work_tag();
    let writing = std::sync::atomic::AtomicBool::new(false);
    let built = build_steps(
        plan,
        (engine_and_recorder, removals.clone()),
        (host, &work_tag, &writing),
        shutdown,
        total,
    )
    .await;
    removals.wait().await;
    let written = writing.load(std::sync::atomic::Ordering::Relaxed);
    if let Err(err) = async {
        match written {
            true => engine.untag_image(&work_tag).await,
            false => Ok(()),
        }
    }
    .await
    {
        tracing::warn!(
            "the unverified image {work_tag} is left behind ({err}); the next slim run or \
             `slim prune` removes it"
        );
    }
    built
}

async fn build_steps<E: ContainerEngine, R: StartRecording>(
    plan: BuildPlan,
    ((engine, recorder), removals): ((E, R), run::Removals),
    (host, work_tag, writing): (Host, &str, &std::sync::atomic::AtomicBool),
    shutdown: &Shutdown,
    total: Instant,
) -> Result<Built> {
    let console = plan.console;
    let mut timings = Timings::new();
    let (inspected, work, recorded) = inspect_and_record(
        (engine, recorder, removals),
        (&plan.target, plan.pull, Some(&plan.tag)),
        &plan.input,
        plan.read_via,
        shutdown,
        console,
        &mut timings,
    )
    .await?;

    crate::commands::hold("select", shutdown).await?;
    let phase = Instant::now();
    let mut selected = select::select(&recorded, plan.keep.clone());
    timings.insert("select".into(), phase.elapsed().as_millis());
    console.say(selected.line());
    for state in &selected.keep.state {
        console.say(format!(
            "      state     {} kept whole ({}, {} files; written by {})",
            state.root,
            human_bytes(state.bytes),
            state.files,
            if state.writers.is_empty() {
                "the app".to_owned()
            } else {
                state.writers.join(", ")
            }
        ));
    }
    let (tree, shrink) = shrink_phase(plan.shrink, &recorded, &selected, &work, console).await?;
    let phase = Instant::now();
    let (tree, packages) = package_phase(plan.package_db, tree, &recorded, &mut selected, &work)?;
    timings.insert("packages".into(), phase.elapsed().as_millis());
    if let Some(packages) = &packages {
        console.say(format!("      {}", packages.line()));
        if let Some(warning) = &packages.warning {
            tracing::warn!("{warning}");
        }
    }
    shutdown.check()?;

    // From here on the image may be in the engine under the temporary tag.
    writing.store(true, std::sync::atomic::Ordering::Relaxed);
    Finish {
        plan: &plan,
        host,
        work_tag,
        inspected: &inspected,
        recorded: &recorded,
        selected: &selected,
        work: &work,
        shutdown,
    }
    .run(
        LayerContent {
            tree: &tree,
            selection: selected.selection(),
        },
        (shrink, packages),
        timings,
        total,
    )
    .await
}

/// Phases 4 to 7 of `slim build`, after the selection: write the image under the run's
/// temporary tag, write the profiles, verify, write the report, publish the output files and
/// move the tag into place.
struct Finish<'a, E, R> {
    plan: &'a BuildPlan,
    host: Host,
    work_tag: &'a str,
    inspected: &'a inspect::Inspected<E, R>,
    recorded: &'a record::Recorded,
    selected: &'a select::Selected,
    work: &'a WorkDir,
    shutdown: &'a Shutdown,
}

impl<E: ContainerEngine, R: StartRecording> Finish<'_, E, R> {
    async fn run(
        self,
        content: LayerContent<'_>,
        (shrink, packages): (Option<shrink::Report>, Option<crate::packages::Report>),
        mut timings: Timings,
        total: Instant,
    ) -> Result<Built> {
        let Self {
            plan,
            host,
            work_tag,
            inspected,
            recorded,
            selected,
            work,
            shutdown,
        } = self;
        let (target, tag, output_dir, console) =
            (&plan.target, &plan.tag, &plan.output_dir, plan.console);
        let outputs = &plan.outputs;
        let phase = Instant::now();
        // Writing owns nothing outside slim until the engine has the image: a stop drops it.
        let slim = shutdown
            .unless_stopped(write_image(
                Some(&inspected.engine),
                &recorded.fat,
                content,
                Some(work_tag),
                outputs,
                work,
                format!("slim build {}", target),
            ))
            .await?;
        let slim_info = inspected.engine.image(work_tag).await?;
        timings.insert("write_image".into(), phase.elapsed().as_millis());
        console.say(format!(
            "[4/7] write     {tag}  {}  {}",
            short_id(&slim.id),
            human_bytes(slim_info.size)
        ));
        crate::commands::hold("write", shutdown).await?;

        let staging = output::staging(work.path())?;
        // Programs packed by UPX start through its stub, whose calls the recording never saw.
        let packed = shrink
            .as_ref()
            .is_some_and(|r| r.shrunk.iter().any(|s| s.action == shrink::Action::Upx));
        let mut profiles = profile_phase(
            recorded,
            target,
            (&staging, output_dir),
            packed,
            console,
            &mut timings,
        )?;
        shutdown.check()?;

        let checked = Checked {
            image: work_tag,
            shown: tag,
            selection: Some((&recorded.fat.tree, &selected.keep)),
            needs_seccomp: false,
        };
        let verify = verify_phase(
            (inspected, recorded),
            &mut profiles,
            checked,
            (plan.no_verify, host, &plan.input),
            (shutdown, console),
            &mut timings,
        )
        .await?;
        timings.insert("total".into(), total.elapsed().as_millis());
        shutdown.check()?;
        // A slim image that does not answer like the original never takes `tag` (a CI script
        // that pushes it would ship it and lose the good one): it is kept for inspection.
        let unverified = (!verify.failed.is_empty()).then(|| inspect::unverified_tag(tag));
        let final_tag = unverified.as_deref().unwrap_or(tag);

        let summary = &selected.summary;
        let recording = &recorded.recording;
        let report = Report {
            created: utc_now(),
            target: target_summary(inspected, recorded),
            slim: ImageSummary {
                image: final_tag.to_owned(),
                id: slim.id.clone(),
                size_bytes: slim_info.size,
                read_from: None,
                engine: None,
            },
            ratio: inspected.info.size as f64 / slim_info.size.max(1) as f64,
            probes: recorded.fat_run.probes.clone(),
            verify,
            recorder: recorder_report(recorded),
            timings_ms: timings,
            kept: by_reason_name(&summary.kept_by_reason),
            kept_bytes: by_reason_name(&summary.kept_bytes_by_reason),
            dynamic_imports: summary.dynamic_imports.clone(),
            static_imports: summary.static_imports.clone(),
            app_owned: selected.keep.app_owned.clone(),
            kept_files: summary.kept_files,
            largest_kept: summary.largest.clone(),
            removed: Report::removed_from(summary),
            by_dir: summary.by_dir.clone(),
            floor: Floor {
                opened_bytes: summary.opened_bytes,
                touched_bytes: summary.touched_bytes,
                slim_over_opened: slim_info.size as f64 / summary.opened_bytes.max(1) as f64,
            },
            syscalls: recording.syscall_names(),
            not_in_image: selected
                .keep
                .not_in_image
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            state: selected.keep.state.clone(),
            profiles: Some(profiles.report),
            shrink,
            packages,
        };
        report.write(&staging, &selected.keep)?;
        super::report_page::write_beside(&staging)?;
        if let Some(packages) = &report.packages {
            let sbom = crate::packages::spdx::document(
                &crate::packages::spdx::Described {
                    name: final_tag,
                    id: &slim.id,
                    created: utc_now(),
                },
                packages,
            );
            std::fs::write(
                staging.join(crate::packages::spdx::FILE),
                serde_json::to_vec_pretty(&sbom)?,
            )
            .context("write the SBOM")?;
        }
        let written = output::publish(&staging, output_dir)?;
        inspected.engine.tag_image(&slim.id, final_tag).await?;
        console.say(format!(
            "[7/7] report    {}",
            output_dir.join("report.json").display()
        ));
        let pushed_to = match (&unverified, plan.push) {
            (None, true) => {
                shutdown
                    .unless_stopped(registry::push(&inspected.engine, final_tag, console))
                    .await?;
                if plan.attach_profiles {
                    shutdown
                        .unless_stopped(attach::attach_to_pushed(final_tag, output_dir, console))
                        .await?;
                }
                Some(crate::engine::registry::registry_host(final_tag))
            }
            _ => None,
        };
        let built = Built {
            code: match unverified {
                None => 0,
                Some(_) => EXIT_VERIFY_FAILED,
            },
            tag: final_tag.to_owned(),
            slim_id: slim.id.clone(),
            slim_size: slim_info.size,
            fat_size: inspected.info.size,
            ratio: report.ratio,
            probes: report.verify.probes,
            matched: report.verify.matched,
            verified_under: report.verify.under.clone(),
            emulated: report
                .profiles
                .as_ref()
                .and_then(|p| p.seccomp.as_ref())
                .and_then(|s| s.derived_under_emulation.clone()),
        };
        match (plan.summary, &unverified, &pushed_to) {
            (Summary::Json, _, _) => println!(
                "{}",
                report.summary_json(output_dir, &written, pushed_to.as_deref())
            ),
            (Summary::Text, None, Some(host)) => {
                println!("{}; pushed to {host}", report.summary_line())
            }
            (Summary::Text, None, None) => println!("{}", report.summary_line()),
            (Summary::Text, Some(unverified), _) => println!(
                "{}; tagged {unverified} for inspection, {tag} left as it was",
                report.summary_line()
            ),
            (Summary::ByCaller, _, _) => {}
        }
        if let Some(unverified) = &unverified {
            report.verify.explain(
                &format!("the slim image {unverified}"),
                target,
                Some(output_dir),
            );
        }
        Ok(built)
    }
}

/// `slim profile`: inspect -> record -> profiles -> verify (the target itself, under its new
/// seccomp profile) -> report. No image is written.
pub async fn profile(args: ProfileArgs, shutdown: Shutdown) -> Result<ExitCode> {
    let total = Instant::now();
    let plan = ProfilePlan::from_args(args)?;
    let engine = Engine::connect().await?;
    crate::commands::prune::reap_at_start(&engine, plan.console).await;
    profile_image(plan, (engine, EbpfRecorder), Host::THIS, &shutdown, total).await
}

/// `slim profile`'s arguments, checked.
pub struct ProfilePlan {
    pub target: String,
    pub input: input::Input,
    pub output_dir: std::path::PathBuf,
    pub read_via: super::pipeline::ReadVia,
    pub no_verify: bool,
    pub pull: crate::engine::registry::PullPolicy,
    pub console: Console,
}

impl ProfilePlan {
    pub fn from_args(args: ProfileArgs) -> Result<Self> {
        let Some(target) = args.target.clone() else {
            return Err(super::UsageError::new(
                "slim profile needs an image to record",
                "give one (`slim profile IMAGE`), or compare a profile with `slim profile diff FILE`",
            )
            .into());
        };
        super::image_reference(&target)?;
        Ok(Self {
            input: input::Input::parse(&args.run)?,
            output_dir: output::output_dir(args.output_dir.as_deref(), &target)?,
            read_via: args.read.via,
            no_verify: args.no_verify,
            pull: args.pull.when,
            console: Console { quiet: args.quiet },
            target,
        })
    }
}

/// `slim profile` of a checked plan through `engine` and `recorder`.
pub async fn profile_image<E: ContainerEngine, R: StartRecording>(
    plan: ProfilePlan,
    (engine, recorder): (E, R),
    host: Host,
    shutdown: &Shutdown,
    total: Instant,
) -> Result<ExitCode> {
    let removals = run::Removals::default();
    let profiled = profile_steps(
        plan,
        (engine, recorder, removals.clone()),
        host,
        shutdown,
        total,
    )
    .await;
    removals.wait().await;
    profiled
}

async fn profile_steps<E: ContainerEngine, R: StartRecording>(
    plan: ProfilePlan,
    engine_and_recorder: (E, R, run::Removals),
    host: Host,
    shutdown: &Shutdown,
    total: Instant,
) -> Result<ExitCode> {
    let ProfilePlan {
        target,
        input,
        output_dir,
        read_via,
        no_verify,
        pull,
        console,
    } = plan;
    let mut timings = Timings::new();
    let (inspected, work, recorded) = inspect_and_record(
        engine_and_recorder,
        (&target, pull, None),
        &input,
        read_via,
        shutdown,
        console,
        &mut timings,
    )
    .await?;

    let staging = output::staging(work.path())?;
    let mut profiles = profile_phase(
        &recorded,
        &target,
        (&staging, &output_dir),
        false,
        console,
        &mut timings,
    )?;
    shutdown.check()?;

    let checked = Checked {
        image: &inspected.info.id,
        shown: &target,
        selection: None,
        needs_seccomp: true,
    };
    let verify = verify_phase(
        (&inspected, &recorded),
        &mut profiles,
        checked,
        (no_verify, host, &input),
        (shutdown, console),
        &mut timings,
    )
    .await?;
    timings.insert("total".into(), total.elapsed().as_millis());

    let report = ProfileReport {
        created: utc_now(),
        target: target_summary(&inspected, &recorded),
        probes: recorded.fat_run.probes.clone(),
        verify: verify.clone(),
        recorder: recorder_report(&recorded),
        timings_ms: timings,
        syscalls: recorded.recording.syscall_names(),
        profiles: profiles.report,
    };
    shutdown.check()?;
    std::fs::write(
        staging.join("report.json"),
        serde_json::to_vec_pretty(&report)?,
    )
    .context("write report.json")?;
    super::report_page::write_beside(&staging)?;
    output::publish(&staging, &output_dir)?;
    let report_path = output_dir.join("report.json");
    console.say(format!("[7/7] report    {}", report_path.display()));
    println!(
        "profiles written to {}, {}",
        output_dir.display(),
        verify.summary()
    );
    if !verify.failed.is_empty() {
        verify.explain(&target, &format!("{target} unconfined"), None);
        return Ok(ExitCode::from(EXIT_VERIFY_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Phases 1 and 2, shared by build and profile: inspect (and check the tag the slim image
/// will get), then run, record and probe while the image is read. The work dir holds the read
/// image: it lives as long as the recording is used.
async fn inspect_and_record<E: ContainerEngine, R: StartRecording>(
    (engine, recorder, removals): (E, R, run::Removals),
    (target, pull, tag): (&str, crate::engine::registry::PullPolicy, Option<&str>),
    input: &input::Input,
    via: super::pipeline::ReadVia,
    shutdown: &Shutdown,
    console: Console,
    timings: &mut Timings,
) -> Result<(inspect::Inspected<E, R>, WorkDir, record::Recorded)> {
    let phase = Instant::now();
    let inspected = inspect::inspect(
        (engine, recorder),
        (target, pull),
        removals,
        (shutdown, console),
    )
    .await?;
    let mut inspected = inspected;
    inspected.neighbours = input.neighbours.clone();
    if let Some(tag) = tag {
        inspect::check_tag(&inspected, tag).await?;
    }
    timings.insert("inspect".into(), phase.elapsed().as_millis());
    say_inspected(console, &inspected);
    let work = WorkDir::new()?;
    let recorded = record::record(&inspected, input, via, &work, shutdown, console).await?;
    record_timings(timings, &recorded);
    Ok((inspected, work, recorded))
}

/// What verification runs: the image, its name on the console, for a slim image its selection
/// from the fat tree (to name missing paths), and whether it is checked only under a seccomp
/// profile (`slim profile`, whose image is the target itself).
struct Checked<'a> {
    image: &'a str,
    shown: &'a str,
    selection: Option<(&'a FileTree, &'a crate::minify::KeepSet)>,
    needs_seccomp: bool,
}

/// Phase 6, shared by build and profile: run the checked image under its profiles and compare
/// its answers with the recorded run's, unless `--no-verify` (or, where it needs one, there is
/// no seccomp profile to verify under).
async fn verify_phase<E: ContainerEngine, R: StartRecording>(
    (inspected, recorded): (&inspect::Inspected<E, R>, &record::Recorded),
    profiles: &mut profiles::Profiles,
    checked: Checked<'_>,
    (no_verify, host, input): (bool, Host, &input::Input),
    (shutdown, console): (&Shutdown, Console),
    timings: &mut Timings,
) -> Result<Verify> {
    let phase = Instant::now();
    let seccomp = profiles.enforceable_seccomp();
    let verify = if no_verify {
        Verify {
            skipped: true,
            ..Default::default()
        }
    } else if seccomp.is_none() && checked.needs_seccomp {
        Verify {
            skipped: true,
            skipped_because: Some("no seccomp profile to verify under".into()),
            ..Default::default()
        }
    } else {
        let apparmor = load_apparmor(profiles, host, console);
        let check = verify::Check {
            image: checked.image,
            shown: checked.shown,
            seccomp: seccomp.map(|p| (p, profiles::SECCOMP_FILE)),
            apparmor: apparmor.as_ref().map(|a| a.name.as_str()),
            selection: checked.selection,
        };
        let verified = verify::verify(
            inspected,
            recorded,
            check,
            (input.probe_wait, input.verify_starts),
            shutdown,
            console,
        )
        .await;
        // The profile stays loaded until no container of the run can still be running under it.
        if apparmor.is_some() {
            inspected.removals.wait().await;
        }
        verified?
    };
    timings.insert("verify".into(), phase.elapsed().as_millis());
    profiles.report.verified_under = verify.under.clone();
    Ok(verify)
}

/// The report's section on the fat image, shared by build and profile.
fn target_summary<E: ContainerEngine, R>(
    inspected: &inspect::Inspected<E, R>,
    recorded: &record::Recorded,
) -> ImageSummary {
    ImageSummary {
        image: inspected.name.clone(),
        id: inspected.info.id.clone(),
        size_bytes: inspected.info.size,
        read_from: Some(recorded.fat.read_from),
        engine: Some(inspected.engine.kind().as_str()),
    }
}

/// The report's section on the recorder, shared by build and profile.
fn recorder_report(recorded: &record::Recorded) -> RecorderReport {
    let recording = &recorded.recording;
    RecorderReport {
        stats: recording.stats,
        unresolved: recording.unresolved,
        kernel_offsets: recording.offsets_source,
        starts: recorded.starts,
        stop_recorded: recorded.fat_run.stopped_gracefully,
        object_loads: crate::tracer::object_loads(),
        calibration_loads: crate::tracer::calibration_loads(),
    }
}

/// The AppArmor profile loaded into this host's kernel for the verification run, where the
/// kernel enforces AppArmor (not for an emulated image: the emulator would run under it). A
/// profile the parser refuses is said and the run goes on without it.
fn load_apparmor(
    profiles: &profiles::Profiles,
    host: Host,
    console: Console,
) -> Option<apparmor_host::Loaded> {
    if profiles.emulated.is_some() || !host.load_apparmor {
        return None;
    }
    match apparmor_host::load(&profiles.apparmor.text, &profiles.apparmor.name) {
        Ok(loaded) => Some(loaded),
        Err(apparmor_host::NotLoaded::NotEnforced) => None,
        Err(refused) => {
            console.say(format!(
                "          {refused}: verifying without it (check the profile with `apparmor_parser -Q`)"
            ));
            None
        }
    }
}

/// Phase 5, shared by build and profile: write the profiles and say what they allow.
/// The files go to `staging`; the console names `shown`, the output dir they end up in.
fn profile_phase(
    recorded: &record::Recorded,
    image: &str,
    (staging, shown): (&Path, &Path),
    packed: bool,
    console: Console,
    timings: &mut Timings,
) -> Result<profiles::Profiles> {
    let phase = Instant::now();
    let written = profiles::write_profiles(recorded, image, staging, packed)?;
    timings.insert("profiles".into(), phase.elapsed().as_millis());
    say_profiles(console, &written, shown);
    Ok(written)
}

fn say_inspected<E, R>(console: Console, inspected: &inspect::Inspected<E, R>) {
    console.say(format!(
        "[1/7] inspect   {}  {}  {}",
        inspected.name,
        short_id(&inspected.info.id),
        human_bytes(inspected.info.size)
    ));
}

fn say_profiles(console: Console, profiles: &profiles::Profiles, dir: &Path) {
    let seccomp = match &profiles.seccomp {
        Some(p) => format!(
            "seccomp.json{} allows {} syscalls ({} app, {} runtime, {} fixed{}{})",
            if profiles.emulated.is_some() {
                " (derived under emulation, not verified)"
            } else {
                ""
            },
            p.allowed.len(),
            p.count(crate::profiles::seccomp::Origin::App),
            p.count(crate::profiles::seccomp::Origin::Runtime),
            p.count(crate::profiles::seccomp::Origin::Extra),
            match p.count(crate::profiles::seccomp::Origin::Packer) {
                0 => String::new(),
                n => format!(", {n} for the UPX stub"),
            },
            match p.count(crate::profiles::seccomp::Origin::User) {
                0 => String::new(),
                n => format!(", {n} --seccomp-allow"),
            },
        ),
        None => format!(
            "no seccomp.json: {}",
            profiles.report.seccomp_skipped.as_deref().unwrap_or("")
        ),
    };
    console.say(format!(
        "[5/7] profiles  {seccomp}; {} ({} file rules, AppArmor parse check {}) in {}",
        profiles::APPARMOR_FILE,
        profiles.apparmor.rules.file,
        profiles.report.apparmor.parse_check,
        dir.display()
    ));
    if let Some(p) = profiles
        .seccomp
        .as_ref()
        .filter(|p| !p.docker_denied_recorded.is_empty())
    {
        let names: Vec<&str> = p
            .docker_denied_recorded
            .iter()
            .map(String::as_str)
            .collect();
        console.say(format!(
            "          seccomp.json denies {}: the app called it, Docker's default profile refuses it (allow with --seccomp-allow NAME)",
            names.join(", ")
        ));
    }
    let unnamed = &profiles.apparmor.unnamed_families;
    if !unnamed.is_empty() {
        let families: Vec<String> = unnamed.iter().map(u32::to_string).collect();
        console.say(format!(
            "          apparmor.profile cannot name socket family {} (AF_ number): AppArmor refuses it; add a network rule by hand",
            families.join(", ")
        ));
    }
}

fn record_timings(timings: &mut Timings, recorded: &record::Recorded) {
    timings.insert("record_and_probe".into(), recorded.record_ms);
    timings.insert("probe".into(), recorded.fat_run.probe_ms);
    timings.insert("start_until_ready".into(), recorded.fat_run.ready_ms);
    timings.insert(
        "read_image".into(),
        recorded.fat.save_ms + recorded.fat.flatten_ms,
    );
}

/// The package database for scanners (`--package-db`): the tree with the pruned database
/// written in, its paths added to the selection (reason `package-db`), and what it says.
fn package_phase(
    mode: crate::packages::Mode,
    tree: Arc<FileTree>,
    recorded: &record::Recorded,
    selected: &mut select::Selected,
    work: &WorkDir,
) -> Result<(Arc<FileTree>, Option<crate::packages::Report>)> {
    use crate::{
        minify::{Kept, Reason, Why},
        packages,
    };
    let selection = selected.selection();
    let Some(pruned) = packages::prune(&tree, &selection, mode) else {
        return Ok((tree, None));
    };
    let (with_db, added) =
        packages::apply(&tree, &pruned, &selection, work.path()).with_context(|| {
            format!(
                "cannot write the package database in {}",
                work.path().display()
            )
        })?;
    for path in added {
        selected.keep.paths.entry(path).or_insert_with(|| Kept {
            reason: Reason::PackageDb,
            why: Why::Rule("read by vulnerability scanners"),
        });
    }
    let report = packages::report(&pruned, mode, packages::distro(&recorded.fat.tree));
    Ok((Arc::new(with_db), Some(report)))
}

/// Counts per reason keyed by the reason's name, as report.json's `kept` and `kept_bytes`
/// (sorted by name).
fn by_reason_name(
    counts: &std::collections::BTreeMap<crate::minify::Reason, u64>,
) -> std::collections::BTreeMap<String, u64> {
    counts
        .iter()
        .map(|(reason, n)| (reason.as_str().to_owned(), *n))
        .collect()
}

/// Now, as RFC 3339 UTC (`2026-12-03T20:00:00Z`).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// docker-slim's naming: `repo:tag` -> `repo.slim:tag` (`latest` when untagged, a digest
/// dropped); an image id, or a name of hex digits only (a short id), -> `slim-SHORTID:latest`.
pub fn default_tag(target: &Reference) -> String {
    match target {
        Reference::Id(hex) => format!("slim-{}:latest", short_id(hex)),
        Reference::Named(named)
            if named.domain.is_none()
                && named.tag.is_none()
                && named.digest.is_none()
                && named.path.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("slim-{}:latest", short_id(&named.path))
        }
        Reference::Named(named) => format!(
            "{}.slim:{}",
            named.repository(),
            named.tag.as_deref().unwrap_or("latest")
        ),
    }
}

/// `--strip-executables` / `--compress-executables`: the tree to write the image from.
async fn shrink_phase(
    options: shrink::Options,
    recorded: &record::Recorded,
    selected: &select::Selected,
    work: &WorkDir,
    console: Console,
) -> Result<(Arc<FileTree>, Option<shrink::Report>)> {
    if !options.any() {
        return Ok((recorded.fat.tree.clone(), None));
    }
    let arch = recorded.fat.image.arch();
    let (fat_tree, keep, dir) = (
        Arc::clone(&recorded.fat.tree),
        selected.keep.clone(),
        work.path().to_owned(),
    );
    let (tree, report) =
        tokio::task::spawn_blocking(move || shrink::shrink(&fat_tree, &keep, arch, options, &dir))
            .await
            .context("the shrink task stopped")??;
    let count = |action| report.shrunk.iter().filter(|s| s.action == action).count();
    console.say(format!(
        "      shrink    {} stripped, {} packed: {} -> {} ({} left as they were)",
        count(shrink::Action::Strip),
        count(shrink::Action::Upx),
        human_bytes(report.bytes_before),
        human_bytes(report.bytes_after),
        report.left.len()
    ));
    Ok((Arc::new(tree), Some(report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag_of(target: &str) -> String {
        default_tag(&crate::image::reference::parse(target).unwrap())
    }

    #[test]
    fn docker_slim_default_tags() {
        assert_eq!(tag_of("app:fat"), "app.slim:fat");
        assert_eq!(tag_of("nginx"), "nginx.slim:latest");
        assert_eq!(tag_of("localhost:5000/app:1"), "localhost:5000/app.slim:1");
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(tag_of(&format!("app:2@{digest}")), "app.slim:2");
        assert_eq!(tag_of(&format!("app@{digest}")), "app.slim:latest");
    }

    /// An image named by its id, as `docker build -q` prints it, once panicked (exit 101).
    #[test]
    fn image_ids_get_the_short_id() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(tag_of(&format!("sha256:{hex}")), "slim-0123456789ab:latest");
        assert_eq!(tag_of(&hex), "slim-0123456789ab:latest");
        assert_eq!(tag_of("sha256:0123"), "slim-0123:latest");
        assert_eq!(tag_of("0123456789ab"), "slim-0123456789ab:latest");
    }

    /// No input makes the name helpers panic, and every valid target short enough to take
    /// `.slim` gets a default tag that is itself a valid tag.
    #[test]
    fn name_helpers_never_panic() {
        for text in crate::image::reference::random_texts(50_000) {
            let _ = short_id(&text);
            let Ok(target) = crate::image::reference::parse(&text) else {
                continue;
            };
            let tag = default_tag(&target);
            if text.len() <= crate::image::reference::MAX_NAME - 5 {
                assert!(
                    crate::image::reference::parse_tag(&tag).is_ok(),
                    "{text:?} -> {tag:?}"
                );
            }
        }
    }
}
