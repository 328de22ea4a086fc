//! After a kernel's VM: probe answers kept, cases judged, snapshots written, the kernel's
//! table printed.

use std::path::Path;

use protocol::HelperProbe;

use crate::cases::CaseSet;
use crate::guest::boot::GuestRun;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::paths::Paths;
use crate::judge::helpers;
use crate::judge::snapshots::Store;
use crate::judge::{self, Judge, Snapshots};
use crate::report::{self, KernelReport};

use super::prepare::Prepared;
use super::{slots, Options};

/// What judging any kernel of a run shares.
pub struct Judging<'a> {
    pub paths: &'a Paths,
    pub case_set: &'a CaseSet,
    pub snapshot_root: &'a Path,
    pub options: &'a Options,
    /// Which rows each kernel's table shows.
    pub rows: report::Rows,
}

impl Judging<'_> {
    /// One kernel's turn judged (or its failure reported), printed, returned.
    pub fn turn(&self, (kernel, turn): slots::Turn<Prepared, GuestRun>) -> KernelReport {
        let report = turn
            .and_then(|(ready, vm)| self.kernel(ready, vm))
            .unwrap_or_else(|failure| KernelReport::setup_failure(&kernel, failure));
        eprint!("\n{}", report.render_with(self.rows));
        report
    }

    /// Probe answers kept, cases judged, snapshots written.
    fn kernel(&self, mut ready: Prepared, mut vm: GuestRun) -> Result<KernelReport, SetupFailure> {
        if let Some(probes) = &ready.probes {
            probes.settle(&mut vm.records).at(SetupStage::Cache)?;
        }
        let measured = ready.probes.take().map(|p| p.list).unwrap_or_default();
        let store = Store::new(&self.snapshot_root.join(&ready.manifest.name));
        let rows = self.rows(&ready, &measured, &store, &vm);
        let proposed = rows
            .iter()
            .filter_map(|r| Some((&r.case, r.proposed.as_ref()?, &r.snapshot)));
        for (case, error) in store.record_all(proposed) {
            eprintln!("  error: snapshot of {case}: {error:#}");
        }
        Ok(KernelReport::of_run(
            &ready.manifest.name,
            rows,
            &ready.build,
            vm,
        ))
    }

    fn rows(
        &self,
        ready: &Prepared,
        measured: &[HelperProbe],
        store: &Store,
        vm: &GuestRun,
    ) -> Vec<judge::Row> {
        let probes = match measured.is_empty() {
            false => helpers::probe_outcomes(measured, &vm.records, vm.failure.as_ref()),
            true => Vec::new(),
        };
        let names = ready.cases.cases.iter().map(|c| c.name.as_str());
        let names = names.chain(probes.iter().map(|(name, _, _)| *name));
        let judge = Judge {
            kernel: &ready.manifest.name,
            snapshots: match self.options.compare_snapshots {
                true => Snapshots::Compared {
                    stored: store.contents_of(names),
                    accept: self.options.accept,
                },
                false => Snapshots::Ignored,
            },
            host_paths: vec![
                (&self.case_set.dir, "<cases>"),
                (&self.paths.root, "<root>"),
                (&self.paths.cache, "<cache>"),
            ],
        };
        let outcomes = judge::outcomes(&ready.plan, &vm.records, vm.failure.as_ref());
        let mut rows = judge.cases(&ready.cases.cases, outcomes);
        rows.extend(
            probes
                .into_iter()
                .map(|(name, description, outcome)| judge.probe(name, description, outcome)),
        );
        rows
    }
}
