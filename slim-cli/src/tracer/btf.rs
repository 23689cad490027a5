//! Struct member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF programs have no CO-RE relocations, so the few kernel struct offsets the recorder
//! needs are looked up here, at load time, and handed to the program as globals.

use std::path::Path;

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

/// Members looked at for one member lookup, at most: far more than any kernel struct nests.
const MEMBER_BUDGET: u32 = 200_000;

/// One type of the blob: what lookups need, its members left in the blob (read on demand, so
/// the parsed form of a kernel's BTF costs a few MB, not tens).
#[derive(Debug, Clone, Copy)]
struct Type {
    kind: u32,
    /// Referenced type for modifiers and typedefs.
    target: u32,
    /// Offset of its name in the string section.
    name_off: u32,
    /// Where its members start in the blob (structs and unions).
    members_at: u32,
    vlen: u16,
    /// Member offsets carry a bitfield size in their top byte.
    kind_flag: bool,
}

/// The parts of a BTF blob needed to find struct member offsets.
pub struct Btf {
    data: Vec<u8>,
    /// The string section's range in `data`.
    strings: std::ops::Range<usize>,
    types: Vec<Type>,
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
        Self::parse_owned(data)
    }

    /// Parses a little-endian BTF blob.
    #[cfg(test)]
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        Self::parse_owned(data.to_vec())
    }

    /// Parses a little-endian BTF blob, keeping it.
    fn parse_owned(data: Vec<u8>) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = u32_at(&data, 8)? as usize;
        let type_len = u32_at(&data, 12)? as usize;
        let str_off = u32_at(&data, 16)? as usize;
        let str_len = u32_at(&data, 20)? as usize;
        let types_start = hdr_len.saturating_add(type_off);
        let types_end = types_start.saturating_add(type_len);
        let strings = hdr_len.saturating_add(str_off)
            ..hdr_len.saturating_add(str_off).saturating_add(str_len);
        if strings.end > data.len() {
            return Err(BtfError::Malformed("string section out of bounds"));
        }
        if types_end > data.len() {
            return Err(BtfError::Malformed("type section out of bounds"));
        }
        // Type ids start at 1; index 0 is "void".
        let mut types = vec![Type {
            kind: 0,
            target: 0,
            name_off: 0,
            members_at: 0,
            vlen: 0,
            kind_flag: false,
        }];
        let mut at = types_start;
        while at < types_end {
            let name_off = u32_at(&data, at)?;
            let info = u32_at(&data, at + 4)?;
            let size_or_type = u32_at(&data, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let extra = match kind {
                1 => 4,                                // INT
                3 => 12,                               // ARRAY
                KIND_STRUCT | KIND_UNION => vlen * 12, // members
                6 => vlen * 8,                         // ENUM
                13 => vlen * 8,                        // FUNC_PROTO
                14 => 4,                               // VAR
                15 => vlen * 12,                       // DATASEC
                17 => 4,                               // DECL_TAG
                19 => vlen * 12,                       // ENUM64
                _ => 0,
            };
            if matches!(kind, KIND_STRUCT | KIND_UNION) && at + extra > types_end {
                return Err(BtfError::Malformed("truncated"));
            }
            types.push(Type {
                kind,
                target: size_or_type,
                name_off,
                members_at: at as u32,
                vlen: vlen as u16,
                kind_flag: info >> 31 == 1,
            });
            at += extra;
        }
        Ok(Self {
            data,
            strings,
            types,
        })
    }

    /// The name at `off` in the string section (empty when out of bounds).
    fn name(&self, off: u32) -> &[u8] {
        let strings = &self.data[self.strings.clone()];
        let rest = strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Member `index` of type `t`: (name offset, type id, bit offset).
    fn member(&self, t: &Type, index: usize) -> Option<(u32, u32, u32)> {
        let at = t.members_at as usize + index * 12;
        let offset = u32_at(&self.data, at + 8).ok()?;
        Some((
            u32_at(&self.data, at).ok()?,
            u32_at(&self.data, at + 4).ok()?,
            if t.kind_flag {
                offset & 0x00ff_ffff
            } else {
                offset
            },
        ))
    }

    /// The id of the first named struct called `name`.
    fn struct_id(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .position(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == name.as_bytes())
            .map(|id| id as u32)
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

    /// Bit offset and type of `member` inside type `id`, looking into anonymous members. A
    /// crafted blob (`--kernel-btf FILE`) cannot make it loop for long or overflow: at most
    /// `budget` members are looked at, and offsets that do not fit are not found.
    fn find_member(
        &self,
        id: u32,
        member: &str,
        depth: u32,
        budget: &mut u32,
    ) -> Option<(u32, u32)> {
        let t = *self.types.get(self.resolve(id) as usize)?;
        if depth > 8 || !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        *budget = budget.checked_sub(u32::from(t.vlen))?;
        let members = (0..t.vlen as usize).filter_map(|i| self.member(&t, i));
        for (name_off, type_id, bit_offset) in members.clone() {
            if self.name(name_off) == member.as_bytes() {
                return Some((bit_offset, type_id));
            }
        }
        for (_, type_id, bit_offset) in
            members.filter(|(name_off, ..)| self.name(*name_off).is_empty())
        {
            if let Some((inner, type_id)) = self.find_member(type_id, member, depth + 1, budget) {
                return Some((bit_offset.checked_add(inner)?, type_id));
            }
        }
        None
    }

    /// Byte offset of a dotted member path (`"ns.inum"`) inside `struct strukt`.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut id = self
            .struct_id(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        let mut bits: u32 = 0;
        for part in path.split('.') {
            let no_member = || BtfError::NoMember {
                strukt: strukt.to_string(),
                member: path.to_string(),
            };
            let mut budget = MEMBER_BUDGET;
            let (offset, type_id) = self
                .find_member(id, part, 0, &mut budget)
                .ok_or_else(no_member)?;
            bits = bits.checked_add(offset).ok_or_else(no_member)?;
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

    /// A blob of one struct `a` whose `vlen` members are all unnamed and of type `a` itself,
    /// at bit offset `offset`.
    fn self_nesting(vlen: u32, offset: u32) -> Vec<u8> {
        let strings = b"\0a\0";
        let mut types = Vec::new();
        for word in [1u32, (KIND_STRUCT << 24) | vlen, 8] {
            types.extend(word.to_le_bytes());
        }
        for _ in 0..vlen {
            for word in [0u32, 1, offset] {
                types.extend(word.to_le_bytes());
            }
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        for word in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend(word.to_le_bytes());
        }
        blob.extend(types);
        blob.extend(strings);
        blob
    }

    #[test]
    fn a_crafted_blob_cannot_hang_or_overflow_a_lookup() {
        let nesting = Btf::parse(&self_nesting(1000, 8)).unwrap();
        let started = std::time::Instant::now();
        assert!(nesting.member_offset("a", "x").is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(
            nesting.member_offset("nope", "x"),
            Err(BtfError::NoStruct(_))
        ));
    }

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
