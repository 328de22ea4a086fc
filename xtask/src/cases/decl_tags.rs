//! The `btf_decl_tag` strings an object's BTF attaches to its functions: how upstream's
//! selftests annotate their programs (`__success`, `__failure`, `__msg("...")` in
//! `progs/bpf_misc.h` become tags like `comment:test_expect_msg=...`), read the way upstream's
//! `test_loader.c` reads them. Pure: bytes in, tags out.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use object::{Object, ObjectSection};

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_FUNC: u32 = 12;
const KIND_DECL_TAG: u32 = 17;

/// Function name → its tags in the order the object lists them (upstream's order matters for
/// `__msg`, which it matches one after the other).
pub type FunctionTags = BTreeMap<String, Vec<String>>;

/// The decl tags on every function of a BPF ELF object (tags on a function's arguments, with
/// a component index, are not the function's and are left out).
pub fn of_object(elf: &[u8]) -> Result<FunctionTags> {
    let file = object::File::parse(elf).context("parsing the BPF object")?;
    let section = file
        .section_by_name(".BTF")
        .context("the object has no .BTF section (compile it with -g)")?;
    of_btf(section.data().context("reading .BTF")?)
}

/// Every program of a BPF ELF object (a global function in an executable section other
/// than `.text`, where subprograms live) with its section's name, as libbpf names it
/// (`?raw_tp.w/xyz`: the `?` says the program is not loaded unless asked for).
pub fn program_sections(elf: &[u8]) -> Result<BTreeMap<String, String>> {
    use object::{ObjectSymbol, SectionKind, SymbolKind};

    let file = object::File::parse(elf).context("parsing the BPF object")?;
    let mut programs = BTreeMap::new();
    for symbol in file.symbols() {
        if symbol.kind() != SymbolKind::Text || !symbol.is_global() {
            continue;
        }
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let section = file.section_by_index(index)?;
        let name = section.name()?;
        if section.kind() == SectionKind::Text && !name.starts_with(".text") {
            programs.insert(symbol.name()?.to_owned(), name.to_owned());
        }
    }
    Ok(programs)
}

/// The same, from the raw `.BTF` section.
pub fn of_btf(btf: &[u8]) -> Result<FunctionTags> {
    let header = Header::parse(btf)?;
    let types = btf
        .get(header.types.clone())
        .context("BTF type section out of bounds")?;
    let strings = btf
        .get(header.strings.clone())
        .context("BTF string section out of bounds")?;
    let mut functions: BTreeMap<u32, String> = BTreeMap::new();
    let mut tags: Vec<(u32, String)> = Vec::new();
    let mut offset = 0;
    let mut id = 1;
    while offset < types.len() {
        let entry = TypeEntry::parse(types, offset)?;
        match entry.kind {
            KIND_FUNC => {
                functions.insert(id, string_at(strings, entry.name_off)?);
            }
            KIND_DECL_TAG if entry.component_index(types, offset)? == -1 => {
                tags.push((entry.size_or_type, string_at(strings, entry.name_off)?));
            }
            _ => {}
        }
        offset += entry.len()?;
        id += 1;
    }
    let mut found = FunctionTags::new();
    for (target, tag) in tags {
        if let Some(name) = functions.get(&target) {
            found.entry(name.clone()).or_default().push(tag);
        }
    }
    Ok(found)
}

struct Header {
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
}

impl Header {
    fn parse(btf: &[u8]) -> Result<Self> {
        ensure!(btf.len() >= 24, "BTF shorter than its header");
        ensure!(
            u16_at(btf, 0) == BTF_MAGIC,
            "not BTF (bad magic; big-endian objects are not read)"
        );
        let header_len = u32_at(btf, 4) as usize;
        let range = |offset: usize, len: usize| {
            header_len + u32_at(btf, offset) as usize
                ..header_len + u32_at(btf, offset) as usize + len
        };
        Ok(Self {
            types: range(8, u32_at(btf, 12) as usize),
            strings: range(16, u32_at(btf, 20) as usize),
        })
    }
}

/// The fixed 12 bytes every BTF type starts with.
struct TypeEntry {
    name_off: u32,
    kind: u32,
    vlen: usize,
    size_or_type: u32,
}

impl TypeEntry {
    fn parse(types: &[u8], offset: usize) -> Result<Self> {
        ensure!(
            offset + 12 <= types.len(),
            "BTF type at {offset} is cut off"
        );
        let info = u32_at(types, offset + 4);
        Ok(Self {
            name_off: u32_at(types, offset),
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            size_or_type: u32_at(types, offset + 8),
        })
    }

    /// The whole entry's length: 12 bytes and what its kind appends (`include/uapi/linux/btf.h`).
    fn len(&self) -> Result<usize> {
        let extra = match self.kind {
            1 | 14 | 17 => 4,                  // INT, VAR, DECL_TAG
            3 => 12,                           // ARRAY
            4 | 5 | 15 | 19 => self.vlen * 12, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => self.vlen * 8,           // ENUM, FUNC_PROTO
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, modifiers, FUNC, FLOAT, TYPE_TAG
            kind => bail!("BTF kind {kind} is not one this reader knows"),
        };
        Ok(12 + extra)
    }

    fn component_index(&self, types: &[u8], offset: usize) -> Result<i32> {
        ensure!(
            offset + 16 <= types.len(),
            "BTF decl tag at {offset} is cut off"
        );
        Ok(u32_at(types, offset + 12) as i32)
    }
}

fn string_at(strings: &[u8], offset: u32) -> Result<String> {
    let tail = strings
        .get(offset as usize..)
        .context("BTF string offset out of bounds")?;
    let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `xtask/testdata/annotated.bpf.c`, built with clang 14 `-target bpf -O2 -g`: two
    /// programs annotated the way selftests' bpf_misc.h does it.
    const ANNOTATED: &[u8] = include_bytes!("../../testdata/annotated.bpf.o");

    #[test]
    fn tags_are_read_per_function_in_source_order() {
        let tags = of_object(ANNOTATED).unwrap();
        assert_eq!(
            tags["rejects_negative_offset"],
            vec![
                "comment:test_description=negative offset",
                "comment:test_expect_failure",
                "comment:test_expect_msg=first message",
                "comment:test_expect_msg=second message",
                "comment:test_prog_flags=BPF_F_ANY_ALIGNMENT",
            ]
        );
        assert_eq!(tags["accepts"], vec!["comment:test_expect_success"]);
        assert!(!tags.contains_key("untagged"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(of_btf(&[0u8; 10]).is_err());
        assert!(of_btf(&[0u8; 32]).is_err());
        assert!(of_object(b"not an elf").is_err());
    }
}
