//! `__ksym` externs, resolved and relocated as libbpf 1.x does it
//! (`bpf_object__collect_externs`, `bpf_object__resolve_externs`, `bpf_object__relocate_data`).
//!
//! aya-obj 0.3 knows no externs: the `.ksyms` DATASEC has size 0 and no ELF section (its BTF
//! fixup fails), an extern VAR or FUNC has a linkage the kernel refuses, and the instructions
//! naming an extern keep their zeros. What is done here, on raw bytes before aya-obj parses
//! the object and on its public `functions` and `btf` afterwards:
//! - the BTF, as libbpf patches its copy: every `.ksyms` entry 4 bytes at offset 4 × i, the
//!   DATASEC 4 × n bytes, each VAR an allocated `int`, each FUNC global linkage, and a FUNC's
//!   entry pointing at one appended VAR `dummy_ksym` (the kernel takes only VARs in a DATASEC);
//! - typeless ksyms (`extern const void x __ksym`): the address from `/proc/kallsyms`;
//! - typed variables: the VAR's BTF id in vmlinux, else in a module's own BTF (then the
//!   module BTF's fd goes into the ld_imm64's second half), its type compatible with the
//!   object's (libbpf's `bpf_core_types_are_compat`);
//! - kfuncs: the FUNC's BTF id (a `___flavour` suffix dropped), its prototype compatible;
//!   from a module, the call's `off` is the module BTF fd's index in the load's `fd_array`
//!   (index 0 unused, one slot per module in the order the kfuncs resolved);
//! - `__weak` ones not found: a load reads 0, a call becomes libbpf's poisoned helper call
//!   (`call 2002000000 + extern index`, refused only if reachable).
//!
//! The kernel facts come through [`KernelSymbols`], so the choices are tested without a VM.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use super::btf_raw::{self, kind, BtfRawError, Parsed};
use super::kernel_btf;

const KSYMS_SECTION: &str = ".ksyms";
const DUMMY_VAR: &str = "dummy_ksym";
const BTF_VAR_GLOBAL_ALLOCATED: u32 = 1;
const BTF_FUNC_GLOBAL: u32 = 1;
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
const BPF_PSEUDO_BTF_ID: u8 = 3;
/// BPF_JMP | BPF_CALL.
const CALL: u8 = 0x85;
/// libbpf's POISON_CALL_KFUNC_BASE: an unresolved weak kfunc's call becomes this helper id
/// plus the extern's index, which the verifier refuses only where it is reachable.
const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

#[derive(Debug, thiserror::Error)]
pub enum KsymError {
    #[error("reading the object's __ksym externs: {0}")]
    Elf(#[from] object::Error),
    #[error("the object's BTF: {0}")]
    Btf(#[from] BtfRawError),
    #[error("__ksym extern `{0}` has no BTF VAR or FUNC of extern linkage in the object")]
    NoBtf(String),
    #[error("reading {0}")]
    Read(String, #[source] std::io::Error),
    #[error("/proc/kallsyms line {0} is not `address type name`")]
    KallsymsLine(usize),
    #[error("__ksym extern `{name}`: resolution is ambiguous: {first:#x} or {second:#x} in /proc/kallsyms")]
    Ambiguous {
        name: String,
        first: u64,
        second: u64,
    },
    #[error("__ksym extern `{0}` (strong) is not in /proc/kallsyms")]
    NotInKallsyms(String),
    #[error("__ksym extern `{0}` (strong, typed variable) is not in the kernel's BTF")]
    VarNotInBtf(String),
    #[error("__ksym kfunc `{0}` (strong) is not in the kernel's or a module's BTF")]
    FuncNotInBtf(String),
    #[error("__ksym extern `{name}`: incompatible types, the object has [{local}] {local_kind}, {btf} has [{kernel}] {kernel_kind}")]
    Incompatible {
        name: String,
        local: u32,
        local_kind: &'static str,
        btf: String,
        kernel: u32,
        kernel_kind: &'static str,
    },
    #[error("__ksym extern `{0}`: the kernel's BTF for it is malformed")]
    KernelBtf(String, #[source] BtfRawError),
    #[error("enumerating the kernel's BTF objects")]
    Enumerate(#[source] std::io::Error),
    #[error("the appended {DUMMY_VAR} VAR got BTF id {got}, the patched .ksyms DATASEC names {expected}")]
    DummyId { expected: u32, got: u32 },
}

/// What a ksym is, by its BTF in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KsymKind {
    /// `extern const void x __ksym`: a VAR of type void.
    Typeless,
    /// A VAR of a type (modifiers and typedefs skipped).
    Var { local_type: u32 },
    /// A FUNC, with its FUNC_PROTO.
    Func { proto: u32 },
}

#[derive(Debug, Clone)]
struct Ksym {
    name: String,
    weak: bool,
    kind: KsymKind,
}

/// What one ksym resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Not found and weak: a load reads 0, a call is poisoned.
    Unset,
    /// A kernel address (typeless ksyms, from /proc/kallsyms).
    Address(u64),
    /// A BTF id in vmlinux (`module` None) or in the module at that index of
    /// [`KernelSymbols::module_btfs`].
    BtfId { id: u32, module: Option<usize> },
}

/// The object's `__ksym` externs and the instructions that name them.
#[derive(Debug, Clone)]
pub struct Ksyms {
    /// In libbpf's order (by name), which numbers the poisoned calls.
    externs: Vec<Ksym>,
    /// libbpf's extern array holds the `__kconfig` ones first.
    kconfig_count: usize,
    /// (ELF section index, byte offset of the instruction in it, extern name).
    references: Vec<(usize, u64, String)>,
    /// The BTF id the appended `dummy_ksym` VAR must get, and its type, if a FUNC is in
    /// `.ksyms`.
    dummy_var: Option<(u32, u32)>,
    /// The object's `.BTF` as compiled: the local types compared with the kernel's.
    object_btf: Vec<u8>,
}

/// The ksyms resolved against a kernel, with the `fd_array` their kfunc calls index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub by_name: HashMap<String, Resolution>,
    /// Module indices in `fd_array` order, from index 1 (index 0 stays unused, as libbpf).
    pub fd_array_modules: Vec<usize>,
}

/// A module's name and its split BTF.
pub type ModuleBtf = (String, Arc<[u8]>);

/// What the kernel says about its symbols; tests give their own.
pub trait KernelSymbols {
    /// The text of /proc/kallsyms.
    fn kallsyms(&mut self) -> Result<Arc<[u8]>, KsymError>;
    /// vmlinux's BTF.
    fn vmlinux_btf(&mut self) -> Result<Arc<[u8]>, KsymError>;
    /// Every module's BTF (split over vmlinux's), with its name, in the kernel's BTF id order.
    fn module_btfs(&mut self) -> Result<Vec<ModuleBtf>, KsymError>;
    /// The fd of the module BTF at `index` of [`Self::module_btfs`].
    fn module_fd(&self, index: usize) -> i32;
}

/// The running kernel: /proc/kallsyms, /sys/kernel/btf, and the module BTF objects' fds
/// (kept open as long as this value: the program's instructions and `fd_array` name them).
#[derive(Debug, Default)]
pub struct RunningKernel {
    modules: Vec<(String, OwnedFd)>,
}

impl KernelSymbols for RunningKernel {
    fn kallsyms(&mut self) -> Result<Arc<[u8]>, KsymError> {
        read_bytes("/proc/kallsyms")
    }

    fn vmlinux_btf(&mut self) -> Result<Arc<[u8]>, KsymError> {
        read_bytes("/sys/kernel/btf/vmlinux")
    }

    fn module_btfs(&mut self) -> Result<Vec<ModuleBtf>, KsymError> {
        // As libbpf's load_module_btfs: every kernel BTF object but vmlinux, by id; one that
        // went away meanwhile is skipped, no permission to walk them means no modules.
        let ids = match crate::bpf_sys::btf_ids() {
            Ok(ids) => ids,
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => Vec::new(),
            Err(error) => return Err(KsymError::Enumerate(error)),
        };
        self.modules.clear();
        let mut btfs = Vec::new();
        for id in ids {
            let fd = match crate::bpf_sys::btf_fd_by_id(id) {
                Ok(fd) => fd,
                Err(error) if error.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(error) => return Err(KsymError::Enumerate(error)),
            };
            let info = match crate::bpf_sys::btf_info(std::os::fd::AsFd::as_fd(&fd)) {
                Ok(info) => info,
                // A kernel before module BTF (5.11) has no `name` in bpf_btf_info and refuses
                // the longer struct: it has no module BTFs (libbpf probes FEAT_MODULE_BTF).
                Err(error) if error.raw_os_error() == Some(libc::E2BIG) => return Ok(Vec::new()),
                Err(error) => return Err(KsymError::Enumerate(error)),
            };
            if !info.kernel_btf || info.name == "vmlinux" {
                continue;
            }
            btfs.push((
                info.name.clone(),
                read_bytes(&format!("/sys/kernel/btf/{}", info.name))?,
            ));
            self.modules.push((info.name, fd));
        }
        Ok(btfs)
    }

    fn module_fd(&self, index: usize) -> i32 {
        self.modules.get(index).map_or(-1, |(_, fd)| fd.as_raw_fd())
    }
}

/// The file's bytes as first read in this process (shared, never copied: vmlinux's BTF is
/// megabytes).
fn read_bytes(path: &str) -> Result<Arc<[u8]>, KsymError> {
    crate::read_once::read(path).map_err(|e| KsymError::Read(path.into(), e))
}

impl Ksyms {
    /// Finds the object's `__ksym` externs (undefined symbols whose BTF lies in `.ksyms`) and
    /// patches `patched`'s BTF as libbpf patches its copy. `kconfig_count`: how many
    /// `__kconfig` externs precede them in libbpf's extern array. `None` without ksyms.
    pub fn prepare(
        original: &[u8],
        patched: &mut [u8],
        kconfig_count: usize,
    ) -> Result<Option<Self>, KsymError> {
        let file = object::File::parse(original)?;
        let Some(btf_section) = file.section_by_name(".BTF") else {
            return Ok(None);
        };
        let Some((start, len)) = btf_section.file_range() else {
            return Ok(None);
        };
        let btf_range = start as usize..(start + len) as usize;
        let parsed = Parsed::new(&original[btf_range.clone()])?;
        let Some((_, section)) = parsed.find(kind::DATASEC, KSYMS_SECTION) else {
            return Ok(None);
        };
        let in_section: Vec<u32> = parsed
            .datasec_entries(section)
            .iter()
            .map(|(id, ..)| *id)
            .collect();
        let is_ksym = |name: &str| {
            in_section
                .iter()
                .any(|id| parsed.by_id(*id).is_some_and(|t| parsed.name(t) == name))
        };
        let mut by_symbol = HashMap::new();
        let mut externs = Vec::new();
        for symbol in file.symbols() {
            let name = symbol.name().unwrap_or_default();
            if !symbol.is_undefined() || name.is_empty() || !is_ksym(name) {
                continue;
            }
            by_symbol.insert(symbol.index().0, name.to_owned());
            externs.push(Ksym {
                name: name.to_owned(),
                weak: symbol.is_weak(),
                kind: ksym_kind(&parsed, name)?,
            });
        }
        externs.sort_by(|a, b| a.name.cmp(&b.name));
        let int_type = first_int32(&parsed);
        let has_func = externs
            .iter()
            .any(|k| matches!(k.kind, KsymKind::Func { .. }));
        let dummy_var = has_func.then(|| (parsed.types.len() as u32 + 1, int_type));
        patch_btf(
            &parsed,
            section,
            &mut patched[btf_range.clone()],
            int_type,
            dummy_var.map(|(id, _)| id),
        );
        Ok(Some(Self {
            externs,
            kconfig_count,
            references: references(&file, &by_symbol),
            dummy_var,
            object_btf: original[btf_range].to_vec(),
        }))
    }

    /// Appends the `dummy_ksym` VAR the patched `.ksyms` DATASEC points FUNC entries at.
    pub fn add_dummy_var(&self, obj: &mut aya_obj::Object) -> Result<(), KsymError> {
        let (Some((expected, int_type)), Some(btf)) = (self.dummy_var, obj.btf.as_mut()) else {
            return Ok(());
        };
        let name = btf.add_string(DUMMY_VAR);
        let var = aya_obj::btf::Var::new(name, int_type, aya_obj::btf::VarLinkage::Global);
        let got = btf.add_type(aya_obj::btf::BtfType::Var(var));
        if got != expected {
            return Err(KsymError::DummyId { expected, got });
        }
        Ok(())
    }

    /// Resolves every ksym as libbpf does: kallsyms for the VARs when a typeless one is
    /// there, then BTF for the typed ones; a strong one left unresolved is an error.
    pub fn resolve(&self, kernel: &mut dyn KernelSymbols) -> Result<Resolved, KsymError> {
        let mut resolved = Resolved::default();
        if self.externs.iter().any(|k| k.kind == KsymKind::Typeless) {
            let wanted: Vec<&str> = self
                .externs
                .iter()
                .filter(|k| !matches!(k.kind, KsymKind::Func { .. }))
                .map(|k| k.name.as_str())
                .collect();
            let kallsyms = kernel.kallsyms()?;
            let text = std::str::from_utf8(&kallsyms).map_err(|_| KsymError::KallsymsLine(0))?;
            for (name, address) in kallsyms_addresses(text, &wanted)? {
                resolved.by_name.insert(name, Resolution::Address(address));
            }
        }
        if self.externs.iter().any(|k| k.kind != KsymKind::Typeless) {
            BtfSearch::new(kernel)?.resolve_typed(self, &mut resolved)?;
        }
        for ksym in &self.externs {
            let set = resolved.by_name.get(&ksym.name).copied();
            match set.unwrap_or(Resolution::Unset) {
                Resolution::Unset if !ksym.weak => {
                    return Err(KsymError::NotInKallsyms(ksym.name.clone()))
                }
                Resolution::Unset => {
                    resolved
                        .by_name
                        .insert(ksym.name.clone(), Resolution::Unset);
                }
                _ => {}
            }
        }
        Ok(resolved)
    }

    /// The load's `fd_array`: index 0 unused, then the module BTF fds kfunc calls index.
    pub fn fd_array(resolved: &Resolved, kernel: &dyn KernelSymbols) -> Vec<i32> {
        if resolved.fd_array_modules.is_empty() {
            return Vec::new();
        }
        std::iter::once(0)
            .chain(
                resolved
                    .fd_array_modules
                    .iter()
                    .map(|m| kernel.module_fd(*m)),
            )
            .collect()
    }

    /// Writes the resolutions into every instruction naming a ksym, in the functions
    /// aya-obj parsed (before `relocate_calls` copies subprograms into programs).
    pub fn relocate(
        &self,
        obj: &mut aya_obj::Object,
        resolved: &Resolved,
        kernel: &dyn KernelSymbols,
    ) {
        for function in obj.functions.values_mut() {
            let start = function.section_offset as u64;
            let end = start + function.instructions.len() as u64 * 8;
            for (section, offset, name) in &self.references {
                if function.section_index.0 != *section || !(start..end).contains(offset) {
                    continue;
                }
                let index = ((offset - start) / 8) as usize;
                let resolution = resolved
                    .by_name
                    .get(name)
                    .copied()
                    .unwrap_or(Resolution::Unset);
                let extern_index = self.kconfig_count
                    + self
                        .externs
                        .iter()
                        .position(|k| k.name == *name)
                        .unwrap_or(0);
                let insns = &mut function.instructions[index..];
                if insns[0].code == CALL {
                    relocate_call(&mut insns[0], resolution, resolved, extern_index);
                } else if insns.len() > 1 {
                    relocate_load(insns, resolution, kernel);
                }
            }
        }
    }
}

/// A kfunc call: BPF_PSEUDO_KFUNC_CALL with the FUNC's id and its BTF's `fd_array` index, or
/// libbpf's poisoned helper call.
fn relocate_call(
    insn: &mut aya_obj::generated::bpf_insn,
    resolution: Resolution,
    resolved: &Resolved,
    extern_index: usize,
) {
    match resolution {
        Resolution::BtfId { id, module } => {
            insn.set_src_reg(BPF_PSEUDO_KFUNC_CALL);
            insn.imm = id as i32;
            insn.off = module
                .and_then(|m| resolved.fd_array_modules.iter().position(|x| *x == m))
                .map_or(0, |at| at as i16 + 1);
        }
        Resolution::Unset | Resolution::Address(_) => {
            insn.code = CALL;
            insn.set_dst_reg(0);
            insn.set_src_reg(0);
            insn.off = 0;
            insn.imm = POISON_CALL_KFUNC_BASE + extern_index as i32;
        }
    }
}

/// An ld_imm64: the address as its 64-bit immediate, or BPF_PSEUDO_BTF_ID with the id and
/// the module BTF's fd (0 for vmlinux).
fn relocate_load(
    insns: &mut [aya_obj::generated::bpf_insn],
    resolution: Resolution,
    kernel: &dyn KernelSymbols,
) {
    match resolution {
        Resolution::BtfId { id, module } => {
            insns[0].set_src_reg(BPF_PSEUDO_BTF_ID);
            insns[0].imm = id as i32;
            insns[1].imm = module.map_or(0, |m| kernel.module_fd(m));
        }
        Resolution::Address(address) => {
            insns[0].imm = address as u32 as i32;
            insns[1].imm = (address >> 32) as u32 as i32;
        }
        Resolution::Unset => {
            insns[0].imm = 0;
            insns[1].imm = 0;
        }
    }
}

/// Typeless, typed VAR or FUNC, from the first VAR or FUNC of that name (libbpf's
/// find_extern_btf_id: it must have extern linkage).
fn ksym_kind(parsed: &Parsed<'_>, name: &str) -> Result<KsymKind, KsymError> {
    let found = parsed
        .types
        .iter()
        .find(|t| matches!(t.kind, kind::VAR | kind::FUNC) && parsed.name(t) == name);
    let no_btf = || KsymError::NoBtf(name.to_owned());
    let t = found.ok_or_else(no_btf)?;
    if t.kind == kind::FUNC {
        return match t.vlen {
            2 => Ok(KsymKind::Func {
                proto: t.size_or_type,
            }),
            _ => Err(no_btf()),
        };
    }
    if btf_raw::u32_at(parsed.data, t.extra())? != 2 {
        return Err(no_btf());
    }
    Ok(match parsed.skip_mods(t.size_or_type) {
        Some((id, _)) if id != 0 => KsymKind::Var { local_type: id },
        _ => KsymKind::Typeless,
    })
}

/// libbpf's find_int_btf_id: the first 32-bit INT (0 if none).
fn first_int32(parsed: &Parsed<'_>) -> u32 {
    parsed
        .types
        .iter()
        .position(|t| {
            t.kind == kind::INT
                && btf_raw::u32_at(parsed.data, t.extra()).is_ok_and(|w| w & 0xff == 32)
        })
        .map_or(0, |i| i as u32 + 1)
}

/// The `.ksyms` DATASEC and its VARs and FUNCs as libbpf leaves them for the kernel.
fn patch_btf(
    parsed: &Parsed<'_>,
    section: &btf_raw::RawType,
    out: &mut [u8],
    int_type: u32,
    dummy_var: Option<u32>,
) {
    let entries = parsed.datasec_entries(section);
    for (i, (id, ..)) in entries.iter().enumerate() {
        let mut entry_type = *id;
        if let Some(t) = parsed.by_id(*id) {
            if t.kind == kind::FUNC {
                let info = (kind::FUNC << 24) | (u32::from(t.kind_flag) << 31) | BTF_FUNC_GLOBAL;
                btf_raw::put_u32(out, t.offset + 4, info);
                entry_type = dummy_var.unwrap_or(*id);
            } else {
                btf_raw::put_u32(out, t.offset + 8, int_type);
                btf_raw::put_u32(out, t.extra(), BTF_VAR_GLOBAL_ALLOCATED);
            }
        }
        let at = section.extra() + i * 12;
        btf_raw::put_u32(out, at, entry_type);
        btf_raw::put_u32(out, at + 4, i as u32 * 4);
        btf_raw::put_u32(out, at + 8, 4);
    }
    btf_raw::put_u32(out, section.offset + 8, entries.len() as u32 * 4);
}

/// The relocations of the object's code against the given symbols.
fn references(
    file: &object::File<'_>,
    by_symbol: &HashMap<usize, String>,
) -> Vec<(usize, u64, String)> {
    let mut found = Vec::new();
    for section in file
        .sections()
        .filter(|s| s.kind() == object::SectionKind::Text)
    {
        for (offset, relocation) in section.relocations() {
            if let RelocationTarget::Symbol(symbol) = relocation.target() {
                if let Some(name) = by_symbol.get(&symbol.0) {
                    found.push((section.index().0, offset, name.clone()));
                }
            }
        }
    }
    found
}

/// The addresses /proc/kallsyms gives the wanted names (libbpf's kallsyms_cb: a data
/// symbol `x.llvm.<hash>` counts as `x`; one name at two addresses is an error).
pub fn kallsyms_addresses(text: &str, wanted: &[&str]) -> Result<HashMap<String, u64>, KsymError> {
    let mut found: HashMap<String, u64> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(KsymError::KallsymsLine(number + 1));
        };
        let address =
            u64::from_str_radix(address, 16).map_err(|_| KsymError::KallsymsLine(number + 1))?;
        let name = match name.find(".llvm.") {
            Some(at) if kind == "d" => &name[..at],
            _ => name,
        };
        if !wanted.contains(&name) {
            continue;
        }
        match found.get(name) {
            Some(first) if *first != address => {
                return Err(KsymError::Ambiguous {
                    name: name.to_owned(),
                    first: *first,
                    second: address,
                })
            }
            Some(_) => {}
            None => {
                found.insert(name.to_owned(), address);
            }
        }
    }
    Ok(found)
}

/// vmlinux's BTF, and the modules' (each as one standalone BTF after vmlinux's) once a name
/// is not in vmlinux, as libbpf's find_ksym_btf_id searches them.
struct BtfSearch<'k> {
    kernel: &'k mut dyn KernelSymbols,
    vmlinux_bytes: Arc<[u8]>,
    vmlinux: &'static Parsed<'static>,
    /// (name, vmlinux + module), in the kernel's order; read on first need.
    modules: Option<Vec<(String, &'static Parsed<'static>)>>,
}

impl<'k> BtfSearch<'k> {
    fn new(kernel: &'k mut dyn KernelSymbols) -> Result<Self, KsymError> {
        let vmlinux_bytes = kernel.vmlinux_btf()?;
        let vmlinux = btf_raw::parsed_once(&vmlinux_bytes)
            .map_err(|e| KsymError::KernelBtf("vmlinux".into(), e))?;
        Ok(Self {
            kernel,
            vmlinux_bytes,
            vmlinux,
            modules: None,
        })
    }

    fn resolve_typed(&mut self, ksyms: &Ksyms, resolved: &mut Resolved) -> Result<(), KsymError> {
        let local = Parsed::new(&ksyms.object_btf)?;
        for ksym in &ksyms.externs {
            match ksym.kind {
                KsymKind::Typeless => {}
                KsymKind::Var { local_type } => {
                    self.resolve_var(ksym, (&local, local_type), resolved)?
                }
                KsymKind::Func { proto } => self.resolve_func(ksym, (&local, proto), resolved)?,
            }
        }
        Ok(())
    }

    /// libbpf's bpf_object__resolve_ksym_var_btf_id: not found is fine for a weak one (it
    /// keeps what kallsyms gave it, if anything); an incompatible type never is.
    fn resolve_var(
        &mut self,
        ksym: &Ksym,
        (local, local_type): (&Parsed<'_>, u32),
        resolved: &mut Resolved,
    ) -> Result<(), KsymError> {
        let Some((id, module)) = self.find(&ksym.name, kind::VAR)? else {
            if !ksym.weak {
                return Err(KsymError::VarNotInBtf(ksym.name.clone()));
            }
            // libbpf: a typed VAR kallsyms already set counts as set, so its ld_imm64 takes
            // the typed form with the id it never got (0).
            if let Some(set) = resolved.by_name.get_mut(&ksym.name) {
                *set = Resolution::BtfId {
                    id: 0,
                    module: None,
                };
            }
            return Ok(());
        };
        let target = self.btf(module);
        let var_type = target.by_id(id).map_or(0, |t| t.size_or_type);
        let (target_type, _) = skip_mods(target, var_type).unwrap_or((0, 0));
        if !types_compat((local, local_type), (target, target_type), 32) {
            return Err(self.incompatible(
                ksym,
                (local, local_type),
                (target, target_type),
                module,
            ));
        }
        resolved
            .by_name
            .insert(ksym.name.clone(), Resolution::BtfId { id, module });
        Ok(())
    }

    /// libbpf's bpf_object__resolve_ksym_func_btf_id: a weak kfunc that is missing or whose
    /// prototype differs stays unset; a module's BTF gets the next `fd_array` slot.
    fn resolve_func(
        &mut self,
        ksym: &Ksym,
        (local, proto): (&Parsed<'_>, u32),
        resolved: &mut Resolved,
    ) -> Result<(), KsymError> {
        let essential = ksym
            .name
            .find("___")
            .map_or(ksym.name.as_str(), |at| &ksym.name[..at]);
        let Some((id, module)) = self.find(essential, kind::FUNC)? else {
            if ksym.weak {
                return Ok(());
            }
            return Err(KsymError::FuncNotInBtf(ksym.name.clone()));
        };
        let target = self.btf(module);
        let kernel_proto = target.by_id(id).map_or(0, |t| t.size_or_type);
        if !types_compat((local, proto), (target, kernel_proto), 32) {
            if ksym.weak {
                return Ok(());
            }
            return Err(self.incompatible(ksym, (local, proto), (target, kernel_proto), module));
        }
        if let Some(m) = module {
            if !resolved.fd_array_modules.contains(&m) {
                resolved.fd_array_modules.push(m);
            }
        }
        resolved
            .by_name
            .insert(ksym.name.clone(), Resolution::BtfId { id, module });
        Ok(())
    }

    fn incompatible(
        &self,
        ksym: &Ksym,
        (local, local_id): (&Parsed<'_>, u32),
        (target, target_id): (&Parsed<'_>, u32),
        module: Option<usize>,
    ) -> KsymError {
        let btf = match module.and_then(|m| self.modules.as_ref()?.get(m)) {
            Some((name, _)) => format!("module {name}"),
            None => "vmlinux".into(),
        };
        KsymError::Incompatible {
            name: ksym.name.clone(),
            local: local_id,
            local_kind: kind_name(kind_at(local, local_id)),
            btf,
            kernel: target_id,
            kernel_kind: kind_name(kind_at(target, target_id)),
        }
    }

    /// vmlinux's BTF, or vmlinux's and a module's as one.
    fn btf(&self, module: Option<usize>) -> &'static Parsed<'static> {
        match module.and_then(|m| self.modules.as_ref()?.get(m)) {
            Some((_, combined)) => combined,
            None => self.vmlinux,
        }
    }

    /// The id of the first type of `kind` named `name` in vmlinux, else in the first module
    /// (by the kernel's order) whose own types have it.
    fn find(&mut self, name: &str, wanted: u32) -> Result<Option<(u32, Option<usize>)>, KsymError> {
        if let Some((id, _)) = self.vmlinux.find(wanted, name) {
            return Ok(Some((id, None)));
        }
        let vmlinux_count = self.vmlinux.types.len();
        for (index, (_, parsed)) in self.modules()?.iter().enumerate() {
            let own = parsed
                .types
                .iter()
                .enumerate()
                .skip(vmlinux_count)
                .find(|(_, t)| t.kind == wanted && parsed.name(t) == name);
            if let Some((at, _)) = own {
                return Ok(Some((at as u32 + 1, Some(index))));
            }
        }
        Ok(None)
    }

    fn modules(&mut self) -> Result<&[(String, &'static Parsed<'static>)], KsymError> {
        if self.modules.is_none() {
            let mut combined = Vec::new();
            for (name, split) in self.kernel.module_btfs()? {
                let parsed = combined_once(&self.vmlinux_bytes, &split)
                    .map_err(|e| KsymError::KernelBtf(name.clone(), e))?;
                combined.push((name, parsed));
            }
            self.modules = Some(combined);
        }
        Ok(self.modules.as_deref().unwrap_or_default())
    }
}

/// vmlinux's BTF with a module's (`split`) after it as one standalone BTF, parsed: made once per
/// process for each pair of BTFs read (both kept alive with it, so their addresses name them;
/// the concatenation is megabytes, and was made and compared for every typed `__ksym` case).
fn combined_once(
    vmlinux: &Arc<[u8]>,
    split: &Arc<[u8]>,
) -> Result<&'static Parsed<'static>, btf_raw::BtfRawError> {
    type Kept = Vec<(Arc<[u8]>, Arc<[u8]>, &'static Parsed<'static>)>;
    static KEPT: Mutex<Kept> = Mutex::new(Vec::new());
    let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let known = kept
        .iter()
        .find(|(base, module, _)| Arc::ptr_eq(base, vmlinux) && Arc::ptr_eq(module, split));
    if let Some((_, _, parsed)) = known {
        return Ok(parsed);
    }
    let combined: Arc<[u8]> = kernel_btf::concat_split(vmlinux, split)?.into();
    let parsed = btf_raw::parsed_once(&combined)?;
    kept.push((vmlinux.clone(), split.clone(), parsed));
    Ok(parsed)
}

/// A type's kind; 0 for void (id 0), which libbpf's btf__type_by_id gives as kind UNKN.
fn kind_at(parsed: &Parsed<'_>, id: u32) -> u32 {
    match id {
        0 => 0,
        _ => parsed.by_id(id).map_or(u32::MAX, |t| t.kind),
    }
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "void",
        kind::INT => "int",
        kind::PTR => "ptr",
        kind::ARRAY => "array",
        kind::STRUCT => "struct",
        kind::UNION => "union",
        kind::ENUM | kind::ENUM64 => "enum",
        kind::FWD => "fwd",
        kind::FUNC_PROTO => "func_proto",
        kind::FUNC => "func",
        kind::VAR => "var",
        _ => "other",
    }
}

/// Follows typedefs and modifiers (void included, unlike [`Parsed::skip_mods`]): the id
/// and kind reached.
fn skip_mods(parsed: &Parsed<'_>, mut id: u32) -> Option<(u32, u32)> {
    for _ in 0..64 {
        match kind_at(parsed, id) {
            kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                id = parsed.by_id(id)?.size_or_type;
            }
            u32::MAX => return None,
            other => return Some((id, other)),
        }
    }
    None
}

fn is_enum(kind: u32) -> bool {
    kind == kind::ENUM || kind == kind::ENUM64
}

/// libbpf's __bpf_core_types_are_compat: same kinds (enums alike) through pointers, arrays
/// and prototypes; any two structs, unions, enums or forwards of those kinds are compatible,
/// integers unless bitfield-like.
fn types_compat(
    (local, local_id): (&Parsed<'_>, u32),
    (target, target_id): (&Parsed<'_>, u32),
    level: u32,
) -> bool {
    let compat = |a: u32, b: u32| a == b || (is_enum(a) && is_enum(b));
    if !compat(kind_at(local, local_id), kind_at(target, target_id)) {
        return false;
    }
    let (mut local_id, mut target_id) = (local_id, target_id);
    for _ in 0..32 {
        let (Some((l_id, l_kind)), Some((t_id, t_kind))) =
            (skip_mods(local, local_id), skip_mods(target, target_id))
        else {
            return false;
        };
        if !compat(l_kind, t_kind) {
            return false;
        }
        let (l, t) = (local.by_id(l_id), target.by_id(t_id));
        let word = |p: &Parsed<'_>, ty: Option<&btf_raw::RawType>, at: usize| {
            ty.and_then(|ty| btf_raw::u32_at(p.data, ty.extra() + at).ok())
        };
        match l_kind {
            0 | kind::STRUCT | kind::UNION | kind::ENUM | kind::FWD | kind::ENUM64 => return true,
            // Bits 16..23 of the INT word: the deprecated bitfield offset.
            kind::INT => {
                let offset = |p, ty| word(p, ty, 0).map(|w| (w >> 16) & 0xff);
                return offset(local, l) == Some(0) && offset(target, t) == Some(0);
            }
            kind::PTR => {
                local_id = l.map_or(0, |x| x.size_or_type);
                target_id = t.map_or(0, |x| x.size_or_type);
            }
            kind::ARRAY => {
                local_id = word(local, l, 0).unwrap_or(u32::MAX);
                target_id = word(target, t, 0).unwrap_or(u32::MAX);
            }
            kind::FUNC_PROTO => {
                let (Some(l), Some(t)) = (l, t) else {
                    return false;
                };
                if l.vlen != t.vlen {
                    return false;
                }
                for i in 0..l.vlen {
                    let local_param = word(local, Some(l), i * 8 + 4).unwrap_or(u32::MAX);
                    let target_param = word(target, Some(t), i * 8 + 4).unwrap_or(u32::MAX);
                    let (Some((lp, _)), Some((tp, _))) = (
                        skip_mods(local, local_param),
                        skip_mods(target, target_param),
                    ) else {
                        return false;
                    };
                    if level == 0 || !types_compat((local, lp), (target, tp), level - 1) {
                        return false;
                    }
                }
                local_id = l.size_or_type;
                target_id = t.size_or_type;
            }
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    //! The objects are guest-programs/ksym_*.bpf.c built by clang 14 -O2 -g.
    use super::*;
    use crate::loader::btf_raw::{build, encode};

    const TYPELESS: &[u8] = include_bytes!("../../testdata/ksym_typeless.bpf.o");
    const WEAK: &[u8] = include_bytes!("../../testdata/ksym_weak.bpf.o");
    const TYPED: &[u8] = include_bytes!("../../testdata/ksym_typed.bpf.o");
    const KFUNC: &[u8] = include_bytes!("../../testdata/ksym_kfunc.bpf.o");
    const MODULE_KFUNC: &[u8] = include_bytes!("../../testdata/ksym_module_kfunc.bpf.o");
    const ALL_BTF: aya_obj::btf::BtfFeatures =
        aya_obj::btf::BtfFeatures::new(true, true, true, true, true, true, true, true);
    const MODULE_FD: i32 = 100;

    /// A string section under construction: `at` gives a name's offset, adding it once.
    struct Strings(Vec<u8>);

    impl Strings {
        fn new(base: usize) -> Self {
            let mut strings = Self(vec![0; base]);
            if base == 0 {
                strings.0.push(0);
            }
            strings
        }

        fn at(&mut self, name: &str) -> u32 {
            let offset = self.0.len() as u32;
            self.0.extend_from_slice(name.as_bytes());
            self.0.push(0);
            offset
        }
    }

    /// vmlinux: [1] int, [2] struct rq, [3] VAR runqueues of `runqueues_type`,
    /// [4] void(void), [5] FUNC bpf_rcu_read_lock, [6] FUNC bpf_rcu_read_unlock.
    fn vmlinux(runqueues_type: u32) -> Vec<u8> {
        let mut s = Strings::new(0);
        let types = [
            encode(s.at("int"), kind::INT, 0, 4, &[1 << 24 | 32]),
            encode(s.at("rq"), kind::STRUCT, 0, 4, &[]),
            encode(s.at("runqueues"), kind::VAR, 0, runqueues_type, &[1]),
            encode(0, kind::FUNC_PROTO, 0, 0, &[]),
            encode(s.at("bpf_rcu_read_lock"), kind::FUNC, 1, 4, &[]),
            encode(s.at("bpf_rcu_read_unlock"), kind::FUNC, 1, 4, &[]),
        ]
        .concat();
        build(&types, &s.0)
    }

    /// A module split over [`vmlinux`]: [7] void(int i), [8] FUNC bpf_testmod_test_mod_kfunc.
    fn module(base: &[u8]) -> Vec<u8> {
        let mut s = Strings::new(btf_raw::header(base).unwrap().str_len);
        let types = [
            encode(0, kind::FUNC_PROTO, 1, 0, &[s.at("i"), 1]),
            encode(s.at("bpf_testmod_test_mod_kfunc"), kind::FUNC, 1, 7, &[]),
        ]
        .concat();
        let strings = s.0.split_off(btf_raw::header(base).unwrap().str_len);
        build(&types, &strings)
    }

    struct FakeKernel {
        kallsyms: String,
        vmlinux: Arc<[u8]>,
        modules: Vec<ModuleBtf>,
    }

    impl FakeKernel {
        fn new(runqueues_type: u32) -> Self {
            let vmlinux = vmlinux(runqueues_type);
            Self {
                kallsyms: "ffffffff81000000 T _stext\nffffffff812146b5 T bpf_prog_test_run_skb\n"
                    .into(),
                modules: vec![
                    ("nbd".into(), build(&[], b"\0")[..].into()),
                    ("bpf_testmod".into(), module(&vmlinux).into()),
                ],
                vmlinux: vmlinux.into(),
            }
        }
    }

    impl KernelSymbols for FakeKernel {
        fn kallsyms(&mut self) -> Result<Arc<[u8]>, KsymError> {
            Ok(self.kallsyms.as_bytes().into())
        }
        fn vmlinux_btf(&mut self) -> Result<Arc<[u8]>, KsymError> {
            Ok(self.vmlinux.clone())
        }
        fn module_btfs(&mut self) -> Result<Vec<ModuleBtf>, KsymError> {
            Ok(self.modules.clone())
        }
        fn module_fd(&self, index: usize) -> i32 {
            MODULE_FD + index as i32
        }
    }

    /// The object prepared, parsed, its BTF fixed for the kernel, its ksyms resolved against
    /// `kernel` and relocated: the program's instructions.
    fn relocated(
        object: &[u8],
        kernel: &mut FakeKernel,
    ) -> Result<(Vec<aya_obj::generated::bpf_insn>, Resolved), KsymError> {
        let mut patched = crate::loader::sections::hide_writable_marker(object).unwrap();
        let ksyms = Ksyms::prepare(object, &mut patched, 0)?.unwrap();
        let mut obj = aya_obj::Object::parse(&patched).unwrap();
        ksyms.add_dummy_var(&mut obj)?;
        obj.fixup_and_sanitize_btf(&ALL_BTF).unwrap();
        let resolved = ksyms.resolve(kernel)?;
        ksyms.relocate(&mut obj, &resolved, kernel);
        let function = obj.functions.values().next().unwrap();
        Ok((function.instructions.clone(), resolved))
    }

    /// (code, src_reg, off, imm) of each instruction.
    fn fields(insns: &[aya_obj::generated::bpf_insn]) -> Vec<(u8, u8, i16, i32)> {
        insns
            .iter()
            .map(|i| (i.code, i.src_reg(), i.off, i.imm))
            .collect()
    }

    #[test]
    fn kallsyms_gives_addresses_by_name_like_libbpf() {
        let text = "ffffffff81000000 T _stext\n\
                    ffffffff81001000 t helper\n\
                    ffffffff81002000 d counter.llvm.123456\n\
                    ffffffff81003000 t other.llvm.9\n\
                    ffffffffc0001000 t helper\t[nbd]\n";
        let found = kallsyms_addresses(text, &["_stext", "counter", "other", "nowhere"]).unwrap();
        assert_eq!(found.get("_stext"), Some(&0xffffffff81000000));
        assert_eq!(found.get("counter"), Some(&0xffffffff81002000));
        // Only a data symbol's .llvm. suffix is dropped.
        assert_eq!(found.get("other"), None);
        assert_eq!(found.get("nowhere"), None);
        assert!(matches!(
            kallsyms_addresses(text, &["helper"]),
            Err(KsymError::Ambiguous {
                first: 0xffffffff81001000,
                second: 0xffffffffc0001000,
                ..
            })
        ));
        assert!(matches!(
            kallsyms_addresses("ffff T\n", &["x"]),
            Err(KsymError::KallsymsLine(1))
        ));
    }

    #[test]
    fn ksyms_btf_is_patched_as_libbpf_leaves_it_for_the_kernel() {
        let mut patched = crate::loader::sections::hide_writable_marker(WEAK).unwrap();
        let failure = aya_obj::Object::parse(&patched)
            .ok()
            .and_then(|mut obj| obj.fixup_and_sanitize_btf(&ALL_BTF).err());
        assert!(failure.is_some(), "aya-obj sizes .ksyms now?");
        let ksyms = Ksyms::prepare(WEAK, &mut patched, 2).unwrap().unwrap();
        let names: Vec<&str> = ksyms.externs.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            ["wtp_no_such_kfunc", "wtp_no_such_symbol", "wtp_no_such_var"]
        );
        assert!(ksyms.externs.iter().all(|k| k.weak));
        assert!(matches!(ksyms.externs[0].kind, KsymKind::Func { .. }));
        assert_eq!(ksyms.externs[1].kind, KsymKind::Typeless);
        assert!(matches!(ksyms.externs[2].kind, KsymKind::Var { .. }));
        assert_eq!(ksyms.references.len(), 6);

        let btf = crate::loader::sections::section_data(&patched, ".BTF").unwrap();
        let parsed = Parsed::new(&btf).unwrap();
        let (_, section) = parsed.find(kind::DATASEC, KSYMS_SECTION).unwrap();
        assert_eq!(section.size_or_type, 12);
        let (dummy, int_type) = ksyms.dummy_var.unwrap();
        assert_eq!(dummy as usize, parsed.types.len() + 1);
        let entries = parsed.datasec_entries(section);
        assert_eq!(entries[0], (dummy, 0, 4));
        assert_eq!((entries[1].1, entries[2].1), (4, 8));
        let (_, var) = parsed.find(kind::VAR, "wtp_no_such_var").unwrap();
        assert_eq!(var.size_or_type, int_type);
        assert_eq!(
            btf_raw::u32_at(&btf, var.extra()),
            Ok(BTF_VAR_GLOBAL_ALLOCATED)
        );
        let (_, func) = parsed.find(kind::FUNC, "wtp_no_such_kfunc").unwrap();
        assert_eq!(func.vlen, BTF_FUNC_GLOBAL as usize);

        let mut obj = aya_obj::Object::parse(&patched).unwrap();
        ksyms.add_dummy_var(&mut obj).unwrap();
        obj.fixup_and_sanitize_btf(&ALL_BTF).unwrap();
    }

    #[test]
    fn a_typeless_ksym_gets_its_kallsyms_address() {
        let (insns, resolved) = relocated(TYPELESS, &mut FakeKernel::new(2)).unwrap();
        assert_eq!(
            resolved.by_name["bpf_prog_test_run_skb"],
            Resolution::Address(0xffffffff812146b5)
        );
        let load = fields(&insns)
            .into_iter()
            .position(|(code, ..)| code == 0x18)
            .unwrap();
        assert_eq!(insns[load].imm as u32, 0x812146b5);
        assert_eq!(insns[load + 1].imm as u32, 0xffffffff);
        assert_eq!(insns[load].src_reg(), 0);
    }

    #[test]
    fn a_strong_ksym_missing_from_kallsyms_fails_by_name() {
        let mut kernel = FakeKernel::new(2);
        kernel.kallsyms = "ffffffff81000000 T _stext\n".into();
        let error = relocated(TYPELESS, &mut kernel).unwrap_err();
        assert_eq!(
            error.to_string(),
            "__ksym extern `bpf_prog_test_run_skb` (strong) is not in /proc/kallsyms"
        );
    }

    #[test]
    fn weak_ksyms_nobody_has_read_as_zero_and_their_calls_are_poisoned() {
        let (insns, resolved) = relocated(WEAK, &mut FakeKernel::new(2)).unwrap();
        assert!(resolved.by_name.values().all(|r| *r == Resolution::Unset));
        assert!(resolved.fd_array_modules.is_empty());
        let insns = fields(&insns);
        let loads: Vec<_> = insns.iter().filter(|i| i.0 == 0x18).collect();
        assert_eq!(loads.len(), 5);
        assert!(loads.iter().all(|(_, src, _, imm)| (*src, *imm) == (0, 0)));
        // wtp_no_such_kfunc is the first extern by name.
        let calls: Vec<_> = insns.iter().filter(|i| i.0 == CALL).collect();
        assert_eq!(calls, [&(CALL, 0, 0, POISON_CALL_KFUNC_BASE)]);
    }

    #[test]
    fn a_typed_variable_gets_its_vmlinux_btf_id() {
        let (insns, resolved) = relocated(TYPED, &mut FakeKernel::new(2)).unwrap();
        assert_eq!(
            resolved.by_name["runqueues"],
            Resolution::BtfId {
                id: 3,
                module: None
            }
        );
        let loads: Vec<_> = fields(&insns)
            .into_iter()
            .enumerate()
            .filter(|(_, i)| i.0 == 0x18)
            .collect();
        assert_eq!(loads.len(), 2);
        for (at, (_, src, _, imm)) in loads {
            assert_eq!((src, imm, insns[at + 1].imm), (BPF_PSEUDO_BTF_ID, 3, 0));
        }
    }

    #[test]
    fn a_typed_variable_of_another_kind_is_refused_even_when_weak() {
        // vmlinux's runqueues an int, the object's a struct.
        let error = relocated(TYPED, &mut FakeKernel::new(1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "__ksym extern `runqueues`: incompatible types, the object has [8] struct, vmlinux has [1] int"
        );
    }

    #[test]
    fn a_weak_typed_variable_missing_from_btf_reads_as_zero() {
        let mut kernel = FakeKernel::new(2);
        kernel.vmlinux = build(&encode(1, kind::INT, 0, 4, &[32]), b"\0int\0").into();
        let (_, resolved) = relocated(TYPED, &mut kernel).unwrap();
        assert_eq!(resolved.by_name["runqueues"], Resolution::Unset);
    }

    #[test]
    fn vmlinux_kfuncs_are_called_by_btf_id_and_loaded_as_btf_ids() {
        let (insns, resolved) = relocated(KFUNC, &mut FakeKernel::new(2)).unwrap();
        assert!(resolved.fd_array_modules.is_empty());
        let insns = fields(&insns);
        let calls: Vec<_> = insns.iter().filter(|i| i.0 == CALL).copied().collect();
        assert_eq!(
            calls,
            [
                (CALL, BPF_PSEUDO_KFUNC_CALL, 0, 5),
                (CALL, BPF_PSEUDO_KFUNC_CALL, 0, 6)
            ]
        );
        let mut loads: Vec<(u8, i32)> = insns
            .iter()
            .filter(|i| i.0 == 0x18)
            .map(|i| (i.1, i.3))
            .collect();
        loads.sort_unstable();
        assert_eq!(loads, [(BPF_PSEUDO_BTF_ID, 5), (BPF_PSEUDO_BTF_ID, 6)]);
    }

    #[test]
    fn a_module_kfunc_is_called_through_fd_array() {
        let mut kernel = FakeKernel::new(2);
        let (insns, resolved) = relocated(MODULE_KFUNC, &mut kernel).unwrap();
        // bpf_testmod is the second module the kernel lists.
        assert_eq!(resolved.fd_array_modules, [1]);
        assert_eq!(Ksyms::fd_array(&resolved, &kernel), [0, MODULE_FD + 1]);
        let calls: Vec<_> = fields(&insns).into_iter().filter(|i| i.0 == CALL).collect();
        assert_eq!(calls, [(CALL, BPF_PSEUDO_KFUNC_CALL, 1, 8)]);
    }

    #[test]
    fn a_strong_kfunc_with_another_prototype_or_missing_is_refused_by_name() {
        // The module's kfunc takes no argument here; the object's takes an int.
        let mut kernel = FakeKernel::new(2);
        let mut s = Strings::new(btf_raw::header(&kernel.vmlinux).unwrap().str_len);
        let types = [
            encode(0, kind::FUNC_PROTO, 0, 0, &[]),
            encode(s.at("bpf_testmod_test_mod_kfunc"), kind::FUNC, 1, 7, &[]),
        ]
        .concat();
        let base = btf_raw::header(&kernel.vmlinux).unwrap().str_len;
        kernel.modules = vec![(
            "bpf_testmod".into(),
            build(&types, &s.0.split_off(base)).into(),
        )];
        let error = relocated(MODULE_KFUNC, &mut kernel)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("__ksym extern `bpf_testmod_test_mod_kfunc`: incompatible types")
                && error.contains("module bpf_testmod"),
            "{error}"
        );
        let missing = relocated(
            MODULE_KFUNC,
            &mut FakeKernel {
                modules: Vec::new(),
                ..FakeKernel::new(2)
            },
        )
        .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "__ksym kfunc `bpf_testmod_test_mod_kfunc` (strong) is not in the kernel's or a module's BTF"
        );
    }
}
