//! Judging results: each case's outcome against its expectation (a case that deviates fails
//! even if its snapshot was accepted), and the exact result against its per-kernel insta
//! snapshot (a changed log or value fails until reviewed).

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use protocol::{CaseResult, Outcome};
use serde::Serialize;

use crate::cases::{Case, Expect};
use crate::normalise;

/// What one case came to on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    /// The harness ran it; the result as recorded (verifier log normalised).
    Ran(CaseResult),
    /// The kernel lacks something the case needs; not run, not failed.
    Unsupported { reason: String },
    /// clang rejected the program; the case fails, the others still run.
    CompileError { message: String },
    /// The VM run ended before this case finished (panic, hang, crash); never snapshotted.
    NotRun { reason: String },
    /// A measured table (helper availability, the kfunc answer), snapshotted as is.
    Probe(serde_json::Value),
}

/// Differences between what a case expects on `kernel` and what happened; empty means it
/// passed.
pub fn deviations(case: &Case, kernel: &str, outcome: &CaseOutcome) -> Vec<String> {
    let result = match outcome {
        CaseOutcome::Ran(result) => result,
        CaseOutcome::Unsupported { .. } => return Vec::new(),
        CaseOutcome::CompileError { message } => return vec![format!("compile error: {message}")],
        CaseOutcome::NotRun { reason } => return vec![format!("not run: {reason}")],
        CaseOutcome::Probe(_) => return Vec::new(),
    };
    let mut found = Vec::new();
    let (load, _) = case.load_on(kernel);
    if !matches(load, &result.load.outcome) {
        found.push(format!(
            "load: expected {}, got {}",
            describe_expect(load),
            describe(&result.load.outcome)
        ));
    }
    if result.steps.len() != case.steps.len() {
        found.push(format!(
            "expected {} step results, got {}",
            case.steps.len(),
            result.steps.len()
        ));
    }
    for (index, (spec, record)) in case.steps.iter().zip(&result.steps).enumerate() {
        let (expect, _) = spec.expect_on(kernel);
        if !matches(expect, &record.outcome) {
            found.push(format!(
                "step {} ({}): expected {}, got {}",
                index + 1,
                step_name(&record.step),
                describe_expect(expect),
                describe(&record.outcome)
            ));
        }
    }
    found
}

/// Why the case counts as unsupported on this kernel although it ran: a step answered an
/// errno its case declares as "this kernel lacks the feature".
pub fn unsupported_reason(case: &Case, outcome: &CaseOutcome) -> Option<String> {
    let CaseOutcome::Ran(result) = outcome else {
        return None;
    };
    case.steps
        .iter()
        .zip(&result.steps)
        .enumerate()
        .find_map(|(index, (spec, record))| {
            let Outcome::Errno { name, .. } = &record.outcome else {
                return None;
            };
            spec.unsupported_if.contains(name).then(|| {
                format!(
                    "step {} ({}) answered {name}",
                    index + 1,
                    step_name(&record.step)
                )
            })
        })
}

/// The known deviations a case declares for `kernel` (shown in the report with their reason).
pub fn known_deviations(case: &Case, kernel: &str) -> Vec<String> {
    let load = case.load_on(kernel).1.map(|why| format!("load: {why}"));
    let steps = case.steps.iter().enumerate().filter_map(|(index, step)| {
        step.expect_on(kernel)
            .1
            .map(|why| format!("step {} ({}): {why}", index + 1, step_name(&step.step)))
    });
    load.into_iter().chain(steps).collect()
}

pub fn matches(expect: &Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (Expect::Word(word), Outcome::Ok { .. }) => word == "ok",
        (Expect::Word(word), Outcome::Errno { name, .. }) => word == name,
        (Expect::Value { value }, Outcome::Ok { value: Some(got) }) => value == got,
        _ => false,
    }
}

/// A short form of an outcome for tables and messages: `ok`, `ok 1024`, `EINVAL`, `error: ...`.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { value: None } => "ok".into(),
        Outcome::Ok { value: Some(value) } => format!("ok {value}"),
        Outcome::Errno { name, .. } => name.clone(),
        Outcome::Error { message } => format!("error: {message}"),
    }
}

fn describe_expect(expect: &Expect) -> String {
    match expect {
        Expect::Word(word) => word.clone(),
        Expect::Value { value } => format!("ok {value}"),
    }
}

pub fn step_name(step: &protocol::Step) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v["do"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The outcome as it goes into a snapshot: logs normalised.
pub fn normalised(mut outcome: CaseOutcome) -> CaseOutcome {
    if let CaseOutcome::Ran(result) = &mut outcome {
        result.load.verifier_log = normalise::verifier_log(&result.load.verifier_log);
    }
    outcome
}

/// Compares `outcome` with the snapshot `<dir>/<case>.snap`; true when it matches (or was
/// accepted). insta prints the diff on a mismatch and, outside CI, leaves a `.snap.new`.
pub fn snapshot_matches(dir: &Path, case: &Case, outcome: &CaseOutcome) -> bool {
    snapshot_named(dir, &case.name, case.description.trim(), outcome)
}

/// Like [`snapshot_matches`] for anything that is not a case (the probe tables).
pub fn snapshot_named(dir: &Path, name: &str, description: &str, outcome: &CaseOutcome) -> bool {
    let mut settings = insta::Settings::clone_current();
    settings.set_description(description);
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_sort_maps(true);
    let quiet_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let matched = settings.bind(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            insta::assert_yaml_snapshot!(name, outcome)
        }))
        .is_ok()
    });
    panic::set_hook(quiet_hook);
    matched
}

#[cfg(test)]
mod tests {
    use protocol::{LoadReport, Phase, Step, StepRecord};
    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::cases::CaseStep;

    #[rstest]
    #[case(Expect::Word("ok".into()), Outcome::ok(), true)]
    #[case(Expect::Word("ok".into()), Outcome::value(json!(3)), true)]
    #[case(Expect::Word("ok".into()), Outcome::errno(22), false)]
    #[case(Expect::Word("EINVAL".into()), Outcome::errno(22), true)]
    #[case(Expect::Word("EINVAL".into()), Outcome::errno(13), false)]
    #[case(Expect::Word("EINVAL".into()), Outcome::ok(), false)]
    #[case(Expect::Value { value: json!(1024) }, Outcome::value(json!(1024)), true)]
    #[case(Expect::Value { value: json!(1024) }, Outcome::value(json!(1023)), false)]
    #[case(Expect::Value { value: json!(1024) }, Outcome::ok(), false)]
    #[case(Expect::Word("ok".into()), Outcome::Error { message: "x".into() }, false)]
    fn expectations_match_outcomes(
        #[case] expect: Expect,
        #[case] outcome: Outcome,
        #[case] ok: bool,
    ) {
        assert_eq!(matches(&expect, &outcome), ok);
    }

    fn case(steps: Vec<CaseStep>) -> Case {
        Case {
            name: "c".into(),
            description: String::new(),
            program: None,
            function: None,
            requires: vec![],
            load: Expect::Word("ok".into()),
            load_on: Default::default(),
            globals: Default::default(),
            steps,
        }
    }

    fn ran(load: Outcome, steps: Vec<(Step, Outcome)>) -> CaseOutcome {
        CaseOutcome::Ran(CaseResult {
            case: "c".into(),
            phase: Phase::Loaded,
            load: LoadReport {
                outcome: load,
                prog_type: 24,
                insn_count: 3,
                verifier_log: String::new(),
            },
            steps: steps
                .into_iter()
                .map(|(step, outcome)| StepRecord { step, outcome })
                .collect(),
        })
    }

    #[test]
    fn deviations_name_the_step_and_both_sides() {
        let spec = case(vec![
            CaseStep {
                step: Step::Attach { tracepoint: None },
                expect: Expect::Word("ok".into()),
                on: Default::default(),
                unsupported_if: vec!["EINVAL".into()],
            },
            CaseStep {
                step: Step::TestmodRead,
                expect: Expect::Word("EIO".into()),
                on: Default::default(),
                unsupported_if: vec![],
            },
        ]);
        let good = ran(
            Outcome::ok(),
            vec![
                (
                    Step::Attach { tracepoint: None },
                    Outcome::value(json!("tp")),
                ),
                (Step::TestmodRead, Outcome::errno(5)),
            ],
        );
        assert!(deviations(&spec, "6.12", &good).is_empty());

        let bad = ran(
            Outcome::ok(),
            vec![
                (
                    Step::Attach { tracepoint: None },
                    Outcome::value(json!("tp")),
                ),
                (Step::TestmodRead, Outcome::value(json!({"len": 5}))),
            ],
        );
        assert_eq!(
            deviations(&spec, "6.12", &bad),
            vec![r#"step 2 (testmod_read): expected EIO, got ok {"len":5}"#]
        );

        let no_link = ran(
            Outcome::ok(),
            vec![(Step::Attach { tracepoint: None }, Outcome::errno(22))],
        );
        assert_eq!(
            unsupported_reason(&spec, &no_link).as_deref(),
            Some("step 1 (attach) answered EINVAL")
        );
        assert_eq!(unsupported_reason(&spec, &good), None);

        let rejected = ran(Outcome::errno(13), vec![]);
        let found = deviations(&spec, "6.12", &rejected);
        assert_eq!(found[0], "load: expected ok, got EACCES");
        assert_eq!(found[1], "expected 2 step results, got 0");
    }

    #[test]
    fn unsupported_is_not_a_deviation_but_a_compile_error_is() {
        let spec = case(vec![]);
        let unsupported = CaseOutcome::Unsupported {
            reason: "no bpf_testmod".into(),
        };
        assert!(deviations(&spec, "6.12", &unsupported).is_empty());
        let broken = CaseOutcome::CompileError {
            message: "x.bpf.c:3: error".into(),
        };
        assert_eq!(
            deviations(&spec, "6.12", &broken),
            vec!["compile error: x.bpf.c:3: error"]
        );
    }

    #[test]
    fn snapshots_match_accept_and_detect_changes() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = CaseOutcome::Unsupported {
            reason: "needs bpf_testmod".into(),
        };
        std::fs::write(
            dir.path().join("c.snap"),
            "---\nsource: xtask/src/compare.rs\n---\nunsupported:\n  reason: needs bpf_testmod\n",
        )
        .unwrap();
        let spec = case(vec![]);
        assert!(snapshot_matches(dir.path(), &spec, &outcome));
        let changed = CaseOutcome::Unsupported {
            reason: "needs nbd".into(),
        };
        assert!(!snapshot_matches(dir.path(), &spec, &changed));
    }
}
