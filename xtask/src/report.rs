//! The table printed at the end of a run, and the summary that decides the exit code.

use std::path::PathBuf;

use crate::compare::{self, CaseOutcome};
use crate::results::RunFailure;

/// One case on one kernel.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: String,
    pub outcome: CaseOutcome,
    pub deviations: Vec<String>,
    pub snapshot_matches: bool,
    /// Known deviations of this kernel that the case declares, with their reasons.
    pub known: Vec<String>,
    /// Why the case is unsupported on this kernel, if it is (decided before the run, or a
    /// step answered an errno the case declares as "feature missing").
    pub unsupported: Option<String>,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.deviations.is_empty() && self.snapshot_matches
    }

    pub fn is_unsupported(&self) -> bool {
        self.unsupported.is_some()
    }

    pub fn verdict(&self) -> &'static str {
        match (
            &self.outcome,
            self.deviations.is_empty(),
            self.snapshot_matches,
        ) {
            (CaseOutcome::NotRun { .. }, _, _) => "NOT RUN",
            (_, true, true) if self.is_unsupported() => "unsupported",
            (_, true, true) => "pass",
            (_, false, _) => "FAIL",
            (_, true, false) => "SNAPSHOT",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KernelReport {
    pub kernel: String,
    /// What the guest reported about itself (release, accelerator, module loads).
    pub context: String,
    pub rows: Vec<Row>,
    /// What went wrong with the kernel or its run as a whole, if anything did.
    pub failure: Option<KernelFailure>,
    pub timings: Timings,
}

/// Where a kernel's time went (seconds; 0 for what did not happen).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Configuring and building the kernel and bpf_testmod (0 when it came from the cache).
    pub build_secs: f64,
    /// The VM run: boot, harness, power-off.
    pub boot_secs: f64,
}

/// A failure of a kernel's run as a whole (as opposed to one case's).
#[derive(Debug, Clone)]
pub enum KernelFailure {
    /// Fetching, configuring or building failed: nothing ran.
    Setup(String),
    /// The VM run ended early or badly; cases that finished before still count.
    Run {
        failure: RunFailure,
        console: PathBuf,
        console_tail: String,
    },
}

impl KernelFailure {
    pub fn describe(&self) -> String {
        match self {
            KernelFailure::Setup(error) => format!("could not be tested: {error}"),
            KernelFailure::Run {
                failure,
                console,
                console_tail,
            } => format!(
                "{}\nlast lines of {}:\n{console_tail}",
                failure.describe(),
                console.display()
            ),
        }
    }

    /// The exit status this failure calls for (see the table in README.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            KernelFailure::Setup(_) => 2,
            KernelFailure::Run { failure, .. } => match failure {
                RunFailure::NoHarness | RunFailure::Protocol { .. } => 2,
                RunFailure::KernelPanic { .. } => 3,
                RunFailure::Hang { .. } => 4,
                RunFailure::HarnessCrash { .. } => 5,
            },
        }
    }
}

impl KernelReport {
    pub fn setup_failure(kernel: &str, error: String) -> Self {
        Self {
            kernel: kernel.to_owned(),
            context: "not run".into(),
            rows: Vec::new(),
            failure: Some(KernelFailure::Setup(error)),
            timings: Timings::default(),
        }
    }

    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.passed()).count()
    }

    pub fn render(&self) -> String {
        if let Some(KernelFailure::Setup(error)) = &self.failure {
            return format!("kernel {}: could not be tested: {error}\n", self.kernel);
        }
        let count = |verdict: &str| self.rows.iter().filter(|r| r.verdict() == verdict).count();
        let mut out = format!(
            "kernel {} ({}): {} passed, {} failed, {} unsupported\n",
            self.kernel,
            self.context,
            count("pass"),
            self.failures(),
            count("unsupported"),
        );
        out.push_str(&format!(
            "  {:<34} {:<10} {:<8} {}\n",
            "case", "phase", "load", "verdict"
        ));
        for row in &self.rows {
            let (phase, load) = match &row.outcome {
                CaseOutcome::Ran(result) => (
                    serde_json::to_value(result.phase)
                        .unwrap()
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    compare::describe(&result.load.outcome),
                ),
                CaseOutcome::Unsupported { .. } => ("-".into(), "-".into()),
                CaseOutcome::CompileError { .. } => ("-".into(), "compile".into()),
                CaseOutcome::NotRun { .. } | CaseOutcome::Probe(_) => ("-".into(), "-".into()),
            };
            out.push_str(&format!(
                "  {:<34} {:<10} {:<8} {}\n",
                row.case,
                phase,
                load,
                row.verdict()
            ));
        }
        for row in &self.rows {
            for deviation in &row.deviations {
                out.push_str(&format!("  ✗ {}: {deviation}\n", row.case));
            }
            for known in &row.known {
                out.push_str(&format!(
                    "  ~ {}: known on {}: {known}\n",
                    row.case, self.kernel
                ));
            }
            if let Some(reason) = &row.unsupported {
                out.push_str(&format!(
                    "  - {}: unsupported on {}: {reason}\n",
                    row.case, self.kernel
                ));
            }
            if !row.snapshot_matches {
                out.push_str(&format!(
                    "  ✗ {}: differs from its snapshot (diff above; accept with --accept or `cargo insta review`)\n",
                    row.case
                ));
            }
        }
        if let Some(failure) = &self.failure {
            out.push_str(&format!(
                "  ✗ kernel {}: {}\n",
                self.kernel,
                failure.describe()
            ));
        }
        out
    }

    /// Whether everything about this kernel passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.failures() == 0
    }
}

/// A Markdown table kernel × case (the verdicts), for GitHub's job summary.
pub fn markdown(reports: &[KernelReport]) -> String {
    let mut cases: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.rows.iter().map(|row| row.case.as_str()))
        .collect();
    cases.sort_unstable();
    cases.dedup();
    let mut out = format!(
        "| case | {} |\n|---|{}\n",
        reports
            .iter()
            .map(|r| r.kernel.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(reports.len())
    );
    for case in cases {
        let cells: Vec<&str> = reports
            .iter()
            .map(|r| {
                r.rows
                    .iter()
                    .find(|row| row.case == case)
                    .map_or("-", Row::verdict)
            })
            .collect();
        out.push_str(&format!("| {case} | {} |\n", cells.join(" | ")));
    }
    for report in reports {
        if let Some(failure) = &report.failure {
            let first_line = failure
                .describe()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            out.push_str(&format!("\n**{}: {first_line}**\n", report.kernel));
        }
    }
    out
}

/// Appends the Markdown table to `$GITHUB_STEP_SUMMARY` when running in GitHub Actions.
pub fn publish_github_summary(reports: &[KernelReport]) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, markdown(reports).as_bytes()));
    if let Err(error) = appended {
        eprintln!("warning: could not write the job summary: {error}");
    }
}

/// JUnit XML: one test suite per kernel, one test case per kernel × case; an unsupported case
/// is skipped with its reason, a deviation or snapshot difference is a failure.
pub fn junit(reports: &[KernelReport]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

    let mut report = Report::new("wtp vmtest");
    for kernel in reports {
        let mut suite = TestSuite::new(format!("kernel {}", kernel.kernel));
        if let Some(failure) = &kernel.failure {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(failure.describe());
            suite.add_test_case(TestCase::new("build and boot", status));
        }
        for row in &kernel.rows {
            let status = match (&row.unsupported, row.passed()) {
                (Some(reason), true) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("unsupported on {}: {reason}", kernel.kernel));
                    status
                }
                (_, true) => TestCaseStatus::success(),
                (_, false) => {
                    let mut problems = row.deviations.clone();
                    if !row.snapshot_matches {
                        problems.push("differs from its snapshot".into());
                    }
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(problems.join("; "));
                    status
                }
            };
            let mut case = TestCase::new(row.case.clone(), status);
            case.set_classname(format!("wtp.{}", kernel.kernel));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .expect("JUnit serialisation of in-memory data")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::row;

    fn ran() -> CaseOutcome {
        crate::test_support::ran("x")
    }

    #[test]
    fn a_case_that_ran_into_a_missing_feature_is_unsupported_not_passed() {
        let mut twin = row("bare.link", ran(), &[]);
        twin.unsupported = Some("step 1 (attach_link) answered EINVAL".into());
        assert_eq!(twin.verdict(), "unsupported");
        assert_eq!(row("bare", ran(), &[]).verdict(), "pass");
        assert_eq!(row("bad", ran(), &["x"]).verdict(), "FAIL");
    }

    #[test]
    fn junit_has_one_case_per_kernel_and_case_with_skips_and_failures() {
        let reports = vec![
            KernelReport {
                kernel: "5.10".into(),
                context: String::new(),
                failure: None,
                timings: Timings::default(),
                rows: vec![row(
                    "bare",
                    CaseOutcome::Unsupported {
                        reason: "needs bpf_testmod".into(),
                    },
                    &[],
                )],
            },
            KernelReport {
                kernel: "6.12".into(),
                context: String::new(),
                failure: None,
                timings: Timings::default(),
                rows: vec![
                    row("bare", ran(), &[]),
                    row(
                        "nbd <rewrite> & co",
                        ran(),
                        &["step 2 (attach): expected ok, got EINVAL"],
                    ),
                ],
            },
        ];
        let xml = junit(&reports);
        // Well-formed, with the usual JUnit shape.
        let document = roxmltree::Document::parse(&xml).unwrap();
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("3"));
        assert_eq!(root.attribute("failures"), Some("1"));
        let cases: Vec<_> = root
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 3);
        let skipped = cases[0]
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap();
        assert_eq!(
            skipped.attribute("message"),
            Some("unsupported on 5.10: needs bpf_testmod")
        );
        assert_eq!(cases[1].children().filter(|n| n.is_element()).count(), 0);
        assert_eq!(cases[2].attribute("name"), Some("nbd <rewrite> & co"));
        let failure = cases[2]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(failure
            .attribute("message")
            .unwrap()
            .contains("expected ok, got EINVAL"));
        assert_eq!(cases[2].attribute("classname"), Some("wtp.6.12"));

        let table = markdown(&reports);
        assert!(
            table.starts_with("| case | 5.10 | 6.12 |\n|---|---|---|\n"),
            "{table}"
        );
        assert!(table.contains("| bare | unsupported | pass |"), "{table}");
        assert!(
            table.contains("| nbd <rewrite> & co | - | FAIL |"),
            "{table}"
        );
    }
}
