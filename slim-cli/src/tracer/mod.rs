//! The eBPF recorder, user side: loads the embedded object with aya, fills in what depends on
//! the running kernel (struct offsets from BTF, tracepoint layouts from tracefs, the syscall table
//! of this architecture), attaches to tracepoints, and streams events until told to stop.
//!
//! It knows nothing of containers or images: a scope is a set of pids or mount namespaces.

mod btf;
pub mod calibrate;
mod event;
#[cfg(test)]
pub mod fake;
pub mod inflight;
mod loaded;
mod loader;
mod specs;
mod tracefs;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock,
    },
    thread::JoinHandle,
    time::Instant,
};

use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData, RingBuf},
    Ebpf,
};
use slim_common::{
    outcome, phase, scope_mode, stat, Config, KernelOffsets, RegsLayout, SeenKey, SocketKey,
    OUTCOME_SHIFT,
};

pub use event::RawEvent;

use crate::syscalls::Arch;

/// The recorder object built from `slim-ebpf` by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/slim-recorder"));

/// Why the recorder could not run. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TracerError {
    #[error("recording needs root (or CAP_BPF and CAP_PERFMON): run slim with sudo")]
    NotPrivileged,
    #[error("tracefs is not mounted and mounting it failed: run `mount -t tracefs nodev /sys/kernel/tracing` as root")]
    NoTracefs {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read tracepoint {tracepoint}: is this kernel built with CONFIG_FTRACE_SYSCALLS?"
    )]
    Tracepoint {
        tracepoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tracepoint {tracepoint} has no field `{field}` on this kernel")]
    TracepointField { tracepoint: String, field: String },
    #[error("cannot use the BTF file {path} (--kernel-btf): give a BTF file of the running kernel (pahole, BTFHub) or `none`")]
    BtfFile {
        path: PathBuf,
        #[source]
        source: btf::BtfError,
    },
    #[error("cannot find where this kernel keeps a task's mount namespace: pass --kernel-btf FILE with the running kernel's BTF (BTFHub, or pahole on its vmlinux)")]
    Offsets(#[source] calibrate::CalibrationError),
    #[error("the kernel has no bpf() syscall: it needs CONFIG_BPF_SYSCALL=y (Linux 5.8 or newer)")]
    NoBpfSyscall,
    #[error("the kernel has no BPF ring buffer: slim needs Linux 5.8 or newer")]
    NoRingBuffer,
    #[error("the kernel cannot attach eBPF programs to tracepoints: it needs CONFIG_BPF_EVENTS=y and CONFIG_FTRACE_SYSCALLS=y")]
    NoBpfEvents(#[source] aya::programs::ProgramError),
    #[error("unsupported architecture {0}: slim records on x86_64 and aarch64")]
    UnsupportedArch(&'static str),
    #[error("this slim was built without its eBPF recorder (AYA_BUILD_SKIP): rebuild after `cargo xtask setup`")]
    NoObject,
    #[error("loading the eBPF recorder failed: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("loading or attaching eBPF program {program} failed")]
    Program {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {map} is missing or has the wrong type")]
    MapMissing { map: &'static str },
    #[error("updating eBPF map {map} failed")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Where the recorder gets the running kernel's type information (global `--kernel-btf`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KernelBtf {
    /// `/sys/kernel/btf/vmlinux`, calibrating when the kernel has none.
    #[default]
    System,
    /// A BTF file of the running kernel (pahole, BTFHub).
    File(PathBuf),
    /// Act as on a kernel without BTF: calibrate.
    None,
}

impl std::str::FromStr for KernelBtf {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "none" => Self::None,
            "" | "system" => Self::System,
            path => Self::File(PathBuf::from(path)),
        })
    }
}

static KERNEL_BTF: OnceLock<KernelBtf> = OnceLock::new();

/// Sets where every recorder of this process gets kernel types from (once, at start-up).
pub fn use_kernel_btf(source: KernelBtf) {
    let _ = KERNEL_BTF.set(source);
}

/// How the mount-namespace offsets were obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetsSource {
    /// Not needed (recording by pid).
    #[default]
    Unused,
    /// From BTF, confirmed on the running kernel.
    Btf,
    /// Found by calibration (no BTF).
    Calibrated,
}

/// Which tasks are recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only pids added with [`Recorder::track_pid`] and their descendants.
    Pids,
    /// Tracked pids plus every mount namespace created after the recorder started (to catch a
    /// container from its first exec); [`Recorder::lock_to_mntns`] narrows it down later.
    NewMountNamespaces,
    /// Tracked pids plus tasks in these mount namespaces.
    MountNamespaces(Vec<u32>),
}

/// Counters the kernel side keeps, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecorderStats {
    /// Events delivered to user space.
    pub events: u64,
    /// Events dropped because the ring buffer was full. Non-zero means the recording is incomplete.
    pub lost: u64,
    /// Repeats of an already reported (namespace, operation, outcome, path), counted in the kernel.
    pub deduped: u64,
    /// Paths longer than the recorder's limit, reported cut.
    pub truncated: u64,
    /// Paths that could not be read from the task's memory.
    pub read_failed: u64,
}

/// Everything a recording produced.
#[derive(Clone, Debug, Default)]
pub struct RawRecording {
    /// Architecture of the recorded syscall numbers.
    pub arch: Option<Arch>,
    /// Events in the order the kernel submitted them.
    pub events: Vec<RawEvent>,
    /// Events of checks held out of the recording ([`Recorder::hold_out`]), apart.
    pub held_out_events: Vec<RawEvent>,
    pub stats: RecorderStats,
    /// Syscall numbers used, per mount namespace.
    pub syscalls: BTreeMap<u32, PhaseSyscalls>,
    /// Sockets created: (namespace, phase, family, type) -> calls.
    pub sockets: BTreeMap<SocketKey, u64>,
    /// How often each deduplicated (namespace, op, outcome, path) occurred.
    pub seen: HashMap<SeenKey, u32>,
    /// Open flags that mark directory opens on this architecture.
    pub dir_open_flags: u32,
    /// Where the mount-namespace offsets came from.
    pub offsets_source: OffsetsSource,
}

impl RawRecording {
    /// The events of the checks held out of the recording, as a recording of their own.
    pub fn held_out(&self) -> RawRecording {
        RawRecording {
            arch: self.arch,
            events: self
                .held_out_events
                .iter()
                .cloned()
                .map(|mut event| {
                    event.phase &= !(phase::HELD_OUT as u8);
                    event
                })
                .collect(),
            dir_open_flags: self.dir_open_flags,
            offsets_source: self.offsets_source,
            ..Default::default()
        }
    }
}

/// Syscall numbers of one mount namespace, split by [`phase`]: what processes did before their
/// first exec in it (the container runtime setting up) and after (the app). 32-bit tasks'
/// numbers (of the compat table: [`Arch::compat`]) are apart. Each set holds every call made,
/// whatever its outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseSyscalls {
    pub runtime: BTreeSet<u32>,
    pub app: BTreeSet<u32>,
    pub compat_runtime: BTreeSet<u32>,
    pub compat_app: BTreeSet<u32>,
    /// Of `app`, the calls that returned only errors (never a success, never blocked at the
    /// end): number -> the first errno.
    pub app_failed_only: BTreeMap<u32, u32>,
    /// The same of `compat_app`.
    pub compat_app_failed_only: BTreeMap<u32, u32>,
}

/// The phase bits of a `SYSCALLS` key (below the outcome).
const PHASE_BITS: u32 = (1 << OUTCOME_SHIFT) - 1;

/// The calls that `failed` and never `succeeded` nor were left `blocked`, with their first errno
/// (`errno`; a call whose errno was not kept, its table being full, is left out: allowed).
fn failed_only(
    failed: &BTreeSet<u32>,
    succeeded: &BTreeSet<u32>,
    blocked: &BTreeSet<u32>,
    errno: impl Fn(u32) -> Option<u32>,
) -> BTreeMap<u32, u32> {
    failed
        .iter()
        .filter(|nr| !succeeded.contains(nr) && !blocked.contains(nr))
        .filter_map(|&nr| Some((nr, errno(nr)?)))
        .collect()
}

impl PhaseSyscalls {
    /// Both phases together.
    pub fn all(&self) -> BTreeSet<u32> {
        self.runtime.union(&self.app).copied().collect()
    }

    fn phase_mut(&mut self, phase: u32) -> &mut BTreeSet<u32> {
        let compat = phase & phase::COMPAT != 0;
        match (phase & phase::APP != 0, compat) {
            (true, false) => &mut self.app,
            (false, false) => &mut self.runtime,
            (true, true) => &mut self.compat_app,
            (false, true) => &mut self.compat_runtime,
        }
    }
}

/// Sets the numbers of the bits set in `words`.
fn bitmap_numbers(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(w, &word)| {
        (0..64)
            .filter(move |bit| word & (1 << bit) != 0)
            .map(move |bit| (w * 64 + bit) as u32)
    })
}

/// A running recorder. Dropping it detaches every program (nothing is pinned).
pub struct Recorder {
    /// The loaded object and its maps: kept for the next recorder of this process when this
    /// one finishes.
    kernel: loaded::Loaded,
    /// The namespace [`Recorder::lock_to_mntns`] narrowed the recording to.
    locked: Option<NamespaceLabel>,
    poller: Option<Poller>,
    started: Instant,
    /// The namespaces ignored in [`Scope::NewMountNamespaces`], held so their numbers are not
    /// reused while recording.
    _held_namespaces: BTreeMap<u32, fs::File>,
    /// The mode to go back to after [`Recorder::pause`].
    /// Calls the tasks of a namespace were blocked in, read before the end.
    in_flight: Vec<(u32, inflight::InFlight)>,
}

/// The number and the key ([`slim_common::namespace_key`]) of a mount namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NamespaceLabel {
    inum: u32,
    key: u32,
}

/// How a recording names the namespaces the kernel side filed under keys. A namespace made while
/// recording is filed under a key of its own, as its number may have been another's that ended
/// meanwhile: the latest namespace with a number (or the locked one) is named by that number;
/// what an older one with the same number did is dropped; keys of other namespaces made while
/// recording stay as they are (below every number, they never pass for a namespace asked for).
#[derive(Debug, Default)]
struct NamespaceNames {
    by_key: HashMap<u32, u32>,
    renumbered: BTreeSet<u32>,
}

impl NamespaceNames {
    /// From the latest key of every number renumbered while recording, and the locked namespace
    /// (which wins for its number).
    fn new(
        latest: impl IntoIterator<Item = NamespaceLabel>,
        locked: Option<NamespaceLabel>,
    ) -> Self {
        let mut names = Self::default();
        for label in latest
            .into_iter()
            .filter(|l| locked.is_none_or(|locked| locked.inum != l.inum))
            .chain(locked)
        {
            names.by_key.insert(label.key, label.inum);
            names.renumbered.insert(label.inum);
        }
        names
    }

    /// The name of what was filed under `key`, `None` to drop it.
    fn name(&self, key: u32) -> Option<u32> {
        match self.by_key.get(&key) {
            Some(&inum) => Some(inum),
            None if self.renumbered.contains(&key) => None,
            None => Some(key),
        }
    }
}

struct Poller {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    /// Returns the events and the ring buffer (for the next recorder) when stopped.
    thread: Option<JoinHandle<(Vec<RawEvent>, RingBuf<MapData>)>>,
}

/// Tracepoint programs and the tracepoints they attach to.
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("slim_sched_exec", "sched", "sched_process_exec"),
    ("slim_sched_fork", "sched", "sched_process_fork"),
    ("slim_sched_exit", "sched", "sched_process_exit"),
];

/// The raw tracepoint programs (cheaper than tracepoints: no trace record is built) that see
/// every syscall's return (paths, sockets) and entry (the call is marked before it can block).
const SYS_EXIT: &str = "slim_sys_exit";
const SYS_ENTER: &str = "slim_sys_enter";
const RAW_PROGRAMS: &[(&str, &str)] = &[(SYS_EXIT, "sys_exit"), (SYS_ENTER, "sys_enter")];

/// Syscalls that never return, so `sys_exit` never sees them; every process makes one.
const NEVER_RETURN: &[&str] = &["exit", "exit_group"];

/// Whether this process may load tracing eBPF programs.
fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// Mount-namespace offsets an earlier recorder of this process confirmed, by BTF source: the
/// kernel does not change under a process, so later recorders skip the calibration load.
static CONFIRMED_OFFSETS: std::sync::Mutex<Option<(String, KernelOffsets, OffsetsSource)>> =
    std::sync::Mutex::new(None);

/// How many times this process loaded the recorder's programs into the kernel: each load costs
/// the kernel's verifier. A finished recorder's programs are reused by the next.
static OBJECT_LOADS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How many times this process loaded the small calibration program (once per process at
/// most: its offsets are kept).
static CALIBRATION_LOADS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The recorder's program loads of this process so far.
pub fn object_loads() -> u32 {
    OBJECT_LOADS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The calibration program's loads of this process so far.
pub fn calibration_loads() -> u32 {
    CALIBRATION_LOADS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A recording in progress, as a run drives it: the seam between `slim build`'s runs and the
/// eBPF recorder ([`Recorder`]); tests use a scripted fake.
pub trait RecordingSession: Send {
    /// Records only this mount namespace from now on (the container's, once known).
    fn lock_to_mntns(&mut self, mntns: u32) -> Result<(), TracerError>;
    /// Marks the calls the namespace's threads are blocked in now (entered before the
    /// recorder could see them).
    fn note_in_flight(&mut self, mntns: u32);
    /// Files what follows apart (checks held out of the recording), or stops doing so.
    fn hold_out(&mut self, held_out: bool) -> Result<(), TracerError>;
    /// Detaches and returns what was recorded.
    fn finish(self) -> Result<RawRecording, TracerError>;
}

/// Starts the recording of a run, before its container exists.
pub trait StartRecording: Send + Sync {
    type Session: RecordingSession;
    fn start(&self) -> Result<Self::Session, TracerError>;
}

/// The eBPF recorder, scoped to the mount namespaces created after it starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct EbpfRecorder;

impl StartRecording for EbpfRecorder {
    type Session = Recorder;

    fn start(&self) -> Result<Recorder, TracerError> {
        Recorder::start(Scope::NewMountNamespaces)
    }
}

impl RecordingSession for Recorder {
    fn lock_to_mntns(&mut self, mntns: u32) -> Result<(), TracerError> {
        Recorder::lock_to_mntns(self, mntns)
    }

    fn note_in_flight(&mut self, mntns: u32) {
        let in_flight = self.add_in_flight(mntns);
        tracing::debug!(?in_flight, "calls in flight at the end of the probes");
    }

    fn hold_out(&mut self, held_out: bool) -> Result<(), TracerError> {
        Recorder::hold_out(self, held_out)
    }

    fn finish(self) -> Result<RawRecording, TracerError> {
        Recorder::finish(self)
    }
}

/// Inode of the mount namespace of `pid` ("self" for slim itself).
pub fn mount_namespace(pid: &str) -> std::io::Result<u32> {
    Ok(fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino() as u32)
}

/// Mount namespaces of every process alive now, each held open. Held, a namespace cannot be
/// freed, so its inode number cannot go to a namespace created later (the kernel hands out the
/// lowest free number at once): without that, a container started while another slim's
/// container or the engine's short-lived namespaces went away could get an ignored number and
/// be missed until the recording is locked to it.
fn existing_mount_namespaces() -> BTreeMap<u32, fs::File> {
    let mut held = BTreeMap::new();
    for pid in inflight::process_ids() {
        // Opened first, then asked for its number: the number is that of the namespace held.
        let Ok(file) = fs::File::open(format!("/proc/{pid}/ns/mnt")) else {
            continue; // gone meanwhile: its number is free, and whoever gets it is new
        };
        if let Ok(meta) = file.metadata() {
            held.entry(meta.ino() as u32).or_insert(file);
        }
    }
    held
}

/// Open flags marking a directory open: O_DIRECTORY | O_PATH, which differ per architecture.
fn dir_open_flags(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 | Arch::X86 => 0o200000 | 0o10000000,
        Arch::Aarch64 | Arch::Arm => 0o40000 | 0o10000000,
    }
}

/// The host's architecture, once it is known that this process can record on it.
fn check_can_record() -> Result<Arch, TracerError> {
    let arch = Arch::host().ok_or(TracerError::UnsupportedArch(std::env::consts::ARCH))?;
    if OBJECT.is_empty() {
        return Err(TracerError::NoObject);
    }
    if !privileged() {
        return Err(TracerError::NotPrivileged);
    }
    Ok(arch)
}

/// The kernel's BTF from `source`, or why there is none; only an unreadable BTF file is an error.
fn load_kernel_btf(source: &KernelBtf) -> Result<Result<btf::Btf, btf::BtfError>, TracerError> {
    let btf = match source {
        KernelBtf::System => btf::Btf::from_sys_fs(),
        KernelBtf::File(path) => Some(btf::Btf::from_file(path))
            .transpose()
            .map_err(|source| TracerError::BtfFile {
                path: path.clone(),
                source,
            })?
            .ok_or(btf::BtfError::Missing),
        KernelBtf::None => Err(btf::BtfError::Missing),
    };
    if let Err(err) = &btf {
        tracing::debug!("no kernel BTF: {err}");
    }
    Ok(btf)
}

/// The mount-namespace offsets `btf` gives, if any; a BTF file without them is an error.
fn btf_offsets(
    btf: &Result<btf::Btf, btf::BtfError>,
    source: &KernelBtf,
) -> Result<Option<KernelOffsets>, TracerError> {
    Ok(match (btf, source) {
        (Ok(btf), KernelBtf::File(path)) => {
            Some(
                btf.kernel_offsets()
                    .map_err(|source| TracerError::BtfFile {
                        path: path.clone(),
                        source,
                    })?,
            )
        }
        (Ok(btf), _) => btf.kernel_offsets().ok(),
        (Err(_), _) => None,
    })
}

/// The mount-namespace offsets for `scope` and where they came from: unused by pid, else those
/// an earlier recorder of this process confirmed, else confirmed now.
fn mount_namespace_offsets(
    scope: &Scope,
    known: Option<KernelOffsets>,
    source: &KernelBtf,
) -> Result<(KernelOffsets, OffsetsSource), TracerError> {
    let cache_key = format!("{source:?}");
    let confirmed = CONFIRMED_OFFSETS.lock().ok().and_then(|cache| {
        cache
            .as_ref()
            .filter(|(key, ..)| *key == cache_key)
            .cloned()
    });
    Ok(if *scope == Scope::Pids {
        (known.unwrap_or_default(), OffsetsSource::Unused)
    } else if let Some((_, offsets, source)) = confirmed {
        // Confirmed by an earlier recorder of this process: the kernel has not changed.
        (offsets, source)
    } else {
        confirm_offsets(known, source, cache_key)?
    })
}

/// Calibrates (or confirms the `known`) offsets on the running kernel, and caches them under
/// `cache_key` for later recorders of this process.
fn confirm_offsets(
    known: Option<KernelOffsets>,
    source: &KernelBtf,
    cache_key: String,
) -> Result<(KernelOffsets, OffsetsSource), TracerError> {
    CALIBRATION_LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let calibrated = calibrate::calibrate(OBJECT, known).map_err(|err| match err {
        calibrate::CalibrationError::Mismatch { .. } if matches!(source, KernelBtf::File(_)) => {
            let KernelBtf::File(path) = source else {
                unreachable!()
            };
            TracerError::BtfFile {
                path: path.clone(),
                source: btf::BtfError::WrongKernel(err.to_string()),
            }
        }
        err => explain_calibration(err),
    })?;
    tracing::debug!(
        offsets = ?calibrated.offsets,
        reads = calibrated.reads,
        ms = calibrated.elapsed.as_millis() as u64,
        from_btf = known.is_some(),
        "mount namespace offsets confirmed"
    );
    let source = if known.is_some() {
        OffsetsSource::Btf
    } else {
        OffsetsSource::Calibrated
    };
    if let Ok(mut cache) = CONFIRMED_OFFSETS.lock() {
        *cache = Some((cache_key, calibrated.offsets, source));
    }
    Ok((calibrated.offsets, source))
}

/// The `struct pt_regs` layout from `btf`, or the architecture's own when BTF has none that fits.
fn pick_regs_layout(btf: &Result<btf::Btf, btf::BtfError>, arch: Arch) -> RegsLayout {
    match btf.as_ref().map(|btf| btf.regs_layout(arch)) {
        Ok(Ok(regs)) if regs.window_len as usize <= slim_common::REGS_WINDOW_CAP => regs,
        Ok(Ok(regs)) => {
            tracing::debug!(
                "pt_regs layout spans {} bytes: using {arch}'s",
                regs.window_len
            );
            fixed_regs_layout(arch)
        }
        Ok(Err(err)) => {
            tracing::debug!("pt_regs layout not in BTF ({err}): using {arch}'s");
            fixed_regs_layout(arch)
        }
        Err(_) => fixed_regs_layout(arch),
    }
}

/// Loads the embedded object with what depends on the running kernel filled in.
fn load_object(
    offsets: &KernelOffsets,
    fields: &slim_common::TracepointFields,
    regs: &RegsLayout,
) -> Result<Ebpf, TracerError> {
    OBJECT_LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // No target BTF for the loader: the object has no CO-RE relocations (the offsets it
    // needs come from OFFSETS, FIELDS and REGS).
    loader::without_btf()
        .map_max_entries("EVENTS", ring_buffer_size())
        .override_global("OFFSETS", offsets, true)
        .override_global("FIELDS", fields, true)
        .override_global("REGS", regs, true)
        .load(OBJECT)
        .map_err(|err| match &err {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EPERM) =>
            {
                TracerError::NotPrivileged
            }
            _ => explain_load_error(err),
        })
}

/// Writes the syscall table of `arch` (native, then compat) into `SYSCALL_SPECS`.
fn write_syscall_specs(
    specs: &mut Array<MapData, slim_common::SyscallSpec>,
    arch: Arch,
) -> Result<(), TracerError> {
    let native = specs::table(arch);
    let compat = arch.compat().map(specs::table).unwrap_or_default();
    for (nr, spec) in native.iter().chain(&compat).enumerate() {
        if spec.op != slim_common::op::NONE {
            specs
                .set(nr as u32, spec, 0)
                .map_err(|source| TracerError::Map {
                    map: "SYSCALL_SPECS",
                    source,
                })?;
        }
    }
    Ok(())
}

/// Fills the scope maps for `scope` and returns its mode, with the mount namespaces held open
/// (those ignored in [`Scope::NewMountNamespaces`]).
fn fill_scope(
    scope: &Scope,
    scope_mntns: &mut BpfHashMap<MapData, u32, u32>,
    ignored: &mut BpfHashMap<MapData, u32, u32>,
) -> Result<(u32, BTreeMap<u32, fs::File>), TracerError> {
    let mut held_namespaces = BTreeMap::new();
    let mode = match scope {
        Scope::Pids => scope_mode::PIDS,
        Scope::NewMountNamespaces => {
            held_namespaces = existing_mount_namespaces();
            for &ns in held_namespaces.keys() {
                ignored
                    .insert(ns, 1, 0)
                    .map_err(|source| TracerError::Map {
                        map: "IGNORED_MNTNS",
                        source,
                    })?;
            }
            scope_mode::NEW_MNTNS
        }
        Scope::MountNamespaces(namespaces) => {
            for &ns in namespaces {
                scope_mntns
                    .insert(ns, 1, 0)
                    .map_err(|source| TracerError::Map {
                        map: "SCOPE_MNTNS",
                        source,
                    })?;
            }
            scope_mode::MNTNS
        }
    };
    Ok((mode, held_namespaces))
}

/// A compat syscall's number in the kernel side's space (after the native table), `u32::MAX`
/// when `arch` has no compat table or no such call.
fn compat_number(arch: Arch, name: &str) -> u32 {
    arch.compat()
        .and_then(|c| c.number(name))
        .map_or(u32::MAX, |nr| nr + slim_common::MAX_SYSCALLS as u32)
}

/// The recorder's config at start: scope `mode` and the syscall numbers of `arch`.
fn initial_config(arch: Arch, mode: u32, host_mntns: u32, dir_open_flags: u32) -> Config {
    Config {
        mode,
        host_mntns,
        dir_open_flags,
        setns_nr: arch.number("setns").unwrap_or(u32::MAX),
        unshare_nr: arch.number("unshare").unwrap_or(u32::MAX),
        generation: 0,
        socket_nr: arch.number("socket").unwrap_or(u32::MAX),
        socketpair_nr: arch.number("socketpair").unwrap_or(u32::MAX),
        compat_setns_nr: compat_number(arch, "setns"),
        compat_unshare_nr: compat_number(arch, "unshare"),
        compat_socket_nr: compat_number(arch, "socket"),
        compat_socketpair_nr: compat_number(arch, "socketpair"),
        exec_return_native: (arch == Arch::Aarch64) as u32,
        clone_nr: arch.number("clone").unwrap_or(u32::MAX),
        clone3_nr: arch.number("clone3").unwrap_or(u32::MAX),
        compat_clone_nr: compat_number(arch, "clone"),
        compat_clone3_nr: compat_number(arch, "clone3"),
        held_out: 0,
        compat_socketcall_nr: compat_number(arch, "socketcall"),
    }
}

/// The object an earlier recorder of this process loaded, when it fits `scope` (recording by
/// pid uses offsets of its own).
fn reusable(scope: &Scope) -> Option<loaded::Loaded> {
    if *scope == Scope::Pids {
        return None;
    }
    let fitted_for = CONFIRMED_OFFSETS
        .lock()
        .ok()?
        .as_ref()
        .map(|(key, ..)| key.clone())?;
    loaded::Loaded::unpark(&fitted_for)
}

/// Loads the object for `scope` on this kernel: its BTF and tracepoint formats read, the
/// mount-namespace offsets confirmed, the syscall table written.
fn load_for(scope: &Scope, arch: Arch) -> Result<loaded::Loaded, TracerError> {
    let tracefs = tracefs::ensure_mounted()?;
    let fields = tracefs::read_fields(&tracefs)?;
    let source = KERNEL_BTF.get().cloned().unwrap_or_default();
    let btf = load_kernel_btf(&source)?;
    let known = btf_offsets(&btf, &source)?;
    let (offsets, offsets_source) = mount_namespace_offsets(scope, known, &source)?;
    let regs = pick_regs_layout(&btf, arch);
    drop(btf);
    let dir_open_flags = dir_open_flags(arch);

    let mut ebpf = load_object(&offsets, &fields, &regs)?;
    // SYSCALL_SPECS stays open until the programs are loaded (at the first attach): the
    // programs refer to it by descriptor. Its content is the same for every recording.
    let mut specs: Array<MapData, slim_common::SyscallSpec> = take(&mut ebpf, "SYSCALL_SPECS")?;
    write_syscall_specs(&mut specs, arch)?;
    tracing::debug!(?offsets, ?fields, "recorder loaded");
    let fitted_for = match scope {
        Scope::Pids => String::new(),
        _ => format!("{source:?}"),
    };
    let mut kernel = loaded::Loaded::new(ebpf, (arch, dir_open_flags, offsets_source), fitted_for)?;
    kernel.keep_alive(specs);
    Ok(kernel)
}

impl Recorder {
    /// Loads and attaches the recorder for `scope`. Attach happens before this returns, so a
    /// process started afterwards is seen from its first exec.
    pub fn start(scope: Scope) -> Result<Self, TracerError> {
        Self::start_holding(scope, true)
    }

    /// [`Recorder::start`]; `hold_namespaces` false leaves namespaces free to end, so tests can
    /// see their numbers reused while recording.
    fn start_holding(scope: Scope, hold_namespaces: bool) -> Result<Self, TracerError> {
        let arch = check_can_record()?;
        let host_mntns = mount_namespace("self").unwrap_or(0);
        let mut kernel = match reusable(&scope) {
            Some(parked) => parked,
            None => load_for(&scope, arch)?,
        };
        let (mode, held_namespaces) =
            fill_scope(&scope, &mut kernel.scope_mntns, &mut kernel.ignored)?;
        // The generation goes on from the last recording's: the kernel side's per-CPU scope
        // verdicts of an earlier recording never pass for this one's.
        let generation = kernel
            .config
            .get(&0, 0)
            .map(|c| c.generation.wrapping_add(1 << 16))
            .unwrap_or(0);
        let config = Config {
            generation,
            ..initial_config(arch, mode, host_mntns, kernel.dir_open_flags)
        };
        kernel
            .config
            .set(0, config, 0)
            .map_err(|source| TracerError::Map {
                map: "CONFIG",
                source,
            })?;
        let mut ring = kernel.take_ring()?;
        // A reused object's ring may hold what in-flight programs wrote after the last drain.
        while ring.next().is_some() {}
        let poller = Poller::start(ring, hold_namespaces);
        kernel.attach()?;
        Ok(Self {
            kernel,
            locked: None,
            poller: Some(poller),
            started: Instant::now(),
            _held_namespaces: held_namespaces,
            in_flight: Vec::new(),
        })
    }

    /// Records `pid` and, from now on, every process it forks.
    pub fn track_pid(&mut self, pid: u32) -> Result<(), TracerError> {
        self.kernel
            .tracked
            .insert(pid, 1, 0)
            .map_err(|source| TracerError::Map {
                map: "TRACKED_PIDS",
                source,
            })?;
        self.update_config(|_| {})
    }

    /// Narrows a [`Scope::NewMountNamespaces`] recording to one namespace (the container's),
    /// once it is known. Events of other namespaces received before are dropped by the caller.
    ///
    /// The recording names it by its number, `mntns`; what an earlier namespace with the same
    /// number did while recording (one that ended: another slim's container, the engine's own)
    /// is dropped, not counted as this one's.
    pub fn lock_to_mntns(&mut self, mntns: u32) -> Result<(), TracerError> {
        self.kernel
            .scope_mntns
            .insert(mntns, 1, 0)
            .map_err(|source| TracerError::Map {
                map: "SCOPE_MNTNS",
                source,
            })?;
        // Made before now (the container is running), so its key is known.
        let key = self.kernel.ns_keys.get(&mntns, 0).unwrap_or(mntns);
        self.locked = Some(NamespaceLabel { inum: mntns, key });
        self.update_config(|config| config.mode = scope_mode::MNTNS)
    }

    /// Files what every task in scope does from now on apart from the recording, until called
    /// with `false`: checks held out of the recording run seen (their events come back in
    /// [`RawRecording::held_out_events`]) without adding to what the app is recorded to use.
    pub fn hold_out(&mut self, held_out: bool) -> Result<(), TracerError> {
        self.update_config(|config| config.held_out = held_out as u32)
    }

    /// Reads the calls the tasks of `mntns` are blocked in now and adds them to the app's
    /// calls of that namespace when the recording finishes.
    pub fn add_in_flight(&mut self, mntns: u32) -> &inflight::InFlight {
        self.in_flight.push((mntns, inflight::in_flight(mntns)));
        &self.in_flight[self.in_flight.len() - 1].1
    }

    /// Rewrites the config, bumping its generation so the kernel side's per-CPU scope verdicts
    /// are recomputed.
    fn update_config(&mut self, change: impl FnOnce(&mut Config)) -> Result<(), TracerError> {
        let map_error = |source| TracerError::Map {
            map: "CONFIG",
            source,
        };
        let mut config = self.kernel.config.get(&0, 0).map_err(map_error)?;
        change(&mut config);
        // The kernel side bumps it by one at every exec in scope: a stride of its own keeps this
        // write from landing on a value the kernel side reached meanwhile.
        config.generation = config.generation.wrapping_add(1 << 16);
        self.kernel.config.set(0, config, 0).map_err(map_error)
    }

    /// Events received so far.
    pub fn events_received(&self) -> u64 {
        self.poller
            .as_ref()
            .map(|p| p.received.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Detaches, drains the ring buffer and reads the kernel-side tables; the loaded object is
    /// kept for the next recorder of this process.
    pub fn finish(mut self) -> Result<RawRecording, TracerError> {
        // Nothing recorded from now on, so that nothing arrives after the final drain: the
        // programs made idle (detached when the object is parked below), else detached now.
        let idle = self.kernel.idle();
        if idle.is_err() {
            let _ = self.kernel.detach();
        }
        let latest: Vec<NamespaceLabel> = self
            .kernel
            .ns_keys
            .iter()
            .flatten()
            .map(|(inum, key)| NamespaceLabel { inum, key })
            .collect();
        let names = NamespaceNames::new(latest, self.locked);
        let label = |key: u32| names.name(key);
        let mut events = match self.poller.take() {
            Some(poller) => {
                let (events, ring) = poller.finish();
                self.kernel.return_ring(ring);
                events
            }
            None => Vec::new(),
        };
        events.retain_mut(|event| match label(event.mntns) {
            Some(mntns) => {
                event.mntns = mntns;
                true
            }
            None => false,
        });
        let (held_out_events, events): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|event| event.phase as u32 & phase::HELD_OUT != 0);
        let stats = self.read_stats();
        // (namespace, phase, outcome) -> numbers.
        let mut marked: BTreeMap<(u32, u32, u32), BTreeSet<u32>> = BTreeMap::new();
        for (key, per_cpu) in self.kernel.syscalls.iter().flatten() {
            let Some(mntns) = label(key as u32) else {
                continue;
            };
            let phase = (key >> 32) as u32;
            if phase & phase::HELD_OUT != 0 {
                continue;
            }
            let numbers = marked
                .entry((mntns, phase & PHASE_BITS, phase >> OUTCOME_SHIFT))
                .or_default();
            for words in per_cpu.iter() {
                numbers.extend(bitmap_numbers(words));
            }
        }
        if let Ok(per_cpu) = self.kernel.local_syscalls.get(&0, 0) {
            for local in per_cpu
                .iter()
                .filter(|l| l.used != 0 && (l.used - 1) & phase::HELD_OUT == 0)
            {
                let Some(mntns) = label(local.mntns) else {
                    continue;
                };
                for (outcome, words) in local.words.iter().enumerate() {
                    marked
                        .entry((mntns, local.used - 1, outcome as u32))
                        .or_default()
                        .extend(bitmap_numbers(words));
                }
            }
        }
        // (namespace, phase, number) -> the first errno.
        let errnos: HashMap<(u32, u32, u32), u32> = self
            .kernel
            .errnos
            .iter()
            .flatten()
            .filter_map(|(key, errno)| {
                let mntns = label(key as u32)?;
                let phase = (key >> 32) as u32 & PHASE_BITS;
                (phase & phase::HELD_OUT == 0)
                    .then_some(((mntns, phase, (key >> 48) as u32), errno))
            })
            .collect();
        let mut syscalls: BTreeMap<u32, PhaseSyscalls> = BTreeMap::new();
        for (&(mntns, phase, _), numbers) in &marked {
            syscalls
                .entry(mntns)
                .or_default()
                .phase_mut(phase)
                .extend(numbers);
        }
        // namespace -> the calls its tasks were blocked in (native, compat).
        let mut in_flight: HashMap<u32, (BTreeSet<u32>, BTreeSet<u32>)> = HashMap::new();
        for (mntns, found) in std::mem::take(&mut self.in_flight) {
            let used = syscalls.entry(mntns).or_default();
            used.app.extend(&found.native);
            used.compat_app.extend(&found.compat);
            let blocked = in_flight.entry(mntns).or_default();
            blocked.0.extend(found.native);
            blocked.1.extend(found.compat);
        }
        let empty = BTreeSet::new();
        for (&mntns, used) in syscalls.iter_mut() {
            for phase in [phase::APP, phase::APP | phase::COMPAT] {
                let get = |outcome| marked.get(&(mntns, phase, outcome)).unwrap_or(&empty);
                let blocked = in_flight.get(&mntns).map(|(native, compat)| {
                    if phase & phase::COMPAT != 0 {
                        compat
                    } else {
                        native
                    }
                });
                let only = failed_only(
                    get(outcome::FAILED),
                    get(outcome::SUCCEEDED),
                    blocked.unwrap_or(&empty),
                    |nr| errnos.get(&(mntns, phase, nr)).copied(),
                );
                if phase & phase::COMPAT != 0 {
                    used.compat_app_failed_only = only;
                } else {
                    used.app_failed_only = only;
                }
            }
        }
        for used in syscalls.values_mut() {
            used.app.extend(
                NEVER_RETURN
                    .iter()
                    .filter_map(|name| self.kernel.arch.number(name)),
            );
            if let Some(compat) = self
                .kernel
                .arch
                .compat()
                .filter(|_| !used.compat_app.is_empty())
            {
                used.compat_app
                    .extend(NEVER_RETURN.iter().filter_map(|name| compat.number(name)));
            }
        }
        let sockets = self
            .kernel
            .sockets
            .iter()
            .flatten()
            .filter(|(key, _)| key.phase & phase::HELD_OUT == 0)
            .filter_map(|(key, count)| {
                let mntns = label(key.mntns)?;
                Some((SocketKey { mntns, ..key }, count as u64))
            })
            .collect();
        let seen = self
            .kernel
            .seen
            .iter()
            .flatten()
            .filter_map(|(key, count)| {
                let mntns = label(key.mntns)?;
                Some((SeenKey { mntns, ..key }, count))
            })
            .collect();
        tracing::debug!(
            seconds = self.started.elapsed().as_secs_f64(),
            events = events.len(),
            "recorder finished"
        );
        let recording = RawRecording {
            arch: Some(self.kernel.arch),
            events,
            held_out_events,
            stats,
            syscalls,
            sockets,
            seen,
            dir_open_flags: self.kernel.dir_open_flags,
            offsets_source: self.kernel.offsets_source,
        };
        if idle.is_ok() {
            self.kernel.park();
        }
        Ok(recording)
    }

    fn read_stats(&self) -> RecorderStats {
        let sum = |index: u32| -> u64 {
            self.kernel
                .stats
                .get(&index, 0)
                .map(|values| values.iter().sum())
                .unwrap_or(0)
        };
        RecorderStats {
            events: sum(stat::EVENTS),
            lost: sum(stat::LOST),
            deduped: sum(stat::DEDUPED),
            truncated: sum(stat::TRUNCATED),
            read_failed: sum(stat::READ_FAILED),
        }
    }
}

/// The architecture's own `struct pt_regs` layout (the fallback when BTF has none).
fn fixed_regs_layout(arch: Arch) -> RegsLayout {
    match arch {
        Arch::Aarch64 | Arch::Arm => RegsLayout::AARCH64,
        Arch::X86_64 | Arch::X86 => RegsLayout::X86_64,
    }
}

/// The ring buffer's size. Its pages are all resident as soon as slim maps it (twice over: the
/// kernel maps the data area twice for wrap-around reads), so it is most of the recorder's
/// memory: 4 MiB (8 MiB resident) holds some 7,000 events of the longest kind, and the kernel
/// side sends each path once per run, so a 5 ms poll never comes near it.
const RING_BUFFER_BYTES: usize = 4 << 20;

/// [`RING_BUFFER_BYTES`], rounded up to whole pages of the running kernel (a ring buffer is a
/// power-of-two number of pages: 16 KiB pages on Raspberry Pi 5 kernels, 64 KiB on some arm64
/// servers).
fn ring_buffer_size() -> u32 {
    (RING_BUFFER_BYTES as u32)
        .max(calibrate::page_size())
        .next_power_of_two()
}

/// Names the kernel option behind a load failure when it is one.
fn explain_load_error(err: aya::EbpfError) -> TracerError {
    if let aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error }) = &err {
        match io_error.raw_os_error() {
            Some(libc::ENOSYS) => return TracerError::NoBpfSyscall,
            Some(libc::EINVAL) if name == "EVENTS" => return TracerError::NoRingBuffer,
            _ => {}
        }
    }
    TracerError::Load(err)
}

fn explain_calibration(err: calibrate::CalibrationError) -> TracerError {
    match err {
        calibrate::CalibrationError::Load(err) => explain_load_error(err),
        calibrate::CalibrationError::Attach(source) => TracerError::NoBpfEvents(source),
        err => TracerError::Offsets(err),
    }
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, TracerError>
where
    T: TryFrom<aya::maps::Map>,
{
    ebpf.take_map(name)
        .and_then(|map| T::try_from(map).ok())
        .ok_or(TracerError::MapMissing { map: name })
}

/// Holds open every mount namespace the recording sees, from its first event until the
/// recording ends, so that its number cannot pass to a namespace made later (the kernel hands
/// out the lowest free number at once). Without that, a container that ended meanwhile (another
/// slim's) and the container being recorded could share a number, and the events and syscalls
/// of both would count as the recorded container's. A namespace that ends before its first
/// event is read cannot be held; such short-lived ones (the engine's own) never exec a program,
/// so nothing of theirs counts as an app's.
#[derive(Default)]
struct NamespaceHolder {
    seen: std::collections::HashSet<u32>,
    files: Vec<fs::File>,
}

impl NamespaceHolder {
    fn hold(&mut self, mntns: u32, pid: u32) {
        if mntns == 0 || !self.seen.insert(mntns) {
            return;
        }
        let Ok(file) = fs::File::open(format!("/proc/{pid}/ns/mnt")) else {
            return;
        };
        if file.metadata().is_ok_and(|m| m.ino() as u32 == mntns) {
            self.files.push(file);
        }
    }
}

impl Poller {
    /// Drains the ring buffer on its own thread every few milliseconds. The kernel side submits
    /// without wake-ups (a wake-up per event halves throughput); [`RING_BUFFER_BYTES`] holds far
    /// more than what arrives between two polls.
    fn start(mut ring: RingBuf<MapData>, hold_namespaces: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = stop.clone();
            let received = received.clone();
            std::thread::Builder::new()
                .name("slim-recorder".into())
                .spawn(move || {
                    let mut events = Vec::new();
                    let mut held = NamespaceHolder::default();
                    loop {
                        let stopping = stop.load(Ordering::Acquire);
                        let mut batch = 0u64;
                        while let Some(item) = ring.next() {
                            if let Some(event) = RawEvent::decode(&item) {
                                if hold_namespaces {
                                    held.hold(event.inum, event.pid);
                                }
                                events.push(event);
                            }
                            batch += 1;
                        }
                        received.fetch_add(batch, Ordering::Relaxed);
                        if stopping {
                            return (events, ring);
                        }
                        let mut fd = libc::pollfd {
                            fd: ring.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        // SAFETY: one valid pollfd; the timeout is the polling period.
                        unsafe { libc::poll(&mut fd, 1, 5) };
                    }
                })
                .expect("spawning the recorder thread")
        };
        Self {
            stop,
            received,
            thread: Some(thread),
        }
    }

    /// Stops the thread after a last drain: the events, and the ring buffer unless the thread
    /// died.
    fn finish(mut self) -> (Vec<RawEvent>, Option<RingBuf<MapData>>) {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok((events, ring))) => (events, Some(ring)),
            _ => (Vec::new(), None),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slim_common::event_kind;
    use std::process::{Child, Command};

    /// The tests that make mount namespaces and count on the kernel's numbering of them run one
    /// at a time: another test's namespaces would take the numbers they wait for.
    static NAMESPACES: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        NAMESPACES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The mount namespace of `child` once it differs from ours (unshare has run).
    fn new_namespace_of(child: &Child) -> Option<u32> {
        let ours = mount_namespace("self").ok()?;
        for _ in 0..200 {
            match mount_namespace(&child.id().to_string()) {
                Ok(ns) if ns != ours => return Some(ns),
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        None
    }

    /// A namespace that existed when recording started and died during it frees its number;
    /// the kernel gives the lowest free number to the next namespace, which must be recorded
    /// (before, it inherited the dead one's "ignored" verdict and was missed).
    #[test]
    fn a_namespace_made_after_the_start_is_recorded_whatever_its_number() {
        if unsafe { libc::geteuid() } != 0 || OBJECT.is_empty() {
            eprintln!("skipping: needs root and the eBPF object (cargo xtask test)");
            return;
        }
        let _one = one_at_a_time();
        let mut old = Command::new("unshare")
            .args(["-m", "sleep", "30"])
            .spawn()
            .expect("unshare runs");
        let old_ns = new_namespace_of(&old).expect("unshare -m made a namespace");
        let recorder = Recorder::start(Scope::NewMountNamespaces).expect("recorder starts");
        let _ = old.kill();
        let _ = old.wait();
        let marker = format!("/slim-ns-reuse-{}", std::process::id());
        let mut new = Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                &format!("sleep 0.3; cat {marker} 2>/dev/null; true"),
            ])
            .spawn()
            .expect("unshare runs");
        let new_ns = new_namespace_of(&new).expect("unshare -m made a namespace");
        let _ = new.wait();
        let recording = recorder.finish().expect("recording");
        let seen = recording
            .events
            .iter()
            .any(|e| e.mntns == new_ns && e.path == marker.as_bytes());
        assert!(
            seen,
            "the open of {marker} in namespace {new_ns} (the ended one was {old_ns}) was not \
             recorded"
        );
    }

    /// A second recorder of the process reuses the first's loaded programs (no second load)
    /// and starts from empty maps: nothing the first recorded shows in the second's recording.
    #[test]
    fn a_second_recorder_reuses_the_loaded_programs_and_starts_empty() {
        if unsafe { libc::geteuid() } != 0 || OBJECT.is_empty() {
            eprintln!("skipping: needs root and the eBPF object (cargo xtask test)");
            return;
        }
        let _one = one_at_a_time();
        // The first app stays alive through the second recording, so the two namespaces
        // cannot share a number. Both open the same path: a dedup table left from the first
        // would hide the second's open.
        let marker = format!("/slim-reuse-{}", std::process::id());
        let record = |stay: &str| {
            let recorder = Recorder::start(Scope::NewMountNamespaces).expect("recorder starts");
            let program = recorder.kernel.program_id();
            let child = Command::new("unshare")
                .args([
                    "-m",
                    "sh",
                    "-c",
                    &format!("cat {marker} 2>/dev/null; sleep {stay}"),
                ])
                .spawn()
                .expect("unshare runs");
            let namespace = new_namespace_of(&child).expect("unshare -m made a namespace");
            std::thread::sleep(std::time::Duration::from_millis(300));
            (
                recorder.finish().expect("recording"),
                program,
                child,
                namespace,
            )
        };
        let opened = |recording: &RawRecording, namespace: u32| {
            recording
                .events
                .iter()
                .any(|e| e.path == marker.as_bytes() && e.mntns == namespace)
        };
        let (first, first_program, mut first_child, first_ns) = record("3");
        let (second, second_program, mut second_child, second_ns) = record("3");
        // Parked, the object keeps its ring buffer's map but not its mapping (8 MiB resident).
        let mapped = std::fs::read_to_string("/proc/self/maps")
            .expect("/proc/self/maps")
            .lines()
            .filter(|line| line.ends_with("anon_inode:bpf-map"))
            .count();
        assert_eq!(
            mapped, 0,
            "the parked recorder's ring buffer is still mapped"
        );
        for child in [&mut first_child, &mut second_child] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(first_program.is_some());
        assert_eq!(
            first_program, second_program,
            "the second recorder loaded the programs again"
        );
        assert!(
            opened(&first, first_ns),
            "the first recording missed its open"
        );
        assert!(
            opened(&second, second_ns),
            "the second recording missed its open (a dedup table left from the first?)"
        );
        assert!(
            !opened(&second, first_ns),
            "the second recording holds the first's events"
        );
        let keys: Vec<u32> = second.syscalls.keys().copied().collect();
        assert_eq!(
            keys,
            [second_ns],
            "the second recording's syscalls are its namespace's only (first: {first_ns})"
        );
    }

    #[test]
    fn a_call_is_failed_only_when_it_never_succeeded_and_was_not_left_blocked() {
        let set = |numbers: &[u32]| numbers.iter().copied().collect::<BTreeSet<u32>>();
        let errnos = |nr: u32| (nr != 9).then_some(nr + 100);
        let only = failed_only(&set(&[1, 2, 3, 9]), &set(&[2]), &set(&[3]), errnos);
        // 2 also succeeded, 3 was blocked at the end, 9's errno was not kept.
        assert_eq!(only, [(1, 101)].into());
    }

    #[test]
    fn namespaces_are_named_by_number_and_an_older_one_with_the_same_number_is_dropped() {
        let label = |inum, key| NamespaceLabel { inum, key };
        // 0xF000_0010 was renumbered (key 7 is its latest), 0xF000_0020 locked with key 9.
        let names = NamespaceNames::new(
            [label(0xF000_0010, 7), label(0xF000_0020, 8)],
            Some(label(0xF000_0020, 9)),
        );
        assert_eq!(names.name(7), Some(0xF000_0010));
        assert_eq!(names.name(9), Some(0xF000_0020));
        // The same numbers filed under themselves: namespaces older than the recording.
        assert_eq!(names.name(0xF000_0010), None);
        assert_eq!(names.name(0xF000_0020), None);
        // Key 8 (an earlier namespace numbered like the locked one) stays a key: never a number.
        assert_eq!(names.name(8), Some(8));
        assert_eq!(names.name(0xF000_0030), Some(0xF000_0030));
        assert_eq!(
            NamespaceNames::new([], None).name(0xF000_0010),
            Some(0xF000_0010)
        );
    }

    /// How a test process gets a mount namespace of its own.
    #[derive(Clone, Copy, Debug)]
    enum Made {
        Unshare,
        Clone,
        Clone3,
    }

    /// A process running `script` under sh in a new mount namespace made as `how` says.
    struct InNamespace(libc::pid_t);

    impl InNamespace {
        fn spawn(how: Made, script: &str) -> Self {
            use std::ffi::CString;
            let sh = CString::new("/bin/sh").unwrap();
            let args = [
                c"sh".to_owned(),
                c"-c".to_owned(),
                CString::new(script).unwrap(),
            ];
            let argv: Vec<*const libc::c_char> = args
                .iter()
                .map(|a| a.as_ptr())
                .chain([std::ptr::null()])
                .collect();
            let newns = libc::CLONE_NEWNS as u64;
            // clone3's struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, ...
            let clone_args: [u64; 11] = [newns, 0, 0, 0, libc::SIGCHLD as u64, 0, 0, 0, 0, 0, 0];
            // SAFETY: fork-like calls (no shared memory, no new stack); the child only calls
            // async-signal-safe functions (unshare, execv, _exit) on memory prepared before.
            let pid = unsafe {
                match how {
                    Made::Unshare => libc::fork() as libc::c_long,
                    Made::Clone => {
                        libc::syscall(libc::SYS_clone, newns | libc::SIGCHLD as u64, 0, 0, 0, 0)
                    }
                    Made::Clone3 => libc::syscall(
                        libc::SYS_clone3,
                        clone_args.as_ptr(),
                        std::mem::size_of_val(&clone_args),
                    ),
                }
            };
            if pid == 0 {
                unsafe {
                    if matches!(how, Made::Unshare) && libc::unshare(libc::CLONE_NEWNS) != 0 {
                        libc::_exit(126);
                    }
                    libc::execv(sh.as_ptr(), argv.as_ptr());
                    libc::_exit(127);
                }
            }
            assert!(
                pid > 0,
                "{how:?} failed: {}",
                std::io::Error::last_os_error()
            );
            Self(pid as libc::pid_t)
        }

        /// Its mount namespace, once it differs from ours and the process runs sh: by then
        /// it has made its first syscall in the namespace (the one that gives the namespace
        /// its key), so a lock on the namespace finds the key.
        fn namespace(&self) -> u32 {
            let ours = mount_namespace("self").unwrap();
            for _ in 0..200 {
                let runs_sh = fs::read_to_string(format!("/proc/{}/comm", self.0))
                    .is_ok_and(|comm| comm.trim() == "sh");
                match mount_namespace(&self.0.to_string()) {
                    Ok(ns) if ns != ours && runs_sh => return ns,
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            panic!("process {} never got a mount namespace of its own", self.0);
        }

        fn wait(self) {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(self.0, &mut status, 0) };
        }
    }

    /// A container that ends before the recorder reads its first event (so nothing holds its
    /// namespace) frees its number, and the kernel gives it to the next namespace at once: what
    /// the ended one did must not count as the next one's, however that one was made.
    #[test]
    fn a_reused_namespace_number_does_not_mix_an_ended_namespace_into_the_next() {
        if unsafe { libc::geteuid() } != 0 || OBJECT.is_empty() {
            eprintln!("skipping: needs root and the eBPF object (cargo xtask test)");
            return;
        }
        let _one = one_at_a_time();
        let me = std::process::id();
        for how in [Made::Unshare, Made::Clone, Made::Clone3] {
            let mut reused = false;
            for attempt in 0..10 {
                let mut recorder = Recorder::start_holding(Scope::NewMountNamespaces, false)
                    .expect("recorder starts");
                let old_marker = format!("/slim-ns-ended-{me}-{how:?}-{attempt}");
                let old =
                    InNamespace::spawn(Made::Unshare, &format!("cat {old_marker}; sleep 0.2"));
                let old_ns = old.namespace();
                old.wait();
                let new_marker = format!("/slim-ns-next-{me}-{how:?}-{attempt}");
                let new = InNamespace::spawn(how, &format!("sleep 0.3; cat {new_marker}"));
                let new_ns = new.namespace();
                if new_ns == old_ns {
                    recorder.lock_to_mntns(new_ns).expect("lock");
                }
                new.wait();
                let recording = recorder.finish().expect("recording");
                if new_ns != old_ns {
                    continue;
                }
                reused = true;
                let paths: Vec<String> = recording
                    .events
                    .iter()
                    .filter(|e| e.mntns == new_ns && e.kind == event_kind::PATH)
                    .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                    .collect();
                assert!(
                    paths.contains(&new_marker),
                    "{how:?}: the next namespace's own open of {new_marker} is missing ({} paths \
                     recorded in {new_ns})",
                    paths.len()
                );
                assert!(
                    !paths.contains(&old_marker),
                    "{how:?}: the ended namespace's open of {old_marker} counted as the next \
                     one's (both numbered {new_ns})"
                );
                break;
            }
            assert!(reused, "{how:?}: the kernel never gave an ended namespace's number to the next one in 10 tries");
        }
    }
}
