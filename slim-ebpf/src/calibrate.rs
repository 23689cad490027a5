//! Calibration, for kernels without BTF: reads kernel memory for one user thread, so that user
//! space can find and check the struct offsets of the mount-namespace chain against values it
//! knows (its own namespace inodes). Loaded only while calibrating, then detached.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel_buf},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};

use crate::maps::{CALIBRATION, CALIBRATION_DATA};

/// At every syscall exit of the requesting thread, serves its pending read.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn slim_calibrate(_ctx: RawTracePointContext) -> i32 {
    let _ = try_calibrate();
    0
}

fn try_calibrate() -> Option<()> {
    let request = unsafe { &mut *CALIBRATION.get_ptr_mut(0)? };
    let tid = bpf_get_current_pid_tgid() as u32;
    if request.tid == 0 || request.tid != tid || request.served == request.seq {
        return None;
    }
    let data = unsafe { &mut *CALIBRATION_DATA.get_ptr_mut(0)? };
    let base = if request.from_task != 0 {
        unsafe { bpf_get_current_task() }
    } else {
        0
    };
    let source = base.wrapping_add(request.addr) as *const u8;
    let read = if request.len > 512 {
        unsafe { bpf_probe_read_kernel_buf(source, &mut data[..]) }
    } else {
        unsafe { bpf_probe_read_kernel_buf(source, &mut data[..512]) }
    };
    request.status = read.is_err() as u32;
    request.served = request.seq;
    Some(())
}
