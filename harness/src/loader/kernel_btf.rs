//! The kernel BTF that CO-RE relocations are applied against: vmlinux's, or vmlinux's with one
//! module's appended, chosen as libbpf chooses candidates.
//!
//! libbpf (`bpf_core_find_cands`) looks for a local type's candidates in vmlinux first and,
//! only when vmlinux has none, in every loaded module's BTF. A module's BTF
//! (`/sys/kernel/btf/<module>`) is *split* BTF over vmlinux's: its type ids continue after
//! vmlinux's last id, its string offsets after vmlinux's string section. aya-obj's
//! `Object::relocate_btf` takes one standalone target `Btf`, so a module's types are made
//! standalone by concatenation: vmlinux's type section then the module's, vmlinux's strings
//! then the module's, under a new header. Ids and string offsets already continue, so nothing
//! inside the sections changes.
//!
//! aya-obj applies every relocation of the object against that one target, where libbpf picks
//! candidates per local type. So the target is: vmlinux alone when vmlinux has every local type
//! the object relocates; else vmlinux + the module that has the most of the missing ones
//! (ties: the module name that sorts first). Types in neither are poisoned, as by libbpf.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::btf_raw::{self, kind, BtfRawError, Parsed};

const SYS_BTF: &str = "/sys/kernel/btf";

#[derive(Debug, thiserror::Error)]
pub enum KernelBtfError {
    #[error("reading {0}")]
    Read(String, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Raw(String, BtfRawError),
    #[error("parsing the kernel BTF with aya-obj")]
    Aya(#[from] aya_obj::btf::BtfError),
}

/// One standalone BTF: `base` followed by `split` (whose ids and string offsets continue
/// base's).
pub fn concat_split(base: &[u8], split: &[u8]) -> Result<Vec<u8>, BtfRawError> {
    let (b, s) = (btf_raw::header(base)?, btf_raw::header(split)?);
    let type_len = b.type_len + s.type_len;
    let str_len = b.str_len + s.str_len;
    let mut out = Vec::with_capacity(24 + type_len + str_len);
    out.extend_from_slice(&btf_raw::MAGIC.to_le_bytes());
    out.extend_from_slice(&[1, 0]); // version 1, flags 0
    for word in [24, 0, type_len, type_len, str_len] {
        out.extend_from_slice(&(word as u32).to_le_bytes());
    }
    out.extend_from_slice(&base[b.types()]);
    out.extend_from_slice(&split[s.types()]);
    out.extend_from_slice(&base[b.strings()]);
    out.extend_from_slice(&split[s.strings()]);
    Ok(out)
}

/// How libbpf compares a local type with a candidate: same kind (enum and enum64 alike) and
/// the same name without a `___flavour` suffix.
pub type TypeKey = (u32, String);

fn key(kind: u32, name: &str) -> TypeKey {
    let kind = if kind == kind::ENUM64 {
        kind::ENUM
    } else {
        kind
    };
    let essential = name.find("___").map_or(name, |at| &name[..at]);
    (kind, essential.to_owned())
}

/// The named types of a standalone BTF with an id above `first` (0: all of them).
pub fn named_types(btf: &[u8], first: usize) -> Result<HashSet<TypeKey>, BtfRawError> {
    let parsed = Parsed::new(btf)?;
    Ok(parsed
        .types
        .iter()
        .skip(first)
        .filter(|t| t.name_off != 0)
        .map(|t| key(t.kind, parsed.name(t)))
        .collect())
}

/// The local types the object's CO-RE relocations are about (from `.BTF.ext`'s core_relo
/// records, resolved in the object's `.BTF`).
pub fn relocated_types(btf: &[u8], btf_ext: &[u8]) -> Result<HashSet<TypeKey>, BtfRawError> {
    let parsed = Parsed::new(btf)?;
    let hdr_len = btf_raw::u32_at(btf_ext, 4)? as usize;
    // struct btf_ext_header: magic, version, flags, hdr_len, then func_info, line_info and
    // (since the header grew to 32 bytes) core_relo, each as an offset and a length.
    if hdr_len < 32 {
        return Ok(HashSet::new());
    }
    let (off, len) = (
        btf_raw::u32_at(btf_ext, 24)? as usize,
        btf_raw::u32_at(btf_ext, 28)? as usize,
    );
    let start = hdr_len + off;
    let end = start + len;
    if len == 0 {
        return Ok(HashSet::new());
    }
    let record_size = btf_raw::u32_at(btf_ext, start)? as usize;
    let mut at = start + 4;
    let mut keys = HashSet::new();
    while at + 8 <= end {
        let count = btf_raw::u32_at(btf_ext, at + 4)? as usize;
        at += 8;
        for _ in 0..count {
            let type_id = btf_raw::u32_at(btf_ext, at + 4)?;
            if let Some(t) = parsed.by_id(type_id).filter(|t| t.name_off != 0) {
                keys.insert(key(t.kind, parsed.name(t)));
            }
            at += record_size;
        }
    }
    Ok(keys)
}

/// Which kernel BTF to relocate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Vmlinux,
    Module(String),
}

/// vmlinux if it has every wanted type; else the module with the most of the missing ones
/// (ties: first by name); vmlinux if no module has any.
pub fn choose(
    wanted: &HashSet<TypeKey>,
    vmlinux: &HashSet<TypeKey>,
    modules: &[(String, HashSet<TypeKey>)],
) -> Choice {
    let missing: Vec<&TypeKey> = wanted.iter().filter(|k| !vmlinux.contains(*k)).collect();
    if missing.is_empty() {
        return Choice::Vmlinux;
    }
    let mut best: Option<(usize, &String)> = None;
    for (name, types) in modules {
        let covered = missing.iter().filter(|k| types.contains(**k)).count();
        let better = match best {
            None => covered > 0,
            Some((count, best_name)) => covered > count || (covered == count && name < best_name),
        };
        if better {
            best = Some((covered, name));
        }
    }
    best.map_or(Choice::Vmlinux, |(_, name)| Choice::Module(name.clone()))
}

fn read(path: &str) -> Result<std::sync::Arc<[u8]>, KernelBtfError> {
    crate::read_once::read(path).map_err(|e| KernelBtfError::Read(path.into(), e))
}

/// vmlinux's BTF and its named types.
struct Vmlinux {
    btf: Arc<[u8]>,
    types: HashSet<TypeKey>,
    count: usize,
}

/// Each module's BTF made standalone (vmlinux + module) and the module's own named types.
type Modules = Vec<(String, HashSet<TypeKey>, Vec<u8>)>;

/// What is worked out once per process: the kernel's BTF does not change during a boot (see
/// [`crate::read_once`]), and each step parses megabytes (under TCG, ~40 ms a parse).
#[derive(Default)]
struct Memo {
    vmlinux: Option<Arc<Vmlinux>>,
    modules: Option<Arc<Modules>>,
    /// The aya-obj target per choice (`None`: vmlinux alone).
    targets: HashMap<Option<String>, Arc<aya_obj::btf::Btf>>,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

fn memo<T>(get: impl FnOnce(&mut Memo) -> T) -> T {
    let mut guard = MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    get(guard.get_or_insert_with(Memo::default))
}

fn raw(what: &str) -> impl FnOnce(BtfRawError) -> KernelBtfError {
    let what = what.to_owned();
    move |e| KernelBtfError::Raw(what, e)
}

fn vmlinux() -> Result<Arc<Vmlinux>, KernelBtfError> {
    if let Some(known) = memo(|m| m.vmlinux.clone()) {
        return Ok(known);
    }
    let btf = read(&format!("{SYS_BTF}/vmlinux"))?;
    let types = named_types(&btf, 0).map_err(raw("vmlinux BTF"))?;
    let count = Parsed::new(&btf).map_err(raw("vmlinux BTF"))?.types.len();
    let known = Arc::new(Vmlinux { btf, types, count });
    memo(|m| m.vmlinux = Some(known.clone()));
    Ok(known)
}

fn modules(vmlinux: &Vmlinux) -> Result<Arc<Modules>, KernelBtfError> {
    if let Some(known) = memo(|m| m.modules.clone()) {
        return Ok(known);
    }
    let mut names: Vec<String> = std::fs::read_dir(SYS_BTF)
        .map_err(|e| KernelBtfError::Read(SYS_BTF.into(), e))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name != "vmlinux")
        .collect();
    names.sort();
    let mut modules = Vec::new();
    for name in names {
        let split = read(&format!("{SYS_BTF}/{name}"))?;
        let combined = concat_split(&vmlinux.btf, &split).map_err(raw(&name))?;
        let types = named_types(&combined, vmlinux.count).map_err(raw(&name))?;
        modules.push((name, types, combined));
    }
    let known = Arc::new(modules);
    memo(|m| m.modules = Some(known.clone()));
    Ok(known)
}

fn target(module: Option<&str>, btf: &[u8]) -> Result<Arc<aya_obj::btf::Btf>, KernelBtfError> {
    let key = module.map(str::to_owned);
    if let Some(known) = memo(|m| m.targets.get(&key).cloned()) {
        return Ok(known);
    }
    let parsed = Arc::new(aya_obj::btf::Btf::parse(btf, object::Endianness::Little)?);
    memo(|m| m.targets.insert(key, parsed.clone()));
    Ok(parsed)
}

/// The target BTF for the object's CO-RE relocations, and the module whose types it holds
/// beside vmlinux's, if any.
pub fn for_object(
    object_btf: &[u8],
    object_btf_ext: &[u8],
) -> Result<(Arc<aya_obj::btf::Btf>, Option<String>), KernelBtfError> {
    let wanted = relocated_types(object_btf, object_btf_ext).map_err(raw("the object's BTF"))?;
    let vmlinux = vmlinux()?;
    let modules = match wanted.iter().any(|k| !vmlinux.types.contains(k)) {
        true => modules(&vmlinux)?,
        false => Arc::new(Vec::new()),
    };
    let keys: Vec<(String, HashSet<TypeKey>)> = modules
        .iter()
        .map(|(name, types, _)| (name.clone(), types.clone()))
        .collect();
    match choose(&wanted, &vmlinux.types, &keys) {
        Choice::Vmlinux => Ok((target(None, &vmlinux.btf)?, None)),
        Choice::Module(name) => {
            let combined = modules.iter().find(|(n, ..)| *n == name).map(|m| &m.2);
            let combined = combined.map(Vec::as_slice).unwrap_or_default();
            Ok((target(Some(&name), combined)?, Some(name)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::btf_raw::{build, encode};

    /// vmlinux: [1] INT "int", [2] STRUCT "task" { int pid; }.
    fn base() -> Vec<u8> {
        let strings = b"\0int\0task\0pid\0";
        let types = [
            encode(1, kind::INT, 0, 4, &[32]),
            encode(5, kind::STRUCT, 1, 4, &[10, 1, 0]),
        ]
        .concat();
        build(&types, strings)
    }

    /// A module split over `base()`: [3] STRUCT "ctx" { _Bool early_ret; int val; } with
    /// [4] INT "_Bool"; its strings start at base's string length (14).
    fn module() -> Vec<u8> {
        let strings = b"ctx\0early_ret\0val\0_Bool\0";
        let at = |s: &str| {
            14 + strings
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .unwrap() as u32
        };
        let types = [
            encode(
                at("ctx"),
                kind::STRUCT,
                2,
                8,
                &[at("early_ret"), 4, 0, at("val"), 1, 32],
            ),
            encode(at("_Bool"), kind::INT, 0, 1, &[4 << 24 | 8]),
        ]
        .concat();
        build(&types, strings)
    }

    #[test]
    fn a_split_module_becomes_one_standalone_btf() {
        let combined = concat_split(&base(), &module()).unwrap();
        let parsed = Parsed::new(&combined).unwrap();
        assert_eq!(parsed.types.len(), 4);
        let (id, ctx) = parsed.find(kind::STRUCT, "ctx").unwrap();
        assert_eq!(id, 3);
        let names: Vec<&str> = parsed
            .members(ctx)
            .iter()
            .map(|(name, ..)| btf_raw::string(&combined, &parsed.header, *name).unwrap())
            .collect();
        assert_eq!(names, ["early_ret", "val"]);
        // The member `val` refers to vmlinux's int (id 1), early_ret to the module's _Bool (4).
        assert_eq!(parsed.members(ctx)[1].1, 1);
        assert_eq!(parsed.name(parsed.by_id(4).unwrap()), "_Bool");
        assert_eq!(parsed.name(parsed.by_id(2).unwrap()), "task");
    }

    #[test]
    fn aya_obj_parses_the_concatenation_and_finds_module_types() {
        let combined = concat_split(&base(), &module()).unwrap();
        let btf = aya_obj::btf::Btf::parse(&combined, object::Endianness::Little).unwrap();
        assert_eq!(
            btf.id_by_type_name_kind("ctx", aya_obj::btf::BtfKind::Struct)
                .unwrap(),
            3
        );
        assert_eq!(
            btf.id_by_type_name_kind("task", aya_obj::btf::BtfKind::Struct)
                .unwrap(),
            2
        );
    }

    #[test]
    fn the_module_part_lists_only_the_modules_types() {
        let combined = concat_split(&base(), &module()).unwrap();
        let module_types = named_types(&combined, 2).unwrap();
        assert!(module_types.contains(&(kind::STRUCT, "ctx".into())));
        assert!(!module_types.contains(&(kind::STRUCT, "task".into())));
    }

    #[test]
    fn the_relocated_types_come_from_btf_ext() {
        // guest-programs/module_core.bpf.c built by clang 14 -O2 -g.
        const OBJECT: &[u8] = include_bytes!("../../testdata/module_core.bpf.o");
        let btf = crate::loader::sections::section_data(OBJECT, ".BTF").unwrap();
        let ext = crate::loader::sections::section_data(OBJECT, ".BTF.ext").unwrap();
        let types = relocated_types(&btf, &ext).unwrap();
        assert_eq!(
            types,
            HashSet::from([(kind::STRUCT, "bpf_testmod_test_writable_ctx".to_owned())])
        );
    }

    #[test]
    fn vmlinux_first_then_the_module_with_most_missing_types() {
        let set = |names: &[&str]| -> HashSet<TypeKey> {
            names.iter().map(|n| key(kind::STRUCT, n)).collect()
        };
        let vmlinux = set(&["task"]);
        let modules = vec![
            ("a_mod".to_owned(), set(&["other"])),
            ("bpf_testmod".to_owned(), set(&["ctx", "other"])),
            ("nbd".to_owned(), set(&["ctx", "other"])),
        ];
        assert_eq!(choose(&set(&["task"]), &vmlinux, &modules), Choice::Vmlinux);
        assert_eq!(
            choose(&set(&["task___flavour", "ctx"]), &vmlinux, &modules),
            Choice::Module("bpf_testmod".into())
        );
        assert_eq!(
            choose(&set(&["other"]), &vmlinux, &modules),
            Choice::Module("a_mod".into())
        );
        assert_eq!(
            choose(&set(&["nowhere"]), &vmlinux, &modules),
            Choice::Vmlinux
        );
        assert_eq!(key(kind::ENUM64, "e___v2"), (kind::ENUM, "e".to_owned()));
    }
}
