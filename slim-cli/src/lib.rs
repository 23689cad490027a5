//! slim as a library: the `slim` binary is a thin shell over these modules (and the fuzz
//! targets link them directly).
//!
//! Data flows one way: `engine` (inspect, save) -> `image` (flatten) -> `tracer` + `prober`
//! (run and record) -> `recording` (what was touched) -> `minify` (select) -> `image` (write)
//! -> `profiles` (seccomp, AppArmor) -> report.

pub mod cli;
pub mod commands;
pub mod compose;
pub mod elf;
pub mod engine;
pub mod image;
pub mod in_root;
pub mod minify;
pub mod owner;
pub mod packages;
pub mod plugin;
pub mod prober;
pub mod profiles;
pub mod recording;
pub mod report;
pub mod shell_words;
pub mod shrink;
pub mod syscalls;
pub mod tracer;
