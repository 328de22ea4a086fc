//! One kernel's run judged, pure: what the host knew before the boot ([`RunJudging`]: the
//! cases with their expectations, the outcomes decided without the guest, the probes, the
//! host's paths), the guest's plan and records, and the stored snapshots become the rows.
//! `vmtest` judges a run it has just booted with it, and `cargo xtask report` a run directory
//! read back later (the host's part is kept in the run directory as `judging.json`), so the
//! two cannot judge differently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol::{HelperProbe, Plan};
use serde::{Deserialize, Serialize};

use crate::cases::plan::KernelPlan;
use crate::cases::sweep::plan::{Asked, Sweep};
use crate::cases::{Case, CaseOutcome};
use crate::guest::probe_cache::Answers;
use crate::guest::results::{RunFailure, RunRecords, SweepRecords};
use crate::judge::{self, helpers, Judge, Row, Snapshots};
use crate::kernel::latest::Latest;

/// What judging one kernel's run needs besides the guest's plan and records and the stored
/// snapshots; serialisable, so a run directory keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJudging {
    pub kernel: String,
    /// The source the kernel was built from (`debian:linux-source-6.12=6.12.117-1~deb12u1`).
    pub source: String,
    /// What `--latest` took instead of the manifest's version, if it was asked for.
    #[serde(default)]
    pub latest: Option<Latest>,
    /// The kernel's cases (the run's and upstream's from its tree), in run order.
    pub cases: Vec<NamedCase>,
    /// Outcomes decided before the boot (missing feature, compile error).
    pub decided: BTreeMap<String, CaseOutcome>,
    /// The helpers probed (empty: no probes in this run).
    pub probes: Vec<HelperProbe>,
    /// The probe answers an earlier run of this build measured (the guest did not probe).
    pub reused_probes: Option<Answers>,
    /// Host directories that appear in compiler messages and logs, with what replaces them.
    pub host_paths: Vec<(PathBuf, String)>,
    /// Compared with the snapshots (bisect judges by expectations only).
    pub compare_snapshots: bool,
    /// The snapshots' directory of a `--cases DIR` run (`DIR/snapshots`); `None`: the
    /// built-in cases, whose snapshots are the checkout's `tests/snapshots/`.
    pub user_snapshots: Option<PathBuf>,
    /// The sweeps the run asked for (`sweep.<tracepoint>`), each judged as one row: the
    /// tracepoint as this kernel gave it, or why it has none.
    #[serde(default)]
    pub sweeps: Vec<Asked>,
    /// Upstream's name of each of upstream's tests among the cases (`<file>/<test>`), which
    /// JUnit reports them by.
    #[serde(default)]
    pub upstream_names: BTreeMap<String, String>,
    /// The sweeps whose records an earlier run of this kernel build measured (the guest did
    /// not run them again), by case name.
    #[serde(default)]
    pub reused_sweeps: BTreeMap<String, SweepRecords>,
}

/// A case with its name (which a case file does not hold: it is the file's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCase {
    pub name: String,
    pub case: Case,
}

impl NamedCase {
    pub fn of(cases: &[Case]) -> Vec<Self> {
        let named = |case: &Case| NamedCase {
            name: case.name.clone(),
            case: case.clone(),
        };
        cases.iter().map(named).collect()
    }
}

impl RunJudging {
    /// The cases, named again.
    pub fn cases(&self) -> Vec<Case> {
        let named = |named: &NamedCase| Case {
            name: named.name.clone(),
            ..named.case.clone()
        };
        self.cases.iter().map(named).collect()
    }

    /// Every name a row may have, whose stored snapshot the judging needs.
    pub fn snapshot_names(&self) -> Vec<String> {
        let cases = self.cases.iter().map(|c| c.name.clone());
        let probes = match self.probes.is_empty() {
            true => Vec::new(),
            false => vec![helpers::PROBE_HELPERS.into(), helpers::PROBE_KFUNC.into()],
        };
        let sweeps = self.sweeps.iter().map(Asked::case_name);
        cases.chain(probes).chain(sweeps).collect()
    }

    /// How the snapshots take part: `stored` (name → body) compared, unless this run judged
    /// by expectations only.
    pub fn snapshots(&self, stored: BTreeMap<String, String>, accept: bool) -> Snapshots {
        match self.compare_snapshots {
            true => Snapshots::Compared { stored, accept },
            false => Snapshots::Ignored,
        }
    }

    /// The records with the reused probe answers and sweeps put in, as the run had them.
    pub fn settled(&self, records: &RunRecords) -> RunRecords {
        let mut records = records.clone();
        if let Some(answers) = &self.reused_probes {
            records.helpers = answers.helpers.iter().cloned().collect();
            records.kfuncs = answers.kfuncs.iter().cloned().collect();
        }
        for (case, reused) in &self.reused_sweeps {
            records.sweeps.insert(case.clone(), reused.clone());
        }
        records
    }

    /// One row per case (in run order), then the probe tables.
    pub fn rows(
        &self,
        plan: &Plan,
        records: &RunRecords,
        failure: Option<&RunFailure>,
        snapshots: Snapshots,
    ) -> Vec<Row> {
        let records = self.settled(records);
        let probes = match self.probes.is_empty() {
            false => helpers::probe_outcomes(&self.probes, &records, failure),
            true => Vec::new(),
        };
        let judge = Judge {
            kernel: &self.kernel,
            snapshots,
            host_paths: (self.host_paths.iter())
                .map(|(path, label)| (Path::new(path), label.as_str()))
                .collect(),
        };
        let plan = KernelPlan {
            guest: plan.clone(),
            decided: self.decided.clone(),
        };
        let outcomes = judge::outcomes(&plan, &records, failure);
        let mut rows = judge.cases(&self.cases(), outcomes);
        for row in &mut rows {
            row.upstream_name = self.upstream_names.get(&row.case).cloned();
        }
        rows.extend(
            probes
                .into_iter()
                .map(|(name, description, outcome)| judge.probe(name, description, outcome)),
        );
        for asked in &self.sweeps {
            let outcome = match asked {
                Asked::Runs(sweep) => sweep_outcome(sweep, &records, failure),
                Asked::Missing { reason, .. } => CaseOutcome::Unsupported {
                    reason: reason.clone(),
                },
            };
            let mut row = judge.probe(&asked.case_name(), SWEEP_DESCRIPTION, outcome);
            // Judged by expectations only (a bisect step), a sweep's expectation is the model.
            if let (false, Asked::Runs(sweep)) = (self.compare_snapshots, asked) {
                let judged = judge::sweep::Judged::of_sweep(sweep, records.sweeps.get(&row.case));
                let deviations = judged.deviations().into_iter();
                row.deviations
                    .extend(deviations.map(|d| format!("deviates from the model: {d}")));
            }
            rows.push(row);
        }
        rows
    }
}

const SWEEP_DESCRIPTION: &str = "The boundary sweep (issue 27): every generated program loaded, \
     attached and fired on this kernel, against the model of 7.2's rules: counts per cell, \
     deviations, rewordings, JIT against interpreter";

/// A sweep's row: its summary, or why it has none.
fn sweep_outcome(sweep: &Sweep, records: &RunRecords, failure: Option<&RunFailure>) -> CaseOutcome {
    if let Some(reason) = module_not_loaded(sweep, records) {
        return CaseOutcome::NotRun { reason };
    }
    match (records.sweeps.get(&sweep.case_name()), failure) {
        (Some(swept), _) if swept.done_ms.is_some() => {
            CaseOutcome::Probe(judge::sweep::Judged::of_sweep(sweep, Some(swept)).summary())
        }
        (_, Some(failure)) => CaseOutcome::NotRun {
            reason: failure.describe(),
        },
        _ => CaseOutcome::NotRun {
            reason: "the sweep did not finish".into(),
        },
    }
}

/// Why the module that defines a sweep's tracepoint is not there, if the guest says so (every
/// attach would have been refused with ENOENT: no sweep to judge).
fn module_not_loaded(sweep: &Sweep, records: &RunRecords) -> Option<String> {
    let module = sweep.module.as_ref()?;
    let boot = records.boot.as_ref()?;
    let load = boot.modules.iter().find(|m| &m.path == module)?;
    let name = module.file_name().unwrap_or_default().to_string_lossy();
    (!load.outcome.is_ok()).then(|| {
        format!(
            "{name}, which defines {}, did not load: {:?}",
            sweep.kernel_name, load.outcome
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::CaseSet;
    use crate::infra::paths::Paths;

    /// A kernel's judging with nothing in it but the sweeps asked for.
    fn judging_of(kernel: &str, sweeps: Vec<Asked>, compare_snapshots: bool) -> RunJudging {
        RunJudging {
            kernel: kernel.into(),
            source: "s".into(),
            latest: None,
            cases: Vec::new(),
            decided: BTreeMap::new(),
            probes: Vec::new(),
            reused_probes: None,
            host_paths: Vec::new(),
            compare_snapshots,
            user_snapshots: None,
            sweeps,
            upstream_names: BTreeMap::new(),
            reused_sweeps: BTreeMap::new(),
        }
    }

    #[test]
    fn every_built_in_case_survives_the_run_directory() {
        let (set, _) = CaseSet::for_run(&Paths::from_env(), None).unwrap();
        let named = NamedCase::of(&set.cases);
        let text = serde_json::to_string(&named).unwrap();
        let back: Vec<NamedCase> = serde_json::from_str(&text).unwrap();
        let judging = RunJudging {
            source: "debian:linux-source-6.12=6.12.117-1~deb12u1".into(),
            cases: back,
            decided: [(
                "x".to_owned(),
                CaseOutcome::CompileError {
                    message: "m".into(),
                },
            )]
            .into(),
            host_paths: vec![("/r".into(), "<root>".into())],
            ..judging_of("6.12", Vec::new(), true)
        };
        assert_eq!(judging.cases(), set.cases);
        let text = serde_json::to_string(&judging).unwrap();
        let back = serde_json::from_str::<RunJudging>(&text).unwrap();
        assert_eq!(back.cases(), set.cases);
        assert_eq!(back.decided, judging.decided);
    }

    #[test]
    fn a_sweep_is_a_row_unsupported_where_the_kernel_lacks_it_not_run_without_its_module() {
        use crate::cases::sweep::plan::Sweep;
        use crate::cases::sweep::Tracepoint;
        use protocol::{BootInfo, ModuleLoad, Outcome};

        let ko = PathBuf::from("/cache/6.12/testmod/bpf_testmod.ko");
        let testmod = Sweep {
            tracepoint: Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1),
            kernel_name: "bpf_testmod_test_writable_bare".into(),
            module: Some(ko.clone()),
            program: None,
        };
        let missing = Asked::Missing {
            case: "sweep.nope".into(),
            reason: "kernel 6.12 has no writable raw tracepoint `nope`".into(),
        };
        let judging = judging_of("6.12", vec![missing, Asked::Runs(testmod)], false);
        assert_eq!(
            judging.snapshot_names(),
            ["sweep.nope", "sweep.bpf_testmod_test_writable_bare"]
        );
        let text = serde_json::to_string(&judging).unwrap();
        assert_eq!(serde_json::from_str::<RunJudging>(&text).unwrap(), judging);
        let plan: Plan = serde_json::from_str(r#"{"modules":[],"cases":[]}"#).unwrap();
        let records = RunRecords {
            boot: Some(BootInfo {
                kernel_release: "6.12".into(),
                modules: vec![ModuleLoad {
                    path: ko,
                    outcome: Outcome::errno(2),
                }],
                uptime_ms: 0,
            }),
            ..RunRecords::default()
        };
        let rows = judging.rows(&plan, &records, None, Snapshots::Ignored);
        assert_eq!(rows.len(), 2);
        assert!(
            matches!(&rows[0].outcome, CaseOutcome::Unsupported { reason } if reason.contains("`nope`")),
            "{:?}",
            rows[0].outcome
        );
        let CaseOutcome::NotRun { reason } = &rows[1].outcome else {
            panic!("{:?}", rows[1].outcome)
        };
        assert!(
            reason.starts_with(
                "bpf_testmod.ko, which defines bpf_testmod_test_writable_bare, did not load"
            ),
            "{reason}"
        );
    }

    #[test]
    fn judged_by_expectations_only_a_sweep_cell_deviates_where_the_kernel_differs_from_the_model() {
        use crate::cases::sweep::plan::{for_kernel, Sweep};
        use crate::cases::sweep::Tracepoint;
        use crate::guest::results::SweepRecords;
        use protocol::SweepResult;

        let finish = Sweep {
            tracepoint: Tracepoint::new("bpf_test_finish", 4, 1),
            kernel_name: "bpf_test_finish".into(),
            module: None,
            program: None,
        };
        let cell = "sweep.bpf_test_finish.xchg.w.off0".to_owned();
        let sweeps = for_kernel("5.10", &[finish], std::slice::from_ref(&cell), false);
        let judging = |compare_snapshots| judging_of("5.10", sweeps.clone(), compare_snapshots);
        // 5.10's answer: xchg is a v3 atomic it does not know.
        let refused = SweepResult {
            name: cell.clone(),
            load: 22,
            verdict: "BPF_STX uses reserved fields".into(),
            attach: None,
            after: None,
            interpreted: None,
            note: String::new(),
        };
        let mut records = RunRecords::default();
        let swept = SweepRecords {
            results: vec![refused],
            done_ms: Some(1),
            notes: Vec::new(),
        };
        records.sweeps.insert(cell.clone(), swept);
        let plan: Plan = serde_json::from_str(r#"{"modules":[],"cases":[]}"#).unwrap();
        let bisect = judging(false).rows(&plan, &records, None, Snapshots::Ignored);
        assert_eq!(bisect[0].case, cell);
        assert_eq!(bisect[0].deviations.len(), 1, "{:?}", bisect[0].deviations);
        assert!(bisect[0].deviations[0].starts_with("deviates from the model: "));
        let snapshotted = judging(true).rows(&plan, &records, None, Snapshots::Ignored);
        assert!(
            snapshotted[0].deviations.is_empty(),
            "the snapshot is the expectation there"
        );
    }
}
