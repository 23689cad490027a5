//! What the kernel loads on its own when it executes a file: the ELF interpreter (`PT_INTERP`)
//! and the `#!` interpreter of a script. Neither shows up as an open in a syscall trace.

use std::{
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use goblin::{
    container::{Container, Ctx},
    elf::{program_header::PT_INTERP, Elf, ProgramHeader},
};

/// Bytes of a file's head enough to find its interpreter in practice.
pub const HEAD_LEN: usize = 64 * 1024;

/// The interpreter the kernel loads for an executable whose first bytes are `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interpreter {
    /// `PT_INTERP` of a dynamically linked ELF (`/lib64/ld-linux-x86-64.so.2`).
    Elf(PathBuf),
    /// The program named on a script's `#!` line.
    Shebang(PathBuf),
}

impl Interpreter {
    pub fn path(&self) -> &Path {
        match self {
            Self::Elf(p) | Self::Shebang(p) => p,
        }
    }
}

/// Finds the interpreter of an executable from its first bytes ([`HEAD_LEN`] suffice).
pub fn interpreter(head: &[u8]) -> Option<Interpreter> {
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next()?;
        let program = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|word| !word.is_empty())?;
        let program = program.strip_suffix(b"\r").unwrap_or(program);
        return Some(Interpreter::Shebang(PathBuf::from(OsStr::from_bytes(
            program,
        ))));
    }
    elf_interpreter(head).map(Interpreter::Elf)
}

fn elf_interpreter(bytes: &[u8]) -> Option<PathBuf> {
    let header = Elf::parse_header(bytes).ok()?;
    let container =
        if header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64 {
            Container::Big
        } else {
            Container::Little
        };
    let endian = header.endianness().ok()?;
    let ctx = Ctx::new(container, endian);
    let headers =
        ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx).ok()?;
    let interp = headers.iter().find(|ph| ph.p_type == PT_INTERP)?;
    let start = interp.p_offset as usize;
    let raw = bytes.get(start..start.checked_add(interp.p_filesz as usize)?)?;
    let raw = raw.split(|&b| b == 0).next()?;
    (!raw.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_with_arguments() {
        assert_eq!(
            interpreter(b"#!/usr/bin/env python3\nprint(1)\n"),
            Some(Interpreter::Shebang("/usr/bin/env".into()))
        );
        assert_eq!(
            interpreter(b"#! /bin/sh -e\r\n"),
            Some(Interpreter::Shebang("/bin/sh".into()))
        );
        assert_eq!(interpreter(b"#!\n"), None);
    }

    #[test]
    fn host_binary_has_pt_interp() {
        let head = std::fs::read("/bin/sh").expect("/bin/sh exists");
        let head = &head[..head.len().min(HEAD_LEN)];
        match interpreter(head) {
            Some(Interpreter::Elf(path)) => assert!(path.to_string_lossy().contains("ld-")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_is_not_an_executable() {
        assert_eq!(interpreter(b"\x7fELF garbage"), None);
        assert_eq!(interpreter(b""), None);
    }
}
