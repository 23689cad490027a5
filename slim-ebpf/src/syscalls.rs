//! `raw_syscalls:sys_enter` / `sys_exit`: the syscall bitmap, and path-taking syscalls (the
//! arguments are saved at entry and the strings read at exit, when the kernel has faulted them in).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use slim_common::{
    event_kind, op, relative_salt, PendingCall, SyscallSpec, AT_FDCWD, MAX_SYSCALLS, NO_ARG,
    SYSCALL_WORDS,
};

use crate::{
    emit::{read_path, scratch, submit, submit_deduplicated, Source},
    maps::{fields, BASE_GENERATION, CONFIG, PENDING, SYSCALLS, SYSCALL_SPECS},
    scope::{current_in_scope, Task},
};

#[inline(always)]
fn dir_open_flags() -> u32 {
    CONFIG.get(0).map(|c| c.dir_open_flags).unwrap_or(0)
}

#[tracepoint]
pub fn slim_sys_enter(ctx: TracePointContext) -> u32 {
    let _ = try_sys_enter(&ctx);
    0
}

#[tracepoint]
pub fn slim_sys_exit(ctx: TracePointContext) -> u32 {
    let _ = try_sys_exit(&ctx);
    0
}

const ZERO_WORDS: [u64; SYSCALL_WORDS] = [0; SYSCALL_WORDS];

fn try_sys_enter(ctx: &TracePointContext) -> Option<()> {
    let task = current_in_scope()?;
    let f = fields();
    let nr: i64 = unsafe { ctx.read_at(f.enter_id as usize) }.ok()?;
    if nr < 0 || nr >= MAX_SYSCALLS as i64 {
        return None;
    }
    let nr = nr as u32;
    mark_syscall(task.mntns, nr);
    let spec = SYSCALL_SPECS.get(nr)?;
    if spec.op == op::NONE {
        return None;
    }
    let args: [u64; 6] = unsafe { ctx.read_at(f.enter_args as usize) }.ok()?;
    let pending = PendingCall {
        nr,
        mntns: task.mntns,
        args,
    };
    PENDING.insert(&task.tid, &pending, 0).ok()
}

fn mark_syscall(mntns: u32, nr: u32) {
    let words = match SYSCALLS.get_ptr_mut(&mntns) {
        Some(words) => words,
        None => {
            SYSCALLS.insert(&mntns, &ZERO_WORDS, 0).ok();
            match SYSCALLS.get_ptr_mut(&mntns) {
                Some(words) => words,
                None => return,
            }
        }
    };
    let words = unsafe { &mut *words };
    if let Some(word) = words.get_mut((nr / 64) as usize) {
        *word |= 1u64 << (nr % 64);
    }
}

fn try_sys_exit(ctx: &TracePointContext) -> Option<()> {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let pending = *unsafe { PENDING.get(&tid) }?;
    let _ = PENDING.remove(&tid);
    let ret: i64 = unsafe { ctx.read_at(fields().exit_ret as usize) }.ok()?;
    let spec = *SYSCALL_SPECS.get(pending.nr)?;
    // A successful exec replaced the memory the path pointer pointed into; the
    // sched_process_exec event reports the executed file instead.
    if spec.op == op::EXEC && ret == 0 {
        return None;
    }
    let task = Task {
        pid: (pid_tgid >> 32) as u32,
        tid,
        mntns: pending.mntns,
    };
    emit_path(&task, &spec, &pending, ret, false);
    if spec.path2_arg != NO_ARG {
        emit_path(&task, &spec, &pending, ret, true);
    }
    Some(())
}

#[inline(always)]
fn arg(pending: &PendingCall, index: u8) -> Option<u64> {
    pending.args.get(index as usize).copied()
}

fn emit_path(task: &Task, spec: &SyscallSpec, pending: &PendingCall, ret: i64, second: bool) {
    let Some(event) = scratch(task, event_kind::PATH) else {
        return;
    };
    let (path_arg, dirfd_arg) = if second {
        (spec.path2_arg, spec.dirfd2_arg)
    } else {
        (spec.path_arg, spec.dirfd_arg)
    };
    let header = &mut event.header;
    header.aux = pending.nr;
    header.op = spec.op;
    header.second = second as u8;
    header.ret = ret;
    header.dirfd = match arg(pending, dirfd_arg) {
        Some(fd) => fd as i32 as i64,
        None => AT_FDCWD,
    };
    header.flags = match arg(pending, spec.flags_arg) {
        Some(value) if spec.flags_indirect != 0 => {
            // openat2: the flags are the first field of struct open_how.
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(value as *const u64) }.unwrap_or(0)
        }
        Some(value) => value,
        None if spec.implied_write != 0 => 0o1101, // O_WRONLY | O_CREAT | O_TRUNC
        None => 0,
    };
    if spec.op == op::FCHDIR {
        // fchdir(fd): no path; the fd is the first argument.
        header.dirfd = arg(pending, 0).unwrap_or(0) as i32 as i64;
        if ret == 0 {
            next_generation(task.pid);
        }
        submit(event);
        return;
    }
    let Some(ptr) = arg(pending, path_arg) else {
        return;
    };
    if !read_path(event, ptr as *const u8, Source::User) {
        return;
    }
    // Directory changes and directory opens feed state user space tracks (cwd, fd table): they
    // are always sent, and they start a new base generation for the process. Everything else is
    // sent once per outcome; a relative path once per base it is relative to.
    let ok = event.header.ret >= 0;
    let dir_open =
        spec.op == op::OPEN && ok && event.header.flags & dir_open_flags() as u64 != 0;
    if spec.op == op::CHDIR || dir_open {
        if ok {
            next_generation(task.pid);
        }
        submit(event);
        return;
    }
    let salt = if event.path[0] == b'/' {
        0
    } else {
        let generation = unsafe { BASE_GENERATION.get(&task.pid) }.copied().unwrap_or(0);
        relative_salt(task.pid, event.header.dirfd, generation)
    };
    submit_deduplicated(event, salt);
}

fn next_generation(pid: u32) {
    match BASE_GENERATION.get_ptr_mut(&pid) {
        Some(generation) => unsafe { *generation += 1 },
        None => {
            let _ = BASE_GENERATION.insert(&pid, &1, 0);
        }
    }
}
