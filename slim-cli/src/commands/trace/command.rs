//! `slim trace -- CMD`: run a command with its pid tracked from before its first exec, and
//! record its process tree.

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

use super::output::{print_json, print_table, warn_if_incomplete};
use crate::commands::UsageError;

pub fn run(args: &TraceArgs) -> Result<ExitCode> {
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
        crate::commands::build::Console { quiet: false }.say(format!(
            "traced `{}` (exit {code}) in {:.2}s",
            command.join(" "),
            elapsed.as_secs_f64()
        ));
        print_table(&recording, args.missing)?;
    }
    warn_if_incomplete(&recording);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
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
