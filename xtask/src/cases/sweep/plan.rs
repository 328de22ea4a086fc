//! The sweep's part of a kernel's plan: which tracepoints this kernel sweeps and the
//! programs as the guest takes them ([`protocol::SweepPlan`]). Pure.
//!
//! The tracepoints, with their writable size and argument count, are the kernel's own: read
//! from the built vmlinux and the modules the guest loads ([`crate::kernel::raw_tp`]), every
//! one whose `writable_size` is not 0, one sweep each (`sweep.<tracepoint>`). A tracepoint is
//! named as case files name it: where the manifest renames one (`tracepoint_names`: 7.2's
//! `bpf_testmod_test_writable_bare_tp`), the sweep keeps the name the other kernels have, so
//! one `--case` and one snapshot name cover every kernel, and the guest attaches the kernel's.
//! A module's tracepoint is there because its module is one the guest loads before the
//! sweeps run (bpf_testmod, a case directory's own modules).

use std::path::PathBuf;

use protocol::{SweepPlan, SweepProgram};
use serde::{Deserialize, Serialize};

use super::model::predict;
use super::trigger::Trigger;
use super::{insn, ProgType, Program, Tracepoint};
use crate::kernel::manifest::Manifest;
use crate::kernel::raw_tp::RawTracepoint;

/// Whether the normal `cargo xtask vmtest` run (the built-in cases, measuring) includes every
/// writable tracepoint's sweep; otherwise `--case sweep.<tracepoint>` asks for one.
pub const IN_THE_NORMAL_RUN: bool = true;

/// The sweeps of the built-in runs' tracepoints (vmlinux's and bpf_testmod's), in the order
/// the docs and the bench take them; every kernel has its own list ([`of_kernel`]).
pub const BUILT_IN: [&str; 3] = [
    "sweep.bpf_test_finish",
    "sweep.bpf_testmod_test_writable_bare",
    "sweep.nbd_send_request",
];

/// The prefix of a sweep's case name: `sweep.<tracepoint>`.
pub const PREFIX: &str = "sweep.";

/// One writable tracepoint of one kernel, as the sweep takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Named as case files name it; the size and argument count are the kernel's.
    pub tracepoint: Tracepoint,
    /// The name the kernel gives it (what BPF_RAW_TRACEPOINT_OPEN takes).
    pub kernel_name: String,
    /// The module that defines it (loaded by the guest before the sweeps); `None`: vmlinux.
    #[serde(default)]
    pub module: Option<PathBuf>,
    /// One cell of the sweep: only the program of this name (`sweep.<tp>.<access>`), asked
    /// for by that name, e.g. as `bisect`'s case; `None`: the whole family.
    #[serde(default)]
    pub program: Option<String>,
}

impl Sweep {
    pub fn case_name(&self) -> String {
        match &self.program {
            Some(program) => program.clone(),
            None => case_name(&self.tracepoint),
        }
    }

    pub fn trigger(&self) -> Trigger {
        Trigger::of(&self.tracepoint)
    }
}

/// A sweep a run asked for, on one kernel: the tracepoint, or why this kernel has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Asked {
    Runs(Sweep),
    Missing { case: String, reason: String },
}

impl Asked {
    pub fn case_name(&self) -> String {
        match self {
            Asked::Runs(sweep) => sweep.case_name(),
            Asked::Missing { case, .. } => case.clone(),
        }
    }
}

/// The sweep's case name for a tracepoint.
pub fn case_name(tp: &Tracepoint) -> String {
    format!("{PREFIX}{}", tp.name)
}

/// Whether a case name names a sweep (`sweep.<tracepoint>`) or one of its programs
/// (`sweep.<tracepoint>.<access>`); which tracepoints exist is each kernel's answer.
pub fn is_sweep(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|rest| {
        let tracepoint = rest.split('.').next().unwrap_or_default();
        !tracepoint.is_empty()
            && tracepoint
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The sweep's case name a sweep or cell name belongs to (`sweep.<tracepoint>`).
fn family_of(name: &str) -> String {
    let rest = name.strip_prefix(PREFIX).unwrap_or(name);
    format!("{PREFIX}{}", rest.split('.').next().unwrap_or_default())
}

/// The kernel's writable tracepoints as sweeps, named as case files name them (the
/// manifest's `tracepoint_names` undone).
pub fn of_kernel(manifest: &Manifest, found: &[RawTracepoint]) -> Vec<Sweep> {
    found
        .iter()
        .filter(|raw| raw.writable_size > 0)
        .map(|raw| {
            let name = manifest
                .tracepoint_names
                .iter()
                .find(|(_, kernel)| **kernel == raw.name)
                .map_or(raw.name.as_str(), |(ours, _)| ours.as_str());
            Sweep {
                tracepoint: Tracepoint::new(name, raw.writable_size, raw.num_args),
                kernel_name: raw.name.clone(),
                module: raw.module.clone(),
                program: None,
            }
        })
        .collect()
}

/// The sweeps of those `asked` (case names; others are ignored) on a kernel with `sweeps`,
/// plus every one of them when `all`. A name the kernel has no writable tracepoint for is
/// [`Asked::Missing`], with the ones it has.
pub fn for_kernel(kernel: &str, sweeps: &[Sweep], asked: &[String], all: bool) -> Vec<Asked> {
    let mut chosen: Vec<Asked> = Vec::new();
    let named = asked.iter().filter(|name| is_sweep(name));
    for name in named {
        if chosen.iter().any(|a| a.case_name() == *name) {
            continue;
        }
        let family = family_of(name);
        chosen.push(match sweeps.iter().find(|s| s.case_name() == family) {
            Some(sweep) if family == *name => Asked::Runs(sweep.clone()),
            Some(sweep) => cell(sweep, name),
            None => Asked::Missing {
                case: name.clone(),
                reason: missing(kernel, &family, sweeps),
            },
        });
    }
    if all {
        for sweep in sweeps {
            if !chosen.iter().any(|a| a.case_name() == sweep.case_name()) {
                chosen.push(Asked::Runs(sweep.clone()));
            }
        }
    }
    chosen
}

/// One program of `sweep` as a case of its own, if the family has a program of that name.
fn cell(sweep: &Sweep, name: &str) -> Asked {
    match super::generate(&sweep.tracepoint)
        .iter()
        .any(|p| p.name == name)
    {
        true => Asked::Runs(Sweep {
            program: Some(name.to_owned()),
            ..sweep.clone()
        }),
        false => Asked::Missing {
            case: name.to_owned(),
            reason: format!(
                "the sweep of {} has no program `{name}` (its programs are named \
                 sweep.<tracepoint>.<access>, e.g. {}.stx.w.off0; the grid and the \
                 snapshot's deviations name them)",
                sweep.tracepoint.name,
                sweep.case_name()
            ),
        },
    }
}

fn missing(kernel: &str, name: &str, sweeps: &[Sweep]) -> String {
    let tracepoint = name.strip_prefix(PREFIX).unwrap_or(name);
    let have: Vec<&str> = sweeps.iter().map(|s| s.tracepoint.name.as_str()).collect();
    format!(
        "kernel {kernel} (vmlinux and the modules the guest loads) has no writable raw \
         tracepoint `{tracepoint}`; it has: {}",
        if have.is_empty() {
            "none".to_owned()
        } else {
            have.join(", ")
        }
    )
}

/// Whether the run asks for any sweep (the kernel's files are read only then).
pub fn any_asked(asked: &[String], all: bool) -> bool {
    all || asked.iter().any(|name| is_sweep(name))
}

/// The guest's sweep of `sweep`: every generated program, fired by its trigger where it
/// attaches unless the model says it writes outside the buffer (a tail-called store past the
/// end: the path no attach check covers would write the kernel's stack); a tracepoint without
/// a trigger is never fired.
pub fn guest_plan(sweep: &Sweep, interpreter: bool) -> SweepPlan {
    let tp = &sweep.tracepoint;
    let trigger = sweep.trigger();
    let programs = super::generate(tp)
        .iter()
        .filter(|program| {
            sweep
                .program
                .as_ref()
                .is_none_or(|only| *only == program.name)
        })
        .map(|program| {
            let expected = predict(program, tp);
            let fire = trigger.fires()
                && matches!(expected.attach, Some(Ok(())))
                && !expected.writes_outside(tp);
            guest_program(program, fire)
        })
        .collect();
    SweepPlan {
        name: sweep.case_name(),
        tracepoint: sweep.kernel_name.clone(),
        programs,
        interpreter: interpreter && trigger.fires(),
        trigger: trigger.protocol(),
    }
}

fn guest_program(program: &Program, fire: bool) -> SweepProgram {
    SweepProgram {
        name: program.name.clone(),
        prog_type: prog_type(program.prog_type),
        insns: program.insns.iter().map(to_protocol).collect(),
        prog_array_at: program.relocations.first().map(|r| r.insn),
        callee: program
            .tail_call
            .as_ref()
            .map(|callee| callee.insns.iter().map(to_protocol).collect()),
        fire,
    }
}

fn prog_type(prog_type: ProgType) -> protocol::ProgType {
    match prog_type {
        ProgType::RawTracepoint => protocol::ProgType::RawTracepoint,
        ProgType::RawTracepointWritable => protocol::ProgType::RawTracepointWritable,
    }
}

/// The sweep's instruction as the plan's (the same `struct bpf_insn` fields).
pub fn to_protocol(insn: &insn::Insn) -> protocol::Insn {
    protocol::Insn {
        code: insn.code,
        dst: insn.dst_reg,
        src: insn.src_reg,
        off: insn.off,
        imm: insn.imm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(name: &str, writable_size: u32, arg_count: u32) -> Sweep {
        Sweep {
            tracepoint: Tracepoint::new(name, writable_size, arg_count),
            kernel_name: name.into(),
            module: None,
            program: None,
        }
    }

    #[test]
    fn one_program_of_a_sweep_is_a_case_of_its_own() {
        let sweeps = [sweep("bpf_test_finish", 4, 1)];
        let name = "sweep.bpf_test_finish.stx.w.off1".to_owned();
        assert!(is_sweep(&name));
        let asked = for_kernel("6.12", &sweeps, std::slice::from_ref(&name), false);
        let [Asked::Runs(cell)] = asked.as_slice() else {
            panic!("{asked:?}");
        };
        assert_eq!(cell.case_name(), name);
        let plan = guest_plan(cell, true);
        assert_eq!(
            plan.name, name,
            "the records come back under the cell's name"
        );
        assert_eq!(plan.programs.len(), 1);
        assert_eq!(plan.programs[0].name, name);
        let unknown = "sweep.bpf_test_finish.stx.w.off99".to_owned();
        let asked = for_kernel("6.12", &sweeps, &[unknown], false);
        let [Asked::Missing { reason, .. }] = asked.as_slice() else {
            panic!("{asked:?}");
        };
        assert!(
            reason.contains("has no program `sweep.bpf_test_finish.stx.w.off99`"),
            "{reason}"
        );
    }

    #[test]
    fn the_plan_fires_what_attaches_inside_the_buffer_only() {
        let plan = guest_plan(&sweep("bpf_test_finish", 4, 1), true);
        assert_eq!(plan.name, "sweep.bpf_test_finish");
        assert_eq!(plan.programs.len(), 2158);
        assert_eq!(plan.trigger, protocol::SweepTrigger::TestRun);
        assert!(plan.interpreter);
        let by_name = |name: &str| {
            plan.programs
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert!(by_name("sweep.bpf_test_finish.stx.w.off0").fire);
        assert!(!by_name("sweep.bpf_test_finish.stx.w.off1").fire);
        let tail = by_name("sweep.bpf_test_finish.tail.stx.w.off1");
        assert!(!tail.fire, "writes past the buffer through a tail call");
        assert_eq!(tail.prog_array_at, Some(0));
        assert!(tail.callee.is_some());
        assert_eq!(tail.insns[0].src, insn::BPF_PSEUDO_MAP_FD);
        let json = serde_json::to_string(&plan).unwrap();
        assert!(json.len() < 2_000_000, "{} bytes", json.len());
    }

    #[test]
    fn a_tracepoint_without_a_trigger_is_loaded_and_attached_only() {
        let plan = guest_plan(&sweep("nbd_send_request", 28, 3), true);
        assert_eq!(plan.trigger, protocol::SweepTrigger::None);
        assert!(!plan.interpreter);
        assert!(plan.programs.iter().all(|p| !p.fire));
        let testmod = Sweep {
            kernel_name: "bpf_testmod_test_writable_bare_tp".into(),
            ..sweep("bpf_testmod_test_writable_bare", 8, 1)
        };
        let plan = guest_plan(&testmod, true);
        assert_eq!(plan.name, "sweep.bpf_testmod_test_writable_bare");
        assert_eq!(plan.tracepoint, "bpf_testmod_test_writable_bare_tp");
        assert_eq!(plan.trigger, protocol::SweepTrigger::TestmodRead);
        assert!(plan.programs.iter().any(|p| p.fire));
    }

    #[test]
    fn the_kernels_tracepoints_become_sweeps_named_as_cases_name_them() {
        let mut manifest = crate::test_support::manifest(&[]);
        manifest.tracepoint_names = [(
            "bpf_testmod_test_writable_bare".to_owned(),
            "bpf_testmod_test_writable_bare_tp".to_owned(),
        )]
        .into();
        let raw = |name: &str, num_args, writable_size, module: Option<&str>| RawTracepoint {
            name: name.into(),
            num_args,
            writable_size,
            module: module.map(PathBuf::from),
        };
        let found = [
            raw("bpf_test_finish", 1, 4, None),
            raw("sched_switch", 4, 0, None),
            raw(
                "bpf_testmod_test_writable_bare_tp",
                1,
                8,
                Some("/m/bpf_testmod.ko"),
            ),
        ];
        let sweeps = of_kernel(&manifest, &found);
        let names: Vec<(String, &str, u32, u32)> = sweeps
            .iter()
            .map(|s| {
                (
                    s.case_name(),
                    s.kernel_name.as_str(),
                    s.tracepoint.writable_size,
                    s.tracepoint.arg_count,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("sweep.bpf_test_finish".to_owned(), "bpf_test_finish", 4, 1),
                (
                    "sweep.bpf_testmod_test_writable_bare".to_owned(),
                    "bpf_testmod_test_writable_bare_tp",
                    8,
                    1
                ),
            ]
        );
        assert_eq!(sweeps[1].module, Some(PathBuf::from("/m/bpf_testmod.ko")));
    }

    #[test]
    fn a_sweep_is_asked_by_name_or_all_and_a_missing_one_says_what_there_is() {
        let sweeps = [
            sweep("bpf_test_finish", 4, 1),
            sweep("nbd_send_request", 28, 3),
        ];
        let asked = [
            "sweep.nbd_send_request".to_owned(),
            "bare_early_ret".to_owned(),
            "sweep.bpf_testmod_test_writable_bare".to_owned(),
            "sweep.nbd_send_request".to_owned(),
        ];
        let chosen = for_kernel("5.10", &sweeps, &asked, false);
        assert_eq!(chosen.len(), 2);
        assert_eq!(chosen[0], Asked::Runs(sweeps[1].clone()));
        let Asked::Missing { case, reason } = &chosen[1] else {
            panic!("{chosen:?}")
        };
        assert_eq!(case, "sweep.bpf_testmod_test_writable_bare");
        assert!(
            reason.ends_with("no writable raw tracepoint `bpf_testmod_test_writable_bare`; it has: bpf_test_finish, nbd_send_request"),
            "{reason}"
        );
        let every = for_kernel("6.12", &sweeps, &asked[..1], true);
        let names: Vec<String> = every.iter().map(Asked::case_name).collect();
        assert_eq!(names, ["sweep.nbd_send_request", "sweep.bpf_test_finish"]);
        assert!(for_kernel("6.12", &sweeps, &[], false).is_empty());
        assert!(any_asked(&asked, false) && !any_asked(&asked[1..2], false));
        assert!(is_sweep("sweep.wtp_own_rewrite") && !is_sweep("sweep.") && !is_sweep("sweep.a/b"));
    }
}
