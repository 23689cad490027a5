//! Loading the AppArmor profile into the host's kernel for the verification run, where the
//! kernel enforces AppArmor and `apparmor_parser` is installed, and unloading it afterwards
//! (the guard's drop, on every path: success, failed verification, error, Ctrl-C).

use std::{
    path::{Path, PathBuf},
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
    /// The profile's name (`docker run --security-opt apparmor=NAME`).
    pub name: String,
    file: PathBuf,
}

/// Why the verification runs without the AppArmor profile.
#[derive(Debug, thiserror::Error)]
pub enum NotLoaded {
    #[error("this kernel does not enforce AppArmor")]
    NotEnforced,
    #[error("apparmor_parser could not load {file}: {reason}")]
    Parser { file: String, reason: String },
}

/// Loads (or replaces) the profile in `file`, named `name`.
pub fn load(file: &Path, name: &str) -> Result<Loaded, NotLoaded> {
    if !enforced() {
        return Err(NotLoaded::NotEnforced);
    }
    let failed = |reason: String| NotLoaded::Parser {
        file: file.display().to_string(),
        reason,
    };
    // -W: no cache writes on the host; -r: replace a profile of the same name.
    let output = Command::new("apparmor_parser")
        .args(["-r", "-W"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(
            stderr.lines().last().unwrap_or("failed").trim().to_owned(),
        ));
    }
    tracing::debug!(profile = name, "AppArmor profile loaded for verification");
    Ok(Loaded {
        name: name.to_owned(),
        file: file.to_owned(),
    })
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Removed by name through the kernel's interface; the file may have moved by now.
        let removed = std::fs::write("/sys/kernel/security/apparmor/.remove", &self.name);
        if let Err(error) = removed {
            tracing::warn!(
                "could not unload AppArmor profile {} ({error}): run `apparmor_parser -R {}`",
                self.name,
                self.file.display()
            );
        }
    }
}
