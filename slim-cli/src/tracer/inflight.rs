//! The syscalls the tasks of a mount namespace are blocked in right now, read from
//! `/proc/PID/task/TID/syscall`. A call entered before the recorder attached (nothing slim
//! starts does that) or made by a thread that never came back from it is the reason: the
//! recorder marks calls at entry too, and this is the check that nothing in flight is missed.
//!
//! It reads /proc only; it knows nothing of eBPF or containers.

use std::{collections::BTreeSet, fs, io::Read as _, os::unix::fs::MetadataExt as _};

/// Calls in flight in one namespace: native numbers, and those of 32-bit tasks (compat table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    pub native: BTreeSet<u32>,
    pub compat: BTreeSet<u32>,
    /// Processes of the namespace whose threads were read.
    pub processes: usize,
}

/// The first field of a `syscall` file: the number of the call the task is blocked in, or
/// nothing when it runs (`running`) or is not in a call (`-1 ...`).
pub fn parse_syscall_line(line: &str) -> Option<u32> {
    line.split_whitespace().next()?.parse::<u32>().ok()
}

/// Whether the program a process runs is a 32-bit ELF (its numbers are the compat table's).
fn is_32bit(pid: &str) -> bool {
    // /proc/PID/exe opens the file the process runs, wherever it is: no path is resolved.
    let mut head = [0u8; 5];
    fs::File::open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head[..4] == *b"\x7fELF" && head[4] == 1)
}

/// Adds what the threads of process `pid` are blocked in.
fn add_process(pid: &str, found: &mut InFlight) {
    found.processes += 1;
    let compat = is_32bit(pid);
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.filter_map(|e| e.ok()) {
        let Ok(line) = fs::read_to_string(task.path().join("syscall")) else {
            continue;
        };
        if let Some(nr) = parse_syscall_line(&line) {
            if compat {
                found.compat.insert(nr);
            } else {
                found.native.insert(nr);
            }
        }
    }
}

/// Reads what every task of every process in mount namespace `mntns` is blocked in.
pub fn in_flight(mntns: u32) -> InFlight {
    let mut found = InFlight::default();
    for pid in process_ids() {
        let in_ns =
            fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| m.ino() as u32 == mntns);
        if !in_ns {
            continue;
        }
        add_process(&pid, &mut found);
    }
    found
}

/// The ids of the processes alive now, as their directories in /proc name them (none when
/// /proc cannot be read).
pub fn process_ids() -> impl Iterator<Item = String> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines_give_the_blocked_call_only() {
        assert_eq!(
            parse_syscall_line("7 0x7ffd 0x1 0xffffffff 0x0 0x0 0x0 0x7ffd5a 0x7f12\n"),
            Some(7)
        );
        assert_eq!(parse_syscall_line("running\n"), None);
        assert_eq!(parse_syscall_line("-1 0x7ffd 0x7f12\n"), None);
        assert_eq!(parse_syscall_line(""), None);
    }

    #[test]
    fn a_thread_blocked_in_a_pipe_read_is_found() {
        // A child of this test blocks in read(2) on a pipe nobody writes.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let read_nr = crate::syscalls::Arch::host().and_then(|a| a.number("read"));
        let mut seen = false;
        for _ in 0..100 {
            let mut found = InFlight::default();
            add_process(&child.id().to_string(), &mut found);
            if found.native.iter().any(|nr| Some(*nr) == read_nr) {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen, "read({read_nr:?}) of a blocked child not found");
    }
}
