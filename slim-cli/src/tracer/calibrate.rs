//! The mount-namespace chain (`task_struct -> nsproxy -> mnt_ns -> ns.inum`) on kernels without
//! BTF, and a check of it on every kernel: the kernel side reads memory for one thread of slim
//! (`slim-ebpf`'s `calibrate`), and user space looks for the chain that leads to the inode of
//! that thread's own mount namespace (`/proc/thread-self/ns/mnt`). A chain counts only if it
//! also leads to the thread's next namespace after `unshare(CLONE_NEWNS)`: a wrong offset would
//! have to hit two different inodes by chance. Offsets from BTF go through the same check, so a
//! BTF file of another kernel is refused rather than recording garbage.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    time::{Duration, Instant},
};

use aya::{
    maps::{Array, MapData},
    programs::RawTracePoint,
    Ebpf,
};
use slim_common::{CalibrationRequest, KernelOffsets, CALIBRATION_CHUNK};

/// Bytes of `task_struct` searched for the `nsproxy` pointer (it sits in the first few KiB on
/// every kernel since 4.x; the struct is 6-14 KiB).
const TASK_SCAN: u64 = 16 * 1024;
/// Bytes of `struct nsproxy` searched for the `mnt_ns` pointer (a refcount and 8 pointers).
const NSPROXY_SCAN: usize = 128;
/// Bytes of `struct mnt_namespace` searched for `ns.inum`.
const MNT_NS_SCAN: usize = 512;

/// Why the offsets could not be found or confirmed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("loading the calibration program failed")]
    Load(#[source] aya::EbpfError),
    #[error("attaching the calibration program failed")]
    Attach(#[source] aya::programs::ProgramError),
    #[error("calibration map {0} is missing")]
    Map(&'static str),
    #[error("cannot read this thread's mount namespace")]
    Namespace(#[source] std::io::Error),
    #[error("cannot enter a new mount namespace to check the offsets (unshare)")]
    Unshare(#[source] std::io::Error),
    #[error("the kernel side served no read (is the sys_exit raw tracepoint firing?)")]
    NoReads,
    #[error("no task_struct -> nsproxy -> mnt_ns -> ns.inum chain of this kernel leads to slim's own mount namespace")]
    NotFound,
    #[error("the offsets (task_struct.nsproxy {task_nsproxy}, nsproxy.mnt_ns {nsproxy_mnt_ns}, mnt_namespace.ns.inum {mnt_ns_inum}) do not lead to slim's own mount namespace on this kernel")]
    Mismatch {
        task_nsproxy: u32,
        nsproxy_mnt_ns: u32,
        mnt_ns_inum: u32,
    },
    #[error("the calibration thread panicked")]
    Thread,
}

/// Where a read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An offset into the reading thread's own `task_struct`.
    Task(u64),
    /// A kernel address.
    Kernel(u64),
}

/// Kernel memory as seen by one thread.
pub trait KernelMemory {
    /// `len` (at most [`CALIBRATION_CHUNK`]) bytes at `at`, `None` if they cannot be read.
    fn read(&mut self, at: Address, len: usize) -> Option<Vec<u8>>;
}

/// Offsets that were found, with what finding them cost.
#[derive(Clone, Copy, Debug)]
pub struct Calibrated {
    pub offsets: KernelOffsets,
    /// Kernel reads made.
    pub reads: u32,
    pub elapsed: Duration,
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Kernel addresses have their top byte set on x86_64 and arm64: 0xffff... with 48-bit and
/// arm64's 52-bit layouts, 0xff11... with x86_64's 5-level paging (LA57, which qemu's `-cpu max`
/// and recent servers have). The structs followed here are at least 8-aligned.
fn is_kernel_pointer(value: u64) -> bool {
    value >> 56 == 0xff && value & 7 == 0 && value != !7
}

/// Memoizes reads: many task_struct fields point at the same objects.
struct Cached<'m, M: KernelMemory> {
    memory: &'m mut M,
    seen: HashMap<(Address, usize), Option<Vec<u8>>>,
}

impl<M: KernelMemory> Cached<'_, M> {
    fn read(&mut self, at: Address, len: usize) -> Option<&[u8]> {
        let memory = &mut *self.memory;
        self.seen
            .entry((at, len))
            .or_insert_with(|| memory.read(at, len))
            .as_deref()
    }
}

/// Every `(task_nsproxy, nsproxy_mnt_ns, mnt_ns_inum)` chain, from the reading thread's
/// task_struct, that ends at `inode`.
pub fn search(memory: &mut impl KernelMemory, inode: u32) -> Vec<KernelOffsets> {
    let mut cached = Cached {
        memory,
        seen: HashMap::new(),
    };
    let mut found = Vec::new();
    let mut task = Vec::new();
    for chunk in (0..TASK_SCAN).step_by(CALIBRATION_CHUNK) {
        match cached.read(Address::Task(chunk), CALIBRATION_CHUNK) {
            Some(bytes) => task.extend_from_slice(bytes),
            None => break,
        }
    }
    for task_nsproxy in (0..task.len()).step_by(8) {
        let Some(nsproxy) = u64_at(&task, task_nsproxy).filter(|&p| is_kernel_pointer(p)) else {
            continue;
        };
        let Some(nsproxy) = cached
            .read(Address::Kernel(nsproxy), NSPROXY_SCAN)
            .map(<[u8]>::to_vec)
        else {
            continue;
        };
        for nsproxy_mnt_ns in (0..NSPROXY_SCAN).step_by(8) {
            let Some(mnt_ns) = u64_at(&nsproxy, nsproxy_mnt_ns).filter(|&p| is_kernel_pointer(p))
            else {
                continue;
            };
            let Some(mnt_ns) = cached.read(Address::Kernel(mnt_ns), MNT_NS_SCAN) else {
                continue;
            };
            for mnt_ns_inum in (0..MNT_NS_SCAN).step_by(4) {
                if u32_at(mnt_ns, mnt_ns_inum) == Some(inode) {
                    found.push(KernelOffsets {
                        task_nsproxy: task_nsproxy as u32,
                        nsproxy_mnt_ns: nsproxy_mnt_ns as u32,
                        mnt_ns_inum: mnt_ns_inum as u32,
                        valid: 1,
                    });
                }
            }
        }
    }
    found
}

/// The mount namespace inode the chain `offsets` gives for the reading thread.
pub fn namespace_via(memory: &mut impl KernelMemory, offsets: &KernelOffsets) -> Option<u32> {
    let pointer = |bytes: Vec<u8>| u64_at(&bytes, 0).filter(|&p| is_kernel_pointer(p));
    let nsproxy = pointer(memory.read(Address::Task(offsets.task_nsproxy.into()), 8)?)?;
    let mnt_ns = pointer(memory.read(
        Address::Kernel(nsproxy + u64::from(offsets.nsproxy_mnt_ns)),
        8,
    )?)?;
    let bytes = memory.read(Address::Kernel(mnt_ns + u64::from(offsets.mnt_ns_inum)), 4)?;
    u32_at(&bytes, 0)
}

/// Keeps the candidates whose chain gives `inode` for the reading thread.
fn confirm(memory: &mut impl KernelMemory, candidates: &mut Vec<KernelOffsets>, inode: u32) {
    candidates.retain(|offsets| namespace_via(memory, offsets) == Some(inode));
}

/// Kernel reads served by the calibration program for the thread that makes them.
struct BpfMemory {
    request: Array<MapData, CalibrationRequest>,
    data: Array<MapData, [u8; CALIBRATION_CHUNK]>,
    tid: u32,
    seq: u32,
    reads: u32,
    served: u32,
}

impl KernelMemory for BpfMemory {
    fn read(&mut self, at: Address, len: usize) -> Option<Vec<u8>> {
        let len = len.min(CALIBRATION_CHUNK);
        self.seq = self.seq.wrapping_add(1).max(1);
        self.reads += 1;
        let (from_task, addr) = match at {
            Address::Task(offset) => (1, offset),
            Address::Kernel(addr) => (0, addr),
        };
        let request = CalibrationRequest {
            tid: self.tid,
            seq: self.seq,
            served: 0,
            status: 0,
            from_task,
            len: len as u32,
            addr,
        };
        // The update's own syscall exit serves the request; a getppid() is a second chance.
        self.request.set(0, request, 0).ok()?;
        for _ in 0..3 {
            let state = self.request.get(&0, 0).ok()?;
            if state.served == self.seq {
                self.served += 1;
                if state.status != 0 {
                    return None;
                }
                let data = self.data.get(&0, 0).ok()?;
                return Some(data[..len].to_vec());
            }
            // SAFETY: getppid has no preconditions; it only makes this thread exit a syscall.
            unsafe { libc::getppid() };
        }
        None
    }
}

fn thread_mount_namespace() -> Result<u32, CalibrationError> {
    std::fs::metadata("/proc/thread-self/ns/mnt")
        .map(|m| m.ino() as u32)
        .map_err(CalibrationError::Namespace)
}

/// Finds the offsets on the running kernel (`known: None`) or checks those from BTF, with the
/// recorder object's calibration program.
pub fn calibrate(
    object: &[u8],
    known: Option<KernelOffsets>,
) -> Result<Calibrated, CalibrationError> {
    let started = Instant::now();
    let page = page_size();
    let mut ebpf: Ebpf = super::loader::without_btf()
        .map_max_entries("EVENTS", page)
        .load(object)
        .map_err(CalibrationError::Load)?;
    let program: &mut RawTracePoint = ebpf
        .program_mut("slim_calibrate")
        .and_then(|p| p.try_into().ok())
        .ok_or(CalibrationError::Map("slim_calibrate"))?;
    program.load().map_err(CalibrationError::Attach)?;
    program
        .attach("sys_exit")
        .map_err(CalibrationError::Attach)?;
    let request = take(&mut ebpf, "CALIBRATION")?;
    let data = take(&mut ebpf, "CALIBRATION_DATA")?;
    // A thread of its own: it leaves slim's mount namespace to check the offsets a second time.
    let (offsets, reads) = std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() } as u32;
                let mut memory = BpfMemory {
                    request,
                    data,
                    tid,
                    seq: 0,
                    reads: 0,
                    served: 0,
                };
                let result = find_and_confirm(&mut memory, known);
                (result, memory.reads)
            })
            .join()
            .map_err(|_| CalibrationError::Thread)
    })?;
    drop(ebpf);
    Ok(Calibrated {
        offsets: offsets?,
        reads,
        elapsed: started.elapsed(),
    })
}

fn find_and_confirm(
    memory: &mut BpfMemory,
    known: Option<KernelOffsets>,
) -> Result<KernelOffsets, CalibrationError> {
    let first = thread_mount_namespace()?;
    let mut candidates = match known {
        Some(offsets) => vec![offsets],
        None => search(memory, first),
    };
    if memory.served == 0 && memory.reads > 0 && known.is_none() {
        return Err(CalibrationError::NoReads);
    }
    confirm(memory, &mut candidates, first);
    let not_found = || match known {
        Some(k) => CalibrationError::Mismatch {
            task_nsproxy: k.task_nsproxy,
            nsproxy_mnt_ns: k.nsproxy_mnt_ns,
            mnt_ns_inum: k.mnt_ns_inum,
        },
        None => CalibrationError::NotFound,
    };
    if candidates.is_empty() {
        return Err(not_found());
    }
    // SAFETY: unshare only changes this thread's namespaces; it ends right after.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(CalibrationError::Unshare(std::io::Error::last_os_error()));
    }
    let second = thread_mount_namespace()?;
    if second == first {
        return Err(CalibrationError::Unshare(std::io::Error::other(
            "the mount namespace did not change",
        )));
    }
    confirm(memory, &mut candidates, second);
    if candidates.len() > 1 {
        tracing::debug!(?candidates, "several offset chains lead to the namespace");
    }
    candidates.first().copied().ok_or_else(not_found)
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, CalibrationError>
where
    T: TryFrom<aya::maps::Map>,
{
    ebpf.take_map(name)
        .and_then(|map| T::try_from(map).ok())
        .ok_or(CalibrationError::Map(name))
}

/// The running kernel's page size (4 KiB, 16 KiB on Raspberry Pi 5 kernels, 64 KiB on some
/// arm64 servers).
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u32
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up kernel: a task whose nsproxy pointer sits among decoy pointers, an nsproxy
    /// whose mnt_ns pointer sits among other namespaces, each carrying an inode.
    struct FakeKernel {
        task: Vec<u8>,
        objects: HashMap<u64, Vec<u8>>,
        reads: usize,
    }

    const TASK_NSPROXY: usize = 2912;
    const NSPROXY_MNT_NS: usize = 24;
    const MNT_NS_INUM: usize = 48;

    fn put64(buf: &mut [u8], at: usize, value: u64) {
        buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn put32(buf: &mut [u8], at: usize, value: u32) {
        buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    impl FakeKernel {
        fn new(mnt_inode: u32) -> Self {
            let mut objects = HashMap::new();
            let mut task = vec![0u8; 9000];
            // Decoys: pointers to objects that hold other inodes, and one to an unreadable page.
            for (i, at) in [64usize, 800, 1600, 2400, 4100].into_iter().enumerate() {
                let addr = 0xffff_8880_1000_0000 + (i as u64) * 0x1000;
                let mut decoy = vec![0u8; 512];
                put32(&mut decoy, 16, 4026531835 + i as u32);
                objects.insert(addr, decoy);
                put64(&mut task, at, addr);
            }
            put64(&mut task, 3000, 0xffff_8880_dead_0000);
            put64(&mut task, 3008, 0x0000_7fff_1234_0000); // a user address: never followed
            let nsproxy_addr = 0xffff_8880_2000_0000;
            let mut nsproxy = vec![0u8; 512];
            put32(&mut nsproxy, 0, 7); // refcount
            for slot in 1..9 {
                let ns_addr = 0xffff_8880_3000_0000 + slot as u64 * 0x1000;
                let mut ns = vec![0u8; 512];
                let inode = if slot * 8 == NSPROXY_MNT_NS {
                    mnt_inode
                } else {
                    4026531900 + slot as u32
                };
                put32(&mut ns, MNT_NS_INUM, inode);
                objects.insert(ns_addr, ns);
                put64(&mut nsproxy, slot * 8, ns_addr);
            }
            objects.insert(nsproxy_addr, nsproxy);
            put64(&mut task, TASK_NSPROXY, nsproxy_addr);
            Self {
                task,
                objects,
                reads: 0,
            }
        }
    }

    impl KernelMemory for FakeKernel {
        fn read(&mut self, at: Address, len: usize) -> Option<Vec<u8>> {
            self.reads += 1;
            let (bytes, offset) = match at {
                Address::Task(offset) => (&self.task, offset as usize),
                Address::Kernel(addr) => self
                    .objects
                    .iter()
                    .find(|(&base, bytes)| addr >= base && addr < base + bytes.len() as u64)
                    .map(|(&base, bytes)| (bytes, (addr - base) as usize))?,
            };
            let mut out = bytes.get(offset..)?.to_vec();
            out.resize(len, 0);
            Some(out)
        }
    }

    #[test]
    fn finds_the_chain_to_the_namespace_among_decoys() {
        let mut kernel = FakeKernel::new(4026532207);
        let found = search(&mut kernel, 4026532207);
        assert_eq!(
            found,
            vec![KernelOffsets {
                task_nsproxy: TASK_NSPROXY as u32,
                nsproxy_mnt_ns: NSPROXY_MNT_NS as u32,
                mnt_ns_inum: MNT_NS_INUM as u32,
                valid: 1,
            }]
        );
        assert_eq!(namespace_via(&mut kernel, &found[0]), Some(4026532207));
    }

    #[test]
    fn a_wrong_chain_does_not_confirm() {
        let mut kernel = FakeKernel::new(4026532207);
        let mut candidates = vec![KernelOffsets {
            task_nsproxy: TASK_NSPROXY as u32,
            nsproxy_mnt_ns: 32, // pid_ns_for_children, not mnt_ns
            mnt_ns_inum: MNT_NS_INUM as u32,
            valid: 1,
        }];
        confirm(&mut kernel, &mut candidates, 4026532207);
        assert!(candidates.is_empty());
        assert!(search(&mut kernel, 4026539999).is_empty());
    }

    #[test]
    fn kernel_pointers_are_told_from_user_addresses_and_junk() {
        assert!(is_kernel_pointer(0xffff_8880_0123_4560));
        assert!(is_kernel_pointer(0xffff_0000_8000_0000));
        assert!(is_kernel_pointer(0xff11_0000_0123_4560)); // 5-level paging direct map
        assert!(!is_kernel_pointer(0x0000_7fff_1234_0000));
        assert!(!is_kernel_pointer(0xffff_8880_0123_4561));
        assert!(!is_kernel_pointer(u64::MAX));
        assert!(!is_kernel_pointer(0));
    }
}
