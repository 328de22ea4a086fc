//! Judging, pure: the guest's records, the cases' expectations (with their known answers per
//! kernel) and the stored snapshots become one [`Row`] per case with a [`Verdict`]. Nothing
//! here reads files or the environment: the stored snapshots come in as data and what to write
//! goes out as data ([`Row::snapshot`], [`Row::proposed`]).

pub mod compare;
pub mod helpers;
pub mod normalise;
pub mod run;
pub mod snapshots;
pub mod sweep;
pub mod sweep_doc;
pub mod upstream_doc;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::cases::plan::KernelPlan;
use crate::cases::Case;
use crate::cases::CaseOutcome;
use crate::guest::results::{RunFailure, RunRecords};
use snapshots::{Snapshot, SnapshotCheck};

/// What one case came to on one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The kernel lacks what the case needs (a feature, or it answered a declared errno).
    Unsupported,
    /// It deviates from its expectation (or did not compile).
    Fail,
    /// It meets its expectation but its result differs from the reviewed snapshot.
    SnapshotDiffers,
    /// It meets its expectation and has no snapshot yet.
    NewSnapshot,
    /// The VM run ended before it finished.
    NotRun,
}

impl Verdict {
    pub fn is_failure(self) -> bool {
        !matches!(self, Verdict::Pass | Verdict::Unsupported)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Pass => "pass",
            Verdict::Unsupported => "unsupported",
            Verdict::Fail => "FAIL",
            Verdict::SnapshotDiffers => "SNAPSHOT",
            Verdict::NewSnapshot => "NEW",
            Verdict::NotRun => "NOT RUN",
        })
    }
}

/// One case (or probe table) on one kernel.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: String,
    pub outcome: CaseOutcome,
    pub deviations: Vec<String>,
    pub snapshot: SnapshotCheck,
    /// The result as it would be stored; `None` for what is never snapshotted (not run).
    pub proposed: Option<Snapshot>,
    /// Known answers of this kernel that the case declares, with their reasons.
    pub known: Vec<String>,
    /// Why the case is unsupported on this kernel, if it is.
    pub unsupported: Option<String>,
    /// What was not checked, with why (the steps libbpf's run left to the own loader).
    pub notes: Vec<String>,
    /// For one of upstream's tests, upstream's name of it (`<file>/<program or subtest>`).
    pub upstream_name: Option<String>,
}

impl Row {
    pub fn verdict(&self) -> Verdict {
        if matches!(self.outcome, CaseOutcome::NotRun { .. }) {
            return Verdict::NotRun;
        }
        if !self.deviations.is_empty() {
            return Verdict::Fail;
        }
        match (&self.snapshot, &self.unsupported) {
            (SnapshotCheck::Differs { .. }, _) => Verdict::SnapshotDiffers,
            (SnapshotCheck::New, _) => Verdict::NewSnapshot,
            (_, Some(_)) => Verdict::Unsupported,
            _ => Verdict::Pass,
        }
    }

    pub fn passed(&self) -> bool {
        !self.verdict().is_failure()
    }
}

/// How the snapshots take part in judging.
#[derive(Debug, Clone, PartialEq)]
pub enum Snapshots {
    /// Judge by expectations only (bisect).
    Ignored,
    /// Compare with the stored bodies (name → body; absent: no snapshot yet).
    Compared {
        stored: BTreeMap<String, String>,
        accept: bool,
    },
}

/// Everything judging a kernel needs besides the outcomes.
#[derive(Debug, Clone)]
pub struct Judge<'a> {
    pub kernel: &'a str,
    pub snapshots: Snapshots,
    /// Host directories that appear in compiler messages, with what replaces them.
    pub host_paths: Vec<(&'a Path, &'a str)>,
}

/// Every planned case's outcome: decided before the boot, or from the guest's records. A
/// finished case keeps its result whatever happened later. Records are data: one for a case
/// the plan does not have (e.g. a hostile `../../x` name) is ignored.
pub fn outcomes(
    plan: &KernelPlan,
    records: &RunRecords,
    failure: Option<&RunFailure>,
) -> BTreeMap<String, CaseOutcome> {
    let ran = plan.guest.cases.iter().map(|case| {
        let outcome = match (records.finished.get(&case.name), failure) {
            (Some(result), _) => CaseOutcome::Ran(result.clone()),
            (None, Some(failure)) => CaseOutcome::NotRun {
                reason: failure.describe(),
            },
            (None, None) => CaseOutcome::NotRun {
                reason: "the results have no record of it".into(),
            },
        };
        (case.name.clone(), outcome)
    });
    plan.decided.clone().into_iter().chain(ran).collect()
}

impl Judge<'_> {
    /// One row per case that has an outcome, in the case set's order.
    pub fn cases(&self, cases: &[Case], mut outcomes: BTreeMap<String, CaseOutcome>) -> Vec<Row> {
        cases
            .iter()
            .filter_map(|case| {
                let outcome = outcomes.remove(&case.name)?;
                Some(self.case(case, outcome))
            })
            .collect()
    }

    fn case(&self, case: &Case, outcome: CaseOutcome) -> Row {
        let outcome = self.without_noise(outcome);
        let unsupported = match &outcome {
            CaseOutcome::Unsupported { reason } => Some(reason.clone()),
            other => compare::unsupported_reason(case, other),
        };
        // An unsupported case is no failure, but the loaders must still agree on it.
        let deviations = match (&unsupported, &outcome) {
            (Some(_), CaseOutcome::Ran(result)) => {
                compare::second_opinion(result).into_iter().collect()
            }
            (Some(_), _) => Vec::new(),
            (None, _) => compare::deviations(case, self.kernel, &outcome),
        };
        let (snapshot, proposed) = self.snapshot(
            &case.name,
            &case.description,
            &compare::for_snapshot(outcome.clone()),
            &deviations,
        );
        Row {
            case: case.name.clone(),
            deviations,
            snapshot,
            proposed,
            known: compare::known_deviations(case, self.kernel),
            unsupported,
            notes: match &outcome {
                CaseOutcome::Ran(result) => compare::libbpf_unchecked(result).into_iter().collect(),
                _ => Vec::new(),
            },
            outcome,
            upstream_name: None,
        }
    }

    /// A measured table (helpers, kfuncs): no expectation, only its snapshot.
    pub fn probe(&self, name: &str, description: &str, outcome: CaseOutcome) -> Row {
        let deviations = match &outcome {
            CaseOutcome::NotRun { reason } => vec![format!("not run: {reason}")],
            _ => Vec::new(),
        };
        let (snapshot, proposed) = self.snapshot(name, description, &outcome, &deviations);
        Row {
            case: name.to_owned(),
            outcome,
            deviations,
            snapshot,
            proposed,
            known: Vec::new(),
            unsupported: None,
            notes: Vec::new(),
            upstream_name: None,
        }
    }

    /// The snapshot's verdict, and the result as it would be stored. With `accept`, a
    /// deviating result is refused: accepting a wrong result would hide it.
    fn snapshot(
        &self,
        name: &str,
        description: &str,
        outcome: &CaseOutcome,
        deviations: &[String],
    ) -> (SnapshotCheck, Option<Snapshot>) {
        if matches!(outcome, CaseOutcome::NotRun { .. }) {
            return (SnapshotCheck::Skipped, None);
        }
        let proposed = Snapshot::of(description, outcome);
        let check = match &self.snapshots {
            Snapshots::Ignored => SnapshotCheck::Skipped,
            Snapshots::Compared { accept: true, .. } if !deviations.is_empty() => {
                SnapshotCheck::Refused
            }
            Snapshots::Compared { stored, accept } => {
                match snapshots::check(stored.get(name).map(String::as_str), &proposed) {
                    SnapshotCheck::Matches => SnapshotCheck::Matches,
                    _ if *accept => SnapshotCheck::Accepted,
                    other => other,
                }
            }
        };
        (check, Some(proposed))
    }

    /// Verifier logs normalised; compile errors without this checkout's paths.
    /// Compile errors and verifier logs (whose source lines name the file clang compiled)
    /// without this machine's paths.
    fn without_noise(&self, outcome: CaseOutcome) -> CaseOutcome {
        let paths = |text: &str| normalise::host_paths(text, &self.host_paths);
        match compare::normalised(outcome) {
            CaseOutcome::CompileError { message } => CaseOutcome::CompileError {
                message: paths(&message),
            },
            CaseOutcome::Ran(mut result) => {
                result.load.verifier_log = paths(&result.load.verifier_log);
                if let Some(libbpf) = &mut result.libbpf {
                    libbpf.verdict = paths(&libbpf.verdict);
                }
                CaseOutcome::Ran(result)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::{CasePlan, Outcome, Plan, Step};
    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::cases::{CaseStep, Expect, KnownAnswer};
    use crate::test_support;

    /// A case: attach must work, then a read must fail with EIO (EINVAL on attach means the
    /// kernel lacks the feature); 6.1 is known to answer EBADF on the read.
    fn case() -> Case {
        Case {
            name: "c".into(),
            description: "reads fail after attach".into(),
            program: None,
            function: None,
            requires: vec![],
            load: Expect::Ok,
            load_on: Default::default(),
            log_contains: vec![],
            log_sequence: Vec::new(),
            log_level: None,
            globals: Default::default(),
            flags: vec![],
            source: None,
            insns: None,
            steps: vec![
                CaseStep {
                    step: Step::Attach {
                        tracepoint: None,
                        cookie: None,
                    },
                    expect: Expect::Ok,
                    on: Default::default(),
                    unsupported_if: vec!["EINVAL".into()],
                },
                CaseStep {
                    step: Step::TestmodRead,
                    expect: Expect::Errno("EIO".into()),
                    on: [(
                        "6.1".to_owned(),
                        KnownAnswer {
                            expect: Expect::Errno("EBADF".into()),
                            why: "made up for the test".into(),
                        },
                    )]
                    .into(),
                    unsupported_if: vec![],
                },
            ],
        }
    }

    fn ran(attach: Outcome, read: Outcome) -> CaseOutcome {
        let mut result = test_support::loaded("c");
        result.steps = vec![
            protocol::StepRecord {
                step: Step::Attach {
                    tracepoint: None,
                    cookie: None,
                },
                outcome: attach,
            },
            protocol::StepRecord {
                step: Step::TestmodRead,
                outcome: read,
            },
        ];
        CaseOutcome::Ran(test_support::libbpf_ran_the_same(result))
    }

    fn as_expected() -> CaseOutcome {
        ran(Outcome::value(json!("tp")), Outcome::errno(5))
    }

    fn unsupported() -> CaseOutcome {
        CaseOutcome::Unsupported {
            reason: "needs bpf_testmod".into(),
        }
    }

    /// The outcome with libbpf's answer replaced.
    fn libbpf_says(outcome: CaseOutcome, load: Outcome, attach: Option<Outcome>) -> CaseOutcome {
        let CaseOutcome::Ran(mut result) = outcome else {
            unreachable!()
        };
        result.libbpf = Some(protocol::LibbpfAnswer {
            load,
            attach,
            ..test_support::libbpf_loaded()
        });
        CaseOutcome::Ran(result)
    }

    fn stored(outcome: &CaseOutcome) -> Snapshots {
        Snapshots::Compared {
            stored: [(
                "c".to_owned(),
                Snapshot::of("", &compare::for_snapshot(outcome.clone())).contents,
            )]
            .into(),
            accept: false,
        }
    }

    fn compared_with_nothing() -> Snapshots {
        Snapshots::Compared {
            stored: BTreeMap::new(),
            accept: false,
        }
    }

    fn judge_one(kernel: &str, snapshots: Snapshots, outcome: CaseOutcome) -> Row {
        let judge = Judge {
            kernel,
            snapshots,
            host_paths: vec![(Path::new("/work/main"), "<root>")],
        };
        judge
            .cases(&[case()], [("c".to_owned(), outcome)].into())
            .remove(0)
    }

    #[rstest]
    #[case::pass("6.12", stored(&as_expected()), as_expected(), Verdict::Pass, "")]
    #[case::deviation("6.12", stored(&as_expected()), ran(Outcome::value(json!("tp")), Outcome::value(json!({"len": 5}))), Verdict::Fail, r#"step 2 (testmod_read): expected EIO, got ok {"len":5}"#)]
    #[case::unsupported_by_feature("5.10", stored(&unsupported()), unsupported(), Verdict::Unsupported, "")]
    #[case::unsupported_by_errno("6.12", stored(&ran(Outcome::errno(22), Outcome::errno(5))), ran(Outcome::errno(22), Outcome::errno(5)), Verdict::Unsupported, "")]
    #[case::known_answer_for_one_kernel("6.1", stored(&ran(Outcome::value(json!("tp")), Outcome::errno(9))), ran(Outcome::value(json!("tp")), Outcome::errno(9)), Verdict::Pass, "")]
    #[case::known_answer_only_there("6.12", stored(&ran(Outcome::value(json!("tp")), Outcome::errno(9))), ran(Outcome::value(json!("tp")), Outcome::errno(9)), Verdict::Fail, "step 2 (testmod_read): expected EIO, got EBADF")]
    #[case::not_run_after_a_panic("6.12", stored(&as_expected()), CaseOutcome::NotRun { reason: "kernel panic while case `b` was running".into() }, Verdict::NotRun, "not run: kernel panic while case `b` was running")]
    #[case::compile_error("6.12", compared_with_nothing(), CaseOutcome::CompileError { message: "/work/main/c.bpf.c:3:1: error: x".into() }, Verdict::Fail, "compile error: <root>/c.bpf.c:3:1: error: x")]
    #[case::no_snapshot_yet(
        "6.12",
        compared_with_nothing(),
        as_expected(),
        Verdict::NewSnapshot,
        ""
    )]
    #[case::snapshot_differs("6.12", stored(&ran(Outcome::value(json!("other_tp")), Outcome::errno(5))), as_expected(), Verdict::SnapshotDiffers, "")]
    #[case::snapshots_ignored("6.12", Snapshots::Ignored, as_expected(), Verdict::Pass, "")]
    #[case::libbpf_disagrees("6.12", stored(&as_expected()), libbpf_says(as_expected(), Outcome::errno(13), None), Verdict::Fail, "libbpf disagrees: own loader: load ok, attach ok; libbpf: load EACCES")]
    #[case::libbpf_disagrees_where_the_kernel_lacks_the_feature(
        "6.12",
        compared_with_nothing(),
        libbpf_says(
            ran(Outcome::errno(22), Outcome::errno(5)),
            Outcome::ok(),
            Some(Outcome::ok())
        ),
        Verdict::Fail,
        "libbpf disagrees: own loader: load ok, attach EINVAL; libbpf: load ok, attach ok"
    )]
    fn rows_get_the_verdict_their_outcome_calls_for(
        #[case] kernel: &str,
        #[case] snapshots: Snapshots,
        #[case] outcome: CaseOutcome,
        #[case] verdict: Verdict,
        #[case] deviation: &str,
    ) {
        let row = judge_one(kernel, snapshots, outcome);
        assert_eq!(row.verdict(), verdict, "{row:?}");
        assert_eq!(row.deviations.join("; "), deviation);
        assert_eq!(row.passed(), !verdict.is_failure());
    }

    #[test]
    fn the_verifier_log_must_contain_what_the_case_asserts() {
        let mut case = case();
        case.log_contains = vec!["invalid variable buffer offset".into(), "R6".into()];
        let mut outcome = test_support::loaded("c");
        outcome.load.verifier_log = "R6 invalid mem access 'scalar'".into();
        let judge = Judge {
            kernel: "6.12",
            snapshots: Snapshots::Ignored,
            host_paths: vec![],
        };
        let row = judge
            .cases(
                &[case],
                [("c".to_owned(), CaseOutcome::Ran(outcome))].into(),
            )
            .remove(0);
        assert_eq!(
            row.deviations[0],
            r#"load: the verifier log does not contain "invalid variable buffer offset""#
        );
        assert_eq!(
            row.deviations.len(),
            2,
            "R6 is there; the steps are missing"
        );
    }

    #[test]
    fn a_known_answer_is_reported_with_its_reason() {
        let row = judge_one("6.1", Snapshots::Ignored, as_expected());
        assert_eq!(row.known, ["step 2 (testmod_read): made up for the test"]);
        assert_eq!(
            row.verdict(),
            Verdict::Fail,
            "EIO is not 6.1's known answer"
        );
    }

    #[test]
    fn a_difference_carries_the_diff_and_accept_takes_only_what_meets_expectations() {
        let old = ran(Outcome::value(json!("other_tp")), Outcome::errno(5));
        let row = judge_one("6.12", stored(&old), as_expected());
        let SnapshotCheck::Differs { diff } = &row.snapshot else {
            panic!("{row:?}");
        };
        assert!(
            diff.contains("-        value: other_tp\n+        value: tp"),
            "{diff}"
        );

        let accepting = |outcome| {
            let snapshots = Snapshots::Compared {
                stored: BTreeMap::new(),
                accept: true,
            };
            judge_one("6.12", snapshots, outcome)
        };
        let good = accepting(as_expected());
        assert_eq!(good.snapshot, SnapshotCheck::Accepted);
        assert_eq!(good.verdict(), Verdict::Pass);
        let wrong = accepting(ran(Outcome::value(json!("tp")), Outcome::ok()));
        assert_eq!(wrong.snapshot, SnapshotCheck::Refused);
        assert_eq!(wrong.verdict(), Verdict::Fail);
    }

    fn planned(name: &str) -> CasePlan {
        CasePlan {
            name: name.into(),
            source: protocol::ProgramSource::object("/x.o", None),
            globals: Default::default(),
            prog_flags: 0,
            log_level: None,
            steps: vec![],
        }
    }

    #[test]
    fn records_for_cases_outside_the_plan_are_ignored() {
        let plan = KernelPlan {
            guest: Plan {
                modules: vec![],
                tracepoint_names: Default::default(),
                cases: vec![planned("a"), planned("b")],
                helper_probes: vec![],
                shell: false,
                sweeps: Vec::new(),
            },
            decided: [(
                "d".to_owned(),
                CaseOutcome::Unsupported {
                    reason: "needs nbd".into(),
                },
            )]
            .into(),
        };
        let text = test_support::finished_line("a")
            + &test_support::finished_line("../../../etc/evil")
            + &test_support::finished_line("/tmp/x");
        let records = RunRecords::parse(&text);
        let failure = RunFailure::HarnessCrash {
            case: Some("b".into()),
        };
        let outcomes = outcomes(&plan, &records, Some(&failure));
        assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
        assert!(matches!(outcomes["a"], CaseOutcome::Ran(_)));
        assert!(
            matches!(&outcomes["b"], CaseOutcome::NotRun { reason } if reason.contains("crashed"))
        );
    }
}
