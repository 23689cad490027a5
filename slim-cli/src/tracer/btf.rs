//! Struct member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF programs have no CO-RE relocations, so the few kernel struct offsets the recorder
//! needs are looked up here, at load time, and handed to the program as globals.

use std::{collections::HashMap, path::Path};

use slim_common::{KernelOffsets, RegsLayout};

use crate::syscalls::Arch;

/// Why offsets could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF at {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the kernel exposes no BTF")]
    Missing,
    #[error("kernel BTF is malformed: {0}")]
    Malformed(&'static str),
    #[error("it is not the running kernel's: {0}")]
    WrongKernel(String),
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

#[derive(Debug, Clone)]
struct Member {
    name: String,
    type_id: u32,
    /// Offset in bits from the start of the enclosing struct.
    bit_offset: u32,
}

#[derive(Debug, Clone)]
struct Type {
    kind: u32,
    /// Referenced type for modifiers and typedefs.
    target: u32,
    members: Vec<Member>,
}

/// The parts of a BTF blob needed to find struct member offsets.
pub struct Btf {
    types: Vec<Type>,
    structs_by_name: HashMap<String, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Malformed("truncated"))
}

impl Btf {
    /// Reads the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    /// Reads BTF from a file.
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data)
    }

    /// Parses a little-endian BTF blob.
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section out of bounds"))?;
        if types_end > data.len() {
            return Err(BtfError::Malformed("type section out of bounds"));
        }
        let name = |off: u32| -> String {
            let rest = strings.get(off as usize..).unwrap_or_default();
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        };
        // Type ids start at 1; index 0 is "void".
        let mut types = vec![Type {
            kind: 0,
            target: 0,
            members: Vec::new(),
        }];
        let mut structs_by_name = HashMap::new();
        let mut at = types_start;
        while at < types_end {
            let name_off = u32_at(data, at)?;
            let info = u32_at(data, at + 4)?;
            let size_or_type = u32_at(data, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let extra = match kind {
                1 => 4,  // INT
                3 => 12, // ARRAY
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let offset = u32_at(data, m + 8)?;
                        members.push(Member {
                            name: name(u32_at(data, m)?),
                            type_id: u32_at(data, m + 4)?,
                            bit_offset: if kind_flag {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                        });
                    }
                    vlen * 12
                }
                6 => vlen * 8,   // ENUM
                13 => vlen * 8,  // FUNC_PROTO
                14 => 4,         // VAR
                15 => vlen * 12, // DATASEC
                17 => 4,         // DECL_TAG
                19 => vlen * 12, // ENUM64
                _ => 0,
            };
            at += extra;
            let type_name = name(name_off);
            if kind == KIND_STRUCT && !type_name.is_empty() {
                structs_by_name
                    .entry(type_name)
                    .or_insert(types.len() as u32);
            }
            types.push(Type {
                kind,
                target: size_or_type,
                members,
            });
        }
        Ok(Self {
            types,
            structs_by_name,
        })
    }

    /// Follows typedefs and modifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.target
                }
                _ => break,
            }
        }
        id
    }

    /// Bit offset and type of `member` inside type `id`, looking into anonymous members.
    fn find_member(&self, id: u32, member: &str, depth: u32) -> Option<(u32, u32)> {
        let t = self.types.get(self.resolve(id) as usize)?;
        if depth > 8 {
            return None;
        }
        for m in &t.members {
            if m.name == member {
                return Some((m.bit_offset, m.type_id));
            }
        }
        for m in t.members.iter().filter(|m| m.name.is_empty()) {
            if let Some((inner, type_id)) = self.find_member(m.type_id, member, depth + 1) {
                return Some((m.bit_offset + inner, type_id));
            }
        }
        None
    }

    /// Byte offset of a dotted member path (`"ns.inum"`) inside `struct strukt`.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut id = *self
            .structs_by_name
            .get(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        let mut bits = 0;
        for part in path.split('.') {
            let (offset, type_id) =
                self.find_member(id, part, 0)
                    .ok_or_else(|| BtfError::NoMember {
                        strukt: strukt.to_string(),
                        member: path.to_string(),
                    })?;
            bits += offset;
            id = type_id;
        }
        Ok(bits / 8)
    }

    /// Where `struct pt_regs` keeps a syscall's number and arguments on `arch`.
    pub fn regs_layout(&self, arch: Arch) -> Result<RegsLayout, BtfError> {
        let offset = |member: &str| self.member_offset("pt_regs", member);
        Ok(match arch {
            Arch::X86_64 => RegsLayout::new(
                offset("orig_ax")?,
                [
                    offset("di")?,
                    offset("si")?,
                    offset("dx")?,
                    offset("r10")?,
                    offset("r8")?,
                    offset("r9")?,
                ],
                [
                    offset("bx")?,
                    offset("cx")?,
                    offset("dx")?,
                    offset("si")?,
                    offset("di")?,
                    offset("bp")?,
                ],
                (offset("cs")?, 0xffff, 0x23),
            ),
            Arch::Aarch64 => {
                let regs = offset("regs")?;
                let args = [
                    offset("orig_x0")?,
                    regs + 8,
                    regs + 16,
                    regs + 24,
                    regs + 32,
                    regs + 40,
                ];
                RegsLayout::new(
                    offset("syscallno")?,
                    args,
                    args,
                    (offset("pstate")?, 0x10, 0x10),
                )
            }
            Arch::X86 | Arch::Arm => return Err(BtfError::NoStruct(format!("pt_regs of {arch}"))),
        })
    }

    /// The offsets the recorder needs to read a task's mount namespace.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_nsproxy: self.member_offset("task_struct", "nsproxy")?,
            nsproxy_mnt_ns: self.member_offset("nsproxy", "mnt_ns")?,
            mnt_ns_inum: self.member_offset("mnt_namespace", "ns.inum")?,
            valid: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pt_regs_layout_matches_the_architecture_header() {
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("skipping: no /sys/kernel/btf/vmlinux on this kernel");
            return;
        };
        let arch = Arch::host().expect("supported host");
        let expected = match arch {
            Arch::Aarch64 => RegsLayout::AARCH64,
            _ => RegsLayout::X86_64,
        };
        assert_eq!(btf.regs_layout(arch).unwrap(), expected);
    }

    #[test]
    fn resolves_mount_namespace_offsets_of_the_running_kernel() {
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("skipping: no /sys/kernel/btf/vmlinux on this kernel");
            return;
        };
        let offsets = btf.kernel_offsets().expect("offsets");
        assert!(offsets.task_nsproxy > 0, "{offsets:?}");
        assert_eq!(offsets.valid, 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Btf::parse(b"not btf at all, clearly not"),
            Err(BtfError::Malformed(_))
        ));
    }
}
