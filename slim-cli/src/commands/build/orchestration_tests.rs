//! Whole `slim build` and `slim profile` runs through the fakes (an in-memory engine whose app
//! answers from its image's files, a scripted recorder): no root, no engine, no kernel. They
//! cover the phase order, the tag rules, verification mismatches, the exit class of each
//! failure and the clean-up after a failure or a stop in every phase.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use clap::Parser as _;
use slim_common::{event_kind, op, phase};

use super::{build, profile_image, BuildPlan, Host, ProfilePlan};
use crate::{
    cli::{Cli, Command},
    commands::{exit_code, Shutdown},
    engine::fake::{App, FakeEngine, Op, Then},
    syscalls::Arch,
    tracer::{fake::ScriptedRecorder, mount_namespace, PhaseSyscalls, RawEvent, RawRecording},
};

const FAT: &str = "app:fat";
const SLIM: &str = "app:slim";
const NO_HOST: Host = Host {
    load_apparmor: false,
};

/// A fat image: the app, the file it serves, and what it never touches.
fn engine(app: App) -> (FakeEngine, String) {
    engine_with_fat(app)
}

/// [`engine`], by a name that reads well where `engine` is a variable.
fn engine_with_fat(app: App) -> (FakeEngine, String) {
    let engine = FakeEngine::new(app);
    let id = engine.add_image(
        FAT,
        &[
            ("/app/server", b"\x7fELF the app"),
            (
                "/usr/share/app-data/data.txt",
                b"hello from the data file\n",
            ),
            ("/usr/share/doc/big/README", &[b'x'; 50_000]),
        ],
        serde_json::json!({
            "Cmd": ["/app/server"],
            "ExposedPorts": { "80/tcp": {} },
            "WorkingDir": "/app",
        }),
    );
    (engine, id)
}

fn serves_data() -> App {
    App::ServesFile {
        path: "/usr/share/app-data/data.txt".into(),
    }
}

/// What the app did under the recorder: exec'd its server, then opened `opened`.
fn recorder(opened: &[&str]) -> ScriptedRecorder {
    let mntns = mount_namespace("self").expect("this process's mount namespace");
    let event = |kind, op, path: &str| RawEvent {
        kind,
        pid: 10,
        tid: 10,
        mntns,
        inum: mntns,
        aux: 0,
        op,
        second: false,
        truncated: false,
        phase: phase::APP as u8,
        dirfd: slim_common::AT_FDCWD,
        flags: 0,
        ret: 3,
        path: path.as_bytes().to_vec(),
    };
    let mut events = vec![event(event_kind::EXEC, 0, "/app/server")];
    events.extend(opened.iter().map(|p| event(event_kind::PATH, op::OPEN, p)));
    let app: std::collections::BTreeSet<u32> = [0, 1, 3, 41, 43, 44, 45, 49, 50, 59, 231, 257]
        .into_iter()
        .collect();
    ScriptedRecorder::with(RawRecording {
        arch: Some(Arch::X86_64),
        events,
        syscalls: [(
            mntns,
            PhaseSyscalls {
                app,
                ..Default::default()
            },
        )]
        .into(),
        dir_open_flags: 0o200000,
        ..Default::default()
    })
}

/// A scratch output dir, removed on drop.
struct OutDir(PathBuf);

impl OutDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "slim-orchestration-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn build_plan(out: &Path, extra: &[&str]) -> BuildPlan {
    let mut args = vec!["slim", "build", "--quiet", "--output-dir"];
    args.push(out.to_str().unwrap());
    args.extend(["--tag", SLIM]);
    args.extend(extra);
    args.push(FAT);
    let Command::Build(args) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!("parsed as build")
    };
    BuildPlan::from_args(*args).unwrap()
}

fn shutdown() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (tx, Shutdown(rx))
}

/// Runs `slim build` through the fakes: its exit code, as `main` would give it.
async fn run_build(
    engine: &FakeEngine,
    recorder: ScriptedRecorder,
    plan: BuildPlan,
    shutdown: &Shutdown,
) -> ExitCode {
    match build(
        plan,
        (engine.clone(), recorder),
        NO_HOST,
        shutdown,
        Instant::now(),
    )
    .await
    {
        Ok(code) => code,
        Err(err) => exit_code(&err),
    }
}

/// Nothing of the run is left in the engine: no container, no temporary tag, and the fat
/// image still under its tag.
fn assert_nothing_left(engine: &FakeEngine, fat_id: &str) {
    assert_eq!(
        engine.containers(),
        Vec::<String>::new(),
        "{:#?}",
        engine.journal()
    );
    let tags = engine.tags();
    assert_eq!(tags.get(FAT).map(String::as_str), Some(fat_id));
    let strays: Vec<&String> = tags
        .keys()
        .filter(|t| *t != FAT && *t != SLIM && !t.ends_with("-unverified"))
        .collect();
    assert!(strays.is_empty(), "temporary tags left: {strays:?}");
    // No image without a tag: a temporary one untagged while a container still used it would
    // stay in the engine for good.
    let tagged: std::collections::BTreeSet<&String> = tags.values().collect();
    let dangling: Vec<String> = engine
        .images()
        .into_iter()
        .filter(|id| !tagged.contains(id))
        .collect();
    assert!(dangling.is_empty(), "untagged images left: {dangling:?}");
}

#[tokio::test]
async fn a_build_keeps_what_was_touched_verifies_and_takes_its_tag() {
    let (engine, fat_id) = engine(serves_data());
    let out = OutDir::new("ok");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        build_plan(&out.0, &[]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS, "{:#?}", engine.journal());

    let files = engine.files_of(SLIM).expect("the slim image is tagged");
    assert!(files.contains_key("/app/server"), "{files:?}");
    assert!(
        files.contains_key("/usr/share/app-data/data.txt"),
        "{files:?}"
    );
    assert!(
        !files.contains_key("/usr/share/doc/big/README"),
        "{files:?}"
    );
    assert_nothing_left(&engine, &fat_id);
    assert!(!engine.tags().contains_key("app:slim-unverified"));

    // Phase order: the fat run, the load, the verification run, then the tag moves into place
    // and the temporary tag goes.
    let journal = engine.journal();
    let order: Vec<&str> = journal
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|verb| ["create", "load", "tag", "untag"].contains(verb))
        .collect();
    // Verification starts the slim image twice (the second with the CPU kept busy).
    assert_eq!(
        order,
        ["create", "load", "create", "create", "tag", "untag"],
        "{journal:#?}"
    );
    assert!(
        journal[0].starts_with("create c1 sha256:"),
        "by id: {journal:#?}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.0.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["slim"]["image"], SLIM);
    assert_eq!(report["verify"]["failed"].as_array().map(Vec::len), Some(0));
    assert!(
        report["verify"]["probes"].as_u64() >= Some(1),
        "{}",
        report["verify"]
    );
    for file in ["seccomp.json", "files.txt"] {
        assert!(out.0.join(file).exists(), "{file} written");
    }
}

#[tokio::test]
async fn a_slim_image_that_answers_differently_is_tagged_unverified_and_exits_3() {
    let (engine, fat_id) = engine(serves_data());
    // The slim image's earlier build, which a failed one must leave as it was.
    let earlier = engine.add_image(SLIM, &[("/old", b"old")], serde_json::json!({}));
    let out = OutDir::new("mismatch");
    let (_tx, stop) = shutdown();
    // The recording misses the data file: the slim image answers 500 where the fat said 200.
    let code = run_build(&engine, recorder(&[]), build_plan(&out.0, &[]), &stop).await;
    assert_eq!(code, ExitCode::from(super::EXIT_VERIFY_FAILED));
    let tags = engine.tags();
    assert_eq!(
        tags.get(SLIM),
        Some(&earlier),
        "the tag stays on the earlier image"
    );
    let unverified = engine
        .files_of("app:slim-unverified")
        .expect("kept for inspection");
    assert!(!unverified.contains_key("/usr/share/app-data/data.txt"));
    assert_nothing_left(&engine, &fat_id);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.0.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["slim"]["image"], "app:slim-unverified");
    assert!(
        report["verify"]["failed"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{}",
        report["verify"]
    );
}

#[tokio::test]
async fn no_verify_tags_without_a_verification_run() {
    let (engine, fat_id) = engine(serves_data());
    let out = OutDir::new("noverify");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        recorder(&[]),
        build_plan(&out.0, &["--no-verify"]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let creates = engine
        .journal()
        .iter()
        .filter(|l| l.starts_with("create "))
        .count();
    assert_eq!(creates, 1, "only the recorded run: {:#?}", engine.journal());
    assert!(engine.tags().contains_key(SLIM));
    assert_nothing_left(&engine, &fat_id);
}

#[tokio::test]
async fn a_tag_that_names_the_fat_image_is_refused_before_anything_runs() {
    let (engine, fat_id) = engine(serves_data());
    let out = OutDir::new("sametag");
    let (_tx, stop) = shutdown();
    let mut plan = build_plan(&out.0, &[]);
    plan.tag = FAT.into();
    let code = run_build(&engine, recorder(&[]), plan, &stop).await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_USAGE));
    assert!(engine.journal().is_empty(), "{:#?}", engine.journal());
    assert_nothing_left(&engine, &fat_id);
}

#[tokio::test]
async fn an_app_that_exits_at_start_fails_as_the_app_and_leaves_nothing() {
    let (engine, fat_id) = engine(App::ExitsAtStart {
        code: 1,
        logs: "cannot connect to the database\n".into(),
    });
    let out = OutDir::new("exits");
    let (_tx, stop) = shutdown();
    let code = run_build(&engine, recorder(&[]), build_plan(&out.0, &[]), &stop).await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_APP_FAILED));
    assert_nothing_left(&engine, &fat_id);
    assert!(!engine.tags().contains_key(SLIM));
    assert!(!out.0.join("report.json").exists());
}

#[tokio::test]
async fn a_recorder_that_cannot_start_stops_the_build_before_any_container() {
    let (engine, fat_id) = engine(serves_data());
    let out = OutDir::new("norecorder");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        ScriptedRecorder::refusing(),
        build_plan(&out.0, &[]),
        &stop,
    )
    .await;
    assert_ne!(code, ExitCode::SUCCESS);
    assert!(
        !engine.journal().iter().any(|l| l.starts_with("create")),
        "{:#?}",
        engine.journal()
    );
    assert_nothing_left(&engine, &fat_id);
}

/// The engine refusing each operation the build asks of it: a fault (exit 5, its hint), and
/// nothing of the run left: no container, no temporary tag, no slim tag.
#[tokio::test]
async fn an_engine_failure_in_each_phase_exits_5_and_leaves_nothing() {
    for (op, phase) in [
        (Op::Create, "record"),
        (Op::Start, "record"),
        (Op::Load, "write"),
        (Op::Tag, "tag"),
    ] {
        let (engine, fat_id) = engine(serves_data());
        engine.fail(op);
        let out = OutDir::new("fault");
        let (_tx, stop) = shutdown();
        let code = run_build(
            &engine,
            recorder(&["/usr/share/app-data/data.txt"]),
            build_plan(&out.0, &[]),
            &stop,
        )
        .await;
        assert_eq!(
            code,
            ExitCode::from(crate::commands::EXIT_FAULT),
            "{op:?} refused in {phase}: {:#?}",
            engine.journal()
        );
        assert_nothing_left(&engine, &fat_id);
        assert!(
            !engine.tags().contains_key(SLIM),
            "{op:?}: {:?}",
            engine.tags()
        );
    }
}

/// A stop (Ctrl-C, SIGTERM) in each phase: exit 130, nothing left, no slim tag.
#[tokio::test]
async fn a_stop_in_each_phase_exits_130_and_leaves_nothing() {
    for (op, nth, phase) in [
        (Op::Create, 1, "record"),
        (Op::Start, 1, "record"),
        (Op::Load, 1, "write"),
        (Op::Create, 2, "verify"),
        (Op::Start, 2, "verify"),
        (Op::Start, 3, "second verification start"),
    ] {
        let (engine, fat_id) = engine(serves_data());
        let out = OutDir::new("stop");
        let (tx, stop) = shutdown();
        engine.stop_at(op, nth, tx);
        let code = run_build(
            &engine,
            recorder(&["/usr/share/app-data/data.txt"]),
            build_plan(&out.0, &[]),
            &stop,
        )
        .await;
        assert_eq!(
            code,
            ExitCode::from(crate::commands::EXIT_INTERRUPTED),
            "stopped at {op:?} #{nth} in {phase}: {:#?}",
            engine.journal()
        );
        assert_nothing_left(&engine, &fat_id);
        assert!(
            !engine.tags().contains_key(SLIM),
            "{phase}: {:?}",
            engine.tags()
        );
        assert!(
            !out.0.join("report.json").exists(),
            "{phase}: nothing published"
        );
    }
}

#[tokio::test]
async fn a_profile_run_verifies_the_target_itself_and_writes_no_image() {
    let (engine, fat_id) = engine(serves_data());
    let out = OutDir::new("profile");
    let (_tx, stop) = shutdown();
    let args = [
        "slim",
        "profile",
        "--quiet",
        "--output-dir",
        out.0.to_str().unwrap(),
        FAT,
    ];
    let Command::Profile(args) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!("parsed as profile")
    };
    let plan = ProfilePlan::from_args(*args).unwrap();
    let code = profile_image(
        plan,
        (engine.clone(), recorder(&["/usr/share/app-data/data.txt"])),
        NO_HOST,
        &stop,
        Instant::now(),
    )
    .await
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(engine.images(), vec![fat_id.clone()], "no image written");
    let creates: Vec<String> = engine
        .journal()
        .into_iter()
        .filter(|l| l.starts_with("create "))
        .collect();
    assert_eq!(
        creates.len(),
        3,
        "recorded, then verified twice: {creates:?}"
    );
    assert!(creates.iter().all(|c| c.ends_with(&fat_id)), "{creates:?}");
    assert!(out.0.join("seccomp.json").exists());
    assert_nothing_left(&engine, &fat_id);
}

/// The fat image's tag moved to another image while slim read it: what is slimmed is the image
/// inspected at the start, by id, and the build completes.
#[tokio::test]
async fn the_fat_image_retagged_while_read_is_still_the_one_slimmed() {
    let (engine, fat_id) = engine(serves_data());
    let other = engine.add_image("other:1", &[("/other", b"o")], serde_json::json!({}));
    engine.at(Op::Save, 1, Then::Retag(FAT.into(), other.clone()));
    let out = OutDir::new("retagged");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        build_plan(&out.0, &[]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS, "{:#?}", engine.journal());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.0.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["target"]["id"], fat_id.as_str());
    assert_eq!(
        engine.tags().get(FAT),
        Some(&other),
        "the name left as moved"
    );
    let files = engine.files_of(SLIM).unwrap();
    assert!(files.contains_key("/usr/share/app-data/data.txt"));
    assert!(!files.contains_key("/other"));
    assert_eq!(engine.containers(), Vec::<String>::new());
}

/// The fat image deleted while slim read it: a fault naming it (exit 5), nothing left; only
/// untagged (a container still uses it), the build completes from its id.
#[tokio::test]
async fn the_fat_image_removed_while_read() {
    let (engine, _) = engine(serves_data());
    engine.at(Op::Save, 1, Then::Delete(FAT.into()));
    let out = OutDir::new("deleted");
    let (_tx, stop) = shutdown();
    let result = build(
        build_plan(&out.0, &[]),
        (engine.clone(), recorder(&[])),
        NO_HOST,
        &stop,
        Instant::now(),
    )
    .await;
    let err = result.expect_err("nothing left to read");
    assert_eq!(exit_code(&err), ExitCode::from(crate::commands::EXIT_FAULT));
    assert!(
        format!("{err:#}").contains("was removed while slim read it"),
        "{err:#}"
    );
    assert_eq!(engine.containers(), Vec::<String>::new());
    assert!(!engine.tags().contains_key(SLIM));
    assert!(!out.0.join("report.json").exists());

    let (engine, fat_id) = self::engine(serves_data());
    engine.at(Op::Save, 1, Then::Remove(FAT.into()));
    let out = OutDir::new("untagged");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        build_plan(&out.0, &[]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS, "{:#?}", engine.journal());
    assert!(!engine.tags().contains_key(FAT));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.0.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["target"]["id"], fat_id.as_str());
    assert_eq!(engine.containers(), Vec::<String>::new());
}

/// A fat image only in its registry is pulled (`--pull missing`, the default), slimmed,
/// verified and, with `--push`, the slim image pushed; one that fails verification is never
/// pushed.
#[tokio::test]
async fn a_fat_image_in_a_registry_is_pulled_and_the_verified_slim_one_pushed() {
    let engine = FakeEngine::new(serves_data());
    let files: &[(&str, &[u8])] = &[
        ("/app/server", b"\x7fELF the app"),
        ("/usr/share/app-data/data.txt", b"hello\n"),
        ("/usr/share/doc/big/README", &[b'x'; 50_000]),
    ];
    let config = serde_json::json!({"Cmd": ["/app/server"], "ExposedPorts": {"80/tcp": {}}});
    engine.serve_in_registry(FAT, files, config.clone());
    let out = OutDir::new("pulled");
    let (_tx, stop) = shutdown();
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        build_plan(&out.0, &["--push"]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS, "{:#?}", engine.journal());
    let journal = engine.journal();
    assert_eq!(journal[0], format!("pull {FAT}"));
    let at = |line: &str| journal.iter().position(|l| l == line);
    assert!(
        at("tag app:slim").is_some() && at("tag app:slim") < at("push app:slim"),
        "pushed once tagged: {journal:#?}"
    );
    let pushed = &engine.registry()["app:slim"];
    assert!(pushed.contains_key("/usr/share/app-data/data.txt"));
    assert!(!pushed.contains_key("/usr/share/doc/big/README"));

    // The same image, but the slim one answers differently: tagged unverified, not pushed.
    let engine = FakeEngine::new(serves_data());
    engine.serve_in_registry(FAT, files, config);
    let out = OutDir::new("notpushed");
    let code = run_build(
        &engine,
        recorder(&[]),
        build_plan(&out.0, &["--push"]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::from(super::EXIT_VERIFY_FAILED));
    assert!(!engine.registry().contains_key("app:slim"));
    assert!(!engine.journal().iter().any(|l| l.starts_with("push")));
}

/// `--pull=never` leaves a missing image missing (exit 2); a registry without it is a usage error
/// (exit 2); a push the engine cannot do is a fault (exit 5), the verified image still tagged.
#[tokio::test]
async fn pull_and_push_failures_have_their_exit_class() {
    let (_tx, stop) = shutdown();
    let engine = FakeEngine::new(serves_data());
    let out = OutDir::new("never");
    let code = run_build(
        &engine,
        recorder(&[]),
        build_plan(&out.0, &["--pull=never"]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_USAGE));
    assert!(engine.journal().is_empty(), "{:#?}", engine.journal());

    let out = OutDir::new("absent");
    let code = run_build(&engine, recorder(&[]), build_plan(&out.0, &[]), &stop).await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_USAGE));
    assert_eq!(engine.journal(), [format!("pull {FAT}")]);

    let (engine, fat_id) = engine_with_fat(serves_data());
    engine.fail(Op::Push);
    let out = OutDir::new("pushfails");
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        build_plan(&out.0, &["--push"]),
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_FAULT));
    assert!(engine.tags().contains_key(SLIM), "verified, so tagged here");
    assert_nothing_left(&engine, &fat_id);
}

/// A Compose project beside the fat image: `web` (the fat image) depends on `db`, healthy
/// when `db_check` passes, with a named volume.
fn compose_plan(out: &Path, db_check: &str) -> BuildPlan {
    std::fs::create_dir_all(out).unwrap();
    let file = out.join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {FAT}\n    environment: [DB_HOST=db]\n    depends_on:\n      db: {{condition: service_healthy}}\n  db:\n    image: db:1\n    volumes: [dbdata:/var/lib/db]\n    healthcheck: {{test: {db_check:?}, interval: 1s, retries: 1}}\nvolumes:\n  dbdata:\n"
        ),
    )
    .unwrap();
    let output_dir = out.join("out");
    let args = [
        "slim",
        "build",
        "--quiet",
        "--output-dir",
        output_dir.to_str().unwrap(),
        "--tag",
        SLIM,
        "--compose-file",
        file.to_str().unwrap(),
        "--target-compose-svc",
        "web",
    ];
    let Command::Build(args) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!("parsed as build")
    };
    BuildPlan::from_args(*args).unwrap()
}

/// Nothing a Compose build started is left: no container, volume or network; the
/// dependency's image (the test's, not the build's) is removed before the usual check.
async fn assert_no_neighbours_left(engine: &FakeEngine, fat_id: &str) {
    use crate::engine::ContainerEngine as _;
    let journal = engine.journal();
    engine.untag_image("db:1").await.unwrap();
    assert_nothing_left(engine, fat_id);
    assert!(engine.containers().is_empty(), "{journal:#?}");
    assert!(engine.networks().is_empty(), "{journal:#?}");
    assert!(engine.volumes().is_empty(), "{journal:#?}");
}

#[tokio::test]
async fn a_compose_service_runs_after_its_healthy_dependency_each_run_with_fresh_ones() {
    let (engine, fat_id) = engine(serves_data());
    engine.add_image("db:1", &[("/db", b"db")], serde_json::json!({}));
    let out = OutDir::new("compose");
    let (_tx, stop) = shutdown();
    let plan = compose_plan(&out.0, "pg_isready");
    let code = run_build(
        &engine,
        recorder(&["/usr/share/app-data/data.txt"]),
        plan,
        &stop,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS, "{:#?}", engine.journal());
    assert_no_neighbours_left(&engine, &fat_id).await;
    let journal = engine.journal();
    // Each run (the recording, two verification starts): a network, a fresh volume, the
    // database created and started before the app's container.
    let networks: Vec<&String> = journal
        .iter()
        .filter(|l| l.starts_with("network "))
        .collect();
    assert_eq!(networks.len(), 3, "{journal:#?}");
    assert_eq!(
        journal.iter().filter(|l| l.starts_with("volume ")).count(),
        3,
        "fresh volumes each run: {journal:#?}"
    );
    let creates: Vec<&str> = journal
        .iter()
        .filter(|l| l.starts_with("create "))
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect();
    assert_eq!(creates.len(), 6, "{journal:#?}");
    for pair in creates.chunks(2) {
        assert_eq!(pair[0], "db:1", "the dependency first: {journal:#?}");
        assert_ne!(pair[1], "db:1", "then the app: {journal:#?}");
    }
    // The set-ups' names differ, so no run inherits another's state.
    let mut names: Vec<&String> = networks.clone();
    names.dedup();
    assert_eq!(names.len(), 3, "{networks:?}");
}

#[tokio::test]
async fn a_dependency_that_never_becomes_healthy_is_exit_4_and_leaves_nothing() {
    let (engine, fat_id) = engine(serves_data());
    engine.add_image("db:1", &[("/db", b"db")], serde_json::json!({}));
    let out = OutDir::new("compose-unhealthy");
    let (_tx, stop) = shutdown();
    let plan = compose_plan(&out.0, "exit 1");
    let err = build(
        plan,
        (engine.clone(), recorder(&[])),
        NO_HOST,
        &stop,
        Instant::now(),
    )
    .await
    .expect_err("an unhealthy dependency fails the build");
    assert_eq!(
        exit_code(&err),
        ExitCode::from(crate::commands::EXIT_APP_FAILED)
    );
    let text = format!("{err:#}");
    assert!(
        text.contains("dependency db never became healthy"),
        "{text}"
    );
    assert!(text.lines().next().unwrap().contains("db"), "{text}");
    assert_no_neighbours_left(&engine, &fat_id).await;
    let journal = engine.journal();
    assert!(
        !journal.iter().any(|l| l.starts_with("create c2")),
        "the app never started: {journal:#?}"
    );
}

#[tokio::test]
async fn a_stop_while_the_neighbours_start_removes_them() {
    let (engine, fat_id) = engine(serves_data());
    engine.add_image("db:1", &[("/db", b"db")], serde_json::json!({}));
    let out = OutDir::new("compose-stop");
    let (tx, stop) = shutdown();
    engine.stop_at(Op::Volume, 1, tx);
    let plan = compose_plan(&out.0, "pg_isready");
    let code = run_build(&engine, recorder(&[]), plan, &stop).await;
    assert_eq!(code, ExitCode::from(crate::commands::EXIT_INTERRUPTED));
    assert_no_neighbours_left(&engine, &fat_id).await;
}

#[tokio::test]
async fn the_network_and_volumes_carry_the_owner_labels() {
    let (engine, fat_id) = engine(serves_data());
    engine.add_image("db:1", &[("/db", b"db")], serde_json::json!({}));
    engine.fail(Op::Create);
    let out = OutDir::new("compose-labels");
    let (_tx, stop) = shutdown();
    let plan = compose_plan(&out.0, "pg_isready");
    let code = run_build(&engine, recorder(&[]), plan, &stop).await;
    assert_ne!(code, ExitCode::SUCCESS);
    assert_no_neighbours_left(&engine, &fat_id).await;
    let labelled = engine.labels_made();
    assert!(!labelled.is_empty());
    for labels in labelled {
        assert_eq!(
            labels.get(crate::owner::LABEL_RUN).map(String::as_str),
            Some("true")
        );
        assert!(labels.contains_key(crate::owner::LABEL_PID), "{labels:?}");
    }
}
