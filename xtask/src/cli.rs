//! The command line of `cargo xtask`, and the one place that decides the exit code:
//! 0 all passed, 1 a case failed or differs from its snapshot, 2 the run itself could not be
//! done (build, boot, bad input). It lives in the library so tests can parse the commands the
//! CI workflow runs with the very same parser.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::paths::Paths;
use crate::{bench, bisect, report, vmtest};
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
        /// Kernel manifest name(s) from kernels/, or `all`.
        #[arg(long = "kernel", default_value = "6.12", value_delimiter = ',')]
        kernels: Vec<String>,
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
    /// Measure build, boot and run times against virtme-ng and write BENCHMARKS.md.
    Bench {
        /// Runs of each short benchmark (the cold builds run once).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
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
            accept,
            timeout,
            kernel_dir,
            junit,
            only_cases,
        } => {
            let options = vmtest::Options {
                kernels,
                cases,
                accept,
                timeout: Duration::from_secs(timeout),
                kernel_dir,
                junit,
                only_cases,
                compare_snapshots: true,
            };
            match vmtest::run(&paths, &options) {
                Ok(reports) => {
                    report::publish_github_summary(&reports);
                    ExitCode::from(exit_status(&reports))
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
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
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench { runs } => match bench::run(&paths, runs).and_then(|f| {
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
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
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
        .filter_map(|r| r.failure.as_ref().map(|f| f.exit_code()))
        .max();
    match worst_failure {
        Some(code) => code,
        None if reports.iter().all(|r| r.failures() == 0) => 0,
        None => 1,
    }
}
