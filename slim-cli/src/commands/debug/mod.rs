//! `slim debug CONTAINER`: a shell in a running slim container's namespaces, from its fat image.
//! The steps: find the running target, choose the debug image (`--image`, else the fat image
//! the slim image's label names, by id), derive the debug container (the target's PID, network,
//! shareable IPC and, on Podman, UTS namespaces; its user and capabilities, no more unless
//! `--privileged-debug`), run it attached to slim's terminal or pipes, and remove it on every
//! path. The engine is behind [`ContainerEngine`], so all but the terminal is tested with the
//! fake; `terminal.rs` owns slim's own terminal.

mod terminal;

use std::{future::Future, process::ExitCode};

use anyhow::Result;

use crate::{
    cli::DebugArgs,
    engine::{ContainerEngine, ContainerInfo, Engine, EngineError, EngineKind, RunSpec, Stdio},
    image::writer::{LABEL_FAT_IMAGE, LABEL_FAT_IMAGE_ID},
};

use super::{build::Console, xray::short_id, Interrupted, Shutdown, UsageError};

/// Label of a debug container naming the container it joined (next to slim's owner labels,
/// by which `slim prune` removes what a killed `slim debug` left).
pub const LABEL_DEBUG_TARGET: &str = "slim.debug.target";

/// What the debug container runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shell {
    /// An interactive shell: bash when the image has it, else sh.
    Interactive,
    /// `sh -c CMD`; its exit code is slim's.
    Exec(String),
}

/// `slim debug`'s arguments, checked.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: String,
    /// `--image`: the debug image instead of the fat image.
    pub image: Option<String>,
    pub shell: Shell,
    /// `--privileged-debug`: root with the engine's default capabilities and SYS_PTRACE,
    /// whatever the target runs with.
    pub privileged: bool,
}

impl Plan {
    pub fn from_args(args: DebugArgs) -> Result<Self, UsageError> {
        if let Some(image) = &args.image {
            super::image_reference(image)?;
        }
        let shell = match args.exec {
            Some(command) if command.trim().is_empty() => {
                return Err(UsageError::new(
                    "--exec needs a command",
                    "give it as one argument: --exec 'ls /proc/1/root'",
                ))
            }
            Some(command) => Shell::Exec(command),
            None => Shell::Interactive,
        };
        Ok(Self {
            target: args.container,
            image: args.image,
            shell,
            privileged: args.privileged_debug,
        })
    }
}

/// An engine operation `slim debug` needed failed (exit code 5); the engine's answer is the
/// source.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed")]
pub struct EngineFailed {
    pub step: &'static str,
    #[source]
    pub source: EngineError,
}

fn engine_failed(step: &'static str) -> impl FnOnce(EngineError) -> anyhow::Error {
    move |source| EngineFailed { step, source }.into()
}

/// The image the shell runs from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugImage {
    /// `sha256:...`: the debug container is created from the id, so a tag moved meanwhile
    /// changes nothing.
    pub id: String,
    /// How it is shown: the name given or recorded.
    pub name: String,
}

/// Everything decided before the debug container exists.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub target: ContainerInfo,
    pub image: DebugImage,
    pub spec: RunSpec,
    /// Where the target's files are seen from the debug container.
    pub root: String,
}

/// How the debug container is attached: to a terminal (TTY) or to pipes, with stdin or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attach {
    pub tty: bool,
    pub stdin: bool,
}

pub async fn run(args: DebugArgs, shutdown: Shutdown) -> Result<ExitCode> {
    let plan = Plan::from_args(args)?;
    let engine = Engine::connect().await?;
    let console = Console { quiet: false };
    super::prune::reap_at_start(&engine, console).await;
    let interactive = plan.shell == Shell::Interactive;
    let tty = interactive && terminal::stdin_is_terminal();
    // An exec reads stdin only when it is piped in: a terminal stays the user's.
    let attach = Attach {
        tty,
        stdin: interactive || !terminal::stdin_is_terminal(),
    };
    let prepared = prepare(&engine, &plan, attach).await?;
    if interactive {
        console.say(format!(
            "slim: debugging {} from {} ({}); its files are in {} (the shell starts there); \
             `exit` leaves",
            prepared.target.name,
            prepared.image.name,
            short_id(&prepared.image.id),
            prepared.root
        ));
    }
    let stdio = Stdio {
        stdin: attach.stdin.then(terminal::stdin_reader),
        stdout: Box::new(terminal::Output(std::io::stdout())),
        stderr: Box::new(terminal::Output(std::io::stderr())),
        tty_size: tty.then(terminal::follow_size).flatten(),
    };
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let stop = async move {
        tokio::select! {
            () = shutdown.requested() => {}
            _ = hangup.recv() => {}
        }
    };
    // Keys go to the shell as typed (Ctrl-C too), as with `docker run -it`.
    let raw = tty
        .then(|| {
            terminal::RawMode::enter()
                .map_err(|err| tracing::warn!("the terminal stays as it is (not raw: {err})"))
                .ok()
        })
        .flatten();
    let code = run_shell(&engine, &prepared, stdio, stop).await;
    drop(raw);
    code
}

/// Finds the target and the debug image and derives the debug container: no container exists
/// yet, so a failure here leaves nothing behind.
pub async fn prepare<E: ContainerEngine>(
    engine: &E,
    plan: &Plan,
    attach: Attach,
) -> Result<Prepared> {
    let target = running_target(engine, &plan.target).await?;
    let image = debug_image(engine, &target, plan.image.as_deref()).await?;
    // A target sharing the host's PID namespace is not pid 1 there.
    let root_pid = match target.pid_mode.as_str() {
        "host" => target.pid,
        _ => 1,
    };
    let root = format!("/proc/{root_pid}/root");
    let spec = debug_spec(engine.kind(), &target, &image, plan, attach, &root);
    Ok(Prepared {
        target,
        image,
        spec,
        root,
    })
}

/// Creates the debug container, runs it attached to `stdio` until it exits or `stop`
/// resolves, and removes it on every path; its exit code is slim's.
pub async fn run_shell<E: ContainerEngine>(
    engine: &E,
    prepared: &Prepared,
    stdio: Stdio,
    stop: impl Future<Output = ()>,
) -> Result<ExitCode> {
    let id = engine
        .create_container(&prepared.spec)
        .await
        .map_err(engine_failed("creating the debug container"))?;
    let outcome = tokio::select! {
        ran = engine.run_attached(&id, stdio) => Some(ran),
        () = stop => None,
    };
    if let Err(err) = engine.remove_container(&id).await {
        tracing::warn!(
            "the debug container {} is left behind ({err}); `slim prune` removes it",
            short_id(&id)
        );
    }
    match outcome {
        None => Err(Interrupted.into()),
        Some(Ok(code)) => match u8::try_from(code) {
            Ok(code) => Ok(ExitCode::from(code)),
            Err(_) => Err(EngineFailed {
                step: "reading the shell's exit code",
                source: EngineError::Stopped {
                    operation: "wait for container",
                    reason: format!("the engine reported exit code {code}"),
                },
            }
            .into()),
        },
        Some(Err(err)) => Err(start_failed(err, &prepared.image)),
    }
}

/// The target, running ([`UsageError`] when it is not, or does not exist).
async fn running_target<E: ContainerEngine>(engine: &E, name: &str) -> Result<ContainerInfo> {
    match engine.container_info(name).await {
        Ok(target) if target.running => Ok(target),
        Ok(_) => Err(UsageError::new(
            format!("container {name} is not running"),
            format!(
                "slim debug joins a running container's namespaces: `docker start {name}` \
                 first (`docker ps` lists the running ones)"
            ),
        )
        .into()),
        Err(EngineError::NoSuchContainer(_)) => Err(UsageError::new(
            format!("no such container: {name}"),
            "`docker ps` lists the running containers, by name and id",
        )
        .into()),
        Err(err) => Err(engine_failed("inspecting the container")(err)),
    }
}

/// The image to debug from: `--image`, else the fat image the target's image names by its
/// label (by id: the fat image exactly, or a clear error when it is gone).
async fn debug_image<E: ContainerEngine>(
    engine: &E,
    target: &ContainerInfo,
    flag: Option<&str>,
) -> Result<DebugImage> {
    if let Some(name) = flag {
        return match engine.image(name).await {
            Ok(info) => Ok(DebugImage {
                id: info.id,
                name: name.to_owned(),
            }),
            Err(EngineError::NoSuchImage(_)) => Err(UsageError::new(
                format!("no such image: {name} (--image)"),
                "`docker images` lists the engine's images (slim debug does not pull; \
                 `docker pull` does)",
            )
            .into()),
            Err(err) => Err(engine_failed("inspecting the debug image")(err)),
        };
    }
    let labels = match engine.image_labels(&target.image_id).await {
        Ok(labels) => labels,
        Err(EngineError::NoSuchImage(_)) => Default::default(),
        Err(err) => return Err(engine_failed("inspecting the container's image")(err)),
    };
    let Some(fat_id) = labels.get(LABEL_FAT_IMAGE_ID) else {
        return Err(UsageError::new(
            format!(
                "container {} runs {}, which slim did not make (no {LABEL_FAT_IMAGE_ID} label): \
                 there is no fat image to debug from",
                target.name, target.image
            ),
            "pass --image IMAGE: any image with a shell (`sh`), such as the image it was \
             made from",
        )
        .into());
    };
    let fat_name = labels.get(LABEL_FAT_IMAGE).unwrap_or(fat_id);
    match engine.image(fat_id).await {
        Ok(info) => Ok(DebugImage {
            id: info.id,
            name: fat_name.clone(),
        }),
        Err(EngineError::NoSuchImage(_)) => {
            let moved = engine.image(fat_name).await.ok().map(|info| info.id);
            let hint = match moved {
                Some(other) => format!(
                    "{fat_name} now names another image ({}): --image {fat_name} debugs from \
                     it; or pass --image IMAGE with any image with a shell (`sh`)",
                    short_id(&other)
                ),
                None => "pull or rebuild it, or pass --image IMAGE: any image with a shell \
                         (`sh`)"
                    .to_owned(),
            };
            Err(UsageError::new(
                format!(
                    "the fat image of {} is not in the engine: {fat_name} ({}), which its slim \
                     image {} was made from",
                    target.name,
                    short_id(fat_id),
                    target.image
                ),
                hint,
            )
            .into())
        }
        Err(err) => Err(engine_failed("inspecting the fat image")(err)),
    }
}

/// The debug container: `image` in the target's namespaces (PID and network always, IPC when
/// the target's is shareable, UTS on Podman; Docker refuses to join a UTS namespace and gives
/// a container on another's network that one's host name), as the target's user with its
/// capabilities (the ptrace access check then lets it into `/proc/1/root`: same uid, no
/// capability the target lacks, so no SYS_PTRACE). With `--privileged-debug` it is root with
/// the engine's default capabilities, the target's added ones and SYS_PTRACE: what reading
/// any process's `/proc/PID/root` takes (another uid, more capabilities, not dumpable), and
/// what strace needs; not `--privileged` (the host's devices are no debugging need, and an
/// engine whose own capabilities are bounded refuses it). The engine's default seccomp and
/// AppArmor profiles apply: the target's own (slim's) profile would refuse a shell's calls.
fn debug_spec(
    kind: EngineKind,
    target: &ContainerInfo,
    image: &DebugImage,
    plan: &Plan,
    attach: Attach,
    root: &str,
) -> RunSpec {
    let join = format!("container:{}", target.id);
    let ipc = match target.ipc_mode.as_str() {
        "shareable" => Some(join.clone()),
        "host" => Some("host".to_owned()),
        // Podman joins any container's IPC namespace.
        _ if kind == EngineKind::Podman => Some(join.clone()),
        _ => None,
    };
    let enter = format!(
        "cd {root} 2>/dev/null || echo \"slim debug: cannot enter {root} (the container's \
         files): its processes run as another user or with capabilities this shell lacks; \
         --privileged-debug gets in\" >&2; "
    );
    let script = match &plan.shell {
        Shell::Interactive => {
            format!("{enter}command -v bash >/dev/null 2>&1 && exec bash; exec sh")
        }
        Shell::Exec(_) => format!("{enter}exec sh -c \"$1\""),
    };
    let mut cmd = vec!["-c".to_owned(), script, "slim-debug".to_owned()];
    if let Shell::Exec(command) = &plan.shell {
        cmd.push(command.clone());
    }
    let mut labels = crate::owner::Owner::current().labels();
    labels.insert(LABEL_DEBUG_TARGET.to_owned(), target.id.clone());
    let (user, privileged, cap_add, cap_drop) = match plan.privileged {
        true => {
            let mut cap_add = target.cap_add.clone();
            if !cap_add
                .iter()
                .any(|cap| is_cap(cap, "SYS_PTRACE") || is_cap(cap, "ALL"))
            {
                cap_add.push("SYS_PTRACE".to_owned());
            }
            (Some("0".to_owned()), target.privileged, cap_add, Vec::new())
        }
        false => (
            Some(target.user.clone()).filter(|user| !user.is_empty()),
            target.privileged,
            target.cap_add.clone(),
            target.cap_drop.clone(),
        ),
    };
    RunSpec {
        image: image.id.clone(),
        entrypoint: Some(vec!["sh".to_owned()]),
        cmd: Some(cmd),
        user,
        cap_add,
        cap_drop,
        privileged,
        network: Some(join.clone()),
        pid: Some(join.clone()),
        ipc,
        uts: (kind == EngineKind::Podman).then_some(join),
        labels,
        stdin: attach.stdin,
        tty: attach.tty,
        ..Default::default()
    }
}

/// Whether `cap` (`SYS_PTRACE`, or `CAP_SYS_PTRACE` as Podman writes it) is `name`.
fn is_cap(cap: &str, name: &str) -> bool {
    let cap = cap.to_ascii_uppercase();
    cap.strip_prefix("CAP_").unwrap_or(&cap) == name
}

/// A debug container that did not run: an image without a shell is bad input, anything else
/// the engine's failure.
fn start_failed(err: EngineError, image: &DebugImage) -> anyhow::Error {
    let no_shell = match &err {
        EngineError::Api {
            source: bollard::errors::Error::DockerResponseServerError { message, .. },
            ..
        } => {
            (message.contains("\"sh\"") || message.contains("`sh`"))
                && message.contains("not found")
        }
        _ => false,
    };
    match no_shell {
        true => UsageError::new(
            format!("the debug image {} has no shell (`sh`)", image.name),
            "pass --image IMAGE with one (busybox, or the image it was made from)",
        )
        .into(),
        false => engine_failed("running the debug container")(err),
    }
}

#[cfg(test)]
mod tests;
