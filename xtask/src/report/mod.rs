//! The table printed at the end of a run, and the summary that decides the exit code.

pub mod grid;
pub mod sweep_grid;

use std::path::PathBuf;

use crate::cases::CaseOutcome;
use crate::guest::failure::KernelFailure;
use crate::infra::failure::SetupFailure;
use crate::infra::table::Table;
use crate::judge::compare;
use crate::judge::snapshots::SnapshotCheck;
use crate::judge::{Row, Verdict};
use crate::kernel::latest::Latest;

#[derive(Debug, Clone)]
pub struct KernelReport {
    pub kernel: String,
    /// What the guest reported about itself (release, accelerator, module loads).
    pub context: String,
    pub rows: Vec<Row>,
    /// What went wrong with the kernel or its run as a whole, if anything did.
    pub failure: Option<KernelFailure>,
    pub timings: Timings,
    /// This run's own directory (plan, results, console), if the VM was started.
    pub run_dir: Option<PathBuf>,
    /// What `--latest` took instead of the manifest's version, if it was asked for.
    pub latest: Option<Latest>,
}

/// Where a kernel's time went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// Configuring and building the kernel and bpf_testmod (0 when it came from the cache).
    pub build_secs: f64,
    /// The VM run: boot, harness, reset.
    pub boot_secs: f64,
    /// Guest uptime (ms) when the harness started, if it did.
    pub harness_start_ms: Option<u64>,
    /// Guest milliseconds from each case's start to the next's in the same VM.
    pub case_ms: Vec<u64>,
}

impl Timings {
    /// A kernel's build (counted only when it was built by this run) and its VM run.
    pub fn of(
        build: &crate::kernel::build::KernelBuild,
        vm: &crate::guest::boot::GuestRun,
    ) -> Self {
        Self {
            build_secs: if build.built_now {
                build.build_secs
            } else {
                0.0
            },
            boot_secs: vm.secs,
            harness_start_ms: vm.records.boot.as_ref().map(|boot| boot.uptime_ms),
            case_ms: vm.records.case_ms.iter().map(|(_, ms)| *ms).collect(),
        }
    }
}

impl KernelReport {
    pub fn setup_failure(kernel: &str, failure: SetupFailure) -> Self {
        Self {
            kernel: kernel.to_owned(),
            context: "not run".into(),
            rows: Vec::new(),
            failure: Some(KernelFailure::Setup(failure)),
            timings: Timings::default(),
            run_dir: None,
            latest: None,
        }
    }

    /// A kernel that booted: its judged rows, its timings, and what went wrong with the VM.
    pub fn of_run(
        kernel: &str,
        rows: Vec<Row>,
        build: &crate::kernel::build::KernelBuild,
        vm: crate::guest::boot::GuestRun,
    ) -> Self {
        Self {
            kernel: kernel.to_owned(),
            context: context(vm.records.boot.as_ref(), vm.accel),
            rows,
            timings: Timings::of(build, &vm),
            failure: vm.failure.map(|failure| KernelFailure::Run {
                failure,
                console_tail: crate::infra::progress::tail(&vm.console, 30),
                console: vm.console,
            }),
            run_dir: Some(vm.dir),
            latest: None,
        }
    }

    /// The rows that failed; with `--latest` on a newer version, a result that only differs
    /// from the pinned version's snapshot is a change ([`KernelReport::changed`]), not a failure.
    pub fn failures(&self) -> usize {
        let failed = |r: &&Row| !r.passed() && !self.is_change(r);
        self.rows.iter().filter(failed).count()
    }

    /// Whether `row` counts as a failure of this kernel.
    pub fn failures_of(&self, row: &Row) -> bool {
        !row.passed() && !self.is_change(row)
    }

    /// The version `--latest` moved this kernel to, if it is another than the pin.
    pub fn moved_to(&self) -> Option<&Latest> {
        self.latest.as_ref().filter(|latest| latest.moved())
    }

    /// Whether the row is a behaviour change of the newer version: it meets its expectation
    /// and differs from the pinned version's snapshot.
    pub fn is_change(&self, row: &Row) -> bool {
        self.moved_to().is_some() && row.verdict() == Verdict::SnapshotDiffers
    }

    /// The rows whose behaviour changed in the version `--latest` took.
    pub fn changed(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| self.is_change(r)).collect()
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict() == verdict).count()
    }

    /// The summary line, the table of every row, and what deserves a word below it.
    pub fn render(&self) -> String {
        self.render_with(Rows::All)
    }

    /// The summary line, the table of the rows `rows` asks for, and the notes below it.
    pub fn render_with(&self, rows: Rows) -> String {
        if let Some(KernelFailure::Setup(failure)) = &self.failure {
            return format!("kernel {}: could not be tested: {failure}\n", self.kernel);
        }
        let changed = match self.moved_to() {
            Some(latest) => format!(", {} changed in {}", self.changed().len(), latest.took),
            None => String::new(),
        };
        let mut out = format!(
            "kernel {} ({}): {} passed, {} failed, {} unsupported{changed}\n",
            self.kernel,
            self.context,
            self.count(Verdict::Pass),
            self.failures(),
            self.count(Verdict::Unsupported),
        );
        if let Some(latest) = &self.latest {
            out.push_str(&format!("  --latest: {}\n", latest.describe()));
        }
        let header = ["case", "phase", "load", "libbpf", "verdict"];
        let mut table = Table::new(header).indent("  ");
        let shown = self
            .rows
            .iter()
            .filter(|row| rows == Rows::All || !plain_pass(row));
        for row in shown {
            let (phase, load, libbpf) = match &row.outcome {
                CaseOutcome::Ran(result) => (
                    result.phase.to_string(),
                    load_column(&result.load.outcome),
                    libbpf_column(result),
                ),
                CaseOutcome::CompileError { .. } => ("-".into(), "compile".into(), "-".into()),
                CaseOutcome::Unsupported { .. }
                | CaseOutcome::NotRun { .. }
                | CaseOutcome::Probe(_) => ("-".into(), "-".into(), "-".into()),
            };
            let verdict = match self.is_change(row) {
                true => CHANGED.to_owned(),
                false => row.verdict().to_string(),
            };
            table.row([row.case.clone(), phase, load, libbpf, verdict]);
        }
        if !table.is_empty() {
            out.push_str(&table.render());
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
            for note in &row.notes {
                out.push_str(&format!("  · {}: {note}\n", row.case));
            }
            if let Some(reason) = &row.unsupported {
                out.push_str(&format!(
                    "  - {}: unsupported on {}: {reason}\n",
                    row.case, self.kernel
                ));
            }
            match (self.moved_to(), &row.snapshot) {
                (Some(latest), SnapshotCheck::Differs { diff }) if self.is_change(row) => {
                    out.push_str(&format!(
                        "  ≠ {}: {}:\n{}\n",
                        row.case,
                        behaviour_changed(latest),
                        indent(diff)
                    ));
                }
                _ => {
                    if let Some(line) = snapshot_line(&row.snapshot) {
                        out.push_str(&format!("  {line}\n").replace("{case}", &row.case));
                    }
                }
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

/// The verdict shown for a row whose behaviour changed in the version `--latest` took.
pub const CHANGED: &str = "CHANGED";

/// "behaviour changed in <new version>", and against what.
pub fn behaviour_changed(latest: &Latest) -> String {
    format!(
        "behaviour changed in {} (differs from the snapshot of the pinned {}; review, then \
         accept and move the pin, see README)",
        latest.took, latest.pinned
    )
}

/// Which rows a kernel's table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rows {
    /// Every row.
    #[default]
    All,
    /// Only the rows that are not a plain pass (the grid after a matrix shows the rest).
    Notable,
}

impl Rows {
    /// A run of several kernels ends with the grid, so their tables leave the plain passes
    /// out, unless `verbose` asks for every row.
    pub fn for_run(verbose: bool, kernels: usize) -> Self {
        match verbose || kernels <= 1 {
            true => Rows::All,
            false => Rows::Notable,
        }
    }
}

/// A pass with nothing to say: no known answer of this kernel, no snapshot news.
fn plain_pass(row: &Row) -> bool {
    row.verdict() == Verdict::Pass && row.known.is_empty() && snapshot_line(&row.snapshot).is_none()
}

/// The load column: the kernel's answer, or `error` when the harness could not present the
/// object (the message is in the row's deviation, which such a load always is).
fn load_column(load: &protocol::Outcome) -> String {
    match load {
        protocol::Outcome::Error { .. } => "error".into(),
        other => compare::describe(other),
    }
}

/// The libbpf column: `agrees`, `DIFFERS`, or `-` when there is nothing to agree on: libbpf
/// left no answer, or neither loader reached the kernel (a global or program the object does
/// not have, an unreadable object), which is no agreement about the kernel.
fn libbpf_column(result: &protocol::CaseResult) -> String {
    match (&result.libbpf, compare::second_opinion(result)) {
        (None, _) => "-".into(),
        (Some(_), None) if compare::neither_reached_the_kernel(result) => "-".into(),
        (Some(_), None) => "agrees".into(),
        (Some(_), Some(_)) => "DIFFERS".into(),
    }
}

/// One line about the guest: its release, the accelerator, and how its modules loaded.
pub fn context(boot: Option<&protocol::BootInfo>, accel: crate::guest::boot::Accel) -> String {
    let Some(boot) = boot else {
        return format!("{accel}, the harness did not start");
    };
    let modules = boot
        .modules
        .iter()
        .map(|m| {
            let name = m.path.file_name().unwrap_or_default().to_string_lossy();
            format!("{name} {}", compare::describe(&m.outcome))
        })
        .collect::<Vec<_>>();
    let modules = match modules.is_empty() {
        true => "none".to_owned(),
        false => modules.join(", "),
    };
    format!("{}, {accel}, modules: {modules}", boot.kernel_release)
}

/// What the report says about a row's snapshot, if anything (`{case}` is the case's name).
fn snapshot_line(check: &SnapshotCheck) -> Option<String> {
    let review = "accept with --accept, or review the .snap.new with `cargo insta review`";
    match check {
        SnapshotCheck::Skipped | SnapshotCheck::Matches => None,
        SnapshotCheck::Accepted => Some("✓ {case}: snapshot written".into()),
        SnapshotCheck::New => Some(format!("✗ {{case}}: new case, no snapshot yet ({review})")),
        SnapshotCheck::Differs { diff } => Some(format!(
            "✗ {{case}}: differs from its snapshot ({review}):\n{}",
            indent(diff)
        )),
        SnapshotCheck::Refused => {
            Some("✗ {case}: snapshot not accepted: it deviates from its expectation".into())
        }
    }
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Markdown table case × kernel (the grid's cells), for GitHub's job summary.
pub fn markdown(reports: &[KernelReport]) -> String {
    grid::markdown(reports, &grid::Links::default())
}

/// Appends the Markdown table to `$GITHUB_STEP_SUMMARY` when running in GitHub Actions.
pub fn publish_github_summary(reports: &[KernelReport]) {
    append_github_summary(&markdown(reports), "the job summary");
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY` when running in GitHub Actions; `what` names
/// it in the warning when that fails.
pub fn append_github_summary(markdown: &str, what: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, markdown.as_bytes()));
    if let Err(error) = appended {
        eprintln!("warning: could not write {what}: {error}");
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
                    if let Some(line) = snapshot_line(&row.snapshot) {
                        problems.push(line.replace("{case}", &row.case));
                    }
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(problems.join("; "));
                    status
                }
            };
            // Upstream's tests by upstream's names (`<file>/<program or subtest>`).
            let name = row.upstream_name.as_ref().unwrap_or(&row.case);
            let mut case = TestCase::new(name.clone(), status);
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

    fn report(rows: Vec<Row>) -> KernelReport {
        KernelReport {
            kernel: "6.12".into(),
            context: "6.12.117, TCG".into(),
            failure: None,
            timings: Timings::default(),
            rows,
            run_dir: None,
            latest: None,
        }
    }

    /// Upstream's longest case name, 51 characters.
    const UPSTREAM: &str = "upstream.tracepoint_writable_reject_variable_offset";

    fn refused() -> CaseOutcome {
        let mut result = crate::test_support::loaded("x");
        result.phase = protocol::Phase::Compiled;
        result.load.outcome = protocol::Outcome::errno(13);
        if let Some(libbpf) = &mut result.libbpf {
            libbpf.load = protocol::Outcome::errno(13);
        }
        CaseOutcome::Ran(result)
    }

    fn table_rows() -> Vec<Row> {
        let mut new = row("fresh", ran(), &[]);
        new.snapshot = SnapshotCheck::New;
        let mut changed = row("changed", ran(), &[]);
        changed.snapshot = SnapshotCheck::Differs {
            diff: "-value: 1025\n+value: 1024\n".into(),
        };
        let mut unsupported = row("old_kernel", ran(), &[]);
        unsupported.unsupported = Some("step 1 (attach) answered EINVAL".into());
        vec![
            new,
            changed,
            unsupported,
            row("fine", ran(), &[]),
            row(UPSTREAM, refused(), &[]),
        ]
    }

    #[test]
    fn the_table_tells_a_new_case_from_a_changed_one() {
        let text = report(table_rows()).render();
        let expected = "\
kernel 6.12 (6.12.117, TCG): 2 passed, 2 failed, 1 unsupported
  case                                                 phase     load    libbpf  verdict
  fresh                                                loaded    ok      agrees  NEW
  changed                                              loaded    ok      agrees  SNAPSHOT
  old_kernel                                           loaded    ok      agrees  unsupported
  fine                                                 loaded    ok      agrees  pass
  upstream.tracepoint_writable_reject_variable_offset  compiled  EACCES  agrees  pass
  ✗ fresh: new case, no snapshot yet (accept with --accept, or review the .snap.new with `cargo insta review`)
  ✗ changed: differs from its snapshot (accept with --accept, or review the .snap.new with `cargo insta review`):
      -value: 1025
      +value: 1024
  - old_kernel: unsupported on 6.12: step 1 (attach) answered EINVAL
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn after_a_matrix_the_table_leaves_the_plain_passes_out_unless_verbose() {
        let report = report(table_rows());
        let brief = report.render_with(Rows::for_run(false, 4));
        assert!(
            brief.starts_with("kernel 6.12 (6.12.117, TCG): 2 passed,"),
            "{brief}"
        );
        assert!(brief.contains("  old_kernel "), "{brief}");
        assert!(!brief.contains("  fine "), "{brief}");
        assert!(!brief.contains(UPSTREAM), "{brief}");
        assert_eq!(report.render_with(Rows::for_run(true, 4)), report.render());
        assert_eq!(report.render_with(Rows::for_run(false, 1)), report.render());

        let all_pass = super::tests::report(vec![row("fine", ran(), &[])]);
        assert_eq!(
            all_pass.render_with(Rows::Notable),
            "kernel 6.12 (6.12.117, TCG): 1 passed, 0 failed, 0 unsupported\n"
        );
    }

    /// The own loader stopped before BPF_PROG_LOAD, libbpf before the verifier (a global
    /// the object does not have).
    fn neither_reached_the_kernel() -> protocol::CaseResult {
        let mut result = crate::test_support::loaded("x");
        result.phase = protocol::Phase::Compiled;
        result.load.prog_type = None;
        result.load.outcome = protocol::Outcome::Error {
            message: "global `nope` is not defined in the object".into(),
        };
        result.libbpf = Some(protocol::LibbpfAnswer {
            load: protocol::Outcome::Error {
                message: "global `nope` is not defined in the object".into(),
            },
            reached_verifier: false,
            ..crate::test_support::libbpf_loaded()
        });
        result
    }

    #[test]
    fn the_libbpf_column_is_a_dash_when_neither_loader_reached_the_kernel() {
        let never = neither_reached_the_kernel();
        assert_eq!(libbpf_column(&never), "-");
        assert_eq!(load_column(&never.load.outcome), "error");

        // libbpf refused where the verifier saw it: the loaders disagree about the kernel.
        let mut libbpf_reached = never.clone();
        if let Some(libbpf) = &mut libbpf_reached.libbpf {
            libbpf.load = protocol::Outcome::errno(13);
            libbpf.reached_verifier = true;
        }
        assert_eq!(libbpf_column(&libbpf_reached), "DIFFERS");

        // Both reached the kernel and it refused them alike.
        let CaseOutcome::Ran(both_refused) = refused() else {
            unreachable!()
        };
        assert_eq!(libbpf_column(&both_refused), "agrees");

        let mut no_answer = both_refused.clone();
        no_answer.libbpf = None;
        assert_eq!(libbpf_column(&no_answer), "-");

        let text = report(vec![row("wrong_global", CaseOutcome::Ran(never), &["x"])]).render();
        assert!(
            text.contains("  wrong_global  compiled  error  -       FAIL\n"),
            "{text}"
        );
    }

    /// Upstream's tests are reported as upstream names them, the others by their case name.
    #[test]
    fn junit_names_upstreams_tests_as_upstream_does() {
        let mut upstream = row(
            "upstream.raw_tp_writable_reject_bad_access.past_end",
            ran(),
            &[],
        );
        upstream.upstream_name = Some("raw_tp_writable_reject_bad_access/past_end".into());
        let reports = vec![KernelReport {
            kernel: "7.2".into(),
            context: String::new(),
            failure: None,
            timings: Timings::default(),
            run_dir: None,
            latest: None,
            rows: vec![upstream, row("bare", ran(), &[])],
        }];
        let xml = junit(&reports);
        let document = roxmltree::Document::parse(&xml).unwrap();
        let names: Vec<&str> = (document.descendants())
            .filter(|n| n.has_tag_name("testcase"))
            .filter_map(|n| n.attribute("name"))
            .collect();
        assert_eq!(
            names,
            ["raw_tp_writable_reject_bad_access/past_end", "bare"]
        );
    }

    #[test]
    fn junit_has_one_case_per_kernel_and_case_with_skips_and_failures() {
        let reports = vec![
            KernelReport {
                kernel: "5.10".into(),
                context: String::new(),
                failure: None,
                timings: Timings::default(),
                run_dir: None,
                latest: None,
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
                run_dir: None,
                latest: None,
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
            table.starts_with("| | case | 5.10 | 6.12 |\n|---|---|---|---|\n"),
            "{table}"
        );
        assert!(
            table.contains("| ≠ | bare | unsupported | pass ok |"),
            "{table}"
        );
        assert!(
            table.contains("| ≠ | nbd <rewrite> & co | - | FAIL ok |"),
            "{table}"
        );
    }
}
