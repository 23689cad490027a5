//! Phase 5: the security profiles, from the recording: seccomp.json (Docker's format),
//! seccomp-profile.yaml (security-profiles-operator) and apparmor.profile, written into the
//! output dir. The generators are pure (`crate::profiles`); this phase only decides, writes
//! files and parse-checks the AppArmor profile where `apparmor_parser` is installed.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result};

use crate::{
    commands::report::{AppArmorReport, PackerReport, ProfilesReport, SeccompReport},
    profiles::{
        apparmor::{self, AppArmorProfile},
        docker_default::Capabilities,
        profile_name,
        seccomp::{Origin, Policy, SeccompProfile, UPX_STUB},
    },
};

use super::record::Recorded;

pub const SECCOMP_FILE: &str = "seccomp.json";
pub const OPERATOR_FILE: &str = "seccomp-profile.yaml";
pub const APPARMOR_FILE: &str = "apparmor.profile";
/// seccomp.json in complain mode (`SCMP_ACT_LOG` instead of EPERM).
pub const SECCOMP_LOG_FILE: &str = "seccomp.log.json";
/// apparmor.profile in complain mode.
pub const APPARMOR_COMPLAIN_FILE: &str = "apparmor.complain.profile";

/// The profiles written.
pub struct Profiles {
    /// `None` when the recording cannot give one.
    pub seccomp: Option<SeccompProfile>,
    /// Why the seccomp profile cannot be checked here: it was derived from an emulated run.
    pub emulated: Option<String>,
    pub apparmor: AppArmorProfile,
    pub report: ProfilesReport,
}

impl Profiles {
    /// The seccomp profile verification can run under: none when it was derived from an
    /// emulated run (the emulator's own host calls would hit it).
    pub fn enforceable_seccomp(&self) -> Option<&SeccompProfile> {
        self.seccomp.as_ref().filter(|_| self.emulated.is_none())
    }
}

/// Generates the profiles for `recorded` (named after `image`) and writes them into `dir`;
/// `packed` when the image runs programs packed by UPX (their stub's calls are added).
pub fn write_profiles(
    recorded: &Recorded,
    image: &str,
    dir: &Path,
    packed: bool,
) -> Result<Profiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recording = &recorded.recording;
    let name = profile_name(image);
    let image_arch = recorded.fat.image.arch();
    let policy = Policy {
        allow: recorded.seccomp_allow.clone(),
        capabilities: Capabilities::of_container(&recorded.spec.cap_add, &recorded.spec.cap_drop),
        socket_families: recording
            .sockets
            .iter()
            .map(|&(family, _)| family)
            .collect(),
        failed_only: recording.failed_only_names(),
    };
    let (mut seccomp, emulated, seccomp_skipped) = match (recording.arch, image_arch) {
        (Some(recorded_arch), Some(image_arch)) if !recorded_arch.runs_natively(image_arch) => (
            Some(SeccompProfile::derived_under_emulation(
                recorded_arch,
                &recording.app_syscalls,
                image_arch,
                &policy,
            )),
            Some(format!(
                "derived under emulation: the image is {image_arch} and ran under qemu-user on \
                 this {recorded_arch} host, so the recorder saw the emulator's {recorded_arch} \
                 calls, mapped here to {image_arch} names; not verified here, check it on an \
                 {image_arch} host"
            )),
            None,
        ),
        (Some(arch), _) => (
            Some(SeccompProfile::generate_with_compat(
                arch,
                &recording.app_syscalls,
                &recording.compat_app_syscalls,
                &policy,
            )),
            None,
            None,
        ),
        (None, _) => (None, None, Some("the recording has no architecture".into())),
    };
    let packer = match (seccomp.as_mut(), packed) {
        (Some(profile), true) => {
            let syscalls = profile.add_packer_stub(&UPX_STUB);
            Some(PackerReport {
                group: UPX_STUB.name,
                syscalls,
                added: profile.count(Origin::Packer),
            })
        }
        _ => None,
    };
    let mut seccomp_report = None;
    if let Some(profile) = &seccomp {
        write(dir, SECCOMP_FILE, &profile.to_docker_json())?;
        write(dir, SECCOMP_LOG_FILE, &profile.to_log_json())?;
        write(dir, OPERATOR_FILE, &profile.to_operator_yaml(&name))?;
        let runtime_setup_denied: Vec<String> = recording
            .names_of(&recording.runtime_syscalls)
            .into_iter()
            .filter(|n| !profile.allowed.contains_key(n))
            .collect();
        seccomp_report = Some(SeccompReport {
            file: SECCOMP_FILE,
            log_file: SECCOMP_LOG_FILE,
            operator_file: OPERATOR_FILE,
            architectures: profile.scmp_arches(),
            allowed: profile.allowed.len(),
            from_app: profile.count(Origin::App),
            from_runtime: profile.count(Origin::Runtime),
            fixed_extras: profile.count(Origin::Extra),
            packer: packer.clone(),
            user_allowed: profile.count(Origin::User),
            argument_rules: profile
                .conditions
                .iter()
                .map(|(name, rules)| (name.clone(), rules.clone()))
                .collect(),
            docker_denied_recorded: profile.docker_denied_recorded.iter().cloned().collect(),
            answered_failed_only: profile.answered_failed.clone(),
            syscalls: profile
                .allowed_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            enosys: profile.enosys.iter().cloned().collect(),
            runtime_setup_denied,
            unnamed: profile.unnamed.clone(),
            derived_under_emulation: emulated.clone(),
        });
    }

    let app_syscalls: BTreeSet<String> = recording.app_syscall_names();
    let state_dirs = state_dirs(recorded);
    let apparmor = apparmor::generate(
        recording,
        &apparmor::Context {
            name: &name,
            files: &*recorded.fat.tree,
            app_syscalls: &app_syscalls,
            ports: &recorded.spec.ports,
            state_dirs: &state_dirs,
        },
    );
    let apparmor_path = dir.join(APPARMOR_FILE);
    write(dir, APPARMOR_FILE, &apparmor.text)?;
    write(dir, APPARMOR_COMPLAIN_FILE, &apparmor.complain_text)?;
    let parse_check = parse_check(&apparmor_path);
    if let Some(failure) = parse_check.strip_prefix("failed: ") {
        tracing::warn!(
            "apparmor_parser rejects {}: {failure}",
            apparmor_path.display()
        );
    }
    let report = ProfilesReport {
        seccomp: seccomp_report,
        seccomp_skipped,
        apparmor: AppArmorReport {
            file: APPARMOR_FILE,
            complain_file: APPARMOR_COMPLAIN_FILE,
            unnamed_socket_families: apparmor.unnamed_families.clone(),
            name: name.clone(),
            rules: apparmor.rules.clone(),
            capabilities: apparmor.capabilities.clone(),
            parse_check,
        },
        verified_under: Vec::new(),
    };
    Ok(Profiles {
        seccomp,
        emulated,
        apparmor,
        report,
    })
}

/// Directories the app keeps state in: the state trees of the recording, and the declared
/// volumes it wrote in.
fn state_dirs(recorded: &Recorded) -> Vec<PathBuf> {
    let volumes = recorded.image_volumes();
    let mut dirs: Vec<PathBuf> =
        crate::minify::state_trees(&recorded.fat.tree, &recorded.recording, &volumes)
            .into_iter()
            .map(|state| Path::new("/").join(state.root))
            .collect();
    for volume in volumes {
        let written = recorded.recording.paths.iter().any(|(path, touched)| {
            path.starts_with(&volume) && touched.ok.contains(&crate::recording::Use::Write)
        });
        if written {
            dirs.push(PathBuf::from(volume));
        }
    }
    dirs
}

fn write(dir: &Path, file: &str, text: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `passed`, `failed: <first error line>`, or `skipped: ...` when the parser is not installed.
pub(crate) fn parse_check(profile: &Path) -> String {
    let output = Command::new("apparmor_parser")
        .args(["-Q", "-K"])
        .arg(profile)
        .stdin(Stdio::null())
        .output();
    match output {
        Err(_) => {
            "skipped: apparmor_parser is not installed (Debian/Ubuntu package apparmor)".into()
        }
        Ok(out) if out.status.success() => "passed".into(),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            format!(
                "failed: {}",
                stderr.lines().next().unwrap_or("apparmor_parser failed")
            )
        }
    }
}
