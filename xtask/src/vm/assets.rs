//! What a test VM boots from, all from Debian's own packages and cached under
//! ~/.cache/slim/vm/ARCH: the distribution kernel and its modules, a static busybox for the
//! initramfs, and the root disk (debootstrap with a Docker engine, as an ext4 image made with
//! `mkfs.ext4 -d`: no loop device, no mount).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use super::{cpio::Cpio, Machine};
use crate::{
    fixtures,
    util::{output, run as run_cmd},
};

/// The kernel of one machine, unpacked.
pub struct Kernel {
    /// `6.1.0-57-amd64`.
    pub release: String,
    pub image: PathBuf,
    /// The unpacked package (lib/modules/RELEASE inside).
    pub root: PathBuf,
}

pub fn cache(machine: &Machine) -> PathBuf {
    fixtures::cache_dir().join("vm").join(machine.arch)
}

/// `dpkg --add-architecture` and an index update, when the machine is foreign here.
pub fn ensure_architecture(machine: &Machine) -> Result<()> {
    fixtures::ensure_dpkg_architecture(machine.arch)
}

/// Downloads `package` (`name:arch`) with apt into `dir` once; returns the .deb.
fn download(package: &str, dir: &Path) -> Result<PathBuf> {
    fixtures::download_deb(package, dir)
}

/// The kernel package the metapackage `linux-image-ARCH` points at, downloaded and unpacked.
pub fn kernel(machine: &Machine) -> Result<Kernel> {
    let meta = format!("{}:{}", machine.kernel_meta, machine.arch);
    let depends = output(Command::new("apt-cache").args(["depends", &meta]))
        .with_context(|| format!("apt-cache depends {meta} failed"))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|d| d.trim().split(':').next().unwrap_or(d).to_owned())
        .find(|d| d.starts_with("linux-image-"))
        .with_context(|| format!("{meta} depends on no linux-image package"))?;
    let dir = cache(machine).join("kernel");
    let deb = download(&format!("{package}:{}", machine.arch), &dir)?;
    let release = package.trim_start_matches("linux-image-").to_owned();
    let root = dir.join(&release);
    if !root
        .join("lib/modules")
        .join(&release)
        .join("modules.dep")
        .exists()
    {
        let _ = fs::remove_dir_all(&root);
        run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        run_cmd(Command::new("depmod").arg("-b").arg(&root).arg(&release))
            .context("depmod (Debian package kmod) failed")?;
    }
    let image = root.join("boot").join(format!("vmlinuz-{release}"));
    if !image.exists() {
        bail!("{} has no {}", deb.display(), image.display());
    }
    Ok(Kernel {
        release,
        image,
        root,
    })
}

/// A static busybox of the machine's architecture (Debian's busybox-static).
fn busybox(machine: &Machine) -> Result<PathBuf> {
    let dir = cache(machine).join("busybox");
    let binary = dir.join("bin/busybox");
    if binary.exists() {
        return Ok(binary);
    }
    let deb = download(&format!("busybox-static:{}", machine.arch), &dir)?;
    run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
    Ok(binary)
}

/// `modules.dep` of the kernel as name -> (path, dependency paths).
fn module_deps(kernel: &Kernel) -> Result<BTreeMap<String, (String, Vec<String>)>> {
    let dep = kernel
        .root
        .join("lib/modules")
        .join(&kernel.release)
        .join("modules.dep");
    let text =
        fs::read_to_string(&dep).with_context(|| format!("cannot read {}", dep.display()))?;
    let name_of = |path: &str| {
        Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.split(".ko").next().unwrap_or(n).replace('-', "_"))
            .unwrap_or_default()
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let (path, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((name_of(path), (path.to_owned(), deps)))
        })
        .collect())
}

/// Module paths to load for `wanted`, dependencies first.
fn load_order(kernel: &Kernel, wanted: &[&str]) -> Result<Vec<String>> {
    let deps = module_deps(kernel)?;
    let by_path: BTreeMap<&str, &Vec<String>> =
        deps.values().map(|(p, d)| (p.as_str(), d)).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit<'a>(
        path: &'a str,
        by_path: &BTreeMap<&'a str, &'a Vec<String>>,
        seen: &mut BTreeSet<&'a str>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(path) {
            return;
        }
        if let Some(deps) = by_path.get(path) {
            // modules.dep lists the deepest dependency last.
            for dep in deps.iter().rev() {
                visit(dep, by_path, seen, order);
            }
        }
        order.push(path.to_owned());
    }
    for name in wanted {
        // A module missing from modules.dep is built into this kernel.
        if let Some((path, _)) = deps.get(*name) {
            visit(path, &by_path, &mut seen, &mut order);
        }
    }
    Ok(order)
}

/// Modules the initramfs loads to reach the root disk.
const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
];

/// The initramfs: busybox, the boot modules, and an init that mounts the root disk (vda) and
/// the payload disk (vdb) and hands over to the payload's guest script.
pub fn initramfs(machine: &Machine, kernel: &Kernel, dest: &Path) -> Result<()> {
    let busybox = fs::read(busybox(machine)?)?;
    let modules = load_order(kernel, BOOT_MODULES)?;
    let mut cpio = Cpio::new(Vec::new());
    for dir in ["bin", "dev", "proc", "sys", "newroot", "modules"] {
        cpio.dir(dir)?;
    }
    cpio.file("bin/busybox", 0o755, &busybox)?;
    cpio.symlink("bin/sh", "busybox")?;
    let mut names = Vec::new();
    for path in &modules {
        let file = kernel
            .root
            .join("lib/modules")
            .join(&kernel.release)
            .join(path);
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .context("module name")?
            .to_owned();
        cpio.file(&format!("modules/{name}"), 0o644, &fs::read(&file)?)?;
        names.push(name);
    }
    let init = format!(
        r#"#!/bin/sh
export PATH=/bin
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for m in {modules}; do $bb insmod /modules/$m 2>/dev/null; done
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 200 ]; do $bb sleep 0.05; i=$((i+1)); done
if ! $bb mount -t ext4 /dev/vda /newroot || ! $bb mount -t ext4 /dev/vdb /newroot/payload; then
  echo "slim-vm: cannot mount the root and payload disks"
  echo o > /proc/sysrq-trigger
fi
$bb umount /proc
$bb mount --move /dev /newroot/dev
exec $bb switch_root /newroot /bin/bash /payload/guest.sh
"#,
        modules = names.join(" ")
    );
    cpio.file("init", 0o755, init.as_bytes())?;
    fs::write(dest, cpio.finish()?)?;
    Ok(())
}

/// Packages of the guest rootfs: a Docker engine and what the guest tests use.
const GUEST_PACKAGES: &str = "docker.io,kmod,iproute2,procps,python3,apparmor";

/// The root disk: a Debian rootfs with a Docker engine and the kernel's modules, as a raw ext4
/// image (booted with `snapshot=on`: never written to).
pub fn root_disk(machine: &Machine, kernel: &Kernel) -> Result<PathBuf> {
    let disk = cache(machine).join(format!("root-{}.img", kernel.release));
    if disk.exists() {
        return Ok(disk);
    }
    let tarball = fixtures::rootfs_tarball("vm-rootfs", machine.arch, GUEST_PACKAGES)?;
    let staging = cache(machine).join("rootfs-staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    let result = (|| -> Result<()> {
        run_cmd(
            Command::new("tar")
                .arg("-xf")
                .arg(&tarball)
                .arg("-C")
                .arg(&staging),
        )?;
        let modules = staging.join("lib/modules");
        fs::create_dir_all(&modules)?;
        run_cmd(
            Command::new("cp")
                .arg("-a")
                .arg(kernel.root.join("lib/modules").join(&kernel.release))
                .arg(&modules),
        )?;
        fs::create_dir_all(staging.join("payload"))?;
        println!("vm: writing {}", disk.display());
        let partial = disk.with_extension("img.partial");
        let _ = fs::remove_file(&partial);
        run_cmd(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "slim-root", "-d"])
                .arg(&staging)
                .arg(&partial)
                .arg("8G"),
        )?;
        fs::rename(&partial, &disk)?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&staging);
    result.map(|()| disk)
}

/// An ext4 image of `dir`, sized for its content plus room to spare.
pub fn payload_disk(dir: &Path, dest: &Path) -> Result<()> {
    let bytes: u64 = output(Command::new("du").args(["-sb"]).arg(dir))
        .and_then(|o| o.split_whitespace().next()?.parse().ok())
        .unwrap_or(1 << 30);
    let megabytes = bytes / (1 << 20) * 13 / 10 + 64;
    let _ = fs::remove_file(dest);
    run_cmd(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "slim-payload", "-d"])
            .arg(dir)
            .arg(dest)
            .arg(format!("{megabytes}M")),
    )
}
