//! `cargo xtask bisect`: `git bisect run` over the user's kernel tree, with this project's
//! step command. Each step builds the commit incrementally in a build directory of its own
//! (never inside the user's tree), boots it, runs the chosen cases and judges them against
//! their expectations. The step's exit code tells git what happened, honestly:
//!
//! | step outcome                                            | exit | git bisect |
//! |---------------------------------------------------------|------|------------|
//! | every chosen case meets its expectation                 | 0    | good       |
//! | a chosen case deviates (load/attach/step outcome)       | 1    | bad        |
//! | the kernel or bpf_testmod does not build; case unsupported | 125 | skip     |
//! | any other stage fails (tools, fetch, cache, config, harness, boot), no boot, hang or panic outside the cases, twice | 128+ | abort |
//!
//! An infrastructure fault never marks a commit bad: it is retried once, then the whole
//! bisect stops with a message (exit ≥ 128 aborts `git bisect run`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use crate::cases::CaseOutcome;
use crate::commands::vmtest::{self, Options};
use crate::guest::failure::KernelFailure;
use crate::guest::results::RunFailure;
use crate::infra::paths::Paths;
use crate::infra::progress::Elapsed;
use crate::infra::runner::Runner;
use crate::infra::table::Table;
use crate::report::KernelReport;

/// What one bisect step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Good,
    Bad,
    /// This commit cannot answer the question (does not build, case unsupported).
    Skip,
    /// The test machinery failed; says nothing about the commit.
    Infra,
}

/// git bisect run's conventions: 0 good, 1..=124 bad, 125 skip, >=128 abort.
pub const EXIT_GOOD: u8 = 0;
pub const EXIT_BAD: u8 = 1;
pub const EXIT_SKIP: u8 = 125;
pub const EXIT_ABORT: u8 = 128;

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Good => EXIT_GOOD,
            Verdict::Bad => EXIT_BAD,
            Verdict::Skip => EXIT_SKIP,
            Verdict::Infra => EXIT_ABORT,
        }
    }

    /// The verdict a kernel report gives for the chosen cases.
    pub fn of_report(report: &KernelReport, cases: &[String]) -> Self {
        match &report.failure {
            // The kernel or the module did not build at this commit: its own doing.
            Some(KernelFailure::Setup(failure)) if failure.stage.is_commit_build() => {
                return Verdict::Skip
            }
            // Every other stage is the machinery's (cache, tools, config, harness, boot).
            Some(KernelFailure::Setup(_)) => return Verdict::Infra,
            // A panic or hang *during a chosen case* is that case's behaviour; anywhere else,
            // and a harness that never started, is the machinery's.
            Some(KernelFailure::Run { failure, .. }) => match failure {
                RunFailure::KernelPanic {
                    case: Some(case), ..
                }
                | RunFailure::Hang {
                    case: Some(case), ..
                } if cases.contains(case) => return Verdict::Bad,
                _ => return Verdict::Infra,
            },
            None => {}
        }
        let chosen = report.rows.iter().filter(|row| cases.contains(&row.case));
        let mut verdict = Verdict::Good;
        for row in chosen {
            match (&row.outcome, row.deviations.is_empty()) {
                _ if row.unsupported.is_some() => verdict = Verdict::Skip,
                (CaseOutcome::CompileError { .. }, _) => return Verdict::Infra,
                (_, false) => return Verdict::Bad,
                (_, true) => {}
            }
        }
        verdict
    }
}

/// One step of the bisect, as recorded for the final table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub commit: String,
    pub verdict: Verdict,
    pub build_secs: f64,
    pub run_secs: f64,
    pub note: String,
}

/// What the user asked to bisect.
#[derive(Debug, Clone)]
pub struct BisectOptions {
    pub tree: PathBuf,
    pub good: String,
    pub bad: String,
    /// Manifest giving the config fragments and features for the tree.
    pub kernel: String,
    /// Cases whose outcome decides good/bad (all built-in cases when empty).
    pub cases: Vec<String>,
    pub timeout: std::time::Duration,
}

/// The outcome of a whole bisect.
#[derive(Debug, Clone)]
pub struct BisectResult {
    pub first_bad: Option<String>,
    pub subject: String,
    pub steps: Vec<StepRecord>,
    pub transcript: String,
}

/// Runs `git bisect run` on the tree; leaves the tree as it found it.
pub fn run(paths: &Paths, options: &BisectOptions) -> Result<BisectResult> {
    let runner = Runner::new(&paths.root)?;
    let tree = options
        .tree
        .canonicalize()
        .with_context(|| format!("kernel tree {}", options.tree.display()))?;
    check_tree(&runner, &tree)?;
    let sh = &runner.sh;
    let state = tempfile::tempdir()?;
    let steps_file = state.path().join("steps.jsonl");
    let (good, bad) = (&options.good, &options.bad);
    cmd!(sh, "git -C {tree} bisect start {bad} {good}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let reset_tree = tree.clone();
    // Runs on the Ctrl-C handler's thread, which owns no Shell: a plain Command.
    let reset_on_interrupt = crate::infra::runner::on_interrupt(move || {
        let _ = std::process::Command::new("git")
            .arg("-C")
            .arg(&reset_tree)
            .args(["bisect", "reset"])
            .status();
    });
    let outcome = run_bisect(&runner, &tree, options, &steps_file);
    let reset = cmd!(sh, "git -C {tree} bisect reset")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    drop(reset_on_interrupt);
    let transcript = outcome?;
    reset.context("git bisect reset")?;
    let steps = read_steps(&steps_file);
    let first_bad = transcript
        .lines()
        .find_map(|line| line.strip_suffix(" is the first bad commit"))
        .map(str::to_owned);
    let subject = match &first_bad {
        Some(commit) => cmd!(sh, "git -C {tree} log -1 --format=%s {commit}").read()?,
        None => String::new(),
    };
    Ok(BisectResult {
        first_bad,
        subject,
        steps,
        transcript,
    })
}

fn check_tree(runner: &Runner, tree: &Path) -> Result<()> {
    let sh = &runner.sh;
    if cmd!(sh, "git -C {tree} rev-parse --git-dir")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!(
            "{} is not a git repository: bisect needs the kernel's history",
            tree.display()
        );
    }
    if tree.join(".git").join("BISECT_LOG").exists() {
        bail!(
            "a bisect is already in progress in {}: finish it or run `git bisect reset` there",
            tree.display()
        );
    }
    let dirty = cmd!(sh, "git -C {tree} status --porcelain --untracked-files=no").read()?;
    if !dirty.trim().is_empty() {
        bail!("{} has uncommitted changes; bisect checks out other commits: commit or stash them first", tree.display());
    }
    Ok(())
}

/// `git bisect run <this xtask> bisect-step ...`; returns git's output.
fn run_bisect(
    runner: &Runner,
    tree: &Path,
    options: &BisectOptions,
    steps_file: &Path,
) -> Result<String> {
    let sh = &runner.sh;
    let xtask = xtask_binary(runner)?;
    let kernel = &options.kernel;
    let timeout = options.timeout.as_secs().to_string();
    let cases: Vec<String> = options
        .cases
        .iter()
        .flat_map(|c| ["--case".to_owned(), c.clone()])
        .collect();
    let output = cmd!(
        sh,
        "git -C {tree} bisect run {xtask} bisect-step --kernel-dir {tree} --kernel {kernel} --timeout {timeout} --steps-file {steps_file} {cases...}"
    )
    .ignore_status()
    .output()?;
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("git bisect run stopped ({}):\n{transcript}", output.status);
    }
    Ok(transcript)
}

/// The xtask binary for `git bisect run` to call: this process if it is xtask, else (in
/// tests) the workspace's freshly built one.
fn xtask_binary(runner: &Runner) -> Result<PathBuf> {
    let current = std::env::current_exe().context("finding the running binary")?;
    if current.file_stem().is_some_and(|name| name == "xtask") {
        return Ok(current);
    }
    let sh = &runner.sh;
    cmd!(sh, "cargo build --quiet -p xtask").run()?;
    Ok(Paths::from_env().cargo_target().join("debug").join("xtask"))
}

fn read_steps(path: &Path) -> Vec<StepRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// One step, run by `git bisect run` at the commit it checked out: build, boot, judge, with
/// one retry when the machinery (not the commit) failed. Returns the exit code for git.
pub fn step(paths: &Paths, options: &BisectOptions, steps_file: &Path) -> u8 {
    let tree = &options.tree;
    let commit = Runner::new(&paths.root)
        .and_then(|runner| {
            let sh = &runner.sh;
            Ok(cmd!(sh, "git -C {tree} rev-parse --short=12 HEAD").read()?)
        })
        .unwrap_or_default();
    let mut attempt = 0;
    let record = loop {
        attempt += 1;
        let started = Instant::now();
        let (verdict, note, build_secs) = judge_commit(paths, options);
        let total = started.elapsed().as_secs_f64();
        // A commit that did not build spent all its time building.
        let build_secs = build_secs.unwrap_or(total);
        let record = StepRecord {
            commit: commit.clone(),
            verdict: verdict.clone(),
            build_secs,
            run_secs: total - build_secs,
            note,
        };
        if verdict != Verdict::Infra || attempt == 2 {
            break record;
        }
        eprintln!(
            "bisect: infrastructure fault at {commit} ({}); retrying once",
            record.note
        );
    };
    eprintln!(
        "bisect: {commit}: {:?} (build {}, run {}){}",
        record.verdict,
        Elapsed(std::time::Duration::from_secs_f64(record.build_secs)),
        Elapsed(std::time::Duration::from_secs_f64(record.run_secs.max(0.0))),
        if record.note.is_empty() {
            String::new()
        } else {
            format!(": {}", record.note)
        }
    );
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(steps_file)
    {
        let _ = writeln!(
            file,
            "{}",
            serde_json::to_string(&record).unwrap_or_default()
        );
    }
    record.verdict.exit_code()
}

/// The verdict, a one-line note, and the build time (None when the build itself failed).
fn judge_commit(paths: &Paths, options: &BisectOptions) -> (Verdict, String, Option<f64>) {
    let vm_options = Options {
        kernels: vec![options.kernel.clone()],
        kernel_dir: Some(options.tree.clone()),
        only_cases: options.cases.clone(),
        compare_snapshots: false,
        probes: false,
        timeout: options.timeout,
        ..Options::default()
    };
    match vmtest::run(paths, &vm_options) {
        Ok(reports) => {
            let report = &reports[0];
            let cases = if options.cases.is_empty() {
                report.rows.iter().map(|r| r.case.clone()).collect()
            } else {
                options.cases.clone()
            };
            let verdict = Verdict::of_report(report, &cases);
            let note = match &report.failure {
                Some(KernelFailure::Setup(failure)) if failure.stage.is_commit_build() => {
                    build_error_line(&failure.message)
                }
                Some(failure) => failure
                    .describe()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                None => report
                    .rows
                    .iter()
                    .flat_map(|r| r.deviations.iter().map(move |d| format!("{}: {d}", r.case)))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let build_secs = match &report.failure {
                Some(KernelFailure::Setup(failure)) if failure.stage.is_commit_build() => None,
                _ => Some(report.timings.build_secs),
            };
            (verdict, note, build_secs)
        }
        // Host tools, bad input, the harness build: nothing to do with the commit.
        Err(failure) => (Verdict::Infra, failure.to_string(), Some(0.0)),
    }
}

/// The first compiler error of a failed build, for the step table.
fn build_error_line(error: &str) -> String {
    error
        .lines()
        .find(|line| line.contains("error:"))
        .map(|line| format!("does not build: {}", line.trim()))
        .unwrap_or_else(|| "does not build".into())
}

/// The per-step table printed at the end.
pub fn render(result: &BisectResult) -> String {
    let mut out = String::new();
    match &result.first_bad {
        Some(commit) => out.push_str(&format!(
            "first bad commit: {commit} {}\n",
            result.subject.trim()
        )),
        None => out.push_str("git bisect did not name a first bad commit (see the transcript)\n"),
    }
    let header = ["commit", "verdict", "build s", "run s", "note"];
    let mut table = Table::new(header).indent("  ").right(2).right(3);
    for step in &result.steps {
        table.row([
            step.commit.clone(),
            format!("{:?}", step.verdict).to_lowercase(),
            format!("{:.1}", step.build_secs),
            format!("{:.1}", step.run_secs.max(0.0)),
            step.note.clone(),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::infra::failure::{SetupFailure, SetupStage};
    use crate::judge::Row;
    use crate::test_support;

    fn row(case: &str, outcome: CaseOutcome, deviates: bool) -> Row {
        test_support::row(case, outcome, if deviates { &["x"] } else { &[] })
    }

    fn ran() -> CaseOutcome {
        test_support::ran("c")
    }

    fn report(rows: Vec<Row>, failure: Option<KernelFailure>) -> KernelReport {
        KernelReport {
            kernel: "tree".into(),
            context: String::new(),
            rows,
            failure,
            timings: Default::default(),
            run_dir: None,
            latest: None,
        }
    }

    fn setup(stage: SetupStage) -> Option<KernelFailure> {
        Some(KernelFailure::Setup(SetupFailure {
            stage,
            message: "x".into(),
        }))
    }

    fn run_failure(failure: RunFailure) -> Option<KernelFailure> {
        Some(KernelFailure::Run {
            failure,
            console: PathBuf::from("console.log"),
            console_tail: String::new(),
        })
    }

    #[rstest]
    #[case::expected(report(vec![row("c", ran(), false)], None), Verdict::Good, 0)]
    #[case::deviates(report(vec![row("c", ran(), true)], None), Verdict::Bad, 1)]
    #[case::other_case_deviates(report(vec![row("c", ran(), false), row("other", ran(), true)], None), Verdict::Good, 0)]
    #[case::unsupported(report(vec![row("c", CaseOutcome::Unsupported { reason: "no bpf_testmod".into() }, false)], None), Verdict::Skip, 125)]
    #[case::kernel_does_not_build(report(vec![], setup(SetupStage::KernelBuild)), Verdict::Skip, 125)]
    #[case::module_does_not_build(report(vec![], setup(SetupStage::ModuleBuild)), Verdict::Skip, 125)]
    #[case::cache_unusable(report(vec![], setup(SetupStage::Cache)), Verdict::Infra, 128)]
    #[case::config_does_not_stick(report(vec![], setup(SetupStage::Config)), Verdict::Infra, 128)]
    #[case::vm_does_not_start(report(vec![], setup(SetupStage::Boot)), Verdict::Infra, 128)]
    #[case::no_boot(report(vec![], run_failure(RunFailure::NoHarness)), Verdict::Infra, 128)]
    #[case::hang_elsewhere(report(vec![], run_failure(RunFailure::Hang { case: None, timeout_secs: 300 })), Verdict::Infra, 128)]
    #[case::panic_in_the_case(report(vec![], run_failure(RunFailure::KernelPanic { line: "panic".into(), case: Some("c".into()) })), Verdict::Bad, 1)]
    #[case::panic_in_another_case(report(vec![], run_failure(RunFailure::KernelPanic { line: "panic".into(), case: Some("d".into()) })), Verdict::Infra, 128)]
    #[case::harness_crash(report(vec![], run_failure(RunFailure::HarnessCrash { case: Some("c".into()) })), Verdict::Infra, 128)]
    #[case::program_does_not_compile(report(vec![row("c", CaseOutcome::CompileError { message: "x".into() }, true)], None), Verdict::Infra, 128)]
    fn step_outcomes_map_to_honest_exit_codes(
        #[case] report: KernelReport,
        #[case] verdict: Verdict,
        #[case] exit: u8,
    ) {
        let found = Verdict::of_report(&report, &["c".to_owned()]);
        assert_eq!(found, verdict);
        assert_eq!(found.exit_code(), exit);
    }
}
