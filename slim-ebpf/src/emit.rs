//! Building events in per-CPU scratch space, deduplicating them and sending them to user space.

use aya_ebpf::helpers::{bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes};
use slim_common::{
    path_hash_finish, path_hash_step, seen_op, stat, Event, EventHeader, SeenKey, PATH_CAP,
    PATH_HASH_INIT,
};

use crate::{
    maps::{bump, EVENTS, SCRATCH, SEEN},
    scope::Task,
};

/// `BPF_RB_NO_WAKEUP`.
const BPF_RB_NO_WAKEUP: u64 = 1;

const HEADER_LEN: usize = core::mem::size_of::<EventHeader>();

/// Where the path string lives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    User,
    Kernel,
}

/// The scratch event of this CPU, header filled in, path empty.
#[inline(always)]
pub fn scratch(task: &Task, kind: u32) -> Option<&'static mut Event> {
    let event = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
    // Zeroed with volatile word stores: plain zeroing becomes a memset, which BPF cannot call.
    let words = &mut event.header as *mut EventHeader as *mut u64;
    for i in 0..HEADER_LEN / 8 {
        unsafe { core::ptr::write_volatile(words.add(i), 0) };
    }
    let header = &mut event.header;
    header.kind = kind;
    header.pid = task.pid;
    header.tid = task.tid;
    header.mntns = task.mntns;
    header.inum = task.inum;
    header.phase = task.phase as u8;
    Some(event)
}

/// Copies the NUL-terminated string at `src` into the event's path; false if it cannot be read.
#[inline(always)]
pub fn read_path(event: &mut Event, src: *const u8, source: Source) -> bool {
    let read = unsafe {
        match source {
            Source::User => bpf_probe_read_user_str_bytes(src, &mut event.path),
            Source::Kernel => bpf_probe_read_kernel_str_bytes(src, &mut event.path),
        }
    };
    match read {
        Ok(bytes) => {
            let len = bytes.len();
            event.header.path_len = len as u32;
            if len >= PATH_CAP - 1 {
                event.header.truncated = 1;
                bump(stat::TRUNCATED);
            }
            true
        }
        Err(_) => {
            bump(stat::READ_FAILED);
            false
        }
    }
}

/// [`slim_common::path_hash`] of the event's path, a word at a time. Bytes past the path in the
/// scratch buffer are stale, so the last word is masked.
#[inline(always)]
fn path_hash(event: &Event, salt: u64) -> u64 {
    let len = event.header.path_len as usize;
    let words = len.div_ceil(8);
    let mut hash = PATH_HASH_INIT;
    let mut i = 0;
    while i < PATH_CAP / 8 {
        if i >= words {
            break;
        }
        let mut word =
            unsafe { core::ptr::read_unaligned(event.path.as_ptr().add(i * 8) as *const u64) };
        let tail = len - i * 8;
        if tail < 8 {
            word &= (1u64 << (tail * 8)) - 1;
        }
        hash = path_hash_step(hash, u64::from_le(word));
        i += 1;
    }
    path_hash_finish(hash ^ salt, len)
}

/// Sends the event unless the same (namespace, operation, outcome, path) was already sent;
/// `salt` (0 for absolute paths) says what a relative path is relative to.
#[inline(always)]
pub fn submit_deduplicated(event: &Event, salt: u64) {
    let header = &event.header;
    let key = SeenKey {
        mntns: header.mntns,
        op: seen_op(
            header.op,
            header.ret >= 0,
            header.second != 0,
            header.phase,
            header.flags,
        ),
        hash: path_hash(event, salt),
    };
    if let Some(count) = SEEN.get_ptr_mut(&key) {
        unsafe { *count = (*count).wrapping_add(1) };
        bump(stat::DEDUPED);
        return;
    }
    if submit(event) {
        let _ = SEEN.insert(&key, &1, 0);
    }
}

/// Sends the event (header and `path_len` path bytes); counts it as lost if the ring is full.
#[inline(always)]
pub fn submit(event: &Event) -> bool {
    let len = event.header.path_len as usize;
    let len = if len > PATH_CAP { PATH_CAP } else { len };
    let bytes = unsafe {
        core::slice::from_raw_parts(
            event as *const Event as *const u8,
            core::mem::size_of::<Event>(),
        )
    };
    let Some(record) = bytes.get(..HEADER_LEN + len) else {
        return false;
    };
    // No wake-up per record: user space polls on a short timer and drains in batches.
    match EVENTS.output::<[u8]>(record, BPF_RB_NO_WAKEUP) {
        Ok(()) => {
            bump(stat::EVENTS);
            true
        }
        Err(_) => {
            bump(stat::LOST);
            false
        }
    }
}
