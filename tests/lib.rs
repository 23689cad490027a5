//! End-to-end tests of `slim` live in the test targets of this crate (see Cargo.toml).
