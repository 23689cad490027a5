//! Fuzzes the layer reader and flattener with arbitrary bytes as a layer tar, then writes the
//! flattened tree back out. Invariants: no panic; every tree path is relative and free of `..`;
//! hard links point at entries of the tree; the writer accepts whatever the reader accepted.
#![no_main]

use std::{collections::BTreeSet, path::Component, path::PathBuf};

use libfuzzer_sys::fuzz_target;
use slim_cli::image::{
    flatten::{flatten, LayerRef},
    tree::Kind,
    writer::write_layer,
};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slim-fuzz-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("layer.tar")
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(&path, data).unwrap();
    let refs = [LayerRef {
        source: 0,
        offset: 0,
        size: data.len() as u64,
        digest: String::new(),
    }];
    let Ok((tree, _)) = flatten(vec![path], &refs) else {
        return;
    };
    for (path, entry) in &tree.entries {
        assert!(path.is_relative());
        assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
        if entry.kind == Kind::Hardlink {
            let target = entry.link.as_ref().unwrap();
            assert!(target.components().all(|c| matches!(c, Component::Normal(_))));
        }
    }
    let all: BTreeSet<PathBuf> = tree.entries.keys().cloned().collect();
    write_layer(&tree, &all, std::io::sink()).expect("what was read can be written");
});
