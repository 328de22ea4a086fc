//! `cargo xtask report DIR...`: the case × kernel grid of run directories made elsewhere (the
//! matrix jobs' uploaded artifacts, or `images/runs/*/latest` of a local run), judged exactly
//! as `vmtest` judged them (the host's record of how to judge is `judging.json` in each run
//! directory; [`crate::judge::run`] does the judging for both) against this checkout's
//! snapshots. Nothing is written: no `.snap.new`, no snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::guest::boot::{self, VmEnd, JUDGING_FILE, VM_FILE};
use crate::guest::failure::KernelFailure;
use crate::guest::results::RunFailure;
use crate::infra::paths::Paths;
use crate::judge::run::RunJudging;
use crate::judge::snapshots::Store;
use crate::kernel::manifest::Catalog;
use crate::report::grid::{self, Links};
use crate::report::{self, KernelReport, Timings};

/// How deep below an argument run directories are looked for (a downloaded artifact holds
/// `images/runs/<kernel>/run-*/`).
const SEARCH_DEPTH: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run directories, or directories that hold them (downloaded artifacts).
    pub dirs: Vec<PathBuf>,
    /// The kernels that should have reported (`all`: every manifest; empty: all).
    pub kernels: Vec<String>,
}

/// The kernels that reported, in matrix order, and those that did not, with why.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub reports: Vec<KernelReport>,
    /// Kernel → why it did not report (no run directory, or its run ended early).
    pub silent: Vec<(String, String)>,
    /// What else is worth a line (a kernel given twice: which directory was taken).
    pub notes: Vec<String>,
}

/// Reads and judges every kernel's run directory among `options.dirs`.
pub fn run(paths: &Paths, options: &Options) -> Result<Matrix> {
    let catalog = Catalog::new(&paths.kernels());
    let requested = match options.kernels.is_empty() {
        true => vec!["all".to_owned()],
        false => options.kernels.clone(),
    };
    let mut expected = catalog.select(&requested)?;
    let mut found: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for dir in &options.dirs {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a directory", dir.display());
        }
        for run in run_dirs(dir, SEARCH_DEPTH) {
            found.entry(kernel_of(&run)).or_default().push(run);
        }
    }
    let others: Vec<String> = (found.keys())
        .filter(|k| !expected.contains(k))
        .cloned()
        .collect();
    expected.extend(others);
    let mut matrix = Matrix {
        reports: Vec::new(),
        silent: Vec::new(),
        notes: Vec::new(),
    };
    for kernel in expected {
        let Some(runs) = found.get(&kernel) else {
            let why = "no run directory among the arguments (its job failed before the boot, \
                       or its artifact is missing)";
            matrix.silent.push((kernel, why.into()));
            continue;
        };
        let newest = newest(runs);
        if runs.len() > 1 {
            matrix.notes.push(format!(
                "{kernel}: {} run directories, took the newest, {}",
                runs.len(),
                newest.display()
            ));
        }
        match judged(paths, &kernel, newest) {
            Ok(report) => {
                if let Some(failure) = &report.failure {
                    let first = failure.describe();
                    let first = first.lines().next().unwrap_or_default();
                    matrix.silent.push((
                        kernel.clone(),
                        format!("the run ended early: {first} (what it recorded is in the grid)"),
                    ));
                }
                matrix.reports.push(report);
            }
            Err(error) => matrix.silent.push((kernel, format!("{error:#}"))),
        }
    }
    Ok(matrix)
}

/// The run directories at or below `dir` (those with a plan); `latest` is taken only when it
/// is the argument itself (below, its target is found as `run-*`).
fn run_dirs(dir: &Path, depth: usize) -> Vec<PathBuf> {
    if dir.join(protocol::PLAN_FILE).is_file() {
        return vec![dir.to_path_buf()];
    }
    if depth == 0 {
        return Vec::new();
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    children.sort();
    children
        .into_iter()
        .filter(|child| child.is_dir() && !child.is_symlink())
        .filter(|child| child.file_name().is_some_and(|name| name != "latest"))
        .flat_map(|child| run_dirs(&child, depth - 1))
        .collect()
}

/// The kernel a run directory belongs to: its judging record says, else its parent's name
/// (`runs/<kernel>/run-*`).
fn kernel_of(run: &Path) -> String {
    let recorded = std::fs::read_to_string(run.join(JUDGING_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| value["kernel"].as_str().map(str::to_owned));
    recorded.unwrap_or_else(|| {
        let run = run.canonicalize().unwrap_or_else(|_| run.to_path_buf());
        let parent = run.parent().and_then(Path::file_name);
        parent.map_or_else(String::new, |name| name.to_string_lossy().into_owned())
    })
}

/// The newest run: by the seconds in `run-<seconds>-<random>` (of the target, for a
/// `latest` symlink; a copied `latest` counts as older than any named run).
fn newest(runs: &[PathBuf]) -> &PathBuf {
    let seconds = |run: &PathBuf| {
        let run = run.canonicalize().unwrap_or_else(|_| run.clone());
        let name = run.file_name().unwrap_or_default().to_string_lossy();
        let seconds = name.strip_prefix("run-")?.split('-').next()?.parse::<u64>();
        seconds.ok()
    };
    runs.iter()
        .max_by_key(|run| seconds(run))
        .expect("a kernel found has a run")
}

/// One run directory judged as `vmtest` judged it, against this checkout's snapshots.
pub fn judged(paths: &Paths, kernel: &str, dir: &Path) -> Result<KernelReport> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))
    };
    let judging: RunJudging = serde_json::from_str(&read(JUDGING_FILE).context(
        "not judged by this version of vmtest (it writes judging.json before the boot)",
    )?)
    .with_context(|| format!("parsing {}", dir.join(JUDGING_FILE).display()))?;
    let plan: protocol::Plan = serde_json::from_str(&read(protocol::PLAN_FILE)?)
        .with_context(|| format!("parsing {}", dir.join(protocol::PLAN_FILE).display()))?;
    let end = VmEnd::read(dir);
    let (records, mut failure) = boot::read_back(dir, &end.unwrap_or(VmEnd::UNRECORDED));
    if end.is_none() && failure.is_some() {
        failure = Some(RunFailure::Protocol {
            problem: format!("the VM's end was never recorded ({VM_FILE} is missing): xtask ended before its VM did"),
        });
    }
    let snapshots_dir = match &judging.user_snapshots {
        Some(dir) => dir.join(kernel),
        None => paths.snapshots(kernel),
    };
    let store = Store::new(&snapshots_dir);
    let names = judging.snapshot_names();
    let stored = store.contents_of(names.iter().map(String::as_str));
    let snapshots = judging.snapshots(stored, false);
    let rows = judging.rows(&plan, &records, failure.as_ref(), snapshots);
    let console = dir.join(boot::CONSOLE_FILE);
    let accel = end.map_or(boot::Accel::Tcg, |end| end.accel);
    Ok(KernelReport {
        kernel: kernel.to_owned(),
        context: report::context(records.boot.as_ref(), accel),
        rows,
        failure: failure.map(|failure| KernelFailure::Run {
            failure,
            console_tail: crate::infra::progress::tail(&console, 30),
            console,
        }),
        timings: Timings {
            boot_secs: end.map_or(0.0, |end| end.secs),
            ..Timings::default()
        },
        run_dir: Some(dir.to_path_buf()),
        latest: judging.latest,
    })
}

/// The grid as text, then the kernels that did not report.
pub fn render(matrix: &Matrix) -> String {
    let mut out = grid::render(&matrix.reports);
    for (kernel, why) in &matrix.silent {
        out.push_str(&format!("did not report: {kernel}: {why}\n"));
    }
    for note in &matrix.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// The grid as GitHub Markdown (kernels and failures linked to their job output), then the
/// kernels that did not report.
pub fn markdown(matrix: &Matrix, links: &Links) -> String {
    let mut out = String::from("### cases × kernels\n\n");
    out.push_str(&grid::markdown(&matrix.reports, links));
    if !matrix.silent.is_empty() {
        out.push_str("\n**Did not report:**\n\n");
        for (kernel, why) in &matrix.silent {
            let job = links
                .of(kernel)
                .map_or(String::new(), |url| format!(" ([job output]({url}))"));
            out.push_str(&format!("- {kernel}: {why}{job}\n"));
        }
    }
    for note in &matrix.notes {
        out.push_str(&format!("\n_{note}_\n"));
    }
    out
}

/// As `vmtest`'s for the same results ([`crate::cli::exit_status`]), and at least 2 when a
/// kernel has no run directory at all.
pub fn nothing_from(matrix: &Matrix) -> bool {
    let reported: Vec<&str> = matrix.reports.iter().map(|r| r.kernel.as_str()).collect();
    (matrix.silent.iter()).any(|(kernel, _)| !reported.contains(&kernel.as_str()))
}

/// The links Markdown uses: each kernel's job, else the run's page.
pub fn grid_links(jobs: Vec<(String, String)>, run: Option<String>) -> Links {
    Links {
        jobs: jobs.into_iter().collect(),
        run,
    }
}
