//! Builds the eBPF recorder (`slim-ebpf`) with the pinned nightly toolchain and bpf-linker, and
//! leaves the object in `OUT_DIR/slim-recorder` for `include_bytes_aligned!`.
//!
//! `cargo xtask setup` installs what this needs. With `AYA_BUILD_SKIP=1` (e.g. `cargo check` on
//! a machine without the toolchain) an empty object is embedded and `slim` refuses to record.

use std::{env, fs, path::PathBuf};

/// Keep in step with `xtask/src/setup.rs`.
const NIGHTLY: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest_dir
        .parent()
        .expect("slim-cli lives in the workspace")
        .join("slim-ebpf");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let object = out_dir.join("slim-recorder");
    println!("cargo:rerun-if-changed=../slim-common/src");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(&object, [])?;
        return Ok(());
    }
    // aya-build turns every line the inner cargo prints into a warning: keep it quiet.
    // SAFETY: build scripts are single-threaded.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    let ebpf_dir = ebpf_dir.to_str().expect("workspace path is UTF-8");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "slim-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(NIGHTLY),
    )
}
