//! Fixtures shared by the unit tests of several modules.

use protocol::{CaseResult, LibbpfAnswer, LoadReport, Outcome, Phase, Record};

use crate::cases::CaseOutcome;
use crate::judge::snapshots::SnapshotCheck;
use crate::judge::Row;

/// A case that loaded (type 24) and ran no steps.
pub fn loaded(case: &str) -> CaseResult {
    CaseResult {
        case: case.into(),
        phase: Phase::Loaded,
        load: LoadReport {
            outcome: Outcome::ok(),
            prog_type: Some(protocol::ProgType::RawTracepointWritable),
            insn_count: 1,
            verifier_log: String::new(),
            notes: Vec::new(),
        },
        steps: vec![],
        libbpf: Some(libbpf_loaded()),
    }
}

/// libbpf's answer for a program that loaded and was not attached.
pub fn libbpf_loaded() -> LibbpfAnswer {
    LibbpfAnswer {
        load: Outcome::ok(),
        reached_verifier: true,
        verdict: String::new(),
        attach: None,
        messages: Vec::new(),
        steps: Vec::new(),
    }
}

/// The result with libbpf's program having gone through the same steps with the same
/// outcomes (those libbpf runs: up to the first it does not).
pub fn libbpf_ran_the_same(mut result: CaseResult) -> CaseResult {
    let same = result
        .steps
        .iter()
        .take_while(|record| record.step.libbpf_skips().is_none())
        .cloned()
        .collect();
    if let Some(libbpf) = &mut result.libbpf {
        libbpf.steps = same;
    }
    result
}

pub fn ran(case: &str) -> CaseOutcome {
    CaseOutcome::Ran(loaded(case))
}

/// The results-file line of a finished case.
pub fn finished_line(case: &str) -> String {
    serde_json::to_string(&Record::Finished(Box::new(loaded(case)))).unwrap() + "\n"
}

/// A report row with the given deviations; unsupported when the outcome says so.
pub fn row(case: &str, outcome: CaseOutcome, deviations: &[&str]) -> Row {
    let unsupported = match &outcome {
        CaseOutcome::Unsupported { reason } => Some(reason.clone()),
        _ => None,
    };
    Row {
        case: case.into(),
        outcome,
        deviations: deviations.iter().map(|d| d.to_string()).collect(),
        snapshot: SnapshotCheck::Matches,
        proposed: None,
        known: vec![],
        unsupported,
        notes: vec![],
        upstream_name: None,
    }
}

/// A load-only case that requires `requires`.
pub fn case(name: &str, requires: &[&str]) -> crate::cases::Case {
    crate::cases::Case {
        name: name.into(),
        description: String::new(),
        program: None,
        function: None,
        requires: requires.iter().map(|r| r.to_string()).collect(),
        load: crate::cases::Expect::Ok,
        load_on: Default::default(),
        log_contains: vec![],
        log_sequence: Vec::new(),
        log_level: None,
        globals: Default::default(),
        flags: vec![],
        source: None,
        insns: None,
        steps: vec![],
    }
}

/// The 6.12 manifest of a local tree with these features.
pub fn manifest(features: &[&str]) -> crate::kernel::manifest::Manifest {
    crate::kernel::manifest::Manifest {
        name: "6.12".into(),
        source: crate::kernel::manifest::SourceSpec::Local {
            path: "/tree".into(),
        },
        fragments: vec![],
        testmod_dir: None,
        features: features.iter().map(|f| f.to_string()).collect(),
        tracepoint_names: Default::default(),
    }
}
