//! Which syscalls take paths, and where: the table the kernel side looks up by syscall number.
//!
//! Written by name and mapped to numbers with the running architecture's libseccomp table, so a
//! syscall that does not exist there (arm64 has no `open`, `stat`, `access`, `readlink`...) is
//! simply absent.

use slim_common::{op, SyscallSpec, MAX_SYSCALLS, NO_ARG};

use crate::syscalls::Arch;

const N: u8 = NO_ARG;

/// (name, op, path arg, dirfd arg, flags arg, second path arg, second dirfd arg).
const PATH_SYSCALLS: &[(&str, u8, u8, u8, u8, u8, u8)] = &[
    ("open", op::OPEN, 0, N, 1, N, N),
    ("openat", op::OPEN, 1, 0, 2, N, N),
    ("openat2", op::OPEN, 1, 0, 2, N, N),
    ("creat", op::OPEN, 0, N, N, N, N),
    ("execve", op::EXEC, 0, N, N, N, N),
    ("execveat", op::EXEC, 1, 0, 4, N, N),
    ("stat", op::STAT, 0, N, N, N, N),
    ("lstat", op::STAT, 0, N, N, N, N),
    ("newfstatat", op::STAT, 1, 0, 3, N, N),
    ("fstatat64", op::STAT, 1, 0, 3, N, N),
    ("statx", op::STAT, 1, 0, 2, N, N),
    ("access", op::ACCESS, 0, N, N, N, N),
    ("faccessat", op::ACCESS, 1, 0, N, N, N),
    ("faccessat2", op::ACCESS, 1, 0, 3, N, N),
    ("readlink", op::READLINK, 0, N, N, N, N),
    ("readlinkat", op::READLINK, 1, 0, N, N, N),
    ("chdir", op::CHDIR, 0, N, N, N, N),
    ("fchdir", op::FCHDIR, N, N, N, N, N),
    ("mkdir", op::MKDIR, 0, N, N, N, N),
    ("mkdirat", op::MKDIR, 1, 0, N, N, N),
    ("rmdir", op::UNLINK, 0, N, N, N, N),
    ("unlink", op::UNLINK, 0, N, N, N, N),
    ("unlinkat", op::UNLINK, 1, 0, 2, N, N),
    ("rename", op::RENAME, 0, N, N, 1, N),
    ("renameat", op::RENAME, 1, 0, N, 3, 2),
    ("renameat2", op::RENAME, 1, 0, 4, 3, 2),
    ("symlink", op::SYMLINK, 1, N, N, N, N),
    ("symlinkat", op::SYMLINK, 2, 1, N, N, N),
    ("link", op::LINK, 0, N, N, 1, N),
    ("linkat", op::LINK, 1, 0, 4, 3, 2),
    // The flags argument of these two is the address length (`addrlen`).
    ("bind", op::BIND, 1, N, 2, N, N),
    ("connect", op::CONNECT, 1, N, 2, N, N),
    ("mknod", op::MKNOD, 0, N, N, N, N),
    ("mknodat", op::MKNOD, 1, 0, N, N, N),
];

/// The per-number table for `arch`: index = syscall number.
pub fn table(arch: Arch) -> Vec<SyscallSpec> {
    let mut specs = vec![SyscallSpec::default(); MAX_SYSCALLS];
    for &(name, op, path_arg, dirfd_arg, flags_arg, path2_arg, dirfd2_arg) in PATH_SYSCALLS {
        let Some(nr) = arch.number(name) else {
            continue;
        };
        let Some(slot) = specs.get_mut(nr as usize) else {
            continue;
        };
        *slot = SyscallSpec {
            op,
            path_arg,
            dirfd_arg,
            flags_arg,
            path2_arg,
            dirfd2_arg,
            flags_indirect: (name == "openat2") as u8,
            implied_write: (name == "creat") as u8,
        };
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_has_legacy_path_calls() {
        let specs = table(Arch::X86_64);
        assert_eq!(specs[2].op, op::OPEN); // open
        assert_eq!(specs[257].op, op::OPEN); // openat
        assert_eq!(specs[257].dirfd_arg, 0);
        assert_eq!(specs[4].op, op::STAT); // stat
        assert_eq!(specs[0].op, op::NONE); // read
    }

    #[test]
    fn aarch64_uses_at_variants_only() {
        let specs = table(Arch::Aarch64);
        assert_eq!(specs[56].op, op::OPEN); // openat
        assert_eq!(specs[79].op, op::STAT); // newfstatat
        assert_eq!(specs[221].op, op::EXEC); // execve
        let opens = specs.iter().filter(|s| s.op == op::OPEN).count();
        assert_eq!(opens, 2, "openat and openat2 only");
    }
}
