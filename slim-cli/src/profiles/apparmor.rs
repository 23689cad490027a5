//! The AppArmor profile: file rules for what the app read, wrote, executed and mapped (at the
//! paths the kernel mediates: symlinks resolved inside the image), network rules for the socket
//! families and types it created, capability rules inferred from its syscalls, signal and ptrace
//! rules confined to the profile itself, and deny rules for kernel knobs whatever else allows.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::ImageFiles;
use crate::recording::{Recording, Use};

/// File permissions of one rule, as AppArmor spells them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Perms {
    read: bool,
    write: bool,
    lock: bool,
    link: bool,
    map: bool,
    exec: bool,
}

impl Perms {
    fn merge(&mut self, other: Perms) {
        self.read |= other.read;
        self.write |= other.write;
        self.lock |= other.lock;
        self.link |= other.link;
        self.map |= other.map;
        self.exec |= other.exec;
    }

    fn render(self) -> String {
        let mut text = String::new();
        for (on, letter) in [
            (self.map, "m"),
            (self.read, "r"),
            (self.write, "w"),
            (self.lock, "k"),
            (self.link, "l"),
            (self.exec, "ix"),
        ] {
            if on {
                text.push_str(letter);
            }
        }
        text
    }
}

/// Counts of the rules written, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounts {
    pub file: usize,
    pub network: usize,
    pub capability: usize,
    pub deny: usize,
}

/// A rendered AppArmor profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppArmorProfile {
    pub name: String,
    pub text: String,
    /// The same profile in complain mode: what it would refuse is logged and allowed (for a
    /// canary in production).
    pub complain_text: String,
    /// Socket families the app created that the profile cannot name (no `network` rule, so
    /// AppArmor refuses them).
    pub unnamed_families: Vec<u32>,
    pub rules: RuleCounts,
    pub capabilities: Vec<&'static str>,
}

/// What the generator needs besides the recording.
pub struct Context<'a> {
    /// Profile name (`slim-...`).
    pub name: &'a str,
    /// The image, to resolve paths and recognise ELF objects.
    pub files: &'a dyn ImageFiles,
    /// libseccomp names of the syscalls the app made.
    pub app_syscalls: &'a BTreeSet<String>,
    /// Container ports the app serves (privileged ones need `net_bind_service`).
    pub ports: &'a [u16],
}

/// Capabilities the app's syscalls show it may use, each with the calls that need it. AppArmor
/// mediates capabilities on top of the container's own set: a root server that drops privileges
/// without `capability setuid` fails.
const CAPABILITY_EVIDENCE: &[(&str, &[&str])] = &[
    ("chown", &["chown", "fchown", "fchownat", "lchown"]),
    (
        "fowner",
        &[
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "utimensat",
            "utimes",
            "futimesat",
        ],
    ),
    ("fsetid", &["chmod", "fchmod", "fchmodat", "fchmodat2"]),
    ("mknod", &["mknod", "mknodat"]),
    (
        "setgid",
        &["setgid", "setregid", "setresgid", "setgroups", "setfsgid"],
    ),
    ("setuid", &["setuid", "setreuid", "setresuid", "setfsuid"]),
    ("setpcap", &["capset"]),
    ("sys_chroot", &["chroot"]),
];

/// Address families by number (Linux `AF_*`) as AppArmor names them: the ones its parser has
/// known since 3.0 (newer ones, xdp and mctp, are reported instead of written).
fn family_name(family: u32) -> Option<&'static str> {
    const NAMES: [&str; 44] = [
        "",
        "unix",
        "inet",
        "ax25",
        "ipx",
        "appletalk",
        "netrom",
        "bridge",
        "atmpvc",
        "x25",
        "inet6",
        "rose",
        "",
        "netbeui",
        "security",
        "key",
        "netlink",
        "packet",
        "ash",
        "econet",
        "atmsvc",
        "rds",
        "sna",
        "irda",
        "pppox",
        "wanpipe",
        "llc",
        "ib",
        "mpls",
        "can",
        "tipc",
        "bluetooth",
        "iucv",
        "rxrpc",
        "isdn",
        "phonet",
        "ieee802154",
        "caif",
        "alg",
        "nfc",
        "vsock",
        "kcm",
        "qipcrtr",
        "smc",
    ];
    NAMES
        .get(family as usize)
        .copied()
        .filter(|name| !name.is_empty())
}

/// Socket types by number (`SOCK_*`).
fn type_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        4 => "rdm",
        5 => "seqpacket",
        _ => return None,
    })
}

/// Profiles that stop a container: the engine and runtimes unconfined, or confined under their
/// own profiles (Ubuntu's `runc`, `crun`, `podman`...).
const SIGNALLING_PEERS: &[&str] = &["unconfined", "runc", "crun", "podman", "containerd"];

/// Directories whose files the app creates with names that change from run to run.
const TEMP_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run"];

/// Always denied, even where a recorded rule would allow it: kernel knobs, raw memory, firmware
/// and the security filesystem, and mounts.
const DENY_RULES: &[&str] = &[
    "deny @{PROC}/sysrq-trigger rwklx,",
    "deny @{PROC}/kcore rwklx,",
    "deny @{PROC}/kmem rwklx,",
    "deny @{PROC}/mem rwklx,",
    "deny @{PROC}/sys/** wklx,",
    "deny /sys/firmware/** rwklx,",
    "deny /sys/kernel/security/** rwklx,",
    "deny /sys/devices/virtual/powercap/** rwklx,",
    "deny /sys/** wklx,",
    "deny mount,",
    "deny umount,",
    "deny pivot_root,",
];

/// Writes the profile for what `recording` shows the app did.
pub fn generate(recording: &Recording, context: &Context) -> AppArmorProfile {
    let mut rules: BTreeMap<String, Perms> = BTreeMap::new();
    let mut created_in: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (path, touched) in &recording.paths {
        let in_image = context.files.real_path(path);
        let real = in_image.clone().unwrap_or_else(|| path.clone());
        let mut perms = Perms::default();
        let mut directory = false;
        for usage in &touched.ok {
            match usage {
                Use::Exec => {
                    perms.exec = true;
                    perms.read = true;
                    perms.map = true;
                }
                Use::Interpreter => {
                    perms.read = true;
                    perms.map = true;
                }
                Use::Read => perms.read = true,
                Use::Write => {
                    perms.read = true;
                    perms.write = true;
                    perms.lock = true;
                }
                Use::Directory => directory = true,
                Use::Mkdir => {
                    directory = true;
                    perms.write = true;
                }
                Use::Unlink | Use::Rename | Use::Symlink => perms.write = true,
                Use::Link => {
                    perms.write = true;
                    perms.link = true;
                }
                // Not mediated by AppArmor's file rules.
                Use::ExecAttempt | Use::Stat | Use::Access | Use::Readlink | Use::Chdir => {}
            }
        }
        if perms.read && !perms.map && context.files.is_elf(&real) {
            perms.map = true; // a library or plug-in the loader maps
        }
        let Some(glob) = glob_path(&real) else {
            continue;
        };
        if directory {
            let dir_perms = Perms {
                read: true,
                write: perms.write && touched.ok.contains(&Use::Mkdir),
                ..Default::default()
            };
            rules
                .entry(format!("{}/", glob.trim_end_matches('/')))
                .or_default()
                .merge(dir_perms);
            if !perms.write || touched.ok.contains(&Use::Mkdir) {
                continue;
            }
        }
        if perms == Perms::default() {
            continue;
        }
        if perms.write && in_image.is_none() {
            if let Some(parent) = real.parent() {
                *created_in.entry(parent.to_path_buf()).or_default() += 1;
            }
        }
        rules.entry(glob).or_default().merge(perms);
    }
    collapse_created(&mut rules, &created_in);

    let mut network: BTreeSet<String> = BTreeSet::new();
    let mut unnamed_families = BTreeSet::new();
    for &(family, kind) in &recording.sockets {
        match (family_name(family), type_name(kind)) {
            (Some(family), Some(kind)) => network.insert(format!("network {family} {kind},")),
            (Some(family), None) => network.insert(format!("network {family},")),
            (None, _) => unnamed_families.insert(family),
        };
    }
    let has = |name: &str| context.app_syscalls.contains(name);
    let mut capabilities: Vec<&'static str> = CAPABILITY_EVIDENCE
        .iter()
        .filter(|(_, calls)| calls.iter().any(|c| has(c)))
        .map(|(cap, _)| *cap)
        .collect();
    if has("bind") && context.ports.iter().any(|&p| p < 1024) {
        capabilities.push("net_bind_service");
    }
    if recording
        .sockets
        .iter()
        .any(|&(family, kind)| (kind == 3 && (family == 2 || family == 10)) || family == 17)
    {
        capabilities.push("net_raw");
    }
    let dropped_privileges = has("setuid") || has("setresuid") || has("setreuid");
    if dropped_privileges && (has("kill") || has("tgkill") || has("tkill")) {
        capabilities.push("kill"); // signals between the root master and its unprivileged workers
    }
    if dropped_privileges {
        // A root master that drops privileges still opens what its workers own (logs, sockets,
        // state) as root.
        capabilities.push("dac_override");
    }
    capabilities.sort_unstable();
    capabilities.dedup();

    let name = context.name;
    let mut text = String::new();
    text.push_str(&format!(
        "# AppArmor profile {name}, written by slim from what the app did while it was recorded.\n\
         # Load it: apparmor_parser -r -W apparmor.profile\n\
         # Use it:  docker run --security-opt apparmor={name} IMAGE\n\n"
    ));
    text.push_str("#include <tunables/global>\n\n");
    text.push_str(&format!(
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n"
    ));
    text.push_str("  #include <abstractions/base>\n\n");
    if !network.is_empty() {
        text.push_str("  # Sockets the app created (family, type).\n");
        for rule in &network {
            text.push_str(&format!("  {rule}\n"));
        }
        text.push('\n');
    }
    if !capabilities.is_empty() {
        text.push_str(
            "  # Capabilities its syscalls need: changing users and groups, owners and modes,\n  \
             # privileged ports, raw sockets; dac_override and kill when a root process drops\n  \
             # privileges and still manages what its workers own.\n",
        );
        for cap in &capabilities {
            text.push_str(&format!("  capability {cap},\n"));
        }
        text.push('\n');
    }
    text.push_str(
        "  # Signals and tracing only within the container's own profile; the engine and the\n  \
         # container runtimes (unconfined, or under their own profiles as on Ubuntu 23.10+)\n  \
         # may signal it to stop.\n",
    );
    for peer in SIGNALLING_PEERS {
        text.push_str(&format!("  signal (receive) peer={peer},\n"));
    }
    text.push_str(&format!("  signal (send,receive) peer={name},\n"));
    text.push_str(&format!(
        "  ptrace (read,readby,trace,tracedby) peer={name},\n\n"
    ));
    text.push_str(
        "  # Files the app used: r read, w written or created, k locked, l linked,\n  \
                   # ix executed, m mapped (ELF objects).\n",
    );
    for (path, perms) in &rules {
        text.push_str(&format!("  {} {},\n", quote(path), perms.render()));
    }
    text.push_str("\n  # Never, whatever the rules above say.\n");
    for rule in DENY_RULES {
        text.push_str(&format!("  {rule}\n"));
    }
    text.push_str("}\n");
    let complain_text = text.replacen(
        "flags=(attach_disconnected,mediate_deleted)",
        "flags=(complain,attach_disconnected,mediate_deleted)",
        1,
    );
    AppArmorProfile {
        name: name.to_owned(),
        text,
        complain_text,
        unnamed_families: unnamed_families.into_iter().collect(),
        rules: RuleCounts {
            file: rules.len(),
            network: network.len(),
            capability: capabilities.len(),
            deny: DENY_RULES.len(),
        },
        capabilities,
    }
}

/// Files created at run time with changing names: two or more in one directory, or any in a
/// temp directory, become `dir/*`.
fn collapse_created(rules: &mut BTreeMap<String, Perms>, created_in: &BTreeMap<PathBuf, usize>) {
    for (dir, &count) in created_in {
        let temp = TEMP_DIRS.iter().any(|t| dir.starts_with(t));
        if count < 2 && !temp {
            continue;
        }
        let Some(dir_glob) = glob_path(dir) else {
            continue;
        };
        let prefix = format!("{}/", dir_glob.trim_end_matches('/'));
        let mut merged = Perms::default();
        rules.retain(|path, perms| {
            let direct = path
                .strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
            if direct && perms.write {
                merged.merge(*perms);
                false
            } else {
                true
            }
        });
        if merged != Perms::default() {
            rules.entry(format!("{prefix}*")).or_default().merge(merged);
        }
    }
}

/// The path as an AppArmor pattern: process ids under /proc become `@{pid}`, long digit or hex
/// runs (temp names, hashes) become `*`, characters that are pattern syntax are escaped.
/// `None` for paths a rule cannot name (relative, or with control characters).
fn glob_path(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if !text.starts_with('/') || text.chars().any(|c| c.is_control()) {
        return None;
    }
    let parts: Vec<&str> = text.split('/').skip(1).collect();
    let mut out = String::new();
    let in_proc = parts.first() == Some(&"proc");
    for (i, part) in parts.iter().enumerate() {
        out.push('/');
        let after = |n: usize| in_proc && i == n;
        if after(1) && (is_digits(part) || *part == "self" || *part == "thread-self") {
            out.push_str(if *part == "thread-self" {
                "@{pid}/task/@{tid}"
            } else {
                "@{pid}"
            });
            continue;
        }
        if in_proc && i == 3 && parts.get(2) == Some(&"task") && is_digits(part) {
            out.push_str("@{tid}");
            continue;
        }
        out.push_str(&glob_component(part));
    }
    Some(out)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// One path component: runs of 6+ digits, or 8+ hex digits holding both digits and letters,
/// become `*`; AppArmor's pattern characters are escaped.
fn glob_component(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let run_bytes = &bytes[i..i + run];
        let digits = run_bytes.iter().filter(|b| b.is_ascii_digit()).count();
        let variable = (run >= 6 && digits == run) || (run >= 8 && digits > 0 && digits < run);
        if variable {
            out.push('*');
            i += run;
            continue;
        }
        let c = part[i..].chars().next().unwrap_or('?');
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '^' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Quotes a path that holds spaces.
fn quote(path: &str) -> String {
    if path.contains([' ', '\t', '"']) {
        format!("\"{}\"", path.replace('"', "\\\""))
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Touched;

    /// An image of a few files: /bin -> /usr/bin, an ELF python, a library, a config.
    struct FakeImage;

    impl ImageFiles for FakeImage {
        fn real_path(&self, path: &Path) -> Option<PathBuf> {
            let text = path.to_str()?;
            let real = match text {
                "/bin/python3" | "/usr/bin/python3" => "/usr/bin/python3.11",
                "/lib64/ld-linux-x86-64.so.2" => "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "/usr/lib/x86_64-linux-gnu/libc.so.6"
                | "/etc/app.conf"
                | "/srv"
                | "/var/lib/app/state.db" => text,
                _ => return None,
            };
            Some(PathBuf::from(real))
        }

        fn is_elf(&self, path: &Path) -> bool {
            path.to_str()
                .is_some_and(|p| p.contains(".so") || p.ends_with("python3.11"))
        }
    }

    fn touched(uses: &[Use]) -> Touched {
        Touched {
            ok: uses.iter().copied().collect(),
            count: 1,
            ..Default::default()
        }
    }

    fn recording() -> Recording {
        let mut recording = Recording::default();
        for (path, uses) in [
            ("/bin/python3", &[Use::Exec][..]),
            ("/lib64/ld-linux-x86-64.so.2", &[Use::Interpreter]),
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", &[Use::Read]),
            ("/etc/app.conf", &[Use::Read]),
            ("/etc/missing", &[Use::Stat]),
            ("/srv", &[Use::Directory]),
            ("/var/lib/app/state.db", &[Use::Write]),
            ("/tmp/tmpk2j4x9a1", &[Use::Write]),
            ("/proc/1234/status", &[Use::Read]),
            ("/proc/self/fd", &[Use::Directory]),
            ("/var/cache/app/1700000000123.json", &[Use::Write]),
        ] {
            recording.paths.insert(PathBuf::from(path), touched(uses));
        }
        recording.sockets = [(2, 1), (10, 1), (1, 2), (99, 1)].into();
        recording
    }

    fn profile(syscalls: &[&str], ports: &[u16]) -> AppArmorProfile {
        let app_syscalls: BTreeSet<String> = syscalls.iter().map(|s| s.to_string()).collect();
        generate(
            &recording(),
            &Context {
                name: "slim-app",
                files: &FakeImage,
                app_syscalls: &app_syscalls,
                ports,
            },
        )
    }

    #[test]
    fn file_rules_follow_the_recording_at_resolved_paths() {
        let p = profile(&["read"], &[8000]);
        let text = &p.text;
        assert!(text.contains("  /usr/bin/python3.11 mrix,\n"), "{text}");
        assert!(!text.contains("/bin/python3 "), "unresolved path ruled");
        assert!(text.contains("  /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 mr,\n"));
        assert!(
            text.contains("  /usr/lib/x86_64-linux-gnu/libc.so.6 mr,\n"),
            "{text}"
        );
        assert!(text.contains("  /etc/app.conf r,\n"));
        assert!(text.contains("  /srv/ r,\n"));
        assert!(text.contains("  /var/lib/app/state.db rwk,\n"));
        assert!(text.contains("  /tmp/* rwk,\n"), "{text}");
        assert!(text.contains("  /proc/@{pid}/status r,\n"));
        assert!(text.contains("  /proc/@{pid}/fd/ r,\n"));
        assert!(text.contains("  /var/cache/app/*.json rwk,\n"), "{text}");
        assert!(!text.contains("/etc/missing"), "a stat needs no rule");
        assert!(text.contains("#include <abstractions/base>"));
        assert!(text.contains("profile slim-app flags=(attach_disconnected,mediate_deleted) {"));
        assert!(text.contains("  deny mount,\n"));
    }

    #[test]
    fn network_rules_for_the_sockets_seen() {
        let p = profile(&[], &[]);
        assert!(p.text.contains("  network inet stream,\n"));
        assert!(p.text.contains("  network inet6 stream,\n"));
        assert!(p.text.contains("  network unix dgram,\n"));
        assert_eq!(p.rules.network, 3, "unknown family 99 is not written");
        assert!(!p.text.contains("network packet"));
        assert_eq!(p.unnamed_families, [99], "and it is reported");
        assert_eq!(family_name(38), Some("alg"));
        assert_eq!(family_name(12), None, "decnet is gone from the kernel");
        assert_eq!(
            family_name(44),
            None,
            "xdp: newer than AppArmor 3.0's parser"
        );
    }

    #[test]
    fn the_runtimes_may_stop_it_and_complain_mode_differs_only_in_its_flags() {
        let p = profile(&[], &[]);
        for peer in ["unconfined", "runc", "crun", "podman"] {
            assert!(
                p.text
                    .contains(&format!("  signal (receive) peer={peer},\n")),
                "{peer}"
            );
        }
        assert!(p
            .text
            .contains("  deny /sys/devices/virtual/powercap/** rwklx,\n"));
        assert!(p
            .complain_text
            .contains("flags=(complain,attach_disconnected,mediate_deleted)"));
        assert_eq!(
            p.complain_text.replace("complain,", ""),
            p.text,
            "complain mode changes nothing else"
        );
    }

    #[test]
    fn capabilities_only_with_evidence() {
        assert!(profile(&["read", "write"], &[80]).capabilities.is_empty());
        let server = profile(
            &["bind", "setuid", "setgid", "setgroups", "kill", "chown"],
            &[80],
        );
        assert_eq!(
            server.capabilities,
            [
                "chown",
                "dac_override",
                "kill",
                "net_bind_service",
                "setgid",
                "setuid"
            ]
        );
        assert!(server.text.contains("  capability setuid,\n"));
        let high_port = profile(&["bind"], &[8080]);
        assert!(!high_port.capabilities.contains(&"net_bind_service"));
    }

    #[test]
    fn globs_and_escapes() {
        assert_eq!(
            glob_path(Path::new("/proc/42/task/43/stat")).unwrap(),
            "/proc/@{pid}/task/@{tid}/stat"
        );
        assert_eq!(
            glob_path(Path::new("/proc/thread-self/attr")).unwrap(),
            "/proc/@{pid}/task/@{tid}/attr"
        );
        assert_eq!(
            glob_path(Path::new("/srv/a{b}*")).unwrap(),
            "/srv/a\\{b\\}\\*"
        );
        assert_eq!(
            glob_path(Path::new("/data/base/5/3467")).unwrap(),
            "/data/base/5/3467"
        );
        assert_eq!(glob_path(Path::new("/c/0123abcd9f/x")).unwrap(), "/c/*/x");
        assert_eq!(
            glob_path(Path::new("/usr/lib/libc.so.6")).unwrap(),
            "/usr/lib/libc.so.6"
        );
        assert!(glob_path(Path::new("relative")).is_none());
    }
}
