//! The sweep's part of a kernel's plan: which tracepoints this kernel sweeps and the
//! programs as the guest takes them ([`protocol::SweepPlan`]). Pure.
//!
//! The tracepoint's writable size and argument count come from here, not from the running
//! kernel: the raw tracepoint's `writable_size` (`struct bpf_raw_event_map`) is not exported to
//! userspace, and the programs are generated on the host before the boot. bpf_test_finish is
//! `DECLARE_TRACE_WRITABLE(bpf_test_finish, TP_PROTO(int *err), TP_ARGS(err), sizeof(int))`
//! (net/bpf/trace/bpf_trace.h) in every kernel of the matrix: 4 bytes, 1 argument.

use protocol::{SweepPlan, SweepProgram};

use super::model::predict;
use super::{insn, ProgType, Program, Tracepoint};
use crate::kernel::manifest::Manifest;

/// Whether the normal `cargo xtask vmtest` run (the built-in cases, measuring) includes every
/// known sweep; otherwise `--case sweep.<tracepoint>` asks for one.
pub const IN_THE_NORMAL_RUN: bool = false;

/// The prefix of a sweep's case name: `sweep.<tracepoint>`.
pub const PREFIX: &str = "sweep.";

/// The tracepoints this project sweeps, with the feature a kernel needs for each.
pub fn known() -> Vec<(Tracepoint, &'static str)> {
    vec![(Tracepoint::new("bpf_test_finish", 4, 1), "bpf_test_finish")]
}

/// The sweep's case name for a tracepoint.
pub fn case_name(tp: &Tracepoint) -> String {
    format!("{PREFIX}{}", tp.name)
}

/// The known tracepoint a case name sweeps.
pub fn by_case_name(name: &str) -> Option<Tracepoint> {
    let tracepoint = name.strip_prefix(PREFIX)?;
    known()
        .into_iter()
        .map(|(tp, _)| tp)
        .find(|tp| tp.name == tracepoint)
}

/// The sweeps a kernel with these features runs, of those asked for.
pub fn for_kernel(manifest: &Manifest, asked: &[String]) -> Vec<Tracepoint> {
    known()
        .into_iter()
        .filter(|(_, feature)| manifest.features.contains(*feature))
        .map(|(tp, _)| tp)
        .filter(|tp| asked.contains(&case_name(tp)))
        .collect()
}

/// The guest's sweep of `tp`: every generated program, fired where it attaches unless the
/// model says it writes outside the buffer (a tail-called store past the end: the path no
/// attach check covers would write the kernel's stack).
pub fn guest_plan(tp: &Tracepoint, interpreter: bool) -> SweepPlan {
    let programs = super::generate(tp)
        .iter()
        .map(|program| {
            let expected = predict(program, tp);
            let fire = matches!(expected.attach, Some(Ok(()))) && !expected.writes_outside(tp);
            guest_program(program, fire)
        })
        .collect();
    SweepPlan {
        name: case_name(tp),
        tracepoint: tp.name.clone(),
        programs,
        interpreter,
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

    #[test]
    fn the_plan_fires_what_attaches_inside_the_buffer_only() {
        let tp = Tracepoint::new("bpf_test_finish", 4, 1);
        let plan = guest_plan(&tp, true);
        assert_eq!(plan.name, "sweep.bpf_test_finish");
        assert_eq!(plan.programs.len(), 2158);
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
}
