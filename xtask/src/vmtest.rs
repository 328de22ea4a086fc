//! `cargo xtask vmtest`: host tools → source → config → kernel + bpf_testmod (cached) → BPF
//! objects + harness → boot → results → expectations and snapshots → table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use protocol::{CasePlan, HelperProbe, Plan, PLAN_FILE, RESULTS_FILE};
use xshell::cmd;

use crate::boot::{self, Boot};
use crate::bpf::{self, Compiled};
use crate::cases::CaseSet;
use crate::compare::{self, CaseOutcome};
use crate::kbuild::{self, KernelBuild};
use crate::manifest::{Catalog, Manifest};
use crate::normalise;
use crate::paths::Paths;
use crate::progress::{self, Stage};
use crate::report::{KernelFailure, KernelReport, Row, Timings};
use crate::results::{RunFailure, RunRecords};
use crate::runner::{Finished, Runner};
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
        }
    }
}

pub fn run(paths: &Paths, options: &Options) -> Result<Vec<KernelReport>> {
    let runner = Runner::new(&paths.root)?;
    host_tools::ensure(&runner)?;
    let catalog = Catalog::new(&paths.kernels());
    let kernels = kernel_names(&catalog, &options.kernels)?;
    if options.kernel_dir.is_some() && kernels.len() != 1 {
        bail!("--kernel-dir builds one tree: name the one manifest (fragments, features) it goes with, e.g. --kernel 6.12");
    }
    let (mut case_set, snapshot_root) = case_set(paths, options.cases.as_deref())?;
    case_set.retain(&options.only_cases)?;
    let compiled = bpf::compile_all(
        &runner,
        &case_set.program_sources(),
        &paths.bpf_objects(&case_set.name),
    )?;
    build_harness(&runner)?;
    configure_insta(paths, options.accept);

    let mut reports = Vec::new();
    let setup = Setup {
        runner: &runner,
        paths,
        catalog: &catalog,
        case_set: &case_set,
        compiled: &compiled,
        options,
    };
    for kernel in &kernels {
        // One kernel's failure (build, boot) is reported with the others', not instead of them.
        let report = setup
            .run_kernel(kernel, &snapshot_root.join(kernel))
            .unwrap_or_else(|error| KernelReport::setup_failure(kernel, format!("{error:#}")));
        eprint!("\n{}", report.render());
        reports.push(report);
    }
    if setup.probes_helpers() {
        let doc = paths.root.join(helpers::DOC);
        std::fs::create_dir_all(doc.parent().expect("docs/ has a parent"))?;
        std::fs::write(&doc, helpers::doc_from_snapshots(paths)?)?;
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, crate::report::junit(&reports))
            .with_context(|| format!("writing JUnit XML to {}", path.display()))?;
    }
    Ok(reports)
}

/// What every kernel of a run shares.
struct Setup<'a> {
    runner: &'a Runner,
    paths: &'a Paths,
    catalog: &'a Catalog,
    case_set: &'a CaseSet,
    compiled: &'a Compiled,
    options: &'a Options,
}

impl Setup<'_> {
    /// Helper and kfunc probes belong to the built-in measurement, not to user cases or bisect.
    fn probes_helpers(&self) -> bool {
        self.options.cases.is_none() && self.options.only_cases.is_empty()
    }

    fn run_kernel(&self, kernel: &str, snapshots: &Path) -> Result<KernelReport> {
        let mut manifest = self.catalog.load(kernel)?;
        if let Some(path) = &self.options.kernel_dir {
            manifest.source = crate::manifest::SourceSpec::Local { path: path.clone() };
        }
        let source = source::fetch(self.runner, self.paths, &manifest.source)?;
        let build = kbuild::ensure(self.runner, self.paths, self.catalog, &manifest, &source)?;
        let helper_probes = match self.probes_helpers() {
            true => helpers::of_tree(&source.dir)?,
            false => Vec::new(),
        };
        let kernel_run = KernelRun {
            runner: self.runner,
            paths: self.paths,
            manifest: &manifest,
            build: &build,
            helper_probes,
        };
        kernel_run.run(self.case_set, self.compiled, snapshots, self.options)
    }
}

fn kernel_names(catalog: &Catalog, requested: &[String]) -> Result<Vec<String>> {
    if requested.iter().any(|k| k == "all") {
        return catalog.names();
    }
    Ok(requested.to_vec())
}

fn case_set(paths: &Paths, user_dir: Option<&Path>) -> Result<(CaseSet, PathBuf)> {
    match user_dir {
        None => Ok((
            CaseSet::load("guest-programs", &paths.guest_programs())?,
            paths.root.join("tests").join("snapshots"),
        )),
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("case directory {}", dir.display()))?;
            // Objects of different user directories must not overwrite each other.
            let name = format!(
                "user-{}",
                crate::cache::KeyInputs::digest_of(&dir.to_string_lossy())
            );
            Ok((CaseSet::load(&name, &dir)?, dir.join("snapshots")))
        }
    }
}

fn build_harness(runner: &Runner) -> Result<()> {
    let stage = Stage::start("building the guest harness");
    let sh = &runner.sh;
    cmd!(sh, "cargo build --release --quiet -p harness").run()?;
    stage.finish("");
    Ok(())
}

fn configure_insta(paths: &Paths, accept: bool) {
    // SAFETY (edition 2021: safe fn): set before any thread reads the environment.
    std::env::set_var("INSTA_WORKSPACE_ROOT", &paths.root);
    // Verifier logs as YAML literal blocks: one log line per snapshot line, readable diffs.
    std::env::set_var("INSTA_YAML_BLOCK_STYLE", "1");
    if accept {
        std::env::set_var("INSTA_UPDATE", "always");
    }
}

/// One kernel's part of the run.
struct KernelRun<'a> {
    runner: &'a Runner,
    paths: &'a Paths,
    manifest: &'a Manifest,
    build: &'a KernelBuild,
    helper_probes: Vec<HelperProbe>,
}

impl KernelRun<'_> {
    fn run(
        &self,
        case_set: &CaseSet,
        compiled: &Compiled,
        snapshots: &Path,
        options: &Options,
    ) -> Result<KernelReport> {
        let timeout = options.timeout;
        let (mut plan, mut outcomes) = plan(case_set, self.manifest, &self.build.modules, compiled);
        plan.helper_probes = self.helper_probes.clone();
        let run_dir = new_run_dir(&self.paths.runs(&self.manifest.name))?;
        std::fs::write(
            run_dir.join(PLAN_FILE),
            serde_json::to_string_pretty(&plan)?,
        )?;

        let accel = boot::choose_accel(self.runner, self.paths, &self.build.bzimage)?;
        let harness = self.paths.harness_binary();
        let boot = Boot {
            kernel: &self.build.bzimage,
            accel,
            writable_dir: &run_dir,
            command: format!("'{}' '{}'", harness.display(), run_dir.display()),
        };
        let console = run_dir.join("console.log");
        let boot_started = std::time::Instant::now();
        let finished = boot::run(self.runner, &boot, &console, timeout)?;
        let boot_secs = boot_started.elapsed().as_secs_f64();
        let records = RunRecords::parse(
            &std::fs::read_to_string(run_dir.join(RESULTS_FILE)).unwrap_or_default(),
        );
        let console_text =
            String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
        let timed_out = finished == Finished::TimedOut;
        let failure = RunFailure::classify(&records, &console_text, timed_out, timeout.as_secs());
        if failure == Some(RunFailure::NoHarness) {
            boot::forget_accel(self.paths);
        }
        outcomes.extend(outcomes_from_records(&plan, &records, failure.as_ref()));
        let context = match &records.boot {
            Some(boot_info) => format!(
                "{}, {accel:?}, modules: {}",
                boot_info.kernel_release,
                module_summary(boot_info)
            ),
            None => format!("{accel:?}, the harness did not start"),
        };
        let mut rows = judge(
            case_set,
            &self.manifest.name,
            outcomes,
            snapshots,
            self.paths,
            options,
        );
        rows.extend(self.probe_rows(&records, failure.as_ref(), snapshots, options));
        Ok(KernelReport {
            failure: failure.map(|failure| KernelFailure::Run {
                failure,
                console: console.clone(),
                console_tail: progress::tail(&console, 30),
            }),
            kernel: self.manifest.name.clone(),
            context,
            rows,
            timings: Timings {
                build_secs: if self.build.built_now {
                    self.build.build_secs
                } else {
                    0.0
                },
                boot_secs,
            },
        })
    }
}

impl KernelRun<'_> {
    /// The helper table and the kfunc answer, as rows snapshotted like cases.
    fn probe_rows(
        &self,
        records: &RunRecords,
        failure: Option<&RunFailure>,
        snapshots: &Path,
        options: &Options,
    ) -> Vec<Row> {
        if self.helper_probes.is_empty() {
            return Vec::new();
        }
        let table = helpers::table(&self.helper_probes, &records.helpers);
        let kfunc = helpers::kfunc_summary(&records.kfuncs);
        let probes = [
            (PROBE_HELPERS, "Which helpers raw_tp.w and raw_tp may call (one load per helper id of this tree's uapi header).", serde_json::to_value(&table)),
            (PROBE_KFUNC, "raw_tp.w / raw_tp programs calling vmlinux kfuncs (a generic pair, a test-run-only one): what the verifier says.", serde_json::to_value(&kfunc)),
        ];
        probes
            .into_iter()
            .map(|(name, description, value)| {
                let complete = records.helpers.len() == protocol::PROBED_PROG_TYPES.len();
                let outcome = match (complete, failure) {
                    (true, _) => CaseOutcome::Probe(value.unwrap_or_default()),
                    (false, Some(failure)) => CaseOutcome::NotRun {
                        reason: failure.describe(),
                    },
                    (false, None) => CaseOutcome::NotRun {
                        reason: "the probes were not recorded".into(),
                    },
                };
                let snapshot_matches = matches!(outcome, CaseOutcome::NotRun { .. })
                    || !options.compare_snapshots
                    || compare::snapshot_named(snapshots, name, description, &outcome);
                let deviations = match &outcome {
                    CaseOutcome::NotRun { reason } => vec![format!("not run: {reason}")],
                    _ => Vec::new(),
                };
                Row {
                    case: name.to_owned(),
                    outcome,
                    deviations,
                    snapshot_matches,
                    known: Vec::new(),
                    unsupported: None,
                }
            })
            .collect()
    }
}

/// Snapshot names of the probe rows (a leading `_` keeps them apart from case names).
pub const PROBE_HELPERS: &str = "_helpers";
pub const PROBE_KFUNC: &str = "_kfunc";

/// Every planned case's outcome from the guest's records: a finished case keeps its result
/// whatever happened later. Records are data: a record for a case the plan does not have
/// (e.g. a hostile `../../x` name) is ignored, and no name from them is used as a path.
pub fn outcomes_from_records(
    plan: &Plan,
    records: &RunRecords,
    failure: Option<&RunFailure>,
) -> BTreeMap<String, CaseOutcome> {
    plan.cases
        .iter()
        .map(|case| {
            let outcome = match (records.finished.get(&case.name), failure) {
                (Some(result), _) => CaseOutcome::Ran(result.clone()),
                (None, Some(failure)) => CaseOutcome::NotRun {
                    reason: failure.describe(),
                },
                (None, None) => CaseOutcome::NotRun {
                    reason: "the results have no record of it".into(),
                },
            };
            (case.name.clone(), outcome)
        })
        .collect()
}

/// The guest's plan, and the outcomes decided without a VM (unsupported, compile errors).
pub fn plan(
    case_set: &CaseSet,
    manifest: &Manifest,
    modules: &[PathBuf],
    compiled: &Compiled,
) -> (Plan, BTreeMap<String, CaseOutcome>) {
    let mut decided = BTreeMap::new();
    let mut cases = Vec::new();
    for case in &case_set.cases {
        let missing: Vec<&str> = case
            .requires
            .iter()
            .filter(|feature| !manifest.features.contains(*feature))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let reason = format!(
                "needs {}, which this kernel does not have",
                missing.join(", ")
            );
            decided.insert(case.name.clone(), CaseOutcome::Unsupported { reason });
            continue;
        }
        let source = case_set.dir.join(format!("{}.bpf.c", case.program_stem()));
        match compiled.get(&source) {
            Some(Ok(object)) => cases.push(CasePlan {
                name: case.name.clone(),
                object: object.clone(),
                program: case.function.clone(),
                globals: case
                    .globals
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as u64))
                    .collect(),
                steps: case.steps.iter().map(|s| s.step.clone()).collect(),
            }),
            Some(Err(message)) => {
                decided.insert(
                    case.name.clone(),
                    CaseOutcome::CompileError {
                        message: message.clone(),
                    },
                );
            }
            None => {
                let message = format!("{} was not compiled", source.display());
                decided.insert(case.name.clone(), CaseOutcome::CompileError { message });
            }
        }
    }
    let plan = Plan {
        modules: modules.to_vec(),
        tracepoint_names: manifest.tracepoint_names.clone(),
        cases,
        helper_probes: Vec::new(),
    };
    (plan, decided)
}

/// Checks every outcome against its expectation and its snapshot. With `accept`, a case that
/// deviates from its expectation keeps its old snapshot: accepting a wrong result is refused.
fn judge(
    case_set: &CaseSet,
    kernel: &str,
    mut outcomes: BTreeMap<String, CaseOutcome>,
    snapshots: &Path,
    paths: &Paths,
    options: &Options,
) -> Vec<Row> {
    case_set
        .cases
        .iter()
        .filter_map(|case| {
            let outcome = outcomes.remove(&case.name)?;
            let outcome = without_host_paths(compare::normalised(outcome), paths, &case_set.dir);
            let unsupported = match &outcome {
                CaseOutcome::Unsupported { reason } => Some(reason.clone()),
                other => compare::unsupported_reason(case, other),
            };
            let deviations = match unsupported {
                Some(_) => Vec::new(),
                None => compare::deviations(case, kernel, &outcome),
            };
            let snapshot_matches =
                if !options.compare_snapshots || matches!(outcome, CaseOutcome::NotRun { .. }) {
                    true
                } else if options.accept && !deviations.is_empty() {
                    eprintln!(
                        "  not accepting the snapshot of {}: it deviates from its expectation",
                        case.name
                    );
                    false
                } else {
                    compare::snapshot_matches(snapshots, case, &outcome)
                };
            Some(Row {
                case: case.name.clone(),
                deviations,
                snapshot_matches,
                known: compare::known_deviations(case, kernel),
                unsupported,
                outcome,
            })
        })
        .collect()
}

/// Compile errors quote absolute paths; snapshots must be the same on every checkout.
fn without_host_paths(outcome: CaseOutcome, paths: &Paths, case_dir: &Path) -> CaseOutcome {
    match outcome {
        CaseOutcome::CompileError { message } => CaseOutcome::CompileError {
            message: normalise::host_paths(
                &message,
                &[(case_dir, "<cases>"), (&paths.root, "<root>")],
            ),
        },
        other => other,
    }
}

fn module_summary(boot: &protocol::BootInfo) -> String {
    if boot.modules.is_empty() {
        return "none".into();
    }
    boot.modules
        .iter()
        .map(|m| {
            let name = m
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{name} {}", compare::describe(&m.outcome))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh directory for one run; earlier runs stay beside it, `latest` points at the newest.
fn new_run_dir(runs: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(runs).with_context(|| format!("creating {}", runs.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let dir = runs.join(format!("run-{stamp}"));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = runs.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(&dir, &latest);
    Ok(dir)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn planned(name: &str) -> CasePlan {
        CasePlan {
            name: name.into(),
            object: "/x.o".into(),
            program: None,
            globals: Default::default(),
            steps: vec![],
        }
    }

    fn finished(name: &str) -> String {
        crate::test_support::finished_line(name)
    }

    #[test]
    fn records_for_cases_outside_the_plan_are_ignored() {
        let plan = Plan {
            modules: vec![],
            tracepoint_names: Default::default(),
            cases: vec![planned("a"), planned("b")],
            helper_probes: vec![],
        };
        let text = finished("a") + &finished("../../../etc/evil") + &finished("/tmp/x");
        let records = RunRecords::parse(&text);
        let failure = RunFailure::HarnessCrash {
            case: Some("b".into()),
        };
        let outcomes = outcomes_from_records(&plan, &records, Some(&failure));
        assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(matches!(outcomes["a"], CaseOutcome::Ran(_)));
        assert!(
            matches!(&outcomes["b"], CaseOutcome::NotRun { reason } if reason.contains("crashed"))
        );
    }
}
