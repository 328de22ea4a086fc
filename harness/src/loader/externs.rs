//! `extern` variables of an object: `__kconfig` ones, as libbpf 1.x does them (`__ksym` ones
//! are [`super::ksyms`]'s).
//!
//! aya-obj 0.3 knows nothing of externs: an extern is an undefined ELF symbol, the `.kconfig`
//! DATASEC has size 0 and no ELF section, so its BTF fixup fails ("Unable to determine the size
//! of section .kconfig"), and its relocations are left alone (`relocate_maps` skips symbols
//! without a section). The missing piece, done here on raw bytes and aya-obj's public
//! `functions`:
//! - layout: the `__kconfig` externs sorted like libbpf's `cmp_externs` (alignment descending,
//!   size ascending, name) and placed at aligned offsets of one value;
//! - the object's BTF patched in place before aya-obj parses it, as libbpf patches its own
//!   copy: the `.kconfig` DATASEC gets its size and each entry its offset, each extern VAR
//!   becomes `BTF_VAR_GLOBAL_ALLOCATED`;
//! - the values: `LINUX_KERNEL_VERSION` from uname (libbpf's `get_kernel_version`, Ubuntu's
//!   and Debian's version strings first), `CONFIG_*` from `/boot/config-$(uname -r)` or
//!   `/proc/config.gz`, unknown weak ones zero;
//! - a `.kconfig` array map of one frozen, read-only-to-programs value (a `LegacyMap` of kind
//!   `Rodata` the loader creates with the others);
//! - every `ld_imm64` that names an extern becomes `BPF_PSEUDO_MAP_VALUE` (map fd, offset).

use std::collections::HashMap;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use super::btf_raw::{self, kind, BtfRawError, Parsed};

/// The section index given to the synthetic `.kconfig` map (no ELF section has it).
pub const KCONFIG_SECTION_INDEX: usize = usize::MAX - 1;
pub const KCONFIG_MAP: &str = ".kconfig";
const BTF_VAR_GLOBAL_ALLOCATED: u32 = 1;
const BPF_PSEUDO_MAP_VALUE: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ExternError {
    #[error("reading the object's externs: {0}")]
    Elf(#[from] object::Error),
    #[error("the object's BTF: {0}")]
    Btf(#[from] BtfRawError),
    #[error(
        "own loader does not support extern `{0}`: only __kconfig and __ksym externs are supported"
    )]
    NotKconfig(String),
    #[error(
        "own loader does not support __kconfig extern `{0}` (libbpf probes the kernel for it)"
    )]
    UnsupportedVirtual(String),
    #[error("__kconfig extern `{0}`: unrecognized virtual extern (a LINUX_ extern the loader does not know must be __weak)")]
    UnknownVirtual(String),
    #[error("__kconfig extern `{0}` has a type the loader does not support (bool, char, tristate, integers and char arrays are)")]
    Type(String),
    #[error("__kconfig extern `{name}` needs the running kernel's config, and neither /boot/config-{release} nor /proc/config.gz exists: build the kernel with CONFIG_IKCONFIG=y and CONFIG_IKCONFIG_PROC=y")]
    NoConfig { name: String, release: String },
    #[error("__kconfig extern `{0}` (strong) is not in the kernel's config")]
    Unresolved(String),
    #[error("__kconfig extern `{name}`: value `{value}` does not fit its type")]
    Value { name: String, value: String },
    #[error("failed to get the kernel version for LINUX_KERNEL_VERSION from uname")]
    Version,
}

/// How libbpf classifies a kconfig extern's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KcfgType {
    Bool,
    Char,
    Tristate,
    Int { signed: bool },
    CharArray,
}

#[derive(Debug, Clone)]
struct Kcfg {
    name: String,
    weak: bool,
    var_offset: usize,
    ty: KcfgType,
    size: usize,
    align: usize,
    offset: usize,
}

/// The object's `__kconfig` externs, laid out and valued: what the `.kconfig` map holds and
/// which instructions point into it.
#[derive(Debug, Clone, Default)]
pub struct Kconfig {
    /// The map's value.
    pub value: Vec<u8>,
    /// Extern name → offset in the value.
    pub offsets: HashMap<String, usize>,
    /// (ELF section index, byte offset of the ld_imm64 in that section, extern name).
    pub references: Vec<(usize, u64, String)>,
}

/// Where the kernel's config comes from; tests give their own.
pub trait KernelFacts {
    fn release(&self) -> String;
    /// `LINUX_KERNEL_VERSION`, 0 if it cannot be told.
    fn version(&self) -> u32;
    /// The config's text, if the kernel has one.
    fn config(&self) -> Option<String>;
}

/// The running kernel (uname, /boot, /proc).
pub struct RunningKernel;

impl KernelFacts for RunningKernel {
    fn release(&self) -> String {
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn version(&self) -> u32 {
        let Ok(uts) = nix::sys::utsname::uname() else {
            return 0;
        };
        let ubuntu = std::fs::read_to_string("/proc/version_signature").ok();
        kernel_version(
            ubuntu.as_deref(),
            &uts.version().to_string_lossy(),
            &uts.release().to_string_lossy(),
        )
    }

    fn config(&self) -> Option<String> {
        let boot = format!("/boot/config-{}", self.release());
        if let Ok(text) = std::fs::read_to_string(&boot) {
            return Some(text);
        }
        // No zlib in the harness: the guest sees the host's root, whose gzip reads it.
        let output = std::process::Command::new("gzip")
            .args(["-dc", "/proc/config.gz"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// libbpf's KERNEL_VERSION(a, b, c), the patch level capped at 255.
pub fn encode_version(major: u32, minor: u32, patch: u32) -> u32 {
    (major << 16) + (minor << 8) + patch.min(255)
}

/// libbpf's get_kernel_version: Ubuntu's /proc/version_signature, then "Debian a.b.c" in
/// uname's version, then uname's release.
pub fn kernel_version(ubuntu_signature: Option<&str>, version: &str, release: &str) -> u32 {
    let triple = |text: &str| -> Option<u32> {
        let digits: String = text
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = digits.split('.').map(|p| p.parse::<u32>().ok());
        let (a, b, c) = (parts.next()??, parts.next()??, parts.next()??);
        Some(encode_version(a, b, c))
    };
    if let Some(sig) = ubuntu_signature {
        // "Ubuntu 5.4.0-12.15-generic 5.4.8"
        if let Some(v) = sig.split_whitespace().nth(2).and_then(triple) {
            return v;
        }
    }
    if let Some(at) = version.find("Debian ") {
        if let Some(v) = triple(&version[at + "Debian ".len()..]) {
            return v;
        }
    }
    triple(release).unwrap_or(0)
}

/// An undefined symbol the object uses: its name and whether it is weak.
struct ExternSymbol {
    index: usize,
    name: String,
    weak: bool,
}

/// Finds the object's externs, checks they are supported, lays out and values the
/// `__kconfig` ones and patches `patched` (the object as aya-obj will parse it; same layout
/// as `original`). `None` when the object has no externs.
pub fn prepare(
    original: &[u8],
    patched: &mut [u8],
    kernel: &dyn KernelFacts,
) -> Result<Option<Kconfig>, ExternError> {
    let file = object::File::parse(original)?;
    let externs: Vec<ExternSymbol> = file
        .symbols()
        .filter(|s| s.is_undefined() && (s.is_global() || s.is_weak()))
        .filter_map(|s| {
            let name = s.name().ok().filter(|n| !n.is_empty())?;
            Some(ExternSymbol {
                index: s.index().0,
                name: name.to_owned(),
                weak: s.is_weak(),
            })
        })
        .collect();
    if externs.is_empty() {
        return Ok(None);
    }
    let Some(btf_section) = file.section_by_name(".BTF") else {
        return Err(ExternError::NotKconfig(externs[0].name.clone()));
    };
    let (btf_start, btf_len) = btf_section
        .file_range()
        .ok_or(ExternError::Btf(BtfRawError::Truncated(".BTF")))?;
    let btf_range = btf_start as usize..(btf_start + btf_len) as usize;
    let btf = &original[btf_range.clone()];
    let parsed = Parsed::new(btf)?;

    let datasec_of = |name: &str| -> Option<&str> {
        parsed
            .types
            .iter()
            .filter(|t| t.kind == kind::DATASEC)
            .find(|sec| {
                parsed.datasec_entries(sec).iter().any(|(id, ..)| {
                    parsed.by_id(*id).is_some_and(|v| {
                        matches!(v.kind, kind::VAR | kind::FUNC) && parsed.name(v) == name
                    })
                })
            })
            .map(|sec| parsed.name(sec))
    };
    let mut kcfgs = Vec::new();
    for ext in &externs {
        match datasec_of(&ext.name) {
            Some(".kconfig") => {}
            Some(".ksyms") => continue,
            _ => return Err(ExternError::NotKconfig(ext.name.clone())),
        }
        let (_, var) = parsed
            .find(kind::VAR, &ext.name)
            .ok_or_else(|| ExternError::NotKconfig(ext.name.clone()))?;
        let (ty, size, align) = kcfg_type(&parsed, var.size_or_type)
            .ok_or_else(|| ExternError::Type(ext.name.clone()))?;
        kcfgs.push(Kcfg {
            name: ext.name.clone(),
            weak: ext.weak,
            var_offset: var.offset,
            ty,
            size,
            align,
            offset: 0,
        });
    }
    if kcfgs.is_empty() {
        return Ok(None);
    }
    let total = lay_out(&mut kcfgs);
    let mut kconfig = Kconfig {
        value: vec![0; total],
        offsets: kcfgs.iter().map(|k| (k.name.clone(), k.offset)).collect(),
        references: Vec::new(),
    };
    fill_values(&kcfgs, &mut kconfig.value, kernel)?;

    // The BTF, as libbpf patches it: DATASEC size and offsets, VARs allocated.
    let btf_out = &mut patched[btf_range];
    if let Some((_, sec)) = parsed.find(kind::DATASEC, ".kconfig") {
        btf_raw::put_u32(btf_out, sec.offset + 8, total as u32);
        // Entries in offset order: 5.10's BTF check refuses a DATASEC whose offsets go back
        // ("Invalid offset"); later kernels and libbpf keep the source order.
        let mut entries: Vec<(u32, u32, u32)> = parsed
            .datasec_entries(sec)
            .into_iter()
            .map(|(var_id, offset, size)| {
                let name = parsed.by_id(var_id).map(|v| parsed.name(v)).unwrap_or("");
                let placed = kconfig.offsets.get(name).map_or(offset, |o| *o as u32);
                (var_id, placed, size)
            })
            .collect();
        entries.sort_by_key(|(_, offset, _)| *offset);
        for (i, (var_id, offset, size)) in entries.into_iter().enumerate() {
            let at = sec.extra() + i * 12;
            btf_raw::put_u32(btf_out, at, var_id);
            btf_raw::put_u32(btf_out, at + 4, offset);
            btf_raw::put_u32(btf_out, at + 8, size);
        }
    }
    for k in &kcfgs {
        btf_raw::put_u32(btf_out, k.var_offset + 12, BTF_VAR_GLOBAL_ALLOCATED);
    }

    // The instructions that name an extern.
    let by_index: HashMap<usize, &str> = externs
        .iter()
        .filter(|e| kconfig.offsets.contains_key(&e.name))
        .map(|e| (e.index, e.name.as_str()))
        .collect();
    for section in file
        .sections()
        .filter(|s| s.kind() == object::SectionKind::Text)
    {
        for (offset, relocation) in section.relocations() {
            if let RelocationTarget::Symbol(symbol) = relocation.target() {
                if let Some(name) = by_index.get(&symbol.0) {
                    kconfig
                        .references
                        .push((section.index().0, offset, (*name).to_owned()));
                }
            }
        }
    }
    Ok(Some(kconfig))
}

/// The synthetic `.kconfig` map: one read-only-to-programs value, frozen after it is written.
pub fn map(kconfig: &Kconfig) -> aya_obj::Map {
    aya_obj::Map::Legacy(aya_obj::maps::LegacyMap {
        def: aya_obj::maps::bpf_map_def {
            map_type: aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 4,
            value_size: kconfig.value.len().max(1) as u32,
            max_entries: 1,
            map_flags: aya_obj::generated::BPF_F_RDONLY_PROG,
            ..Default::default()
        },
        inner_def: None,
        section_index: KCONFIG_SECTION_INDEX,
        section_kind: aya_obj::EbpfSectionKind::Rodata,
        symbol_index: None,
        data: if kconfig.value.is_empty() {
            vec![0]
        } else {
            kconfig.value.clone()
        },
    })
}

/// Points every `ld_imm64` that names an extern at its place in the `.kconfig` map, in the
/// functions aya-obj parsed (before `relocate_calls` copies subprograms into programs).
pub fn relocate(obj: &mut aya_obj::Object, kconfig: &Kconfig, map_fd: i32) {
    for function in obj.functions.values_mut() {
        let start = function.section_offset as u64;
        let end = start + function.instructions.len() as u64 * 8;
        for (section, offset, name) in &kconfig.references {
            if function.section_index.0 != *section || !(start..end).contains(offset) {
                continue;
            }
            let index = ((offset - start) / 8) as usize;
            let Some(value_offset) = kconfig.offsets.get(name) else {
                continue;
            };
            if index + 1 >= function.instructions.len() {
                continue;
            }
            function.instructions[index].set_src_reg(BPF_PSEUDO_MAP_VALUE);
            function.instructions[index].imm = map_fd;
            function.instructions[index + 1].imm = *value_offset as i32;
        }
    }
}

/// Type, size and alignment of a kconfig extern (libbpf's find_kcfg_type).
fn kcfg_type(parsed: &Parsed<'_>, type_id: u32) -> Option<(KcfgType, usize, usize)> {
    let (_, t) = parsed.skip_mods(type_id)?;
    match t.kind {
        kind::INT => {
            let size = t.size_or_type as usize;
            let encoding = btf_raw::u32_at(parsed.data, t.extra()).ok()? >> 24 & 0xf;
            let ty = match encoding {
                4 if size == 1 => KcfgType::Bool,
                2 if size == 1 => KcfgType::Char,
                _ if [1, 2, 4, 8].contains(&size) => KcfgType::Int {
                    signed: encoding & 1 == 1,
                },
                _ => return None,
            };
            Some((ty, size, size.min(8)))
        }
        kind::ENUM if parsed.name(t) == "libbpf_tristate" && t.size_or_type == 4 => {
            Some((KcfgType::Tristate, 4, 4))
        }
        kind::ARRAY => {
            let elem = btf_raw::u32_at(parsed.data, t.extra()).ok()?;
            let count = btf_raw::u32_at(parsed.data, t.extra() + 8).ok()? as usize;
            let (_, e) = parsed.skip_mods(elem)?;
            (e.kind == kind::INT && e.size_or_type == 1).then_some((KcfgType::CharArray, count, 1))
        }
        _ => None,
    }
}

/// libbpf's order (alignment descending, size ascending, name) and aligned offsets; returns
/// the value's size.
fn lay_out(kcfgs: &mut [Kcfg]) -> usize {
    kcfgs.sort_by(|a, b| {
        b.align
            .cmp(&a.align)
            .then(a.size.cmp(&b.size))
            .then(a.name.cmp(&b.name))
    });
    let mut end: usize = 0;
    for k in kcfgs.iter_mut() {
        k.offset = end.div_ceil(k.align) * k.align;
        end = k.offset + k.size;
    }
    end
}

fn fill_values(
    kcfgs: &[Kcfg],
    value: &mut [u8],
    kernel: &dyn KernelFacts,
) -> Result<(), ExternError> {
    let mut config: Option<HashMap<String, String>> = None;
    for k in kcfgs {
        let slot = &mut value[k.offset..k.offset + k.size];
        if k.name.starts_with("CONFIG_") {
            if config.is_none() {
                let text = kernel.config().ok_or_else(|| ExternError::NoConfig {
                    name: k.name.clone(),
                    release: kernel.release(),
                })?;
                config = Some(parse_config(&text));
            }
            match config.as_ref().and_then(|c| c.get(&k.name)) {
                Some(text) => set_config_value(k, text, slot)?,
                None if k.weak => {}
                None => return Err(ExternError::Unresolved(k.name.clone())),
            }
        } else if k.name == "LINUX_KERNEL_VERSION" {
            let version = kernel.version();
            if version == 0 {
                return Err(ExternError::Version);
            }
            set_number(k, u64::from(version), slot)?;
        } else if k.name == "LINUX_HAS_BPF_COOKIE" || k.name == "LINUX_HAS_SYSCALL_WRAPPER" {
            return Err(ExternError::UnsupportedVirtual(k.name.clone()));
        } else if !k.name.starts_with("LINUX_") || !k.weak {
            return Err(ExternError::UnknownVirtual(k.name.clone()));
        }
    }
    Ok(())
}

/// `CONFIG_X=value` lines, and `# CONFIG_X is not set` as `n`.
fn parse_config(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.strip_suffix(" is not set")?;
                return name
                    .starts_with("CONFIG_")
                    .then(|| (name.to_owned(), "n".to_owned()));
            }
            let (name, value) = line.split_once('=')?;
            name.starts_with("CONFIG_")
                .then(|| (name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn set_config_value(k: &Kcfg, text: &str, slot: &mut [u8]) -> Result<(), ExternError> {
    let bad = || ExternError::Value {
        name: k.name.clone(),
        value: text.to_owned(),
    };
    match (k.ty, text) {
        (KcfgType::Bool, "y") | (KcfgType::Tristate, "y") => set_number(k, 1, slot),
        (KcfgType::Bool | KcfgType::Tristate, "n") => set_number(k, 0, slot),
        (KcfgType::Tristate, "m") => set_number(k, 2, slot),
        (KcfgType::Char, "y" | "n" | "m") => {
            slot[0] = text.as_bytes()[0];
            Ok(())
        }
        (KcfgType::CharArray, _) => {
            let inner = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .ok_or_else(bad)?;
            let bytes = inner.as_bytes();
            let n = bytes.len().min(slot.len().saturating_sub(1));
            slot[..n].copy_from_slice(&bytes[..n]);
            Ok(())
        }
        (KcfgType::Int { .. }, _) => {
            let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))
            {
                Some(hex) => (hex, 16),
                None => (text, 10),
            };
            let number = match digits.strip_prefix('-') {
                Some(abs) => u64::from_str_radix(abs, radix).map(u64::wrapping_neg),
                None => u64::from_str_radix(digits, radix),
            };
            set_number(k, number.map_err(|_| bad())?, slot)
        }
        _ => Err(bad()),
    }
}

fn set_number(k: &Kcfg, value: u64, slot: &mut [u8]) -> Result<(), ExternError> {
    let signed = matches!(k.ty, KcfgType::Int { signed: true });
    let fits = k.size == 8
        || if signed {
            let v = value as i64;
            let bits = k.size * 8;
            v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1))
        } else {
            value >> (k.size * 8) == 0
        };
    let bool_like = matches!(k.ty, KcfgType::Bool) && value > 1;
    if !fits || bool_like || matches!(k.ty, KcfgType::CharArray | KcfgType::Char) {
        return Err(ExternError::Value {
            name: k.name.clone(),
            value: value.to_string(),
        });
    }
    slot.copy_from_slice(&value.to_le_bytes()[..k.size]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kcfg(name: &str, size: usize, align: usize) -> Kcfg {
        Kcfg {
            name: name.into(),
            weak: false,
            var_offset: 0,
            ty: KcfgType::Int { signed: false },
            size,
            align,
            offset: 0,
        }
    }

    #[test]
    fn kernel_versions_are_read_like_libbpf() {
        assert_eq!(encode_version(6, 12, 300), 0x060cff);
        assert_eq!(kernel_version(None, "#1 SMP", "6.12.117"), 0x060c75);
        assert_eq!(kernel_version(None, "#1 SMP", "7.2.13-wtp+"), 0x07020d);
        assert_eq!(
            kernel_version(
                None,
                "#1 SMP PREEMPT Debian 6.1.192-2 (2026)",
                "6.1.0-42-amd64"
            ),
            0x0601c0
        );
        assert_eq!(
            kernel_version(
                Some("Ubuntu 5.4.0-12.15-generic 5.4.8\n"),
                "",
                "5.4.0-12-generic"
            ),
            0x050408
        );
        assert_eq!(kernel_version(None, "", "garbage"), 0);
    }

    #[test]
    fn externs_are_laid_out_like_libbpf() {
        let mut kcfgs = vec![
            kcfg("LINUX_KERNEL_VERSION", 4, 4),
            kcfg("CONFIG_HZ", 8, 8),
            kcfg("CONFIG_BPF", 1, 1),
            kcfg("CONFIG_A", 4, 4),
        ];
        let total = lay_out(&mut kcfgs);
        let placed: Vec<(&str, usize)> =
            kcfgs.iter().map(|k| (k.name.as_str(), k.offset)).collect();
        assert_eq!(
            placed,
            [
                ("CONFIG_HZ", 0),
                ("CONFIG_A", 8),
                ("LINUX_KERNEL_VERSION", 12),
                ("CONFIG_BPF", 16)
            ]
        );
        assert_eq!(total, 17);
    }

    #[test]
    fn config_lines_give_values_by_type() {
        let config = parse_config("# comment\nCONFIG_BPF=y\n# CONFIG_KVM is not set\nCONFIG_HZ=250\nCONFIG_NAME=\"wtp\"\nCONFIG_NBD=m\n");
        assert_eq!(config["CONFIG_BPF"], "y");
        assert_eq!(config["CONFIG_KVM"], "n");
        let mut slot = [0u8; 4];
        set_config_value(&kcfg("CONFIG_HZ", 4, 4), &config["CONFIG_HZ"], &mut slot).unwrap();
        assert_eq!(u32::from_le_bytes(slot), 250);
        let tri = Kcfg {
            ty: KcfgType::Tristate,
            ..kcfg("CONFIG_NBD", 4, 4)
        };
        set_config_value(&tri, "m", &mut slot).unwrap();
        assert_eq!(u32::from_le_bytes(slot), 2);
        let boolean = Kcfg {
            ty: KcfgType::Bool,
            ..kcfg("CONFIG_NBD", 1, 1)
        };
        assert!(set_config_value(&boolean, "m", &mut [0]).is_err());
        let name = Kcfg {
            ty: KcfgType::CharArray,
            ..kcfg("CONFIG_NAME", 8, 1)
        };
        let mut text = [0u8; 8];
        set_config_value(&name, &config["CONFIG_NAME"], &mut text).unwrap();
        assert_eq!(&text, b"wtp\0\0\0\0\0");
        let mut small = [0u8; 1];
        assert!(set_config_value(&kcfg("CONFIG_HZ", 1, 1), "250", &mut small).is_ok());
        assert!(set_config_value(&kcfg("CONFIG_HZ", 1, 1), "256", &mut small).is_err());
    }

    /// 6.12.117 without a config file (as the guests here are: no IKCONFIG).
    pub(super) struct NoConfig;
    impl KernelFacts for NoConfig {
        fn release(&self) -> String {
            "6.12.117".into()
        }
        fn version(&self) -> u32 {
            encode_version(6, 12, 117)
        }
        fn config(&self) -> Option<String> {
            None
        }
    }

    #[test]
    fn a_config_extern_without_a_config_names_itself_and_the_fix() {
        let kcfgs = [kcfg("CONFIG_HZ", 4, 4)];
        let error = fill_values(&kcfgs, &mut [0; 4], &NoConfig)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CONFIG_HZ") && error.contains("CONFIG_IKCONFIG_PROC=y"),
            "{error}"
        );
    }

    #[test]
    fn weak_unknown_virtual_externs_are_zero_and_strong_ones_fail() {
        let weak = Kcfg {
            weak: true,
            ..kcfg("LINUX_WHATEVER", 4, 4)
        };
        let version = Kcfg {
            offset: 4,
            ..kcfg("LINUX_KERNEL_VERSION", 4, 4)
        };
        let mut value = [0xffu8; 8];
        value[..4].fill(0);
        fill_values(&[weak, version], &mut value, &NoConfig).unwrap();
        assert_eq!(value, [0, 0, 0, 0, 0x75, 0x0c, 0x06, 0]);
        let strong = kcfg("LINUX_WHATEVER", 4, 4);
        assert!(matches!(
            fill_values(&[strong], &mut [0; 4], &NoConfig),
            Err(ExternError::UnknownVirtual(_))
        ));
    }
}

#[cfg(test)]
mod object_tests {
    //! On a real object: guest-programs/kconfig_weak.bpf.c built by clang 14 -O2 -g.
    use super::tests::NoConfig;
    use super::*;

    const OBJECT: &[u8] = include_bytes!("../../testdata/kconfig_weak.bpf.o");
    const ALL_BTF: aya_obj::btf::BtfFeatures =
        aya_obj::btf::BtfFeatures::new(true, true, true, true, true, true, true, true);

    #[test]
    fn kconfig_externs_get_a_layout_values_and_fixed_btf() {
        let mut patched = crate::loader::sections::hide_writable_marker(OBJECT).unwrap();
        let failure = aya_obj::Object::parse(&patched)
            .ok()
            .and_then(|mut obj| obj.fixup_and_sanitize_btf(&ALL_BTF).err());
        assert!(failure.is_some(), "aya-obj sizes .kconfig now?");
        let kconfig = prepare(OBJECT, &mut patched, &NoConfig).unwrap().unwrap();
        // u64 weak knob first (alignment 8), then the u32 version.
        assert_eq!(kconfig.offsets["LINUX_WTP_NO_SUCH_KNOB"], 0);
        assert_eq!(kconfig.offsets["LINUX_KERNEL_VERSION"], 8);
        assert_eq!(kconfig.value, [0, 0, 0, 0, 0, 0, 0, 0, 0x75, 0x0c, 0x06, 0]);
        assert_eq!(kconfig.references.len(), 2);
        let mut obj = aya_obj::Object::parse(&patched).unwrap();
        obj.fixup_and_sanitize_btf(&ALL_BTF).unwrap();
    }
}
