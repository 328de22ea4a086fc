//! `cargo xtask vmtest`, orchestration only: host tools → cases and programs → harness, then
//! for each kernel source → build (cached) → [`plan`] → boot → [`judge`] → snapshots → report.
//! Deciding lives in the pure modules; this one runs things in order and passes data along.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use protocol::HelperProbe;
use std::time::Duration;

use crate::cases::compile::{self, Compiled};
use crate::cases::plan::{self, KernelPlan, Scope};
use crate::cases::upstream::{self, Joined};
use crate::cases::CaseSet;
use crate::commands::matrix::{self, InOrder};
use crate::guest::boot::{self, GuestRun};
use crate::guest::failure::KernelFailure;
use crate::guest::initramfs;
use crate::guest::probe_cache::Probes;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::host_tools;
use crate::infra::paths::Paths;
use crate::infra::progress;
use crate::infra::runner::Runner;
use crate::judge::helpers;
use crate::judge::snapshots::Store;
use crate::judge::{self, Judge, Row, Snapshots};
use crate::kernel::build::{self, KernelBuild};
use crate::kernel::manifest::{Catalog, Manifest, SourceSpec};
use crate::kernel::source;
use crate::report::{self, KernelReport, Timings};

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
    /// At most this many VMs at once (default: [`matrix::boot_slots`]).
    pub vms: Option<usize>,
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
    let (clang, compiled) = guest_side(&runner, paths, &case_set)?;
    let scope = Scope::of(options.cases.is_none(), &options.only_cases, options.probes);
    // Upstream's programs belong to the built-in set, not to a user's case directory.
    let families = (options.cases.is_none().then(|| paths.upstream_families()))
        .map_or(Ok(Vec::new()), |dir| {
            upstream::families(&dir, &catalog.vocabulary()?)
        })
        .at(SetupStage::Input)?;
    let session = Session {
        runner: &runner,
        paths,
        catalog: &catalog,
        case_set: &case_set,
        compiled: &compiled,
        clang: &clang,
        families: &families,
        snapshot_root: &snapshot_root,
        options,
        scope,
    };
    let reports = session.all(&kernels);
    if scope == Scope::Measure {
        helpers::write_doc(paths).at(SetupStage::Input)?;
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report::junit(&reports))
            .map_err(anyhow::Error::from)
            .at(SetupStage::Input)?;
    }
    Ok(reports)
}

/// What the guest runs, whatever the kernel: the case set's programs (compiled, or unchanged
/// from an earlier run) and the harness with the initramfs that starts it, built at the same
/// time (cargo's check that nothing changed takes as long as clang's). The compiler is kept
/// for upstream's programs.
pub fn guest_side<'a>(
    runner: &'a Runner,
    paths: &Paths,
    case_set: &CaseSet,
) -> Result<(compile::Clang<'a>, Compiled), SetupFailure> {
    let objects = paths.bpf_objects(&case_set.name);
    let clang = compile::Clang::new(runner).at(SetupStage::HostTools)?;
    let (compiled, harness) = std::thread::scope(|scope| {
        let harness = scope.spawn(|| {
            let runner = Runner::new(&paths.root)?;
            boot::build_harness(&runner)?;
            initramfs::build(&runner, paths)
        });
        let compiled = clang.compile_all(&case_set.program_sources(), &objects);
        (
            compiled,
            harness.join().expect("the harness build does not panic"),
        )
    });
    harness.at(SetupStage::HarnessBuild)?;
    Ok((clang, compiled.at(SetupStage::Programs)?))
}

/// One kernel, built and planned, waiting for its boot.
struct Prepared {
    manifest: Manifest,
    /// Holds the cache entry's shared lock until the kernel is judged.
    build: KernelBuild,
    probes: Option<Probes>,
    cases: CaseSet,
    plan: KernelPlan,
}

/// What a boot slot needs to boot one kernel.
struct BootJob {
    index: usize,
    kernel: String,
    bzimage: PathBuf,
    plan: protocol::Plan,
    runs: PathBuf,
}

impl BootJob {
    fn of(index: usize, kernel: &str, ready: &Prepared, paths: &Paths) -> Self {
        Self {
            index,
            kernel: kernel.to_owned(),
            bzimage: ready.build.bzimage.clone(),
            plan: ready.plan.guest.clone(),
            runs: paths.runs(&ready.manifest.name),
        }
    }
}

/// One boot slot: boots the kernels it is handed, one after another, with its own runner
/// (a shell is not shared between threads). The VMs are tied to this thread, which lives
/// until its last VM has ended.
fn boot_slot(
    paths: &Paths,
    timeout: Duration,
    jobs: &Mutex<mpsc::Receiver<BootJob>>,
    booted: &mpsc::Sender<(usize, Result<GuestRun, SetupFailure>)>,
    labelled: bool,
) {
    let runner = Runner::new(&paths.root);
    loop {
        let job = jobs
            .lock()
            .expect("no slot panics holding the queue")
            .recv();
        let Ok(job) = job else { return };
        if labelled {
            progress::label_thread(&job.kernel);
        }
        let vm = match &runner {
            Ok(runner) => {
                boot::run_plan(runner, paths, &job.bzimage, &job.plan, &job.runs, timeout)
            }
            Err(error) => Err(anyhow::anyhow!("{error:#}")),
        };
        let _ = booted.send((job.index, vm.at(SetupStage::Boot)));
    }
}

/// What every kernel of a run shares.
struct Session<'a> {
    runner: &'a Runner,
    paths: &'a Paths,
    catalog: &'a Catalog,
    case_set: &'a CaseSet,
    compiled: &'a Compiled,
    clang: &'a compile::Clang<'a>,
    /// Upstream's program families, compiled from each kernel's own tree.
    families: &'a [upstream::Family],
    snapshot_root: &'a Path,
    options: &'a Options,
    scope: Scope,
}

impl Session<'_> {
    /// Every kernel: each is prepared here in matrix order and handed to the boot slots as
    /// soon as it is ready; each report is judged and shown in matrix order as soon as its VM
    /// and those of the kernels before it are done.
    fn all(&self, kernels: &[String]) -> Vec<KernelReport> {
        let slots = (self.options.vms).unwrap_or_else(|| matrix::default_boot_slots(kernels.len()));
        let labelled = kernels.len() > 1;
        let (jobs, waiting_jobs) = mpsc::channel::<BootJob>();
        let (booted, boots) = mpsc::channel();
        let waiting_jobs = Mutex::new(waiting_jobs);
        let mut in_order = InOrder::default();
        std::thread::scope(|scope| {
            for _ in 0..slots.max(1) {
                let (waiting_jobs, booted) = (&waiting_jobs, booted.clone());
                let (paths, timeout) = (self.paths, self.options.timeout);
                scope.spawn(move || boot_slot(paths, timeout, waiting_jobs, &booted, labelled));
            }
            drop(booted);
            for (index, kernel) in kernels.iter().enumerate() {
                if labelled {
                    progress::label_thread(kernel);
                }
                let ready = self.prepare(kernel);
                if let Ok(ready) = &ready {
                    let job = BootJob::of(index, kernel, ready, self.paths);
                    jobs.send(job).expect("the boot slots wait for jobs");
                }
                in_order.prepared(kernel, ready);
                progress::label_thread("");
                in_order.booted(boots.try_iter());
                in_order.report(|ready, vm| self.finish(ready, vm));
            }
            drop(jobs);
            // One VM at a time: a kernel is judged and printed while later ones still run.
            for vm in boots.iter() {
                in_order.booted(std::iter::once(vm));
                in_order.report(|ready, vm| self.finish(ready, vm));
            }
        });
        in_order.reports
    }

    /// Everything before the boot: source, build (cached), probes, upstream's programs, plan.
    fn prepare(&self, kernel: &str) -> Result<Prepared, SetupFailure> {
        let mut manifest = self.catalog.load(kernel).at(SetupStage::Input)?;
        if let Some(path) = &self.options.kernel_dir {
            manifest.source = SourceSpec::Local { path: path.clone() };
        }
        let source =
            source::fetch(self.runner, self.paths, &manifest.source).at(SetupStage::Fetch)?;
        let build = build::ensure(self.runner, self.paths, self.catalog, &manifest, &source)?;
        let harness = self.paths.harness_binary();
        let probes = match self.scope {
            Scope::Measure => Some(Probes::of_tree(&source.dir, &build.dir, &harness)?),
            Scope::CasesOnly => None,
        };
        let (cases, compiled, decided) = self.with_upstream(&manifest.name, &source.dir)?;
        let to_probe = probes.as_ref().map(Probes::to_run).unwrap_or_default();
        let mut plan = plan::plan(
            &cases,
            &manifest,
            &build.modules,
            &compiled,
            self.scope,
            to_probe,
        );
        plan.decided.extend(decided);
        Ok(Prepared {
            manifest,
            build,
            probes,
            cases,
            plan,
        })
    }

    /// Everything after the boot: probe answers kept, cases judged, snapshots written.
    fn finish(&self, ready: Prepared, mut vm: GuestRun) -> Result<KernelReport, SetupFailure> {
        if let Some(probes) = &ready.probes {
            probes.settle(&mut vm.records).at(SetupStage::Cache)?;
        }
        let measured = ready.probes.map(|p| p.list).unwrap_or_default();
        Ok(self.report(
            &ready.cases,
            &measured,
            &ready.manifest,
            &ready.build,
            &ready.plan,
            vm,
        ))
    }

    /// The run's cases and objects plus upstream's programs from this kernel's tree.
    fn with_upstream(&self, kernel: &str, tree: &Path) -> Result<Joined, SetupFailure> {
        let out_dir = self.paths.bpf_objects(&format!("upstream-{kernel}"));
        let members = upstream::members(self.clang, tree, self.families, &out_dir)
            .at(SetupStage::Programs)?;
        Ok(members.joined(self.case_set, self.compiled, &self.options.only_cases))
    }

    fn report(
        &self,
        cases: &CaseSet,
        measured: &[HelperProbe],
        manifest: &Manifest,
        build: &KernelBuild,
        plan: &KernelPlan,
        vm: GuestRun,
    ) -> KernelReport {
        let store = Store::new(&self.snapshot_root.join(&manifest.name));
        let rows = self.judge(cases, measured, &store, &manifest.name, plan, &vm);
        let proposed = rows
            .iter()
            .filter_map(|r| Some((&r.case, r.proposed.as_ref()?, &r.snapshot)));
        for (case, error) in store.record_all(proposed) {
            eprintln!("  error: snapshot of {case}: {error:#}");
        }
        let timings = Timings::of(build, &vm);
        KernelReport {
            kernel: manifest.name.clone(),
            context: report::context(vm.records.boot.as_ref(), vm.accel),
            rows,
            failure: vm.failure.map(|failure| KernelFailure::Run {
                failure,
                console_tail: progress::tail(&vm.console, 30),
                console: vm.console,
            }),
            timings,
            run_dir: Some(vm.dir),
        }
    }

    fn judge(
        &self,
        cases: &CaseSet,
        measured: &[HelperProbe],
        store: &Store,
        kernel: &str,
        plan: &KernelPlan,
        vm: &GuestRun,
    ) -> Vec<Row> {
        let probes = match measured.is_empty() {
            false => helpers::probe_outcomes(measured, &vm.records, vm.failure.as_ref()),
            true => Vec::new(),
        };
        let names = cases.cases.iter().map(|c| c.name.as_str());
        let names = names.chain(probes.iter().map(|(name, _, _)| *name));
        let judge = Judge {
            kernel,
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
        let outcomes = judge::outcomes(plan, &vm.records, vm.failure.as_ref());
        let mut rows = judge.cases(&cases.cases, outcomes);
        rows.extend(
            probes
                .into_iter()
                .map(|(name, description, outcome)| judge.probe(name, description, outcome)),
        );
        rows
    }
}
