//! `slim diff` on two docker-archives written here (no engine, no root): exact paths, byte
//! counts and packages in the JSON, the human table, and bad input refused in one line.

mod support;

use std::path::{Path, PathBuf};

use support::*;

/// dpkg's file list of the one package of the fat archive (multi-arch name: `tool:amd64`).
const TOOL_LIST: &str = "/usr/bin/tool\n/usr/share/doc/tool/copyright\n";

/// A docker-archive with one layer of `members`: (name, type flag, link target, content).
fn archive(dir: &Path, name: &str, members: &[(&str, u8, &str, &[u8])]) -> PathBuf {
    let mut layer = Vec::new();
    for (member, kind, link, data) in members {
        tar_member(&mut layer, member, *kind, link, data);
    }
    layer.extend([0u8; 1024]);
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
    let manifest = br#"[{"Config":"config.json","RepoTags":["diff:1"],"Layers":["layer.tar"]}]"#;
    let mut out = Vec::new();
    tar_member(&mut out, "config.json", b'0', "", config);
    tar_member(&mut out, "layer.tar", b'0', "", &layer);
    tar_member(&mut out, "manifest.json", b'0', "", manifest);
    out.extend([0u8; 1024]);
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

/// FAT: a tool with its docs and dpkg list, an app, a motd; SLIM: the app, the tool shrunk,
/// the `t` link pointing elsewhere, one new file.
fn archives(dir: &Path) -> (String, String) {
    let fat = archive(
        dir,
        "fat.tar",
        &[
            ("etc/", b'5', "", b""),
            ("etc/motd", b'0', "", b"hello\n"),
            ("usr/", b'5', "", b""),
            ("usr/bin/", b'5', "", b""),
            ("usr/bin/tool", b'0', "", &[1; 1000]),
            ("usr/bin/app", b'0', "", &[2; 300]),
            ("usr/bin/t", b'2', "tool", b""),
            ("usr/share/", b'5', "", b""),
            ("usr/share/doc/", b'5', "", b""),
            ("usr/share/doc/tool/", b'5', "", b""),
            ("usr/share/doc/tool/copyright", b'0', "", &[3; 200]),
            ("var/", b'5', "", b""),
            ("var/lib/", b'5', "", b""),
            ("var/lib/dpkg/", b'5', "", b""),
            ("var/lib/dpkg/info/", b'5', "", b""),
            (
                "var/lib/dpkg/info/tool:amd64.list",
                b'0',
                "",
                TOOL_LIST.as_bytes(),
            ),
            ("srv/", b'5', "", b""),
            ("srv/app.py", b'0', "", &[4; 20]),
        ],
    );
    let slim = archive(
        dir,
        "slim.tar",
        &[
            ("usr/", b'5', "", b""),
            ("usr/bin/", b'5', "", b""),
            ("usr/bin/tool", b'0', "", &[1; 400]),
            ("usr/bin/app", b'0', "", &[2; 300]),
            ("usr/bin/t", b'2', "app", b""),
            ("srv/", b'5', "", b""),
            ("srv/app.py", b'0', "", &[4; 20]),
            ("srv/new.txt", b'0', "", b"new one"),
        ],
    );
    let name = |p: PathBuf| format!("docker-archive:{}", p.display());
    (name(fat), name(slim))
}

fn paths(part: &serde_json::Value) -> Vec<(String, u64)> {
    part["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn groups(groups: &serde_json::Value) -> Vec<(String, u64, u64)> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["files"].as_u64().unwrap(),
                g["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(p, b)| (p.to_string(), *b)).collect()
}

#[test]
fn json_lists_exactly_what_each_archive_alone_has_and_what_changed() {
    let dir = TempDir::new("diff-json");
    let (fat, thin) = archives(&dir.0);
    let diff = run_json(
        slim()
            .args(["diff", "--json", &fat, &thin])
            .env("SLIM_WORK_DIR", &dir.0),
    );
    let list = TOOL_LIST.len() as u64;
    assert_eq!(diff["left"]["image"], fat.as_str());
    assert_eq!(diff["left"]["files"], 7);
    assert_eq!(diff["left"]["bytes"], 6 + 1000 + 300 + 200 + list + 20);
    assert_eq!(
        (&diff["right"]["files"], &diff["right"]["bytes"]),
        (&5.into(), &727.into())
    );
    assert_eq!(diff["package_database"], true);

    let only_fat = &diff["only_left"];
    assert_eq!(
        paths(only_fat),
        owned(&[
            ("/etc", 0),
            ("/etc/motd", 6),
            ("/usr/share", 0),
            ("/usr/share/doc", 0),
            ("/usr/share/doc/tool", 0),
            ("/usr/share/doc/tool/copyright", 200),
            ("/var", 0),
            ("/var/lib", 0),
            ("/var/lib/dpkg", 0),
            ("/var/lib/dpkg/info", 0),
            ("/var/lib/dpkg/info/tool:amd64.list", list),
        ])
    );
    assert_eq!(
        (&only_fat["files"], &only_fat["dirs"]),
        (&3.into(), &8.into())
    );
    assert_eq!(only_fat["bytes"], 206 + list);
    assert_eq!(
        groups(&only_fat["by_directory"]),
        [
            ("/usr/share".to_owned(), 1, 200),
            ("/var/lib".to_owned(), 1, list),
            ("/etc".to_owned(), 1, 6),
        ]
    );
    // The package is `tool`, without the architecture of its list's file name.
    assert_eq!(
        groups(&only_fat["by_package"]),
        [
            ("tool".to_owned(), 1, 200),
            ("(no package)".to_owned(), 2, 6 + list),
        ]
    );

    assert_eq!(paths(&diff["only_right"]), owned(&[("/srv/new.txt", 7)]));
    let changed: Vec<(&str, Vec<&str>)> = diff["changed"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let what = c["what"].as_array().unwrap();
            (
                c["path"].as_str().unwrap(),
                what.iter().map(|w| w.as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("/usr/bin/t", vec!["link"]),
            ("/usr/bin/tool", vec!["size"])
        ]
    );
    let tool = &diff["changed"]["paths"][1];
    assert_eq!(
        (&tool["left"]["bytes"], &tool["right"]["bytes"]),
        (&1000.into(), &400.into())
    );
    assert_eq!(tool["package"], "tool");
    assert_eq!(diff["changed"]["paths"][0]["right"]["link"], "app");
}

#[test]
fn the_table_has_the_headline_then_directories_packages_and_changes() {
    let dir = TempDir::new("diff-table");
    let (fat, thin) = archives(&dir.0);
    let out = slim()
        .args(["diff", "--limit", "1", &fat, &thin])
        .env("SLIM_WORK_DIR", &dir.0)
        .output()
        .unwrap();
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("{fat} 1.6 kB -> {thin} 727 B: 3 files (250 B) only in {fat}, 1 only in {thin}, 2 changed")
    );
    let expected = [
        "",
        "ONLY IN FAT, BY DIRECTORY",
        "    FILES       SIZE  DIRECTORY",
        "        1      200 B  /usr/share",
        "        2       50 B  ... 2 more",
        "",
        "ONLY IN FAT, BY PACKAGE",
        "    FILES       SIZE  PACKAGE",
        "        1      200 B  tool",
        "        2       50 B  ... 1 more",
        "",
        "ONLY IN SLIM, BY DIRECTORY",
        "    FILES       SIZE  DIRECTORY",
        "        1        7 B  /srv",
        "",
        "CHANGED (1.0 kB in FAT, 400 B in SLIM)",
        "  /usr/bin/t  link tool -> app",
        "  ... 1 more (--limit N, or --json for all)",
    ];
    assert_eq!(lines[1..], expected, "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unreadable_archives_are_refused_in_one_line_with_which_image() {
    let dir = TempDir::new("diff-bad");
    let (fat, _) = archives(&dir.0);
    let missing = format!("docker-archive:{}", dir.0.join("missing.tar").display());
    let noise = dir.0.join("noise.tar");
    std::fs::write(&noise, [0x5a; 4096]).unwrap();
    let noise = format!("docker-archive:{}", noise.display());
    for (slim_arg, code, expect) in [
        (
            &missing,
            2,
            "is not a file\n  hint: give a tar written by `docker save`\n",
        ),
        (
            &noise,
            1,
            ": malformed image: not a tar archive (its first header is unreadable)\n",
        ),
    ] {
        let out = slim()
            .args(["diff", &fat, slim_arg])
            .env("SLIM_WORK_DIR", &dir.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: reading SLIM ({slim_arg}): ")),
            "{stderr}"
        );
        assert!(stderr.ends_with(expect), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
