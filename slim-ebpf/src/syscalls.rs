//! `raw_syscalls:sys_enter` and `sys_exit` as raw tracepoints. At entry a syscall is marked in
//! the scope's bitmap (so calls that never return while recording count); at its return it is
//! marked again (an execve returns in the app phase) and, for path-taking syscalls, reads the arguments from the
//! task's saved registers and the path from user memory (which the syscall has faulted in by
//! now). No state is kept between entry and exit, so nothing can be lost in between.
//!
//! Syscalls that never return (exit, exit_group) are marked at entry, and added by user space
//! for every recorded namespace too.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel_buf, bpf_probe_read_user},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use slim_common::{
    birth, errno_key, event_kind, op, outcome, phase, relative_salt, syscalls_key, RegsLayout,
    SocketKey, SyscallSpec, ARM_PRIVATE_BASE, ARM_PRIVATE_SLOT, AT_FDCWD, CLONE_NEWNS,
    MAX_SYSCALLS, NO_ARG, OUTCOME_SHIFT, REGS_WINDOW_CAP, SYSCALL_WORDS,
};

use crate::{
    emit::{read_path, scratch, submit, submit_deduplicated, Source},
    maps::{
        regs_layout, BASE_GENERATION, BIRTHS, CONFIG, ERRNOS, EXEC_TID, LOCAL_SYSCALLS, REGS_COPY,
        SOCKETS, SYSCALLS, SYSCALL_SPECS,
    },
    scope::{current_in_scope, current_in_scope_at_exit, Task},
};

#[inline(always)]
fn dir_open_flags() -> u32 {
    CONFIG.get(0).map(|c| c.dir_open_flags).unwrap_or(0)
}

/// `sys_exit(struct pt_regs *regs, long ret)`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn slim_sys_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_exit(&ctx);
    0
}

const ZERO_WORDS: [u64; SYSCALL_WORDS] = [0; SYSCALL_WORDS];

/// The syscall's registers: its number and its six arguments.
struct Call {
    nr: u32,
    args: [u64; 6],
}

/// `sys_enter(struct pt_regs *regs, long id)`: marks the syscall when it is entered, so a call
/// that blocks for the whole recording (an init's signal wait, an event loop's poll, an accept
/// that never returns) is in the set too. Paths are still read at exit.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn slim_sys_enter(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_enter(&ctx);
    // After the scope verdict above, so that this thread's next look is a fresh one.
    let _ = note_namespace_call(&ctx);
    0
}

fn try_sys_enter(ctx: &RawTracePointContext) -> Option<()> {
    let task = current_in_scope()?;
    let call = decode(ctx.arg(0), task.tid, false)?;
    mark_syscall(&task, call.nr, call.compat, outcome::ENTERED);
    Some(())
}

/// Notes a thread entering unshare, clone or clone3 with `CLONE_NEWNS`, in scope or not, so the
/// namespace it makes gets a key of its own ([`slim_common::namespace_key`]): its number may be
/// that of a namespace that ended while recording.
fn note_namespace_call(ctx: &RawTracePointContext) -> Option<()> {
    let config = CONFIG.get(0)?;
    // The raw number, compat-numbered for a 32-bit task: a cheap test for every call.
    let id: i64 = ctx.arg(1);
    let id = id as u32;
    let compat_id = id.wrapping_add(MAX_SYSCALLS as u32);
    let unshare = [config.unshare_nr, config.compat_unshare_nr];
    let clone = [config.clone_nr, config.compat_clone_nr];
    let clone3 = [config.clone3_nr, config.compat_clone3_nr];
    let candidate = |[native, compat]: [u32; 2]| id == native || compat_id == compat;
    if !candidate(unshare) && !candidate(clone) && !candidate(clone3) {
        return None;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    let call = decode(ctx.arg(0), tid, false)?;
    let nr = call.any_nr();
    let is = |[native, compat]: [u32; 2]| nr == native || nr == compat;
    let flags = if is(clone3) {
        // clone3(struct clone_args *args, size_t size): the flags are its first field.
        unsafe { bpf_probe_read_user(call.arg(0) as *const u64) }.ok()?
    } else if is(unshare) || is(clone) {
        call.arg(0)
    } else {
        return None;
    };
    if flags & CLONE_NEWNS == 0 {
        return None;
    }
    let stage = if is(unshare) {
        birth::UNSHARING
    } else {
        birth::CLONING
    };
    BIRTHS.insert(&tid, &stage, 0).ok()?;
    // Every CPU's cached verdict for this thread is dropped, so its return is looked at anew.
    if let Some(config) = CONFIG.get_ptr_mut(0) {
        unsafe { (*config).generation = (*config).generation.wrapping_add(1) };
    }
    Some(())
}

/// The current syscall as its saved registers tell it: number, table and arguments.
struct Decoded<'a> {
    copy: &'a [u8; REGS_WINDOW_CAP],
    layout: RegsLayout,
    len: usize,
    /// The number (ARM private calls moved to their slots), below `MAX_SYSCALLS`.
    nr: u32,
    /// 1 for a 32-bit task's call (the compat table), else 0.
    compat: u32,
    width: u64,
}

impl Decoded<'_> {
    #[inline(always)]
    fn word(&self, offset: u32) -> u64 {
        let at = offset.wrapping_sub(self.layout.window_start) as usize;
        match self.copy.get(at..at + 8) {
            Some(bytes) if at + 8 <= self.len => unsafe {
                core::ptr::read_unaligned(bytes.as_ptr() as *const u64)
            },
            _ => 0,
        }
    }

    /// Argument `i` (0..=5) from the native or the compat registers.
    #[inline(always)]
    fn arg(&self, i: usize) -> u64 {
        let native = self.layout.args[i];
        let offset = native.wrapping_add(
            self.compat
                .wrapping_mul(self.layout.compat_args[i].wrapping_sub(native)),
        );
        self.word(offset) & self.width
    }

    /// The number in both tables' space: compat ones from `MAX_SYSCALLS` on.
    #[inline(always)]
    fn any_nr(&self) -> u32 {
        self.nr + self.compat * MAX_SYSCALLS as u32
    }
}

/// Copies the registers the syscall's number and arguments live in and decodes them. `at_exit`:
/// the return of an execve that loaded a 32-bit program still carries the 64-bit number.
#[inline(always)]
fn decode<'a>(regs: *const u8, tid: u32, at_exit: bool) -> Option<Decoded<'a>> {
    let layout = regs_layout();
    let copy = unsafe { &mut *REGS_COPY.get_ptr_mut(0)? };
    let len = layout.window_len as usize;
    if !(8..=REGS_WINDOW_CAP).contains(&len) {
        return None;
    }
    unsafe { bpf_probe_read_kernel_buf(regs.add(layout.window_start as usize), &mut copy[..len]) }
        .ok()?;
    let mut call = Decoded {
        copy,
        layout,
        len,
        nr: 0,
        compat: 0,
        width: u64::MAX,
    };
    // A 32-bit task (i386 on x86_64, armhf on arm64): its numbers are the compat table's and
    // its arguments 32-bit values in other registers. Computed without branches (0 or 1), so
    // the verifier does not walk the rest of the program twice.
    let test =
        (call.word(layout.compat_at) & layout.compat_mask as u64) ^ layout.compat_value as u64;
    let mut compat = ((test | test.wrapping_neg()) >> 63) ^ 1;
    // The return of an execve that loaded a 32-bit program: on arm64 its number is still the
    // 64-bit execve's (x86_64 rewrites it to the 32-bit one itself).
    if at_exit {
        if let Some(exec_tid) = EXEC_TID.get_ptr_mut(0) {
            let other = (unsafe { *exec_tid } ^ tid) as u64;
            let exec_return = ((other | other.wrapping_neg()) >> 63) ^ 1;
            let native = CONFIG.get(0).map_or(0, |c| c.exec_return_native as u64 & 1);
            compat &= (exec_return & native) ^ 1;
            unsafe { *exec_tid = 0 };
        }
    }
    let width = u64::MAX >> (compat * 32);
    let mut nr = call.word(layout.nr) & width;
    // ARM's private calls (set_tls...) go to their slot; no 64-bit table has such numbers.
    let private = nr.wrapping_sub(ARM_PRIVATE_BASE as u64);
    if private < 8 {
        nr = ARM_PRIVATE_SLOT as u64 + private;
    }
    if nr >= MAX_SYSCALLS as u64 {
        return None;
    }
    call.nr = nr as u32;
    call.compat = compat as u32;
    call.width = width;
    Some(call)
}

fn try_sys_exit(ctx: &RawTracePointContext) -> Option<()> {
    // Scope first: most syscalls on the host are not ours, and the verdict is cached per CPU.
    // A task that setns()/unshare()s into scope is re-evaluated at its next exec.
    let ret: i64 = ctx.arg(1);
    let task = current_in_scope_at_exit(ret)?;
    let decoded = decode(ctx.arg(0), task.tid, true)?;
    let (nr, compat, any_nr) = (decoded.nr, decoded.compat, decoded.any_nr());
    let arg_word = |i: usize| decoded.arg(i);
    if any_nr == setns_or_unshare(any_nr) {
        // It may have left the scope: decide again at its next syscall.
        crate::scope::forget_current();
    }
    mark_return(&task, nr, compat, ret);
    if ret >= 0 && any_nr == socket_or_socketpair(any_nr) {
        count_socket(&task, arg_word(0), arg_word(1));
        return None;
    }
    if ret >= 0 && any_nr == compat_socketcall(any_nr) {
        // socketcall(call, args): SYS_SOCKET (1) and SYS_SOCKETPAIR (8) take the family and
        // type as the first two 32-bit words of `args`.
        let call = arg_word(0) as u32;
        if call == 1 || call == 8 {
            let args = arg_word(1);
            let read = |at: u64| unsafe {
                aya_ebpf::helpers::bpf_probe_read_user(at as *const u32).unwrap_or(0)
            };
            count_socket(&task, read(args) as u64, read(args + 4) as u64);
        }
        return None;
    }
    let spec = *SYSCALL_SPECS.get(any_nr)?;
    if spec.op == op::NONE {
        return None;
    }
    // A successful exec replaced the memory the path pointed into; the sched_process_exec
    // event reports the executed file instead.
    if spec.op == op::EXEC && ret == 0 {
        return None;
    }
    // Built from six computed values (a zeroed array would need memset, which BPF lacks).
    let read = |i: usize| -> u64 {
        if !used(&spec, i as u8) {
            return 0;
        }
        arg_word(i)
    };
    let call = Call {
        nr,
        args: [read(0), read(1), read(2), read(3), read(4), read(5)],
    };
    emit_path(&task, &spec, &call, ret, false);
    if spec.path2_arg != NO_ARG {
        emit_path(&task, &spec, &call, ret, true);
    }
    Some(())
}

/// `nr` (both tables' space: compat numbers from `MAX_SYSCALLS` on) when it is setns or
/// unshare, else a value no syscall has.
#[inline(always)]
fn setns_or_unshare(nr: u32) -> u32 {
    match CONFIG.get(0) {
        Some(c)
            if nr == c.setns_nr
                || nr == c.unshare_nr
                || nr == c.compat_setns_nr
                || nr == c.compat_unshare_nr =>
        {
            nr
        }
        _ => u32::MAX,
    }
}

/// `nr` (both tables' space) when it is socket or socketpair, else a value no syscall has.
#[inline(always)]
fn socket_or_socketpair(nr: u32) -> u32 {
    match CONFIG.get(0) {
        Some(c)
            if nr == c.socket_nr
                || nr == c.socketpair_nr
                || nr == c.compat_socket_nr
                || nr == c.compat_socketpair_nr =>
        {
            nr
        }
        _ => u32::MAX,
    }
}

/// `nr` (both tables' space) when it is the 32-bit socketcall, else a value no syscall has.
#[inline(always)]
fn compat_socketcall(nr: u32) -> u32 {
    match CONFIG.get(0) {
        Some(c) if nr == c.compat_socketcall_nr => nr,
        _ => u32::MAX,
    }
}

/// Counts a created socket by family and type (SOCK_NONBLOCK and SOCK_CLOEXEC masked off).
fn count_socket(task: &Task, family: u64, kind: u64) {
    let key = SocketKey {
        mntns: task.mntns,
        phase: task.phase,
        family: family as u32,
        kind: kind as u32 & 0xf,
    };
    match SOCKETS.get_ptr_mut(&key) {
        Some(count) => unsafe { *count += 1 },
        None => {
            let _ = SOCKETS.insert(&key, &1, 0);
        }
    }
}

/// Whether the recorder needs argument `index` of a syscall with this spec.
#[inline(always)]
fn used(spec: &SyscallSpec, index: u8) -> bool {
    spec.path_arg == index
        || spec.dirfd_arg == index
        || spec.flags_arg == index
        || spec.path2_arg == index
        || spec.dirfd2_arg == index
        || (spec.op == op::FCHDIR && index == 0)
}

/// Marks `nr` in the [`outcome`] bitmap of the task's (namespace, phase), `compat` (0 or 1)
/// telling the 32-bit table's bitmaps. True when the bit was not set before.
fn mark_syscall(task: &Task, nr: u32, compat: u32, outcome: u32) -> bool {
    let mntns = task.mntns;
    let phase = task.phase + compat * phase::COMPAT;
    let used = 1 + phase;
    let (index, bit) = ((nr / 64) as usize, 1u64 << (nr % 64));
    if let Some(local) = LOCAL_SYSCALLS.get_ptr_mut(0) {
        let local = unsafe { &mut *local };
        if local.used == 0 {
            local.used = used;
            local.mntns = mntns;
        }
        if local.mntns == mntns && local.used == used {
            if let Some(word) = local
                .words
                .get_mut(outcome as usize)
                .and_then(|words| words.get_mut(index))
            {
                let new = *word & bit == 0;
                *word |= bit;
                return new;
            }
            return false;
        }
    }
    let key = syscalls_key(mntns, phase | outcome << OUTCOME_SHIFT);
    let words = match SYSCALLS.get_ptr_mut(&key) {
        Some(words) => words,
        None => {
            SYSCALLS.insert(&key, &ZERO_WORDS, 0).ok();
            match SYSCALLS.get_ptr_mut(&key) {
                Some(words) => words,
                None => return false,
            }
        }
    };
    let words = unsafe { &mut *words };
    match words.get_mut(index) {
        Some(word) => {
            let new = *word & bit == 0;
            *word |= bit;
            new
        }
        None => false,
    }
}

/// Marks the return of `nr` as a success or a failure; the first failure of a call in a
/// (namespace, phase) also keeps its errno, which the profile answers if it never succeeds.
#[inline(always)]
fn mark_return(task: &Task, nr: u32, compat: u32, ret: i64) {
    // One call site for both outcomes (computed without a branch): the verifier walks the
    // marking once, not once per outcome.
    let failed = ((ret as u64).wrapping_add(4095) < 4095) as u32;
    let new = mark_syscall(task, nr, compat, failed * outcome::FAILED);
    if failed != 0 && new {
        let phase = task.phase + compat * phase::COMPAT;
        let key = syscalls_key(task.mntns, phase | outcome::FAILED << OUTCOME_SHIFT);
        // BPF_NOEXIST: the first errno stays.
        let _ = ERRNOS.insert(&errno_key(key, nr), &(-ret as u32), 1);
    }
}

#[inline(always)]
fn arg(call: &Call, index: u8) -> Option<u64> {
    call.args.get(index as usize).copied()
}

fn emit_path(task: &Task, spec: &SyscallSpec, call: &Call, ret: i64, second: bool) {
    let Some(event) = scratch(task, event_kind::PATH) else {
        return;
    };
    let (path_arg, dirfd_arg) = if second {
        (spec.path2_arg, spec.dirfd2_arg)
    } else {
        (spec.path_arg, spec.dirfd_arg)
    };
    let header = &mut event.header;
    header.aux = call.nr;
    header.op = spec.op;
    header.second = second as u8;
    header.ret = ret;
    header.dirfd = match arg(call, dirfd_arg) {
        Some(fd) => fd as i32 as i64,
        None => AT_FDCWD,
    };
    header.flags = match arg(call, spec.flags_arg) {
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
        header.dirfd = arg(call, 0).unwrap_or(0) as i32 as i64;
        if ret == 0 {
            next_generation(task.pid);
        }
        submit(event);
        return;
    }
    let Some(mut ptr) = arg(call, path_arg) else {
        return;
    };
    if spec.op == op::BIND || spec.op == op::CONNECT {
        // A socket address: only AF_UNIX ones name a path (abstract names start with a NUL,
        // which reads as an empty path and is dropped below). `flags` holds the address
        // length: no longer than the family means no path (autobind).
        if header.flags <= slim_common::SUN_PATH_OFFSET {
            return;
        }
        let family =
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(ptr as *const u16) }.unwrap_or(0);
        if family != slim_common::AF_UNIX {
            return;
        }
        ptr += slim_common::SUN_PATH_OFFSET;
    }
    let socket = spec.op == op::BIND || spec.op == op::CONNECT;
    if !read_path(event, ptr as *const u8, Source::User) || (socket && event.header.path_len == 0) {
        return;
    }
    // Directory changes and directory opens feed state user space tracks (cwd, fd table): they
    // are always sent, and they start a new base generation for the process. Everything else is
    // sent once per outcome; a relative path once per base it is relative to.
    let ok = event.header.ret >= 0;
    let dir_open = spec.op == op::OPEN && ok && event.header.flags & dir_open_flags() as u64 != 0;
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
        let generation = unsafe { BASE_GENERATION.get(&task.pid) }
            .copied()
            .unwrap_or(0);
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
