//! The command line of `cargo xtask`, and the one place that decides the exit code of
//! `vmtest` (see [`exit_status`]; a bisect step's code is [`crate::commands::bisect::Verdict`]'s, which
//! `git bisect run` defines). It lives in the library so tests can parse the commands the CI
//! workflow runs with the very same parser.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::commands::{bench, bisect, vmtest};
use crate::guest::failure::KernelFailure;
use crate::guest::results::RunFailure;
use crate::infra::paths::Paths;
use crate::report;
use clap::{Parser, Subcommand};

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
    Vmtest {
        /// Kernel manifest name(s) from kernels/, or `all` (default: 6.12; `--list`: all).
        #[arg(long = "kernel", value_delimiter = ',')]
        kernels: Vec<String>,
        /// List the cases (what each requires, which kernel has it) without building or
        /// booting anything.
        #[arg(long)]
        list: bool,
        /// Boot one kernel, run the `--case` up to its last attach, keep it pinned and hand
        /// over a shell in the guest (no case: only the modules are loaded).
        #[arg(long, conflicts_with_all = ["list", "accept", "junit"])]
        shell: bool,
        /// Run the cases of this directory (C sources + TOML expectations) instead of the
        /// built-in ones; its snapshots go to DIR/snapshots/<kernel>/.
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
        /// Write the results as the new snapshots instead of comparing.
        #[arg(long)]
        accept: bool,
        /// Seconds one VM boot may take before it is killed.
        #[arg(long, default_value_t = vmtest::DEFAULT_TIMEOUT.as_secs())]
        timeout: u64,
        /// Build this local kernel tree (e.g. a git checkout) instead of the manifest's
        /// source; the manifest still gives the config fragments and features.
        #[arg(long, value_name = "PATH")]
        kernel_dir: Option<PathBuf>,
        /// Also write the results as JUnit XML (one testcase per kernel × case).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Run only this case (repeatable); all cases by default.
        #[arg(long = "case", value_name = "NAME")]
        only_cases: Vec<String>,
        /// Boot at most N kernels at once (default: two per core, as memory allows).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        vms: Option<u16>,
    },
    /// Find the kernel commit that changed a case's outcome: `git bisect run` over TREE.
    Bisect {
        /// The kernel git tree (left as it was found, also after Ctrl-C).
        #[arg(long, value_name = "TREE")]
        kernel_dir: PathBuf,
        /// A commit where the cases meet their expectations.
        #[arg(long)]
        good: String,
        /// A commit where they do not.
        #[arg(long)]
        bad: String,
        /// The manifest whose config fragments and features the tree is built with.
        #[arg(long, default_value = "6.12")]
        kernel: String,
        /// The case(s) that decide good/bad (repeatable); all built-in cases by default.
        #[arg(long = "case", value_name = "NAME")]
        cases: Vec<String>,
        /// Seconds one VM boot may take.
        #[arg(long, default_value_t = vmtest::DEFAULT_TIMEOUT.as_secs())]
        timeout: u64,
    },
    /// List the kernel cache (entry, kernel, source, size, last used, state) and its total;
    /// `cache gc` removes all but the newest complete entry of each manifest.
    Cache {
        #[command(subcommand)]
        action: Option<CacheAction>,
    },
    /// Install the host tools (Debian packages, virtme-ng) without running anything; as
    /// another user than root, print the command that installs them. The harness's libbpf is
    /// built from source and needs some of them before `cargo build` of the workspace.
    Setup,
    /// Measure build, boot and run times against virtme-ng and write BENCHMARKS.md.
    Bench {
        /// Runs of each short benchmark.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Cold builds of virtme-ng's config for B1 (about 17 minutes each); ours builds one
        /// more time than this, before, between and after them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        reference_builds: u16,
        /// Only the warm figures (B2, B5), printed; BENCHMARKS.md is left alone.
        #[arg(long, conflicts_with = "config_blocks")]
        warm_only: bool,
        /// B1's breakdown instead: a cold build without each block of kernels/minimal.config and
        /// kernels/base.config (about 4 minutes each), written into BENCHMARKS.md.
        #[arg(long)]
        config_blocks: bool,
    },
    /// Regenerate docs/helpers.md from the `_helpers` snapshots in tests/snapshots/.
    Docs,
    /// One bisect step at the tree's current commit (run by `git bisect run`).
    #[command(hide = true)]
    BisectStep {
        #[arg(long)]
        kernel_dir: PathBuf,
        #[arg(long)]
        kernel: String,
        #[arg(long = "case")]
        cases: Vec<String>,
        #[arg(long)]
        timeout: u64,
        /// Where each step appends its record (JSON lines).
        #[arg(long)]
        steps_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Keep the newest complete entry of each manifest (and those named with --keep); never
    /// touch an entry another run holds; remove the rest and report what was freed.
    Gc {
        /// An entry to keep as well: its name (`6.12-a559f23a05bd5b2b`) or config hash.
        #[arg(long, value_name = "ENTRY")]
        keep: Vec<String>,
    },
}

fn run_shell(
    paths: &Paths,
    kernels: Vec<String>,
    cases: Option<PathBuf>,
    only_cases: Vec<String>,
) -> ExitCode {
    if kernels.len() > 1 || only_cases.len() > 1 || kernels.iter().any(|k| k == "all") {
        eprintln!("error: --shell boots one kernel with at most one case (--kernel K --case NAME)");
        return ExitCode::from(2);
    }
    let options = crate::commands::shell::Options {
        kernel: kernels.into_iter().next().unwrap_or_else(|| "6.12".into()),
        case: only_cases.into_iter().next(),
        cases,
    };
    if let Err(error) = crate::commands::shell::check(&options) {
        return could_not_run(error);
    }
    match crate::commands::shell::run(paths, &options) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(error) => could_not_run(error),
    }
}

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

fn cache_command(paths: &Paths, action: Option<CacheAction>) -> anyhow::Result<String> {
    let entries = crate::commands::cache::entries(paths)?;
    let Some(CacheAction::Gc { keep }) = action else {
        return Ok(crate::commands::cache::render(&entries, None));
    };
    let decisions = crate::commands::cache::choose_removals(&entries, &keep);
    let freed = crate::commands::cache::collect(paths, &entries, &decisions)?;
    Ok(format!(
        "{}freed {:.1} GiB\n",
        crate::commands::cache::render(&entries, Some(&decisions)),
        freed as f64 / (1u64 << 30) as f64
    ))
}

/// Parses the process's arguments, runs the command, returns its exit code.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

pub fn run(cli: Cli) -> ExitCode {
    let paths = Paths::from_env();
    match cli.command {
        Command::Vmtest {
            kernels,
            cases,
            only_cases,
            shell: true,
            ..
        } => run_shell(&paths, kernels, cases, only_cases),
        Command::Vmtest {
            kernels,
            cases,
            list: true,
            ..
        } => printed(crate::commands::list::list(
            &paths,
            &kernels,
            cases.as_deref(),
        )),
        Command::Vmtest {
            kernels,
            cases,
            accept,
            timeout,
            kernel_dir,
            junit,
            only_cases,
            vms,
            list: false,
            shell: false,
        } => {
            let options = vmtest::Options {
                kernels: match kernels.is_empty() {
                    true => vmtest::Options::default().kernels,
                    false => kernels,
                },
                cases,
                accept,
                timeout: Duration::from_secs(timeout),
                kernel_dir,
                junit,
                only_cases,
                vms: vms.map(usize::from),
                ..vmtest::Options::default()
            };
            match vmtest::run(&paths, &options) {
                Ok(reports) => {
                    report::publish_github_summary(&reports);
                    ExitCode::from(exit_status(&reports))
                }
                Err(error) => could_not_run(error),
            }
        }
        Command::Bisect {
            kernel_dir,
            good,
            bad,
            kernel,
            cases,
            timeout,
        } => {
            let options = bisect::BisectOptions {
                tree: kernel_dir,
                good,
                bad,
                kernel,
                cases,
                timeout: Duration::from_secs(timeout),
            };
            match bisect::run(&paths, &options) {
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
        Command::Cache { action } => printed(cache_command(&paths, action)),
        Command::Setup => {
            let ensured = crate::infra::runner::Runner::new(&paths.root)
                .and_then(|runner| crate::infra::host_tools::ensure(&runner));
            match ensured {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => could_not_run(error),
            }
        }
        Command::Bench {
            config_blocks: true,
            ..
        } => match crate::commands::config_cost::run(&paths).and_then(|costs| {
            let file = crate::commands::config_cost::publish(&paths, &costs)?;
            Ok((costs, file))
        }) {
            Ok((costs, file)) => {
                eprintln!(
                    "\n{}\nwritten to {}",
                    crate::commands::config_cost::render(&costs),
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => could_not_run(error),
        },
        Command::Bench {
            runs,
            warm_only: true,
            ..
        } => match bench::run_warm(&paths, runs) {
            Ok(line) => {
                eprint!("\n{line}");
                ExitCode::SUCCESS
            }
            Err(error) => could_not_run(error),
        },
        Command::Bench {
            runs,
            reference_builds,
            ..
        } => match bench::run(&paths, runs, reference_builds.into()).and_then(|f| {
            let file = bench::publish(&paths, &f)?;
            Ok((f, file))
        }) {
            Ok((figures, file)) => {
                eprintln!(
                    "\n{}\nwritten to {}",
                    bench::render(&figures),
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => could_not_run(error),
        },
        Command::Docs => match crate::judge::helpers::write_doc(&paths) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => could_not_run(error),
        },
        Command::BisectStep {
            kernel_dir,
            kernel,
            cases,
            timeout,
            steps_file,
        } => {
            let options = bisect::BisectOptions {
                tree: kernel_dir,
                good: String::new(),
                bad: String::new(),
                kernel,
                cases,
                timeout: Duration::from_secs(timeout),
            };
            ExitCode::from(bisect::step(&paths, &options, &steps_file))
        }
    }
}

/// The worst outcome decides: a kernel-level failure's own code (2 could not run, 3 kernel
/// panic, 4 hang, 5 harness crash), else 1 if any case failed, else 0.
pub fn exit_status(reports: &[report::KernelReport]) -> u8 {
    let worst_failure = reports
        .iter()
        .filter_map(|r| r.failure.as_ref().map(failure_exit_code))
        .max();
    match worst_failure {
        Some(code) => code,
        None if reports.iter().all(|r| r.failures() == 0) => 0,
        None => 1,
    }
}

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
        }
    }

    fn run(failure: RunFailure) -> Option<KernelFailure> {
        Some(KernelFailure::Run {
            failure,
            console: "console.log".into(),
            console_tail: String::new(),
        })
    }

    #[rstest]
    #[case::all_passed(vec![report(None, &[])], 0)]
    #[case::a_case_failed(vec![report(None, &["x"]), report(None, &[])], 1)]
    #[case::could_not_build(vec![report(Some(KernelFailure::Setup(SetupFailure { stage: SetupStage::KernelBuild, message: "x".into() })), &[])], 2)]
    #[case::panic_beats_a_failed_case(vec![report(None, &["x"]), report(run(RunFailure::KernelPanic { line: "p".into(), case: None }), &[])], 3)]
    #[case::hang(vec![report(run(RunFailure::Hang { case: None, timeout_secs: 1 }), &[])], 4)]
    #[case::worst_of_hang_and_crash(vec![report(run(RunFailure::Hang { case: None, timeout_secs: 1 }), &[]), report(run(RunFailure::HarnessCrash { case: None }), &[])], 5)]
    fn the_worst_outcome_decides_the_exit_status(
        #[case] reports: Vec<KernelReport>,
        #[case] status: u8,
    ) {
        assert_eq!(exit_status(&reports), status);
    }
}
