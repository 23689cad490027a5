//! `slim trace --container ID`: record a running container, by its mount namespace, until
//! Ctrl-C or until it stops.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Result;
use serde_json::json;

use crate::{
    cli::TraceArgs,
    engine::Engine,
    recording::{Filter, HostFiles, Recording},
    tracer::{mount_namespace, Recorder, Scope},
};

use super::output::{print_json, print_table, warn_if_incomplete};

pub fn run(name: &str, args: &TraceArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(record(name, args))
}

async fn record(name: &str, args: &TraceArgs) -> Result<ExitCode> {
    // Ctrl-C is handled from here on: once "recording" is printed, it stops the recording.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let console = crate::commands::build::Console { quiet: false };
    let engine = Engine::connect().await?;
    crate::commands::prune::reap_at_start(&engine, console).await;
    let container = engine.running_container(name).await?;
    let mntns = mount_namespace(&container.pid.to_string())?;
    let recorder = Recorder::start(Scope::MountNamespaces(vec![mntns]))?;
    console.say(format!(
        "recording container {} (pid {}): Ctrl-C to stop",
        crate::commands::xray::short_id(&container.id),
        container.pid
    ));
    let proc_dir = PathBuf::from(format!("/proc/{}", container.pid));
    let stopped = async {
        while proc_dir.exists() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let progress = async {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            tracing::info!("{} events so far", recorder.events_received());
        }
    };
    let reason = tokio::select! {
        _ = interrupt.recv() => "interrupted",
        _ = stopped => "container stopped",
        _ = progress => unreachable!("the progress loop never ends"),
    };
    // Executables are read through the container's root while it still runs.
    let files = HostFiles {
        root: proc_dir.join("root"),
    };
    let raw = recorder.finish()?;
    let mut recording = Recording::build(
        &raw,
        &Filter::running_container(mntns, container.working_dir.clone()),
    );
    recording.add_interpreters(&files);
    if args.json {
        print_json(
            &recording,
            json!({"container": container.id, "mount_namespace": mntns, "stopped_by": reason}),
        )?;
    } else {
        console.say(format!("stopped: {reason}"));
        print_table(&recording, args.missing)?;
    }
    warn_if_incomplete(&recording);
    Ok(ExitCode::SUCCESS)
}
