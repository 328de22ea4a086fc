//! The case × kernel grid after a matrix run: one row per case, one column per kernel, each
//! cell the verdict and the kernel's answer (`pass EACCES`, `pass ok`, `unsupported`,
//! `FAIL EINVAL`); `≠` marks the cases whose cells differ between kernels. Pure: reports in,
//! text out.

use protocol::Outcome;

use crate::cases::CaseOutcome;
use crate::infra::table::Table;
use std::collections::BTreeMap;

use crate::judge::Row;
use crate::report::{KernelReport, CHANGED};

/// The mark of a row whose kernels differ.
pub const DIFFERS: &str = "≠";

/// The cells, before any layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub kernels: Vec<String>,
    pub rows: Vec<GridRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    pub case: String,
    /// One per kernel, in the reports' order; `-` where the kernel has no such case.
    pub cells: Vec<String>,
    /// Per kernel: whether the cell is a failure (linked to the kernel's job in Markdown).
    pub failed: Vec<bool>,
    /// Whether the cells are not all the same.
    pub differs: bool,
}

impl Grid {
    /// The cases in the order the kernels ran them (a case one kernel lacks, such as
    /// upstream's programs, comes right after the case it follows where it exists).
    pub fn of(reports: &[KernelReport]) -> Self {
        let mut cases: Vec<&str> = Vec::new();
        for report in reports {
            let mut after = None;
            for row in &report.rows {
                let at = match cases.iter().position(|c| *c == row.case) {
                    Some(at) => at,
                    None => {
                        let at = after.map_or(0, |a: usize| a + 1);
                        cases.insert(at, &row.case);
                        at
                    }
                };
                after = Some(at);
            }
        }
        let rows = cases
            .into_iter()
            .map(|case| {
                let found = reports
                    .iter()
                    .map(|r| (r, r.rows.iter().find(|row| row.case == case)));
                let (cells, failed): (Vec<String>, Vec<bool>) = found
                    .map(|(r, row)| match row {
                        Some(row) if r.is_change(row) => (changed_cell(row), false),
                        Some(row) => (cell(row), r.failures_of(row)),
                        None => ("-".to_owned(), false),
                    })
                    .unzip();
                // A kernel that ran nothing (its build failed) shows `-` everywhere; it
                // is named below the grid and says nothing about how the kernels differ.
                let mut compared = reports
                    .iter()
                    .zip(&cells)
                    .filter(|(r, _)| !r.rows.is_empty())
                    .map(|(_, cell)| cell);
                let first = compared.next();
                GridRow {
                    case: case.to_owned(),
                    differs: compared.any(|cell| Some(cell) != first),
                    cells,
                    failed,
                }
            })
            .collect();
        Self {
            kernels: reports.iter().map(column).collect(),
            rows,
        }
    }
}

/// A kernel's column: its name, and the version `--latest` moved it to.
fn column(report: &KernelReport) -> String {
    match report.moved_to() {
        Some(latest) => format!("{} ({})", report.kernel, latest.took),
        None => report.kernel.clone(),
    }
}

/// Where each kernel's job output is (Markdown links failures and kernels to it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// Kernel → its job's URL.
    pub jobs: BTreeMap<String, String>,
    /// The whole run's URL, for kernels without a job URL of their own.
    pub run: Option<String>,
}

impl Links {
    pub fn of(&self, kernel: &str) -> Option<&str> {
        (self.jobs.get(kernel).map(String::as_str)).or(self.run.as_deref())
    }
}

/// A row whose behaviour changed in the version `--latest` took.
fn changed_cell(row: &Row) -> String {
    match answer(&row.outcome) {
        Some(answer) => format!("{CHANGED} {answer}"),
        None => CHANGED.to_owned(),
    }
}

/// A case's verdict on one kernel and the kernel's answer, if it gave one.
pub fn cell(row: &Row) -> String {
    match answer(&row.outcome) {
        Some(answer) => format!("{} {answer}", row.verdict()),
        None => row.verdict().to_string(),
    }
}

/// What the kernel answered: the load's refusal, else the first step that did not answer
/// ok, else `ok`; `error` where the harness could not ask, `compile` where clang refused.
fn answer(outcome: &CaseOutcome) -> Option<String> {
    let short = |outcome: &Outcome| match outcome {
        Outcome::Ok { .. } => "ok".to_owned(),
        Outcome::Errno { name, .. } => name.clone(),
        Outcome::Error { .. } => "error".to_owned(),
    };
    match outcome {
        CaseOutcome::Ran(result) => {
            let steps = result.steps.iter().map(|step| &step.outcome);
            let first_not_ok = std::iter::once(&result.load.outcome)
                .chain(steps)
                .find(|outcome| !outcome.is_ok());
            Some(first_not_ok.map_or("ok".to_owned(), short))
        }
        CaseOutcome::CompileError { .. } => Some("compile".into()),
        CaseOutcome::Unsupported { .. } | CaseOutcome::NotRun { .. } | CaseOutcome::Probe(_) => {
            None
        }
    }
}

/// The grid as a plain-text table, with what `≠` means and the kernels that failed as a whole.
pub fn render(reports: &[KernelReport]) -> String {
    let grid = Grid::of(reports);
    let header = ["", "case"]
        .into_iter()
        .chain(grid.kernels.iter().map(String::as_str));
    let mut table = Table::new(header);
    for row in &grid.rows {
        let mark = if row.differs { DIFFERS } else { "" };
        let first = [mark.to_owned(), row.case.clone()];
        table.row(first.into_iter().chain(row.cells.iter().cloned()));
    }
    let differing = grid.rows.iter().filter(|r| r.differs).count();
    let mut out = format!(
        "cases × kernels ({} cases, {differing} differ between kernels: {DIFFERS})\n",
        grid.rows.len()
    );
    out.push_str(&table.render());
    out.push_str(&failures(reports, |kernel, line| {
        format!("✗ kernel {kernel}: {line}\n")
    }));
    out.push_str(&moved(reports, |line| format!("{line}\n"), indent));
    out
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect()
}

/// For each kernel `--latest` was asked for: the version it took, and what changed there
/// (each changed case with its diff against the pinned version's snapshot).
fn moved(
    reports: &[KernelReport],
    line: impl Fn(&str) -> String,
    diff: impl Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    for report in reports {
        let Some(latest) = &report.latest else {
            continue;
        };
        let changed = report.changed();
        let what = match (latest.moved(), changed.len()) {
            (false, _) => "nothing to compare".to_owned(),
            (true, 0) => "no behaviour changed".to_owned(),
            (true, n) => format!(
                "{} ({n} case{})",
                crate::report::behaviour_changed(latest),
                if n == 1 { "" } else { "s" }
            ),
        };
        out.push_str(&line(&format!(
            "--latest {}: {}: {what}",
            report.kernel,
            latest.describe()
        )));
        for row in changed {
            if let crate::judge::snapshots::SnapshotCheck::Differs { diff: text } = &row.snapshot {
                out.push_str(&line(&format!("≠ {} on {}:", row.case, latest.took)));
                out.push_str(&diff(text));
            }
        }
    }
    out
}

/// The grid as a Markdown table for GitHub's job summary: kernels and failed cells linked to
/// the kernel's job output where `links` knows it.
pub fn markdown(reports: &[KernelReport], links: &Links) -> String {
    let grid = Grid::of(reports);
    let link = |text: &str, kernel: &str| match links.of(kernel) {
        Some(url) => format!("[{text}]({url})"),
        None => text.to_owned(),
    };
    let headers: Vec<String> = (grid.kernels.iter().zip(reports))
        .map(|(column, report)| link(column, &report.kernel))
        .collect();
    let mut out = format!(
        "| | case | {} |\n|---|---|{}\n",
        headers.join(" | "),
        "---|".repeat(grid.kernels.len())
    );
    for row in &grid.rows {
        let mark = if row.differs { DIFFERS } else { "" };
        let cells: Vec<String> = (row.cells.iter().zip(&row.failed).zip(reports))
            .map(|((cell, failed), report)| match failed {
                true => link(cell, &report.kernel),
                false => cell.clone(),
            })
            .collect();
        out.push_str(&format!(
            "| {mark} | {} | {} |\n",
            row.case.replace('|', "\\|"),
            cells.join(" | ")
        ));
    }
    out.push_str(&failures(reports, |kernel, line| {
        let job = links
            .of(kernel)
            .map_or(String::new(), |url| format!(" ([job output]({url}))"));
        format!("\n**{kernel}: {line}**{job}\n")
    }));
    out.push_str(&moved(
        reports,
        |line| format!("\n{line}\n"),
        |diff| format!("\n```diff\n{}\n```\n", diff.trim_end()),
    ));
    out
}

/// One line per kernel that failed as a whole (the first line of what went wrong).
fn failures(reports: &[KernelReport], line: impl Fn(&str, &str) -> String) -> String {
    reports
        .iter()
        .filter_map(|report| {
            let failure = report.failure.as_ref()?.describe();
            let first = failure.lines().next().unwrap_or_default().to_owned();
            Some(line(&report.kernel, &first))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use protocol::StepRecord;

    use super::*;
    use crate::infra::failure::{SetupFailure, SetupStage};
    use crate::report::Timings;
    use crate::test_support::{loaded, ran, row};

    fn report(kernel: &str, rows: Vec<Row>) -> KernelReport {
        KernelReport {
            kernel: kernel.into(),
            context: String::new(),
            rows,
            failure: None,
            timings: Timings::default(),
            run_dir: None,
            latest: None,
        }
    }

    /// A case whose load the kernel refused with EACCES.
    fn refused(case: &str) -> CaseOutcome {
        let mut result = loaded(case);
        result.load.outcome = Outcome::errno(13);
        CaseOutcome::Ran(result)
    }

    /// A case whose attach answered `errno`.
    fn attach_answered(case: &str, errno: i32) -> CaseOutcome {
        let mut result = loaded(case);
        result.steps = vec![StepRecord {
            step: protocol::Step::Attach {
                tracepoint: None,
                cookie: None,
            },
            outcome: Outcome::errno(errno),
        }];
        CaseOutcome::Ran(result)
    }

    fn unsupported() -> CaseOutcome {
        CaseOutcome::Unsupported {
            reason: "needs bpf_testmod".into(),
        }
    }

    /// Upstream's longest case name, 51 characters.
    const LONG: &str = "upstream.tracepoint_writable_reject_variable_offset";

    fn matrix() -> Vec<KernelReport> {
        let mut unsupported_by_errno = row("link_create_refused", attach_answered("l", 22), &[]);
        unsupported_by_errno.unsupported = Some("step 1 (attach) answered EINVAL".into());
        vec![
            report(
                "5.10",
                vec![
                    row("writable_bare", unsupported(), &[]),
                    row("refused", refused("r"), &[]),
                    unsupported_by_errno,
                    row("upstream.verifier_raw_tp_writable", unsupported(), &[]),
                    row("_helpers", CaseOutcome::Probe(serde_json::json!([])), &[]),
                ],
            ),
            report(
                "6.12",
                vec![
                    row("writable_bare", ran("w"), &[]),
                    row("refused", refused("r"), &[]),
                    row(
                        "link_create_refused",
                        attach_answered("l", 22),
                        &["step 1 (attach): expected ok, got EINVAL"],
                    ),
                    row(LONG, refused("u"), &[]),
                    row("_helpers", CaseOutcome::Probe(serde_json::json!([])), &[]),
                ],
            ),
        ]
    }

    #[test]
    fn each_cell_is_the_verdict_and_the_kernels_answer() {
        let grid = Grid::of(&matrix());
        assert_eq!(grid.kernels, ["5.10", "6.12"]);
        let cells: Vec<(&str, Vec<&str>, bool)> = grid
            .rows
            .iter()
            .map(|r| {
                let cells = r.cells.iter().map(String::as_str).collect();
                (r.case.as_str(), cells, r.differs)
            })
            .collect();
        assert_eq!(
            cells,
            [
                ("writable_bare", vec!["unsupported", "pass ok"], true),
                ("refused", vec!["pass EACCES", "pass EACCES"], false),
                (
                    "link_create_refused",
                    vec!["unsupported EINVAL", "FAIL EINVAL"],
                    true
                ),
                (LONG, vec!["-", "pass EACCES"], true),
                (
                    "upstream.verifier_raw_tp_writable",
                    vec!["unsupported", "-"],
                    true
                ),
                ("_helpers", vec!["pass", "pass"], false),
            ]
        );
    }

    #[test]
    fn the_grid_lines_up_and_marks_the_rows_where_kernels_differ() {
        let mut reports = matrix();
        reports.push(KernelReport::setup_failure(
            "7.2",
            SetupFailure {
                stage: SetupStage::KernelBuild,
                message: "make failed".into(),
            },
        ));
        let text = render(&reports);
        let expected = "\
cases × kernels (6 cases, 4 differ between kernels: ≠)
   case                                                 5.10                6.12         7.2
≠  writable_bare                                        unsupported         pass ok      -
   refused                                              pass EACCES         pass EACCES  -
≠  link_create_refused                                  unsupported EINVAL  FAIL EINVAL  -
≠  upstream.tracepoint_writable_reject_variable_offset  -                   pass EACCES  -
≠  upstream.verifier_raw_tp_writable                    unsupported         -            -
   _helpers                                             pass                pass         -
✗ kernel 7.2: could not be tested: building the kernel failed: make failed
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn the_markdown_summary_has_the_same_cells() {
        let text = markdown(&matrix(), &Links::default());
        assert!(
            text.starts_with("| | case | 5.10 | 6.12 |\n|---|---|---|---|\n"),
            "{text}"
        );
        assert!(
            text.contains("| ≠ | writable_bare | unsupported | pass ok |\n"),
            "{text}"
        );
        assert!(
            text.contains("|  | refused | pass EACCES | pass EACCES |\n"),
            "{text}"
        );
    }

    #[test]
    fn markdown_links_failures_to_their_job_and_a_moved_kernel_shows_what_changed() {
        let mut reports = matrix();
        let mut changed = row("writable_bare", ran("w"), &[]);
        changed.snapshot = crate::judge::snapshots::SnapshotCheck::Differs {
            diff: "-value: 1\n+value: 2\n".into(),
        };
        reports[1].rows[0] = changed;
        reports[1].latest = Some(crate::kernel::latest::Latest {
            package: "linux-source-6.12".into(),
            pinned: "6.12.117-1~deb12u1".into(),
            took: "6.12.118-1~deb12u1".into(),
        });
        let links = Links {
            jobs: [("6.12".to_owned(), "https://ci/job/2".to_owned())].into(),
            run: Some("https://ci/run".into()),
        };
        let text = markdown(&reports, &links);
        assert!(
            text.starts_with(
                "| | case | [5.10](https://ci/run) | [6.12 (6.12.118-1~deb12u1)](https://ci/job/2) |\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("| ≠ | writable_bare | unsupported | CHANGED ok |\n"),
            "a change is no failure: {text}"
        );
        assert!(
            text.contains("| [FAIL EINVAL](https://ci/job/2) |"),
            "{text}"
        );
        assert!(
            text.contains("behaviour changed in 6.12.118-1~deb12u1"),
            "{text}"
        );
        assert!(
            text.contains("```diff\n-value: 1\n+value: 2\n```"),
            "{text}"
        );
        assert_eq!(reports[1].failures(), 1, "only the deviation fails");
        assert_eq!(reports[1].changed().len(), 1);
        let plain = render(&reports);
        assert!(plain.contains("--latest 6.12: linux-source-6.12 6.12.118-1~deb12u1 (newer than the pinned 6.12.117-1~deb12u1): behaviour changed in 6.12.118-1~deb12u1"), "{plain}");
        assert!(
            plain
                .contains("≠ writable_bare on 6.12.118-1~deb12u1:\n    -value: 1\n    +value: 2\n"),
            "{plain}"
        );
    }
}
