//! The table printed at the end of a run, and the summary that decides the exit code.

use crate::compare::{self, CaseOutcome};

/// One case on one kernel.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: String,
    pub outcome: CaseOutcome,
    pub deviations: Vec<String>,
    pub snapshot_matches: bool,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.deviations.is_empty() && self.snapshot_matches
    }

    fn verdict(&self) -> &'static str {
        match (
            &self.outcome,
            self.deviations.is_empty(),
            self.snapshot_matches,
        ) {
            (CaseOutcome::Unsupported { .. }, _, true) => "unsupported",
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
}

impl KernelReport {
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.passed()).count()
    }

    pub fn render(&self) -> String {
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
            if let CaseOutcome::Unsupported { reason } = &row.outcome {
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
        out
    }
}
