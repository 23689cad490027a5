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
use crate::recording::{Recording, Touched, Use};

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
    /// Unix socket paths bound or connected to, and state directories.
    pub socket: usize,
    pub state: usize,
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
    /// Directories the app keeps state in (absolute paths in the image: a database's data
    /// directory, a declared VOLUME it wrote in): it creates files there after the recording.
    pub state_dirs: &'a [PathBuf],
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

/// Temp directories whose whole tree is allowed when the app made a directory with a changing
/// name there (`/tmp/tmpab12cd/...`).
const NESTED_TEMP_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

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
    let mut files = FileRules::default();
    for (path, touched) in &recording.paths {
        files.add(path, touched, context.files);
    }
    files.collapse();
    let FileRules {
        mut rules, sockets, ..
    } = files;
    let state_dirs = state_dir_globs(context);
    drop_rules_under(&mut rules, &state_dirs);
    let network = NetworkRules::new(recording);
    let evidence = capability_evidence(recording, context);
    let capabilities: Vec<&'static str> = evidence.keys().copied().collect();

    let name = context.name;
    let mut text = String::new();
    push_preamble(&mut text, name);
    push_network_rules(&mut text, &network);
    push_capability_rules(&mut text, &evidence);
    push_peer_rules(&mut text, name);
    push_file_rules(&mut text, &rules, &sockets);
    push_state_dir_rules(&mut text, &state_dirs);
    push_deny_rules(&mut text);
    let complain_text = text.replacen(
        "flags=(attach_disconnected,mediate_deleted)",
        "flags=(complain,attach_disconnected,mediate_deleted)",
        1,
    );
    AppArmorProfile {
        name: name.to_owned(),
        text,
        complain_text,
        unnamed_families: network.unnamed_families.into_iter().collect(),
        rules: RuleCounts {
            file: rules.len(),
            socket: sockets.len(),
            state: state_dirs.len(),
            network: network.network.len() + network.unix.len(),
            capability: capabilities.len(),
            deny: DENY_RULES.len(),
        },
        capabilities,
    }
}

/// File and socket-path rules as they are collected, with where the app created files (whose
/// names may change from run to run).
#[derive(Default)]
struct FileRules {
    rules: BTreeMap<String, Perms>,
    created_in: BTreeMap<PathBuf, usize>,
    nested_temp: BTreeSet<&'static str>,
    sockets: BTreeMap<String, Perms>,
    sockets_created_in: BTreeMap<PathBuf, usize>,
    sockets_nested: BTreeSet<&'static str>,
}

impl FileRules {
    /// Adds the rules for one path the app touched.
    fn add(&mut self, path: &Path, touched: &Touched, files: &dyn ImageFiles) {
        let in_image = files.real_path(path);
        // Not in the image (created at run time, a socket): where its directory really is.
        let real = in_image
            .clone()
            .unwrap_or_else(|| real_via_ancestor(files, path));
        let PathAccess {
            mut perms,
            directory,
            socket_paths,
        } = path_access(&touched.ok);
        if perms.read && !perms.map && !socket_paths && files.is_elf(&real) {
            perms.map = true; // a library or plug-in the loader maps
        }
        let Some(glob) = glob_path(&real) else {
            return;
        };
        if directory {
            let dir_perms = Perms {
                read: true,
                write: perms.write && touched.ok.contains(&Use::Mkdir),
                ..Default::default()
            };
            self.rules
                .entry(format!("{}/", glob.trim_end_matches('/')))
                .or_default()
                .merge(dir_perms);
            if !perms.write || touched.ok.contains(&Use::Mkdir) {
                return;
            }
        }
        if perms == Perms::default() {
            return;
        }
        if socket_paths {
            if in_image.is_none() {
                if let Some(parent) = real.parent() {
                    *self
                        .sockets_created_in
                        .entry(parent.to_path_buf())
                        .or_default() += 1;
                }
                if let Some(temp) = nested_in_temp(&real, files) {
                    self.sockets_nested.insert(temp);
                }
            }
            self.sockets.entry(glob).or_default().merge(perms);
            return;
        }
        if perms.write && in_image.is_none() {
            if let Some(parent) = real.parent() {
                *self.created_in.entry(parent.to_path_buf()).or_default() += 1;
            }
            if let Some(temp) = nested_in_temp(&real, files) {
                self.nested_temp.insert(temp);
            }
        }
        self.rules.entry(glob).or_default().merge(perms);
    }

    /// Replaces the rules of files created with changing names by rules for their directories.
    fn collapse(&mut self) {
        collapse_created(&mut self.rules, &self.created_in, true);
        // Sockets with changing names (several in one directory, or in a directory made with a
        // changing name): a fixed name in /run (php-fpm.sock) keeps its own rule.
        collapse_created(&mut self.sockets, &self.sockets_created_in, false);
        for temp in &self.sockets_nested {
            collapse_tree(&mut self.sockets, temp);
        }
        for temp in &self.nested_temp {
            collapse_tree(&mut self.rules, temp);
        }
    }
}

/// What the app's successful uses of one path ask of AppArmor.
struct PathAccess {
    perms: Perms,
    /// Used as a directory.
    directory: bool,
    /// Bound or connected to as a Unix socket.
    socket_paths: bool,
}

/// The permissions, in AppArmor's terms, that the uses `ok` of one path need.
fn path_access(ok: &BTreeSet<Use>) -> PathAccess {
    let mut perms = Perms::default();
    let mut directory = false;
    let mut socket_paths = false;
    for usage in ok {
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
            // AppArmor mediates a path socket's bind and connect as a write of its file.
            Use::Bind | Use::Connect => {
                perms.read = true;
                perms.write = true;
                socket_paths = true;
            }
            Use::Mknod => perms.write = true,
            // Not mediated by AppArmor's file rules.
            Use::ExecAttempt | Use::Stat | Use::Access | Use::Readlink | Use::Chdir => {}
        }
    }
    PathAccess {
        perms,
        directory,
        socket_paths,
    }
}

/// The app's state directories as AppArmor paths, without their trailing slash.
fn state_dir_globs(context: &Context) -> BTreeSet<String> {
    context
        .state_dirs
        .iter()
        .filter_map(|dir| glob_path(dir))
        .map(|dir| dir.trim_end_matches('/').to_owned())
        .filter(|dir| !dir.is_empty())
        .collect()
}

/// Drops the file rules a state directory's tree rule covers.
fn drop_rules_under(rules: &mut BTreeMap<String, Perms>, state_dirs: &BTreeSet<String>) {
    for dir in state_dirs {
        // The tree rule covers reads, writes and locks below; mapping, linking and executing
        // keep their own rules.
        let below = format!("{dir}/");
        rules.retain(|path, perms| {
            !(path.starts_with(&below) && !perms.map && !perms.exec && !perms.link)
        });
    }
}

/// The network and unix rules for the sockets the app created, and the families AppArmor
/// cannot name.
struct NetworkRules {
    network: BTreeSet<String>,
    unix: BTreeSet<String>,
    unnamed_families: BTreeSet<u32>,
}

impl NetworkRules {
    /// The rules for the sockets `recording` shows.
    fn new(recording: &Recording) -> Self {
        let mut network: BTreeSet<String> = BTreeSet::new();
        let mut unix: BTreeSet<String> = BTreeSet::new();
        let mut unnamed_families = BTreeSet::new();
        for &(family, kind) in &recording.sockets {
            match (family_name(family), type_name(kind)) {
                (Some(family), Some(kind)) => network.insert(format!("network {family} {kind},")),
                (Some(family), None) => network.insert(format!("network {family},")),
                (None, _) => unnamed_families.insert(family),
            };
            if family == AF_UNIX {
                // Under ABI 3.0, kernels that mediate Unix sockets finely (Ubuntu's, AppArmor
                // 4.1's) read `unix` rules, not `network unix`.
                unix.insert(match type_name(kind) {
                    Some(kind) => format!("unix type={kind},"),
                    None => "unix,".to_owned(),
                });
            }
        }
        Self {
            network,
            unix,
            unnamed_families,
        }
    }
}

/// Writes the comments on loading and using the profile, the ABI, the includes and the
/// profile's opening line.
fn push_preamble(text: &mut String, name: &str) {
    text.push_str(&format!(
        "# AppArmor profile {name}, written by slim from what the app did while it was recorded.\n\
         # Load it: apparmor_parser -r -K apparmor.profile\n\
         # Use it:  docker run --security-opt apparmor={name} IMAGE\n\n"
    ));
    text.push_str(
        "# ABI 3.0: the rule semantics of AppArmor 3 (parsers since 3.0 know it; on AppArmor 4.1\n\
         # kernels an undeclared ABI changes what the unix rules mean). AppArmor 2.x parsers\n\
         # (Debian 11, Ubuntu 20.04) refuse the line: delete it there.\nabi <abi/3.0>,\n\n",
    );
    text.push_str("#include <tunables/global>\n\n");
    text.push_str(&format!(
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n"
    ));
    text.push_str("  #include <abstractions/base>\n\n");
}

/// Writes the network and unix rules, if any.
fn push_network_rules(text: &mut String, network: &NetworkRules) {
    if !network.network.is_empty() {
        text.push_str("  # Sockets the app created (family, type).\n");
        for rule in network.network.iter().chain(&network.unix) {
            text.push_str(&format!("  {rule}\n"));
        }
        text.push('\n');
    }
}

/// Writes the capability rules, each with its evidence, if any.
fn push_capability_rules(text: &mut String, evidence: &BTreeMap<&'static str, String>) {
    if !evidence.is_empty() {
        text.push_str("  # Capabilities, each with the evidence the recording gave for it.\n");
        for (cap, why) in evidence {
            text.push_str(&format!("  capability {cap},  # {why}\n"));
        }
        text.push('\n');
    }
}

/// Writes the signal and ptrace rules: within the profile itself, and from the engine.
fn push_peer_rules(text: &mut String, name: &str) {
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
}

/// Writes the file rules, then the socket-path rules if any.
fn push_file_rules(
    text: &mut String,
    rules: &BTreeMap<String, Perms>,
    sockets: &BTreeMap<String, Perms>,
) {
    text.push_str(
        "  # Files the app used: r read, w written or created, k locked, l linked,\n  \
                   # ix executed, m mapped (ELF objects).\n",
    );
    for (path, perms) in rules {
        text.push_str(&format!("  {} {},\n", quote(path), perms.render()));
    }
    if !sockets.is_empty() {
        text.push_str("\n  # Unix sockets the app bound or connected to, by path.\n");
        for (path, perms) in sockets {
            text.push_str(&format!("  {} {},\n", quote(path), perms.render()));
        }
    }
}

/// Writes the tree rules of the state directories, if any.
fn push_state_dir_rules(text: &mut String, state_dirs: &BTreeSet<String>) {
    if !state_dirs.is_empty() {
        text.push_str(
            "\n  # State directories, kept whole in the image: the app creates files there after\n  \
             # the recording (a database's new tables), so the whole tree is allowed.\n",
        );
        for dir in state_dirs {
            text.push_str(&format!("  {} r,\n", quote(&format!("{dir}/"))));
            text.push_str(&format!("  {} rwk,\n", quote(&format!("{dir}/**"))));
        }
    }
}

/// Writes the deny rules and closes the profile.
fn push_deny_rules(text: &mut String) {
    text.push_str("\n  # Never, whatever the rules above say.\n");
    for rule in DENY_RULES {
        text.push_str(&format!("  {rule}\n"));
    }
    text.push_str("}\n");
}

/// `AF_UNIX`.
const AF_UNIX: u32 = 1;

/// Where a path the image does not have really is: its deepest ancestor the image has, resolved,
/// with the rest appended (`/var/run/app.sock` is `/run/app.sock` where `/var/run -> /run`).
fn real_via_ancestor(files: &dyn ImageFiles, path: &Path) -> PathBuf {
    for ancestor in path.ancestors().skip(1) {
        if let (Some(real), Ok(rest)) = (files.real_path(ancestor), path.strip_prefix(ancestor)) {
            return real.join(rest);
        }
    }
    path.to_path_buf()
}

/// The capabilities the recording gives evidence for, each with that evidence in words.
fn capability_evidence(recording: &Recording, context: &Context) -> BTreeMap<&'static str, String> {
    let has = |name: &str| context.app_syscalls.contains(name);
    let mut evidence: BTreeMap<&'static str, String> = BTreeMap::new();
    for (cap, calls) in CAPABILITY_EVIDENCE {
        let made: Vec<&str> = calls.iter().copied().filter(|c| has(c)).collect();
        if !made.is_empty() {
            evidence.insert(cap, format!("called {}", made.join(", ")));
        }
    }
    let low_ports: Vec<String> = context
        .ports
        .iter()
        .filter(|&&p| p < 1024)
        .map(u16::to_string)
        .collect();
    if has("bind") && !low_ports.is_empty() {
        evidence.insert(
            "net_bind_service",
            format!("bind with privileged port {}", low_ports.join(", ")),
        );
    }
    if recording
        .sockets
        .iter()
        .any(|&(family, kind)| (kind == 3 && (family == 2 || family == 10)) || family == 17)
    {
        evidence.insert("net_raw", "created raw or packet sockets".into());
    }
    let dropped: Vec<&str> = ["setuid", "setresuid", "setreuid"]
        .into_iter()
        .filter(|c| has(c))
        .collect();
    if !dropped.is_empty() {
        let signals: Vec<&str> = ["kill", "tgkill", "tkill"]
            .into_iter()
            .filter(|c| has(c))
            .collect();
        if !signals.is_empty() {
            // Signals between the root master and its unprivileged workers.
            evidence.insert(
                "kill",
                format!(
                    "{} after {}: a root master signals workers of another user",
                    signals.join(", "),
                    dropped.join(", ")
                ),
            );
        }
        // A root master that drops privileges still opens what its workers own (logs,
        // sockets, state) as root.
        evidence.insert(
            "dac_override",
            format!(
                "{}: a root master opens what its unprivileged workers own",
                dropped.join(", ")
            ),
        );
    }
    evidence
}

/// The temp directory `path` sits in at least two levels down, below a directory the image does
/// not have (`/tmp/tmpab12cd/x`: made inside a directory created with a changing name).
fn nested_in_temp(path: &Path, files: &dyn ImageFiles) -> Option<&'static str> {
    // Not /run: a tree rule there would cover /run/secrets and a mounted engine socket.
    NESTED_TEMP_DIRS.iter().copied().find(|temp| {
        let Ok(rest) = path.strip_prefix(temp) else {
            return false;
        };
        let mut parts = rest.components();
        match (parts.next(), parts.next()) {
            (Some(first), Some(_)) => files.real_path(&Path::new(temp).join(first)).is_none(),
            _ => false,
        }
    })
}

/// Replaces every rule below `dir` that only reads, writes, locks or links by one `dir/**`
/// rule with their permissions.
fn collapse_tree(rules: &mut BTreeMap<String, Perms>, dir: &str) {
    let prefix = format!("{dir}/");
    let mut merged = Perms::default();
    rules.retain(|path, perms| {
        if path.starts_with(&prefix) && !perms.map && !perms.exec {
            merged.merge(*perms);
            false
        } else {
            true
        }
    });
    merged.merge(Perms {
        read: true,
        write: true,
        lock: true,
        ..Default::default()
    });
    rules
        .entry(format!("{prefix}**"))
        .or_default()
        .merge(merged);
}

/// Files created at run time with changing names: two or more in one directory, or (with
/// `any_in_temp`) any in a temp directory, become `dir/*`.
fn collapse_created(
    rules: &mut BTreeMap<String, Perms>,
    created_in: &BTreeMap<PathBuf, usize>,
    any_in_temp: bool,
) {
    for (dir, &count) in created_in {
        let temp = any_in_temp && TEMP_DIRS.iter().any(|t| dir.starts_with(t));
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
/// become `*`; Kubernetes' `..data`-style names become `..*`; AppArmor's pattern characters are
/// escaped.
fn glob_component(part: &str) -> String {
    if part.len() > 2 && part.starts_with("..") && part != "..." {
        // Kubernetes ConfigMap and Secret volumes: `..data` links to a `..2024_05_01_...`
        // directory that is replaced on every update.
        return "..*".into();
    }
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
            if text == "/var/run" {
                return Some(PathBuf::from("/run"));
            }
            let real = match text {
                "/bin/python3" | "/usr/bin/python3" => "/usr/bin/python3.11",
                "/lib64/ld-linux-x86-64.so.2" => "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "/usr/lib/x86_64-linux-gnu/libc.so.6"
                | "/etc/app.conf"
                | "/srv"
                | "/run"
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
                state_dirs: &[],
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
        assert_eq!(
            p.rules.network, 4,
            "unknown family 99 is not written; unix dgram twice"
        );
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
        assert!(server
            .text
            .contains("  capability setuid,  # called setuid\n"));
        let high_port = profile(&["bind"], &[8080]);
        assert!(!high_port.capabilities.contains(&"net_bind_service"));
    }

    fn profile_of(recording: &Recording, state_dirs: &[PathBuf]) -> AppArmorProfile {
        generate(
            recording,
            &Context {
                name: "slim-app",
                files: &FakeImage,
                app_syscalls: &BTreeSet::new(),
                ports: &[],
                state_dirs,
            },
        )
    }

    #[test]
    fn abi_and_unix_rules_for_the_unix_sockets_seen() {
        let p = profile(&[], &[]);
        assert!(p.text.contains("\nabi <abi/3.0>,\n"), "{}", p.text);
        assert!(
            p.text.find("abi <abi/3.0>") < p.text.find("#include <tunables/global>"),
            "the ABI comes first"
        );
        assert!(p.text.contains("  unix type=dgram,\n"), "{}", p.text);
        assert!(
            !p.text.contains("unix type=stream"),
            "no unix stream socket was made"
        );
        assert_eq!(p.rules.network, 4);
    }

    #[test]
    fn socket_paths_bound_or_connected_get_their_own_rules() {
        let mut recording = Recording::default();
        for (path, uses) in [
            ("/run/php/php-fpm.sock", Use::Bind),
            ("/run/mysqld/mysqld.sock", Use::Connect),
            ("/var/run/app/fifo", Use::Mknod),
        ] {
            recording
                .paths
                .insert(PathBuf::from(path), touched(&[uses]));
        }
        let p = profile_of(&recording, &[]);
        assert!(
            p.text.contains("  /run/php/php-fpm.sock rw,\n"),
            "{}",
            p.text
        );
        assert!(p.text.contains("  /run/mysqld/mysqld.sock rw,\n"));
        assert!(
            p.text.contains("  /run/app/* w,\n"),
            "/var/run -> /run is resolved for what the image lacks: {}",
            p.text
        );
        assert_eq!(p.rules.socket, 2);
        let sockets_section = p.text.find("# Unix sockets").unwrap();
        assert!(p.text.find("/run/php/php-fpm.sock").unwrap() > sockets_section);
    }

    #[test]
    fn sockets_with_changing_names_are_globbed_and_run_never_gets_a_tree_rule() {
        let mut recording = Recording::default();
        for (path, uses) in [
            ("/tmp/pymp-k2j4x9/listener-a8f", Use::Bind),
            ("/tmp/pymp-k2j4x9/listener-q1z", Use::Connect),
            ("/run/app/backend.sock", Use::Bind),
            ("/run/newdir/state.pid", Use::Write),
        ] {
            recording
                .paths
                .insert(PathBuf::from(path), touched(&[uses]));
        }
        let p = profile_of(&recording, &[]);
        assert!(p.text.contains("  /tmp/** rwk,\n"), "{}", p.text);
        assert!(!p.text.contains("pymp"), "{}", p.text);
        assert!(
            p.text.contains("  /run/app/backend.sock rw,\n"),
            "a fixed socket name keeps its rule: {}",
            p.text
        );
        assert!(!p.text.contains("/run/**"), "{}", p.text);
    }

    #[test]
    fn state_directories_are_allowed_whole() {
        let mut recording = Recording::default();
        for (path, uses) in [
            ("/var/lib/app/state.db", &[Use::Write][..]),
            ("/var/lib/app/base/1/1259", &[Use::Write]),
            ("/var/lib/app/ext.so", &[Use::Read]),
            ("/etc/app.conf", &[Use::Read]),
        ] {
            recording.paths.insert(PathBuf::from(path), touched(uses));
        }
        let p = profile_of(&recording, &[PathBuf::from("/var/lib/app")]);
        assert!(p.text.contains("  /var/lib/app/ r,\n"), "{}", p.text);
        assert!(p.text.contains("  /var/lib/app/** rwk,\n"));
        assert!(
            !p.text.contains("/var/lib/app/state.db"),
            "covered by the tree"
        );
        assert!(
            !p.text.contains("/var/lib/app/base/1/1259"),
            "covered by the tree"
        );
        assert!(
            p.text.contains("  /var/lib/app/ext.so mr,\n"),
            "mapping keeps its own rule"
        );
        assert_eq!(p.rules.state, 1);
        let check = parse_check(&p.text);
        assert!(check.is_none() || check == Some(true), "{}", p.text);
    }

    #[test]
    fn nested_temp_trees_and_configmaps_become_globs() {
        let mut recording = Recording::default();
        for (path, uses) in [
            ("/tmp/tmpq8z_w1/sub/data.bin", &[Use::Write][..]),
            ("/tmp/tmpq8z_w1", &[Use::Mkdir]),
            (
                "/etc/config/..2024_05_01_10_20_30.123456789/key",
                &[Use::Read],
            ),
        ] {
            recording.paths.insert(PathBuf::from(path), touched(uses));
        }
        let p = profile_of(&recording, &[]);
        assert!(p.text.contains("  /tmp/** rwk,\n"), "{}", p.text);
        assert!(!p.text.contains("tmpq8z_w1"), "{}", p.text);
        assert!(p.text.contains("  /etc/config/..*/key r,\n"), "{}", p.text);
        assert_eq!(glob_component("..data"), "..*");
        assert_eq!(glob_component("..."), "...");
    }

    #[test]
    fn each_capability_names_its_evidence() {
        let server = profile(&["bind", "setuid", "kill", "chown"], &[80]);
        assert!(
            server
                .text
                .contains("  capability chown,  # called chown\n"),
            "{}",
            server.text
        );
        assert!(server
            .text
            .contains("  capability net_bind_service,  # bind with privileged port 80\n"));
        assert!(server
            .text
            .contains("  capability kill,  # kill after setuid"));
    }

    /// `apparmor_parser -Q` on the text: `None` where the parser is not installed.
    fn parse_check(text: &str) -> Option<bool> {
        use std::{
            io::Write as _,
            process::{Command, Stdio},
        };
        let mut child = Command::new("apparmor_parser")
            .args(["-Q", "-K"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(text.as_bytes()).ok()?;
        Some(child.wait().ok()?.success())
    }

    #[test]
    fn the_profile_parses_where_the_parser_is_installed() {
        let p = profile(&["bind", "setuid", "kill", "chown"], &[80]);
        assert_ne!(parse_check(&p.text), Some(false), "{}", p.text);
        assert_ne!(parse_check(&p.complain_text), Some(false));
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
