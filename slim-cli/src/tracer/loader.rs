//! An `EbpfLoader` that never parses the kernel's BTF.
//!
//! aya's `EbpfLoader::new` parses the whole of /sys/kernel/btf/vmlinux into its own types
//! (about a tenth of a second and 15 MB of heap per loader, aya-rs/aya#1172), even when
//! `.btf(None)` follows. slim's objects have no CO-RE relocations (what they need of the
//! kernel's layout comes in through their globals), so the loader is made on a thread of its
//! own, in a mount namespace of that thread only where the file reads as empty. Where that
//! namespace cannot be made (no CAP_SYS_ADMIN, a seccomp filter refusing unshare), the loader
//! is made as usual.

use std::{ffi::CStr, io, ptr};

use aya::EbpfLoader;

const KERNEL_BTF: &CStr = c"/sys/kernel/btf/vmlinux";

/// A loader with no target BTF, made without reading the kernel's.
pub fn without_btf<'a>() -> EbpfLoader<'a> {
    let hidden = std::path::Path::new("/sys/kernel/btf/vmlinux")
        .exists()
        .then(|| {
            std::thread::spawn(|| match hide_kernel_btf() {
                Ok(()) => Some(EbpfLoader::new()),
                Err(err) => {
                    tracing::debug!("the kernel's BTF stays visible to the loader: {err}");
                    None
                }
            })
            .join()
            .ok()
            .flatten()
        })
        .flatten();
    let mut loader = hidden.unwrap_or_else(EbpfLoader::new);
    loader.btf(None);
    loader
}

/// Gives the calling thread a mount namespace of its own (the rest of the process keeps the
/// host's) in which the kernel's BTF file is /dev/null. Mounts made in it never reach the host:
/// it is made private first.
fn hide_kernel_btf() -> io::Result<()> {
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    };
    // SAFETY: unshare takes flags only; with CLONE_NEWNS it also gives this thread its own
    // copy of the filesystem attributes, so no other thread of the process is affected.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
    // SAFETY: constant NUL-terminated paths (or null where mount(2) allows it), in the mount
    // namespace made above.
    check(unsafe {
        libc::mount(
            ptr::null(),
            c"/".as_ptr(),
            ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            ptr::null(),
        )
    })?;
    // SAFETY: as above.
    check(unsafe {
        libc::mount(
            c"/dev/null".as_ptr(),
            KERNEL_BTF.as_ptr(),
            ptr::null(),
            libc::MS_BIND,
            ptr::null(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file reads as empty on the hiding thread only; the host's mount table (pid 1's)
    /// and the rest of the process still see the kernel's BTF.
    #[test]
    fn the_kernel_btf_is_hidden_from_the_loading_thread_only() {
        let path = std::path::Path::new("/sys/kernel/btf/vmlinux");
        if unsafe { libc::geteuid() } != 0 || !path.exists() {
            eprintln!("skipping: needs root and a kernel with BTF");
            return;
        }
        let seen = std::thread::spawn(move || {
            hide_kernel_btf().expect("a mount namespace for this thread");
            std::fs::metadata(path).map(|m| m.len()).ok()
        })
        .join()
        .unwrap();
        assert_eq!(
            seen,
            Some(0),
            "the hiding thread still reads the kernel's BTF"
        );
        assert!(std::fs::metadata(path).unwrap().len() > 0);
        let host = std::fs::read_to_string("/proc/1/mountinfo").unwrap();
        assert!(
            !host.contains("/sys/kernel/btf/vmlinux"),
            "the bind mount reached the host's mount table"
        );
        let _loader = without_btf();
    }
}
