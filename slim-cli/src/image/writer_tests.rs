use std::{
    collections::BTreeSet,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use super::*;
use crate::image::{
    flatten::{flatten, LayerRef},
    testutil::{layer, Member::*, Scratch},
};
use std::fs::File;

fn content(tree: &FileTree, entry: &Entry) -> Vec<u8> {
    let Some(data) = entry.data else {
        return Vec::new();
    };
    let mut file = File::open(tree.sources.get(data.source).unwrap()).unwrap();
    file.seek(SeekFrom::Start(data.offset)).unwrap();
    let mut bytes = vec![0; data.size as usize];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

fn fat(scratch: &Scratch) -> FileTree {
    let (sources, refs) = scratch.layers(&[
        layer(&[
            Dir("usr/"),
            Dir("usr/bin/"),
            File("usr/bin/app", b"\x7fELF app"),
            Hardlink("usr/bin/app-link", "usr/bin/app"),
            Symlink("bin", "usr/bin"),
            Dir("etc/"),
            File("etc/big", &[9; 4000]),
        ]),
        layer(&[File("etc/.wh.big", b""), File("etc/small", b"s")]),
    ]);
    flatten(sources, &refs).unwrap().0
}

fn rewrite(
    scratch: &Scratch,
    tree: &FileTree,
    selection: &BTreeSet<PathBuf>,
    name: &str,
) -> (LayerOutput, FileTree) {
    let path = scratch.0.join(name);
    let (out, _) = write_layer(tree, selection, File::create(&path).unwrap()).unwrap();
    let refs = [LayerRef {
        source: 0,
        offset: 0,
        size: out.size,
        digest: out.diff_id.clone(),
    }];
    let (again, _) = flatten(vec![path], &refs).unwrap();
    (out, again)
}

#[test]
fn selecting_everything_round_trips_the_tree() {
    let scratch = Scratch::new();
    let tree = fat(&scratch);
    let all: BTreeSet<PathBuf> = tree.entries.keys().cloned().collect();
    let (_, again) = rewrite(&scratch, &tree, &all, "all.tar");
    assert_eq!(
        tree.entries.keys().collect::<Vec<_>>(),
        again.entries.keys().collect::<Vec<_>>()
    );
    for (path, entry) in &tree.entries {
        let copy = again.get(path).unwrap();
        assert_eq!(
            (
                entry.kind,
                entry.mode,
                entry.uid,
                entry.gid,
                entry.mtime,
                entry.size,
                &entry.link
            ),
            (copy.kind, copy.mode, copy.uid, copy.gid, copy.mtime, copy.size, &copy.link),
            "{}",
            path.display()
        );
        assert_eq!(
            content(&tree, entry),
            content(&again, copy),
            "{}",
            path.display()
        );
    }
}

#[test]
fn writing_is_deterministic() {
    let scratch = Scratch::new();
    let tree = fat(&scratch);
    let all: BTreeSet<PathBuf> = tree.entries.keys().cloned().collect();
    let (a, _) = rewrite(&scratch, &tree, &all, "a.tar");
    let (b, _) = rewrite(&scratch, &tree, &all, "b.tar");
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read(scratch.0.join("a.tar")).unwrap(),
        std::fs::read(scratch.0.join("b.tar")).unwrap()
    );
}

#[test]
fn parents_come_along_and_a_lone_hardlink_carries_the_bytes() {
    let scratch = Scratch::new();
    let tree = fat(&scratch);
    let selection: BTreeSet<PathBuf> = [PathBuf::from("usr/bin/app-link")].into();
    let (out, again) = rewrite(&scratch, &tree, &selection, "one.tar");
    assert_eq!(out.entries, 3);
    let link = again.get(Path::new("usr/bin/app-link")).unwrap();
    assert_eq!(link.kind, Kind::File);
    assert_eq!(content(&again, link), b"\x7fELF app");
    assert_eq!(again.get(Path::new("usr")).unwrap().kind, Kind::Dir);
    assert!(again.get(Path::new("usr/bin/app")).is_none());
}

#[test]
fn config_keeps_the_original_and_adds_provenance() {
    let original = serde_json::json!({
        "architecture": "arm64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Entrypoint": ["/app"], "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}}, "Labels": {"x": "y"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
        "history": [{"created_by": "a"}, {"created_by": "b"}],
    });
    let layer = LayerOutput {
        diff_id: "sha256:cc".into(),
        size: 1,
        entries: 1,
    };
    let provenance = Provenance {
        base_image: "app:fat".into(),
        base_id: "sha256:ff".into(),
        created_by: "slim build".into(),
    };
    let bytes = slim_config(&original, &layer, &provenance);
    let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["config"]["Entrypoint"][0], "/app");
    assert_eq!(config["config"]["Labels"]["x"], "y");
    assert_eq!(config["config"]["Labels"]["slim.base-image"], "app:fat");
    // `slim debug` finds the fat image by this label, also in images older slims wrote.
    assert_eq!(
        config["config"]["Labels"]["slim.base-image.id"],
        "sha256:ff"
    );
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(["sha256:cc"])
    );
    assert_eq!(config["history"].as_array().unwrap().len(), 1);
    assert_eq!(
        bytes,
        slim_config(&original, &layer, &provenance),
        "deterministic"
    );
}

#[test]
fn dry_run_size_matches_and_streamed_archive_holds_the_same_layer() {
    let scratch = Scratch::new();
    let tree = fat(&scratch);
    let all: BTreeSet<PathBuf> = tree.entries.keys().cloned().collect();
    let (written, bytes) = write_layer(&tree, &all, Vec::new()).unwrap();
    assert_eq!(layer_size(&tree, &all).unwrap(), written.size);
    let config = |layer: &LayerOutput| format!("{{\"diff\":\"{}\"}}", layer.diff_id).into_bytes();
    let (streamed, config_bytes, archive) =
        stream_docker_archive(Vec::new(), &tree, &all, config, &["t:1".into()]).unwrap();
    assert_eq!(streamed, written);
    assert!(String::from_utf8_lossy(&config_bytes).contains(&written.diff_id));
    // The archive parses, and its layer member is byte-identical to the plain layer.
    let mut outer = tar::Archive::new(archive.as_slice());
    let mut found = false;
    for member in outer.entries().unwrap() {
        let mut member = member.unwrap();
        if member.path().unwrap().ends_with("layer.tar") {
            let mut inner = Vec::new();
            member.read_to_end(&mut inner).unwrap();
            assert!(inner == bytes);
            found = true;
        }
    }
    assert!(found);
}

#[test]
fn extended_attributes_survive_the_round_trip() {
    let scratch = Scratch::new();
    let capability: &[u8] =
        b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_pax_extensions([("SCHILY.xattr.security.capability", capability)])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o755);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "usr/bin/ping", &b"elf"[..])
        .unwrap();
    let bytes = builder.into_inner().unwrap();
    let (sources, refs) = scratch.layers(&[bytes]);
    let (tree, _) = flatten(sources, &refs).unwrap();
    let entry = tree.get(Path::new("usr/bin/ping")).unwrap();
    assert_eq!(
        entry.xattrs,
        [("security.capability".to_owned(), capability.to_vec())]
    );
    let all: BTreeSet<PathBuf> = tree.entries.keys().cloned().collect();
    let (_, again) = rewrite(&scratch, &tree, &all, "xattr.tar");
    assert_eq!(
        again.get(Path::new("usr/bin/ping")).unwrap().xattrs,
        entry.xattrs
    );
}
