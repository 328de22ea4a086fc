//! Runs one case: load the program, then every step in order, recording what the kernel said;
//! then the second opinion: libbpf loads the same object and the same steps run on its program
//! ([`CaseProgram`] is what the steps need from either). The harness never judges outcomes;
//! the host compares them with the case's expectation and the two runs with each other.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use protocol::{
    CasePlan, CaseResult, LibbpfAnswer, LoadReport, Outcome, Phase, ProgramSource, Step, StepRecord,
};

use crate::bpf_sys;
use crate::faults;
use crate::links;
use crate::loader;
use crate::nbd::Connection;
use crate::program::{harness_error, CaseProgram, Link, OwnProgram};
use crate::reference;
use crate::triggers::{anything, nbd, test_run, testmod};

pub use crate::program::chain;

/// Runs one case. For a shell (`keep_pins`), what it pinned stays and libbpf is not asked.
pub fn run(
    plan: &CasePlan,
    tracepoint_names: &BTreeMap<String, String>,
    keep_pins: bool,
) -> CaseResult {
    let (load, program, chosen) = load(plan);
    let phase = match load.outcome.is_ok() {
        true => Phase::Loaded,
        false => Phase::Compiled,
    };
    let mut run = CaseRun::new(program, tracepoint_names, &plan.name, phase);
    let steps = plan
        .steps
        .iter()
        .map(|step| StepRecord {
            step: step.clone(),
            outcome: run.step(step),
        })
        .collect();
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
    run.end();
    let libbpf = second_opinion(plan, chosen.as_deref(), tracepoint_names);
    CaseResult {
        case: plan.name.clone(),
        phase,
        load,
        steps,
        libbpf: Some(libbpf),
    }
}

/// libbpf loads the case's program with what it needs (the tail-call targets the steps name;
/// the programs the object's prog-array initialisers name), then the case's steps run on it up
/// to the first one that cannot run twice in a boot ([`Step::libbpf_skips`]). If that stops
/// before the case's first `attach`, libbpf still attaches there ([`LibbpfAnswer::attach`]).
fn second_opinion(
    plan: &CasePlan,
    chosen: Option<&str>,
    tracepoint_names: &BTreeMap<String, String>,
) -> LibbpfAnswer {
    let session = reference::Session::start();
    let mut answer = match &plan.source {
        ProgramSource::Object { path, function } => {
            let tail_call_targets: Vec<&str> = plan
                .steps
                .iter()
                .filter_map(|step| match step {
                    Step::ProgArraySet { program, .. } => Some(program.as_str()),
                    _ => None,
                })
                .collect();
            let (mut answer, program) = session.load(&reference::Request {
                object: path,
                program: function.as_deref().or(chosen),
                globals: &plan.globals,
                prog_flags: plan.prog_flags,
                log_level: plan.log_level.unwrap_or(crate::bpf_sys::DEFAULT_LOG_LEVEL),
                tail_call_targets: &tail_call_targets,
            });
            if let Some(program) = program {
                run_libbpf_steps(program, plan, tracepoint_names, &mut answer);
            }
            answer
        }
        ProgramSource::Insns(insns) => {
            let (mut answer, program) = session.load_insns(insns, plan.prog_flags);
            if let Some(program) = program {
                run_libbpf_steps(program, plan, tracepoint_names, &mut answer);
            }
            answer
        }
    };
    session.finish(&mut answer);
    answer
}

/// The case's steps on libbpf's program, up to the first one that cannot run twice in a boot
/// ([`Step::libbpf_skips`]); if that stops before the case's first `attach`, libbpf still
/// attaches there ([`LibbpfAnswer::attach`]).
fn run_libbpf_steps<P: CaseProgram>(
    program: P,
    plan: &CasePlan,
    tracepoint_names: &BTreeMap<String, String>,
    answer: &mut LibbpfAnswer,
) {
    let mut run = CaseRun::new(Some(program), tracepoint_names, &plan.name, Phase::Loaded);
    for step in plan.steps.iter().take_while(|s| s.libbpf_skips().is_none()) {
        let outcome = run.step(step);
        answer.steps.push(StepRecord {
            step: step.clone(),
            outcome,
        });
    }
    let first_attach = plan
        .steps
        .iter()
        .position(|step| matches!(step, Step::Attach { .. }));
    answer.attach = first_attach.map(|index| {
        let outcome = match answer.steps.get(index) {
            Some(record) => record.outcome.clone(),
            None => run.step(&plan.steps[index]),
        };
        // The answer, not the tracepoint's name (which the own loader's step records).
        match outcome {
            Outcome::Ok { .. } => Outcome::ok(),
            other => other,
        }
    });
    run.end();
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

fn load(plan: &CasePlan) -> (LoadReport, Option<OwnProgram>, Option<String>) {
    let failed = |message: String| LoadReport {
        outcome: Outcome::Error { message },
        prog_type: None,
        insn_count: 0,
        verifier_log: String::new(),
        notes: Vec::new(),
    };
    let report = |attempt: loader::LoadAttempt| LoadReport {
        outcome: attempt
            .result
            .map_or_else(|e| Outcome::from_io(&e), |()| Outcome::ok()),
        prog_type: Some(attempt.prog_type),
        insn_count: attempt.insn_count,
        verifier_log: attempt.verifier_log,
        notes: attempt.notes,
    };
    let (path, function) = match &plan.source {
        ProgramSource::Object { path, function } => (path, function),
        ProgramSource::Insns(insns) => {
            let (attempt, program) = loader::insns::load(insns, plan.prog_flags);
            let name = attempt.program.clone();
            return (report(attempt), program.map(OwnProgram::Insns), Some(name));
        }
    };
    let object = match crate::read_once::read(&path.to_string_lossy()) {
        Ok(bytes) => bytes,
        Err(error) => {
            return (
                failed(format!("reading {}: {error}", path.display())),
                None,
                None,
            )
        }
    };
    let request = loader::LoadRequest {
        object: &object,
        program: function.as_deref(),
        globals: &plan.globals,
        prog_flags: plan.prog_flags,
        log_level: plan.log_level.unwrap_or(crate::bpf_sys::DEFAULT_LOG_LEVEL),
    };
    match loader::load(&request) {
        Ok((attempt, program)) => {
            let name = attempt.program.clone();
            (
                report(attempt),
                program.map(|p| OwnProgram::Object(Box::new(p))),
                Some(name),
            )
        }
        Err(error) => (failed(chain(&error)), None, None),
    }
}

/// State carried from step to step within one run of a case.
struct CaseRun<'a, P: CaseProgram> {
    program: Option<P>,
    tracepoint_names: &'a BTreeMap<String, String>,
    /// The raw tracepoint link; dropping it detaches the program.
    link: Option<Link>,
    /// The connected NBD device, if a step connected it; dropping it disconnects.
    nbd: Option<Connection>,
    /// The case's name (its pin's file name) and the pin, while there is one.
    case: String,
    pin: Option<std::path::PathBuf>,
    /// Programs loaded into prog array slots (the slots hold their own references, these
    /// fds keep the programs until the case ends) and extension links.
    added: Vec<Link>,
    phase: Phase,
}

impl<'a, P: CaseProgram> CaseRun<'a, P> {
    fn new(
        program: Option<P>,
        tracepoint_names: &'a BTreeMap<String, String>,
        case: &str,
        phase: Phase,
    ) -> Self {
        CaseRun {
            program,
            tracepoint_names,
            link: None,
            nbd: None,
            case: case.to_owned(),
            pin: None,
            added: Vec::new(),
            phase,
        }
    }

    /// Ends the run: the pin (if one is left) removed, then the links, the device and the
    /// program closed.
    fn end(mut self) {
        if let Some(pin) = self.pin.take() {
            let _already_gone = std::fs::remove_file(pin);
        }
    }

    fn step(&mut self, step: &Step) -> Outcome {
        let Some(program) = &mut self.program else {
            return harness_error("skipped: the program did not load");
        };
        let outcome = match step {
            Step::Attach { tracepoint, cookie } => {
                let name = attach_target(
                    tracepoint.as_deref(),
                    program.section_tracepoint(),
                    self.tracepoint_names,
                );
                let Some(name) = name else {
                    return harness_error(
                        "attach: no tracepoint named and none in the section name",
                    );
                };
                let name = name.to_owned();
                match program.attach(&name, *cookie) {
                    Ok(link) => {
                        self.link = Some(link);
                        self.phase = self.phase.max(Phase::Attached);
                        Outcome::value(name.into())
                    }
                    Err(outcome) => outcome,
                }
            }
            Step::AttachLink => match bpf_sys::link_create_raw_tp(program.fd()) {
                Ok(link) => {
                    self.link = Some(Link::Fd(link));
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
                Some(link) => links::info(link.as_fd(), program.fd()),
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
                    self.link = Some(Link::Fd(link));
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
                Some(link) => links::update(link.as_fd(), program.fd()),
                None => harness_error("link_update without a link"),
            },
            Step::SetGlobal { name, value } => program
                .write_global(name, *value)
                .map_or_else(|outcome| outcome, |()| Outcome::ok()),
            Step::ReadGlobal { name } => program
                .read_global(name)
                .map_or_else(|outcome| outcome, |v| Outcome::value(v.into())),
            Step::ProgArraySet {
                map,
                index,
                program: target,
            } => match prog_array_set(program, map, *index, target) {
                Ok(fd) => {
                    self.added.push(Link::Fd(fd));
                    Outcome::ok()
                }
                Err(outcome) => outcome,
            },
            Step::Freplace { program: extension } => match program.freplace(extension) {
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
            Step::TestRunSelf => test_run::run(program.fd()),
            Step::CrashKernel => faults::crash_kernel(),
            Step::Hang => faults::hang(),
            Step::AbortHarness => faults::abort_harness(),
            Step::HostWrite { path } => faults::write_file(path),
            Step::Exec { argv } => anything::exec(argv),
            Step::ReadFile { path, len } => anything::read_file(path, *len),
            Step::WriteFile { path, text } => anything::write_file(path, text),
        };
        if step.is_trigger() && self.link.is_some() {
            self.phase = self.phase.max(Phase::Triggered);
        }
        outcome
    }
}

/// Loads `target` from the case's object (same maps) and puts it into `map[index]`.
fn prog_array_set(
    program: &mut impl CaseProgram,
    map: &str,
    index: u32,
    target: &str,
) -> Result<OwnedFd, Outcome> {
    let map = program.map(map)?;
    let fd = program.sibling(target)?;
    bpf_sys::prog_array_update(map.as_fd(), index, fd.as_fd()).map_err(|e| Outcome::from_io(&e))?;
    Ok(fd)
}
