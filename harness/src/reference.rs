//! The second opinion: the same object, program, globals and flags loaded by libbpf
//! (libbpf-rs, libbpf built from source into the harness), in the same guest, right after the
//! own loader's run of the case, the way a libbpf user loads it: the case's program autoloaded
//! with what it needs (the tail-call targets the case's steps name, and every program a static
//! prog-array initialiser of the object names, as libbpf itself requires). The case's steps
//! then run on libbpf's program ([`LibbpfProgram`] is a [`CaseProgram`]). The harness only
//! records the answer; the host requires it to agree with the own loader's.
//!
//! libbpf reports through a process-wide print callback, so its messages are gathered in a
//! process-wide buffer; the harness runs cases one at a time, and each answer takes only the
//! messages of its own [`Session`].

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libbpf_rs::{AsRawLibbpf, MapCore, Object, ObjectBuilder, OpenObject, PrintLevel, ProgramType};
use protocol::{LibbpfAnswer, Outcome};

use crate::bpf_sys;
use crate::loader::sections;
use crate::program::{CaseProgram, Link};

/// libbpf's per-program log buffer: as large as the own loader's largest.
const LOG_SIZE: usize = 16 * 1024 * 1024;
/// What libbpf is asked to load: the case's program and what goes with it.
pub struct Request<'a> {
    pub object: &'a Path,
    /// Function name; `None` picks the object's only raw tracepoint program, as the own loader.
    pub program: Option<&'a str>,
    pub globals: &'a BTreeMap<String, u64>,
    pub prog_flags: u32,
    /// `log_level` of the case's program.
    pub log_level: u32,
    /// Programs the case's `prog_array_set` steps put into prog arrays: loaded with the object.
    pub tail_call_targets: &'a [&'a str],
}

static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn gather(level: PrintLevel, message: String) {
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut messages) = MESSAGES.lock() {
        messages.push(message.trim_end().to_owned());
    }
}

/// One case's dealings with libbpf: what libbpf prints from [`Session::start`] to
/// [`Session::finish`] is that case's.
pub struct Session(());

impl Session {
    pub fn start() -> Self {
        libbpf_rs::set_print(Some((PrintLevel::Info, gather)));
        if let Ok(mut messages) = MESSAGES.lock() {
            messages.clear();
        }
        Session(())
    }

    /// Loads the case's program with libbpf; every failure is an answer. The program is
    /// `Some` when libbpf loaded it.
    pub fn load(&self, request: &Request<'_>) -> (LibbpfAnswer, Option<LibbpfProgram>) {
        let mut log = match LogBuffer::new() {
            Ok(log) => log,
            Err(error) => {
                let failed = harness_error(format!("mapping a log buffer: {error}"));
                return (bare_answer(failed), None);
            }
        };
        let loaded = load(request, log.as_mut_slice());
        let log = log.as_mut_slice();
        let reached_verifier = log.first().is_some_and(|byte| *byte != 0);
        match loaded {
            Ok(program) => {
                let mut answer = bare_answer(Outcome::ok());
                answer.reached_verifier = reached_verifier;
                (answer, Some(program))
            }
            Err(outcome) => {
                let mut answer = bare_answer(outcome);
                answer.reached_verifier = reached_verifier;
                answer.verdict =
                    protocol::verifier_verdict(&bpf_sys::c_buffer_to_string(log)).to_owned();
                (answer, None)
            }
        }
    }

    /// Loads a program given as instructions with libbpf's `bpf_prog_load`.
    pub fn load_insns(
        &self,
        program: &protocol::InsnProgram,
        prog_flags: u32,
    ) -> (LibbpfAnswer, Option<crate::reference_insns::LibbpfInsns>) {
        match LogBuffer::new() {
            Ok(mut log) => crate::reference_insns::load(program, prog_flags, log.as_mut_slice()),
            Err(error) => {
                let failed = harness_error(format!("mapping a log buffer: {error}"));
                (bare_answer(failed), None)
            }
        }
    }

    /// Adds what libbpf printed since the session started to the answer.
    pub fn finish(self, answer: &mut LibbpfAnswer) {
        answer.messages = MESSAGES
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
            .into_iter()
            .filter(|line| !line.is_empty())
            .collect();
    }
}

/// An answer with only its load outcome: nothing attached, no log, no messages yet.
fn bare_answer(load: Outcome) -> LibbpfAnswer {
    LibbpfAnswer {
        load,
        reached_verifier: false,
        verdict: String::new(),
        attach: None,
        messages: Vec::new(),
        steps: Vec::new(),
    }
}

/// libbpf's log buffer, a fresh anonymous mapping per answer. A 16 MiB `Vec` would not do:
/// once glibc frees the first one its mmap threshold rises past 16 MiB, the next comes from
/// the heap, and calloc clears all of it, about 40 ms per case under TCG. A fresh mapping is
/// zero already, and only the pages the kernel writes are ever touched.
struct LogBuffer {
    start: std::ptr::NonNull<std::ffi::c_void>,
}

impl LogBuffer {
    fn new() -> nix::Result<Self> {
        use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
        const LEN: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(LOG_SIZE) {
            Some(len) => len,
            None => panic!("LOG_SIZE is not zero"),
        };
        // SAFETY: a new private anonymous mapping aliases no memory of this process.
        let start = unsafe {
            mmap_anonymous(
                None,
                LEN,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }?;
        Ok(Self { start })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is LOG_SIZE bytes, readable and writable, and lives as long as
        // `self`, which this borrow cannot outlive.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr().cast(), LOG_SIZE) }
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        // SAFETY: `start` is the mapping `new` made, LOG_SIZE long, and no slice of it is
        // left (they borrow `self`).
        let _unmapped = unsafe { nix::sys::mman::munmap(self.start, LOG_SIZE) };
    }
}

/// The case's program as libbpf loaded it, with the object that holds its maps.
pub struct LibbpfProgram {
    object: Object,
    /// The case's program's function name.
    name: String,
    /// An fd of the case's program (libbpf's own stays with the object).
    fd: OwnedFd,
    section_tracepoint: Option<String>,
    /// The object file: global symbols are read from it.
    path: PathBuf,
    bytes: Arc<[u8]>,
    prog_flags: u32,
    /// Objects opened again for extensions (`freplace` steps), kept while their links are.
    extensions: Vec<Object>,
}

fn load(request: &Request<'_>, log: &mut [u8]) -> Result<LibbpfProgram, Outcome> {
    let bytes = crate::read_once::read(&request.object.to_string_lossy())
        .map_err(|e| harness_error(format!("reading {}: {e}", request.object.display())))?;
    let (open, program) = open(request, &bytes, log)?;
    let object = open.load().map_err(|e| outcome_of(&e))?;
    let (fd, section) = {
        let loaded = object
            .progs()
            .find(|p| p.name() == program.as_str())
            .ok_or_else(|| harness_error(format!("libbpf lost program `{program}`")))?;
        let fd = loaded
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Outcome::from_io(&e))?;
        (fd, loaded.section().to_string_lossy().into_owned())
    };
    Ok(LibbpfProgram {
        object,
        name: program,
        fd,
        section_tracepoint: sections::classify(&section).and_then(|(_, target)| target),
        path: request.object.to_owned(),
        bytes,
        prog_flags: request.prog_flags,
        extensions: Vec::new(),
    })
}

/// The object at `path` opened from `bytes` (already read, [`crate::read_once`]) under the
/// name `bpf_object__open_file` would give it: the file's name up to its first dot (libbpf
/// prefixes its internal maps with it). Skeletons open their objects from memory too.
fn open_memory(path: &Path, bytes: &[u8]) -> Result<OpenObject, Outcome> {
    ObjectBuilder::default()
        .name(libbpf_object_name(path))
        .and_then(|builder| builder.open_memory(bytes))
        .map_err(|e| outcome_of(&e))
}

/// What libbpf names an object opened from `path` (`bpf_object__new`).
fn libbpf_object_name(path: &Path) -> String {
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    file.split('.').next().unwrap_or_default().to_owned()
}

/// Opens the object, autoloads the case's program (with our log buffer and its flags) and
/// the programs it needs (with its flags), and patches the globals into the data maps'
/// initial values.
fn open(
    request: &Request<'_>,
    bytes: &[u8],
    log: &mut [u8],
) -> Result<(OpenObject, String), Outcome> {
    let mut open = open_memory(request.object, bytes)?;
    let program = choose_program(&open, request.program)?;
    // The programs a static prog array initialiser names load too: libbpf fills those slots
    // after loading and fails the load if a target was not loaded (the own loader reads the
    // same slots, `loader::static_slots`). A map of maps' slots libbpf fills itself.
    let mut needed: BTreeSet<String> = crate::loader::static_slots::static_slots(bytes)
        .map_err(|e| {
            harness_error(format!(
                "reading the object's static .maps initialisers: {e}"
            ))
        })?
        .into_iter()
        .filter(|slot| slot.kind == crate::loader::static_slots::Target::Program)
        .map(|slot| slot.target)
        .collect();
    needed.extend(
        request
            .tail_call_targets
            .iter()
            .map(|name| name.to_string()),
    );
    for mut candidate in open.progs_mut() {
        let name = candidate.name().to_string_lossy().into_owned();
        let chosen = name == program;
        let autoload = chosen || needed.contains(&name);
        candidate.set_autoload(autoload);
        if autoload {
            candidate.set_flags(request.prog_flags);
        }
        if chosen {
            candidate.set_log_level(request.log_level);
            let raw = candidate.as_libbpf_object().as_ptr();
            // SAFETY: `raw` is this open object's program; `log` outlives the load, which is
            // the only user of the buffer (libbpf keeps the pointer, never frees it).
            let ret = unsafe {
                libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                    raw,
                    log.as_mut_ptr().cast(),
                    log.len() as _,
                )
            };
            if ret != 0 {
                return Err(Outcome::errno(-ret));
            }
        }
    }
    for (name, value) in request.globals {
        patch_global(&mut open, bytes, name, *value)?;
    }
    Ok((open, program))
}

impl LibbpfProgram {
    /// The data map that holds a global (libbpf names it `<object>.bss` and so on), the
    /// global's place in it, and the map's value size.
    fn global(&self, name: &str) -> Result<(sections::GlobalSymbol, OwnedFd, usize), Outcome> {
        let symbol = sections::global_symbol(&self.bytes, name)
            .map_err(|e| harness_error(format!("global `{name}`: {e}")))?
            .ok_or_else(|| {
                harness_error(format!("global `{name}` is not defined in the object"))
            })?;
        if ![1, 2, 4, 8].contains(&symbol.size) {
            return Err(harness_error(format!(
                "global `{name}` is {} bytes; only 1, 2, 4 and 8 byte integers are supported",
                symbol.size
            )));
        }
        let map = self
            .object
            .maps()
            .find(|map| {
                map.name()
                    .to_string_lossy()
                    .ends_with(symbol.section.as_str())
            })
            .ok_or_else(|| {
                harness_error(format!(
                    "libbpf has no map for section {} (global `{name}`)",
                    symbol.section
                ))
            })?;
        let fd = map
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Outcome::from_io(&e))?;
        let value_size = map.value_size() as usize;
        if symbol.offset + symbol.size > value_size {
            return Err(harness_error(format!(
                "global `{name}` lies outside its map"
            )));
        }
        Ok((symbol, fd, value_size))
    }
}

impl CaseProgram for LibbpfProgram {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn section_tracepoint(&self) -> Option<&str> {
        self.section_tracepoint.as_deref()
    }

    /// `bpf_program__attach_raw_tracepoint`, with the cookie option when the case gives one.
    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome> {
        let program = self.program()?;
        let attached = match cookie {
            None => program.attach_raw_tracepoint(tracepoint),
            Some(cookie) => program.attach_raw_tracepoint_with_opts(
                tracepoint,
                libbpf_rs::RawTracepointOpts {
                    cookie,
                    ..Default::default()
                },
            ),
        };
        attached.map(Link::Libbpf).map_err(|e| outcome_of(&e))
    }

    fn read_global(&self, name: &str) -> Result<u64, Outcome> {
        let (symbol, map, value_size) = self.global(name)?;
        let mut value = vec![0u8; value_size];
        bpf_sys::array_lookup(map.as_fd(), &mut value).map_err(|e| global_io(name, &e))?;
        let mut bytes = [0u8; 8];
        bytes[..symbol.size].copy_from_slice(&value[symbol.offset..symbol.offset + symbol.size]);
        Ok(u64::from_le_bytes(bytes))
    }

    fn write_global(&self, name: &str, new: u64) -> Result<(), Outcome> {
        let (symbol, map, value_size) = self.global(name)?;
        let mut value = vec![0u8; value_size];
        bpf_sys::array_lookup(map.as_fd(), &mut value).map_err(|e| global_io(name, &e))?;
        value[symbol.offset..symbol.offset + symbol.size]
            .copy_from_slice(&new.to_le_bytes()[..symbol.size]);
        bpf_sys::array_update(map.as_fd(), &value).map_err(|e| global_io(name, &e))
    }

    fn map(&self, name: &str) -> Result<OwnedFd, Outcome> {
        let map = self.object.maps().find(|map| map.name() == name);
        let Some(map) = map else {
            let known: Vec<String> = self
                .object
                .maps()
                .map(|map| map.name().to_string_lossy().into_owned())
                .collect();
            return Err(harness_error(format!(
                "libbpf has no map named `{name}` (found: {})",
                known.join(", ")
            )));
        };
        map.as_fd()
            .try_clone_to_owned()
            .map_err(|e| Outcome::from_io(&e))
    }

    /// libbpf loaded the tail-call targets with the object; this is an fd of the one named.
    fn sibling(&mut self, name: &str) -> Result<OwnedFd, Outcome> {
        let program = self.object.progs().find(|p| p.name() == name);
        let Some(program) = program else {
            return Err(harness_error(format!("libbpf found no program `{name}`")));
        };
        // SAFETY: the pointer is this loaded object's program.
        let fd =
            unsafe { libbpf_rs::libbpf_sys::bpf_program__fd(program.as_libbpf_object().as_ptr()) };
        if fd < 0 {
            return Err(harness_error(format!("libbpf did not load `{name}`")));
        }
        program
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Outcome::from_io(&e))
    }

    /// As libbpf users do it: the object opened again with only the extension autoloaded,
    /// its maps reusing the first object's (`bpf_map__reuse_fd`), the case's program as the
    /// attach target (`bpf_program__set_attach_target`; libbpf takes the function from the
    /// section name), loaded and attached with `bpf_program__attach`.
    fn freplace(&mut self, extension: &str) -> Result<Link, Outcome> {
        let mut open = open_memory(&self.path, &self.bytes)?;
        let mut found = false;
        for mut candidate in open.progs_mut() {
            let chosen = candidate.name() == extension;
            found |= chosen;
            candidate.set_autoload(chosen);
            if chosen {
                candidate.set_flags(self.prog_flags);
                candidate
                    .set_attach_target(std::os::fd::AsRawFd::as_raw_fd(&self.fd), None)
                    .map_err(|e| outcome_of(&e))?;
            }
        }
        if !found {
            return Err(harness_error(format!(
                "libbpf found no program `{extension}` in the object"
            )));
        }
        for mut map in open.maps_mut() {
            let name = map.name().to_owned();
            if let Some(shared) = self.object.maps().find(|m| m.name() == name.as_os_str()) {
                map.reuse_fd(shared.as_fd()).map_err(|e| outcome_of(&e))?;
            }
        }
        let object = open.load().map_err(|e| outcome_of(&e))?;
        let link = object
            .progs_mut()
            .find(|p| p.name() == extension)
            .map(|p| p.attach())
            .ok_or_else(|| harness_error(format!("libbpf lost program `{extension}`")))?
            .map_err(|e| outcome_of(&e))?;
        self.extensions.push(object);
        Ok(Link::Libbpf(link))
    }
}

impl LibbpfProgram {
    fn program(&self) -> Result<libbpf_rs::ProgramMut<'_>, Outcome> {
        self.object
            .progs_mut()
            .find(|p| p.name() == self.name.as_str())
            .ok_or_else(|| harness_error(format!("libbpf lost program `{}`", self.name)))
    }
}

fn global_io(name: &str, error: &std::io::Error) -> Outcome {
    harness_error(format!("reading global `{name}`: {error}"))
}

fn choose_program(open: &OpenObject, wanted: Option<&str>) -> Result<String, Outcome> {
    let names: Vec<(String, ProgramType)> = open
        .progs()
        .map(|p| (p.name().to_string_lossy().into_owned(), p.prog_type()))
        .collect();
    if let Some(wanted) = wanted {
        return match names.iter().any(|(name, _)| name == wanted) {
            true => Ok(wanted.to_owned()),
            false => Err(harness_error(format!(
                "libbpf found no program `{wanted}` in the object"
            ))),
        };
    }
    let raw_tracepoints: Vec<&String> = names
        .iter()
        .filter(|(_, t)| {
            matches!(
                t,
                ProgramType::RawTracepoint | ProgramType::RawTracepointWritable
            )
        })
        .map(|(name, _)| name)
        .collect();
    match raw_tracepoints.as_slice() {
        [only] => Ok((*only).clone()),
        _ => Err(harness_error(format!(
            "libbpf: the object must have exactly one raw tracepoint program, or the case names one (found {})",
            raw_tracepoints.len()
        ))),
    }
}

/// Writes `value` into the initial value of the data map that holds the global, as a
/// libbpf skeleton's `rodata->x = ...` / `bss->x = ...` does.
fn patch_global(
    open: &mut OpenObject,
    object: &[u8],
    name: &str,
    value: u64,
) -> Result<(), Outcome> {
    let symbol = sections::global_symbol(object, name)
        .map_err(|e| harness_error(format!("global `{name}`: {e}")))?
        .ok_or_else(|| harness_error(format!("global `{name}` is not defined in the object")))?;
    let bytes = value.to_le_bytes();
    let encoded = bytes
        .get(..symbol.size)
        .ok_or_else(|| harness_error(format!("global `{name}` is {} bytes", symbol.size)))?;
    let map = open.maps_mut().find(|map| {
        map.name()
            .to_string_lossy()
            .ends_with(symbol.section.as_str())
    });
    let Some(mut map) = map else {
        return Err(harness_error(format!(
            "libbpf has no map for section {} (global `{name}`)",
            symbol.section
        )));
    };
    let initial = map
        .initial_value_mut()
        .ok_or_else(|| harness_error(format!("map for {} has no initial value", symbol.section)))?;
    let target = initial
        .get_mut(symbol.offset..symbol.offset + symbol.size)
        .ok_or_else(|| harness_error(format!("global `{name}` lies outside its map")))?;
    target.copy_from_slice(encoded);
    Ok(())
}

/// libbpf-rs keeps the errno inside its own error chain; its text ends in the standard
/// library's `(os error N)`, which is where the number is read from.
fn outcome_of(error: &libbpf_rs::Error) -> Outcome {
    let text = format!("{error:#}");
    match os_error(&text) {
        Some(errno) => Outcome::errno(errno),
        None => Outcome::Error { message: text },
    }
}

fn os_error(text: &str) -> Option<i32> {
    let start = text.rfind("(os error ")? + "(os error ".len();
    let digits = text[start..].split(')').next()?;
    digits.parse().ok()
}

fn harness_error(message: String) -> Outcome {
    Outcome::Error { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_opened_from_memory_gets_the_name_libbpf_gives_its_file() {
        let name = |path: &str| libbpf_object_name(Path::new(path));
        assert_eq!(
            name("/work/images/bpf/builtin/writable_bare.o"),
            "writable_bare"
        );
        // bpf_object__new cuts at the first dot: maps of `x.bpf.o` are `x.bss`, not `x.bpf.bss`.
        assert_eq!(name("test_module_attach.bpf.o"), "test_module_attach");
        let opened = open_memory(
            Path::new("/nowhere/writable_bare.bpf.o"),
            include_bytes!("../testdata/writable_bare.bpf.o"),
        )
        .unwrap_or_else(|_| panic!("libbpf opens the object from memory"));
        assert_eq!(opened.name(), Some(std::ffi::OsStr::new("writable_bare")));
    }

    #[test]
    fn a_log_buffer_is_all_zero_and_writable_to_its_end() {
        let mut buffer = LogBuffer::new().unwrap();
        let log = buffer.as_mut_slice();
        assert_eq!(log.len(), LOG_SIZE);
        assert!(log.iter().step_by(4096).all(|byte| *byte == 0));
        log[LOG_SIZE - 1] = b'x';
        assert_eq!(crate::bpf_sys::c_buffer_to_string(log), "");
    }

    /// `testdata/prog_array_init.bpf.c` (built with clang 14): `jump`'s `.values` names
    /// `callee`; `caller` only tail-calls through the map, `unrelated` is named nowhere.
    #[test]
    fn a_static_prog_array_initialiser_names_its_programs() {
        let object = include_bytes!("../testdata/prog_array_init.bpf.o");
        let slots = crate::loader::static_slots::static_slots(object).unwrap();
        let names: Vec<String> = slots.into_iter().map(|slot| slot.target).collect();
        assert_eq!(names, ["callee"]);
        let plain = include_bytes!("../testdata/writable_bare.bpf.o");
        assert!(crate::loader::static_slots::static_slots(plain)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_errno_is_read_from_the_end_of_the_chain() {
        assert_eq!(
            os_error("failed to load object: Permission denied (os error 13)"),
            Some(13)
        );
        assert_eq!(os_error("no number here"), None);
    }
}
