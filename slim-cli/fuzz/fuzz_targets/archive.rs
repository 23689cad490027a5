//! Fuzzes the image archive reader (docker-archive / OCI layout, gzip layers) and the flattener
//! behind it with arbitrary bytes as a saved image. Invariant: no panic, no file written outside
//! the scratch work dir (decompressed layers only go there).
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use slim_cli::image::{archive::read_saved_image, flatten::flatten};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slim-fuzz-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fuzz_target!(|data: &[u8]| {
    let work = scratch();
    let path = work.join("image.tar");
    std::fs::write(&path, data).unwrap();
    if let Ok(saved) = read_saved_image(&path, &work) {
        let _ = flatten(saved.sources.clone(), &saved.layers);
    }
});
