//! Developer tasks for slim: `cargo xtask <setup|build|test|demo|bench|gen-syscalls>`.
//!
//! Everything a fresh machine needs is scripted here, so `.ci/run` and a new developer run the
//! same commands as the README.

mod bench;
mod demo;
mod dist;
mod fixtures;
mod fuzz;
mod gen_syscalls;
mod setup;
mod test;
mod util;
mod vm;

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  setup          install and start what slim needs (idempotent; a second run takes seconds)
  build          set up, then build target/release/slim with the eBPF recorder embedded
  test           set up, build, and run every test (unit, privileged, end-to-end)
  demo           set up, build, and show slim on a sample
  fixtures       set up, and build the test base images (Debian amd64, and arm64 for qemu)
  dist           static, stripped slim binaries (x86_64 and aarch64 musl) and SHA256SUMS in target/dist
  test-vm ARCH   set up, and run the kernel test bench in Debian's own ARCH kernel (amd64, arm64,
                 or all: every machine at once)
  bench [NAME]   run benchmarks (recorder, image) and write bench/results.json and bench/results.md
  fuzz [SECONDS] fuzz the image layer and archive readers (cargo-fuzz, SECONDS each)
  gen-syscalls   regenerate syscall name tables from libseccomp 2.6.0 (fetches Debian trixie's
                 seccomp and libseccomp2 into the target dir)";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("build") => {
            setup::run()?;
            util::build_release().map(|_| ())
        }
        Some("test") => test::run(rest),
        Some("demo") => demo::run(),
        Some("fixtures") => {
            setup::run()?;
            fixtures::base_image()?;
            fixtures::arm64_base_image()?;
            fixtures::native_32bit_images()
        }
        Some("bench") => bench::run(rest),
        Some("dist") => {
            setup::run()?;
            dist::run()
        }
        Some("test-vm") => {
            setup::run()?;
            fixtures::base_image()?;
            fixtures::arm64_base_image()?;
            vm::run(rest)
        }
        Some("gen-syscalls") => gen_syscalls::run(),
        Some("fuzz") => fuzz::run(rest),
        Some("__workload") => bench::workload(rest),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
