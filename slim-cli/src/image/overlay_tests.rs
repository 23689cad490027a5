use std::os::unix::fs::symlink;

use super::*;

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a valid value buffer.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name}: {}",
        std::io::Error::last_os_error()
    );
}

fn whiteout(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR, 0) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
}

struct Layers(PathBuf);

impl Layers {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("slim-overlay-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn layer(&self, n: usize) -> PathBuf {
        let dir = self.0.join(n.to_string());
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn refs(&self, count: usize) -> Vec<LayerDir> {
        (0..count)
            .map(|n| LayerDir {
                dir: self.0.join(n.to_string()),
                digest: format!("sha256:{n}"),
            })
            .collect()
    }
}

impl Drop for Layers {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: no arguments, no side effects.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn files_links_and_metadata_come_from_the_directories() {
    let layers = Layers::new("meta");
    let l0 = layers.layer(0);
    fs::create_dir_all(l0.join("usr/bin")).unwrap();
    fs::write(l0.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(
        l0.join("usr/bin/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(l0.join("usr/bin/tool"), l0.join("usr/bin/tool2")).unwrap();
    symlink("tool", l0.join("usr/bin/alias")).unwrap();
    symlink("/etc/passwd", l0.join("usr/bin/escape")).unwrap();

    let (tree, stats) = flatten_dirs(&layers.refs(1)).unwrap();
    let tool = tree.get(Path::new("usr/bin/tool")).unwrap();
    assert_eq!(tool.kind, Kind::File);
    assert_eq!(tool.mode, 0o4755);
    assert_eq!(
        tree.read(Path::new("usr/bin/tool"), 100).unwrap(),
        b"#!/bin/sh\n"
    );
    let tool2 = tree.get(Path::new("usr/bin/tool2")).unwrap();
    assert_eq!(tool2.kind, Kind::Hardlink);
    assert_eq!(tool2.link.as_deref(), Some(Path::new("usr/bin/tool")));
    assert_eq!(tool2.data, tool.data);
    let escape = tree.get(Path::new("usr/bin/escape")).unwrap();
    assert_eq!(escape.kind, Kind::Symlink);
    assert_eq!(escape.link.as_deref(), Some(Path::new("/etc/passwd")));
    assert_eq!(tree.read(Path::new("usr/bin/escape"), 100), None);
    assert_eq!(stats[0].content_bytes, 10);
    assert_eq!(stats[0].digest, "sha256:0");
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    if !is_root() {
        eprintln!("skipped: whiteouts need mknod and trusted xattrs (root)");
        return;
    }
    let layers = Layers::new("whiteout");
    let l0 = layers.layer(0);
    fs::create_dir_all(l0.join("etc/old")).unwrap();
    fs::write(l0.join("etc/old/a"), b"aaaa").unwrap();
    fs::write(l0.join("etc/gone"), b"12345678").unwrap();
    fs::write(l0.join("etc/kept"), b"k").unwrap();
    let l1 = layers.layer(1);
    fs::create_dir_all(l1.join("etc/old")).unwrap();
    set_xattr(&l1.join("etc/old"), "trusted.overlay.opaque", b"y");
    fs::write(l1.join("etc/old/b"), b"b").unwrap();
    whiteout(&l1.join("etc/gone"));
    fs::write(l1.join("etc/kept"), b"k2").unwrap();
    set_xattr(&l1.join("etc/kept"), "user.note", b"hi");
    set_xattr(&l1.join("etc/kept"), "security.selinux", b"host_label");

    let (tree, stats) = flatten_dirs(&layers.refs(2)).unwrap();
    assert!(tree.get(Path::new("etc/gone")).is_none());
    assert!(tree.get(Path::new("etc/old/a")).is_none());
    assert!(tree.get(Path::new("etc/old/b")).is_some());
    let old = tree.get(Path::new("etc/old")).unwrap();
    assert!(
        old.xattrs.is_empty(),
        "overlay markers are not image xattrs"
    );
    let kept = tree.get(Path::new("etc/kept")).unwrap();
    assert_eq!(kept.xattrs, vec![("user.note".to_owned(), b"hi".to_vec())]);
    assert_eq!(stats[1].files_changed, 3, "etc, etc/old and etc/kept");
    assert_eq!(
        stats[0].wasted_bytes, 13,
        "a, gone and the overwritten kept"
    );
    assert_eq!(stats[1].files_deleted, 2);

    set_xattr(&l1.join("etc/old"), "trusted.overlay.redirect", b"/x");
    let err = anyhow::Error::new(flatten_dirs(&layers.refs(2)).unwrap_err());
    let err = format!("{err:#}");
    assert!(
        err.contains("layer 1: ") && err.contains("redirect"),
        "{err}"
    );
}
