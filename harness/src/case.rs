//! Runs one case: load the program, then every step in order, recording what the kernel said.
//! The harness never judges outcomes; the host compares them with the case's expectation.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use protocol::{CasePlan, CaseResult, LoadReport, Outcome, Phase, Step, StepRecord};

use crate::bpf_sys;
use crate::faults;
use crate::links;
use crate::loader::{self, LoadedProgram};
use crate::nbd::Connection;
use crate::reference;
use crate::triggers::{nbd, test_run, testmod};

/// Runs one case. For a shell (`keep_pins`), what it pinned stays and libbpf is not asked.
pub fn run(
    plan: &CasePlan,
    tracepoint_names: &BTreeMap<String, String>,
    keep_pins: bool,
) -> CaseResult {
    let (load, program, chosen) = load(plan);
    let mut run = CaseRun {
        program,
        tracepoint_names,
        link: None,
        nbd: None,
        case: plan.name.clone(),
        pin: None,
        added: Vec::new(),
        phase: if load.outcome.is_ok() {
            Phase::Loaded
        } else {
            Phase::Compiled
        },
    };
    let steps = plan
        .steps
        .iter()
        .map(|step| StepRecord {
            step: step.clone(),
            outcome: run.step(step),
        })
        .collect();
    let section_tracepoint = run
        .program
        .as_ref()
        .and_then(|p| p.section_tracepoint.clone());
    let phase = run.phase;
    if keep_pins {
        return CaseResult {
            case: plan.name.clone(),
            phase,
            load,
            steps,
            libbpf: None,
        };
    }
    // The own loader's program, links and pin are gone before libbpf loads its copy: two
    // programs on one tracepoint would both rewrite it.
    if let Some(pin) = run.pin.take() {
        let _already_gone = std::fs::remove_file(pin);
    }
    drop(run);
    let (attach_to, cookie) =
        first_attach(plan, section_tracepoint.as_deref(), tracepoint_names).unzip();
    let libbpf = reference::answer(&reference::Request {
        object: &plan.object,
        program: plan.program.as_deref().or(chosen.as_deref()),
        globals: &plan.globals,
        prog_flags: plan.prog_flags,
        attach: attach_to.as_deref().map(|tracepoint| reference::Attach {
            tracepoint,
            cookie: cookie.flatten(),
        }),
    });
    CaseResult {
        case: plan.name.clone(),
        phase,
        load,
        steps,
        libbpf: Some(libbpf),
    }
}

/// The tracepoint (as this kernel names it) and cookie of the case's first `attach` step.
/// Without a name in the step or a section name the own loader read, there is none.
fn first_attach(
    plan: &CasePlan,
    section_tracepoint: Option<&str>,
    tracepoint_names: &BTreeMap<String, String>,
) -> Option<(String, Option<u64>)> {
    let (named, cookie) = plan.steps.iter().find_map(|step| match step {
        Step::Attach { tracepoint, cookie } => Some((tracepoint.as_deref(), *cookie)),
        _ => None,
    })?;
    let name = attach_target(named, section_tracepoint, tracepoint_names)?;
    Some((name.to_owned(), cookie))
}

/// Where an `attach` goes: the tracepoint it names, else the one in the section name, as
/// this kernel calls it.
fn attach_target<'a>(
    named: Option<&'a str>,
    section_tracepoint: Option<&'a str>,
    tracepoint_names: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    let name = named.or(section_tracepoint)?;
    Some(tracepoint_names.get(name).map_or(name, String::as_str))
}

fn load(plan: &CasePlan) -> (LoadReport, Option<LoadedProgram>, Option<String>) {
    let failed = |message: String| LoadReport {
        outcome: Outcome::Error { message },
        prog_type: None,
        insn_count: 0,
        verifier_log: String::new(),
        notes: Vec::new(),
    };
    let object = match std::fs::read(&plan.object) {
        Ok(bytes) => bytes,
        Err(error) => {
            return (
                failed(format!("reading {}: {error}", plan.object.display())),
                None,
                None,
            )
        }
    };
    let request = loader::LoadRequest {
        object: &object,
        program: plan.program.as_deref(),
        globals: &plan.globals,
        prog_flags: plan.prog_flags,
    };
    match loader::load(&request) {
        Ok((attempt, program)) => {
            let report = LoadReport {
                outcome: attempt
                    .result
                    .map_or_else(|e| Outcome::from_io(&e), |()| Outcome::ok()),
                prog_type: Some(attempt.prog_type),
                insn_count: attempt.insn_count,
                verifier_log: attempt.verifier_log,
                notes: attempt.notes,
            };
            (report, program, Some(attempt.program))
        }
        Err(error) => (failed(chain(&error)), None, None),
    }
}

/// State carried from step to step within one case.
struct CaseRun<'a> {
    program: Option<LoadedProgram>,
    tracepoint_names: &'a BTreeMap<String, String>,
    /// The raw tracepoint link; dropping it detaches the program.
    link: Option<OwnedFd>,
    /// The connected NBD device, if a step connected it; dropping it disconnects.
    nbd: Option<Connection>,
    /// The case's name (its pin's file name) and the pin, while there is one.
    case: String,
    pin: Option<std::path::PathBuf>,
    /// Programs loaded into prog array slots (the slots hold their own references, these
    /// fds keep the programs until the case ends) and extension links.
    added: Vec<OwnedFd>,
    phase: Phase,
}

impl CaseRun<'_> {
    fn step(&mut self, step: &Step) -> Outcome {
        let Some(program) = &self.program else {
            return harness_error("skipped: the program did not load");
        };
        let outcome = match step {
            Step::Attach { tracepoint, cookie } => {
                let name = attach_target(
                    tracepoint.as_deref(),
                    program.section_tracepoint.as_deref(),
                    self.tracepoint_names,
                );
                let Some(name) = name else {
                    return harness_error(
                        "attach: no tracepoint named and none in the section name",
                    );
                };
                match attach(program, name, cookie.unwrap_or(0)) {
                    Ok(link) => {
                        self.link = Some(link);
                        self.phase = self.phase.max(Phase::Attached);
                        Outcome::value(name.into())
                    }
                    Err(outcome) => outcome,
                }
            }
            Step::AttachLink => match bpf_sys::link_create_raw_tp(program.fd.as_fd()) {
                Ok(link) => {
                    self.link = Some(link);
                    self.phase = self.phase.max(Phase::Attached);
                    Outcome::ok()
                }
                Err(error) => Outcome::from_io(&error),
            },
            Step::Detach => match self.link.take() {
                Some(_closed_on_drop) => Outcome::ok(),
                None => harness_error("close_link without a link"),
            },
            Step::LinkInfo => match &self.link {
                Some(link) => links::info(link.as_fd(), program.fd.as_fd()),
                None => harness_error("link_info without a link"),
            },
            Step::Pin => match &self.link {
                Some(link) => match links::pin(link.as_fd(), &self.case) {
                    Ok(path) => {
                        self.pin = Some(path);
                        Outcome::ok()
                    }
                    Err(outcome) => outcome,
                },
                None => harness_error("pin without a link"),
            },
            Step::GetPinned => match self.pin.as_deref().map(links::get_pinned) {
                Some(Ok(link)) => {
                    self.link = Some(link);
                    Outcome::ok()
                }
                Some(Err(outcome)) => outcome,
                None => harness_error("get_pinned without a pin"),
            },
            Step::Unpin => match self.pin.take() {
                Some(path) => links::unpin(&path),
                None => harness_error("unpin without a pin"),
            },
            Step::LinkDetach => match &self.link {
                Some(link) => links::detach(link.as_fd()),
                None => harness_error("link_detach without a link"),
            },
            Step::LinkUpdate => match &self.link {
                Some(link) => links::update(link.as_fd(), program.fd.as_fd()),
                None => harness_error("link_update without a link"),
            },
            Step::SetGlobal { name, value } => program
                .write_global(name, *value)
                .map_or_else(|e| harness_error(&chain(&e)), |()| Outcome::ok()),
            Step::ReadGlobal { name } => program
                .read_global(name)
                .map_or_else(|e| harness_error(&chain(&e)), |v| Outcome::value(v.into())),
            Step::ProgArraySet {
                map,
                index,
                program: target,
            } => match prog_array_set(program, map, *index, target) {
                Ok(fd) => {
                    self.added.push(fd);
                    Outcome::ok()
                }
                Err(outcome) => outcome,
            },
            Step::Freplace { program: extension } => match freplace(program, extension) {
                Ok(link) => {
                    self.added.push(link);
                    Outcome::ok()
                }
                Err(outcome) => outcome,
            },
            Step::TestmodRead => testmod::read_writable(),
            Step::NbdConnect => match nbd::connect() {
                Ok(connection) => {
                    self.nbd = Some(connection);
                    Outcome::ok()
                }
                Err(outcome) => outcome,
            },
            Step::NbdRead { offset } => match &self.nbd {
                Some(connection) => nbd::read(connection, *offset),
                None => harness_error("nbd_read before nbd_connect"),
            },
            Step::NbdDisconnect => match self.nbd.take() {
                Some(connection) => nbd::disconnect(connection),
                None => harness_error("nbd_disconnect before nbd_connect"),
            },
            Step::TestRunSocketFilter => test_run::socket_filter(),
            Step::TestRunSelf => test_run::run(program.fd.as_fd()),
            Step::CrashKernel => faults::crash_kernel(),
            Step::Hang => faults::hang(),
            Step::AbortHarness => faults::abort_harness(),
            Step::WriteFile { path } => faults::write_file(path),
        };
        if step.is_trigger() && self.link.is_some() {
            self.phase = self.phase.max(Phase::Triggered);
        }
        outcome
    }
}

fn attach(program: &LoadedProgram, tracepoint: &str, cookie: u64) -> Result<OwnedFd, Outcome> {
    let name = CString::new(tracepoint)
        .map_err(|_| harness_error(&format!("tracepoint name {tracepoint:?} has a NUL byte")))?;
    bpf_sys::raw_tracepoint_open(program.fd.as_fd(), &name, cookie)
        .map_err(|e| Outcome::from_io(&e))
}

/// Loads `target` from the case's object (same maps) and puts it into `map[index]`.
fn prog_array_set(
    program: &LoadedProgram,
    map: &str,
    index: u32,
    target: &str,
) -> Result<OwnedFd, Outcome> {
    let map = program.map(map).map_err(|e| harness_error(&chain(&e)))?;
    let (attempt, fd) = program
        .load_sibling(target)
        .map_err(|e| harness_error(&chain(&e)))?;
    let fd = match (attempt.result, fd) {
        (Ok(()), Some(fd)) => fd,
        (Err(error), _) => return Err(Outcome::from_io(&error)),
        (Ok(()), None) => return Err(harness_error("the loader returned no fd")),
    };
    bpf_sys::prog_array_update(map, index, fd.as_fd()).map_err(|e| Outcome::from_io(&e))?;
    Ok(fd)
}

/// Loads `extension` (a `freplace/<function>` program of the case's object) against the
/// case's program and attaches it; the link keeps the replacement (and the program) alive.
fn freplace(program: &LoadedProgram, extension: &str) -> Result<OwnedFd, Outcome> {
    let (attempt, fd) = program
        .load_sibling(extension)
        .map_err(|e| harness_error(&chain(&e)))?;
    let fd = match (attempt.result, fd) {
        (Ok(()), Some(fd)) => fd,
        (Err(error), _) => return Err(Outcome::from_io(&error)),
        (Ok(()), None) => return Err(harness_error("the loader returned no fd")),
    };
    bpf_sys::tracing_attach(fd.as_fd()).map_err(|e| Outcome::from_io(&e))
}

fn harness_error(message: &str) -> Outcome {
    Outcome::Error {
        message: message.to_owned(),
    }
}

/// An error with every cause after it (`creating map counts: failed to create map: Invalid
/// argument (os error 22)`): the kernel's answer is usually the last one.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
