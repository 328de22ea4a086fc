//! The boundary sweep's guest half (issue 27): thousands of small instruction programs on one
//! tracepoint, in one batch. Each program: BPF_PROG_LOAD with a small log (the verdict line
//! kept on a refusal), for a tail-call caller first its prog array and callee; then
//! BPF_RAW_TRACEPOINT_OPEN; where the plan says so one firing by the sweep's trigger
//! ([`crate::sweep_fire`]: BPF_PROG_TEST_RUN of a trivial socket filter fires
//! `bpf_test_finish`, whose 4-byte buffer is the run's `err`, the syscall's return value, 0
//! before any program touched it; bpf_testmod's 64-byte read fires its writable tracepoint);
//! then everything closed. No judging here.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use aya_obj::generated::bpf_insn;
use protocol::{Insn, InsnMap, ProgType, SweepPlan, SweepProgram, SweepResult, SweepTrigger};

use crate::bpf_sys::{self, ProgLoadRequest};
use crate::loader::insns::encode;

/// Enough for the whole log of a sweep program (a dozen instructions at log level 1).
const LOG_SIZE: usize = 16 * 1024;
/// Where the JIT is turned on and off.
pub const JIT_ENABLE: &str = "/proc/sys/net/core/bpf_jit_enable";
/// `BPF_MAP_TYPE_PROG_ARRAY`.
const PROG_ARRAY: u32 = 3;

/// Runs one sweep; `write` gets the results in batches (each written through to the host by the caller) and the
/// notes at the end. Returns the notes.
pub fn run(
    plan: &SweepPlan,
    batch: usize,
    mut write: impl FnMut(Vec<SweepResult>) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let filter = socket_filter().map_err(|e| format!("the trivial socket filter: {e}"))?;
    let tracepoint = CString::new(plan.tracepoint.as_bytes())
        .map_err(|_| format!("tracepoint name {:?}", plan.tracepoint))?;
    // Attaching the first program to a tracepoint turns its static key on and detaching the
    // last turns it off, each a patch of kernel text: one idle program attached for the whole
    // sweep keeps the key on, so each program's attach and detach only swap the probe array.
    let _anchor = match anchor(&tracepoint) {
        Ok(anchor) => Some(anchor),
        Err(error) => {
            notes.push(format!("no idle program kept on the tracepoint: {error}"));
            None
        }
    };
    let mut spent = Spent::default();
    let mut results: Vec<SweepResult> = plan
        .programs
        .iter()
        .map(|program| {
            one(
                program,
                &tracepoint,
                plan.trigger,
                filter.as_fd(),
                &mut spent,
            )
        })
        .collect();
    notes.push(spent.describe("first pass"));
    if plan.interpreter {
        match std::fs::write(JIT_ENABLE, "0") {
            Ok(()) => {
                let mut spent = Spent::default();
                for (program, result) in plan.programs.iter().zip(results.iter_mut()) {
                    if result.after.is_some() {
                        let again = one(
                            program,
                            &tracepoint,
                            plan.trigger,
                            filter.as_fd(),
                            &mut spent,
                        );
                        result.interpreted = again.after;
                        if !again.note.is_empty() {
                            result.note = format!("interpreter: {}", again.note);
                        }
                    }
                }
                notes.push(spent.describe("interpreter pass"));
                if let Err(error) = std::fs::write(JIT_ENABLE, "1") {
                    notes.push(format!("turning the JIT back on: {error}"));
                }
            }
            Err(error) => notes.push(format!(
                "writing 0 to {JIT_ENABLE}: {error}; no interpreter runs"
            )),
        }
    }
    while !results.is_empty() {
        let rest = results.split_off(batch.min(results.len()));
        write(std::mem::replace(&mut results, rest))?;
    }
    Ok(notes)
}

/// Whether the JIT is on (`bpf_jit_enable` ≠ 0), as the guest's sysctl says.
pub fn jit_enabled() -> Option<bool> {
    let text = std::fs::read_to_string(OsStr::new(JIT_ENABLE)).ok()?;
    Some(text.trim() != "0")
}

/// Where the first pass's time went.
#[derive(Default)]
struct Spent {
    load: Duration,
    attach: Duration,
    fire: Duration,
    detach: Duration,
}

impl Spent {
    fn describe(&self, pass: &str) -> String {
        format!(
            "guest time, {pass}: load {} ms, attach {} ms, fire {} ms, detach {} ms",
            self.load.as_millis(),
            self.attach.as_millis(),
            self.fire.as_millis(),
            self.detach.as_millis()
        )
    }
}

fn one(
    program: &SweepProgram,
    tracepoint: &CString,
    trigger: SweepTrigger,
    filter: BorrowedFd<'_>,
    spent: &mut Spent,
) -> SweepResult {
    let start = Instant::now();
    let mut result = SweepResult {
        name: program.name.clone(),
        load: 0,
        verdict: String::new(),
        attach: None,
        after: None,
        interpreted: None,
        note: String::new(),
    };
    let mut insns: Vec<bpf_insn> = program.insns.iter().map(encode).collect();
    // The prog array and callee live until the caller is closed.
    let mut _keep: Vec<OwnedFd> = Vec::new();
    if let (Some(at), Some(callee)) = (program.prog_array_at, &program.callee) {
        match tail_call_target(program.prog_type, callee) {
            Ok((map, callee_fd)) => {
                if let Some(insn) = insns.get_mut(at) {
                    insn.imm = map.as_raw_fd();
                }
                _keep.push(map);
                _keep.push(callee_fd);
            }
            Err((errno, note, verdict)) => {
                result.load = errno;
                result.note = note;
                result.verdict = verdict;
                return result;
            }
        }
    }
    let loaded = load(program.prog_type, &program.name, &insns);
    spent.load += start.elapsed();
    let prog = match loaded.result {
        Ok(fd) => fd,
        Err(error) => {
            result.load = error.raw_os_error().unwrap_or(-1);
            result.verdict = protocol::verifier_verdict(&loaded.verifier_log).to_owned();
            return result;
        }
    };
    let start = Instant::now();
    let link = bpf_sys::raw_tracepoint_open(prog.as_fd(), tracepoint, 0);
    spent.attach += start.elapsed();
    let link = match link {
        Ok(link) => link,
        Err(error) => {
            result.attach = Some(error.raw_os_error().unwrap_or(-1));
            return result;
        }
    };
    result.attach = Some(0);
    if program.fire {
        let start = Instant::now();
        result.after = crate::sweep_fire::fire(trigger, filter);
        spent.fire += start.elapsed();
    }
    let start = Instant::now();
    drop(link);
    drop(prog);
    spent.detach += start.elapsed();
    result
}

fn load(prog_type: ProgType, name: &str, insns: &[bpf_insn]) -> bpf_sys::ProgLoad {
    let short: String = name
        .rsplit('.')
        .next()
        .unwrap_or("sweep")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(15)
        .collect();
    bpf_sys::prog_load_small(
        &ProgLoadRequest {
            prog_type,
            name: &short,
            insns,
            license: c"GPL",
            flags: 0,
            log_level: crate::bpf_sys::DEFAULT_LOG_LEVEL,
            btf: None,
            replaces: None,
            fd_array: &[],
        },
        LOG_SIZE,
    )
}

/// The prog array with the callee in slot 0, or what went wrong: errno, words, the verifier's
/// verdict on the callee (a callee the kernel refuses is the caller's load answer).
fn tail_call_target(
    prog_type: ProgType,
    callee: &[Insn],
) -> Result<(OwnedFd, OwnedFd), (i32, String, String)> {
    let errno = |e: &std::io::Error| e.raw_os_error().unwrap_or(-1);
    let map = bpf_sys::map_create(&InsnMap {
        name: Some("sweep_jmp".into()),
        map_type: PROG_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        insns: Vec::new(),
    })
    .map_err(|e| {
        (
            errno(&e),
            format!("creating the prog array: {e}"),
            String::new(),
        )
    })?;
    let insns: Vec<bpf_insn> = callee.iter().map(encode).collect();
    let loaded = load(prog_type, "callee", &insns);
    let callee = loaded.result.map_err(|e| {
        let verdict = protocol::verifier_verdict(&loaded.verifier_log).to_owned();
        (errno(&e), "the callee refused".to_owned(), verdict)
    })?;
    bpf_sys::prog_array_update(map.as_fd(), 0, callee.as_fd()).map_err(|e| {
        let note = format!("putting the callee into slot 0: {e}");
        (errno(&e), note, String::new())
    })?;
    Ok((map, callee))
}

/// `r0 = 0; exit` as a plain raw tracepoint program, attached to `tracepoint`: it reads and
/// writes nothing, so the programs under test see the buffer as if alone.
fn anchor(tracepoint: &CString) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let prog = returns_zero(ProgType::RawTracepoint, "wtp_sweep_idle")?;
    let link = bpf_sys::raw_tracepoint_open(prog.as_fd(), tracepoint, 0)?;
    Ok((prog, link))
}

/// `r0 = 0; exit` as a socket filter: its test run ends in `bpf_test_finish`.
fn socket_filter() -> std::io::Result<OwnedFd> {
    returns_zero(ProgType::SocketFilter, "wtp_sweep_fire")
}

/// `r0 = 0; exit` loaded as `prog_type` (no log: the kernel accepts it or says why by errno).
pub fn returns_zero(prog_type: ProgType, name: &str) -> std::io::Result<OwnedFd> {
    let insns = [
        encode(&Insn::from((0xb7, 0, 0, 0, 0))),
        encode(&Insn::from((0x95, 0, 0, 0, 0))),
    ];
    let request = ProgLoadRequest {
        prog_type,
        name,
        insns: &insns,
        license: c"GPL",
        flags: 0,
        log_level: 0,
        btf: None,
        replaces: None,
        fd_array: &[],
    };
    bpf_sys::prog_load_small(&request, 0).result
}
