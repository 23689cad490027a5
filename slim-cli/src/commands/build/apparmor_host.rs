//! Loading the AppArmor profile into the host's kernel for the verification run, where the
//! kernel enforces AppArmor and `apparmor_parser` is installed, and unloading it afterwards
//! (the guard's drop, on every path: success, failed verification, error, Ctrl-C).
//!
//! The profile is loaded under a name of this run's own (`NAME-verify-PID`), never under the
//! name users deploy it as: a profile of that name already loaded on this host (the one
//! production containers run under) is neither replaced nor unloaded, and two slim runs never
//! unload each other's. Nothing is written to the parser's cache.

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

/// Whether the running kernel enforces AppArmor.
pub fn enforced() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|enabled| enabled.trim() == "Y")
        && Path::new("/sys/kernel/security/apparmor/profiles").exists()
}

/// A profile loaded into the kernel by this run; removed again on drop.
#[derive(Debug)]
pub struct Loaded {
    /// The name it is loaded under (`docker run --security-opt apparmor=NAME`).
    pub name: String,
}

/// Why the verification runs without the AppArmor profile.
#[derive(Debug, thiserror::Error)]
pub enum NotLoaded {
    #[error("this kernel does not enforce AppArmor")]
    NotEnforced,
    #[error("apparmor_parser could not load the AppArmor profile {name}: {reason}")]
    Parser { name: String, reason: String },
}

/// The profile `text` (named `name`) renamed to `run_name`: its header and the peer rules that
/// name the profile itself.
fn renamed(text: &str, name: &str, run_name: &str) -> String {
    text.replace(&format!("profile {name} "), &format!("profile {run_name} "))
        .replace(&format!("peer={name},"), &format!("peer={run_name},"))
}

/// Loads the profile `text` (named `name`) under this run's own name.
pub fn load(text: &str, name: &str) -> Result<Loaded, NotLoaded> {
    if !enforced() {
        return Err(NotLoaded::NotEnforced);
    }
    let run_name = format!("{name}-verify-{}", std::process::id());
    let failed = |reason: String| NotLoaded::Parser {
        name: run_name.clone(),
        reason,
    };
    // -r: load or replace (this run's name only); -K: neither read nor write the cache.
    let mut child = Command::new("apparmor_parser")
        .args(["-r", "-K"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(renamed(text, name, &run_name).as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(
            stderr.lines().last().unwrap_or("failed").trim().to_owned(),
        ));
    }
    tracing::debug!(
        profile = run_name,
        "AppArmor profile loaded for verification"
    );
    Ok(Loaded { name: run_name })
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if let Err(error) = std::fs::write("/sys/kernel/security/apparmor/.remove", &self.name) {
            tracing::warn!(
                "could not unload AppArmor profile {} ({error}): run `echo -n {} > \
                 /sys/kernel/security/apparmor/.remove` as root",
                self.name,
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_loads_a_copy_under_its_own_name() {
        let text = "abi <abi/3.0>,\nprofile slim-app flags=(attach_disconnected) {\n  \
                    signal (receive) peer=runc,\n  signal (send,receive) peer=slim-app,\n  \
                    ptrace (read) peer=slim-app,\n  /srv/slim-app.conf r,\n}\n";
        let copy = renamed(text, "slim-app", "slim-app-verify-7");
        assert!(copy.contains("profile slim-app-verify-7 flags="));
        assert!(copy.contains("peer=slim-app-verify-7,\n  ptrace"));
        assert!(copy.contains("ptrace (read) peer=slim-app-verify-7,"));
        assert!(copy.contains("peer=runc,"));
        assert!(
            copy.contains("/srv/slim-app.conf r,"),
            "paths are left alone"
        );
        assert!(!copy.contains("profile slim-app "));
    }
}
