//! `cargo xtask vmtest`, orchestration only. A run's data flows one way: host tools → cases
//! and programs → per kernel [`prepare`] (source, build, plan) → [`slots`] (boots side by
//! side, handed back in matrix order) → [`judge`] → snapshots → [`report`]. Deciding lives in
//! the pure modules; this one runs things in order and passes data along.

mod judging;
pub mod prepare;
pub mod slots;

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::cases::plan::Scope;
use crate::cases::upstream;
use crate::cases::CaseSet;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::host_tools;
use crate::infra::paths::Paths;
use crate::infra::progress;
use crate::infra::runner::Runner;
use crate::judge::helpers;
use crate::kernel::manifest::Catalog;
use crate::report::{self, KernelReport};

use judging::Judging;
use prepare::Inputs;
use slots::InOrder;

/// Per-boot limit; a TCG boot plus the cases takes well under a minute here.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct Options {
    /// Manifest names; `all` means every manifest.
    pub kernels: Vec<String>,
    /// A directory of cases from outside the repository, with its own `snapshots/`.
    pub cases: Option<PathBuf>,
    /// Write snapshots instead of comparing them.
    pub accept: bool,
    pub timeout: Duration,
    /// A local kernel tree to build instead of the manifest's source (one kernel only).
    pub kernel_dir: Option<PathBuf>,
    /// Where to write JUnit XML of the results.
    pub junit: Option<PathBuf>,
    /// Run only these cases (all when empty).
    pub only_cases: Vec<String>,
    /// Compare with the snapshots (bisect judges by expectations only).
    pub compare_snapshots: bool,
    /// Whether the helper and kfunc probes may run (never in a bisect step).
    pub probes: bool,
    /// At most this many VMs at once (default: [`slots::boot_slots`]).
    pub vms: Option<usize>,
    /// Every row in each kernel's table, also after a matrix (which ends with the grid).
    pub verbose: bool,
    /// The newest version of each manifest's package that apt offers instead of the pin,
    /// compared with the pinned kernel's snapshots.
    pub latest: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernels: vec!["6.12".into()],
            cases: None,
            accept: false,
            timeout: DEFAULT_TIMEOUT,
            kernel_dir: None,
            junit: None,
            only_cases: Vec::new(),
            compare_snapshots: true,
            probes: true,
            vms: None,
            verbose: false,
            latest: false,
        }
    }
}

/// Runs every requested kernel; a kernel's own failure is in its report, an error here means
/// nothing could run at all.
pub fn run(paths: &Paths, options: &Options) -> Result<Vec<KernelReport>, SetupFailure> {
    let runner = Runner::new(&paths.root).at(SetupStage::HostTools)?;
    host_tools::ensure(&runner).at(SetupStage::HostTools)?;
    let catalog = Catalog::new(&paths.kernels());
    let kernels = catalog.select(&options.kernels).at(SetupStage::Input)?;
    if options.kernel_dir.is_some() && kernels.len() != 1 {
        let error = anyhow::anyhow!("--kernel-dir builds one tree: name the one manifest (fragments, features) it goes with, e.g. --kernel 6.12");
        return Err(error).at(SetupStage::Input);
    }
    let (mut case_set, snapshot_root) =
        CaseSet::for_run(paths, options.cases.as_deref()).at(SetupStage::Input)?;
    case_set.retain(&options.only_cases).at(SetupStage::Input)?;
    let guest_side = prepare::guest_side(&runner, paths, &case_set)?;
    let scope = Scope::of(options.cases.is_none(), &options.only_cases, options.probes);
    // Upstream's programs belong to the built-in set, not to a user's case directory.
    let families = (options.cases.is_none().then(|| paths.upstream_families()))
        .map_or(Ok(Vec::new()), |dir| {
            upstream::families(&dir, &catalog.vocabulary()?)
        })
        .at(SetupStage::Input)?;
    let inputs = Inputs {
        runner: &runner,
        paths,
        catalog: &catalog,
        case_set: &case_set,
        compiled: &guest_side.compiled,
        clang: &guest_side.clang,
        harness_digest: &guest_side.harness_digest,
        families: &families,
        kernel_dir: options.kernel_dir.as_ref(),
        only_cases: &options.only_cases,
        scope,
        latest: options.latest,
        compare_snapshots: options.compare_snapshots,
        user_snapshots: options.cases.is_some().then_some(snapshot_root.as_path()),
    };
    let judging = Judging {
        snapshot_root: &snapshot_root,
        options,
        rows: report::Rows::for_run(options.verbose, kernels.len()),
    };
    let reports = all(&inputs, &judging, &kernels, options);
    // Only an accepting run changes the snapshots the doc is made from; a comparing run (the
    // VM test's) leaves every checked-in file alone, and a stale doc is tests/docs.rs's to report.
    if scope == Scope::Measure && options.accept {
        helpers::write_doc(paths).at(SetupStage::Input)?;
    }
    // Upstream's cases are accepted one by one too (`--case upstream.x --accept`).
    if options.accept && options.cases.is_none() {
        crate::judge::upstream_doc::write_doc(paths).at(SetupStage::Input)?;
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report::junit(&reports))
            .map_err(anyhow::Error::from)
            .at(SetupStage::Input)?;
    }
    Ok(reports)
}

/// Every kernel: prepared here in matrix order and handed to the boot slots as soon as it is
/// ready; the slots hand the kernels back in matrix order, and each is judged and printed as
/// soon as its VM and those of the kernels before it are done (while later ones still run).
fn all(
    inputs: &Inputs,
    judging: &Judging,
    kernels: &[String],
    options: &Options,
) -> Vec<KernelReport> {
    let slots = (options.vms).unwrap_or_else(|| slots::default_boot_slots(kernels.len()));
    let labelled = kernels.len() > 1;
    let (jobs, waiting_jobs) = mpsc::channel::<slots::BootJob>();
    let (booted, boots) = mpsc::channel();
    let waiting_jobs = Mutex::new(waiting_jobs);
    let mut in_order = InOrder::default();
    let mut reports = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..slots.max(1) {
            let (waiting_jobs, booted) = (&waiting_jobs, booted.clone());
            let (paths, timeout) = (inputs.paths, options.timeout);
            scope.spawn(move || slots::boot_slot(paths, timeout, waiting_jobs, &booted, labelled));
        }
        drop(booted);
        for (index, kernel) in kernels.iter().enumerate() {
            if labelled {
                progress::label_thread(kernel);
            }
            let ready = inputs.prepare(kernel);
            if let Ok(ready) = &ready {
                let shards = slots::shards_here(&ready.plan.guest, kernels.len(), options.vms);
                let job = ready.boot_job(index, inputs.paths, shards);
                jobs.send(job).expect("the boot slots wait for jobs");
            }
            in_order.prepared(kernel, ready);
            progress::label_thread("");
            in_order.booted(boots.try_iter());
            reports.extend(in_order.due().into_iter().map(|turn| judging.turn(turn)));
        }
        drop(jobs);
        for vm in boots.iter() {
            in_order.booted(std::iter::once(vm));
            reports.extend(in_order.due().into_iter().map(|turn| judging.turn(turn)));
        }
    });
    reports
}
