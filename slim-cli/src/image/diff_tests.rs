use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use super::*;
use crate::image::{
    flatten::flatten,
    testutil::{layer, Member::*, Scratch},
};

/// An in-memory tree: (path, kind, size, link); no content behind it (diff reads none).
fn tree(entries: &[(&str, Kind, u64, Option<&str>)]) -> FileTree {
    let mut tree = FileTree::default();
    for (path, kind, size, link) in entries {
        let mut entry = Entry::bare(*kind, *link);
        entry.size = *size;
        tree.entries.insert(PathBuf::from(path), entry);
    }
    tree
}

fn fat() -> FileTree {
    use Kind::*;
    tree(&[
        ("usr", Dir, 0, None),
        ("usr/bin", Dir, 0, None),
        ("usr/bin/python3", File, 6000, None),
        ("usr/bin/perl", File, 4000, None),
        ("usr/share", Dir, 0, None),
        ("usr/share/doc", Dir, 0, None),
        ("usr/share/doc/perl", Dir, 0, None),
        ("usr/share/doc/perl/copyright", File, 300, None),
        ("usr/share/doc/perl/changelog.gz", File, 700, None),
        ("usr/share/zoneinfo", Dir, 0, None),
        ("usr/share/zoneinfo/UTC", File, 100, None),
        ("etc", Dir, 0, None),
        ("etc/motd", File, 50, None),
        ("etc/alternatives", Dir, 0, None),
        ("etc/alternatives/pager", Symlink, 0, Some("/bin/more")),
        ("bin", Symlink, 0, Some("usr/bin")),
        ("srv", Dir, 0, None),
        ("srv/app.py", File, 20, None),
    ])
}

fn slim() -> FileTree {
    use Kind::*;
    let mut slim = tree(&[
        ("usr", Dir, 0, None),
        ("usr/bin", Dir, 0, None),
        ("usr/bin/python3", File, 2000, None), // stripped
        ("bin", Symlink, 0, Some("usr/bin")),
        ("srv", Dir, 0, None),
        ("srv/app.py", File, 20, None),
        ("srv/cache", Dir, 0, None),
        ("srv/cache/app.pyc", File, 15, None),
        ("etc", Dir, 0, None),
        ("etc/alternatives", Dir, 0, None),
        ("etc/alternatives/pager", Symlink, 0, Some("/usr/bin/less")),
    ]);
    slim.entries.get_mut(Path::new("srv")).unwrap().mode = 0o700;
    slim
}

fn owners() -> HashMap<PathBuf, String> {
    [
        ("usr/bin/python3", "python3.11"),
        ("usr/bin/perl", "perl-base"),
        ("usr/share/doc/perl/copyright", "perl-base"),
        ("usr/share/doc/perl/changelog.gz", "perl-base"),
        ("usr/share/zoneinfo/UTC", "tzdata"),
        ("usr/share/doc/perl", "perl-base"),
    ]
    .into_iter()
    .map(|(p, n)| (PathBuf::from(p), n.to_owned()))
    .collect()
}

fn paths(only: &OnlyIn) -> Vec<(&str, u64)> {
    only.paths
        .iter()
        .map(|p| (p.path.as_str(), p.bytes))
        .collect()
}

fn group(name: &str, files: u64, bytes: u64) -> Group {
    Group {
        name: name.to_owned(),
        files,
        bytes,
    }
}

#[test]
fn lists_what_each_side_alone_has_and_what_changed() {
    let diff = diff(&fat(), &slim(), Some(&owners()), DEFAULT_DEPTH);
    assert_eq!(
        diff.left,
        Totals {
            files: 9,
            bytes: 11_170
        }
    );
    assert_eq!(
        diff.right,
        Totals {
            files: 5,
            bytes: 2035
        }
    );
    assert_eq!(
        paths(&diff.only_left),
        [
            ("/etc/motd", 50),
            ("/usr/bin/perl", 4000),
            ("/usr/share", 0),
            ("/usr/share/doc", 0),
            ("/usr/share/doc/perl", 0),
            ("/usr/share/doc/perl/changelog.gz", 700),
            ("/usr/share/doc/perl/copyright", 300),
            ("/usr/share/zoneinfo", 0),
            ("/usr/share/zoneinfo/UTC", 100),
        ]
    );
    let only_left = &diff.only_left;
    assert_eq!(
        (only_left.files, only_left.dirs, only_left.bytes),
        (5, 4, 5150)
    );
    assert_eq!(
        paths(&diff.only_right),
        [("/srv/cache", 0), ("/srv/cache/app.pyc", 15)]
    );
    assert_eq!(diff.only_right.by_directory, [group("/srv/cache", 1, 15)]);
    assert!(diff.only_right.by_package.is_empty());

    let changed: Vec<(&str, &[Change])> = diff
        .changed
        .paths
        .iter()
        .map(|c| (c.path.as_str(), c.what.as_slice()))
        .collect();
    assert_eq!(
        changed,
        [
            ("/etc/alternatives/pager", &[Change::Link][..]),
            ("/srv", &[Change::Mode][..]),
            ("/usr/bin/python3", &[Change::Size][..]),
        ]
    );
    assert_eq!(diff.changed.count, 3);
    assert_eq!(
        (diff.changed.bytes_left, diff.changed.bytes_right),
        (6000, 2000)
    );
    let python = &diff.changed.paths[2];
    assert_eq!(python.package.as_deref(), Some("python3.11"));
    assert_eq!((python.left.bytes, python.right.bytes), (6000, 2000));
    assert_eq!(diff.changed.paths[1].right.mode, "0700");
}

#[test]
fn totals_by_top_directory_and_by_package_largest_first() {
    let diff = diff(&fat(), &slim(), Some(&owners()), DEFAULT_DEPTH);
    assert!(diff.package_database);
    // Directories themselves are counted apart, not as files of a group.
    assert_eq!(
        diff.only_left.by_directory,
        [
            group("/usr/bin", 1, 4000),
            group("/usr/share", 3, 1100),
            group("/etc", 1, 50),
        ]
    );
    assert_eq!(
        diff.only_left.by_package,
        [
            group("perl-base", 3, 5000),
            group("tzdata", 1, 100),
            group(NO_PACKAGE, 1, 50),
        ]
    );
    let perl = diff
        .only_left
        .paths
        .iter()
        .find(|p| p.path == "/usr/bin/perl")
        .unwrap();
    assert_eq!(perl.package.as_deref(), Some("perl-base"));
}

#[test]
fn the_depth_chooses_how_deep_a_top_directory_is() {
    let one = diff(&fat(), &slim(), None, 1);
    assert_eq!(
        one.only_left.by_directory,
        [group("/usr", 4, 5100), group("/etc", 1, 50)]
    );
    let three = diff(&fat(), &slim(), None, 3);
    assert_eq!(
        three.only_left.by_directory[1],
        group("/usr/share/doc", 2, 1000)
    );
    assert_eq!(top_directory(Path::new("motd"), 2), "/");
    assert_eq!(top_directory(Path::new("a/b/c/d"), 0), "/");
    assert_eq!(top_directory(Path::new("a/b/c/d"), 2), "/a/b");
}

#[test]
fn without_a_package_database_there_is_no_package_table() {
    let diff = diff(&fat(), &slim(), None, DEFAULT_DEPTH);
    assert!(!diff.package_database);
    assert!(diff.only_left.by_package.is_empty());
    assert!(diff.only_left.paths.iter().all(|p| p.package.is_none()));
}

#[test]
fn an_image_against_itself_differs_in_nothing() {
    let diff = diff(&fat(), &fat(), Some(&owners()), DEFAULT_DEPTH);
    assert!(diff.only_left.paths.is_empty());
    assert!(diff.only_right.paths.is_empty());
    assert_eq!(diff.changed.count, 0);
    assert_eq!(diff.left, diff.right);
}

#[test]
fn kind_owner_and_hard_links_count_as_changes_and_hard_links_add_no_bytes() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("d/"),
        File("d/a", b"aaaa"),
        Hardlink("d/b", "d/a"),
        File("d/c", b"cc"),
    ])]);
    let left = flatten(sources, &refs).unwrap().0;
    let other = Scratch::new();
    let (sources, refs) = other.layers(&[layer(&[Dir("d/"), Symlink("d/c", "a")])]);
    let mut right = flatten(sources, &refs).unwrap().0;
    right.entries.get_mut(Path::new("d")).unwrap().uid = 0;

    let diff = diff(&left, &right, None, DEFAULT_DEPTH);
    assert_eq!(diff.left.bytes, 6); // the hard link shares d/a's bytes
    assert_eq!(paths(&diff.only_left), [("/d/a", 4), ("/d/b", 0)]);
    assert_eq!(diff.only_left.by_directory, [group("/d", 2, 4)]);
    let changed: Vec<(&str, &[Change])> = diff
        .changed
        .paths
        .iter()
        .map(|c| (c.path.as_str(), c.what.as_slice()))
        .collect();
    assert_eq!(
        changed,
        [
            ("/d", &[Change::Owner][..]),
            (
                "/d/c",
                &[Change::Kind, Change::Size, Change::Link, Change::Mode][..]
            ),
        ]
    );
    assert_eq!(diff.changed.paths[1].right.link.as_deref(), Some("a"));
}

#[test]
fn json_names_the_kinds_and_changes_in_lowercase() {
    let diff = diff(&fat(), &slim(), Some(&owners()), DEFAULT_DEPTH);
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(json["only_left"]["paths"][0]["kind"], "file");
    assert_eq!(json["changed"]["paths"][0]["what"][0], "link");
    assert_eq!(
        json["changed"]["paths"][0]["right"]["link"],
        "/usr/bin/less"
    );
    assert!(json["only_left"]["paths"][0].get("package").is_none());
}
