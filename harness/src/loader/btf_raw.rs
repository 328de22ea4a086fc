//! A walker over raw BTF bytes: the header, each type's kind, name and byte offset, and the
//! string table. aya-obj's `Btf` does not say where a type lies in the bytes, and the loader
//! patches a few fields in place before aya-obj parses the object (a DATASEC's size and
//! offsets, a VAR's linkage, a member's name), so it needs exactly that.

use std::sync::Arc;

/// BTF kinds the loader looks at (linux/btf.h).
pub mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

pub const MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_type` (name_off, info, size/type).
const TYPE_HEADER: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfRawError {
    #[error("BTF: bad magic (not little-endian BTF)")]
    Magic,
    #[error("BTF: {0} runs past the end of the data")]
    Truncated(&'static str),
    #[error("BTF: unknown kind {kind} at type id {id}")]
    UnknownKind { kind: u32, id: usize },
}

/// `struct btf_header`, with the offsets as found (type and string offsets are relative to the
/// end of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub hdr_len: usize,
    pub type_off: usize,
    pub type_len: usize,
    pub str_off: usize,
    pub str_len: usize,
}

impl Header {
    pub fn types(&self) -> std::ops::Range<usize> {
        let start = self.hdr_len + self.type_off;
        start..start + self.type_len
    }

    pub fn strings(&self) -> std::ops::Range<usize> {
        let start = self.hdr_len + self.str_off;
        start..start + self.str_len
    }
}

pub fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfRawError> {
    let bytes = data
        .get(at..at + 4)
        .ok_or(BtfRawError::Truncated("a field"))?;
    Ok(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
}

pub fn put_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn header(btf: &[u8]) -> Result<Header, BtfRawError> {
    if btf.get(0..2) != Some(&MAGIC.to_le_bytes()[..]) {
        return Err(BtfRawError::Magic);
    }
    let field = |at| u32_at(btf, at).map(|v| v as usize);
    let header = Header {
        hdr_len: field(4)?,
        type_off: field(8)?,
        type_len: field(12)?,
        str_off: field(16)?,
        str_len: field(20)?,
    };
    if header.types().end > btf.len() {
        return Err(BtfRawError::Truncated("the type section"));
    }
    if header.strings().end > btf.len() {
        return Err(BtfRawError::Truncated("the string section"));
    }
    Ok(header)
}

/// One type of the type section. Its id is its index in [`types`] + 1 (+ the base's count in
/// a split BTF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawType {
    /// Byte offset of its `struct btf_type` in the BTF data.
    pub offset: usize,
    pub kind: u32,
    pub name_off: u32,
    pub vlen: usize,
    pub kind_flag: bool,
    /// `size` or `type`, depending on the kind.
    pub size_or_type: u32,
}

impl RawType {
    /// Offset of the data after the common 12 bytes (members, params, entries...).
    pub fn extra(&self) -> usize {
        self.offset + TYPE_HEADER
    }
}

/// Bytes after the common header for a kind.
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        3 => 12,                   // ARRAY
        4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
        6 | 13 => 8 * vlen,        // ENUM, FUNC_PROTO
        _ => return None,
    })
}

/// Every type of the type section, in id order.
pub fn types(btf: &[u8]) -> Result<Vec<RawType>, BtfRawError> {
    let header = header(btf)?;
    let range = header.types();
    let mut at = range.start;
    let mut types = Vec::new();
    while at < range.end {
        let info = u32_at(btf, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra = extra_len(kind, vlen).ok_or(BtfRawError::UnknownKind {
            kind,
            id: types.len() + 1,
        })?;
        types.push(RawType {
            offset: at,
            kind,
            name_off: u32_at(btf, at)?,
            vlen,
            kind_flag: info >> 31 == 1,
            size_or_type: u32_at(btf, at + 8)?,
        });
        at += TYPE_HEADER + extra;
    }
    if at != range.end {
        return Err(BtfRawError::Truncated("the last type"));
    }
    Ok(types)
}

/// The NUL-terminated string at `offset` of the string section.
pub fn string<'a>(btf: &'a [u8], header: &Header, offset: u32) -> Option<&'a str> {
    let strings = btf.get(header.strings())?;
    let rest = strings.get(offset as usize..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// A parse of the kernel's BTF (`bytes`: vmlinux's, or vmlinux's with a module's) kept for the
/// rest of the process: the same few megabytes are looked up for every `__ksym` of every case,
/// and under TCG each parse costs tens of milliseconds. The bytes are kept alive with it (a
/// few distinct inputs per boot), so their address names them: a lookup compares pointers,
/// not megabytes (comparing contents was a tenth of the harness's guest time).
pub fn parsed_once(bytes: &Arc<[u8]>) -> Result<&'static Parsed<'static>, BtfRawError> {
    type Kept = Vec<(Arc<[u8]>, &'static Parsed<'static>)>;
    static KEPT: std::sync::Mutex<Kept> = std::sync::Mutex::new(Vec::new());
    let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, parsed)) = kept.iter().find(|(known, _)| Arc::ptr_eq(known, bytes)) {
        return Ok(parsed);
    }
    // The leaked clone keeps the bytes where they are for the rest of the process.
    let data: &'static [u8] = Box::leak(Box::new(bytes.clone()));
    let parsed: &'static Parsed<'static> = Box::leak(Box::new(Parsed::new(data)?));
    kept.push((bytes.clone(), parsed));
    Ok(parsed)
}

/// A parsed standalone BTF: its bytes, header and types, with lookups by id.
pub struct Parsed<'a> {
    pub data: &'a [u8],
    pub header: Header,
    pub types: Vec<RawType>,
}

impl<'a> Parsed<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, BtfRawError> {
        Ok(Self {
            data,
            header: header(data)?,
            types: types(data)?,
        })
    }

    pub fn by_id(&self, id: u32) -> Option<&RawType> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    pub fn name(&self, t: &RawType) -> &'a str {
        string(self.data, &self.header, t.name_off).unwrap_or("")
    }

    /// Follows typedefs and modifiers to the type they name.
    pub fn skip_mods(&self, mut id: u32) -> Option<(u32, &RawType)> {
        for _ in 0..64 {
            let t = self.by_id(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// The `(name_off, type, offset)` of each member of a struct or union.
    pub fn members(&self, t: &RawType) -> Vec<(u32, u32, u32)> {
        (0..t.vlen)
            .filter_map(|i| {
                let at = t.extra() + i * 12;
                Some((
                    u32_at(self.data, at).ok()?,
                    u32_at(self.data, at + 4).ok()?,
                    u32_at(self.data, at + 8).ok()?,
                ))
            })
            .collect()
    }

    /// The `(type, offset, size)` of each entry of a DATASEC.
    pub fn datasec_entries(&self, t: &RawType) -> Vec<(u32, u32, u32)> {
        self.members(t)
    }

    /// The first type of `kind` named `name`.
    pub fn find(&self, kind: u32, name: &str) -> Option<(u32, &RawType)> {
        self.types
            .iter()
            .enumerate()
            .find(|(_, t)| t.kind == kind && self.name(t) == name)
            .map(|(i, t)| (i as u32 + 1, t))
    }

    /// Size in bytes of a type (ints, enums, structs, arrays, pointers), through modifiers.
    pub fn size_of(&self, id: u32) -> Option<usize> {
        let (_, t) = self.skip_mods(id)?;
        match t.kind {
            kind::INT | kind::ENUM | kind::ENUM64 | kind::STRUCT | kind::UNION => {
                Some(t.size_or_type as usize)
            }
            kind::PTR => Some(8),
            kind::ARRAY => {
                let elem = u32_at(self.data, t.extra()).ok()?;
                let count = u32_at(self.data, t.extra() + 8).ok()? as usize;
                Some(self.size_of(elem)? * count)
            }
            _ => None,
        }
    }
}

/// A little BTF for tests: `types` already encoded, `strings` starting with NUL.
#[cfg(test)]
pub fn build(types: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut btf = vec![0x9f, 0xeb, 1, 0];
    for word in [
        24u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        btf.extend_from_slice(&word.to_le_bytes());
    }
    btf.extend_from_slice(types);
    btf.extend_from_slice(strings);
    btf
}

/// Encodes one `struct btf_type` header (+ `extra` words) for tests.
#[cfg(test)]
pub fn encode(name_off: u32, kind: u32, vlen: u32, size_or_type: u32, extra: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [name_off, kind << 24 | vlen, size_or_type]
        .iter()
        .chain(extra)
    {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_walked_with_their_trailing_data() {
        // [1] INT "int" size 4, [2] STRUCT "s" size 8 with members a:int@0 b:int@32, [3] PTR -> 2
        let strings = b"\0int\0s\0a\0b\0";
        let types = [
            encode(1, kind::INT, 0, 4, &[32]),
            encode(5, kind::STRUCT, 2, 8, &[7, 1, 0, 9, 1, 32]),
            encode(0, kind::PTR, 0, 2, &[]),
        ]
        .concat();
        let btf = build(&types, strings);
        let parsed = Parsed::new(&btf).unwrap();
        assert_eq!(parsed.types.len(), 3);
        let s = parsed.by_id(2).unwrap();
        assert_eq!((parsed.name(s), s.kind, s.vlen), ("s", kind::STRUCT, 2));
        assert_eq!(parsed.members(s), vec![(7, 1, 0), (9, 1, 32)]);
        assert_eq!(parsed.size_of(3), Some(8));
        assert_eq!(parsed.find(kind::INT, "int").map(|(id, _)| id), Some(1));
    }

    #[test]
    fn bad_data_is_refused() {
        assert_eq!(header(&[0; 24]), Err(BtfRawError::Magic));
        let mut btf = build(&encode(0, 31, 0, 0, &[]), b"\0");
        assert!(matches!(
            types(&btf),
            Err(BtfRawError::UnknownKind { kind: 31, id: 1 })
        ));
        btf.truncate(30);
        assert!(header(&btf).is_err());
    }
}
