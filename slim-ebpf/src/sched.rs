//! `sched:sched_process_exec`, `sched_process_fork` and `sched_process_exit`: following the
//! process tree and recording the files the kernel itself executes.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
    EbpfContext as _,
};
use slim_common::{birth, event_kind, phase};

use crate::{
    emit::{read_path, scratch, submit, Source},
    maps::{fields, APP_PIDS, BASE_GENERATION, BIRTHS, CONFIG, EXEC_TID, TRACKED_PIDS},
    scope::{current_in_scope, current_in_scope_refresh},
};

#[tracepoint]
pub fn slim_sched_exec(ctx: TracePointContext) -> u32 {
    let _ = try_exec(&ctx);
    0
}

#[tracepoint]
pub fn slim_sched_fork(ctx: TracePointContext) -> u32 {
    let _ = try_fork(&ctx);
    0
}

#[tracepoint]
pub fn slim_sched_exit(_ctx: TracePointContext) -> u32 {
    let _ = try_exit();
    0
}

fn try_exec(ctx: &TracePointContext) -> Option<()> {
    // Re-decided at every exec: `docker exec` enters the container's namespaces with setns()
    // and then execs the command, so it is caught from its first program on.
    let task = current_in_scope_refresh(true)?;
    // The execve's own return comes next, with the registers of the new program's mode: it
    // is still a 64-bit call even when a 32-bit program was loaded.
    if let Some(exec_tid) = EXEC_TID.get_ptr_mut(0) {
        unsafe { *exec_tid = task.tid };
    }
    if task.phase & phase::APP == 0 {
        // From here on this process is the app, not the runtime setting it up. Every CPU may
        // hold a verdict for this task from before the exec (it migrates), so the generation
        // moves on: all cached verdicts are decided again, reading APP_PIDS (inserted first).
        let _ = APP_PIDS.insert(&task.pid, &1, 0);
        if let Some(config) = CONFIG.get_ptr_mut(0) {
            unsafe { (*config).generation = (*config).generation.wrapping_add(1) };
        }
    }
    let event = scratch(&task, event_kind::EXEC)?;
    // __data_loc: offset of the string in the record in the low 16 bits.
    let loc: u32 = unsafe { ctx.read_at(fields().exec_filename as usize) }.ok()?;
    let filename = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    if read_path(event, filename, Source::Kernel) {
        submit(event);
    }
    Some(())
}

fn try_fork(ctx: &TracePointContext) -> Option<()> {
    let f = fields();
    let child: i32 = unsafe { ctx.read_at(f.fork_child_pid as usize) }.ok()?;
    let child = child as u32;
    // Any task, in scope or not: a clone with CLONE_NEWNS (the parent noted it at the call's
    // entry) puts the child in a new namespace, which gets a key of its own at its first look.
    let parent = bpf_get_current_pid_tgid() as u32;
    if unsafe { BIRTHS.get(&parent) } == Some(&birth::CLONING) {
        let _ = BIRTHS.insert(&child, &birth::NEWBORN, 0);
    }
    let task = current_in_scope()?;
    if unsafe { TRACKED_PIDS.get(&task.pid) }.is_some() {
        let _ = TRACKED_PIDS.insert(&child, &1, 0);
    }
    if task.phase & phase::APP != 0 {
        let _ = APP_PIDS.insert(&child, &1, 0);
    }
    let event = scratch(&task, event_kind::FORK)?;
    event.header.aux = child;
    submit(event);
    Some(())
}

fn try_exit() -> Option<()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let pid = (pid_tgid >> 32) as u32;
    if tid != pid {
        // A thread killed inside unshare or clone never returns from it.
        let _ = BIRTHS.remove(&tid);
        // A thread: forget it in case it was added on clone; the process lives on.
        let _ = TRACKED_PIDS.remove(&tid);
        let _ = APP_PIDS.remove(&tid);
        return None;
    }
    let task = current_in_scope();
    let _ = BIRTHS.remove(&tid);
    let task = task?;
    let _ = TRACKED_PIDS.remove(&pid);
    let _ = APP_PIDS.remove(&pid);
    let _ = BASE_GENERATION.remove(&pid);
    let event = scratch(&task, event_kind::EXIT)?;
    submit(event);
    Some(())
}
