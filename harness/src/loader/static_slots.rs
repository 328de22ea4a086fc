//! Statically initialised slots of prog arrays and of maps of maps, as libbpf does them
//! (`bpf_object__collect_map_relos`, then `init_map_in_map_slots` and `init_prog_array_slots`):
//!
//! ```c
//! struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 1); __type(key, __u32);
//!          __array(values, int (void *)); } jump SEC(".maps") = { .values = { [0] = (void *)&callee } };
//! struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); ... } inner_map SEC(".maps");
//! struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1); __type(key, int);
//!          __array(values, struct inner); } outer SEC(".maps") = { .values = { [0] = &inner_map } };
//! ```
//!
//! The slots are `.rel.maps` relocations: at `values`' offset inside the map's variable + 8 ×
//! slot, against the target's symbol — a program for a prog array (`values` an array of
//! pointers to a function prototype), a map of `.maps` for a map of maps (pointers to a
//! struct, the inner map's definition, which is also the template libbpf creates the outer
//! map with). aya-obj 0.3 parses `values` only as a map-in-map's inner struct and fails on a
//! pointer to a function prototype ("unexpected BTF type"), so a prog array's member is hidden
//! from it (its name offset moves one byte on, `values` → `alues`, which aya-obj skips as
//! unknown) and the map gets its 4-byte value size back after parsing. A map of maps keeps its
//! `values`: aya-obj reads the inner definition from it. The loader sets a map of maps' slots
//! once every map exists, before loading (as libbpf), and loads each prog array target like a
//! prog_array_set step, setting its slot after the case's program loaded.

use std::collections::BTreeSet;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use super::btf_raw::{self, kind, BtfRawError, Parsed};

#[derive(Debug, thiserror::Error)]
pub enum StaticSlotError {
    #[error("reading the object's .maps initialisers: {0}")]
    Elf(#[from] object::Error),
    #[error("the object's BTF: {0}")]
    Btf(#[from] BtfRawError),
    #[error("own loader does not support statically initialised map `{0}` (only prog arrays of programs and maps of maps are)")]
    Unsupported(String),
    #[error("the .maps initialiser at offset {0:#x} lies in no map's `values`")]
    Stray(u64),
    #[error("the .maps initialiser of `{map}`[{index}] names `{target}`, which is not {expected}")]
    WrongTarget {
        map: String,
        index: u32,
        target: String,
        expected: &'static str,
    },
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A program of the object (a prog array's slot).
    Program,
    /// A map of the object's `.maps` (a map of maps' slot).
    Map,
}

/// One statically set slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub map: String,
    pub index: u32,
    /// The program's or map's name.
    pub target: String,
    pub kind: Target,
}

/// The `.maps` section's BTF: each map variable with its `values` member (type id of the
/// array and byte offset), if it has one.
struct MapVar {
    name: String,
    values: Option<(usize, u32)>,
    /// Byte offset in the BTF of the `values` member's name_off.
    values_name_at: Option<usize>,
    /// What `values` holds: pointers to functions (a prog array's programs) or to structs
    /// (a map of maps' inner maps).
    holds: Option<Target>,
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
                holds: None,
            };
            for (i, (name_off, ty, offset)) in parsed.members(st).into_iter().enumerate() {
                if btf_raw::string(parsed.data, &parsed.header, name_off) != Some("values") {
                    continue;
                }
                map.values = Some(((offset / 8) as usize, ty));
                map.values_name_at = Some(st.extra() + i * 12);
                let pointee = parsed
                    .skip_mods(ty)
                    .filter(|(_, a)| a.kind == kind::ARRAY)
                    .and_then(|(_, a)| btf_raw::u32_at(parsed.data, a.extra()).ok())
                    .and_then(|elem| parsed.skip_mods(elem))
                    .filter(|(_, p)| p.kind == kind::PTR)
                    .and_then(|(_, p)| parsed.skip_mods(p.size_or_type));
                map.holds = match pointee.map(|(_, t)| t.kind) {
                    Some(kind::FUNC_PROTO) => Some(Target::Program),
                    Some(kind::STRUCT) => Some(Target::Map),
                    _ => None,
                };
            }
            Some(map)
        })
        .collect()
}

fn btf_range(file: &object::File<'_>) -> Option<std::ops::Range<usize>> {
    let (start, len) = file.section_by_name(".BTF")?.file_range()?;
    Some(start as usize..(start + len) as usize)
}

/// The slots the object's `.maps` initialisers set, in map and slot order. As libbpf, a prog
/// array's slot must name a function and a map of maps' slot a map of `.maps`.
pub fn static_slots(object: &[u8]) -> Result<Vec<Slot>, StaticSlotError> {
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
            .ok_or(StaticSlotError::Stray(offset))?;
        let var = vars.iter().find(|v| v.name == *name);
        let Some((values_at, _)) = var.and_then(|v| v.values) else {
            return Err(StaticSlotError::Stray(offset));
        };
        let Some(kind) = var.and_then(|v| v.holds) else {
            return Err(StaticSlotError::Unsupported(name.clone()));
        };
        let RelocationTarget::Symbol(symbol) = relocation.target() else {
            return Err(StaticSlotError::Stray(offset));
        };
        let symbol = file.symbol_by_index(symbol)?;
        let target = symbol.name()?.to_owned();
        let index = ((offset - start - values_at as u64) / 8) as u32;
        let (fits, expected) = match kind {
            Target::Program => (
                symbol.kind() == object::SymbolKind::Text,
                "a program of the object",
            ),
            Target::Map => (
                symbol.section_index() == Some(maps.index()),
                "a map of the object's .maps",
            ),
        };
        if !fits {
            return Err(StaticSlotError::WrongTarget {
                map: name.clone(),
                index,
                target,
                expected,
            });
        }
        slots.insert((name.clone(), index, kind, target));
    }
    Ok(slots
        .into_iter()
        .map(|(map, index, kind, target)| Slot {
            map,
            index,
            target,
            kind,
        })
        .collect())
}

/// Hides the `values` member of prog-array map definitions from aya-obj in `patched` (the
/// object as aya-obj will parse it; same layout as `original`). Returns the maps so changed,
/// whose value size the loader sets to 4 after parsing. A map of maps keeps its `values`.
pub fn hide_values(original: &[u8], patched: &mut [u8]) -> Result<Vec<String>, StaticSlotError> {
    let file = object::File::parse(original)?;
    let Some(range) = btf_range(&file) else {
        return Ok(Vec::new());
    };
    let parsed = Parsed::new(&original[range.clone()])?;
    let mut hidden = Vec::new();
    for var in map_vars(&parsed) {
        if let (Some(Target::Program), Some(at)) = (var.holds, var.values_name_at) {
            let name_off = btf_raw::u32_at(parsed.data, at)?;
            btf_raw::put_u32(&mut patched[range.clone()], at, name_off + 1);
            hidden.push(var.name);
        }
    }
    Ok(hidden)
}

#[cfg(test)]
mod object_tests {
    //! On real objects built by clang 14 -O2 -g: guest-programs/static_prog_array.bpf.c and
    //! testdata/static_slots.bpf.c (a map of maps and a prog array of a `syscall` program).
    use super::*;

    const OBJECT: &[u8] = include_bytes!("../../testdata/static_prog_array.bpf.o");
    const BOTH: &[u8] = include_bytes!("../../testdata/static_slots.bpf.o");

    #[test]
    fn the_initialiser_names_slot_and_program() {
        assert_eq!(
            static_slots(OBJECT).unwrap(),
            [Slot {
                map: "jump".into(),
                index: 0,
                target: "callee".into(),
                kind: Target::Program,
            }]
        );
    }

    #[test]
    fn a_map_of_maps_slot_names_its_map_and_a_prog_array_slot_its_program() {
        assert_eq!(
            static_slots(BOTH).unwrap(),
            [
                Slot {
                    map: "outer".into(),
                    index: 1,
                    target: "inner_map".into(),
                    kind: Target::Map,
                },
                Slot {
                    map: "sys_jump".into(),
                    index: 0,
                    target: "sys_target".into(),
                    kind: Target::Program,
                },
            ]
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

    /// A map of maps keeps `values`: aya-obj reads the inner definition (the template) from
    /// it, and gives the outer map 4-byte values.
    #[test]
    fn a_map_of_maps_keeps_values_and_aya_obj_reads_its_inner_definition() {
        let (mut patched, hidden) = crate::loader::sections::prepare_for_aya(BOTH).unwrap();
        assert_eq!(hidden, ["?tc"]);
        assert_eq!(hide_values(BOTH, &mut patched).unwrap(), ["sys_jump"]);
        let obj = aya_obj::Object::parse(&patched).unwrap();
        let outer = &obj.maps["outer"];
        assert_eq!(outer.map_type(), 12); // BPF_MAP_TYPE_ARRAY_OF_MAPS
        assert_eq!(outer.value_size(), 4);
        let inner = outer.inner().expect("the inner definition");
        assert_eq!(
            (inner.map_type(), inner.key_size(), inner.value_size()),
            (2, 4, 4)
        );
        assert_eq!(inner.max_entries(), 1);
    }
}
