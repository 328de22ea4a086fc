//! The command line of `cargo xtask`, and the one place that decides the exit code of
//! `vmtest` (see [`exit_status`]; a bisect step's code is [`crate::commands::bisect::Verdict`]'s, which
//! `git bisect run` defines). It lives in the library so tests can parse the commands the CI
//! workflow runs with the very same parser.
//!
//! Each command, and each mode of one (`vmtest --list`, `vmtest --shell`, `bench
//! --warm-only`), is a type of its own with its own `run`: a mode takes only the flags it
//! uses, and clap refuses the others (`vmtest --list --accept` is an error, not a flag that
//! is silently ignored).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::commands::{bench, bisect, vmtest};
use crate::guest::failure::KernelFailure;
use crate::guest::results::RunFailure;
use crate::infra::paths::Paths;
use crate::report;
use clap::error::ErrorKind;
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Test BPF writable raw tracepoints on real kernels"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the kernel(s), boot them, run the cases and compare with the snapshots.
    Vmtest(VmtestMode),
    /// The case × kernel grid of run directories (the matrix jobs' downloaded artifacts, or
    /// images/runs/*/latest), judged as vmtest judges them, as text or GitHub Markdown.
    Report(ReportArgs),
    /// Find the kernel commit that changed a case's outcome: `git bisect run` over TREE.
    Bisect(BisectArgs),
    /// List the kernel cache (entry, kernel, source, size, last used, state) and its total;
    /// `cache gc` removes all but the newest complete entry of each manifest.
    Cache(CacheArgs),
    /// Install the host tools (Debian packages, virtme-ng) without running anything; as
    /// another user than root, print the command that installs them. The harness's libbpf is
    /// built from source and needs some of them before `cargo build` of the workspace.
    Setup,
    /// Measure build, boot and run times against virtme-ng and write BENCHMARKS.md.
    Bench(BenchMode),
    /// Regenerate docs/helpers.md from the `_helpers` snapshots in tests/snapshots/, the
    /// record of upstream's tests from each fetched tree (guest-programs/upstream/found.toml,
    /// never dropping one) and docs/upstream.md from that record and the snapshots.
    Docs,
    /// One bisect step at the tree's current commit (run by `git bisect run`).
    #[command(hide = true)]
    BisectStep(BisectStepArgs),
}

/// Parses the process's arguments, runs the command, returns its exit code.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

pub fn run(cli: Cli) -> ExitCode {
    let paths = Paths::from_env();
    match cli.command {
        Command::Vmtest(VmtestMode::Run(args)) => args.run(&paths),
        Command::Vmtest(VmtestMode::List(args)) => args.run(&paths),
        Command::Vmtest(VmtestMode::Shell(args)) => args.run(&paths),
        Command::Report(args) => args.run(&paths),
        Command::Bisect(args) => args.run(&paths),
        Command::Cache(args) => args.run(&paths),
        Command::Setup => setup(&paths),
        Command::Bench(BenchMode::Full(args)) => args.run(&paths),
        Command::Bench(BenchMode::WarmOnly(args)) => args.run(&paths),
        Command::Bench(BenchMode::ConfigBlocks) => config_blocks(&paths),
        Command::Docs => match crate::commands::docs::run(&paths) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => could_not_run(error),
        },
        Command::BisectStep(args) => args.run(&paths),
    }
}

// ---- vmtest ---------------------------------------------------------------------------

/// `vmtest` as clap reads it: the mode flags beside every flag of every mode, with the
/// conflicts that keep a mode to its own flags. It becomes a [`VmtestMode`] right after
/// parsing and is never seen elsewhere.
#[derive(Debug, Args)]
struct VmtestArgs {
    /// List the cases (what each requires, which kernel has it) without building or
    /// booting anything.
    #[arg(long, conflicts_with_all = ["shell", "only_cases"], conflicts_with_all = RUN_FLAGS)]
    list: bool,
    /// Boot one kernel, run the `--case` up to its last attach, keep it pinned and hand
    /// over a shell in the guest (no case: only the modules are loaded).
    #[arg(long, conflicts_with_all = RUN_FLAGS)]
    shell: bool,
    /// Kernel manifest name(s) from kernels/, or `all` (default: 6.12; `--list`: all;
    /// `--shell`: one).
    #[arg(long = "kernel", value_delimiter = ',')]
    kernels: Vec<String>,
    /// Run the cases of this directory (C sources + TOML expectations) instead of the
    /// built-in ones; its snapshots go to DIR/snapshots/<kernel>/.
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
    /// Run only this case (repeatable); all cases by default (`--shell`: at most one).
    #[arg(long = "case", value_name = "NAME")]
    only_cases: Vec<String>,
    #[command(flatten)]
    run: RunFlags,
}

/// The flags only a run takes (neither `--list` nor `--shell`), by their ids in [`RunFlags`].
const RUN_FLAGS: [&str; 7] = [
    "kernel_dir",
    "accept",
    "junit",
    "timeout",
    "vms",
    "verbose",
    "latest",
];

/// The flags only a run takes (neither `--list` nor `--shell`); [`RUN_FLAGS`] names them.
#[derive(Debug, Args)]
struct RunFlags {
    /// Build this local kernel tree (e.g. a git checkout) instead of the manifest's
    /// source; the manifest still gives the config fragments and features.
    #[arg(long, value_name = "PATH")]
    kernel_dir: Option<PathBuf>,
    /// Write the results as the new snapshots instead of comparing.
    #[arg(long)]
    accept: bool,
    /// Also write the results as JUnit XML (one testcase per kernel × case).
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Seconds one VM boot may take before it is killed.
    #[arg(long, value_name = "SECS", default_value_t = vmtest::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Boot at most N VMs at once (default: one per core, as memory allows; cores the kernels leave free split a kernel's cases over more VMs)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    vms: Option<u16>,
    /// Every case in each kernel's table, also after several kernels (whose tables
    /// otherwise show only what is not a plain pass, before the case × kernel grid).
    #[arg(long)]
    verbose: bool,
    /// Build the newest version of each kernel's Debian package that apt offers instead of
    /// the manifest's pin, and compare it with the pinned kernel's snapshots: a difference is
    /// "behaviour changed in <version>" (exit status 6), not a failure.
    #[arg(long, conflicts_with = "kernel_dir")]
    latest: bool,
}

/// What `vmtest` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum VmtestMode {
    Run(RunArgs),
    List(ListArgs),
    Shell(ShellArgs),
}

/// `vmtest`: build, boot, run, compare.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// Empty: the default kernel.
    pub kernels: Vec<String>,
    pub kernel_dir: Option<PathBuf>,
    pub cases: Option<PathBuf>,
    pub only_cases: Vec<String>,
    pub accept: bool,
    pub junit: Option<PathBuf>,
    pub timeout: Duration,
    pub vms: Option<usize>,
    pub verbose: bool,
    pub latest: bool,
}

/// `vmtest --list`: nothing built or booted.
#[derive(Debug, Clone, PartialEq)]
pub struct ListArgs {
    /// Empty: every kernel.
    pub kernels: Vec<String>,
    pub cases: Option<PathBuf>,
}

/// `vmtest --shell`: one kernel, at most one case, a shell in the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellArgs {
    pub kernel: String,
    pub case: Option<String>,
    pub cases: Option<PathBuf>,
}

impl TryFrom<VmtestArgs> for VmtestMode {
    type Error = clap::Error;

    fn try_from(args: VmtestArgs) -> Result<Self, clap::Error> {
        let VmtestArgs {
            list,
            shell,
            kernels,
            cases,
            only_cases,
            run,
        } = args;
        if list {
            return Ok(VmtestMode::List(ListArgs { kernels, cases }));
        }
        if shell {
            let one_kernel = kernels.len() <= 1 && !kernels.iter().any(|k| k == "all");
            if !one_kernel || only_cases.len() > 1 {
                return Err(clap::Error::raw(
                    ErrorKind::ArgumentConflict,
                    "--shell boots one kernel with at most one case (--kernel K --case NAME)",
                ));
            }
            return Ok(VmtestMode::Shell(ShellArgs {
                kernel: kernels.into_iter().next().unwrap_or_else(|| "6.12".into()),
                case: only_cases.into_iter().next(),
                cases,
            }));
        }
        Ok(VmtestMode::Run(RunArgs {
            kernels,
            kernel_dir: run.kernel_dir,
            cases,
            only_cases,
            accept: run.accept,
            junit: run.junit,
            timeout: Duration::from_secs(run.timeout),
            vms: run.vms.map(usize::from),
            verbose: run.verbose,
            latest: run.latest,
        }))
    }
}

// clap parses `VmtestArgs` and hands over the typed mode.
impl FromArgMatches for VmtestMode {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        VmtestArgs::from_arg_matches(matches)?.try_into()
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for VmtestMode {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        VmtestArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        VmtestArgs::augment_args_for_update(cmd)
    }
}

impl RunArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        let default = vmtest::Options::default();
        let options = vmtest::Options {
            kernels: match self.kernels.is_empty() {
                true => default.kernels.clone(),
                false => self.kernels,
            },
            cases: self.cases,
            accept: self.accept,
            timeout: self.timeout,
            kernel_dir: self.kernel_dir,
            junit: self.junit,
            only_cases: self.only_cases,
            vms: self.vms,
            verbose: self.verbose,
            latest: self.latest,
            ..default
        };
        match vmtest::run(paths, &options) {
            Ok(reports) => {
                if reports.len() > 1 {
                    eprint!("\n{}", report::grid::render(&reports));
                }
                report::publish_github_summary(&reports);
                ExitCode::from(exit_status(&reports))
            }
            Err(error) => could_not_run(error),
        }
    }
}

impl ListArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        printed(crate::commands::list::list(
            paths,
            &self.kernels,
            self.cases.as_deref(),
        ))
    }
}

impl ShellArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        let options = crate::commands::shell::Options {
            kernel: self.kernel,
            case: self.case,
            cases: self.cases,
        };
        if let Err(error) = crate::commands::shell::check(&options) {
            return could_not_run(error);
        }
        match crate::commands::shell::run(paths, &options) {
            Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
            Err(error) => could_not_run(error),
        }
    }
}

// ---- report ---------------------------------------------------------------------------

/// `report`: the grid of run directories made elsewhere; nothing is built, booted or written.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ReportArgs {
    /// Run directories (images/runs/<kernel>/run-* or latest), or directories holding them
    /// at any depth (downloaded artifacts); for a kernel given twice the newest run counts.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// The kernels that should have reported (default: every manifest); the others are
    /// named as not reporting.
    #[arg(long = "kernel", value_delimiter = ',')]
    pub kernels: Vec<String>,
    /// GitHub Markdown instead of terminal text (for $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    pub markdown: bool,
    /// KERNEL=URL: where that kernel's job output is; Markdown links its column, its failed
    /// cells and its failure lines there (repeatable).
    #[arg(long = "job-url", value_name = "KERNEL=URL", value_parser = kernel_url)]
    pub job_urls: Vec<(String, String)>,
    /// The link for kernels without a --job-url (the workflow run's page).
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
}

fn kernel_url(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((kernel, url)) if !kernel.is_empty() && !url.is_empty() => {
            Ok((kernel.to_owned(), url.to_owned()))
        }
        _ => Err(format!("`{text}` is not KERNEL=URL")),
    }
}

impl ReportArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        use crate::commands::report;
        let options = report::Options {
            dirs: self.dirs,
            kernels: self.kernels,
        };
        let matrix = match report::run(paths, &options) {
            Ok(matrix) => matrix,
            Err(error) => return could_not_run(error),
        };
        let links = report::grid_links(self.job_urls, self.run_url);
        match self.markdown {
            true => print!("{}", report::markdown(&matrix, &links)),
            false => print!("{}", report::render(&matrix)),
        }
        let status = exit_status(&matrix.reports);
        match report::nothing_from(&matrix) {
            true => ExitCode::from(status.max(2)),
            false => ExitCode::from(status),
        }
    }
}

// ---- bisect ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Args)]
pub struct BisectArgs {
    /// The kernel git tree (left as it was found, also after Ctrl-C).
    #[arg(long, value_name = "TREE")]
    pub kernel_dir: PathBuf,
    /// A commit where the cases meet their expectations.
    #[arg(long)]
    pub good: String,
    /// A commit where they do not.
    #[arg(long)]
    pub bad: String,
    /// The manifest whose config fragments and features the tree is built with.
    #[arg(long, default_value = "6.12")]
    pub kernel: String,
    /// The case(s) that decide good/bad (repeatable); all built-in cases by default.
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Seconds one VM boot may take.
    #[arg(long, value_name = "SECS", default_value_t = vmtest::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
}

impl BisectArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        let options = bisect::BisectOptions {
            tree: self.kernel_dir,
            good: self.good,
            bad: self.bad,
            kernel: self.kernel,
            cases: self.cases,
            timeout: Duration::from_secs(self.timeout),
        };
        match bisect::run(paths, &options) {
            Ok(result) => {
                eprint!("{}", bisect::render(&result));
                if result.first_bad.is_some() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(error) => could_not_run(error),
        }
    }
}

/// One step of a bisect, at the tree's current commit; its exit code is git bisect run's.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct BisectStepArgs {
    #[arg(long)]
    pub kernel_dir: PathBuf,
    #[arg(long)]
    pub kernel: String,
    #[arg(long = "case")]
    pub cases: Vec<String>,
    #[arg(long)]
    pub timeout: u64,
    /// Where each step appends its record (JSON lines).
    #[arg(long)]
    pub steps_file: PathBuf,
}

impl BisectStepArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        let options = bisect::BisectOptions {
            tree: self.kernel_dir,
            good: String::new(),
            bad: String::new(),
            kernel: self.kernel,
            cases: self.cases,
            timeout: Duration::from_secs(self.timeout),
        };
        ExitCode::from(bisect::step(paths, &options, &self.steps_file))
    }
}

// ---- cache ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: Option<CacheAction>,
}

#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum CacheAction {
    /// Keep the newest complete entry of each manifest (and those named with --keep); never
    /// touch an entry another run holds; remove the rest and report what was freed.
    Gc {
        /// An entry to keep as well: its name (`6.12-a559f23a05bd5b2b`) or config hash.
        #[arg(long, value_name = "ENTRY")]
        keep: Vec<String>,
    },
}

impl CacheArgs {
    pub fn run(self, paths: &Paths) -> ExitCode {
        printed(self.text(paths))
    }

    fn text(self, paths: &Paths) -> anyhow::Result<String> {
        use crate::commands::cache;
        let entries = cache::entries(paths)?;
        let Some(CacheAction::Gc { keep }) = self.action else {
            return Ok(cache::render(&entries, None));
        };
        let decisions = cache::choose_removals(&entries, &keep);
        let freed = cache::collect(paths, &entries, &decisions)?;
        Ok(format!(
            "{}freed {:.1} GiB\n",
            cache::render(&entries, Some(&decisions)),
            freed as f64 / (1u64 << 30) as f64
        ))
    }
}

// ---- setup ----------------------------------------------------------------------------

fn setup(paths: &Paths) -> ExitCode {
    let ensured = crate::infra::runner::Runner::new(&paths.root)
        .and_then(|runner| crate::infra::host_tools::ensure(&runner));
    match ensured {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => could_not_run(error),
    }
}

// ---- bench ----------------------------------------------------------------------------

/// `bench` as clap reads it; it becomes a [`BenchMode`] right after parsing.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Runs of each short benchmark.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Cold builds of virtme-ng's config for B1 (about 17 minutes each); ours builds one
    /// more time than this, before, between and after them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    reference_builds: u16,
    /// Only the warm figures (B2, B5), printed; BENCHMARKS.md is left alone.
    #[arg(long, conflicts_with_all = ["config_blocks", "reference_builds"])]
    warm_only: bool,
    /// B1's breakdown instead: a cold build without each block of kernels/minimal.config and
    /// kernels/base.config (about 4 minutes each), written into BENCHMARKS.md.
    #[arg(long, conflicts_with_all = ["runs", "reference_builds"])]
    config_blocks: bool,
}

/// What `bench` was asked to measure.
#[derive(Debug, Clone, PartialEq)]
pub enum BenchMode {
    /// B1–B5, written into BENCHMARKS.md.
    Full(BenchFull),
    /// B2 and B5 only, printed.
    WarmOnly(BenchWarm),
    /// What each block of the base configs costs, written into BENCHMARKS.md.
    ConfigBlocks,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchFull {
    pub runs: usize,
    pub reference_builds: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchWarm {
    pub runs: usize,
}

impl From<BenchArgs> for BenchMode {
    fn from(args: BenchArgs) -> Self {
        match (args.config_blocks, args.warm_only) {
            (true, _) => BenchMode::ConfigBlocks,
            (false, true) => BenchMode::WarmOnly(BenchWarm { runs: args.runs }),
            (false, false) => BenchMode::Full(BenchFull {
                runs: args.runs,
                reference_builds: args.reference_builds.into(),
            }),
        }
    }
}

impl FromArgMatches for BenchMode {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(BenchArgs::from_arg_matches(matches)?.into())
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for BenchMode {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        BenchArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        BenchArgs::augment_args_for_update(cmd)
    }
}

impl BenchFull {
    pub fn run(self, paths: &Paths) -> ExitCode {
        let measured = bench::run(paths, self.runs, self.reference_builds).and_then(|figures| {
            let file = bench::publish(paths, &figures)?;
            Ok((figures, file))
        });
        match measured {
            Ok((figures, file)) => {
                eprintln!(
                    "\n{}\nwritten to {}",
                    bench::render(&figures),
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => could_not_run(error),
        }
    }
}

impl BenchWarm {
    pub fn run(self, paths: &Paths) -> ExitCode {
        match bench::run_warm(paths, self.runs) {
            Ok(line) => {
                eprint!("\n{line}");
                ExitCode::SUCCESS
            }
            Err(error) => could_not_run(error),
        }
    }
}

fn config_blocks(paths: &Paths) -> ExitCode {
    use crate::commands::config_cost;
    let measured = config_cost::run(paths).and_then(|costs| {
        let file = config_cost::publish(paths, &costs)?;
        Ok((costs, file))
    });
    match measured {
        Ok((costs, file)) => {
            eprintln!(
                "\n{}\nwritten to {}",
                config_cost::render(&costs),
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => could_not_run(error),
    }
}

// ---- exit codes -----------------------------------------------------------------------

/// Exit status 2: the command could not do its job (the message names why).
fn could_not_run(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(2)
}

/// A command whose whole answer is text on stdout.
fn printed(text: anyhow::Result<String>) -> ExitCode {
    match text {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => could_not_run(error),
    }
}

/// The worst outcome decides: a kernel-level failure's own code (2 could not run, 3 kernel
/// panic, 4 hang, 5 harness crash), else 1 if any case failed, else 6 if a kernel `--latest`
/// moved to a newer version behaves differently from the pinned one's snapshots, else 0.
pub fn exit_status(reports: &[report::KernelReport]) -> u8 {
    let worst_failure = reports
        .iter()
        .filter_map(|r| r.failure.as_ref().map(failure_exit_code))
        .max();
    match worst_failure {
        Some(code) => code,
        None if reports.iter().any(|r| r.failures() > 0) => 1,
        None if reports.iter().any(|r| !r.changed().is_empty()) => BEHAVIOUR_CHANGED,
        None => 0,
    }
}

/// Exit status of a `--latest` run whose only news is a behaviour change in a newer version.
pub const BEHAVIOUR_CHANGED: u8 = 6;

/// The exit status a kernel-level failure calls for (the table in README.md).
fn failure_exit_code(failure: &KernelFailure) -> u8 {
    match failure {
        KernelFailure::Setup(_) => 2,
        KernelFailure::Run { failure, .. } => match failure {
            RunFailure::NoHarness | RunFailure::Protocol { .. } => 2,
            RunFailure::KernelPanic { .. } => 3,
            RunFailure::Hang { .. } => 4,
            RunFailure::HarnessCrash { .. } => 5,
        },
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::infra::failure::{SetupFailure, SetupStage};
    use crate::report::KernelReport;
    use crate::test_support::{ran, row};

    fn report(failure: Option<KernelFailure>, deviations: &[&str]) -> KernelReport {
        KernelReport {
            kernel: "6.12".into(),
            context: String::new(),
            rows: vec![row("c", ran("c"), deviations)],
            failure,
            timings: Default::default(),
            run_dir: None,
            latest: None,
        }
    }

    /// A kernel whose one case differs from its snapshot, run `--latest` (moved or not).
    fn changed(moved: bool) -> KernelReport {
        let mut report = report(None, &[]);
        report.rows[0].snapshot = crate::judge::snapshots::SnapshotCheck::Differs {
            diff: String::new(),
        };
        report.latest = Some(crate::kernel::latest::Latest {
            package: "linux-source-6.12".into(),
            pinned: "6.12.117-1~deb12u1".into(),
            took: match moved {
                true => "6.12.118-1~deb12u1".into(),
                false => "6.12.117-1~deb12u1".into(),
            },
        });
        report
    }

    fn run(failure: RunFailure) -> Option<KernelFailure> {
        Some(KernelFailure::Run {
            failure,
            console: "console.log".into(),
            console_tail: String::new(),
        })
    }

    fn parse(line: &str) -> Result<Command, clap::Error> {
        let words = std::iter::once("xtask").chain(line.split_whitespace());
        Cli::try_parse_from(words).map(|cli| cli.command)
    }

    fn vmtest(line: &str) -> VmtestMode {
        match parse(line) {
            Ok(Command::Vmtest(mode)) => mode,
            other => panic!("`{line}`: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[rstest]
    #[case::list_accept("vmtest --list --accept")]
    #[case::list_junit("vmtest --list --junit x.xml")]
    #[case::list_case("vmtest --list --case bare")]
    #[case::list_kernel_dir("vmtest --list --kernel-dir /tree")]
    #[case::list_timeout("vmtest --list --timeout 5")]
    #[case::list_vms("vmtest --list --vms 2")]
    #[case::list_verbose("vmtest --list --verbose")]
    #[case::list_and_shell("vmtest --list --shell")]
    #[case::shell_junit("vmtest --shell --junit x")]
    #[case::shell_accept("vmtest --shell --accept")]
    #[case::shell_kernel_dir("vmtest --shell --kernel-dir /tree")]
    #[case::shell_timeout("vmtest --shell --timeout 5")]
    #[case::shell_vms("vmtest --shell --vms 2")]
    #[case::shell_verbose("vmtest --shell --verbose")]
    #[case::shell_two_kernels("vmtest --shell --kernel 6.1,6.12")]
    #[case::shell_all_kernels("vmtest --shell --kernel all")]
    #[case::shell_two_cases("vmtest --shell --case a --case b")]
    #[case::no_vms("vmtest --vms 0")]
    #[case::warm_only_reference_builds("bench --warm-only --reference-builds 2")]
    #[case::config_blocks_runs("bench --config-blocks --runs 2")]
    #[case::config_blocks_warm_only("bench --config-blocks --warm-only")]
    fn a_mode_refuses_the_flags_it_would_ignore(#[case] line: &str) {
        let error = parse(line).expect_err(line);
        assert!(
            matches!(
                error.kind(),
                ErrorKind::ArgumentConflict | ErrorKind::ValueValidation
            ),
            "`{line}`: {error}"
        );
    }

    #[test]
    fn the_readme_spellings_of_vmtest_parse_into_their_modes() {
        assert_eq!(
            vmtest("vmtest"),
            VmtestMode::Run(RunArgs {
                kernels: vec![],
                kernel_dir: None,
                cases: None,
                only_cases: vec![],
                accept: false,
                junit: None,
                timeout: vmtest::DEFAULT_TIMEOUT,
                vms: None,
                verbose: false,
                latest: false,
            })
        );
        assert_eq!(
            vmtest(
                "vmtest --kernel 6.12 --kernel-dir /tree --cases dir --case a --case b --accept \
                 --junit j.xml --timeout 60 --vms 2 --verbose"
            ),
            VmtestMode::Run(RunArgs {
                kernels: vec!["6.12".into()],
                kernel_dir: Some("/tree".into()),
                cases: Some("dir".into()),
                only_cases: vec!["a".into(), "b".into()],
                accept: true,
                junit: Some("j.xml".into()),
                timeout: Duration::from_secs(60),
                vms: Some(2),
                verbose: true,
                latest: false,
            })
        );
        for (line, kernels) in [
            ("vmtest --kernel all", vec!["all"]),
            ("vmtest --kernel 5.10,7.2", vec!["5.10", "7.2"]),
        ] {
            let VmtestMode::Run(run) = vmtest(line) else {
                panic!("{line}")
            };
            assert_eq!(run.kernels, kernels);
        }
        assert_eq!(
            vmtest("vmtest --list"),
            VmtestMode::List(ListArgs {
                kernels: vec![],
                cases: None
            })
        );
        assert_eq!(
            vmtest("vmtest --list --kernel 5.10,6.1 --cases dir"),
            VmtestMode::List(ListArgs {
                kernels: vec!["5.10".into(), "6.1".into()],
                cases: Some("dir".into())
            })
        );
        assert_eq!(
            vmtest("vmtest --shell"),
            VmtestMode::Shell(ShellArgs {
                kernel: "6.12".into(),
                case: None,
                cases: None
            })
        );
        assert_eq!(
            vmtest("vmtest --shell --kernel 6.1 --case bare --cases dir"),
            VmtestMode::Shell(ShellArgs {
                kernel: "6.1".into(),
                case: Some("bare".into()),
                cases: Some("dir".into())
            })
        );
    }

    #[test]
    fn the_readme_spellings_of_the_other_commands_parse() {
        assert!(matches!(
            parse("cache"),
            Ok(Command::Cache(CacheArgs { action: None }))
        ));
        assert!(matches!(
            parse("cache gc --keep 6.12-a559f23a05bd5b2b --keep a559"),
            Ok(Command::Cache(CacheArgs { action: Some(CacheAction::Gc { keep }) })) if keep.len() == 2
        ));
        assert!(matches!(parse("setup"), Ok(Command::Setup)));
        assert!(matches!(
            parse("report images/runs/6.12/latest artifacts --markdown --kernel 6.1,6.12 --job-url 6.12=https://ci/j/1 --run-url https://ci/r"),
            Ok(Command::Report(ReportArgs { dirs, kernels, markdown: true, job_urls, run_url: Some(_) }))
                if dirs.len() == 2 && kernels == ["6.1", "6.12"] && job_urls == [("6.12".to_owned(), "https://ci/j/1".to_owned())]
        ));
        assert!(parse("report").is_err(), "report needs a directory");
        assert!(parse("report d --job-url nourl").is_err());
        assert!(matches!(
            parse("vmtest --latest --kernel all"),
            Ok(Command::Vmtest(VmtestMode::Run(RunArgs {
                latest: true,
                ..
            })))
        ));
        assert!(parse("vmtest --latest --kernel-dir /tree").is_err());
        assert!(parse("vmtest --list --latest").is_err());
        assert!(matches!(
            parse("bisect --kernel-dir /tree --good v6.11 --bad v6.12 --case bare --kernel 6.12"),
            Ok(Command::Bisect(BisectArgs { cases, timeout: 300, .. })) if cases == ["bare"]
        ));
        assert!(matches!(
            parse("bisect-step --kernel-dir /tree --kernel 6.12 --timeout 300 --steps-file s --case bare"),
            Ok(Command::BisectStep(_))
        ));
        assert_eq!(
            parse("bench").map(|c| format!("{c:?}")).unwrap(),
            format!(
                "{:?}",
                Command::Bench(BenchMode::Full(BenchFull {
                    runs: 3,
                    reference_builds: 1
                }))
            )
        );
        assert!(matches!(
            parse("bench --runs 5 --reference-builds 2"),
            Ok(Command::Bench(BenchMode::Full(BenchFull {
                runs: 5,
                reference_builds: 2
            })))
        ));
        assert!(matches!(
            parse("bench --warm-only --runs 2"),
            Ok(Command::Bench(BenchMode::WarmOnly(BenchWarm { runs: 2 })))
        ));
        assert!(matches!(
            parse("bench --config-blocks"),
            Ok(Command::Bench(BenchMode::ConfigBlocks))
        ));
    }

    #[rstest]
    #[case::all_passed(vec![report(None, &[])], 0)]
    #[case::a_case_failed(vec![report(None, &["x"]), report(None, &[])], 1)]
    #[case::could_not_build(vec![report(Some(KernelFailure::Setup(SetupFailure { stage: SetupStage::KernelBuild, message: "x".into() })), &[])], 2)]
    #[case::panic_beats_a_failed_case(vec![report(None, &["x"]), report(run(RunFailure::KernelPanic { line: "p".into(), case: None }), &[])], 3)]
    #[case::hang(vec![report(run(RunFailure::Hang { case: None, timeout_secs: 1 }), &[])], 4)]
    #[case::behaviour_changed(vec![changed(true), report(None, &[])], 6)]
    #[case::a_failure_beats_a_change(vec![changed(true), report(None, &["x"])], 1)]
    #[case::no_newer_version_a_plain_snapshot_failure(vec![changed(false)], 1)]
    #[case::worst_of_hang_and_crash(vec![report(run(RunFailure::Hang { case: None, timeout_secs: 1 }), &[]), report(run(RunFailure::HarnessCrash { case: None }), &[])], 5)]
    fn the_worst_outcome_decides_the_exit_status(
        #[case] reports: Vec<KernelReport>,
        #[case] status: u8,
    ) {
        assert_eq!(exit_status(&reports), status);
    }
}
