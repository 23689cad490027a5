//! The eBPF object loaded into the kernel once per process: its programs (verified once, the
//! costly part of starting a recorder) and maps. A recorder that finishes makes the programs
//! idle, drains them, detaches them and parks the object; the next recorder of the process
//! empties its maps and attaches the same programs again instead of loading the object anew.

use std::{
    os::fd::{AsFd as _, OwnedFd},
    sync::Mutex,
    thread::JoinHandle,
};

use aya::{
    maps::{
        Array, HashMap as BpfHashMap, IterableMap as _, Map, MapData, PerCpuArray, PerCpuHashMap,
        RingBuf,
    },
    programs::{
        raw_trace_point::RawTracePointLinkId, trace_point::TracePointLinkId, RawTracePoint,
        TracePoint,
    },
    Ebpf,
};
use slim_common::{Config, LocalSyscalls, SeenKey, SocketKey, SYSCALL_WORDS};

use super::{OffsetsSource, TracerError, PROGRAMS, RAW_PROGRAMS};
use crate::syscalls::Arch;

/// The loaded object, its maps taken out of it, and its programs' links while attached.
pub(super) struct Loaded {
    pub ebpf: Ebpf,
    pub config: Array<MapData, Config>,
    pub tracked: BpfHashMap<MapData, u32, u32>,
    pub scope_mntns: BpfHashMap<MapData, u32, u32>,
    pub ignored: BpfHashMap<MapData, u32, u32>,
    pub stats: PerCpuArray<MapData, u64>,
    pub syscalls: PerCpuHashMap<MapData, u64, [u64; SYSCALL_WORDS]>,
    pub sockets: BpfHashMap<MapData, SocketKey, u32>,
    pub local_syscalls: PerCpuArray<MapData, LocalSyscalls>,
    pub seen: BpfHashMap<MapData, SeenKey, u32>,
    pub ns_keys: BpfHashMap<MapData, u32, u32>,
    pub errnos: BpfHashMap<MapData, u64, u32>,
    /// The ring buffer, mapped, while no poller thread drains it (unmapped while parked: its
    /// pages are resident twice over, most of the recorder's memory).
    ring: Option<RingBuf<MapData>>,
    /// The ring buffer map itself, to map it again.
    ring_map: OwnedFd,
    pub arch: Arch,
    pub dir_open_flags: u32,
    pub offsets_source: OffsetsSource,
    /// What the object was loaded for (the kernel offsets it was given): a parked object is
    /// reused only for the same.
    pub fitted_for: String,
    links: Links,
    /// Maps the programs refer to that no recording reads (the syscall table), held open.
    kept_open: Vec<Array<MapData, slim_common::SyscallSpec>>,
}

#[derive(Default)]
struct Links {
    trace_points: Vec<(&'static str, TracePointLinkId)>,
    raw: Vec<(&'static str, RawTracePointLinkId)>,
}

/// Maps whose content is the same for every recording: written once, never emptied.
const KEPT_MAPS: &[&str] = &["SYSCALL_SPECS", "CALIBRATION", "CALIBRATION_DATA"];

/// The object the last finished recorder of this process left, its programs being detached
/// on a thread of their own (or detached: the thread has ended) or dropped (`None`).
static PARKED: Mutex<Option<JoinHandle<Option<Loaded>>>> = Mutex::new(None);

impl Loaded {
    /// Takes the maps out of a freshly loaded object (its programs not loaded yet).
    pub fn new(
        mut ebpf: Ebpf,
        (arch, dir_open_flags, offsets_source): (Arch, u32, OffsetsSource),
        fitted_for: String,
    ) -> Result<Self, TracerError> {
        let ring: RingBuf<MapData> = take(&mut ebpf, "EVENTS")?;
        let ring_map = ring.as_fd().try_clone_to_owned().map_err(dup_error)?;
        Ok(Self {
            config: take(&mut ebpf, "CONFIG")?,
            tracked: take(&mut ebpf, "TRACKED_PIDS")?,
            scope_mntns: take(&mut ebpf, "SCOPE_MNTNS")?,
            ignored: take(&mut ebpf, "IGNORED_MNTNS")?,
            stats: take(&mut ebpf, "STATS")?,
            syscalls: take(&mut ebpf, "SYSCALLS")?,
            sockets: take(&mut ebpf, "SOCKETS")?,
            local_syscalls: take(&mut ebpf, "LOCAL_SYSCALLS")?,
            seen: take(&mut ebpf, "SEEN")?,
            ns_keys: take(&mut ebpf, "NS_KEYS")?,
            errnos: take(&mut ebpf, "ERRNOS")?,
            ring: Some(ring),
            ring_map,
            ebpf,
            arch,
            dir_open_flags,
            offsets_source,
            fitted_for,
            links: Links::default(),
            kept_open: Vec::new(),
        })
    }

    /// Holds `map` open as long as the object: the programs, loaded at the first attach, refer
    /// to it by descriptor.
    pub fn keep_alive(&mut self, map: Array<MapData, slim_common::SyscallSpec>) {
        self.kept_open.push(map);
    }

    /// The parked object when it was loaded for `fitted_for`, its maps emptied for a new
    /// recording; `None` when there is none (or it cannot be emptied: then it is dropped).
    pub fn unpark(fitted_for: &str) -> Option<Self> {
        let detaching = PARKED.lock().ok()?.take()?;
        let mut parked = detaching.join().ok()??;
        if parked.fitted_for != fitted_for {
            return None;
        }
        match parked.empty_maps() {
            Ok(()) => Some(parked),
            Err(err) => {
                tracing::debug!("the loaded recorder cannot be reused ({err}): loading it again");
                None
            }
        }
    }

    /// The ring buffer to drain, mapped again if it was unmapped.
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>, TracerError> {
        if let Some(ring) = self.ring.take() {
            return Ok(ring);
        }
        let map = self
            .ring_map
            .try_clone()
            .map_err(dup_error)
            .and_then(|fd| MapData::from_fd(fd).map_err(ring_error))?;
        RingBuf::try_from(Map::RingBuf(map)).map_err(ring_error)
    }

    /// Gives back the ring buffer a poller drained.
    pub fn return_ring(&mut self, ring: Option<RingBuf<MapData>>) {
        self.ring = ring;
    }

    /// Keeps this object for the next recorder of the process, its programs loaded but
    /// detached (no cost to the host's syscalls meanwhile) and its ring buffer unmapped.
    /// The kernel retires each program's link only after a grace period (tens of
    /// milliseconds each, a fifth of a second for all), so the programs (idle already) are
    /// detached on a thread of their own, which the next [`Loaded::unpark`] waits for.
    pub fn park(mut self) {
        self.ring = None;
        let detaching = std::thread::Builder::new()
            .name("slim-detach".into())
            .spawn(move || {
                // Not detached: dropped, and the next recorder loads the object again.
                self.detach().ok()?;
                Some(self)
            });
        if let (Ok(detaching), Ok(mut parked)) = (detaching, PARKED.lock()) {
            *parked = Some(detaching);
        }
    }

    /// Makes the attached programs record nothing (scope: the tracked pids, of which there are
    /// none), so a finished recording can be drained before the programs are detached.
    pub fn idle(&mut self) -> Result<(), TracerError> {
        let map_error = |source| TracerError::Map {
            map: "CONFIG",
            source,
        };
        clear(self.tracked.map()).map_err(|source| TracerError::Map {
            map: "TRACKED_PIDS",
            source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_delete_elem",
                io_error: source,
            }),
        })?;
        let mut config = self.config.get(&0, 0).map_err(map_error)?;
        config.mode = slim_common::scope_mode::PIDS;
        config.generation = config.generation.wrapping_add(1 << 16);
        self.config.set(0, config, 0).map_err(map_error)
    }

    /// Loads the programs into the kernel (the first time) and attaches them.
    pub fn attach(&mut self) -> Result<(), TracerError> {
        for &(program, category, name) in PROGRAMS {
            let prog: &mut TracePoint = self
                .ebpf
                .program_mut(program)
                .and_then(|p| p.try_into().ok())
                .ok_or(TracerError::MapMissing { map: program })?;
            if prog.fd().is_err() {
                prog.load()
                    .map_err(|source| TracerError::Program { program, source })?;
            }
            let link = prog
                .attach(category, name)
                .map_err(|source| TracerError::Program { program, source })?;
            self.links.trace_points.push((program, link));
        }
        for &(program, tracepoint) in RAW_PROGRAMS {
            let raw: &mut RawTracePoint = self
                .ebpf
                .program_mut(program)
                .and_then(|p| p.try_into().ok())
                .ok_or(TracerError::MapMissing { map: program })?;
            if raw.fd().is_err() {
                raw.load()
                    .map_err(|source| TracerError::Program { program, source })?;
            }
            let link = raw.attach(tracepoint).map_err(TracerError::NoBpfEvents)?;
            self.links.raw.push((program, link));
        }
        Ok(())
    }

    /// The kernel's id of the loaded `sys_exit` program (the same while the object is reused).
    #[cfg(test)]
    pub fn program_id(&self) -> Option<u32> {
        let program: &RawTracePoint = self
            .ebpf
            .program(super::SYS_EXIT)
            .and_then(|p| p.try_into().ok())?;
        program.info().ok().map(|info| info.id())
    }

    /// Detaches every program (they stay loaded): nothing is recorded from now on.
    pub fn detach(&mut self) -> Result<(), TracerError> {
        let mut result = Ok(());
        for (program, link) in std::mem::take(&mut self.links.trace_points) {
            let prog: Option<&mut TracePoint> = self
                .ebpf
                .program_mut(program)
                .and_then(|p| p.try_into().ok());
            if let Some(Err(source)) = prog.map(|p| p.detach(link)) {
                result = Err(TracerError::Program { program, source });
            }
        }
        for (program, link) in std::mem::take(&mut self.links.raw) {
            let prog: Option<&mut RawTracePoint> = self
                .ebpf
                .program_mut(program)
                .and_then(|p| p.try_into().ok());
            if let Some(Err(source)) = prog.map(|p| p.detach(link)) {
                result = Err(TracerError::Program { program, source });
            }
        }
        result
    }

    /// Empties every map a recording fills, those taken out and those the object keeps, so a
    /// new recording starts from nothing: hash maps lose every key, arrays are zeroed.
    fn empty_maps(&mut self) -> std::io::Result<()> {
        let taken = [
            self.tracked.map(),
            self.scope_mntns.map(),
            self.ignored.map(),
            self.stats.map(),
            self.syscalls.map(),
            self.sockets.map(),
            self.local_syscalls.map(),
            self.seen.map(),
            self.ns_keys.map(),
            self.errnos.map(),
        ];
        for map in taken {
            clear(map)?;
        }
        for (name, map) in self.ebpf.maps() {
            // `.rodata` and the like: the globals the object was loaded with (frozen).
            if KEPT_MAPS.contains(&name) || name.starts_with('.') {
                continue;
            }
            if let Map::HashMap(data)
            | Map::PerCpuHashMap(data)
            | Map::LruHashMap(data)
            | Map::Array(data)
            | Map::PerCpuArray(data) = map
            {
                clear(data)?;
            }
        }
        Ok(())
    }
}

fn dup_error(io_error: std::io::Error) -> TracerError {
    ring_error(aya::maps::MapError::SyscallError(aya::sys::SyscallError {
        call: "dup",
        io_error,
    }))
}

fn ring_error(source: aya::maps::MapError) -> TracerError {
    TracerError::Map {
        map: "EVENTS",
        source,
    }
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, TracerError>
where
    T: TryFrom<Map>,
{
    ebpf.take_map(name)
        .and_then(|map| T::try_from(map).ok())
        .ok_or(TracerError::MapMissing { map: name })
}

/// `bpf(2)` map commands.
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// The `bpf_attr` of the map element commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

fn bpf(command: libc::c_long, attr: &ElemAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid bpf_attr for the map element commands, its pointers point at
    // buffers of the map's key and value sizes that live through the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *const ElemAttr,
            std::mem::size_of::<ElemAttr>(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Empties `map`: every key of a hash map deleted, every entry of an array zeroed (each CPU's
/// copy for a per-CPU array).
fn clear(map: &MapData) -> std::io::Result<()> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let info = map.info().map_err(std::io::Error::other)?;
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    let kind = info.map_type().map_err(std::io::Error::other)?;
    use aya::maps::MapType;
    match kind {
        MapType::Hash | MapType::PerCpuHash | MapType::LruHash | MapType::LruPerCpuHash => {
            let mut key = vec![0u8; info.key_size() as usize];
            // Always the first key: deleting it makes the next one first.
            loop {
                let attr = ElemAttr {
                    map_fd: fd,
                    key: 0,
                    value_or_next_key: key.as_mut_ptr() as u64,
                    ..Default::default()
                };
                match bpf(BPF_MAP_GET_NEXT_KEY, &attr) {
                    Ok(()) => {}
                    Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                    Err(err) => return Err(err),
                }
                let attr = ElemAttr {
                    map_fd: fd,
                    key: key.as_ptr() as u64,
                    ..Default::default()
                };
                match bpf(BPF_MAP_DELETE_ELEM, &attr) {
                    Ok(()) => {}
                    Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        MapType::Array | MapType::PerCpuArray => {
            let copies = match kind {
                MapType::PerCpuArray => aya::util::nr_cpus().map_err(|(_, err)| err)?,
                _ => 1,
            };
            let value_size = (info.value_size() as usize).div_ceil(8) * 8;
            let zeros = vec![0u8; value_size * copies];
            for index in 0..info.max_entries() {
                let attr = ElemAttr {
                    map_fd: fd,
                    key: &index as *const u32 as u64,
                    value_or_next_key: zeros.as_ptr() as u64,
                    flags: 0,
                    ..Default::default()
                };
                bpf(BPF_MAP_UPDATE_ELEM, &attr)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
