//! The command line of `cargo xtask`, and the one place that decides the exit code:
//! 0 all passed, 1 a case failed or differs from its snapshot, 2 the run itself could not be
//! done (build, boot, bad input). It lives in the library so tests can parse the commands the
//! CI workflow runs with the very same parser.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::paths::Paths;
use crate::{report, vmtest};
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
        } => {
            let options = vmtest::Options {
                kernels,
                cases,
                accept,
                timeout: Duration::from_secs(timeout),
                kernel_dir,
                junit,
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
