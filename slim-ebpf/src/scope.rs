//! Deciding whether the current task belongs to the recorded scope.

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel};
use slim_common::scope_mode;

use crate::maps::{offsets, CONFIG, IGNORED_MNTNS, MNTNS_CACHE, SCOPE_MNTNS, TRACKED_PIDS};

/// The current task, when it is in scope.
#[derive(Clone, Copy)]
pub struct Task {
    pub pid: u32,
    pub tid: u32,
    pub mntns: u32,
}

/// Mount namespace of the current task, from this CPU's cache when the same task (same
/// `task_struct`, same tid) asked last; `refresh` re-reads it (after setns/unshare).
#[inline(always)]
pub fn current_mntns_cached(tid: u32, refresh: bool) -> u32 {
    let task = unsafe { bpf_get_current_task() };
    let Some(cache) = MNTNS_CACHE.get_ptr_mut(0) else {
        return read_mntns(task);
    };
    let cache = unsafe { &mut *cache };
    if !refresh && cache.task == task && cache.tid == tid {
        return cache.mntns;
    }
    let mntns = read_mntns(task);
    cache.task = task;
    cache.tid = tid;
    cache.mntns = mntns;
    mntns
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

/// The current task if it is in scope.
#[inline(always)]
pub fn current_in_scope() -> Option<Task> {
    current_in_scope_refresh(false)
}

/// [`current_in_scope`], re-reading the mount namespace when `refresh` is set.
#[inline(always)]
pub fn current_in_scope_refresh(refresh: bool) -> Option<Task> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    let config = CONFIG.get(0)?;
    let tracked = unsafe { TRACKED_PIDS.get(&pid) }.is_some();
    if config.mode == scope_mode::PIDS && !tracked {
        return None;
    }
    let mntns = current_mntns_cached(tid, refresh);
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
    wanted.then_some(Task { pid, tid, mntns })
}
