//! `cargo xtask vmtest`, orchestration only: host tools → cases and programs → harness, then
//! for each kernel source → build (cached) → [`plan`] → boot → [`judge`] → snapshots → report.
//! Deciding lives in the pure modules; this one runs things in order and passes data along.

use std::path::{Path, PathBuf};

use protocol::HelperProbe;
use std::time::Duration;

use crate::boot::{self, GuestRun};
use crate::bpf::{self, Compiled};
use crate::cases::CaseSet;
use crate::failure::{AtStage, KernelFailure, SetupFailure, SetupStage};
use crate::judge::{self, Judge, Row, Snapshots};
use crate::kbuild::{self, KernelBuild};
use crate::manifest::{Catalog, Manifest, SourceSpec};
use crate::paths::Paths;
use crate::plan::{self, KernelPlan, Scope};
use crate::probe_cache::Probes;
use crate::progress;
use crate::report::{self, KernelReport, Timings};
use crate::runner::Runner;
use crate::snapshots::Store;
use crate::upstream::{self, Joined};
use crate::{helpers, host_tools, source};

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
        .map_or(Ok(Vec::new()), |dir| upstream::families(&dir))
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
    let reports: Vec<KernelReport> = kernels
        .iter()
        .map(|kernel| {
            let report = session
                .kernel(kernel)
                .unwrap_or_else(|failure| KernelReport::setup_failure(kernel, failure));
            eprint!("\n{}", report.render());
            report
        })
        .collect();
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
/// from an earlier run) and the harness. The compiler is kept for upstream's programs.
pub fn guest_side<'a>(
    runner: &'a Runner,
    paths: &Paths,
    case_set: &CaseSet,
) -> Result<(bpf::Clang<'a>, Compiled), SetupFailure> {
    let objects = paths.bpf_objects(&case_set.name);
    let clang = bpf::Clang::new(runner).at(SetupStage::HostTools)?;
    let compiled =
        (clang.compile_all(&case_set.program_sources(), &objects)).at(SetupStage::Programs)?;
    boot::build_harness(runner).at(SetupStage::HarnessBuild)?;
    Ok((clang, compiled))
}

/// What every kernel of a run shares.
struct Session<'a> {
    runner: &'a Runner,
    paths: &'a Paths,
    catalog: &'a Catalog,
    case_set: &'a CaseSet,
    compiled: &'a Compiled,
    clang: &'a bpf::Clang<'a>,
    /// Upstream's program families, compiled from each kernel's own tree.
    families: &'a [upstream::Family],
    snapshot_root: &'a Path,
    options: &'a Options,
    scope: Scope,
}

impl Session<'_> {
    fn kernel(&self, kernel: &str) -> Result<KernelReport, SetupFailure> {
        let mut manifest = self.catalog.load(kernel).at(SetupStage::Input)?;
        if let Some(path) = &self.options.kernel_dir {
            manifest.source = SourceSpec::Local { path: path.clone() };
        }
        let source =
            source::fetch(self.runner, self.paths, &manifest.source).at(SetupStage::Fetch)?;
        let build = kbuild::ensure(self.runner, self.paths, self.catalog, &manifest, &source)?;
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
        let runs = self.paths.runs(&manifest.name);
        let mut vm = boot::run_plan(
            self.runner,
            self.paths,
            &build.bzimage,
            &plan.guest,
            &runs,
            self.options.timeout,
        )
        .at(SetupStage::Boot)?;
        if let Some(probes) = &probes {
            probes.settle(&mut vm.records).at(SetupStage::Cache)?;
        }
        let measured = probes.map(|p| p.list).unwrap_or_default();
        Ok(self.report(&cases, &measured, &manifest, &build, &plan, vm))
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
