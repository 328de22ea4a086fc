//! What can go wrong with a kernel as a whole, as opposed to one case: a stage before the boot
//! failed ([`SetupFailure`], which names its stage), or the VM run ended badly
//! ([`RunFailure`]). Bisect decides skip or abort from the stage alone.

use std::fmt;

/// The stages before a boot, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStage {
    /// The command line, a manifest or a case directory is wrong.
    Input,
    /// apt packages, virtme-ng, the toolchain.
    HostTools,
    /// Downloading or unpacking the kernel source.
    Fetch,
    /// The kernel cache (directory, lock, publishing an entry).
    Cache,
    /// allnoconfig + fragments, and the check that every symbol stuck.
    Config,
    /// `make bzImage modules` of the kernel itself.
    KernelBuild,
    /// bpf_testmod, or a case set's own module, against the built tree.
    ModuleBuild,
    /// The cases' BPF programs (clang as a tool; a program's own errors fail only its cases).
    Programs,
    /// `cargo build` of the guest harness.
    HarnessBuild,
    /// Starting the VM (the KVM probe, spawning vng).
    Boot,
}

impl SetupStage {
    /// Whether a failure here is the tested commit's own doing (it does not build), as
    /// opposed to the machinery's. Only these make bisect skip a commit.
    pub fn is_commit_build(self) -> bool {
        matches!(self, SetupStage::KernelBuild | SetupStage::ModuleBuild)
    }
}

impl fmt::Display for SetupStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetupStage::Input => "reading the input",
            SetupStage::HostTools => "checking the host tools",
            SetupStage::Fetch => "fetching the kernel source",
            SetupStage::Cache => "using the kernel cache",
            SetupStage::Config => "configuring the kernel",
            SetupStage::KernelBuild => "building the kernel",
            SetupStage::ModuleBuild => "building a module",
            SetupStage::Programs => "compiling the BPF programs",
            SetupStage::HarnessBuild => "building the guest harness",
            SetupStage::Boot => "starting the VM",
        })
    }
}

/// A stage before the boot failed; `message` is the whole error chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFailure {
    pub stage: SetupStage,
    pub message: String,
}

impl fmt::Display for SetupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.stage, self.message)
    }
}

impl std::error::Error for SetupFailure {}

/// Tags an error with the stage it happened in.
pub trait AtStage<T> {
    fn at(self, stage: SetupStage) -> Result<T, SetupFailure>;
}

impl<T> AtStage<T> for anyhow::Result<T> {
    fn at(self, stage: SetupStage) -> Result<T, SetupFailure> {
        self.map_err(|error| SetupFailure {
            stage,
            message: format!("{error:#}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(SetupStage::KernelBuild, true)]
    #[case(SetupStage::ModuleBuild, true)]
    #[case(SetupStage::Config, false)]
    #[case(SetupStage::Cache, false)]
    #[case(SetupStage::HostTools, false)]
    #[case(SetupStage::HarnessBuild, false)]
    #[case(SetupStage::Boot, false)]
    fn only_build_failures_are_the_commits_own(#[case] stage: SetupStage, #[case] own: bool) {
        assert_eq!(stage.is_commit_build(), own);
    }

    #[test]
    fn the_message_names_the_stage_and_keeps_the_cause_chain() {
        let error = anyhow::anyhow!("EACCES").context("creating /cache/locks");
        let failure = Err::<(), _>(error).at(SetupStage::Cache).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "using the kernel cache failed: creating /cache/locks: EACCES"
        );
    }
}
