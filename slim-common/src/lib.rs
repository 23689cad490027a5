//! Records shared by the eBPF recorder (kernel side) and `slim` (user side).
//!
//! Everything here is `#[repr(C)]`, free of padding and checked for size at compile time, so both
//! sides agree on the layout byte for byte. Nothing here may depend on `std`.
#![no_std]

/// Bytes of a path the kernel side copies into one event (including the terminating NUL).
pub const PATH_CAP: usize = 512;

/// Highest syscall number (exclusive) the recorder tracks in its bitmap and operation table.
pub const MAX_SYSCALLS: usize = 512;

/// 64-bit words in one scope's syscall bitmap.
pub const SYSCALL_WORDS: usize = MAX_SYSCALLS / 64;

/// `dirfd` value meaning "relative to the current working directory".
pub const AT_FDCWD: i64 = -100;

/// What an event reports.
pub mod event_kind {
    /// A path-taking syscall returned (`op`, `dirfd`, `flags`, `ret`, `path`).
    pub const PATH: u32 = 1;
    /// A successful exec (`path` = the file the kernel executed).
    pub const EXEC: u32 = 2;
    /// A process was forked (`pid` = parent tgid, `aux` = child pid).
    pub const FORK: u32 = 3;
    /// A process exited (`pid` = its tgid).
    pub const EXIT: u32 = 4;
}

/// Operation of a path-taking syscall, as the table user space fills in names it.
pub mod op {
    pub const NONE: u8 = 0;
    /// open, openat, openat2, creat (`flags` carries the open flags).
    pub const OPEN: u8 = 1;
    /// execve, execveat (attempts, including failed PATH lookups).
    pub const EXEC: u8 = 2;
    /// stat family, statx.
    pub const STAT: u8 = 3;
    /// access family.
    pub const ACCESS: u8 = 4;
    /// readlink, readlinkat.
    pub const READLINK: u8 = 5;
    /// chdir (fchdir is reported with an empty path and the fd in `dirfd`).
    pub const CHDIR: u8 = 6;
    pub const MKDIR: u8 = 7;
    pub const UNLINK: u8 = 8;
    pub const RENAME: u8 = 9;
    pub const SYMLINK: u8 = 10;
    pub const LINK: u8 = 11;
    pub const FCHDIR: u8 = 12;
    /// bind(2) of an AF_UNIX socket to a path (the path argument is a `sockaddr_un`).
    pub const BIND: u8 = 13;
    /// connect(2) of an AF_UNIX socket to a path (the path argument is a `sockaddr_un`).
    pub const CONNECT: u8 = 14;
    /// mknod(2)/mknodat(2): a FIFO, socket or device node made at a path.
    pub const MKNOD: u8 = 15;
}

/// `sa_family` of a `sockaddr_un`; its path starts at [`SUN_PATH_OFFSET`].
pub const AF_UNIX: u16 = 1;
/// Offset of `sun_path` in `struct sockaddr_un` (after the 16-bit family).
pub const SUN_PATH_OFFSET: u64 = 2;

/// Where a syscall keeps its arguments: one entry per syscall number, filled by user space for
/// the running architecture. Argument indexes are 0..=5; `NO_ARG` means "absent".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallSpec {
    /// One of [`op`]; `op::NONE` for syscalls that take no path.
    pub op: u8,
    /// Index of the path argument.
    pub path_arg: u8,
    /// Index of the dirfd argument, or `NO_ARG` (then the path is relative to the cwd).
    pub dirfd_arg: u8,
    /// Index of the flags argument, or `NO_ARG`.
    pub flags_arg: u8,
    /// Index of a second path argument (rename, link), or `NO_ARG`.
    pub path2_arg: u8,
    /// Index of the second path's dirfd, or `NO_ARG`.
    pub dirfd2_arg: u8,
    /// Non-zero when `flags_arg` points at a `struct open_how` (openat2) instead of a value.
    pub flags_indirect: u8,
    /// Non-zero for creat(2): open flags are implied (O_CREAT|O_WRONLY|O_TRUNC).
    pub implied_write: u8,
}

/// Argument index meaning "this syscall has no such argument".
pub const NO_ARG: u8 = 0xff;

/// Recorder configuration, one element of the `CONFIG` array map, rewritten by user space while
/// the recorder runs (to lock onto a container's mount namespace once it is known).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// One of [`scope_mode`].
    pub mode: u32,
    /// Mount namespace of the host, never recorded in `scope_mode::NEW_MNTNS`.
    pub host_mntns: u32,
    /// Open flags that mark a directory open (O_DIRECTORY | O_PATH on this architecture):
    /// such opens are always reported, so user space can resolve later `*at()` calls.
    pub dir_open_flags: u32,
    /// Numbers of setns(2) and unshare(2): after them a task's cached mount namespace is re-read.
    pub setns_nr: u32,
    pub unshare_nr: u32,
    /// Bumped by user space on every scope change (by 1 << 16) and by the kernel side at every
    /// exec in scope (by 1), so per-CPU scope verdicts are recomputed.
    pub generation: u32,
    /// Numbers of socket(2) and socketpair(2): their domain and type are counted in `SOCKETS`.
    pub socket_nr: u32,
    pub socketpair_nr: u32,
    /// The same four calls in the 32-bit (compat) table (i386 on x86_64, arm on arm64), plus
    /// `MAX_SYSCALLS`: the kernel side numbers both tables in one space.
    pub compat_setns_nr: u32,
    pub compat_unshare_nr: u32,
    pub compat_socket_nr: u32,
    pub compat_socketpair_nr: u32,
    /// 1 where the return of an execve that loaded a 32-bit program still carries the 64-bit
    /// number (arm64); 0 where the kernel rewrites it to the compat execve (x86_64 sets
    /// `orig_ax = __NR_ia32_execve`).
    pub exec_return_native: u32,
    /// Numbers of clone(2) and clone3(2), native and compat (plus `MAX_SYSCALLS`), `u32::MAX`
    /// where the table has no such call: with `CLONE_NEWNS` they make a mount namespace, which
    /// the kernel side gives a [`namespace_key`] of its own.
    pub clone_nr: u32,
    pub clone3_nr: u32,
    pub compat_clone_nr: u32,
    pub compat_clone3_nr: u32,
    /// Non-zero while checks held out of the recording run: every task's phase then carries
    /// [`phase::HELD_OUT`].
    pub held_out: u32,
    /// socketcall(2) in the 32-bit table (i386) plus `MAX_SYSCALLS`, `u32::MAX` where there is
    /// none: 32-bit programs built for old kernels create their sockets through it.
    pub compat_socketcall_nr: u32,
}

/// One CPU's cache of the scope verdict for the task that last ran a syscall on it: deciding
/// takes map lookups and three pointer walks, and the same task usually makes the next syscall
/// too. Valid while the task, its tid and the config generation are unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MntnsCache {
    /// `task_struct` address (0: empty).
    pub task: u64,
    pub tid: u32,
    pub mntns: u32,
    pub generation: u32,
    /// Non-zero when the task is in scope.
    pub in_scope: u32,
    /// The task's [`phase`].
    pub phase: u32,
    /// Inode number of the task's mount namespace (`mntns` is its [`namespace_key`]).
    pub inum: u32,
}

/// Slots of the per-CPU [`MntnsCache`] (a power of two).
pub const MNTNS_CACHE_SLOTS: u32 = 8;

/// The [`MntnsCache`] slot of a task (its `task_struct` address).
#[inline(always)]
pub fn mntns_cache_slot(task: u64) -> u32 {
    (task.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as u32 & (MNTNS_CACHE_SLOTS - 1)
}

/// Which part of a container's life a syscall belongs to. The runtime (runc, crun) sets the
/// container up inside its namespaces before it execs the entrypoint; only what comes after the
/// exec is the app. A process is in the app phase once it, or the parent it was forked from, has
/// executed a program inside the scope.
pub mod phase {
    /// Before the process's first exec in the scope: the runtime's own set-up.
    pub const RUNTIME: u32 = 0;
    /// After it: the app (and `docker exec` commands, after their exec).
    pub const APP: u32 = 1;
    /// Added to the phase in a `SYSCALLS` key when the numbers are of the 32-bit (compat)
    /// table: a 32-bit task on a 64-bit kernel (i386 on x86_64, armhf on arm64).
    pub const COMPAT: u32 = 2;
    /// Added to every task's phase while user space runs checks held out of the recording
    /// ([`Config::held_out`](crate::Config::held_out)): what they make is seen, and kept apart.
    pub const HELD_OUT: u32 = 4;
}

/// ARM's private syscalls (`__ARM_NR_BASE` 0x0f0000 + 1..=5: breakpoint, cacheflush, usr26,
/// usr32, set_tls) are recorded at `ARM_PRIVATE_SLOT + (nr - 0x0f0000)`: past the 470 or so
/// numbers of the arm table, inside the bitmap.
pub const ARM_PRIVATE_BASE: u32 = 0x0f_0000;
pub const ARM_PRIVATE_SLOT: u32 = 504;

/// Key of the `SYSCALLS` bitmap hash: a mount namespace and a [`phase`] (plus `phase::COMPAT`,
/// plus an [`outcome`] shifted by [`OUTCOME_SHIFT`]).
#[inline(always)]
pub fn syscalls_key(mntns: u32, phase: u32) -> u64 {
    (phase as u64) << 32 | mntns as u64
}

/// Which of a scope's three syscall bitmaps a call is marked in. A call that only ever failed
/// (the app or a library probing for a feature: keyctl, userfaultfd, io_uring_setup...) need not
/// be allowed; one entered but never returned (blocked for the whole recording) must be.
pub mod outcome {
    /// Returned without an error.
    pub const SUCCEEDED: u32 = 0;
    /// Entered (marked before the call can block).
    pub const ENTERED: u32 = 1;
    /// Returned an error (-4095..=-1).
    pub const FAILED: u32 = 2;
    /// How many there are.
    pub const COUNT: usize = 3;
}

/// Where the [`outcome`] sits in the phase half of a [`syscalls_key`] (above [`phase::APP`],
/// [`phase::COMPAT`] and [`phase::HELD_OUT`]).
pub const OUTCOME_SHIFT: u32 = 3;

/// Key of the `ERRNOS` table: the first errno call `nr` failed with in a (namespace, phase),
/// `key` being its [`syscalls_key`] (with [`outcome::FAILED`]).
#[inline(always)]
pub fn errno_key(key: u64, nr: u32) -> u64 {
    key | (nr as u64 & 0xffff) << 48
}

/// `CLONE_NEWNS`: the flag of clone(2), clone3(2) and unshare(2) that makes a mount namespace.
pub const CLONE_NEWNS: u64 = 0x0002_0000;

/// The first inode number the kernel hands out to namespaces (`PROC_DYNAMIC_FIRST`): every
/// namespace's number is at or above it, every [`namespace_key`] below it.
pub const FIRST_NAMESPACE_INUM: u32 = 0xF000_0000;

/// The key the recorder files a mount namespace's events and syscalls under.
///
/// The kernel reuses a freed namespace's number at once (lowest free first), so a container that
/// ended while recording (another slim's, the engine's own) and the container being recorded can
/// share a number. A namespace made while recording (clone or unshare with [`CLONE_NEWNS`]) is
/// given a key of its own instead: the `count`-th made on `cpu`, unique for the recording and
/// below [`FIRST_NAMESPACE_INUM`], so it never equals a number. Namespaces older than the
/// recording keep their number as their key.
#[inline(always)]
pub const fn namespace_key(cpu: u32, count: u32) -> u32 {
    1 + (cpu % 3839) * (1 << 20) + (count & 0xF_FFFF)
}

/// Where a thread stands in making a mount namespace (values of the kernel side's `BIRTHS`).
pub mod birth {
    /// In unshare(`CLONE_NEWNS`): at its successful return, the thread's namespace is new.
    pub const UNSHARING: u32 = 1;
    /// In clone/clone3(`CLONE_NEWNS`): the child it forks is in a new namespace.
    pub const CLONING: u32 = 2;
    /// Forked into a new namespace, not yet looked at: its namespace is new.
    pub const NEWBORN: u32 = 3;
}

/// One CPU's syscall bitmaps for the first (mount namespace, phase) it saw (a plain array access
/// instead of a hash lookup on every syscall); others go to the `SYSCALLS` hash.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalSyscalls {
    pub mntns: u32,
    /// 0 while unused, else 1 + the [`phase`] of the bitmaps.
    pub used: u32,
    /// One bitmap per [`outcome`].
    pub words: [[u64; SYSCALL_WORDS]; outcome::COUNT],
}

/// Key of the `SOCKETS` table: sockets a scope created, by address family and type (the low
/// bits of socket(2)'s `type`, without SOCK_NONBLOCK/SOCK_CLOEXEC). Its value counts calls.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketKey {
    pub mntns: u32,
    pub phase: u32,
    pub family: u32,
    pub kind: u32,
}

/// How the recorder decides whether a task is in scope.
pub mod scope_mode {
    /// Only the tgids in `TRACKED_PIDS` (and their descendants, added on fork).
    pub const PIDS: u32 = 0;
    /// Tracked pids, plus every task in a mount namespace that is neither the host's nor in
    /// `IGNORED_MNTNS`: used to catch a container from its very first exec, before its
    /// namespace is known. Events carry the namespace; user space keeps the right one.
    pub const NEW_MNTNS: u32 = 1;
    /// Tracked pids, plus tasks in the mount namespaces of `SCOPE_MNTNS`.
    pub const MNTNS: u32 = 2;
    /// Only tracked pids: a mount-namespace recording paused (checks held out of it run).
    pub const PAUSED: u32 = 3;
}

/// Struct offsets the kernel side needs, resolved from the running kernel's BTF by user space
/// (Rust eBPF has no CO-RE). All zero means "unknown": mount namespaces are then not read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_nsproxy: u32,
    pub nsproxy_mnt_ns: u32,
    pub mnt_ns_inum: u32,
    pub valid: u32,
}

/// Size of one calibration read ([`CalibrationRequest`]): the most the kernel side copies at once.
pub const CALIBRATION_CHUNK: usize = 4096;

/// A kernel-memory read user space asks the calibration program for, to find
/// [`KernelOffsets`] on a kernel without BTF. The program serves it at the next syscall exit
/// of thread `tid` (the thread that wrote it), then sets `served = seq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalibrationRequest {
    /// Thread to serve; 0 serves nobody.
    pub tid: u32,
    /// Request number; the kernel side copies it to `served` once done.
    pub seq: u32,
    pub served: u32,
    /// 0 when the read succeeded.
    pub status: u32,
    /// Non-zero: `addr` is an offset into the serving thread's `task_struct`.
    pub from_task: u32,
    /// Bytes to read: up to 512 reads 512, more reads [`CALIBRATION_CHUNK`].
    pub len: u32,
    pub addr: u64,
}

/// Offsets of the tracepoint record fields the sched programs read, from tracefs `format` files
/// (they differ between kernel versions), set by user space at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointFields {
    /// `sched_process_exec`: `__data_loc char[] filename`.
    pub exec_filename: u32,
    /// `sched_process_fork`: `pid_t parent_pid`.
    pub fork_parent_pid: u32,
    /// `sched_process_fork`: `pid_t child_pid`.
    pub fork_child_pid: u32,
    pub _pad: u32,
}

impl TracepointFields {
    /// The layout of recent 6.x kernels; user space always overwrites it with the running one's.
    pub const DEFAULT: Self = Self {
        exec_filename: 8,
        fork_parent_pid: 12,
        fork_child_pid: 20,
        _pad: 0,
    };
}

/// Where a syscall's number and arguments live in `struct pt_regs` (the `sys_exit` raw
/// tracepoint hands over the task's registers): offsets from the running kernel's BTF, with the
/// architecture's fixed layout as the fallback.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegsLayout {
    /// x86_64 `orig_ax`, arm64 `syscallno`.
    pub nr: u32,
    /// Arguments 0..=5: x86_64 `di si dx r10 r8 r9`; arm64 `orig_x0` (x0 holds the return value
    /// at exit), then `regs[1..=5]`.
    pub args: [u32; 6],
    /// Arguments 0..=5 of a 32-bit (compat) task's syscall: i386 `bx cx dx si di bp`; arm
    /// `r0..r5` (the same slots as arm64's).
    pub compat_args: [u32; 6],
    /// The register telling a 32-bit task, and its test: `(reg & mask) == value`. x86_64: `cs`
    /// is `__USER32_CS` (0x23); arm64: `pstate` has PSR_MODE32_BIT (0x10). Mask 0, value 1: never.
    pub compat_at: u32,
    pub compat_mask: u32,
    pub compat_value: u32,
    /// The byte range of `struct pt_regs` holding the number and every argument, read with
    /// one copy: `window_start..window_start + window_len`.
    pub window_start: u32,
    pub window_len: u32,
}

/// Longest [`RegsLayout`] window the recorder copies (arm64's spans 280 bytes).
pub const REGS_WINDOW_CAP: usize = 320;

impl RegsLayout {
    /// x86_64's `struct pt_regs` (arch/x86/include/asm/ptrace.h).
    pub const X86_64: Self = Self::new(
        120,
        [112, 104, 96, 56, 72, 64],
        [40, 88, 96, 104, 112, 32],
        (136, 0xffff, 0x23),
    );
    /// arm64's `struct pt_regs` (arch/arm64/include/asm/ptrace.h).
    pub const AARCH64: Self = Self::new(
        280,
        [272, 8, 16, 24, 32, 40],
        [272, 8, 16, 24, 32, 40],
        (264, 0x10, 0x10),
    );

    /// The layout with its copy window computed from the offsets; `compat` is
    /// (offset, mask, value) of the 32-bit-task test.
    pub const fn new(
        nr: u32,
        args: [u32; 6],
        compat_args: [u32; 6],
        compat: (u32, u32, u32),
    ) -> Self {
        let mut start = nr;
        let mut end = nr + 8;
        if compat.1 != 0 {
            if compat.0 < start {
                start = compat.0;
            }
            if compat.0 + 8 > end {
                end = compat.0 + 8;
            }
        }
        let mut i = 0;
        while i < 12 {
            let at = if i < 6 { args[i] } else { compat_args[i - 6] };
            if at < start {
                start = at;
            }
            if at + 8 > end {
                end = at + 8;
            }
            i += 1;
        }
        Self {
            nr,
            args,
            compat_args,
            compat_at: compat.0,
            compat_mask: compat.1,
            compat_value: compat.2,
            window_start: start,
            window_len: end - start,
        }
    }
}

/// Indexes of the per-CPU `STATS` array.
pub mod stat {
    /// Events submitted to the ring buffer.
    pub const EVENTS: u32 = 0;
    /// Events lost because the ring buffer was full.
    pub const LOST: u32 = 1;
    /// Events suppressed because the same (scope, operation, path) was already reported.
    pub const DEDUPED: u32 = 2;
    /// Paths that did not fit in [`PATH_CAP`](crate::PATH_CAP) bytes and were cut.
    pub const TRUNCATED: u32 = 3;
    /// Paths that could not be read from user memory.
    pub const READ_FAILED: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// Header of every ring-buffer record. A `PATH` or `EXEC` record is followed by `path_len`
/// bytes of path (no NUL) inside the same fixed-size [`Event`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`event_kind`].
    pub kind: u32,
    /// Thread group id (process id) of the task.
    pub pid: u32,
    /// Thread id of the task.
    pub tid: u32,
    /// The [`namespace_key`] of the task's mount namespace (0 when offsets are unknown).
    pub mntns: u32,
    /// Syscall number (PATH), child pid (FORK), or 0.
    pub aux: u32,
    /// One of [`op`] for PATH events.
    pub op: u8,
    /// 1 when this is the second path of a two-path syscall (rename, link).
    pub second: u8,
    /// 1 when the path was cut at [`PATH_CAP`] bytes.
    pub truncated: u8,
    /// The task's [`phase`].
    pub phase: u8,
    /// Length of the path in bytes.
    pub path_len: u32,
    /// Inode number of the task's mount namespace (0 when offsets are unknown).
    pub inum: u32,
    /// dirfd argument (or `AT_FDCWD`), or the fd for fchdir.
    pub dirfd: i64,
    /// Open flags (or syscall-specific flags).
    pub flags: u64,
    /// Syscall return value.
    pub ret: i64,
}

/// One ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    pub header: EventHeader,
    pub path: [u8; PATH_CAP],
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 56);
const _: () = assert!(core::mem::size_of::<Event>() == 56 + PATH_CAP);
const _: () = assert!(core::mem::size_of::<SyscallSpec>() == 8);
const _: () = assert!(core::mem::size_of::<Config>() == 76);
const _: () = assert!(core::mem::size_of::<MntnsCache>() == 32);
const _: () =
    assert!(namespace_key(3838, u32::MAX) < FIRST_NAMESPACE_INUM && namespace_key(0, 0) != 0);
const _: () =
    assert!(core::mem::size_of::<LocalSyscalls>() == 8 + 8 * SYSCALL_WORDS * outcome::COUNT);
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 16);
const _: () = assert!(core::mem::size_of::<TracepointFields>() == 16);
const _: () = assert!(core::mem::size_of::<RegsLayout>() == 72);

/// Key of the in-kernel dedup table `SEEN`: a path already reported for this namespace and outcome.
/// Its value counts how many times it was seen; user space computes the same [`path_hash`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeenKey {
    pub mntns: u32,
    /// [`seen_op`]: operation, outcome, second path, phase.
    pub op: u32,
    pub hash: u64,
}

const _: () = assert!(core::mem::size_of::<SeenKey>() == 16);

/// Open flags that make an open a write: `O_WRONLY`/`O_RDWR`, `O_CREAT`, `O_TRUNC`.
pub const OPEN_WRITE_FLAGS: u64 = 0o1103;

/// [`SeenKey::op`] of an event: the operation, whether it succeeded, whether it is the second
/// path, the [`phase`] (what the runtime opened before the exec must not hide the app's own
/// later opens of the same path; what the recording saw must not hide what held-out checks
/// use, and the other way round), and for opens whether it writes (`flags`: a file read first
/// and written later is a written file).
#[inline(always)]
pub fn seen_op(op: u8, ok: bool, second: bool, phase: u8, flags: u64) -> u32 {
    let phase = phase as u32 & (phase::APP | phase::HELD_OUT);
    let writes = op == op::OPEN && flags & OPEN_WRITE_FLAGS != 0;
    op as u32 | (ok as u32) << 8 | (second as u32) << 9 | phase << 10 | (writes as u32) << 16
}
const _: () = assert!(core::mem::size_of::<SocketKey>() == 16);

/// Hash of a path for [`SeenKey`], computed the same way on both sides: 64-bit words of the path
/// (little-endian, the last one zero-padded) mixed multiplicatively, then finalized with the
/// length and murmur3's avalanche. Word-wise because the kernel side pays per loop iteration.
pub const PATH_HASH_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// One word of [`PATH_HASH_INIT`]'s hash.
#[inline(always)]
pub fn path_hash_step(hash: u64, word: u64) -> u64 {
    (hash ^ word).wrapping_mul(0x0100_0000_01b3).rotate_left(29)
}

/// Final step of the path hash.
#[inline(always)]
pub fn path_hash_finish(hash: u64, len: usize) -> u64 {
    let mut h = hash ^ len as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// What a relative path is relative to, mixed into its hash: the process, the dirfd, and the
/// process's "base generation", which goes up each time its cwd or a directory fd changes
/// (`BASE_GENERATION`). The same relative name under another base is a different path.
#[inline(always)]
pub fn relative_salt(pid: u32, dirfd: i64, generation: u64) -> u64 {
    ((pid as u64) << 32 | dirfd as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ generation.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
}

/// The path hash of `path`, salted with [`relative_salt`] for relative paths (user space; the
/// kernel side unrolls the same steps).
pub fn path_hash(path: &[u8], salt: u64) -> u64 {
    let mut hash = PATH_HASH_INIT;
    for chunk in path.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = path_hash_step(hash, u64::from_le_bytes(word));
    }
    path_hash_finish(hash ^ salt, path.len())
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], contain only integers and have no padding (sizes are
    // asserted above), so any bit pattern is a valid value.
    unsafe impl aya::Pod for super::SyscallSpec {}
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::CalibrationRequest {}
    unsafe impl aya::Pod for super::RegsLayout {}
    unsafe impl aya::Pod for super::LocalSyscalls {}
    unsafe impl aya::Pod for super::TracepointFields {}
    unsafe impl aya::Pod for super::SeenKey {}
    unsafe impl aya::Pod for super::SocketKey {}
}
