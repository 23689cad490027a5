//! `slim debug` through the fake engine: the image chosen from the slim image's labels, the
//! debug container's namespaces and privileges, the errors and their exit codes, and the
//! debug container removed on every path.

use std::{
    pin::Pin,
    process::ExitCode,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use serde_json::json;

use super::*;
use crate::{
    commands::{exit_code, EXIT_FAULT, EXIT_INTERRUPTED, EXIT_USAGE},
    engine::fake::{App, FakeEngine, Op},
};

/// An output the test reads afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const PIPES: Attach = Attach {
    tty: false,
    stdin: false,
};

/// An engine holding a fat image, its slim image (labelled as `slim build` labels it) and a
/// running container of the slim image; returns the engine, the target's id and the fat id.
fn slim_target(app: App, target: RunSpec) -> (FakeEngine, String, String) {
    let engine = FakeEngine::new(app);
    let fat_id = engine.add_image(
        "app:fat",
        &[("/bin/sh", b"sh"), ("/srv/index.html", b"hi")],
        json!({"Cmd": ["serve"]}),
    );
    engine.add_image(
        "app.slim:latest",
        &[("/srv/index.html", b"hi")],
        json!({"Cmd": ["serve"], "Labels": {LABEL_FAT_IMAGE: "app:fat", LABEL_FAT_IMAGE_ID: fat_id}}),
    );
    let target = engine.add_running(RunSpec {
        image: "app.slim".into(),
        ..target
    });
    (engine, target, fat_id)
}

fn plan(target: &str, image: Option<&str>, shell: Shell) -> Plan {
    Plan {
        target: target.to_owned(),
        image: image.map(str::to_owned),
        shell,
        privileged: false,
    }
}

fn stdio(out: &Captured) -> Stdio {
    Stdio {
        stdin: None,
        stdout: Box::new(out.clone()),
        stderr: Box::new(out.clone()),
        tty_size: None,
    }
}

/// Prepares and runs `plan`: the exit code or the error's, and the output.
async fn debug(engine: &FakeEngine, plan: &Plan, stop: Duration) -> (ExitCode, String) {
    let out = Captured::default();
    let result = match prepare(engine, plan, PIPES).await {
        Ok(prepared) => run_shell(engine, &prepared, stdio(&out), tokio::time::sleep(stop)).await,
        Err(err) => Err(err),
    };
    let code = match &result {
        Ok(code) => *code,
        Err(err) => exit_code(err),
    };
    let text = match result {
        Ok(_) => out.text(),
        Err(err) => format!("{err:#}"),
    };
    (code, text)
}

const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn the_shell_runs_from_the_fat_image_in_the_targets_namespaces_as_its_user() {
    let app = App::ExitsAtStart {
        code: 7,
        logs: "index.html\n".into(),
    };
    let (engine, target, fat_id) = slim_target(
        app,
        RunSpec {
            user: Some("app".into()),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["NET_RAW".into()],
            ..Default::default()
        },
    );
    let (code, out) = debug(
        &engine,
        &plan(&target, None, Shell::Exec("ls srv; exit 7".into())),
        NEVER,
    )
    .await;
    assert_eq!(code, ExitCode::from(7), "{out}");
    assert_eq!(out, "index.html\n");
    let spec = engine.created().pop().unwrap();
    assert_eq!(spec.image, fat_id);
    let join = format!("container:{target}");
    assert_eq!(spec.pid.as_ref(), Some(&join));
    assert_eq!(spec.network.as_ref(), Some(&join));
    // A private IPC namespace cannot be joined on Docker; Docker has no UTS join.
    assert_eq!((spec.ipc, spec.uts), (None, None));
    // No privilege the target lacks.
    assert_eq!(spec.user.as_deref(), Some("app"));
    assert_eq!(
        (spec.cap_add, spec.cap_drop),
        (vec!["NET_ADMIN".to_owned()], vec!["NET_RAW".to_owned()])
    );
    assert!(!spec.privileged && !spec.tty && !spec.stdin);
    assert!(spec.ports.is_empty());
    // `sh -c CMD` from the target's root.
    assert_eq!(spec.entrypoint, Some(vec!["sh".to_owned()]));
    let cmd = spec.cmd.unwrap();
    assert_eq!(cmd.last().map(String::as_str), Some("ls srv; exit 7"));
    assert!(
        cmd[1].starts_with("cd /proc/1/root ") && cmd[1].ends_with("exec sh -c \"$1\""),
        "{cmd:?}"
    );
    // Owned by this slim (so `slim prune` removes it after a kill), and removed.
    assert_eq!(
        spec.labels.get("slim.run").map(String::as_str),
        Some("true")
    );
    assert_eq!(spec.labels.get(LABEL_DEBUG_TARGET), Some(&target));
    assert_eq!(engine.containers(), vec![target]);
}

#[tokio::test]
async fn an_interactive_shell_prefers_bash_and_privileged_debug_runs_as_root() {
    let (engine, target, _) = slim_target(
        App::ExitsAtStart {
            code: 0,
            logs: String::new(),
        },
        RunSpec {
            user: Some("1000".into()),
            cap_drop: vec!["ALL".into()],
            ipc: Some("shareable".into()),
            ..Default::default()
        },
    );
    let mut plan = plan(&target, None, Shell::Interactive);
    plan.privileged = true;
    let attach = Attach {
        tty: true,
        stdin: true,
    };
    let prepared = prepare(&engine, &plan, attach).await.unwrap();
    let spec = &prepared.spec;
    assert_eq!(spec.user.as_deref(), Some("0"));
    assert_eq!(spec.cap_add, vec!["SYS_PTRACE".to_owned()]);
    assert!(!spec.privileged && spec.cap_drop.is_empty());
    assert!(spec.tty && spec.stdin);
    // A shareable IPC namespace is joined.
    assert_eq!(spec.ipc, Some(format!("container:{target}")));
    let script = &spec.cmd.as_ref().unwrap()[1];
    assert!(script.ends_with("command -v bash >/dev/null 2>&1 && exec bash; exec sh"));
    let code = run_shell(
        &engine,
        &prepared,
        stdio(&Captured::default()),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(engine.containers(), vec![target]);
}

#[tokio::test]
async fn image_overrides_the_label_and_an_unlabelled_image_needs_it() {
    let engine = FakeEngine::new(App::ExitsAtStart {
        code: 0,
        logs: String::new(),
    });
    engine.add_image("plain:1", &[("/app", b"app")], json!({}));
    let busybox = engine.add_image("busybox:latest", &[("/bin/sh", b"sh")], json!({}));
    let target = engine.add_running(RunSpec {
        image: "plain:1".into(),
        ..Default::default()
    });
    let (code, err) = debug(&engine, &plan(&target, None, Shell::Interactive), NEVER).await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    assert!(
        err.contains("runs plain:1, which slim did not make"),
        "{err}"
    );
    assert!(err.contains("hint: pass --image IMAGE"), "{err}");
    assert!(engine.created().is_empty());

    let (code, _) = debug(
        &engine,
        &plan(&target, Some("busybox"), Shell::Exec("true".into())),
        NEVER,
    )
    .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(engine.created()[0].image, busybox);

    let (code, err) = debug(
        &engine,
        &plan(&target, Some("gone:1"), Shell::Interactive),
        NEVER,
    )
    .await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    assert!(err.starts_with("no such image: gone:1 (--image)"), "{err}");
}

#[tokio::test]
async fn a_missing_fat_image_is_named_with_the_hint() {
    let (engine, target, fat_id) = slim_target(
        App::ExitsAtStart {
            code: 0,
            logs: String::new(),
        },
        RunSpec::default(),
    );
    engine.untag_image("app:fat").await.unwrap();
    assert!(!engine.images().contains(&fat_id));
    let (code, err) = debug(&engine, &plan(&target, None, Shell::Interactive), NEVER).await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    let short = short_id(&fat_id);
    assert!(
        err.starts_with(&format!(
            "the fat image of {target}-name is not in the engine: app:fat ({short})"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: pull or rebuild it, or pass --image IMAGE"),
        "{err}"
    );
    // The name now names another image: said, and not used without --image.
    let other = engine.add_image("app:fat", &[("/bin/sh", b"new sh")], json!({}));
    let (code, err) = debug(&engine, &plan(&target, None, Shell::Interactive), NEVER).await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    assert!(
        err.contains(&format!(
            "hint: app:fat now names another image ({}): --image app:fat debugs from it",
            short_id(&other)
        )),
        "{err}"
    );
    assert!(engine.created().is_empty());
}

#[tokio::test]
async fn a_missing_or_stopped_container_is_bad_input() {
    let (engine, target, _) = slim_target(App::Http { body: "ok".into() }, RunSpec::default());
    let (code, err) = debug(&engine, &plan("nope", None, Shell::Interactive), NEVER).await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    assert!(
        err.starts_with("no such container: nope\n  hint: "),
        "{err}"
    );
    engine
        .stop_container(&target, Duration::ZERO)
        .await
        .unwrap();
    let (code, err) = debug(&engine, &plan(&target, None, Shell::Interactive), NEVER).await;
    assert_eq!(code, ExitCode::from(EXIT_USAGE));
    assert!(
        err.starts_with(&format!("container {target} is not running\n  hint: ")),
        "{err}"
    );
    assert!(engine.created().is_empty());
}

#[tokio::test]
async fn an_engine_failure_exits_5_and_leaves_no_debug_container() {
    for op in [Op::Create, Op::Attach, Op::Start] {
        let (engine, target, _) = slim_target(
            App::ExitsAtStart {
                code: 0,
                logs: String::new(),
            },
            RunSpec::default(),
        );
        engine.fail(op);
        let (code, err) = debug(&engine, &plan(&target, None, Shell::Interactive), NEVER).await;
        assert_eq!(code, ExitCode::from(EXIT_FAULT), "{op:?}: {err}");
        assert!(!err.contains("Api {"), "no Debug dump: {err}");
        assert_eq!(engine.containers(), vec![target], "{op:?}");
    }
}

#[tokio::test]
async fn a_stop_removes_the_running_shell() {
    let (engine, target, _) = slim_target(App::Http { body: "ok".into() }, RunSpec::default());
    let (code, err) = debug(
        &engine,
        &plan(&target, None, Shell::Interactive),
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(code, ExitCode::from(EXIT_INTERRUPTED), "{err}");
    assert_eq!(engine.containers(), vec![target]);
    assert!(engine
        .journal()
        .iter()
        .any(|line| line.starts_with("remove ")));
}

#[test]
fn arguments_are_checked_before_the_engine() {
    let args = |image: Option<&str>, exec: Option<&str>| DebugArgs {
        container: "web".into(),
        image: image.map(str::to_owned),
        exec: exec.map(str::to_owned),
        privileged_debug: false,
    };
    let err = Plan::from_args(args(None, Some("  "))).unwrap_err();
    assert!(err.message.contains("--exec needs a command"), "{err}");
    assert!(Plan::from_args(args(Some("Bad Name"), None)).is_err());
    let plan = Plan::from_args(args(Some("busybox"), Some("ls"))).unwrap();
    assert_eq!(plan.shell, Shell::Exec("ls".into()));
}
