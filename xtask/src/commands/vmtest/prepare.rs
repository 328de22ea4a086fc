//! Everything before a kernel's boot: what the guest runs whatever the kernel (programs,
//! harness, initramfs), then per kernel its source, build (cached), probes, upstream's
//! programs from its tree, and the plan.

use std::path::{Path, PathBuf};

use crate::cases::compile::{self, Compiled};
use crate::cases::plan::{self, KernelPlan, Scope};
use crate::cases::sweep::plan::{self as sweep_plan, Asked};
use crate::cases::upstream::{self, Joined};
use crate::cases::CaseSet;
use crate::guest::boot;
use crate::guest::initramfs;
use crate::guest::probe_cache::Probes;
use crate::guest::sweep_cache::KeptSweep;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::paths::Paths;
use crate::infra::runner::Runner;
use crate::judge::run::{NamedCase, RunJudging};
use crate::kernel::build::{self, KernelBuild};
use crate::kernel::latest;
use crate::kernel::manifest::{Catalog, Manifest, SourceSpec};
use crate::kernel::raw_tp;
use crate::kernel::source;
use crate::kernel::user_module;
use crate::kernel::vmlinux_h::{self, VmlinuxHeaders};
use anyhow::Context;
use protocol::SweepPlan;

use super::slots::BootJob;

/// What the guest runs, whatever the kernel: the case set's programs (compiled, or unchanged
/// from an earlier run) and the harness with the initramfs that starts it, built at the same
/// time (cargo's check that nothing changed takes as long as clang's). The compiler is kept
/// for upstream's programs.
pub struct GuestSide<'a> {
    pub clang: compile::Clang<'a>,
    pub compiled: Compiled,
    /// The harness binary's digest, which keys the probe and sweep records of every kernel.
    pub harness_digest: String,
}

pub fn guest_side<'a>(
    runner: &'a Runner,
    paths: &Paths,
    case_set: &CaseSet,
) -> Result<GuestSide<'a>, SetupFailure> {
    let objects = paths.bpf_objects(&case_set.name);
    let clang = compile::Clang::new(runner).at(SetupStage::HostTools)?;
    let (compiled, harness) = std::thread::scope(|scope| {
        // Its own target directory (`--target`), so its cargo does not wait for the harness's.
        let initramfs = scope.spawn(|| initramfs::build(&Runner::new(&paths.root)?, paths));
        let harness = scope.spawn(|| {
            let runner = Runner::new(&paths.root)?;
            boot::build_harness(&runner)?;
            let binary = paths.harness_binary();
            let bytes =
                std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
            anyhow::Ok(crate::infra::digest::short_hex_of(&bytes))
        });
        // Programs that include vmlinux.h are compiled per kernel (`against_headers`).
        let sources: Vec<PathBuf> = (case_set.program_sources().into_iter())
            .filter(|source| !compile::includes_vmlinux_h(source))
            .collect();
        let compiled = clang.compile_all(&sources, &objects);
        let harness = harness.join().expect("the harness build does not panic");
        let initramfs = initramfs
            .join()
            .expect("the initramfs build does not panic");
        (compiled, initramfs.and(harness))
    });
    let harness_digest = harness.at(SetupStage::HarnessBuild)?;
    Ok(GuestSide {
        clang,
        compiled: compiled.at(SetupStage::Programs)?,
        harness_digest,
    })
}

/// The modules the guest loads for `case_set` on this kernel: the kernel's own
/// (bpf_testmod) and then the case set's (`modules/<name>/`), built against it (cached). A
/// module that does not build fails this kernel at the module-build stage with the
/// compiler's words; the other kernels of the run go on.
pub fn with_user_modules(
    runner: &Runner,
    paths: &Paths,
    build: &KernelBuild,
    case_set: &CaseSet,
) -> Result<Vec<PathBuf>, SetupFailure> {
    let mut modules = build.modules.clone();
    for module in &case_set.modules {
        let ko = user_module::ensure(runner, paths, build, &module.name, &module.dir)
            .with_context(|| {
                format!(
                    "module `{}` ({}) against kernel {}",
                    module.name,
                    module.dir.display(),
                    build.kernel
                )
            })
            .at(SetupStage::ModuleBuild)?;
        modules.push(ko);
    }
    Ok(modules)
}

/// One kernel, built and planned, waiting for its boot.
pub struct Prepared {
    pub manifest: Manifest,
    /// Holds the cache entry's shared lock until the kernel is judged.
    pub build: KernelBuild,
    pub probes: Option<Probes>,
    /// Each sweep that runs, where its records are kept (or were, when reused).
    pub kept_sweeps: Vec<KeptSweep>,
    pub cases: CaseSet,
    pub plan: KernelPlan,
    /// How to judge its run; kept in the run directory too, for `cargo xtask report`.
    pub judging: RunJudging,
}

impl Prepared {
    pub fn boot_job(&self, index: usize, paths: &Paths, shards: usize) -> BootJob {
        BootJob {
            index,
            kernel: self.manifest.name.clone(),
            bzimage: self.build.bzimage.clone(),
            plan: self.plan.guest.clone(),
            shards,
            judging: serde_json::to_string_pretty(&self.judging)
                .expect("the judging record serialises"),
            runs: paths.runs(&self.manifest.name),
        }
    }
}

/// What preparing any kernel of a run shares.
pub struct Inputs<'a> {
    pub runner: &'a Runner,
    pub paths: &'a Paths,
    pub catalog: &'a Catalog,
    pub case_set: &'a CaseSet,
    pub compiled: &'a Compiled,
    pub clang: &'a compile::Clang<'a>,
    /// [`GuestSide::harness_digest`].
    pub harness_digest: &'a str,
    /// Upstream's program families, compiled from each kernel's own tree.
    pub families: &'a [upstream::Family],
    pub kernel_dir: Option<&'a PathBuf>,
    pub only_cases: &'a [String],
    pub scope: Scope,
    /// Take the newest version of each manifest's package that apt offers (`--latest`).
    pub latest: bool,
    /// Compared with the snapshots (bisect judges by expectations only).
    pub compare_snapshots: bool,
    /// The snapshots' directory of a `--cases DIR` run; `None` for the built-in cases.
    pub user_snapshots: Option<&'a Path>,
}

impl Inputs<'_> {
    /// Source, build (cached), probes, upstream's programs, plan.
    pub fn prepare(&self, kernel: &str) -> Result<Prepared, SetupFailure> {
        let mut manifest = self.catalog.load(kernel).at(SetupStage::Input)?;
        if let Some(path) = self.kernel_dir {
            manifest.source = SourceSpec::Local { path: path.clone() };
        }
        let latest = match self.latest {
            true => {
                let latest =
                    latest::resolve(self.runner, self.paths, &manifest).at(SetupStage::Fetch)?;
                crate::infra::progress::line(format_args!("  --latest: {}", latest.describe()));
                latest::apply(&mut manifest, &latest);
                Some(latest)
            }
            false => None,
        };
        let source =
            source::fetch(self.runner, self.paths, &manifest.source).at(SetupStage::Fetch)?;
        let build = build::ensure(self.runner, self.paths, self.catalog, &manifest, &source)?;
        let modules = with_user_modules(self.runner, self.paths, &build, self.case_set)?;
        let probes = match self.scope {
            Scope::Measure => Some(Probes::of_tree(
                &source.dir,
                &build.dir,
                self.harness_digest,
            )?),
            Scope::CasesOnly => None,
        };
        let headers = vmlinux_h::ensure(self.runner, &build, &source.dir)
            .context("generating vmlinux.h from the kernel's BTF")
            .at(SetupStage::Programs)?;
        let compiled = self.against_headers(&manifest.name, &headers)?;
        let Joined {
            cases,
            compiled,
            decided,
            upstream_names,
        } = self.with_upstream(&manifest.name, &source.dir, &compiled, &headers)?;
        let to_probe = probes.as_ref().map(Probes::to_run).unwrap_or_default();
        let mut plan = plan::plan(&cases, &manifest, &modules, &compiled, self.scope, to_probe);
        plan.decided.extend(decided);
        let sweeps = self.sweeps(&manifest, &build, &modules)?;
        let kept_sweeps = self.kept_sweeps(&sweeps, &build)?;
        plan.guest.sweeps = (kept_sweeps.iter())
            .filter(|(_, kept)| kept.reused.is_none())
            .map(|(plan, _)| plan.clone())
            .collect();
        let reused_sweeps = (kept_sweeps.iter())
            .filter_map(|(_, kept)| Some((kept.case.clone(), kept.reused.clone()?)))
            .collect();
        let judging = RunJudging {
            kernel: manifest.name.clone(),
            source: source.id.clone(),
            latest,
            cases: NamedCase::of(&cases.cases),
            decided: plan.decided.clone(),
            probes: probes.as_ref().map(|p| p.list.clone()).unwrap_or_default(),
            reused_probes: probes.as_ref().and_then(|p| p.reused.clone()),
            host_paths: vec![
                (self.case_set.dir.clone(), "<cases>".into()),
                (self.paths.root.clone(), "<root>".into()),
                (self.paths.cache.clone(), "<cache>".into()),
            ],
            compare_snapshots: self.compare_snapshots,
            user_snapshots: self.user_snapshots.map(Path::to_path_buf),
            sweeps,
            upstream_names,
            reused_sweeps,
        };
        Ok(Prepared {
            manifest,
            build,
            probes,
            kept_sweeps: kept_sweeps.into_iter().map(|(_, kept)| kept).collect(),
            cases,
            plan,
            judging,
        })
    }

    /// The sweeps this run asks for on this kernel: those named with `--case`, and every
    /// writable tracepoint in a measuring run when [`sweep_plan::IN_THE_NORMAL_RUN`]. The
    /// tracepoints are the kernel's: read from its vmlinux and the modules the guest loads
    /// (only when a sweep is asked for).
    fn sweeps(
        &self,
        manifest: &Manifest,
        build: &KernelBuild,
        modules: &[PathBuf],
    ) -> Result<Vec<Asked>, SetupFailure> {
        let all = self.scope == Scope::Measure && sweep_plan::IN_THE_NORMAL_RUN;
        if !sweep_plan::any_asked(self.only_cases, all) {
            return Ok(Vec::new());
        }
        let found = raw_tp::of_kernel(&build.vmlinux(), modules).at(SetupStage::Cache)?;
        let sweeps = sweep_plan::of_kernel(manifest, &found);
        Ok(sweep_plan::for_kernel(
            &manifest.name,
            &sweeps,
            self.only_cases,
            all,
        ))
    }

    /// Each sweep's guest plan and where its records are kept. A sweep of the normal run
    /// reuses an earlier run's records when the kernel build, the tracepoint's module, the
    /// harness and the programs are the same ([`KeptSweep`]); one named with `--case` runs.
    fn kept_sweeps(
        &self,
        sweeps: &[Asked],
        build: &KernelBuild,
    ) -> Result<Vec<(SweepPlan, KeptSweep)>, SetupFailure> {
        let runs = sweeps.iter().filter_map(|asked| match asked {
            Asked::Runs(sweep) => Some(sweep),
            Asked::Missing { .. } => None,
        });
        runs.map(|sweep| {
            let plan = sweep_plan::guest_plan(sweep, true);
            let reuse = !self.only_cases.contains(&sweep.case_name());
            let module = sweep.module.as_deref();
            let kept = KeptSweep::new(&plan, &build.dir, self.harness_digest, module, reuse)
                .at(SetupStage::Cache)?;
            Ok((plan, kept))
        })
        .collect()
    }

    /// The run's objects, those of programs that include `vmlinux.h` compiled against this
    /// kernel's (vmlinux's types and bpf_testmod's, where it has bpf_testmod).
    fn against_headers(
        &self,
        kernel: &str,
        headers: &VmlinuxHeaders,
    ) -> Result<Compiled, SetupFailure> {
        let sources: Vec<PathBuf> = (self.case_set.program_sources().into_iter())
            .filter(|source| compile::includes_vmlinux_h(source))
            .collect();
        let mut compiled = self.compiled.clone();
        if sources.is_empty() {
            return Ok(compiled);
        }
        let header = headers.with_testmod.as_ref().unwrap_or(&headers.vmlinux);
        let out_dir = self
            .paths
            .bpf_objects(&format!("{}-{kernel}", self.case_set.name));
        let per_kernel = (self.clang)
            .compile_all_with(&sources, &out_dir, std::slice::from_ref(header))
            .at(SetupStage::Programs)?;
        compiled.extend(per_kernel);
        Ok(compiled)
    }

    /// The run's cases and objects plus upstream's programs from this kernel's tree.
    fn with_upstream(
        &self,
        kernel: &str,
        tree: &Path,
        compiled: &Compiled,
        headers: &VmlinuxHeaders,
    ) -> Result<Joined, SetupFailure> {
        let out_dir = self.paths.bpf_objects(&format!("upstream-{kernel}"));
        let members = upstream::members(self.clang, tree, self.families, &out_dir, Some(headers))
            .at(SetupStage::Programs)?;
        Ok(members.joined(self.case_set, compiled, self.only_cases))
    }
}
