use std::path::Path;

use super::*;
use crate::image::testutil::{layer, Member::*, Scratch};

fn paths(tree: &FileTree) -> Vec<String> {
    tree.entries
        .keys()
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn whiteouts_delete_lower_files_and_count_waste() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[
        layer(&[Dir("a/"), File("a/x", &[7; 10]), File("a/y", b"y")]),
        layer(&[File("a/.wh.x", b""), File("b", b"bb")]),
    ]);
    let (tree, stats) = flatten(sources, &refs).unwrap();
    assert_eq!(paths(&tree), ["a", "a/y", "b"]);
    assert_eq!(stats[0].wasted_bytes, 10);
    assert_eq!(stats[1].files_deleted, 1);
    assert_eq!(stats[1].files_added, 1);
}

#[test]
fn opaque_directory_hides_lower_contents_only() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[
        layer(&[
            Dir("d/"),
            File("d/1", b"1"),
            Dir("d/sub/"),
            File("d/sub/2", b"22"),
            File("e", b"e"),
        ]),
        layer(&[Dir("d/"), File("d/3", b"3"), File("d/.wh..wh..opq", b"")]),
    ]);
    let (tree, stats) = flatten(sources, &refs).unwrap();
    assert_eq!(paths(&tree), ["d", "d/3", "e"]);
    assert_eq!(stats[0].wasted_bytes, 3);
}

#[test]
fn overwritten_files_are_changes_and_waste() {
    let scratch = Scratch::new();
    let (sources, refs) =
        scratch.layers(&[layer(&[File("f", &[1; 100])]), layer(&[File("f", &[2; 5])])]);
    let (tree, stats) = flatten(sources, &refs).unwrap();
    assert_eq!(tree.get(Path::new("f")).unwrap().size, 5);
    assert_eq!(stats[1].files_changed, 1);
    assert_eq!(stats[0].wasted_bytes, 100);
}

#[test]
fn hardlinks_share_the_target_bytes() {
    let scratch = Scratch::new();
    let (sources, refs) =
        scratch.layers(&[layer(&[File("bin/a", b"abc"), Hardlink("bin/b", "bin/a")])]);
    let (tree, _) = flatten(sources, &refs).unwrap();
    let b = tree.get(Path::new("bin/b")).unwrap();
    assert_eq!(b.kind, Kind::Hardlink);
    assert_eq!(b.link.as_deref(), Some(Path::new("bin/a")));
    assert_eq!(b.data, tree.get(Path::new("bin/a")).unwrap().data);
}

#[test]
fn escaping_names_are_refused() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[File("../../etc/passwd", b"x")])]);
    let err = flatten(sources, &refs).unwrap_err().to_string();
    assert!(err.contains("layer 0"), "{err}");
    let (sources, refs) = scratch.layers(&[layer(&[File("ok", b"x"), File("a/../../x", b"x")])]);
    assert!(flatten(sources, &refs).is_err());
}

#[test]
fn absolute_names_stay_inside() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[File("/etc/hosts", b"x")])]);
    let (tree, _) = flatten(sources, &refs).unwrap();
    assert_eq!(paths(&tree), ["etc/hosts"]);
}

#[test]
fn hardlinks_to_missing_or_outside_entries_are_refused() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[Hardlink("x", "missing")])]);
    assert!(flatten(sources, &refs).is_err());
    let (sources, refs) = scratch.layers(&[layer(&[Hardlink("x", "../../etc/shadow")])]);
    assert!(flatten(sources, &refs).is_err());
}

#[test]
fn symlinks_are_stored_not_followed() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Symlink("escape", "/../../../etc"),
        File("escape/x", b"x"),
    ])]);
    let (tree, _) = flatten(sources, &refs).unwrap();
    assert_eq!(
        tree.get(Path::new("escape")).unwrap().link.as_deref(),
        Some(Path::new("/../../../etc"))
    );
    assert!(tree.get(Path::new("escape/x")).is_some());
}

#[test]
fn sizes_past_the_layer_end_are_refused() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[Lying("big", 1 << 40, b"tiny")])]);
    let err = flatten(sources, &refs).unwrap_err().to_string();
    assert!(err.contains("layer 0"), "{err}");
}
