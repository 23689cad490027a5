//! Maps shared by the programs, and the globals user space fills in at load time.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use slim_common::{
    CalibrationRequest, Config, Event, KernelOffsets, LocalSyscalls, MntnsCache, RegsLayout,
    SeenKey, SocketKey, SyscallSpec, TracepointFields, CALIBRATION_CHUNK, MAX_SYSCALLS,
    REGS_WINDOW_CAP, SYSCALL_WORDS,
};

/// Ring buffer of [`Event`] records (variable length: header + path bytes).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Per-CPU counters, indexed by `slim_common::stat`.
#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(slim_common::stat::COUNT, 0);

/// Element 0: the current [`Config`].
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Process ids in scope, whatever their namespace; children are added on fork.
#[map]
pub static TRACKED_PIDS: HashMap<u32, u32> = HashMap::with_max_entries(32768, 0);

/// Mount namespaces in scope (mode `MNTNS`).
#[map]
pub static SCOPE_MNTNS: HashMap<u32, u32> = HashMap::with_max_entries(64, 0);

/// Mount namespaces that existed before recording started (mode `NEW_MNTNS`).
#[map]
pub static IGNORED_MNTNS: HashMap<u32, u32> = HashMap::with_max_entries(8192, 0);

/// Mount namespace number -> the [`slim_common::namespace_key`] of the latest namespace with
/// that number made while recording (absent: the namespace is older than the recording, and its
/// number is its key).
#[map]
pub static NS_KEYS: HashMap<u32, u32> = HashMap::with_max_entries(8192, 0);

/// Thread id -> where it stands in making a mount namespace (`slim_common::birth`).
#[map]
pub static BIRTHS: HashMap<u32, u32> = HashMap::with_max_entries(4096, 0);

/// Per CPU: how many mount namespace keys it has handed out.
#[map]
pub static KEYS_MADE: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// What each syscall number of the running architecture does with paths; from `MAX_SYSCALLS` on,
/// the same for its 32-bit (compat) table: i386 on x86_64, arm on arm64.
#[map]
pub static SYSCALL_SPECS: Array<SyscallSpec> = Array::with_max_entries(2 * MAX_SYSCALLS as u32, 0);

/// Syscall numbers used, one bitmap per (mount namespace, phase) (`slim_common::syscalls_key`;
/// per CPU: no atomics needed).
#[map]
pub static SYSCALLS: PerCpuHashMap<u64, [u64; SYSCALL_WORDS]> =
    PerCpuHashMap::with_max_entries(1024, 0);

/// The first errno each call failed with, per (namespace, phase) (`slim_common::errno_key`).
#[map]
pub static ERRNOS: HashMap<u64, u32> = HashMap::with_max_entries(8192, 0);

/// Processes in the app phase (`slim_common::phase::APP`): they, or the parent they were forked
/// from, executed a program in scope.
#[map]
pub static APP_PIDS: HashMap<u32, u32> = HashMap::with_max_entries(32768, 0);

/// Sockets created in scope, by (namespace, phase, family, type) -> calls.
#[map]
pub static SOCKETS: HashMap<SocketKey, u32> = HashMap::with_max_entries(1024, 0);

/// Per process: how many times its cwd or one of its directory fds changed (see
/// `slim_common::relative_salt`). Missing means 0.
#[map]
pub static BASE_GENERATION: HashMap<u32, u64> = HashMap::with_max_entries(32768, 0);

/// Per CPU: the scope verdicts of the tasks that last made syscalls there, a few slots indexed
/// by a hash of the task (a server and its load generator take turns on each CPU).
#[map]
pub static MNTNS_CACHE: PerCpuArray<MntnsCache> =
    PerCpuArray::with_max_entries(slim_common::MNTNS_CACHE_SLOTS, 0);

/// Per CPU: the syscall bitmap of the first namespace seen there.
#[map]
pub static LOCAL_SYSCALLS: PerCpuArray<LocalSyscalls> = PerCpuArray::with_max_entries(1, 0);

/// (namespace, operation, outcome, path hash) already reported -> times seen.
#[map]
/// A plain hash (an LRU insert costs far more): when it is full, new paths are simply sent
/// every time, which user space folds anyway.
pub static SEEN: HashMap<SeenKey, u32> = HashMap::with_max_entries(131072, 0);

/// Per CPU: the thread whose exec this CPU saw last, until its next syscall return (the
/// execve's own, still a 64-bit call when a 32-bit program was loaded).
#[map]
pub static EXEC_TID: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: the copy of the syscall's `pt_regs` window (number and arguments).
#[map]
pub static REGS_COPY: PerCpuArray<[u8; REGS_WINDOW_CAP]> = PerCpuArray::with_max_entries(1, 0);

/// Scratch space for the event being built (too large for the 512-byte BPF stack).
#[map]
pub static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

/// Element 0: the pending [`CalibrationRequest`] (calibration only).
#[map]
pub static CALIBRATION: Array<CalibrationRequest> = Array::with_max_entries(1, 0);

/// Element 0: the bytes the last calibration read returned.
#[map]
pub static CALIBRATION_DATA: Array<[u8; CALIBRATION_CHUNK]> = Array::with_max_entries(1, 0);

/// Struct offsets of the running kernel (from BTF, or calibrated).
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = KernelOffsets {
    task_nsproxy: 0,
    nsproxy_mnt_ns: 0,
    mnt_ns_inum: 0,
    valid: 0,
};

/// Where syscall numbers and arguments sit in `struct pt_regs`, from BTF.
#[unsafe(no_mangle)]
pub static REGS: RegsLayout = RegsLayout::X86_64;

/// Tracepoint field offsets, read from tracefs `format` files by user space.
#[unsafe(no_mangle)]
pub static FIELDS: TracepointFields = TracepointFields::DEFAULT;

/// Reads a global as the loader patched it (volatile: never constant-folded).
#[inline(always)]
pub fn offsets() -> KernelOffsets {
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

#[inline(always)]
pub fn regs_layout() -> RegsLayout {
    unsafe { core::ptr::read_volatile(&REGS) }
}

#[inline(always)]
pub fn fields() -> TracepointFields {
    unsafe { core::ptr::read_volatile(&FIELDS) }
}

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(stat: u32) {
    if let Some(counter) = STATS.get_ptr_mut(stat) {
        unsafe { *counter += 1 };
    }
}
