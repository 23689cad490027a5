use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::*;
use crate::image::{
    flatten::flatten,
    testutil::{layer, Member::*, Scratch},
};

const STATUS: &[u8] = b"Package: libc6\n\
Status: install ok installed\n\
Architecture: amd64\n\
Multi-Arch: same\n\
Source: glibc\n\
Version: 2.36-9+deb12u4\n\
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\
Conffiles:\n /etc/ld.so.conf.d/libc.conf 0123\n /etc/gone.conf 4567\n\
Description: GNU C Library: Shared libraries\n Contains the standard libraries.\n\
\n\
Package: python3.11\n\
Status: install ok installed\n\
Architecture: amd64\n\
Version: 3.11.2-6\n\
Description: Interactive high-level object-oriented language\n\
\n\
Package: vim\n\
Status: install ok installed\n\
Architecture: amd64\n\
Version: 2:9.0.1378-2\n\
Description: Vi IMproved\n\
\n\
Package: oldconf\n\
Status: deinstall ok config-files\n\
Architecture: amd64\n\
Version: 1\n";

fn debian_tree(scratch: &Scratch) -> FileTree {
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("etc/"),
        Dir("etc/ld.so.conf.d/"),
        File("etc/ld.so.conf.d/libc.conf", b"/usr/local/lib\n"),
        File("etc/gone.conf", b"x"),
        File("etc/os-release", b"PRETTY_NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n"),
        File("etc/debian_version", b"12.5\n"),
        Dir("usr/"),
        Dir("usr/bin/"),
        Dir("usr/lib/"),
        File("usr/bin/python3.11", b"\x7fELF python"),
        File("usr/bin/vim.basic", b"\x7fELF vim"),
        File("usr/lib/libc.so.6", b"\x7fELF libc"),
        File("usr/lib/libm.so.6", b"\x7fELF libm"),
        Symlink("bin", "usr/bin"),
        Dir("var/"),
        Dir("var/lib/"),
        Dir("var/lib/dpkg/"),
        Dir("var/lib/dpkg/info/"),
        Dir("var/lib/dpkg/updates/"),
        File("var/lib/dpkg/status", STATUS),
        File(
            "var/lib/dpkg/info/libc6:amd64.list",
            b"/.\n/etc\n/etc/ld.so.conf.d\n/etc/ld.so.conf.d/libc.conf\n/etc/gone.conf\n/usr\n/usr/lib\n/usr/lib/libc.so.6\n/usr/lib/libm.so.6\n/usr/share/doc/libc6/excluded\n",
        ),
        File(
            "var/lib/dpkg/info/libc6:amd64.md5sums",
            b"aaa  usr/lib/libc.so.6\nbbb  usr/lib/libm.so.6\n",
        ),
        // Listed under the /bin symlink, as usr-merged Debian has it.
        File("var/lib/dpkg/info/python3.11.list", b"/.\n/bin\n/bin/python3.11\n"),
        File("var/lib/dpkg/info/python3.11.md5sums", b"ccc  bin/python3.11\n"),
        File("var/lib/dpkg/info/vim.list", b"/usr/bin/vim.basic\n"),
    ])]);
    flatten(sources, &refs).unwrap().0
}

fn selection(paths: &[&str]) -> BTreeSet<PathBuf> {
    paths.iter().map(PathBuf::from).collect()
}

fn file<'a>(pruned: &'a Pruned, path: &str) -> &'a str {
    let (_, bytes) = pruned
        .files
        .iter()
        .find(|(p, _)| p == Path::new(path))
        .unwrap_or_else(|| panic!("{path} not written"));
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn dpkg_keeps_exactly_the_packages_with_a_kept_file_cut_to_those_files() {
    let scratch = Scratch::new();
    let tree = debian_tree(&scratch);
    let kept = selection(&[
        "etc",
        "etc/ld.so.conf.d",
        "etc/ld.so.conf.d/libc.conf",
        "usr",
        "usr/lib",
        "usr/lib/libc.so.6",
        "usr/bin",
        "usr/bin/python3.11",
        "bin",
    ]);
    let pruned = prune(&tree, &kept, Mode::Pruned).unwrap();
    assert_eq!(pruned.db, Db::Dpkg);
    let names: Vec<&str> = pruned.kept.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["libc6", "python3.11"]);
    assert_eq!(pruned.removed, ["vim"]); // config-files only: not installed, not counted
    let libc = &pruned.kept[0];
    // The excluded doc file is not in the image: not counted.
    assert_eq!((libc.files_kept, libc.files_total), (2, 4));
    assert_eq!(libc.source.as_deref(), Some("glibc"));
    assert_eq!(
        (pruned.kept[1].files_kept, pruned.kept[1].files_total),
        (1, 1)
    );

    let status = file(&pruned, "var/lib/dpkg/status");
    assert!(status.starts_with("Package: libc6\n"), "{status}");
    assert!(status.contains("\n\nPackage: python3.11\n"), "{status}");
    assert!(
        !status.contains("vim") && !status.contains("oldconf"),
        "{status}"
    );
    assert!(
        status.contains("Conffiles:\n /etc/ld.so.conf.d/libc.conf 0123\nDescription:"),
        "{status}"
    );
    assert!(!status.contains("gone.conf"), "{status}");
    assert!(status.contains("Description: GNU C Library: Shared libraries\n Contains"));
    assert_eq!(
        file(&pruned, "var/lib/dpkg/info/libc6:amd64.list"),
        "/.\n/etc\n/etc/ld.so.conf.d\n/etc/ld.so.conf.d/libc.conf\n/usr\n/usr/lib\n/usr/lib/libc.so.6\n"
    );
    assert_eq!(
        file(&pruned, "var/lib/dpkg/info/libc6:amd64.md5sums"),
        "aaa  usr/lib/libc.so.6\n"
    );
    assert_eq!(
        file(&pruned, "var/lib/dpkg/info/python3.11.list"),
        "/.\n/bin\n/bin/python3.11\n"
    );
    assert!(!pruned.files.iter().any(|(p, _)| p.ends_with("vim.list")));
    assert!(pruned.whole.contains(&PathBuf::from("etc/os-release")));

    let report = report(&pruned, Mode::Pruned, distro(&tree));
    assert_eq!(report.line(), "packages: 2 kept (1 partly), 1 removed");
    let distro = report.distro.clone().unwrap();
    assert_eq!(
        (distro.id.as_str(), distro.version_id.as_str()),
        ("debian", "12")
    );
    assert_eq!(
        spdx::purl(Db::Dpkg, Some(&distro), libc),
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    );

    // Written into a tree: the new files point at copies, their parents come along.
    let (slim, added) = apply(&tree, &pruned, &kept, &scratch.0).unwrap();
    // The copy holds the selection, the database and their parents, nothing else.
    for path in &kept {
        assert!(
            slim.get(path).is_some() || tree.get(path).is_none(),
            "{path:?}"
        );
    }
    assert!(
        slim.entries.len() < tree.entries.len(),
        "{} of {}",
        slim.entries.len(),
        tree.entries.len()
    );
    assert!(added.contains(&PathBuf::from("var/lib/dpkg/updates")));
    assert!(added.contains(&PathBuf::from("var/lib")));
    let read = slim
        .read(Path::new("var/lib/dpkg/status"), 1 << 20)
        .unwrap();
    assert_eq!(read, status.as_bytes());
    assert_eq!(
        tree.read(Path::new("var/lib/dpkg/status"), 1 << 20)
            .unwrap(),
        STATUS,
        "the fat tree changed"
    );
}

#[test]
fn the_modes_keep_all_or_nothing() {
    let scratch = Scratch::new();
    let tree = debian_tree(&scratch);
    let kept = selection(&["usr/bin/python3.11"]);
    assert!(prune(&tree, &kept, Mode::None).is_none());
    let full = prune(&tree, &kept, Mode::Full).unwrap();
    assert!(full.files.is_empty());
    assert_eq!(
        full.removed,
        ["libc6", "vim"],
        "the report still says what remains"
    );
    assert!(full
        .whole
        .contains(&PathBuf::from("var/lib/dpkg/info/vim.list")));
}

#[test]
fn distroless_status_d_is_pruned_per_package() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("usr/"),
        Dir("usr/lib/"),
        File("usr/lib/libc.so.6", b"libc"),
        File("usr/lib/libssl.so.3", b"ssl"),
        Dir("var/"),
        Dir("var/lib/"),
        Dir("var/lib/dpkg/"),
        Dir("var/lib/dpkg/status.d/"),
        File(
            "var/lib/dpkg/status.d/libc6",
            b"Package: libc6\nVersion: 2.36\nArchitecture: arm64\n",
        ),
        File(
            "var/lib/dpkg/status.d/libc6.md5sums",
            b"aaa  usr/lib/libc.so.6\n",
        ),
        File(
            "var/lib/dpkg/status.d/libssl3",
            b"Package: libssl3\nVersion: 3.0\nArchitecture: arm64\n",
        ),
        File(
            "var/lib/dpkg/status.d/libssl3.md5sums",
            b"bbb  usr/lib/libssl.so.3\n",
        ),
    ])]);
    let tree = flatten(sources, &refs).unwrap().0;
    let pruned = prune(&tree, &selection(&["usr/lib/libc.so.6"]), Mode::Pruned).unwrap();
    assert_eq!(pruned.db, Db::DpkgDistroless);
    assert_eq!(pruned.removed, ["libssl3"]);
    assert!(file(&pruned, "var/lib/dpkg/status.d/libc6").starts_with("Package: libc6\n"));
    assert_eq!(
        file(&pruned, "var/lib/dpkg/status.d/libc6.md5sums"),
        "aaa  usr/lib/libc.so.6\n"
    );
    assert!(!pruned.files.iter().any(|(p, _)| p.ends_with("libssl3")));
}

#[test]
fn apk_installed_is_pruned_to_kept_files_and_their_folders() {
    let installed = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nm:Natanael Copa <ncopa@alpinelinux.org>\no:musl\n\
F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1aaa=\nR:libc.musl-x86_64.so.1\na:0:0:777\nZ:Q1bbb=\n\
\n\
C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\no:busybox\nF:bin\nR:busybox\nZ:Q1ccc=\nF:etc\nR:securetty\nZ:Q1ddd=\n\
\n\
C:Q1ghi=\nP:curl\nV:8.5.0-r0\nA:x86_64\nF:usr/bin\nR:curl\nZ:Q1eee=\n\n";
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("lib/"),
        File("lib/ld-musl-x86_64.so.1", b"ld"),
        Symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        Dir("bin/"),
        File("bin/busybox", b"bb"),
        Dir("etc/"),
        File("etc/securetty", b"tty"),
        Dir("usr/"),
        Dir("usr/bin/"),
        File("usr/bin/curl", b"curl"),
        Dir("lib/apk/"),
        Dir("lib/apk/db/"),
        File("lib/apk/db/installed", installed.as_bytes()),
        File("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
    ])]);
    let tree = flatten(sources, &refs).unwrap().0;
    let kept = selection(&["lib", "lib/ld-musl-x86_64.so.1", "bin", "bin/busybox"]);
    let pruned = prune(&tree, &kept, Mode::Pruned).unwrap();
    assert_eq!(pruned.db, Db::Apk);
    assert_eq!(pruned.removed, ["curl"]);
    let names: Vec<&str> = pruned.kept.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["musl", "busybox"]);
    assert_eq!(
        (pruned.kept[0].files_kept, pruned.kept[0].files_total),
        (1, 2)
    );
    assert_eq!(
        file(&pruned, "lib/apk/db/installed"),
        "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nm:Natanael Copa <ncopa@alpinelinux.org>\no:musl\n\
F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1aaa=\n\
\n\
C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\no:busybox\nF:bin\nR:busybox\nZ:Q1ccc=\n\n"
    );
    let distro = distro(&tree);
    assert_eq!(
        spdx::purl(Db::Apk, distro.as_ref(), &pruned.kept[1]),
        "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64&distro=3.19.1"
    );
}

#[test]
fn an_rpm_database_is_kept_whole_with_a_warning() {
    let scratch = Scratch::new();
    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("var/"),
        Dir("var/lib/"),
        Dir("var/lib/rpm/"),
        File("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3"),
    ])]);
    let tree = flatten(sources, &refs).unwrap().0;
    let pruned = prune(&tree, &BTreeSet::new(), Mode::Pruned).unwrap();
    assert_eq!(pruned.db, Db::Rpm);
    assert!(pruned
        .whole
        .contains(&PathBuf::from("var/lib/rpm/rpmdb.sqlite")));
    assert!(pruned.warning.as_deref().unwrap().contains("kept whole"));
}

#[test]
fn the_sbom_describes_the_image_and_contains_the_kept_packages() {
    let report = Report {
        database: Db::Dpkg,
        mode: "pruned",
        distro: Some(Distro {
            id: "debian".into(),
            version_id: "12".into(),
        }),
        kept: vec![Package {
            name: "libstdc++6".into(),
            version: "12.2.0-14".into(),
            arch: "amd64".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let doc = spdx::document(
        &spdx::Described {
            name: "app.slim:latest",
            id: "sha256:0123abcd",
            created: "2026-12-03T20:00:00Z".into(),
        },
        &report,
    );
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["relationships"][0]["relationshipType"], "DESCRIBES");
    assert_eq!(
        doc["relationships"][0]["relatedSpdxElement"],
        "SPDXRef-Image"
    );
    assert_eq!(
        doc["packages"][0]["checksums"][0]["checksumValue"],
        "0123abcd"
    );
    let package = &doc["packages"][1];
    assert_eq!(package["SPDXID"], "SPDXRef-Package-libstdc--6-0");
    assert_eq!(
        package["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12"
    );
    assert_eq!(doc["relationships"][1]["relationshipType"], "CONTAINS");
}

#[test]
fn owners_name_the_package_of_each_path_where_it_really_is() {
    let scratch = Scratch::new();
    let tree = debian_tree(&scratch);
    let owners = owners(&tree).unwrap();
    let owner = |path: &str| owners.get(Path::new(path)).map(String::as_str);
    // `libc6:amd64.list` names libc6, without the architecture.
    assert_eq!(owner("usr/lib/libc.so.6"), Some("libc6"));
    assert_eq!(owner("etc/ld.so.conf.d/libc.conf"), Some("libc6"));
    // Listed as /bin/python3.11, under the /bin -> usr/bin symlink.
    assert_eq!(owner("usr/bin/python3.11"), Some("python3.11"));
    assert_eq!(owner("usr/bin/vim.basic"), Some("vim"));
    // Directories a package lists are owned too.
    assert_eq!(owner("usr/lib"), Some("libc6"));
    assert_eq!(owner("etc/os-release"), None);
    assert_eq!(
        owned_paths(&tree).unwrap(),
        owners.keys().cloned().collect::<HashSet<_>>()
    );

    let (sources, refs) = scratch.layers(&[layer(&[
        Dir("bin/"),
        File("bin/busybox", b"bb"),
        Dir("usr/"),
        Dir("usr/bin/"),
        File("usr/bin/curl", b"curl"),
        Dir("lib/"),
        Dir("lib/apk/"),
        Dir("lib/apk/db/"),
        File(
            "lib/apk/db/installed",
            b"P:busybox\nV:1\nF:bin\nR:busybox\n\nP:curl\nV:8\nF:usr/bin\nR:curl\n\n",
        ),
    ])]);
    let tree = flatten(sources, &refs).unwrap().0;
    let owners = super::owners(&tree).unwrap();
    assert_eq!(owners[Path::new("bin/busybox")], "busybox");
    assert_eq!(owners[Path::new("usr/bin/curl")], "curl");
    assert_eq!(owners[Path::new("usr/bin")], "curl");
}
