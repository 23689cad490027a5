//! Decoding ring-buffer records into owned events.

use slim_common::{event_kind, op, EventHeader, PATH_CAP};

/// One record from the kernel side, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// One of `slim_common::event_kind`.
    pub kind: u32,
    pub pid: u32,
    pub tid: u32,
    /// The key of the task's mount namespace: its number, or for a namespace made while
    /// recording, a key of its own (`slim_common::namespace_key`) until the recorder names it.
    pub mntns: u32,
    /// The number (inode) of the task's mount namespace.
    pub inum: u32,
    /// Syscall number (PATH), child pid (FORK).
    pub aux: u32,
    /// One of `slim_common::op` (PATH).
    pub op: u8,
    pub second: bool,
    pub truncated: bool,
    /// `slim_common::phase` of the task: the runtime's set-up, or the app.
    pub phase: u8,
    pub dirfd: i64,
    pub flags: u64,
    pub ret: i64,
    pub path: Vec<u8>,
}

impl RawEvent {
    /// Decodes one record; `None` when it is shorter than its header says.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        const HEADER: usize = std::mem::size_of::<EventHeader>();
        if bytes.len() < HEADER {
            return None;
        }
        // SAFETY: the length is checked and EventHeader is plain old data of integers.
        let header: EventHeader =
            unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const EventHeader) };
        let len = (header.path_len as usize).min(PATH_CAP);
        let path = bytes.get(HEADER..HEADER + len)?;
        // Strings read with bpf_probe_read_*_str count their NUL.
        let path = match path.iter().position(|&b| b == 0) {
            Some(nul) => &path[..nul],
            None => path,
        };
        Some(Self {
            kind: header.kind,
            pid: header.pid,
            tid: header.tid,
            mntns: header.mntns,
            inum: header.inum,
            aux: header.aux,
            op: header.op,
            second: header.second != 0,
            truncated: header.truncated != 0,
            phase: header.phase,
            dirfd: header.dirfd,
            flags: header.flags,
            ret: header.ret,
            path: path.to_vec(),
        })
    }

    /// Whether the kernel side sends this event every time (it changes the base of relative
    /// paths: cwd or a directory fd) instead of once per (namespace, operation, outcome, path).
    /// Such events also start a new base generation. Mirrors `slim-ebpf/src/syscalls.rs`.
    pub fn changes_base(&self, dir_open_flags: u32) -> bool {
        self.kind == event_kind::PATH
            && (self.op == op::CHDIR
                || self.op == op::FCHDIR
                || (self.op == op::OPEN
                    && self.ret >= 0
                    && self.flags & dir_open_flags as u64 != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &[u8]) -> Vec<u8> {
        let header = EventHeader {
            kind: event_kind::PATH,
            pid: 7,
            tid: 8,
            op: op::OPEN,
            path_len: path.len() as u32,
            dirfd: -100,
            ret: 3,
            ..Default::default()
        };
        let mut bytes = vec![0u8; std::mem::size_of::<EventHeader>()];
        // SAFETY: sizes match.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr() as *mut EventHeader, header) };
        bytes.extend_from_slice(path);
        bytes
    }

    #[test]
    fn decodes_header_and_path_without_nul() {
        let event = RawEvent::decode(&record(b"/etc/hosts\0")).unwrap();
        assert_eq!(event.path, b"/etc/hosts");
        assert_eq!((event.pid, event.tid, event.ret), (7, 8, 3));
    }

    #[test]
    fn rejects_short_records() {
        let mut bytes = record(b"/etc/hosts\0");
        bytes.truncate(60);
        assert!(RawEvent::decode(&bytes).is_none());
        assert!(RawEvent::decode(&[0; 10]).is_none());
    }
}
