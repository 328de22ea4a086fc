//! The writable loader: the one place that turns a BPF object into a loaded program of type
//! RAW_TRACEPOINT_WRITABLE (24) or RAW_TRACEPOINT (17).
//!
//! aya cannot do this (it rejects `raw_tp.w` objects, aya issue #218, and never returns the log
//! of a successful load), so the path is aya's own, step by step, with the steps aya keeps
//! private done here: [`sections`] hides the writable marker and program sections aya-obj does
//! not parse; aya-obj parses and patches globals; the object's BTF is sanitised for the running
//! kernel (aya-obj, with aya's feature probes) and loaded (BPF_BTF_LOAD, here); aya creates the
//! maps with that BTF (so BTF-defined `.maps` work); aya-obj applies CO-RE relocations against
//! the kernel's BTF, relocates map references and calls; and [`bpf_sys::prog_load`] loads with
//! our own log buffer and the type chosen from the original section name.

pub mod btf_raw;
pub mod externs;
pub mod insns;
pub mod kernel_btf;
pub mod ksyms;
pub mod sections;
pub mod static_slots;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use aya::maps::MapData;
use aya_obj::EbpfSectionKind;

use crate::bpf_sys::{self, ProgLoadRequest};
pub use sections::GlobalSymbol;

/// BPF_PROG_LOAD's `BPF_F_SLEEPABLE`.
const BPF_F_SLEEPABLE: u32 = 1 << 4;

/// A program the kernel accepted, with the maps that back its globals. It keeps the object
/// as relocated, so the object's other programs (tail-call targets) load against the very
/// same maps.
pub struct LoadedProgram {
    pub fd: OwnedFd,
    /// Default attach target from the section name (`raw_tp.w/<tracepoint>`).
    pub section_tracepoint: Option<String>,
    object: Vec<u8>,
    /// Data-section maps by section name, with their value size (the section's size).
    maps: HashMap<String, (MapData, usize)>,
    /// The object after CO-RE, map and call relocation, and what loading its programs needs.
    relocated: aya_obj::Object,
    program_sections: Vec<sections::ProgramSection>,
    btf: Option<OwnedFd>,
    prog_flags: u32,
    /// Programs a static prog array initialiser put into slots (kept for the case's life).
    static_targets: Vec<OwnedFd>,
    /// What `__ksym` externs resolved against: the module BTF fds the instructions name
    /// (kept open: siblings load the same instructions) and the load's `fd_array`.
    kernel_symbols: KernelSymbolFds,
}

/// The module BTF fds a program's ksym relocations name, and its `fd_array`.
#[derive(Default)]
struct KernelSymbolFds {
    _kernel: Option<ksyms::RunningKernel>,
    fd_array: Vec<i32>,
}

/// What to load from an object, and how.
pub struct LoadRequest<'a> {
    pub object: &'a [u8],
    /// Function name of the program; `None` picks the object's only raw tracepoint program.
    pub program: Option<&'a str>,
    /// Globals patched into the data sections before the maps are created.
    pub globals: &'a BTreeMap<String, u64>,
    /// BPF_PROG_LOAD's `prog_flags`.
    pub prog_flags: u32,
    /// BPF_PROG_LOAD's `log_level` (the case's, [`bpf_sys::DEFAULT_LOG_LEVEL`] by default).
    pub log_level: u32,
}

/// What one load attempt produced: always the verifier's answer, a program only on success.
pub struct LoadAttempt {
    /// The program's function name (chosen by the request or as the only candidate).
    pub program: String,
    pub prog_type: protocol::ProgType,
    pub insn_count: usize,
    pub result: std::io::Result<()>,
    pub verifier_log: String,
    /// What the loader did differently from libbpf, if anything (a skipped section, BTF the
    /// kernel refused).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error(transparent)]
    Section(#[from] sections::SectionError),
    #[error("aya-obj could not parse the object")]
    Parse(#[from] aya_obj::ParseError),
    #[error("sanitising the object's BTF for this kernel")]
    Btf(#[from] aya_obj::btf::BtfError),
    #[error("the kernel refused the object's BTF, which its CO-RE relocations need ({0}); BTF log:\n{1}")]
    BtfLoad(std::io::Error, String),
    #[error("CO-RE relocation against the kernel's BTF")]
    CoRe(#[from] aya_obj::btf::BtfRelocationError),
    #[error("no raw_tp/raw_tp.w program named `{0}` in the object (found: {1})")]
    NoSuchProgram(String, String),
    #[error("own loader does not support loading `{target}` into static prog array `{map}`[{index}]: its section `{section}` is a program type it does not load (raw_tp, raw_tp.w, freplace, syscall)")]
    UnsupportedSlotTarget {
        map: String,
        index: u32,
        target: String,
        section: String,
    },
    #[error("extension section {0}: no such global function in the object's loaded BTF")]
    NoReplacedFunction(String),
    #[error("no map named `{0}` in the object (found: {1})")]
    NoSuchMap(String, String),
    #[error("global `{0}` is not defined in the object")]
    NoSuchGlobal(String),
    #[error("global `{name}` is {size} bytes; only 1, 2, 4 and 8 byte integers are supported")]
    GlobalSize { name: String, size: usize },
    #[error("global `{name}` lives in {section}, which has no map")]
    GlobalWithoutMap { name: String, section: String },
    #[error("creating map {0}")]
    Map(String, #[source] aya::maps::MapError),
    #[error("initialising map {0}")]
    MapInit(String, #[source] std::io::Error),
    #[error("relocating")]
    Relocation(#[from] aya_obj::relocation::EbpfRelocationError),
    #[error("reading global `{0}`")]
    GlobalIo(String, #[source] std::io::Error),
    #[error(transparent)]
    Extern(#[from] externs::ExternError),
    #[error(transparent)]
    StaticSlot(#[from] static_slots::StaticSlotError),
    #[error(transparent)]
    Ksym(#[from] ksyms::KsymError),
    #[error("the kernel's BTF for CO-RE")]
    KernelBtf(#[from] kernel_btf::KernelBtfError),
}

/// Loads function `program` from `object`, after patching `globals` into its data sections.
/// Returns the attempt (log included) and the program if the kernel accepted it.
pub fn load(
    request: &LoadRequest<'_>,
) -> Result<(LoadAttempt, Option<LoadedProgram>), LoaderError> {
    let LoadRequest {
        object,
        program,
        globals,
        prog_flags,
        log_level,
    } = *request;
    let program_sections = sections::program_sections(object)?;
    let (mut prepared, hidden) = sections::prepare_for_aya(object)?;
    let kconfig = externs::prepare(object, &mut prepared, &externs::RunningKernel)?;
    let kconfig_count = kconfig.as_ref().map_or(0, |k| k.offsets.len());
    let ksyms = ksyms::Ksyms::prepare(object, &mut prepared, kconfig_count)?;
    let prog_array_maps = static_slots::hide_values(object, &mut prepared)?;
    let static_slots = static_slots::static_slots(object)?;
    let mut obj = aya_obj::Object::parse(&prepared)?;
    if let Some(ksyms) = &ksyms {
        ksyms.add_dummy_var(&mut obj)?;
    }
    for name in &prog_array_maps {
        if let Some(map) = obj.maps.get_mut(name) {
            map.set_value_size(4);
        }
    }
    if let Some(kconfig) = &kconfig {
        obj.maps
            .insert(externs::KCONFIG_MAP.into(), externs::map(kconfig));
    }
    let program = choose_program(&obj, &program_sections, program)?;
    let section = find_program_section(&obj, &program_sections, &program)?.clone();
    let mut notes: Vec<String> = hidden
        .iter()
        .map(|name| format!("section {name} skipped: a program type aya-obj does not parse"))
        .collect();

    let encoded = encode_globals(object, globals)?;
    let overrides = encoded
        .iter()
        .map(|(name, bytes)| (name.as_str(), (bytes.as_slice(), true)))
        .collect();
    obj.patch_map_data(overrides)?;

    let btf = load_object_btf(&mut obj, &mut notes)?;
    if obj.has_btf_relocations() {
        let (target, module) = kernel_btf::for_object(
            &sections::section_data(object, ".BTF")?,
            &sections::section_data(object, ".BTF.ext")?,
        )?;
        if let Some(module) = module {
            notes.push(format!(
                "CO-RE relocations applied against vmlinux + module {module} BTF"
            ));
        }
        obj.relocate_btf(&target)?;
    }
    let maps = create_maps(&obj, btf.as_ref().map(|fd| fd.as_fd()), &mut notes)?;
    fill_map_slots(&maps, &static_slots, &mut notes)?;
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(index, _)| *index).collect();
    let map_objects: Vec<(&str, i32, &aya_obj::Map)> = maps
        .iter()
        .map(|(name, (map_obj, data))| (name.as_str(), data.fd().as_fd().as_raw_fd(), map_obj))
        .collect();
    obj.relocate_maps(map_objects.into_iter(), &text_sections)?;
    if let (Some(kconfig), Some((_, map))) = (&kconfig, maps.get(externs::KCONFIG_MAP)) {
        externs::relocate(&mut obj, kconfig, map.fd().as_fd().as_raw_fd());
    }
    let kernel_symbols = match &ksyms {
        Some(ksyms) => relocate_ksyms(&mut obj, ksyms)?,
        None => KernelSymbolFds::default(),
    };
    obj.relocate_calls(&text_sections)?;

    let (attempt, insn_count) = load_function(
        &obj,
        btf.as_ref().map(|fd| fd.as_fd()),
        (section.prog_type, None),
        &program,
        (prog_flags, log_level),
        &kernel_symbols.fd_array,
        &mut notes,
    );
    let (result, loaded) = match attempt.result {
        Ok(fd) => (
            Ok(()),
            Some(LoadedProgram {
                fd,
                section_tracepoint: section.target,
                object: object.to_vec(),
                maps: maps
                    .into_iter()
                    .map(|(name, (map_obj, data))| (name, (data, map_obj.value_size() as usize)))
                    .collect(),
                relocated: obj,
                program_sections,
                btf,
                prog_flags,
                static_targets: Vec::new(),
                kernel_symbols,
            }),
        ),
        Err(error) => (Err(error), None),
    };
    let (result, loaded) = match loaded {
        Some(mut loaded) => match loaded.fill_static_slots(&program, &static_slots, &mut notes)? {
            Ok(()) => (result, Some(loaded)),
            Err(error) => (Err(error), None),
        },
        None => (result, None),
    };
    let attempt = LoadAttempt {
        program,
        prog_type: section.prog_type,
        insn_count,
        result,
        verifier_log: attempt.verifier_log,
        notes,
    };
    Ok((attempt, loaded))
}

/// Resolves the object's `__ksym` externs against the running kernel and writes them into
/// its functions; the module BTF fds they name stay open with the program.
fn relocate_ksyms(
    obj: &mut aya_obj::Object,
    ksyms: &ksyms::Ksyms,
) -> Result<KernelSymbolFds, LoaderError> {
    let mut kernel = ksyms::RunningKernel::default();
    let resolved = ksyms.resolve(&mut kernel)?;
    ksyms.relocate(obj, &resolved, &kernel);
    Ok(KernelSymbolFds {
        fd_array: ksyms::Ksyms::fd_array(&resolved, &kernel),
        _kernel: Some(kernel),
    })
}

/// BPF_PROG_LOAD of one relocated function, with its func and line info when the object's
/// BTF was loaded; like libbpf, again without them if the kernel refuses those records.
fn load_function(
    obj: &aya_obj::Object,
    btf: Option<BorrowedFd<'_>>,
    (prog_type, replaces): (protocol::ProgType, Option<(BorrowedFd<'_>, u32)>),
    program: &str,
    (prog_flags, log_level): (u32, u32),
    fd_array: &[i32],
    notes: &mut Vec<String>,
) -> (bpf_sys::ProgLoad, usize) {
    let function = &obj.functions[&obj.programs[program].function_key()];
    let license = CString::new(obj.license.as_bytes()).unwrap_or_else(|_| c"GPL".into());
    let func_info = function.func_info.func_info_bytes();
    let line_info = function.line_info.line_info_bytes();
    let prog_btf = btf.map(|fd| bpf_sys::ProgBtf {
        fd,
        func_info: bpf_sys::InfoRecords {
            bytes: &func_info,
            // `len()`, not `num_info`: aya-obj filters a section's records per program and
            // leaves `num_info` at the section's count (two programs in one section would
            // make the kernel read past the records).
            count: function.func_info.len() as u32,
            record_size: function.func_info_rec_size as u32,
        },
        line_info: bpf_sys::InfoRecords {
            bytes: &line_info,
            count: function.line_info.len() as u32,
            record_size: function.line_info_rec_size as u32,
        },
    });
    let mut request = ProgLoadRequest {
        prog_type,
        name: program,
        insns: &function.instructions,
        license: &license,
        flags: prog_flags,
        log_level,
        btf: prog_btf,
        replaces,
        fd_array,
    };
    let mut attempt = bpf_sys::prog_load(&request);
    if request.btf.is_some() && refused_program_btf(&attempt) {
        notes.push(format!(
            "the kernel refused the program's func/line info ({}): loaded without it",
            protocol::verifier_verdict(&attempt.verifier_log)
        ));
        request.btf = None;
        attempt = bpf_sys::prog_load(&request);
    }
    (attempt, function.instructions.len())
}

/// Whether a load failed on the program's BTF records rather than on its code (libbpf then
/// loads again without them, and so does this loader).
fn refused_program_btf(attempt: &bpf_sys::ProgLoad) -> bool {
    let log = attempt.verifier_log.to_ascii_lowercase().replace('_', " ");
    attempt.result.is_err() && (log.contains("func info") || log.contains("line info"))
}

impl LoadedProgram {
    /// Reads a global as an unsigned little-endian integer of its own size.
    pub fn read_global(&self, name: &str) -> Result<u64, LoaderError> {
        let (symbol, map, value_size) = self.global(name)?;
        let mut value = vec![0u8; value_size];
        bpf_sys::array_lookup(map, &mut value)
            .map_err(|e| LoaderError::GlobalIo(name.into(), e))?;
        let mut bytes = [0u8; 8];
        bytes[..symbol.size].copy_from_slice(&value[symbol.offset..symbol.offset + symbol.size]);
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes a global in the live map (read-modify-write of the section's single value).
    pub fn write_global(&self, name: &str, new: u64) -> Result<(), LoaderError> {
        let (symbol, map, value_size) = self.global(name)?;
        let mut value = vec![0u8; value_size];
        bpf_sys::array_lookup(map, &mut value)
            .map_err(|e| LoaderError::GlobalIo(name.into(), e))?;
        let encoded = encode_integer(name, new, symbol.size)?;
        value[symbol.offset..symbol.offset + symbol.size].copy_from_slice(&encoded);
        bpf_sys::array_update(map, &value).map_err(|e| LoaderError::GlobalIo(name.into(), e))
    }

    /// Loads another raw tracepoint program of the same object against the same maps (a
    /// tail-call target): the verifier's answer, and the program if it was accepted.
    pub fn load_sibling(&self, name: &str) -> Result<(LoadAttempt, Option<OwnedFd>), LoaderError> {
        let section = find_program_section(&self.relocated, &self.program_sections, name)?;
        let replaces = match section.prog_type {
            protocol::ProgType::Extension => {
                Some((self.fd.as_fd(), self.replaced_btf_id(section)?))
            }
            _ => None,
        };
        let mut notes = Vec::new();
        // libbpf's section definition adds its flags at load (`syscall`: SEC_SLEEPABLE).
        let flags = match section.prog_type {
            protocol::ProgType::Syscall => self.prog_flags | BPF_F_SLEEPABLE,
            _ => self.prog_flags,
        };
        let (attempt, insn_count) = load_function(
            &self.relocated,
            self.btf.as_ref().map(|fd| fd.as_fd()),
            (section.prog_type, replaces),
            name,
            (flags, bpf_sys::DEFAULT_LOG_LEVEL),
            &self.kernel_symbols.fd_array,
            &mut notes,
        );
        let (result, fd) = match attempt.result {
            Ok(fd) => (Ok(()), Some(fd)),
            Err(error) => (Err(error), None),
        };
        let loaded = LoadAttempt {
            program: name.to_owned(),
            prog_type: section.prog_type,
            insn_count,
            result,
            verifier_log: attempt.verifier_log,
            notes,
        };
        Ok((loaded, fd))
    }

    /// Loads the targets of the object's static prog array initialisers and sets their slots,
    /// as libbpf does after loading (init_prog_array_slots). A target the kernel refuses (or a
    /// slot it will not take) fails the load with that errno, as it fails libbpf's.
    fn fill_static_slots(
        &mut self,
        program: &str,
        slots: &[static_slots::Slot],
        notes: &mut Vec<String>,
    ) -> Result<std::io::Result<()>, LoaderError> {
        for slot in slots
            .iter()
            .filter(|s| s.kind == static_slots::Target::Program)
        {
            let map = self
                .map(&slot.map)?
                .try_clone_to_owned()
                .map_err(|e| LoaderError::MapInit(slot.map.clone(), e))?;
            let target = if slot.target == program {
                self.fd
                    .try_clone()
                    .map_err(|e| LoaderError::MapInit(slot.map.clone(), e))?
            } else {
                if find_program_section(&self.relocated, &self.program_sections, &slot.target)
                    .is_err()
                {
                    return Err(LoaderError::UnsupportedSlotTarget {
                        map: slot.map.clone(),
                        index: slot.index,
                        target: slot.target.clone(),
                        section: sections::symbol_section(&self.object, &slot.target)?
                            .unwrap_or_else(|| "(none)".into()),
                    });
                }
                let (attempt, fd) = self.load_sibling(&slot.target)?;
                match (attempt.result, fd) {
                    (Ok(()), Some(fd)) => fd,
                    (result, _) => {
                        let error = result
                            .err()
                            .unwrap_or_else(|| std::io::Error::other("no fd"));
                        notes.push(format!(
                            "static prog array {}[{}]: the kernel refused {} ({error}): {}",
                            slot.map,
                            slot.index,
                            slot.target,
                            protocol::verifier_verdict(&attempt.verifier_log)
                        ));
                        return Ok(Err(error));
                    }
                }
            };
            if let Err(error) = bpf_sys::prog_array_update(map.as_fd(), slot.index, target.as_fd())
            {
                notes.push(format!(
                    "static prog array {}[{}] = {}: {error}",
                    slot.map, slot.index, slot.target
                ));
                return Ok(Err(error));
            }
            notes.push(format!(
                "static prog array {}[{}] = {} (loaded and set after the load, as libbpf does)",
                slot.map, slot.index, slot.target
            ));
            self.static_targets.push(target);
        }
        Ok(Ok(()))
    }

    /// The BTF id of the function an extension's section names (`freplace/<function>`), in
    /// the object's BTF as this program was loaded with it.
    fn replaced_btf_id(&self, section: &sections::ProgramSection) -> Result<u32, LoaderError> {
        let function = section.target.as_deref().unwrap_or_default();
        let missing = || LoaderError::NoReplacedFunction(section.name.clone());
        let btf = self.relocated.btf.as_ref().filter(|_| self.btf.is_some());
        let btf = btf.ok_or_else(missing)?;
        btf.id_by_type_name_kind(function, aya_obj::btf::BtfKind::Func)
            .map_err(|_| missing())
    }

    /// The object's map named `name` (a BTF-defined `.maps` entry, e.g. a prog array).
    pub fn map(&self, name: &str) -> Result<BorrowedFd<'_>, LoaderError> {
        match self.maps.get(name) {
            Some((map, _)) => Ok(map.fd().as_fd()),
            None => {
                let mut known: Vec<&str> = self.maps.keys().map(String::as_str).collect();
                known.sort_unstable();
                Err(LoaderError::NoSuchMap(name.into(), known.join(", ")))
            }
        }
    }

    /// The global's symbol, its section's map and that map's value size.
    fn global(&self, name: &str) -> Result<(GlobalSymbol, BorrowedFd<'_>, usize), LoaderError> {
        let symbol = sections::global_symbol(&self.object, name)?
            .ok_or_else(|| LoaderError::NoSuchGlobal(name.into()))?;
        let (map, value_size) =
            self.maps
                .get(&symbol.section)
                .ok_or_else(|| LoaderError::GlobalWithoutMap {
                    name: name.into(),
                    section: symbol.section.clone(),
                })?;
        Ok((symbol, map.fd().as_fd(), *value_size))
    }
}

/// The named program, or the only raw tracepoint program of the object.
fn choose_program(
    obj: &aya_obj::Object,
    program_sections: &[sections::ProgramSection],
    program: Option<&str>,
) -> Result<String, LoaderError> {
    if let Some(name) = program {
        return Ok(name.to_owned());
    }
    let mut candidates: Vec<&String> = obj
        .programs
        .iter()
        .filter(|(_, p)| {
            program_sections
                .iter()
                .any(|s| s.index == p.section_index && is_raw_tracepoint(s.prog_type))
        })
        .map(|(name, _)| name)
        .collect();
    candidates.sort_unstable();
    match candidates.as_slice() {
        [only] => Ok((*only).clone()),
        _ => Err(LoaderError::NoSuchProgram(
            "(unnamed: the object must have exactly one raw_tp program, or the case names one)"
                .into(),
            candidates
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

fn is_raw_tracepoint(prog_type: protocol::ProgType) -> bool {
    matches!(
        prog_type,
        protocol::ProgType::RawTracepoint | protocol::ProgType::RawTracepointWritable
    )
}

fn find_program_section<'a>(
    obj: &aya_obj::Object,
    program_sections: &'a [sections::ProgramSection],
    program: &str,
) -> Result<&'a sections::ProgramSection, LoaderError> {
    let found = obj.programs.get(program).and_then(|p| {
        program_sections
            .iter()
            .find(|section| section.index == p.section_index)
    });
    found.ok_or_else(|| {
        let mut names: Vec<&str> = obj.programs.keys().map(String::as_str).collect();
        names.sort_unstable();
        LoaderError::NoSuchProgram(program.into(), names.join(", "))
    })
}

/// The object's BTF, sanitised for this kernel and loaded, as aya's own loader does it. Like
/// aya and libbpf, a kernel that refuses it gets the object without it (noted), unless CO-RE
/// relocations need it.
fn load_object_btf(
    obj: &mut aya_obj::Object,
    notes: &mut Vec<String>,
) -> Result<Option<OwnedFd>, LoaderError> {
    let Some(features) = aya::features().btf() else {
        notes.push("this kernel has no BTF support: maps and programs loaded without BTF".into());
        return Ok(None);
    };
    let needs_btf = obj.has_btf_relocations();
    let Some(btf) = obj.fixup_and_sanitize_btf(features)? else {
        return Ok(None);
    };
    match bpf_sys::btf_load(&btf.to_bytes()) {
        Ok(fd) => Ok(Some(fd)),
        Err((error, log)) if needs_btf => Err(LoaderError::BtfLoad(error, log)),
        Err((error, log)) => {
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            notes.push(format!(
                "the kernel refused the object's BTF ({error}: {last}): loaded without it"
            ));
            Ok(None)
        }
    }
}

/// Creates every map of the object with aya (with the object's BTF, so BTF-defined maps get
/// their key and value types), then writes the initial section data and freezes `.rodata`
/// (aya keeps that step, `finalize`, to itself).
fn create_maps(
    obj: &aya_obj::Object,
    btf: Option<BorrowedFd<'_>>,
    notes: &mut Vec<String>,
) -> Result<HashMap<String, (aya_obj::Map, MapData)>, LoaderError> {
    let mut maps = HashMap::new();
    for (name, map_obj) in &obj.maps {
        if let Some(inner) = map_obj.inner().filter(|_| is_map_in_map(map_obj)) {
            let data = create_map_in_map(name, map_obj, inner, btf, notes)?;
            maps.insert(name.clone(), (map_obj.clone(), data));
            continue;
        }
        let data_section = matches!(
            map_obj.section_kind(),
            EbpfSectionKind::Data | EbpfSectionKind::Rodata | EbpfSectionKind::Bss
        );
        let datasec = (btf.zip(obj.btf.as_ref()))
            .filter(|_| data_section)
            .and_then(|(fd, types)| {
                let id = types.id_by_type_name_kind(name, aya_obj::btf::BtfKind::DataSec);
                Some((fd, id.ok()?))
            });
        // Like libbpf, a data section's map gets its DATASEC as value type; a kernel that
        // refuses it gets the map without BTF (as aya creates it), noted.
        let with_datasec = datasec.map(|datasec| {
            let shape = (
                map_obj.map_type(),
                map_obj.key_size(),
                map_obj.value_size(),
                map_obj.max_entries(),
                map_obj.map_flags(),
            );
            bpf_sys::data_map_create(name, shape, datasec)
        });
        let created = match with_datasec {
            Some(Ok(fd)) => {
                Some(MapData::from_fd(fd).map_err(|e| LoaderError::Map(name.clone(), e))?)
            }
            Some(Err(error)) => {
                notes.push(format!(
                    "map {name} refused with BTF ({error}): created without it"
                ));
                None
            }
            None => None,
        };
        // Like libbpf, a map the kernel refuses with BTF (a prog array's key type, on older
        // kernels any BTF) is created again without it.
        let data = match created
            .map(Ok)
            .unwrap_or_else(|| MapData::create(map_obj.clone(), name, btf))
        {
            Ok(data) => data,
            Err(error) if btf.is_some() => {
                // aya passes a BTF map's type ids even without a BTF fd: clear them.
                let mut bare = map_obj.clone();
                if let aya_obj::Map::Btf(map) = &mut bare {
                    map.def.btf_key_type_id = 0;
                    map.def.btf_value_type_id = 0;
                }
                let data = MapData::create(bare, name, None)
                    .map_err(|_| LoaderError::Map(name.clone(), error))?;
                notes.push(format!("map {name} refused with BTF: created without it"));
                data
            }
            Err(error) => return Err(LoaderError::Map(name.clone(), error)),
        };
        let fd = data.fd().as_fd();
        if data_section && !map_obj.data().is_empty() {
            bpf_sys::array_update(fd, map_obj.data())
                .map_err(|e| LoaderError::MapInit(name.clone(), e))?;
        }
        if map_obj.section_kind() == EbpfSectionKind::Rodata {
            bpf_sys::map_freeze(fd).map_err(|e| LoaderError::MapInit(name.clone(), e))?;
        }
        maps.insert(name.clone(), (map_obj.clone(), data));
    }
    Ok(maps)
}

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (12) and `BPF_MAP_TYPE_HASH_OF_MAPS` (13).
fn is_map_in_map(map: &aya_obj::Map) -> bool {
    matches!(map.map_type(), 12 | 13)
}

/// A map of maps as libbpf creates one (`bpf_object__create_map`): its inner map's definition
/// (`__array(values, struct inner)`, parsed by aya-obj) created first as the template, with the
/// object's BTF, then the outer map with that template's fd and without BTF (libbpf clears a
/// map of maps' key and value types); the template is closed once the outer map exists.
fn create_map_in_map(
    name: &str,
    map_obj: &aya_obj::Map,
    inner: aya_obj::Map,
    btf: Option<BorrowedFd<'_>>,
    notes: &mut Vec<String>,
) -> Result<MapData, LoaderError> {
    let inner_name = format!("{name}.inner");
    let template = match MapData::create(inner.clone(), &inner_name, btf) {
        Ok(template) => template,
        Err(error) if btf.is_some() => {
            let mut bare = inner;
            if let aya_obj::Map::Btf(map) = &mut bare {
                map.def.btf_key_type_id = 0;
                map.def.btf_value_type_id = 0;
            }
            let template = MapData::create(bare, &inner_name, None)
                .map_err(|_| LoaderError::Map(inner_name.clone(), error))?;
            notes.push(format!(
                "map {inner_name} refused with BTF: created without it"
            ));
            template
        }
        Err(error) => return Err(LoaderError::Map(inner_name, error)),
    };
    let shape = (
        map_obj.map_type(),
        map_obj.key_size(),
        // A map of maps' values are map fds (libbpf: 4 bytes whatever `__type(value)` said).
        4,
        map_obj.max_entries(),
        map_obj.map_flags(),
    );
    let fd = bpf_sys::map_in_map_create(name, shape, template.fd().as_fd())
        .map_err(|e| LoaderError::MapInit(name.to_owned(), e))?;
    MapData::from_fd(fd).map_err(|e| LoaderError::Map(name.to_owned(), e))
}

/// Sets the slots a map of maps' static initialiser names, once every map exists (libbpf's
/// `init_map_in_map_slots`, before any program loads).
fn fill_map_slots(
    maps: &HashMap<String, (aya_obj::Map, MapData)>,
    slots: &[static_slots::Slot],
    notes: &mut Vec<String>,
) -> Result<(), LoaderError> {
    let fd_of = |name: &str| {
        maps.get(name)
            .map(|(_, data)| data.fd().as_fd())
            .ok_or_else(|| {
                let mut known: Vec<&str> = maps.keys().map(String::as_str).collect();
                known.sort_unstable();
                LoaderError::NoSuchMap(name.to_owned(), known.join(", "))
            })
    };
    for slot in slots.iter().filter(|s| s.kind == static_slots::Target::Map) {
        let (outer, inner) = (fd_of(&slot.map)?, fd_of(&slot.target)?);
        bpf_sys::map_in_map_update(outer, slot.index, inner).map_err(|e| {
            LoaderError::MapInit(format!("{}[{}] = {}", slot.map, slot.index, slot.target), e)
        })?;
        notes.push(format!(
            "static map of maps {}[{}] = {} (set before the load, as libbpf does)",
            slot.map, slot.index, slot.target
        ));
    }
    Ok(())
}

fn encode_globals(
    object: &[u8],
    globals: &BTreeMap<String, u64>,
) -> Result<Vec<(String, Vec<u8>)>, LoaderError> {
    globals
        .iter()
        .map(|(name, value)| {
            let symbol = sections::global_symbol(object, name)?
                .ok_or_else(|| LoaderError::NoSuchGlobal(name.clone()))?;
            Ok((name.clone(), encode_integer(name, *value, symbol.size)?))
        })
        .collect()
}

/// Little-endian bytes of `value` truncated to `size` (so -1 as u64 becomes 0xff.. of any size).
fn encode_integer(name: &str, value: u64, size: usize) -> Result<Vec<u8>, LoaderError> {
    if ![1, 2, 4, 8].contains(&size) {
        return Err(LoaderError::GlobalSize {
            name: name.into(),
            size,
        });
    }
    Ok(value.to_le_bytes()[..size].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_encoded_little_endian_at_their_size() {
        assert_eq!(
            encode_integer("v", 0xf1f2f3f4, 4).unwrap(),
            vec![0xf4, 0xf3, 0xf2, 0xf1]
        );
        assert_eq!(encode_integer("b", 1, 1).unwrap(), vec![1]);
        assert_eq!(encode_integer("m", u64::MAX, 2).unwrap(), vec![0xff, 0xff]);
        assert!(encode_integer("odd", 1, 3).is_err());
    }
}
