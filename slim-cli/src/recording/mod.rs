//! Turning raw recorder events into what a scope touched: absolute paths with how they were
//! used and how often, the executed files plus the interpreters the kernel loaded for them, and
//! the syscall names. Pure: no kernel, no engine (file contents come through [`FileSource`]).

mod paths;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use serde::Serialize;
use slim_common::{event_kind, op, path_hash, relative_salt, SeenKey};

use crate::{
    elf,
    syscalls::Arch,
    tracer::{OffsetsSource, RawEvent, RawRecording, RecorderStats},
};

pub use paths::normalize;

/// How a path was used. Ordered so a summary lists the strongest use first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Use {
    /// Executed (sched_process_exec).
    Exec,
    /// Loaded by the kernel as the ELF or `#!` interpreter of an executed file.
    Interpreter,
    /// Opened for writing (or created).
    Write,
    /// Opened for reading.
    Read,
    /// Opened as a directory (O_DIRECTORY / O_PATH).
    Directory,
    /// Attempted exec (execve), e.g. a PATH lookup.
    ExecAttempt,
    Stat,
    Access,
    Readlink,
    Chdir,
    Mkdir,
    Unlink,
    Rename,
    Symlink,
    Link,
    /// A Unix socket bound to the path (the socket file is created).
    Bind,
    /// A Unix socket connected to the path.
    Connect,
    /// A FIFO, socket or device node made at the path (mknod).
    Mknod,
}

impl Use {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Interpreter => "interpreter",
            Self::Write => "write",
            Self::Read => "read",
            Self::Directory => "directory",
            Self::ExecAttempt => "exec-attempt",
            Self::Stat => "stat",
            Self::Access => "access",
            Self::Readlink => "readlink",
            Self::Chdir => "chdir",
            Self::Mkdir => "mkdir",
            Self::Unlink => "unlink",
            Self::Rename => "rename",
            Self::Symlink => "symlink",
            Self::Link => "link",
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::Mknod => "mknod",
        }
    }
}

/// Everything known about one touched path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Touched {
    /// Uses that succeeded.
    pub ok: BTreeSet<Use>,
    /// Uses that failed (e.g. ENOENT during a search).
    pub failed: BTreeSet<Use>,
    /// Times the scope named it (counted in the kernel for repeats).
    pub count: u64,
    /// A use failed in a way that shows the path exists (EEXIST from mkdir, EACCES, EINVAL
    /// from readlink on a file...): it must be kept even though no use succeeded.
    pub exists_despite_failure: bool,
    /// Programs (file names) of the processes that opened it for writing.
    pub writers: BTreeSet<String>,
}

impl Touched {
    /// Whether the path existed for at least one use.
    pub fn found(&self) -> bool {
        !self.ok.is_empty()
    }

    /// Whether the path existed when the app used it (a success, or a failure only an
    /// existing path gives).
    pub fn exists(&self) -> bool {
        self.found() || self.exists_despite_failure
    }
}

/// Whether a failed syscall's errno says nothing exists at the path.
fn errno_means_absent(ret: i64) -> bool {
    const ENOENT: i64 = 2;
    const EBADF: i64 = 9;
    const EFAULT: i64 = 14;
    const ENOTDIR: i64 = 20;
    const ENAMETOOLONG: i64 = 36;
    matches!(-ret, ENOENT | EBADF | EFAULT | ENOTDIR | ENAMETOOLONG)
}

/// Reads the head of a file as the recorded scope sees it (host, container root, image).
pub trait FileSource {
    fn head(&self, path: &Path, len: usize) -> Option<Vec<u8>>;
}

/// Files of the host, or of another root (`/proc/PID/root` for a container), resolved inside
/// that root: an absolute symlink in a container names the container's file, not the host's.
pub struct HostFiles {
    pub root: PathBuf,
}

impl FileSource for HostFiles {
    fn head(&self, path: &Path, len: usize) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let file = match self.root == Path::new("/") {
            true => {
                std::fs::File::open(self.root.join(path.strip_prefix("/").unwrap_or(path))).ok()?
            }
            false => crate::in_root::open(&self.root, path).ok()?,
        };
        let mut head = Vec::with_capacity(len.min(1 << 16));
        file.take(len as u64).read_to_end(&mut head).ok()?;
        Some(head)
    }
}

/// What one scope touched.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub paths: BTreeMap<PathBuf, Touched>,
    /// Executed files in the order they were first executed.
    pub execs: Vec<PathBuf>,
    pub arch: Option<Arch>,
    /// Syscall numbers the scope used.
    pub syscall_numbers: BTreeSet<u32>,
    /// Of those, the ones the app made (after its exec: what a seccomp profile must allow).
    pub app_syscalls: BTreeSet<u32>,
    /// The ones only the container runtime made before the exec (set-up: never in a profile).
    pub runtime_syscalls: BTreeSet<u32>,
    /// What 32-bit processes of the app called: numbers of the compat table
    /// (`arch.compat()`: i386 on x86_64, arm on arm64). Empty for a 64-bit app.
    pub compat_app_syscalls: BTreeSet<u32>,
    /// Of `app_syscalls`, the calls that returned nothing but errors: number -> first errno.
    pub app_failed_only: BTreeMap<u32, u32>,
    /// The same of `compat_app_syscalls`.
    pub compat_app_failed_only: BTreeMap<u32, u32>,
    /// Sockets the app created: (address family, type).
    pub sockets: BTreeSet<(u32, u32)>,
    pub stats: RecorderStats,
    /// Where the mount-namespace offsets came from (BTF, or calibrated without it).
    pub offsets_source: OffsetsSource,
    /// Relative paths whose base (a directory fd) was unknown.
    pub unresolved: u64,
}

/// Per-process state needed to make paths absolute.
#[derive(Clone, Debug)]
struct Process {
    cwd: PathBuf,
    fds: HashMap<i64, PathBuf>,
    /// The kernel side's base generation of this process (see `slim_common::relative_salt`).
    generation: u64,
    /// File name of the program it runs, once seen executing.
    exe: Option<String>,
}

/// Which events belong to the scope being built.
pub struct Filter {
    /// Keep only events of these mount namespaces; `None` keeps all.
    pub mount_namespaces: Option<BTreeSet<u32>>,
    /// Working directory of processes first seen without a fork (the scope's initial processes).
    pub initial_cwd: PathBuf,
    /// Ignore path events of processes that have not executed a program in the scope yet
    /// (`slim_common::phase::RUNTIME`): in a container that is the runtime setting it up (runc's
    /// view of host paths, its own lookups of /etc/passwd), not the app; and count only the
    /// app's syscalls as the app's.
    pub from_first_exec: bool,
}

impl Filter {
    /// Everything a command run by slim did, relative paths starting at `cwd`.
    pub fn command(cwd: PathBuf) -> Self {
        Self {
            mount_namespaces: None,
            initial_cwd: cwd,
            from_first_exec: false,
        }
    }

    /// A container slim started under the recorder: its namespace, from the app's first exec.
    pub fn started_container(mntns: u32, workdir: impl Into<PathBuf>) -> Self {
        Self {
            mount_namespaces: Some([mntns].into()),
            initial_cwd: workdir.into(),
            from_first_exec: true,
        }
    }

    /// A container that was already running when recording began.
    pub fn running_container(mntns: u32, workdir: impl Into<PathBuf>) -> Self {
        Self {
            from_first_exec: false,
            ..Self::started_container(mntns, workdir)
        }
    }

    fn keeps(&self, event: &RawEvent) -> bool {
        self.mount_namespaces
            .as_ref()
            .is_none_or(|set| set.contains(&event.mntns))
    }
}

impl Recording {
    /// Builds the recording of the events `filter` keeps.
    pub fn build(raw: &RawRecording, filter: &Filter) -> Self {
        let mut recording = Recording {
            arch: raw.arch,
            stats: raw.stats,
            offsets_source: raw.offsets_source,
            ..Default::default()
        };
        let mut processes: HashMap<u32, Process> = HashMap::new();
        let new_process = || Process {
            cwd: filter.initial_cwd.clone(),
            fds: HashMap::new(),
            generation: 0,
            exe: None,
        };
        for event in raw.events.iter().filter(|e| filter.keeps(e)) {
            if filter.from_first_exec
                && event.kind == event_kind::PATH
                && event.phase & slim_common::phase::APP as u8 == 0
            {
                continue;
            }
            match event.kind {
                event_kind::FORK => {
                    let parent = processes
                        .get(&event.pid)
                        .cloned()
                        .unwrap_or_else(new_process);
                    processes.insert(event.aux, parent);
                }
                event_kind::EXIT => {
                    processes.remove(&event.pid);
                }
                event_kind::EXEC => {
                    let process = processes.entry(event.pid).or_insert_with(new_process);
                    let path = paths::absolute(&process.cwd, bytes_path(&event.path));
                    process.exe = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    if !recording.execs.contains(&path) {
                        recording.execs.push(path.clone());
                    }
                    let touched = recording.paths.entry(path).or_default();
                    touched.ok.insert(Use::Exec);
                    touched.count += 1;
                }
                event_kind::PATH => {
                    let process = processes.entry(event.pid).or_insert_with(new_process);
                    recording.path_event(process, event, raw);
                }
                _ => {}
            }
        }
        let wanted = |mntns: &u32| {
            filter
                .mount_namespaces
                .as_ref()
                .is_none_or(|set| set.contains(mntns))
        };
        for (_, numbers) in raw.syscalls.iter().filter(|(ns, _)| wanted(ns)) {
            recording.syscall_numbers.extend(numbers.all());
            recording.compat_app_syscalls.extend(&numbers.compat_app);
            recording.app_failed_only.extend(&numbers.app_failed_only);
            recording
                .compat_app_failed_only
                .extend(&numbers.compat_app_failed_only);
            if filter.from_first_exec {
                recording.app_syscalls.extend(&numbers.app);
                recording.runtime_syscalls.extend(&numbers.runtime);
            } else {
                // Processes already running never exec again: everything is the app's.
                recording.app_syscalls.extend(numbers.all());
                recording
                    .compat_app_syscalls
                    .extend(&numbers.compat_runtime);
            }
        }
        recording.runtime_syscalls = recording
            .runtime_syscalls
            .difference(&recording.app_syscalls)
            .copied()
            .collect();
        for key in raw.sockets.keys().filter(|k| wanted(&k.mntns)) {
            if !filter.from_first_exec || key.phase == slim_common::phase::APP {
                recording.sockets.insert((key.family, key.kind));
            }
        }
        recording
    }

    fn path_event(&mut self, process: &mut Process, event: &RawEvent, raw: &RawRecording) {
        let ok = event.ret >= 0;
        let changes_base = event.changes_base(raw.dir_open_flags);
        // Salt of a relative path, computed before this event changes the base.
        let salt = relative_salt(event.pid, event.dirfd, process.generation);
        if changes_base && ok {
            process.generation += 1;
        }
        if event.op == op::FCHDIR {
            if let (true, Some(dir)) = (ok, process.fds.get(&event.dirfd)) {
                process.cwd = dir.clone();
            }
            return;
        }
        if event.path.is_empty() {
            return; // AT_EMPTY_PATH: an operation on the fd itself.
        }
        let requested = bytes_path(&event.path);
        let path = if requested.is_absolute() {
            normalize(requested)
        } else if event.dirfd == slim_common::AT_FDCWD {
            paths::absolute(&process.cwd, requested)
        } else if let Some(dir) = process.fds.get(&event.dirfd) {
            paths::absolute(dir, requested)
        } else {
            self.unresolved += 1;
            tracing::debug!(path = %requested.display(), fd = event.dirfd, "relative to an unknown fd");
            return;
        };
        let access = access_of(event, raw.dir_open_flags);
        if ok {
            match event.op {
                op::CHDIR => process.cwd = path.clone(),
                op::OPEN => {
                    process.fds.insert(event.ret, path.clone());
                }
                _ => {}
            }
        }
        let count = if changes_base {
            1
        } else {
            let salt = if requested.is_absolute() { 0 } else { salt };
            let key = SeenKey {
                mntns: event.mntns,
                op: slim_common::seen_op(event.op, ok, event.second, event.phase, event.flags),
                hash: path_hash(&event.path, salt),
            };
            raw.seen.get(&key).copied().unwrap_or(1).max(1) as u64
        };
        let touched = self.paths.entry(path).or_default();
        touched.count += count;
        if ok {
            touched.ok.insert(access);
            if access == Use::Write {
                if let Some(exe) = &process.exe {
                    touched.writers.insert(exe.clone());
                }
            }
        } else {
            touched.failed.insert(access);
            touched.exists_despite_failure |= !errno_means_absent(event.ret);
        }
    }

    /// Joins the recording of another start of the same image: every path with its uses and
    /// counts, the executions (first seen first), syscalls and sockets, and the counters.
    pub fn merge(&mut self, other: Recording) {
        for (path, touched) in other.paths {
            let mine = self.paths.entry(path).or_default();
            mine.ok.extend(touched.ok);
            mine.failed.extend(touched.failed);
            mine.count += touched.count;
            mine.exists_despite_failure |= touched.exists_despite_failure;
            mine.writers.extend(touched.writers);
        }
        for exec in other.execs {
            if !self.execs.contains(&exec) {
                self.execs.push(exec);
            }
        }
        self.arch = self.arch.or(other.arch);
        self.app_failed_only = failed_in_both(
            std::mem::take(&mut self.app_failed_only),
            &self.app_syscalls,
            other.app_failed_only,
            &other.app_syscalls,
        );
        self.compat_app_failed_only = failed_in_both(
            std::mem::take(&mut self.compat_app_failed_only),
            &self.compat_app_syscalls,
            other.compat_app_failed_only,
            &other.compat_app_syscalls,
        );
        self.syscall_numbers.extend(other.syscall_numbers);
        self.app_syscalls.extend(other.app_syscalls);
        self.runtime_syscalls.extend(other.runtime_syscalls);
        self.runtime_syscalls
            .retain(|nr| !self.app_syscalls.contains(nr));
        self.compat_app_syscalls.extend(other.compat_app_syscalls);
        self.sockets.extend(other.sockets);
        let (mine, theirs) = (&mut self.stats, other.stats);
        mine.events += theirs.events;
        mine.lost += theirs.lost;
        mine.deduped += theirs.deduped;
        mine.truncated += theirs.truncated;
        mine.read_failed += theirs.read_failed;
        self.unresolved += other.unresolved;
    }

    /// Adds the interpreters the kernel loaded for every executed file (ELF `PT_INTERP`, `#!`),
    /// following chains (a script whose interpreter is a dynamically linked ELF).
    pub fn add_interpreters(&mut self, files: &dyn FileSource) {
        let mut work: Vec<PathBuf> = self.execs.clone();
        let mut done = BTreeSet::new();
        while let Some(path) = work.pop() {
            if !done.insert(path.clone()) || done.len() > 10_000 {
                continue;
            }
            let Some(head) = files.head(&path, elf::HEAD_LEN) else {
                continue;
            };
            let Some(interpreter) = elf::interpreter(&head) else {
                continue;
            };
            let interp = normalize(interpreter.path());
            let touched = self.paths.entry(interp.clone()).or_default();
            touched.ok.insert(Use::Interpreter);
            touched.count += 1;
            work.push(interp);
        }
    }

    /// libseccomp names of the syscalls used, 64- and 32-bit (numbers without a name are shown
    /// as `#N`), sorted.
    pub fn syscall_names(&self) -> Vec<String> {
        let mut names = self.names_of(&self.syscall_numbers);
        names.extend(self.compat_syscall_names());
        names.sort();
        names.dedup();
        names
    }

    /// libseccomp names of the calls the app only tried (they returned nothing but errors in
    /// every process, 64- and 32-bit), with the first errno each got.
    pub fn failed_only_names(&self) -> BTreeMap<String, u32> {
        let compat = self.arch.and_then(Arch::compat);
        let named = |arch: Option<Arch>, nr: u32| arch.and_then(|a| a.name(nr)).map(str::to_owned);
        let mut succeeded = BTreeSet::new();
        let tables = [
            (self.arch, &self.app_syscalls, &self.app_failed_only),
            (
                compat,
                &self.compat_app_syscalls,
                &self.compat_app_failed_only,
            ),
        ];
        for (arch, made, failed) in tables {
            for &nr in made.iter().filter(|nr| !failed.contains_key(nr)) {
                succeeded.extend(named(arch, nr));
            }
        }
        let mut names = BTreeMap::new();
        for (arch, _, failed) in tables {
            for (&nr, &errno) in failed {
                if let Some(name) = named(arch, nr).filter(|n| !succeeded.contains(n)) {
                    names.entry(name).or_insert(errno);
                }
            }
        }
        names
    }

    /// libseccomp names of the 32-bit processes' syscalls (compat table), sorted.
    pub fn compat_syscall_names(&self) -> Vec<String> {
        let compat = self.arch.and_then(Arch::compat);
        Self::names_in(compat, &self.compat_app_syscalls)
    }

    /// Names of every syscall the app made, 64- and 32-bit, sorted and deduplicated.
    pub fn app_syscall_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.names_of(&self.app_syscalls).into_iter().collect();
        names.extend(self.compat_syscall_names());
        names
    }

    /// libseccomp names of `numbers` on the recording's architecture, sorted.
    pub fn names_of(&self, numbers: &BTreeSet<u32>) -> Vec<String> {
        Self::names_in(self.arch, numbers)
    }

    fn names_in(arch: Option<Arch>, numbers: &BTreeSet<u32>) -> Vec<String> {
        let mut names: Vec<String> = numbers
            .iter()
            .map(|&nr| match arch.and_then(|a| a.name(nr)) {
                Some(name) => name.to_owned(),
                None => format!("#{nr}"),
            })
            .collect();
        names.sort();
        names
    }
}

fn bytes_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// The use an event stands for.
fn access_of(event: &RawEvent, dir_open_flags: u32) -> Use {
    match event.op {
        op::OPEN if event.flags & dir_open_flags as u64 != 0 => Use::Directory,
        op::OPEN if event.flags & slim_common::OPEN_WRITE_FLAGS != 0 => Use::Write,
        op::OPEN => Use::Read,
        op::EXEC => Use::ExecAttempt,
        op::STAT => Use::Stat,
        op::ACCESS => Use::Access,
        op::READLINK => Use::Readlink,
        op::CHDIR | op::FCHDIR => Use::Chdir,
        op::MKDIR => Use::Mkdir,
        op::UNLINK => Use::Unlink,
        op::RENAME => Use::Rename,
        op::SYMLINK => Use::Symlink,
        op::BIND => Use::Bind,
        op::CONNECT => Use::Connect,
        op::MKNOD => Use::Mknod,
        _ => Use::Link,
    }
}

#[cfg(test)]
mod tests;

/// The calls that only failed in two recordings joined: failed only in one or both, and made
/// with success in neither (`made` holds every call of a recording, whatever its outcome).
fn failed_in_both(
    mine: BTreeMap<u32, u32>,
    my_calls: &BTreeSet<u32>,
    theirs: BTreeMap<u32, u32>,
    their_calls: &BTreeSet<u32>,
) -> BTreeMap<u32, u32> {
    let succeeded = |calls: &BTreeSet<u32>, failed: &BTreeMap<u32, u32>, nr: &u32| {
        calls.contains(nr) && !failed.contains_key(nr)
    };
    let mut joined = BTreeMap::new();
    for (&nr, &errno) in mine.iter().chain(&theirs) {
        if !succeeded(my_calls, &mine, &nr) && !succeeded(their_calls, &theirs, &nr) {
            joined.entry(nr).or_insert(errno);
        }
    }
    joined
}
