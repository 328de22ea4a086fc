//! The raw tracepoints a built kernel defines, read from its ELF files: `vmlinux` for the
//! built-in ones, each module's `.ko` for a module's. The writable size and argument count of
//! a raw tracepoint are not exported to userspace (no BTF, no sysfs file holds them); the
//! kernel keeps them in one `struct bpf_raw_event_map` per raw tracepoint, which
//! `include/trace/bpf_probe.h` (`__DEFINE_EVENT`, every tree 5.10 … 7.2) puts in the section
//! `__bpf_raw_tp_map` as the static union `__bpf_trace_tp_map_<name>`:
//!
//! ```c
//! struct bpf_raw_event_map {           /* include/linux/tracepoint-defs.h */
//!         struct tracepoint *tp;       /*  0 */
//!         void *bpf_func;              /*  8 */
//!         u32 num_args;                /* 16 */
//!         u32 writable_size;           /* 20 */
//! } __aligned(32);
//! ```
//!
//! (the same in 5.10.262, 6.1.192, 6.12.117 and 7.2.13). `bpf_probe_register` compares a
//! program with exactly these two numbers. In `vmlinux` the linker script gathers the section
//! into a bigger one (`BPF_RAW_TP()` in include/asm-generic/vmlinux.lds.h), so the entries are
//! found by their symbols, which vmlinux keeps (it is not stripped); in a `.ko` (relocatable)
//! the section is there by name and a symbol's value is its offset in it. The two integers
//! need no relocation (only `tp` and `bpf_func` have one), so the file's bytes are the values
//! the kernel uses.
//!
//! Reading is pure over the bytes ([`writable_in`]); [`of_kernel`] maps the files, so only
//! the pages it reads come in (vmlinux with its debug info is 80 MB and more; reading its
//! symbols through `object`'s `ReadCache`, a read per range, took 0.2 s of every run).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, ReadRef, SymbolKind};
use serde::{Deserialize, Serialize};

/// The symbol prefix `__DEFINE_EVENT` gives each entry.
pub const SYMBOL_PREFIX: &str = "__bpf_trace_tp_map_";
/// The section the entries are put in.
pub const SECTION: &str = "__bpf_raw_tp_map";
/// `sizeof(struct bpf_raw_event_map)` on a 64-bit kernel (`__aligned(32)`).
const ENTRY_SIZE: u64 = 32;
/// `offsetof(struct bpf_raw_event_map, num_args)`; `writable_size` follows it.
const NUM_ARGS_AT: usize = 16;

/// One raw tracepoint as the kernel's `struct bpf_raw_event_map` describes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RawTracepoint {
    /// The name BPF_RAW_TRACEPOINT_OPEN takes (the kernel's own: 7.2's `..._tp` suffix kept).
    pub name: String,
    pub num_args: u32,
    pub writable_size: u32,
    /// The module (`.ko`) that defines it; `None`: vmlinux.
    pub module: Option<PathBuf>,
}

/// Every raw tracepoint an ELF file (vmlinux or a module) defines, in symbol order:
/// `(name, num_args, writable_size)`. Pure over `data`.
pub fn all_in<'data, R: ReadRef<'data>>(data: R) -> Result<Vec<(String, u32, u32)>> {
    let file = object::File::parse(data).context("parsing the ELF file")?;
    let little = file.is_little_endian();
    let mut found = Vec::new();
    for symbol in file.symbols() {
        let Ok(name) = symbol.name() else { continue };
        let Some(tracepoint) = name.strip_prefix(SYMBOL_PREFIX) else {
            continue;
        };
        if symbol.kind() != SymbolKind::Data || symbol.is_undefined() {
            continue;
        }
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let section = file
            .section_by_index(index)
            .with_context(|| format!("the section of {name}"))?;
        if symbol.size() != 0 && symbol.size() < ENTRY_SIZE {
            bail!(
                "{name} is {} bytes, not a struct bpf_raw_event_map ({ENTRY_SIZE})",
                symbol.size()
            );
        }
        let Some((offset, size)) = section.file_range() else {
            bail!("{name} lies in a section without file data");
        };
        // In a relocatable file a symbol's value is its offset in its section (whose address
        // is 0); in a linked one both are addresses.
        let within = symbol
            .address()
            .checked_sub(section.address())
            .filter(|within| within + ENTRY_SIZE <= size)
            .with_context(|| format!("{name} lies outside its section"))?;
        let entry = data
            .read_bytes_at(offset + within, ENTRY_SIZE)
            .map_err(|()| anyhow::anyhow!("reading {name}'s {ENTRY_SIZE} bytes"))?;
        let word = |at: usize| {
            let bytes: [u8; 4] = entry[at..at + 4].try_into().expect("4 bytes");
            match little {
                true => u32::from_le_bytes(bytes),
                false => u32::from_be_bytes(bytes),
            }
        };
        found.push((
            tracepoint.to_owned(),
            word(NUM_ARGS_AT),
            word(NUM_ARGS_AT + 4),
        ));
    }
    Ok(found)
}

/// The writable ones (`writable_size > 0`) of [`all_in`].
pub fn writable_in<'data, R: ReadRef<'data>>(data: R) -> Result<Vec<(String, u32, u32)>> {
    let mut found = all_in(data)?;
    found.retain(|(_, _, writable_size)| *writable_size > 0);
    Ok(found)
}

/// Every writable raw tracepoint of a built kernel: `vmlinux`'s, then each module's (the
/// modules the guest loads), sorted by name within each file.
pub fn of_kernel(vmlinux: &Path, modules: &[PathBuf]) -> Result<Vec<RawTracepoint>> {
    let mut found = Vec::new();
    for (path, module) in std::iter::once((vmlinux, None)).chain(
        modules
            .iter()
            .map(|module| (module.as_path(), Some(module.clone()))),
    ) {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the kernel cache's files are written once, by the build that made the entry,
        // and the entry is held under a shared lock while a run uses it; a local tree's files
        // change only when the user rebuilds it during the run, which would change what is
        // booted anyway.
        let mapped = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        let mut here = writable_in(&mapped[..])
            .with_context(|| format!("reading the raw tracepoints of {}", path.display()))?;
        here.sort();
        found.extend(
            here.into_iter()
                .map(|(name, num_args, writable_size)| RawTracepoint {
                    name,
                    num_args,
                    writable_size,
                    module: module.clone(),
                }),
        );
    }
    Ok(found)
}

#[cfg(test)]
pub mod tests {
    use object::elf;
    use object::write::elf::{FileHeader, SectionHeader, Sym, Writer};
    use object::Endianness;

    use super::*;

    /// An entry as the kernel lays it out: `tp` and `bpf_func` (here garbage, as a `.ko`'s
    /// unrelocated zeros would be), `num_args`, `writable_size`, padding to 32.
    fn entry(num_args: u32, writable_size: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(0xffff_ffff_8100_0000u64.to_le_bytes());
        bytes.extend(0xffff_ffff_8100_1000u64.to_le_bytes());
        bytes.extend(num_args.to_le_bytes());
        bytes.extend(writable_size.to_le_bytes());
        bytes.resize(32, 0);
        bytes
    }

    /// A small x86-64 ELF with one data section at `address` holding `lead` bytes of other data
    /// and then the entries, each with its local object symbol, plus one unrelated symbol:
    /// `relocatable` makes a `.ko`-like file (section `__bpf_raw_tp_map`, address 0, symbol
    /// values are offsets), else a `vmlinux`-like one (`.rodata` at an address, symbol
    /// values are addresses).
    pub fn elf(relocatable: bool, lead: usize, entries: &[(&str, u32, u32)]) -> Vec<u8> {
        let (section_name, address): (&[u8], u64) = match relocatable {
            true => (SECTION.as_bytes(), 0),
            false => (b".rodata", 0xffff_ffff_8220_0000),
        };
        let mut data = vec![0x5a; lead];
        for (_, num_args, writable_size) in entries {
            data.extend(entry(*num_args, *writable_size));
        }
        let names: Vec<Vec<u8>> = entries
            .iter()
            .map(|(name, ..)| format!("{SYMBOL_PREFIX}{name}").into_bytes())
            .collect();
        let mut out = Vec::new();
        let mut w = Writer::new(Endianness::Little, true, &mut out);
        w.reserve_file_header();
        w.reserve_null_section_index();
        let section_name = w.add_section_name(section_name);
        let section = w.reserve_section_index();
        let data_offset = w.reserve(data.len(), 32);
        w.reserve_null_symbol_index();
        let other = w.add_string(b"__tracepoint_unrelated");
        w.reserve_symbol_index(Some(section));
        let ids: Vec<_> = names.iter().map(|name| w.add_string(name)).collect();
        for _ in &ids {
            w.reserve_symbol_index(Some(section));
        }
        w.reserve_symtab_section_index();
        w.reserve_symtab();
        w.reserve_strtab_section_index();
        w.reserve_strtab();
        w.reserve_shstrtab_section_index();
        w.reserve_shstrtab();
        w.reserve_section_headers();

        w.write_file_header(&FileHeader {
            os_abi: 0,
            abi_version: 0,
            e_type: if relocatable {
                elf::ET_REL
            } else {
                elf::ET_EXEC
            },
            e_machine: elf::EM_X86_64,
            e_entry: 0,
            e_flags: 0,
        })
        .unwrap();
        w.write_align(32);
        w.write(&data);
        w.write_null_symbol();
        let symbol = |name, value, size| Sym {
            name: Some(name),
            section: Some(section),
            st_info: (elf::STB_LOCAL << 4) | elf::STT_OBJECT,
            st_other: 0,
            st_shndx: 0,
            st_value: value,
            st_size: size,
        };
        w.write_symbol(&symbol(other, address, lead as u64));
        for (i, id) in ids.iter().enumerate() {
            let value = address + (lead + 32 * i) as u64;
            w.write_symbol(&symbol(*id, value, 32));
        }
        w.write_strtab();
        w.write_shstrtab();
        w.write_null_section_header();
        w.write_section_header(&SectionHeader {
            name: Some(section_name),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: (elf::SHF_ALLOC | elf::SHF_WRITE) as u64,
            sh_addr: address,
            sh_offset: data_offset as u64,
            sh_size: data.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 32,
            sh_entsize: 0,
        });
        w.write_symtab_section_header(2 + ids.len() as u32);
        w.write_strtab_section_header();
        w.write_shstrtab_section_header();
        out
    }

    fn owned(found: &[(&str, u32, u32)]) -> Vec<(String, u32, u32)> {
        found
            .iter()
            .map(|(name, args, size)| (name.to_string(), *args, *size))
            .collect()
    }

    #[test]
    fn a_modules_entries_are_read_at_their_offsets_in_the_section() {
        let entries = [
            ("bpf_testmod_test_read", 2, 0),
            ("bpf_testmod_test_writable_bare", 1, 8),
            ("bpf_testmod_test_write_bare", 2, 0),
        ];
        let ko = elf(true, 0, &entries);
        assert_eq!(all_in(&*ko).unwrap(), owned(&entries));
        assert_eq!(
            writable_in(&*ko).unwrap(),
            owned(&[("bpf_testmod_test_writable_bare", 1, 8)])
        );
    }

    #[test]
    fn vmlinuxs_entries_are_found_by_address_inside_a_bigger_section() {
        let entries = [
            ("bpf_test_finish", 1, 4),
            ("sched_switch", 4, 0),
            ("nbd_send_request", 3, 28),
        ];
        let vmlinux = elf(false, 96, &entries);
        assert_eq!(
            writable_in(&*vmlinux).unwrap(),
            owned(&[("bpf_test_finish", 1, 4), ("nbd_send_request", 3, 28)])
        );
    }

    #[test]
    fn files_are_read_in_place_vmlinux_first_each_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let vmlinux = dir.path().join("vmlinux");
        let ko = dir.path().join("m.ko");
        let entries = [("nbd_send_request", 3, 28), ("bpf_test_finish", 1, 4)];
        std::fs::write(&vmlinux, elf(false, 8, &entries)).unwrap();
        std::fs::write(&ko, elf(true, 0, &[("own", 2, 16)])).unwrap();
        let found = of_kernel(&vmlinux, std::slice::from_ref(&ko)).unwrap();
        let tp = |name: &str, num_args, writable_size, module: Option<&PathBuf>| RawTracepoint {
            name: name.into(),
            num_args,
            writable_size,
            module: module.cloned(),
        };
        assert_eq!(
            found,
            [
                tp("bpf_test_finish", 1, 4, None),
                tp("nbd_send_request", 3, 28, None),
                tp("own", 2, 16, Some(&ko)),
            ]
        );
        let missing = of_kernel(&dir.path().join("none"), &[]).unwrap_err();
        assert!(format!("{missing:#}").contains("opening"), "{missing:#}");
        std::fs::write(&vmlinux, b"not an ELF file").unwrap();
        let garbage = of_kernel(&vmlinux, &[]).unwrap_err();
        assert!(format!("{garbage:#}").contains("parsing"), "{garbage:#}");
    }
}
