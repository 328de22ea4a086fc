//! ELF-level facts about a BPF object that aya-obj cannot give us for writable programs.
//!
//! aya-obj refuses any object with a `raw_tp.w/...` section (aya issue #218). We keep the
//! libbpf names in the C sources (so libbpf and bpftool load the same objects) and, before
//! handing the bytes to aya-obj, rewrite the writable marker `.w` to `/w` in every string
//! table: `raw_tp.w/foo` becomes `raw_tp/w/foo`, which aya-obj parses as a raw tracepoint
//! section. The rewrite keeps every string's length, so no string offset moves and strings
//! that share a tail with a section name (linkers merge tails) keep their bytes. The program
//! type is decided here from the original name, never from what aya-obj thinks.

use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SymbolKind};

use protocol::ProgType;

/// libbpf section prefixes of the programs the loader loads: raw tracepoints, writable ones
/// first (longest match wins), extensions (`freplace/<function>`) and `syscall` programs
/// (libbpf's `SEC_DEF("syscall", SYSCALL, 0, SEC_SLEEPABLE)`: the name alone), which a case
/// loads only as a static prog array's target.
const PROGRAM_PREFIXES: &[(&str, ProgType)] = &[
    ("raw_tracepoint.w", ProgType::RawTracepointWritable),
    ("raw_tp.w", ProgType::RawTracepointWritable),
    ("raw_tracepoint", ProgType::RawTracepoint),
    ("raw_tp", ProgType::RawTracepoint),
    ("freplace", ProgType::Extension),
    ("syscall", ProgType::Syscall),
];

/// What aya-obj is shown for a `syscall` section, a kind it does not parse: a name of the same
/// length that it parses as a program section (`socket/`, a socket filter; with libbpf's `?`,
/// `socket/?`). What aya-obj thinks the type is never matters: the type comes from the original
/// name ([`classify`]).
const SYSCALL_AS: [(&[u8], &[u8]); 2] = [(b"?syscall", b"socket/?"), (b"syscall", b"socket/")];

/// A program section as libbpf names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSection {
    pub index: usize,
    pub name: String,
    pub prog_type: ProgType,
    /// The part after the first `/`: the tracepoint libbpf would attach to, or the function
    /// an extension replaces.
    pub target: Option<String>,
}

/// A global variable: where it lives inside its section's array map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSymbol {
    pub section: String,
    pub offset: usize,
    pub size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    #[error("not a 64-bit little-endian ELF BPF object: {0}")]
    Elf(#[from] object::Error),
    #[error("the .BTF section is malformed: {0}")]
    Btf(&'static str),
}

/// Classifies a section name as a raw tracepoint (or extension) program section. libbpf's
/// leading `?` (not loaded unless asked for: upstream's selftests mark most programs so) does
/// not change what the program is; the loader loads the one program a case names anyway.
pub fn classify(name: &str) -> Option<(ProgType, Option<String>)> {
    let name = name.strip_prefix('?').unwrap_or(name);
    PROGRAM_PREFIXES.iter().find_map(|(prefix, prog_type)| {
        let rest = name.strip_prefix(prefix)?;
        if *prog_type == ProgType::Syscall {
            return rest.is_empty().then_some((*prog_type, None));
        }
        match rest.strip_prefix('/') {
            Some(tracepoint) if !tracepoint.is_empty() => {
                Some((*prog_type, Some(tracepoint.into())))
            }
            Some(_) => None,
            None if rest.is_empty() => Some((*prog_type, None)),
            None => None,
        }
    })
}

/// The raw tracepoint and extension program sections of an object, in section order.
pub fn program_sections(data: &[u8]) -> Result<Vec<ProgramSection>, SectionError> {
    let file = object::File::parse(data)?;
    Ok(file
        .sections()
        .filter_map(|section| {
            let name = section.name().ok()?;
            let (prog_type, target) = classify(name)?;
            Some(ProgramSection {
                index: section.index().0,
                name: name.to_owned(),
                prog_type,
                target,
            })
        })
        .collect())
}

/// The bytes of the section named `name` (empty if there is none).
pub fn section_data(data: &[u8], name: &str) -> Result<Vec<u8>, SectionError> {
    let file = object::File::parse(data)?;
    match file.section_by_name(name) {
        Some(section) => Ok(section.data()?.to_vec()),
        None => Ok(Vec::new()),
    }
}

/// The name of the section that defines symbol `name` (a function: its program section).
pub fn symbol_section(data: &[u8], name: &str) -> Result<Option<String>, SectionError> {
    let file = object::File::parse(data)?;
    let Some(symbol) = file.symbols().find(|s| s.name() == Ok(name)) else {
        return Ok(None);
    };
    let Some(index) = symbol.section_index() else {
        return Ok(None);
    };
    Ok(Some(file.section_by_index(index)?.name()?.to_owned()))
}

/// Where the named global variable lives, if the object defines it.
pub fn global_symbol(data: &[u8], name: &str) -> Result<Option<GlobalSymbol>, SectionError> {
    let file = object::File::parse(data)?;
    for symbol in file.symbols() {
        if symbol.kind() != SymbolKind::Data || symbol.name() != Ok(name) {
            continue;
        }
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let section = file.section_by_index(index)?;
        return Ok(Some(GlobalSymbol {
            section: section.name()?.to_owned(),
            offset: symbol.address() as usize,
            size: symbol.size() as usize,
        }));
    }
    Ok(None)
}

/// The object as aya-obj can parse it: writable markers hidden ([`hide_writable_marker`]) and
/// program sections of types aya-obj does not know (`fmod_ret/`, `struct_ops/`, `tc`...)
/// turned into plain data, so one program of a kind this project never runs does not fail the
/// whole object. Returns the bytes and the names of the sections so hidden.
pub fn prepare_for_aya(data: &[u8]) -> Result<(Vec<u8>, Vec<String>), SectionError> {
    let mut patched = hide_writable_marker(data)?;
    let mut hidden = Vec::new();
    for (name, flags_offset) in foreign_program_sections(data)? {
        let flags = u64::from_le_bytes(patched[flags_offset..flags_offset + 8].try_into().unwrap());
        let flags = flags & !u64::from(object::elf::SHF_EXECINSTR);
        patched[flags_offset..flags_offset + 8].copy_from_slice(&flags.to_le_bytes());
        hidden.push(name);
    }
    drop_core_relos(data, &mut patched, &hidden)?;
    Ok((patched, hidden))
}

/// Takes the CO-RE relocation records of the hidden sections out of `.BTF.ext` (libbpf does
/// not relocate programs it does not load): aya-obj relocates every section the records name
/// and fails on one that has no function ("error relocating `?tc`: function not found"). The
/// later blocks move up and `core_relo_len` shrinks; the section keeps its size.
fn drop_core_relos(data: &[u8], patched: &mut [u8], hidden: &[String]) -> Result<(), SectionError> {
    if hidden.is_empty() {
        return Ok(());
    }
    let file = object::File::parse(data)?;
    let Some((ext_at, ext_len)) = file
        .section_by_name(".BTF.ext")
        .and_then(|s| s.file_range())
    else {
        return Ok(());
    };
    let Some(strings) = btf_strings(data)? else {
        return Ok(());
    };
    let ext = &data[ext_at as usize..(ext_at + ext_len) as usize];
    let u32_at = |at: usize| -> Result<usize, SectionError> {
        let bytes = (ext.get(at..at + 4)).ok_or(SectionError::Btf(".BTF.ext cut short"))?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap()) as usize)
    };
    let header_len = u32_at(4)?;
    // core_relo_off and core_relo_len follow func_info's and line_info's in a 32-byte header.
    if header_len < 32 {
        return Ok(());
    }
    let (relo_off, relo_len) = (u32_at(24)?, u32_at(28)?);
    let start = header_len + relo_off;
    if relo_len < 4 || start + relo_len > ext.len() {
        return Ok(());
    }
    let record_size = u32_at(start)?;
    let mut kept = Vec::with_capacity(relo_len);
    kept.extend_from_slice(&ext[start..start + 4]);
    let mut at = start + 4;
    while at + 8 <= start + relo_len {
        let (name_off, count) = (u32_at(at)?, u32_at(at + 4)?);
        let end = at + 8 + count * record_size;
        if end > start + relo_len {
            return Err(SectionError::Btf(
                ".BTF.ext core_relo block runs past its subsection",
            ));
        }
        let name_at = strings.start + name_off;
        let name_end = (data[name_at..strings.end].iter().position(|b| *b == 0))
            .map_or(strings.end, |n| name_at + n);
        let name = std::str::from_utf8(&data[name_at..name_end]).unwrap_or("");
        if !hidden.iter().any(|h| h == name) {
            kept.extend_from_slice(&ext[at..end]);
        }
        at = end;
    }
    let base = ext_at as usize;
    patched[base + start..base + start + kept.len()].copy_from_slice(&kept);
    patched[base + 28..base + 32].copy_from_slice(&(kept.len() as u32).to_le_bytes());
    Ok(())
}

/// Executable sections aya-obj would refuse, with the file offset of each one's `sh_flags`.
fn foreign_program_sections(data: &[u8]) -> Result<Vec<(String, usize)>, SectionError> {
    let file = ElfFile64::<Endianness>::parse(data)?;
    let endian = file.endian();
    let header = file.elf_header();
    let table = header.e_shoff(endian) as usize;
    let entry = header.e_shentsize(endian) as usize;
    let sections = header.sections(endian, data)?;
    let mut foreign = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let executable = section.sh_flags(endian) & u64::from(object::elf::SHF_EXECINSTR) != 0;
        let name = String::from_utf8_lossy(sections.section_name(endian, section)?).into_owned();
        let known = name.starts_with(".text")
            || classify(&name).is_some()
            || name.parse::<aya_obj::ProgramSection>().is_ok()
            || moved_name(&name).is_some();
        if executable && section.sh_size(endian) > 0 && !known {
            // sh_flags follows sh_name (u32) and sh_type (u32) in an Elf64_Shdr.
            foreign.push((name, table + index * entry + 8));
        }
    }
    Ok(foreign)
}

/// A copy of `data` in which writable raw tracepoint section names read as plain ones (and
/// `?`-marked and `syscall` ones as names aya-obj parses), in the ELF section names and in the
/// .BTF string table (which .BTF.ext uses to name sections).
pub fn hide_writable_marker(data: &[u8]) -> Result<Vec<u8>, SectionError> {
    let mut patched = data.to_vec();
    // LLVM merges string tails: `raw_tp.w/x` is stored inside `.relraw_tp.w/x`, so section
    // names are patched where each header points, not where a string starts. Two renamed
    // names may share bytes (`syscall` inside `?syscall`, which become `socket/` and
    // `socket/?`): the longer keeps its place and the other's header is pointed at another
    // copy of its name in the table (`.relsyscall`'s tail) whose bytes no rename claims, or,
    // where there is none, at its new name appended to a copy of the table put at the end of
    // the file (nothing before the end moves, so every offset into the object still holds).
    let (table, mut renames) = section_renames(data)?;
    let mut appended: Vec<(usize, Vec<u8>)> = Vec::new();
    renames.sort_by_key(|rename| std::cmp::Reverse(rename.name.len()));
    let mut claimed: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
    for rename in renames {
        let len = rename.name.len();
        let fits = |at: usize| {
            claimed.iter().all(|(range, bytes)| {
                let overlaps = range.start < at + len && at < range.end;
                !overlaps || (range.start == at && *bytes == rename.shown)
            })
        };
        let at = std::iter::once(rename.at).chain(
            (table.start..table.end.saturating_sub(len))
                .filter(|at| data[*at..=at + len] == [&rename.name[..], b"\0"].concat()),
        );
        let Some(at) = at.into_iter().find(|at| fits(*at)) else {
            appended.push((rename.sh_name_field, rename.shown));
            continue;
        };
        if at != rename.at {
            let sh_name = (at - table.start) as u32;
            patched[rename.sh_name_field..rename.sh_name_field + 4]
                .copy_from_slice(&sh_name.to_le_bytes());
        }
        patched[at..at + len].copy_from_slice(&rename.shown);
        claimed.push((at..at + len, rename.shown));
    }
    if !appended.is_empty() {
        append_names(data, &mut patched, table, &appended)?;
    }
    if let Some(range) = btf_strings(data)? {
        rewrite_markers(&mut patched[range]);
    }
    Ok(patched)
}

/// Moves the section name table (already patched in place) to the end of `patched` with
/// `names` appended, each `(sh_name field, name)` pointed at its own.
fn append_names(
    data: &[u8],
    patched: &mut Vec<u8>,
    table: std::ops::Range<usize>,
    names: &[(usize, Vec<u8>)],
) -> Result<(), SectionError> {
    let file = ElfFile64::<Endianness>::parse(data)?;
    let endian = file.endian();
    let header = file.elf_header();
    let index = header.shstrndx(endian, data)? as usize;
    let table_header =
        header.e_shoff(endian) as usize + index * header.e_shentsize(endian) as usize;
    let mut copy = patched[table.clone()].to_vec();
    for (sh_name_field, name) in names {
        let sh_name = copy.len() as u32;
        patched[*sh_name_field..sh_name_field + 4].copy_from_slice(&sh_name.to_le_bytes());
        copy.extend_from_slice(name);
        copy.push(0);
    }
    let offset = patched.len() as u64;
    // sh_offset and sh_size of an Elf64_Shdr, at bytes 24 and 32.
    patched[table_header + 24..table_header + 32].copy_from_slice(&offset.to_le_bytes());
    patched[table_header + 32..table_header + 40]
        .copy_from_slice(&(copy.len() as u64).to_le_bytes());
    patched.extend_from_slice(&copy);
    Ok(())
}

/// A section name to show aya-obj otherwise: where its header's `sh_name` field lies in the
/// file, where the name lies, the name and what it becomes (the same length).
struct Rename {
    sh_name_field: usize,
    at: usize,
    name: Vec<u8>,
    shown: Vec<u8>,
}

/// The section name table's file range, and the renames of writable raw tracepoint sections,
/// `?`-marked and `syscall` ones.
fn section_renames(data: &[u8]) -> Result<(std::ops::Range<usize>, Vec<Rename>), SectionError> {
    let file = ElfFile64::<Endianness>::parse(data)?;
    let endian = file.endian();
    let header = file.elf_header();
    let table = header.e_shoff(endian) as usize;
    let entry = header.e_shentsize(endian) as usize;
    let sections = header.sections(endian, data)?;
    let names = sections.section(object::SectionIndex(header.shstrndx(endian, data)? as usize))?;
    let (names_offset, names_size) = names.file_range(endian).unwrap_or((0, 0));
    let (names_offset, names_size) = (names_offset as usize, names_size as usize);
    let mut renames = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let name = sections.section_name(endian, section)?;
        let marked = std::str::from_utf8(name)
            .ok()
            .and_then(moved_name)
            .is_some();
        let rewritten = std::str::from_utf8(name)
            .ok()
            .and_then(classify)
            .is_some_and(|(prog_type, _)| {
                matches!(
                    prog_type,
                    ProgType::RawTracepointWritable | ProgType::Syscall
                )
            });
        if rewritten || marked {
            let mut shown = name.to_vec();
            rewrite_one(&mut shown);
            renames.push(Rename {
                // sh_name is the first field of an Elf64_Shdr.
                sh_name_field: table + index * entry,
                at: names_offset + section.sh_name(endian) as usize,
                name: name.to_vec(),
                shown,
            });
        }
    }
    Ok((names_offset..names_offset + names_size, renames))
}

fn btf_strings(data: &[u8]) -> Result<Option<std::ops::Range<usize>>, SectionError> {
    let file = object::File::parse(data)?;
    let Some((offset, size)) = file.section_by_name(".BTF").and_then(|s| s.file_range()) else {
        return Ok(None);
    };
    let (offset, size) = (offset as usize, size as usize);
    let strings = btf_string_range(&data[offset..offset + size])?;
    Ok(Some(offset + strings.start..offset + strings.end))
}

/// The string area of a .BTF section: after the header, at `str_off` for `str_len` bytes.
fn btf_string_range(btf: &[u8]) -> Result<std::ops::Range<usize>, SectionError> {
    const BTF_MAGIC: u16 = 0xeb9f;
    let u32_at = |at: usize| -> Result<usize, SectionError> {
        let bytes = btf
            .get(at..at + 4)
            .ok_or(SectionError::Btf("header cut short"))?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap()) as usize)
    };
    let magic = btf.get(0..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if magic != Some(BTF_MAGIC) {
        return Err(SectionError::Btf("bad magic (not little-endian BTF)"));
    }
    let (header_len, str_off, str_len) = (u32_at(4)?, u32_at(16)?, u32_at(20)?);
    let start = header_len + str_off;
    let end = start + str_len;
    if end > btf.len() {
        return Err(SectionError::Btf("string table runs past the section"));
    }
    Ok(start..end)
}

/// In a NUL-separated string table, turns `raw_tp.w` / `raw_tracepoint.w` at the start of a
/// string, followed by `/` or the string's end, into `raw_tp/w` / `raw_tracepoint/w`.
fn rewrite_markers(table: &mut [u8]) {
    let mut start = 0;
    while start < table.len() {
        let end = table[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(table.len(), |n| start + n);
        rewrite_one(&mut table[start..end]);
        start = end + 1;
    }
}

/// Rewrites the marker if `string` (which may run on past its NUL) starts with one. With
/// libbpf's `?` in front (of a writable section or a plain one), the `?` moves behind the kind
/// and a `/` (`?raw_tp.w/x` → `raw_tp/?w/x`, `?raw_tp/x` → `raw_tp/?x`, `?raw_tp` → `raw_tp/`,
/// the same length): aya-obj parses `raw_tp/...`, does not read what follows for a raw
/// tracepoint, and knows no `?`.
fn rewrite_one(string: &mut [u8]) {
    for (name, shown) in SYSCALL_AS {
        if string.starts_with(name) && matches!(string.get(name.len()), None | Some(0)) {
            string[..name.len()].copy_from_slice(shown);
            return;
        }
    }
    if string.first() == Some(&b'?') {
        move_question_mark(string);
        return;
    }
    for prefix in [&b"raw_tracepoint.w"[..], b"raw_tp.w"] {
        let Some(rest) = string.strip_prefix(prefix) else {
            continue;
        };
        if matches!(rest.first(), None | Some(b'/' | b'\0')) {
            let dot = prefix.len() - 2;
            string[dot] = b'/';
        }
        return;
    }
}

/// `?<kind><rest>` → `<kind>/?<rest without its first byte>` for the raw tracepoint kinds,
/// where the rest is nothing, `/...`, or `.w` (the writable marker) and nothing or `/...`;
/// `?<kind>/<rest>` → `<kind>/?<rest>` for the other kinds aya-obj parses once the `?` is gone
/// (`?fexit/f` → `fexit/?f`: its programs are parsed and CO-RE relocated like the rest of the
/// object, though never loaded; hidden, their `.BTF.ext` records would name no function).
fn move_question_mark(string: &mut [u8]) {
    let len = string.iter().position(|b| *b == 0).unwrap_or(string.len());
    let Some(moved) = std::str::from_utf8(&string[..len])
        .ok()
        .and_then(moved_name)
    else {
        return;
    };
    string[..len].copy_from_slice(moved.as_bytes());
}

/// The name aya-obj is shown for a section libbpf marks with `?` (see [`move_question_mark`]),
/// if the section is one it can parse that way.
fn moved_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix('?')?;
    for kind in ["raw_tracepoint", "raw_tp"] {
        let Some(after) = rest.strip_prefix(kind) else {
            continue;
        };
        let tail = after.strip_prefix(".w").unwrap_or(after);
        if !(tail.is_empty() || tail.starts_with('/')) {
            return None;
        }
        return Some(match after.is_empty() {
            true => format!("{kind}/"),
            false => format!("{kind}/?{}", &after[1..]),
        });
    }
    let (kind, after) = rest.split_once('/')?;
    let moved = format!("{kind}/?{after}");
    moved
        .parse::<aya_obj::ProgramSection>()
        .is_ok()
        .then_some(moved)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("raw_tp.w/bpf_testmod_test_writable_bare", Some((ProgType::RawTracepointWritable, Some("bpf_testmod_test_writable_bare"))))]
    #[case("raw_tracepoint.w/nbd_send_request", Some((ProgType::RawTracepointWritable, Some("nbd_send_request"))))]
    #[case("raw_tp/bpf_testmod_test_read", Some((ProgType::RawTracepoint, Some("bpf_testmod_test_read"))))]
    #[case("raw_tracepoint/x", Some((ProgType::RawTracepoint, Some("x"))))]
    #[case("raw_tp.w", Some((ProgType::RawTracepointWritable, None)))]
    #[case("raw_tp", Some((ProgType::RawTracepoint, None)))]
    #[case("raw_tp/", None)]
    #[case("?raw_tp.w/xyz", Some((ProgType::RawTracepointWritable, Some("xyz"))))]
    #[case("?raw_tracepoint.w", Some((ProgType::RawTracepointWritable, None)))]
    #[case("raw_tp.writable/x", None)]
    #[case("tp_btf/x", None)]
    #[case(".bss", None)]
    #[case("syscall", Some((ProgType::Syscall, None)))]
    #[case("?syscall", Some((ProgType::Syscall, None)))]
    #[case("syscall/x", None)]
    #[case("syscalls", None)]
    fn section_names_classify_like_libbpf(
        #[case] name: &str,
        #[case] expected: Option<(ProgType, Option<&str>)>,
    ) {
        let expected = expected.map(|(t, tp)| (t, tp.map(String::from)));
        assert_eq!(classify(name), expected);
    }

    #[rstest]
    #[case(b"raw_tp.w/foo", b"raw_tp/w/foo")]
    #[case(b"raw_tracepoint.w/foo", b"raw_tracepoint/w/foo")]
    #[case(b"raw_tp.w", b"raw_tp/w")]
    #[case(b"raw_tp/foo", b"raw_tp/foo")]
    #[case(b"raw_tp.wx/foo", b"raw_tp.wx/foo")]
    #[case(b"my_raw_tp.w/foo", b"my_raw_tp.w/foo")]
    #[case(b"?raw_tp.w/xyz", b"raw_tp/?w/xyz")]
    #[case(b"?raw_tracepoint.w", b"raw_tracepoint/?w")]
    #[case(b"?raw_tp", b"raw_tp/")]
    #[case(b"?raw_tp/bpf_testmod_test_read", b"raw_tp/?bpf_testmod_test_read")]
    #[case(b"?raw_tp.wx/y", b"?raw_tp.wx/y")]
    #[case(b"?fexit/bpf_testmod_return_ptr", b"fexit/?bpf_testmod_return_ptr")]
    #[case(b"?no_such_kind/x", b"?no_such_kind/x")]
    #[case(b"?tp_btf/x", b"tp_btf/?x")]
    #[case(b".text", b".text")]
    #[case(b"syscall", b"socket/")]
    #[case(b"?syscall", b"socket/?")]
    #[case(b"syscalls", b"syscalls")]
    #[case(b"my_syscall", b"my_syscall")]
    fn marker_rewrite_keeps_length_and_touches_only_section_prefixes(
        #[case] before: &[u8],
        #[case] after: &[u8],
    ) {
        let mut table = [&b"\0"[..], before, b"\0.bss\0"].concat();
        rewrite_markers(&mut table);
        assert_eq!(table, [&b"\0"[..], after, b"\0.bss\0"].concat());
    }

    #[test]
    fn every_string_in_a_table_is_rewritten() {
        let mut table = b"raw_tp.w/a\0raw_tp.w/b\0license\0raw_tracepoint.w".to_vec();
        rewrite_markers(&mut table);
        assert_eq!(
            &table[..],
            b"raw_tp/w/a\0raw_tp/w/b\0license\0raw_tracepoint/w"
        );
    }

    #[test]
    fn btf_string_range_reads_the_header() {
        // magic, version 1, flags 0, hdr_len 24, type_off 0, type_len 4, str_off 4, str_len 3
        let mut btf = vec![0x9f, 0xeb, 1, 0];
        for word in [24u32, 0, 4, 4, 3] {
            btf.extend_from_slice(&word.to_le_bytes());
        }
        btf.extend_from_slice(&[0; 4]);
        btf.extend_from_slice(b"\0a\0");
        assert_eq!(btf_string_range(&btf).unwrap(), 28..31);
        btf.truncate(29);
        assert!(btf_string_range(&btf).is_err());
        assert!(btf_string_range(&[0; 24]).is_err());
    }
}

#[cfg(test)]
mod object_tests {
    //! On a real object: guest-programs/writable_bare.bpf.c built by clang 14 -target bpf -O2 -g.
    use super::*;

    const OBJECT: &[u8] = include_bytes!("../../testdata/writable_bare.bpf.o");

    #[test]
    fn aya_obj_rejects_the_original_and_parses_the_patched_object() {
        assert!(
            aya_obj::Object::parse(OBJECT).is_err(),
            "aya issue #218 fixed? then drop the patch"
        );
        let patched = hide_writable_marker(OBJECT).unwrap();
        assert_eq!(patched.len(), OBJECT.len());
        let obj = aya_obj::Object::parse(&patched).unwrap();
        let program = &obj.programs["writable_bare"];
        assert!(matches!(
            program.section,
            aya_obj::ProgramSection::RawTracePoint
        ));
        assert!(obj.maps.contains_key(".bss"));
    }

    #[test]
    fn the_program_type_comes_from_the_original_section_name() {
        let sections = program_sections(OBJECT).unwrap();
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].name, "raw_tp.w/bpf_testmod_test_writable_bare");
        assert_eq!(sections[0].prog_type, ProgType::RawTracepointWritable);
        assert_eq!(
            sections[0].target.as_deref(),
            Some("bpf_testmod_test_writable_bare")
        );
        let patched = hide_writable_marker(OBJECT).unwrap();
        assert_eq!(
            program_sections(&patched).unwrap()[0].prog_type,
            ProgType::RawTracepoint
        );
    }

    #[test]
    fn globals_are_found_in_bss() {
        let out_val = global_symbol(OBJECT, "out_val").unwrap().unwrap();
        assert_eq!(
            out_val,
            GlobalSymbol {
                section: ".bss".into(),
                offset: 8,
                size: 4
            }
        );
        assert_eq!(global_symbol(OBJECT, "nope").unwrap(), None);
    }

    /// `syscall` programs (a kind aya-obj does not parse) are shown to it under names of the
    /// same length it parses, so they are parsed and relocated like the raw tracepoints; their
    /// type still comes from the original name.
    #[test]
    fn a_syscall_program_is_parsed_by_aya_obj_and_keeps_its_type() {
        const BOTH: &[u8] = include_bytes!("../../testdata/static_slots.bpf.o");
        let (mut patched, hidden) = prepare_for_aya(BOTH).unwrap();
        assert_eq!(hidden, ["?tc"]);
        crate::loader::static_slots::hide_values(BOTH, &mut patched).unwrap();
        let obj = aya_obj::Object::parse(&patched).unwrap();
        assert!(obj.programs.contains_key("sys_target"));
        assert!(obj.programs.contains_key("reader"));
        let types: Vec<(String, ProgType)> = program_sections(BOTH)
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.prog_type))
            .collect();
        assert_eq!(
            types,
            [
                ("syscall".to_owned(), ProgType::Syscall),
                ("?syscall".to_owned(), ProgType::Syscall),
                (
                    "raw_tp.w/bpf_test_finish".to_owned(),
                    ProgType::RawTracepointWritable
                ),
            ]
        );
        // `syscall` is stored as the tail of `?syscall`, and no other copy of it exists: its
        // header points at its new name in a copy of the table at the end of the file.
        assert!(patched.len() > BOTH.len());
        let shown: Vec<String> = object::File::parse(&*patched)
            .unwrap()
            .sections()
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .filter(|name| name.starts_with("socket"))
            .collect();
        assert_eq!(shown, ["socket/", "socket/?"]);
        assert!(obj.programs.contains_key("sys_unused"));
        assert_eq!(
            symbol_section(BOTH, "sys_target").unwrap().as_deref(),
            Some("syscall")
        );
    }

    /// A hidden section's CO-RE records are taken out of `.BTF.ext`: aya-obj would relocate
    /// them and find no function (libbpf does not relocate programs it does not load).
    #[test]
    fn a_hidden_sections_core_relocations_do_not_reach_aya_obj() {
        const BOTH: &[u8] = include_bytes!("../../testdata/static_slots.bpf.o");
        let (mut patched, hidden) = prepare_for_aya(BOTH).unwrap();
        assert_eq!(hidden, ["?tc"]);
        crate::loader::static_slots::hide_values(BOTH, &mut patched).unwrap();
        let mut obj = aya_obj::Object::parse(&patched).unwrap();
        let target = obj.btf.clone().unwrap();
        obj.relocate_btf(&target).unwrap();
        // The same object with only the flags cleared keeps the records, and fails.
        let mut kept = hide_writable_marker(BOTH).unwrap();
        for (_, at) in foreign_program_sections(BOTH).unwrap() {
            let flags = u64::from_le_bytes(kept[at..at + 8].try_into().unwrap());
            let flags = flags & !u64::from(object::elf::SHF_EXECINSTR);
            kept[at..at + 8].copy_from_slice(&flags.to_le_bytes());
        }
        crate::loader::static_slots::hide_values(BOTH, &mut kept).unwrap();
        let mut with_records = aya_obj::Object::parse(&kept).unwrap();
        assert!(
            with_records.relocate_btf(&target).is_err(),
            "aya-obj skips sections without functions now?"
        );
    }
}
