//! Deciding whether the current task belongs to the recorded scope.

use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_smp_processor_id, bpf_probe_read_kernel,
};
use slim_common::{birth, mntns_cache_slot, namespace_key, phase, scope_mode};

use crate::maps::{
    offsets, APP_PIDS, BIRTHS, CONFIG, IGNORED_MNTNS, KEYS_MADE, MNTNS_CACHE, NS_KEYS, SCOPE_MNTNS,
    TRACKED_PIDS,
};

/// The current task, when it is in scope.
#[derive(Clone, Copy)]
pub struct Task {
    pub pid: u32,
    pub tid: u32,
    /// The [`namespace_key`] of its mount namespace: what its events and syscalls are filed under.
    pub mntns: u32,
    /// The inode number of its mount namespace.
    pub inum: u32,
    /// `slim_common::phase` of the process.
    pub phase: u32,
}

/// Mount namespace inode of the current task: task->nsproxy->mnt_ns->ns.inum, 0 if unknown.
#[inline(always)]
fn read_mntns(task: u64) -> u32 {
    let off = offsets();
    if off.valid == 0 {
        return 0;
    }
    unsafe {
        let task = task as *const u8;
        let nsproxy: *const u8 =
            match bpf_probe_read_kernel(task.add(off.task_nsproxy as usize) as *const *const u8) {
                Ok(p) if !p.is_null() => p,
                _ => return 0,
            };
        let mnt_ns: *const u8 = match bpf_probe_read_kernel(
            nsproxy.add(off.nsproxy_mnt_ns as usize) as *const *const u8,
        ) {
            Ok(p) if !p.is_null() => p,
            _ => return 0,
        };
        bpf_probe_read_kernel(mnt_ns.add(off.mnt_ns_inum as usize) as *const u32).unwrap_or(0)
    }
}

/// The key of mount namespace `inum` as the thread `tid` sees it now; `sys_exit` is the return
/// value when this is the thread's syscall return. A namespace the thread has just made (an
/// unshare that succeeded, or a clone child's first look) gets a key of its own, replacing that
/// of an earlier namespace with the same number.
#[inline(always)]
fn key_of(inum: u32, tid: u32, sys_exit: Option<i64>) -> u32 {
    if inum == 0 {
        return 0;
    }
    if let Some(&stage) = unsafe { BIRTHS.get(&tid) } {
        let made = match (stage, sys_exit) {
            (birth::NEWBORN, _) => true,
            (birth::UNSHARING, Some(ret)) => ret == 0,
            // The parent's own return from clone: its child was the one looked at.
            (_, Some(_)) => false,
            // Not the call's return yet (a signal's exit): wait for it.
            (_, None) => return known_key(inum),
        };
        let _ = BIRTHS.remove(&tid);
        if made {
            if let Some(count) = KEYS_MADE.get_ptr_mut(0) {
                let key = unsafe {
                    *count = (*count).wrapping_add(1);
                    namespace_key(bpf_get_smp_processor_id(), *count)
                };
                let _ = NS_KEYS.insert(&inum, &key, 0);
                return key;
            }
        }
    }
    known_key(inum)
}

/// The key of namespace `inum`: the one given when it was made while recording, else its number.
#[inline(always)]
fn known_key(inum: u32) -> u32 {
    unsafe { NS_KEYS.get(&inum) }.copied().unwrap_or(inum)
}

/// The current task if it is in scope.
#[inline(always)]
pub fn current_in_scope() -> Option<Task> {
    evaluate(false, None)
}

/// [`current_in_scope`], recomputed (mount namespace re-read) when `refresh` is set: after
/// setns/unshare a task may have moved in or out of scope.
#[inline(always)]
pub fn current_in_scope_refresh(refresh: bool) -> Option<Task> {
    evaluate(refresh, None)
}

/// [`current_in_scope`] at the return of a syscall that returned `ret`.
#[inline(always)]
pub fn current_in_scope_at_exit(ret: i64) -> Option<Task> {
    evaluate(false, Some(ret))
}

#[inline(always)]
fn evaluate(refresh: bool, sys_exit: Option<i64>) -> Option<Task> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    let task = unsafe { bpf_get_current_task() };
    let config = CONFIG.get(0)?;
    let cache = unsafe { &mut *MNTNS_CACHE.get_ptr_mut(mntns_cache_slot(task))? };
    if !refresh && cache.task == task && cache.tid == tid && cache.generation == config.generation {
        return (cache.in_scope != 0).then_some(Task {
            pid,
            tid,
            mntns: cache.mntns,
            inum: cache.inum,
            phase: cache.phase,
        });
    }
    let tracked = unsafe { TRACKED_PIDS.get(&pid) }.is_some();
    let (inum, wanted) = if config.mode == scope_mode::PIDS && !tracked {
        (0, false)
    } else {
        let mntns = read_mntns(task);
        let wanted = tracked
            || match config.mode {
                scope_mode::NEW_MNTNS => {
                    mntns != 0
                        && mntns != config.host_mntns
                        && unsafe { IGNORED_MNTNS.get(&mntns) }.is_none()
                }
                scope_mode::MNTNS => unsafe { SCOPE_MNTNS.get(&mntns) }.is_some(),
                _ => false,
            };
        (mntns, wanted)
    };
    let mntns = key_of(inum, tid, sys_exit);
    let phase = if wanted && unsafe { APP_PIDS.get(&pid) }.is_some() {
        phase::APP
    } else {
        phase::RUNTIME
    };
    // Checks held out of the recording: seen, and filed apart.
    let phase = phase | (config.held_out != 0) as u32 * phase::HELD_OUT;
    cache.task = task;
    cache.tid = tid;
    cache.mntns = mntns;
    cache.inum = inum;
    cache.generation = config.generation;
    cache.in_scope = wanted as u32;
    cache.phase = phase;
    wanted.then_some(Task {
        pid,
        tid,
        mntns,
        inum,
        phase,
    })
}

/// Drops this CPU's cached verdict (the current task changed namespaces).
#[inline(always)]
pub fn forget_current() {
    let task = unsafe { bpf_get_current_task() };
    if let Some(cache) = MNTNS_CACHE.get_ptr_mut(mntns_cache_slot(task)) {
        unsafe { (*cache).task = 0 };
    }
}
