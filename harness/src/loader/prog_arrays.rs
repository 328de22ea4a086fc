//! Statically initialised prog arrays, as libbpf does them (`init_prog_array_slots`):
//!
//! ```c
//! struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 1); __type(key, __u32);
//!          __array(values, int (void *)); } jump SEC(".maps") = { .values = { [0] = (void *)&callee } };
//! ```
//!
//! The slots are `.rel.maps` relocations: at `values`' offset inside the map's variable + 8 ×
//! slot, against the target program's symbol. aya-obj 0.3 parses `values` only as a map-in-map's
//! inner struct and fails on a pointer to a function prototype ("unexpected BTF type"), so the
//! member is hidden from it (its name offset moves one byte on, `values` → `alues`, which
//! aya-obj skips as unknown) and the map gets its 4-byte value size back after parsing. The
//! loader loads each target like a prog_array_set step and fills the slots after loading.

use std::collections::BTreeSet;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use super::btf_raw::{self, kind, BtfRawError, Parsed};

#[derive(Debug, thiserror::Error)]
pub enum ProgArrayError {
    #[error("reading the object's .maps initialisers: {0}")]
    Elf(#[from] object::Error),
    #[error("the object's BTF: {0}")]
    Btf(#[from] BtfRawError),
    #[error("own loader does not support statically initialised map `{0}` (only prog arrays of programs are)")]
    NotProgArray(String),
    #[error("the .maps initialiser at offset {0:#x} lies in no map's `values`")]
    Stray(u64),
}

/// One statically set slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub map: String,
    pub index: u32,
    pub program: String,
}

/// The `.maps` section's BTF: each map variable with its `values` member (type id of the
/// array and byte offset), if it has one.
struct MapVar {
    name: String,
    values: Option<(usize, u32)>,
    /// Byte offset in the BTF of the `values` member's name_off.
    values_name_at: Option<usize>,
    /// Whether `values` holds pointers to functions (a prog array's programs).
    of_programs: bool,
}

fn map_vars(parsed: &Parsed<'_>) -> Vec<MapVar> {
    let Some((_, sec)) = parsed.find(kind::DATASEC, ".maps") else {
        return Vec::new();
    };
    parsed
        .datasec_entries(sec)
        .iter()
        .filter_map(|(var_id, ..)| {
            let var = parsed.by_id(*var_id)?;
            let (_, st) = parsed.skip_mods(var.size_or_type)?;
            let mut map = MapVar {
                name: parsed.name(var).to_owned(),
                values: None,
                values_name_at: None,
                of_programs: false,
            };
            for (i, (name_off, ty, offset)) in parsed.members(st).into_iter().enumerate() {
                if btf_raw::string(parsed.data, &parsed.header, name_off) != Some("values") {
                    continue;
                }
                map.values = Some(((offset / 8) as usize, ty));
                map.values_name_at = Some(st.extra() + i * 12);
                map.of_programs = parsed
                    .skip_mods(ty)
                    .filter(|(_, a)| a.kind == kind::ARRAY)
                    .and_then(|(_, a)| btf_raw::u32_at(parsed.data, a.extra()).ok())
                    .and_then(|elem| parsed.skip_mods(elem))
                    .filter(|(_, p)| p.kind == kind::PTR)
                    .and_then(|(_, p)| parsed.skip_mods(p.size_or_type))
                    .is_some_and(|(_, f)| f.kind == kind::FUNC_PROTO);
            }
            Some(map)
        })
        .collect()
}

fn btf_range(file: &object::File<'_>) -> Option<std::ops::Range<usize>> {
    let (start, len) = file.section_by_name(".BTF")?.file_range()?;
    Some(start as usize..(start + len) as usize)
}

/// The slots the object's `.maps` initialisers set, in map and slot order.
pub fn static_slots(object: &[u8]) -> Result<Vec<Slot>, ProgArrayError> {
    let file = object::File::parse(object)?;
    let Some(maps) = file.section_by_name(".maps") else {
        return Ok(Vec::new());
    };
    let relocations: Vec<(u64, object::Relocation)> = maps.relocations().collect();
    if relocations.is_empty() {
        return Ok(Vec::new());
    }
    let Some(range) = btf_range(&file) else {
        return Ok(Vec::new());
    };
    let parsed = Parsed::new(&object[range])?;
    let vars = map_vars(&parsed);
    let map_symbols: Vec<(String, u64, u64)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(maps.index()) && s.size() > 0)
        .filter_map(|s| Some((s.name().ok()?.to_owned(), s.address(), s.size())))
        .collect();
    let mut slots = BTreeSet::new();
    for (offset, relocation) in relocations {
        let (name, start, _) = map_symbols
            .iter()
            .find(|(_, start, size)| (*start..start + size).contains(&offset))
            .ok_or(ProgArrayError::Stray(offset))?;
        let var = vars.iter().find(|v| v.name == *name);
        let Some((values_at, _)) = var.and_then(|v| v.values) else {
            return Err(ProgArrayError::Stray(offset));
        };
        if !var.is_some_and(|v| v.of_programs) {
            return Err(ProgArrayError::NotProgArray(name.clone()));
        }
        let RelocationTarget::Symbol(symbol) = relocation.target() else {
            return Err(ProgArrayError::Stray(offset));
        };
        let program = file.symbol_by_index(symbol)?.name()?.to_owned();
        let index = (offset - start - values_at as u64) / 8;
        slots.insert((name.clone(), index as u32, program));
    }
    Ok(slots
        .into_iter()
        .map(|(map, index, program)| Slot {
            map,
            index,
            program,
        })
        .collect())
}

/// Hides the `values` member of prog-array map definitions from aya-obj in `patched` (the
/// object as aya-obj will parse it; same layout as `original`). Returns the maps so changed,
/// whose value size the loader sets to 4 after parsing.
pub fn hide_values(original: &[u8], patched: &mut [u8]) -> Result<Vec<String>, ProgArrayError> {
    let file = object::File::parse(original)?;
    let Some(range) = btf_range(&file) else {
        return Ok(Vec::new());
    };
    let parsed = Parsed::new(&original[range.clone()])?;
    let mut hidden = Vec::new();
    for var in map_vars(&parsed) {
        if let (true, Some(at)) = (var.of_programs, var.values_name_at) {
            let name_off = btf_raw::u32_at(parsed.data, at)?;
            btf_raw::put_u32(&mut patched[range.clone()], at, name_off + 1);
            hidden.push(var.name);
        }
    }
    Ok(hidden)
}

#[cfg(test)]
mod object_tests {
    //! On a real object: guest-programs/static_prog_array.bpf.c built by clang 14 -O2 -g.
    use super::*;

    const OBJECT: &[u8] = include_bytes!("../../testdata/static_prog_array.bpf.o");

    #[test]
    fn the_initialiser_names_slot_and_program() {
        assert_eq!(
            static_slots(OBJECT).unwrap(),
            [Slot {
                map: "jump".into(),
                index: 0,
                program: "callee".into()
            }]
        );
    }

    #[test]
    fn aya_obj_parses_the_object_once_values_is_hidden() {
        let mut patched = crate::loader::sections::hide_writable_marker(OBJECT).unwrap();
        assert!(
            aya_obj::Object::parse(&patched).is_err(),
            "aya-obj parses `values` now?"
        );
        assert_eq!(hide_values(OBJECT, &mut patched).unwrap(), ["jump"]);
        let obj = aya_obj::Object::parse(&patched).unwrap();
        assert_eq!(obj.maps["jump"].map_type(), 3); // BPF_MAP_TYPE_PROG_ARRAY
        assert_eq!(obj.maps["jump"].max_entries(), 1);
    }
}
