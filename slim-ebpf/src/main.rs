//! slim's recorder: eBPF programs that watch one scope (a process tree or a container's mount
//! namespace) and report every path it names, every exec, fork and exit, and the set of syscall
//! numbers it uses. Only tracepoints are used (fentry, LSM and kprobes are often unavailable).
//!
//! User space owns every decision that depends on the architecture or the kernel build: the
//! syscall table (`SYSCALL_SPECS`), struct offsets (`OFFSETS`, from BTF or calibrated by `calibrate`) and tracepoint field
//! offsets (`FIELDS`, from tracefs format files).
#![no_std]
#![no_main]

mod calibrate;
mod emit;
mod maps;
mod sched;
mod scope;
mod syscalls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
