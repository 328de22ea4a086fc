//! A kernel's run failing as a whole: a stage before the boot, or the VM run itself.

use std::path::PathBuf;

use crate::guest::results::RunFailure;
use crate::infra::failure::SetupFailure;

/// A failure of a kernel's run as a whole.
#[derive(Debug, Clone)]
pub enum KernelFailure {
    /// A stage before the boot failed: nothing ran.
    Setup(SetupFailure),
    /// The VM run ended early or badly; cases that finished before still count.
    Run {
        failure: RunFailure,
        console: PathBuf,
        console_tail: String,
    },
}

impl KernelFailure {
    pub fn describe(&self) -> String {
        match self {
            KernelFailure::Setup(failure) => format!("could not be tested: {failure}"),
            KernelFailure::Run {
                failure,
                console,
                console_tail,
            } => format!(
                "{}\nlast lines of {}:\n{console_tail}",
                failure.describe(),
                console.display()
            ),
        }
    }
}
