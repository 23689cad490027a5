use super::*;

const DIR_FLAGS: u32 = 0o200000 | 0o10000000;

fn path_event(pid: u32, op: u8, dirfd: i64, path: &str, ret: i64, flags: u64) -> RawEvent {
    RawEvent {
        kind: event_kind::PATH,
        pid,
        tid: pid,
        mntns: 1,
        inum: 1,
        aux: 0,
        op,
        second: false,
        truncated: false,
        phase: slim_common::phase::APP as u8,
        dirfd,
        flags,
        ret,
        path: path.as_bytes().to_vec(),
    }
}

fn other(kind: u32, pid: u32, aux: u32, path: &str) -> RawEvent {
    RawEvent {
        kind,
        aux,
        ..path_event(pid, 0, 0, path, 0, 0)
    }
}

fn raw(events: Vec<RawEvent>) -> RawRecording {
    RawRecording {
        arch: Some(Arch::X86_64),
        events,
        dir_open_flags: DIR_FLAGS,
        ..Default::default()
    }
}

fn filter() -> Filter {
    Filter {
        mount_namespaces: None,
        initial_cwd: "/work".into(),
        from_first_exec: false,
    }
}

const CWD: i64 = slim_common::AT_FDCWD;

#[test]
fn chdir_then_relative_open_is_absolute() {
    let rec = Recording::build(
        &raw(vec![
            path_event(10, op::CHDIR, CWD, "/usr/share", 0, 0),
            path_event(10, op::OPEN, CWD, "./common-licenses/GPL-3", 3, 0),
        ]),
        &filter(),
    );
    let touched = &rec.paths[Path::new("/usr/share/common-licenses/GPL-3")];
    assert!(touched.ok.contains(&Use::Read));
    assert!(rec.paths.contains_key(Path::new("/usr/share")));
}

#[test]
fn fork_inherits_cwd_and_exit_forgets() {
    let rec = Recording::build(
        &raw(vec![
            path_event(10, op::CHDIR, CWD, "/srv", 0, 0),
            other(event_kind::FORK, 10, 11, ""),
            path_event(11, op::STAT, CWD, "app.py", 0, 0),
            other(event_kind::EXIT, 11, 0, ""),
            path_event(11, op::STAT, CWD, "later.py", -2, 0),
        ]),
        &filter(),
    );
    assert!(rec.paths[Path::new("/srv/app.py")].found());
    // pid 11 reused after exit: starts again from the initial cwd; the failure is kept.
    let later = &rec.paths[Path::new("/work/later.py")];
    assert!(!later.found());
    assert!(later.failed.contains(&Use::Stat));
}

#[test]
fn dirfd_resolution_and_unknown_fds() {
    let rec = Recording::build(
        &raw(vec![
            path_event(10, op::OPEN, CWD, "/usr/lib/python3", 5, 0o200000),
            path_event(10, op::OPEN, 5, "json/__init__.py", 6, 0),
            path_event(10, op::STAT, 9, "nowhere", 0, 0),
        ]),
        &filter(),
    );
    assert!(rec.paths[Path::new("/usr/lib/python3")]
        .ok
        .contains(&Use::Directory));
    assert!(rec
        .paths
        .contains_key(Path::new("/usr/lib/python3/json/__init__.py")));
    assert_eq!(rec.unresolved, 1);
}

#[test]
fn write_intent_and_kernel_counts() {
    let mut r = raw(vec![
        path_event(10, op::OPEN, CWD, "/tmp/out", 3, 0o1101),
        path_event(10, op::OPEN, CWD, "/etc/hosts", 3, 0),
    ]);
    let key = SeenKey {
        mntns: 1,
        op: slim_common::seen_op(op::OPEN, true, false, slim_common::phase::APP as u8, 0),
        hash: path_hash(b"/etc/hosts", 0),
    };
    r.seen.insert(key, 7);
    let rec = Recording::build(&r, &filter());
    assert!(rec.paths[Path::new("/tmp/out")].ok.contains(&Use::Write));
    assert_eq!(rec.paths[Path::new("/etc/hosts")].count, 7);
}

#[test]
fn a_file_read_then_written_counts_reads_and_writes_apart() {
    let read =
        |flags| slim_common::seen_op(op::OPEN, true, false, slim_common::phase::APP as u8, flags);
    assert_ne!(
        read(0),
        read(0o1101),
        "a write is not deduplicated against a read"
    );
    assert_ne!(read(0), read(0o2), "O_RDWR writes");
    assert_eq!(read(0), read(0o2000000), "O_CLOEXEC changes nothing");
    let mut r = raw(vec![
        path_event(10, op::OPEN, CWD, "/var/lib/app/counter", 3, 0),
        path_event(10, op::OPEN, CWD, "/var/lib/app/counter", 4, 0o1101),
    ]);
    for (flags, count) in [(0, 5), (0o1101, 4)] {
        let key = SeenKey {
            mntns: 1,
            op: read(flags),
            hash: path_hash(b"/var/lib/app/counter", 0),
        };
        r.seen.insert(key, count);
    }
    let rec = Recording::build(&r, &filter());
    let counter = &rec.paths[Path::new("/var/lib/app/counter")];
    assert!(counter.ok.contains(&Use::Read) && counter.ok.contains(&Use::Write));
    assert_eq!(counter.count, 9);
}

#[test]
fn mount_namespace_filter() {
    let mut foreign = path_event(10, op::OPEN, CWD, "/secret", 3, 0);
    foreign.mntns = 2;
    let rec = Recording::build(
        &raw(vec![foreign, path_event(10, op::OPEN, CWD, "/mine", 3, 0)]),
        &Filter {
            mount_namespaces: Some([1].into()),
            initial_cwd: "/".into(),
            from_first_exec: false,
        },
    );
    assert!(rec.paths.contains_key(Path::new("/mine")));
    assert!(!rec.paths.contains_key(Path::new("/secret")));
}

struct Files(Vec<(&'static str, Vec<u8>)>);

impl FileSource for Files {
    fn head(&self, path: &Path, _len: usize) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(p, _)| Path::new(p) == path)
            .map(|(_, b)| b.clone())
    }
}

#[test]
fn interpreters_of_scripts_and_elves() {
    let sh = std::fs::read("/bin/sh").expect("/bin/sh");
    let files = Files(vec![
        ("/app/run", b"#!/bin/sh\necho hi\n".to_vec()),
        ("/bin/sh", sh),
    ]);
    let mut rec = Recording::build(
        &raw(vec![other(event_kind::EXEC, 10, 0, "/app/run")]),
        &filter(),
    );
    rec.add_interpreters(&files);
    assert!(rec.paths[Path::new("/bin/sh")]
        .ok
        .contains(&Use::Interpreter));
    let interps = rec
        .paths
        .iter()
        .filter(|(_, t)| t.ok.contains(&Use::Interpreter))
        .count();
    assert_eq!(interps, 2, "the script's /bin/sh and /bin/sh's ld.so");
}

#[test]
fn relative_repeats_are_counted_per_base() {
    // The kernel sent `x` once per base: after chdir /a (generation 1) it folded 4 repeats.
    let mut r = raw(vec![
        path_event(10, op::CHDIR, CWD, "/a", 0, 0),
        path_event(10, op::OPEN, CWD, "x", 3, 0),
        path_event(10, op::CHDIR, CWD, "/b", 0, 0),
        path_event(10, op::OPEN, CWD, "x", 3, 0),
    ]);
    let key = |generation| SeenKey {
        mntns: 1,
        op: slim_common::seen_op(op::OPEN, true, false, slim_common::phase::APP as u8, 0),
        hash: path_hash(b"x", relative_salt(10, CWD, generation)),
    };
    r.seen.insert(key(1), 5);
    r.seen.insert(key(2), 2);
    let rec = Recording::build(&r, &filter());
    assert_eq!(rec.paths[Path::new("/a/x")].count, 5);
    assert_eq!(rec.paths[Path::new("/b/x")].count, 2);
}

#[test]
fn runtime_setup_before_the_first_exec_can_be_skipped() {
    let runtime = |path: &str| RawEvent {
        phase: slim_common::phase::RUNTIME as u8,
        ..path_event(10, op::OPEN, CWD, path, 3, 0)
    };
    let events = vec![
        runtime("/var/lib/docker/overlay2/x/merged/etc/hosts"),
        runtime("/etc/passwd"),
        other(event_kind::EXEC, 10, 0, "/usr/bin/app"),
        path_event(10, op::OPEN, CWD, "/etc/app.conf", 3, 0),
        // The app's own open of a path the runtime opened too is its own event.
        path_event(10, op::OPEN, CWD, "/etc/passwd", 3, 0),
    ];
    let mut f = filter();
    f.from_first_exec = true;
    let rec = Recording::build(&raw(events), &f);
    assert!(!rec.paths.keys().any(|p| p.starts_with("/var/lib/docker")));
    assert!(rec.paths.contains_key(Path::new("/etc/app.conf")));
    assert_eq!(rec.paths[Path::new("/etc/passwd")].count, 1);
}

#[test]
fn failures_that_prove_existence_are_kept_as_existing() {
    let rec = Recording::build(
        &raw(vec![
            path_event(10, op::MKDIR, CWD, "/var/lib/nginx/body", -17, 0),
            path_event(10, op::STAT, CWD, "/nope", -2, 0),
        ]),
        &filter(),
    );
    let body = &rec.paths[Path::new("/var/lib/nginx/body")];
    assert!(!body.found() && body.exists());
    assert!(!rec.paths[Path::new("/nope")].exists());
}

#[test]
fn two_starts_join_into_one_recording() {
    let mut first = Recording::build(
        &raw(vec![
            path_event(10, op::OPEN, CWD, "/etc/app.conf", 3, 0),
            path_event(10, op::OPEN, CWD, "/etc/missing", -2, 0),
        ]),
        &filter(),
    );
    first.app_syscalls = [0, 1].into();
    first.runtime_syscalls = [7].into();
    let mut second = Recording::build(
        &raw(vec![
            path_event(20, op::OPEN, CWD, "/etc/app.conf", 3, 0),
            path_event(20, op::STAT, CWD, "/etc/missing", 0, 0),
            path_event(20, op::OPEN, CWD, "/var/cache/app", 3, 0o100),
        ]),
        &filter(),
    );
    second.app_syscalls = [1, 7].into();
    first.merge(second);
    assert_eq!(first.paths[Path::new("/etc/app.conf")].count, 2);
    let missing = &first.paths[Path::new("/etc/missing")];
    assert!(missing.found(), "found in the second start");
    assert!(missing.failed.contains(&Use::Read));
    assert!(first.paths[Path::new("/var/cache/app")]
        .ok
        .contains(&Use::Write));
    assert_eq!(first.app_syscalls, [0, 1, 7].into());
    assert!(
        first.runtime_syscalls.is_empty(),
        "a call the app made is not the runtime's alone"
    );
}

#[test]
fn a_call_failed_only_in_one_start_and_made_with_success_in_another_is_not_failed_only() {
    let arch = Arch::X86_64;
    let nr = |name: &str| arch.number(name).unwrap();
    let start = |made: &[&str], failed: &[(&str, u32)]| Recording {
        arch: Some(arch),
        app_syscalls: made.iter().map(|n| nr(n)).collect(),
        app_failed_only: failed.iter().map(|&(n, e)| (nr(n), e)).collect(),
        ..Default::default()
    };
    let mut first = start(
        &["read", "keyctl", "userfaultfd"],
        &[("keyctl", 13), ("userfaultfd", 1)],
    );
    // The second start made keyctl with success, and tried bpf.
    first.merge(start(&["read", "keyctl", "bpf"], &[("bpf", 1)]));
    assert_eq!(
        first.failed_only_names(),
        [("userfaultfd".to_owned(), 1), ("bpf".to_owned(), 1)].into()
    );
}

#[test]
fn a_call_that_succeeded_in_a_32_bit_process_is_not_failed_only() {
    let arch = Arch::X86_64;
    let compat = arch.compat().unwrap();
    let recording = Recording {
        arch: Some(arch),
        app_syscalls: [arch.number("keyctl").unwrap()].into(),
        app_failed_only: [(arch.number("keyctl").unwrap(), 13)].into(),
        compat_app_syscalls: [compat.number("keyctl").unwrap()].into(),
        ..Default::default()
    };
    assert!(recording.failed_only_names().is_empty());
}
