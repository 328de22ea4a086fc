//! `cargo xtask <command>`: the project's CLI. Exit codes: 0 all passed, 1 a case failed or
//! differs from its snapshot, 2 the run itself could not be done (build, boot, bad input).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use xtask::paths::Paths;
use xtask::vmtest;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Test BPF writable raw tracepoints on real kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
                Ok(reports) if reports.iter().any(|r| r.infra_error.is_some()) => ExitCode::from(2),
                Ok(reports) if reports.iter().all(|r| r.failures() == 0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
