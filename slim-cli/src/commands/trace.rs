//! `slim trace`: record a host command's process tree, or a running container, and print what it
//! touched.

use std::{
    ffi::OsString,
    io::Write as _,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::{CommandExt as _, ExitStatusExt as _},
    },
    path::PathBuf,
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::{
    cli::TraceArgs,
    recording::{Filter, HostFiles, Recording},
    tracer::{Recorder, Scope},
};

use super::UsageError;

pub fn run(args: TraceArgs) -> Result<ExitCode> {
    if let Some(container) = &args.container {
        return super::trace_container::run(container, &args);
    }
    if args.command.is_empty() {
        return Err(UsageError::new(
            "nothing to trace",
            "give a command after `--` (slim trace -- python3 -c 'import json') or --container ID",
        )
        .into());
    }
    let started = Instant::now();
    let mut recorder = Recorder::start(Scope::Pids)?;
    let status = run_tracked(&mut recorder, &args.command)?;
    let raw = recorder.finish()?;
    let elapsed = started.elapsed();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut recording = Recording::build(&raw, &Filter::command(cwd));
    recording.add_interpreters(&HostFiles { root: "/".into() });

    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let command: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.json {
        print_json(&recording, json!({"command": command, "exit_code": code}))?;
    } else {
        eprintln!(
            "traced `{}` (exit {code}) in {:.2}s",
            command.join(" "),
            elapsed.as_secs_f64()
        );
        print_table(&recording, args.missing)?;
    }
    warn_if_incomplete(&recording);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Warns on stderr when the recording lost events: it must never look complete.
pub fn warn_if_incomplete(recording: &Recording) {
    let lost = recording.stats.lost;
    if lost > 0 {
        tracing::warn!("{lost} events were lost (ring buffer full): this recording is incomplete");
    }
}

/// Runs `command` with its pid tracked before it executes anything, and waits for it.
///
/// The child announces its pid over a pipe and waits for a go-ahead before `exec`; `spawn`
/// blocks until that exec, so it runs on its own thread.
fn run_tracked(recorder: &mut Recorder, command: &[OsString]) -> Result<std::process::ExitStatus> {
    let (pid_read, pid_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    let (pid_fd, go_fd) = (pid_write.as_raw_fd(), go_read.as_raw_fd());
    // SAFETY: the closure only calls async-signal-safe functions (signal, getpid, write, read).
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(pid_fd, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return Err(std::io::Error::last_os_error());
            }
            let mut go = [0u8; 1];
            if libc::read(go_fd, go.as_mut_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::other("slim did not start recording"));
            }
            Ok(())
        });
    }
    // While the command runs, Ctrl-C is for the command: slim waits for it and then reports.
    // SAFETY: changing a signal disposition; restored below.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let spawner = std::thread::spawn(move || {
        let child = cmd.spawn();
        drop(pid_write);
        drop(go_read);
        child
    });
    let mut pid = [0u8; 4];
    let announced = read_exact(&pid_read, &mut pid);
    if announced {
        recorder.track_pid(u32::from_ne_bytes(pid))?;
        let mut go = std::fs::File::from(go_write);
        let _ = go.write_all(b"g");
    } else {
        drop(go_write);
    }
    let child = spawner.join().expect("spawner thread panicked");
    let status = match child {
        Ok(mut child) => child.wait().context("waiting for the traced command"),
        Err(err) => Err(UsageError::new(
            format!("cannot run `{}`: {err}", command[0].to_string_lossy()),
            "check the command name and that it is on PATH",
        )
        .into()),
    };
    // SAFETY: restores the disposition saved above.
    unsafe { libc::signal(libc::SIGINT, previous) };
    status
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    let mut file = std::fs::File::from(fd.try_clone().expect("dup"));
    std::io::Read::read_exact(&mut file, buf).is_ok()
}

/// The recording as JSON on stdout, with `head` fields first.
pub fn print_json(recording: &Recording, head: serde_json::Value) -> Result<()> {
    let paths: Vec<_> = recording
        .paths
        .iter()
        .map(|(path, t)| {
            json!({
                "path": path.to_string_lossy(),
                "found": t.found(),
                "uses": t.ok,
                "failed": t.failed,
                "count": t.count,
            })
        })
        .collect();
    let mut out = head;
    let extra = json!({
        "arch": recording.arch.map(|a| a.to_string()),
        "paths": paths,
        "execs": recording.execs.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "syscalls": recording.syscall_names(),
        "recorder": {
            "events": recording.stats.events,
            "lost": recording.stats.lost,
            "deduped": recording.stats.deduped,
            "truncated": recording.stats.truncated,
            "read_failed": recording.stats.read_failed,
            "unresolved": recording.unresolved,
            "complete": recording.stats.lost == 0,
        },
    });
    if let (Some(out), serde_json::Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}

/// The recording as a table on stdout: uses, count, path; then the syscall names.
pub fn print_table(recording: &Recording, missing: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let found: Vec<_> = recording.paths.iter().filter(|(_, t)| t.found()).collect();
    let not_found = recording.paths.len() - found.len();
    writeln!(
        out,
        "PATHS ({} found, {not_found} looked up but missing{})",
        found.len(),
        if missing || not_found == 0 {
            ""
        } else {
            ": --missing lists them"
        }
    )?;
    let uses = |set: &std::collections::BTreeSet<crate::recording::Use>| {
        set.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
    };
    for (path, touched) in &found {
        writeln!(
            out,
            "  {:<24} {:>6}  {}",
            uses(&touched.ok),
            touched.count,
            path.display()
        )?;
    }
    if missing {
        writeln!(out, "MISSING")?;
        for (path, touched) in recording.paths.iter().filter(|(_, t)| !t.found()) {
            writeln!(
                out,
                "  {:<24} {:>6}  {}",
                uses(&touched.failed),
                touched.count,
                path.display()
            )?;
        }
    }
    let names = recording.syscall_names();
    let arch = recording.arch.map(|a| a.to_string()).unwrap_or_default();
    writeln!(out, "SYSCALLS ({arch}, {})", names.len())?;
    for chunk in names.chunks(8) {
        writeln!(out, "  {}", chunk.join(" "))?;
    }
    let s = &recording.stats;
    writeln!(
        out,
        "RECORDER  {} events, {} lost, {} repeats folded in the kernel{}",
        s.events,
        s.lost,
        s.deduped,
        if recording.unresolved > 0 {
            format!(
                ", {} relative paths with an unknown base",
                recording.unresolved
            )
        } else {
            String::new()
        }
    )?;
    Ok(())
}
