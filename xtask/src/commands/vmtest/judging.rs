//! After a kernel's VM: probe answers kept, cases judged, snapshots written, the kernel's
//! table printed.

use std::path::Path;

use crate::cases::sweep::plan::Asked;
use crate::guest::boot::GuestRun;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::judge::snapshots::Store;
use crate::judge::sweep::Judged;
use crate::report::{self, KernelReport};

use super::prepare::Prepared;
use super::{slots, Options};

/// What judging any kernel of a run shares.
pub struct Judging<'a> {
    pub snapshot_root: &'a Path,
    pub options: &'a Options,
    /// Which rows each kernel's table shows.
    pub rows: report::Rows,
}

impl Judging<'_> {
    /// One kernel's turn judged (or its failure reported), printed, returned.
    pub fn turn(&self, (kernel, turn): slots::Turn<Prepared, GuestRun>) -> KernelReport {
        let (report, sweeps) = turn
            .and_then(|(ready, vm)| self.kernel(ready, vm))
            .unwrap_or_else(|failure| (KernelReport::setup_failure(&kernel, failure), Vec::new()));
        eprint!("\n{}", report.render_with(self.rows));
        for (text, markdown) in sweeps {
            eprint!("\n{text}");
            report::sweep_grid::publish_github_summary(&markdown);
        }
        report
    }

    /// Probe answers kept, cases judged, snapshots written.
    fn kernel(
        &self,
        mut ready: Prepared,
        mut vm: GuestRun,
    ) -> Result<(KernelReport, Vec<(String, String)>), SetupFailure> {
        if let Some(probes) = &ready.probes {
            probes.settle(&mut vm.records).at(SetupStage::Cache)?;
        }
        ready.probes = None;
        for kept in &ready.kept_sweeps {
            match (&kept.reused, vm.records.sweeps.get(&kept.case)) {
                (Some(_), _) => eprintln!(
                    "  {}: the records of an earlier run of this kernel build, harness and \
                     programs (`--case {}` runs it again)",
                    kept.case, kept.case
                ),
                (None, Some(records)) => kept.keep(records).at(SetupStage::Cache)?,
                (None, None) => {}
            }
        }
        // The reused sweeps into the records, as `report` judges a run directory.
        vm.records = ready.judging.settled(&vm.records);
        let store = Store::new(&self.snapshot_root.join(&ready.manifest.name));
        let names = ready.judging.snapshot_names();
        let stored = store.contents_of(names.iter().map(String::as_str));
        let snapshots = ready.judging.snapshots(stored, self.options.accept);
        let rows = (ready.judging).rows(
            &ready.plan.guest,
            &vm.records,
            vm.failure.as_ref(),
            snapshots,
        );
        let proposed = rows
            .iter()
            .filter_map(|r| Some((&r.case, r.proposed.as_ref()?, &r.snapshot)));
        for (case, error) in store.record_all(proposed) {
            eprintln!("  error: snapshot of {case}: {error:#}");
        }
        let sweeps = (ready.judging.sweeps.iter())
            .filter_map(|asked| {
                let Asked::Runs(sweep) = asked else {
                    return None;
                };
                let judged = Judged::of_sweep(sweep, vm.records.sweeps.get(&sweep.case_name()));
                Some(report::sweep_grid::render_judged(
                    &ready.manifest.name,
                    &judged,
                ))
            })
            .collect();
        let mut report = KernelReport::of_run(&ready.manifest.name, rows, &ready.build, vm);
        report.latest = ready.judging.latest.clone();
        Ok((report, sweeps))
    }
}
