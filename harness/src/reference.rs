//! The second opinion: the same object, program, globals and flags loaded and attached by
//! libbpf (libbpf-rs, libbpf built from source into the harness), in the same guest, right
//! after the own loader's run of the case. The harness only records the answer; the host
//! requires it to agree with the own loader's.
//!
//! libbpf reports through a process-wide print callback, so its messages are gathered in a
//! process-wide buffer; the harness runs cases one at a time, and each answer takes only the
//! messages of its own calls.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::{AsRawLibbpf, ObjectBuilder, OpenObject, PrintLevel, ProgramType};
use protocol::{LibbpfAnswer, Outcome};

use crate::loader::sections;

/// libbpf's per-program log buffer: as large as the own loader's largest.
const LOG_SIZE: usize = 16 * 1024 * 1024;
/// libbpf's verifier log level for the program (1: the instructions as verified).
const LOG_LEVEL: u32 = 1;

/// What libbpf is asked to do: the case's program and what goes with it.
pub struct Request<'a> {
    pub object: &'a Path,
    /// Function name; `None` picks the object's only raw tracepoint program, as the own loader.
    pub program: Option<&'a str>,
    pub globals: &'a BTreeMap<String, u64>,
    pub prog_flags: u32,
    /// The case's first attach (tracepoint already renamed for this kernel), if any.
    pub attach: Option<Attach<'a>>,
}

/// Where and how libbpf attaches: the case's first `attach` step.
#[derive(Debug, Clone, Copy)]
pub struct Attach<'a> {
    pub tracepoint: &'a str,
    pub cookie: Option<u64>,
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

/// Loads (and attaches, when the case attaches) with libbpf; every failure is an answer.
pub fn answer(request: &Request<'_>) -> LibbpfAnswer {
    libbpf_rs::set_print(Some((PrintLevel::Info, gather)));
    if let Ok(mut messages) = MESSAGES.lock() {
        messages.clear();
    }
    let mut log = match LogBuffer::new() {
        Ok(log) => log,
        Err(error) => return bare_answer(harness_error(format!("mapping a log buffer: {error}"))),
    };
    let log = log.as_mut_slice();
    let mut answer = load_and_attach(request, log);
    answer.reached_verifier = log.first().is_some_and(|byte| *byte != 0);
    if !answer.load.is_ok() {
        answer.verdict =
            protocol::verifier_verdict(&crate::bpf_sys::c_buffer_to_string(log)).to_owned();
    }
    answer.messages = MESSAGES
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_default()
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
    answer
}

/// An answer with only its load outcome: nothing attached, no log, no messages yet.
fn bare_answer(load: Outcome) -> LibbpfAnswer {
    LibbpfAnswer {
        load,
        reached_verifier: false,
        verdict: String::new(),
        attach: None,
        messages: Vec::new(),
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

fn load_and_attach(request: &Request<'_>, log: &mut [u8]) -> LibbpfAnswer {
    let mut answer = bare_answer(Outcome::ok());
    let open = match open(request, log) {
        Ok(open) => open,
        Err(outcome) => {
            answer.load = outcome;
            return answer;
        }
    };
    let (open, program) = open;
    let object = match open.load() {
        Ok(object) => object,
        Err(error) => {
            answer.load = outcome_of(&error);
            return answer;
        }
    };
    let Some(attach) = request.attach else {
        return answer;
    };
    // Like the own loader: the cookie goes to the kernel only when the case gives one.
    let attached = object
        .progs_mut()
        .find(|p| p.name() == program.as_str())
        .map(|p| match attach.cookie {
            None => p.attach_raw_tracepoint(attach.tracepoint),
            Some(cookie) => p.attach_raw_tracepoint_with_opts(
                attach.tracepoint,
                libbpf_rs::RawTracepointOpts {
                    cookie,
                    ..Default::default()
                },
            ),
        });
    answer.attach = Some(match attached {
        Some(Ok(_detached_on_drop)) => Outcome::ok(),
        Some(Err(error)) => outcome_of(&error),
        None => harness_error(format!("libbpf lost program `{program}` after loading")),
    });
    answer
}

/// Opens the object, keeps only the case's program autoloaded (with our log buffer and its
/// flags) and patches the globals into the data maps' initial values.
fn open(request: &Request<'_>, log: &mut [u8]) -> Result<(OpenObject, String), Outcome> {
    let mut open = ObjectBuilder::default()
        .open_file(request.object)
        .map_err(|e| outcome_of(&e))?;
    let program = choose_program(&open, request.program)?;
    // The programs a static prog array initialiser names load too: libbpf fills those slots
    // after loading and fails the load if a target was not loaded.
    let object_bytes = std::fs::read(request.object)
        .map_err(|e| harness_error(format!("reading {}: {e}", request.object.display())))?;
    let targets: Vec<String> = crate::loader::prog_arrays::static_slots(&object_bytes)
        .map(|slots| slots.into_iter().map(|slot| slot.program).collect())
        .unwrap_or_default();
    for mut candidate in open.progs_mut() {
        let chosen = candidate.name() == program.as_str();
        let target = targets
            .iter()
            .any(|t| candidate.name().to_str() == Some(t.as_str()));
        candidate.set_autoload(chosen || target);
        if chosen {
            candidate.set_log_level(LOG_LEVEL);
            candidate.set_flags(request.prog_flags);
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
        patch_global(&mut open, &object_bytes, name, *value)?;
    }
    Ok((open, program))
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
    fn a_log_buffer_is_all_zero_and_writable_to_its_end() {
        let mut buffer = LogBuffer::new().unwrap();
        let log = buffer.as_mut_slice();
        assert_eq!(log.len(), LOG_SIZE);
        assert!(log.iter().step_by(4096).all(|byte| *byte == 0));
        log[LOG_SIZE - 1] = b'x';
        assert_eq!(crate::bpf_sys::c_buffer_to_string(log), "");
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
