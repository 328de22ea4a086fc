//! The case × kernel grid after a matrix run: one row per case, one column per kernel, each
//! cell the verdict and the kernel's answer (`pass EACCES`, `pass ok`, `unsupported`,
//! `FAIL EINVAL`); `≠` marks the cases whose cells differ between kernels. Pure: reports in,
//! text out.

use protocol::Outcome;

use crate::cases::CaseOutcome;
use crate::infra::table::Table;
use crate::judge::Row;
use crate::report::KernelReport;

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
                let cells: Vec<String> = reports
                    .iter()
                    .map(|r| {
                        let row = r.rows.iter().find(|row| row.case == case);
                        row.map_or("-".to_owned(), cell)
                    })
                    .collect();
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
                }
            })
            .collect();
        Self {
            kernels: reports.iter().map(|r| r.kernel.clone()).collect(),
            rows,
        }
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
    out
}

/// The grid as a Markdown table for GitHub's job summary.
pub fn markdown(reports: &[KernelReport]) -> String {
    let grid = Grid::of(reports);
    let mut out = format!(
        "| | case | {} |\n|---|---|{}\n",
        grid.kernels.join(" | "),
        "---|".repeat(grid.kernels.len())
    );
    for row in &grid.rows {
        let mark = if row.differs { DIFFERS } else { "" };
        out.push_str(&format!(
            "| {mark} | {} | {} |\n",
            row.case,
            row.cells.join(" | ")
        ));
    }
    out.push_str(&failures(reports, |kernel, line| {
        format!("\n**{kernel}: {line}**\n")
    }));
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
        let text = markdown(&matrix());
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
}
