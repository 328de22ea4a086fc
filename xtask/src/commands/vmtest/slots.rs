//! Booting a matrix's kernels side by side: how many VMs at once, and the reports put back
//! in matrix order whatever order the VMs end in.

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::guest::boot::{self, GuestRun};
use crate::guest::shards;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::machine;
use crate::infra::paths::Paths;
use crate::infra::progress;
use crate::infra::runner::Runner;

/// VMs per core. Under TCG a VM keeps its core busy: four kernels on two cores, two VMs at
/// once took 8.9 s and 9.1 s, four at once 9.6 s and 9.7 s (2026-12-02, after the harness
/// stopped waiting on 9p round trips and fsyncs; before that, when a VM idled on them, two
/// per core had been faster: 9.6 s against 10.5 s).
const VMS_PER_CORE: usize = 1;

/// How many VMs boot at once: [`VMS_PER_CORE`] per core, no more than memory holds (the
/// guest's memory plus what QEMU needs around it), no more than there are kernels.
pub fn boot_slots(kernels: usize, cores: usize, available_mib: u64) -> usize {
    let by_cores = cores.saturating_mul(VMS_PER_CORE);
    kernels
        .min(by_cores)
        .min(vms_memory_holds(available_mib))
        .max(1)
}

/// How many VMs `available_mib` holds: the guest's memory plus what QEMU needs around it each.
fn vms_memory_holds(available_mib: u64) -> usize {
    let per_vm_mib = boot::GUEST_MEMORY_MIB + boot::QEMU_OVERHEAD_MIB;
    usize::try_from(available_mib / per_vm_mib).unwrap_or(usize::MAX)
}

/// [`boot_slots`] for this machine now.
pub fn default_boot_slots(kernels: usize) -> usize {
    boot_slots(
        kernels,
        machine::available_cores(),
        machine::available_memory_mib(),
    )
}

/// How many VMs one kernel's plan is split over on this machine now ([`shards::count`]): the
/// cores the run's kernels leave free, within `--vms` (default: what memory holds).
pub fn shards_here(plan: &protocol::Plan, kernels: usize, vms: Option<usize>) -> usize {
    let vm_limit = vms.unwrap_or_else(|| vms_memory_holds(machine::available_memory_mib()));
    shards::count(plan, machine::available_cores(), kernels, vm_limit)
}

/// One kernel whose turn has come, in matrix order: prepared and booted, or failed before
/// (or at) its boot.
pub type Turn<P, V> = (String, Result<(P, V), SetupFailure>);

/// The kernels of a run in matrix order: prepared, booted (in any order), then handed back
/// in order, each as soon as it and every kernel before it are done. Pure bookkeeping: the
/// caller judges and prints what [`InOrder::due`] hands back.
pub struct InOrder<P, V> {
    prepared: Vec<(String, Option<Result<P, SetupFailure>>)>,
    booted: BTreeMap<usize, Result<V, SetupFailure>>,
    handed_back: usize,
}

impl<P, V> Default for InOrder<P, V> {
    fn default() -> Self {
        Self {
            prepared: Vec::new(),
            booted: BTreeMap::new(),
            handed_back: 0,
        }
    }
}

impl<P, V> InOrder<P, V> {
    /// The next kernel in matrix order, ready to boot or failed before its boot.
    pub fn prepared(&mut self, kernel: &str, ready: Result<P, SetupFailure>) {
        self.prepared.push((kernel.to_owned(), Some(ready)));
    }

    /// VMs that are done, by the kernel's index in matrix order.
    pub fn booted(&mut self, vms: impl Iterator<Item = (usize, Result<V, SetupFailure>)>) {
        self.booted.extend(vms);
    }

    /// Every kernel whose turn has come: its VM (and those of the kernels before it) done.
    pub fn due(&mut self) -> Vec<Turn<P, V>> {
        let mut due = Vec::new();
        while let Some((kernel, ready)) = self.prepared.get_mut(self.handed_back) {
            if matches!(ready, Some(Ok(_))) && !self.booted.contains_key(&self.handed_back) {
                break;
            }
            let turn = match ready.take().expect("a kernel is handed back once") {
                Ok(ready) => (self
                    .booted
                    .remove(&self.handed_back)
                    .expect("its VM is done"))
                .map(|vm| (ready, vm)),
                Err(failure) => Err(failure),
            };
            due.push((kernel.clone(), turn));
            self.handed_back += 1;
        }
        due
    }
}

/// What a boot slot needs to boot one kernel.
pub struct BootJob {
    pub index: usize,
    pub kernel: String,
    pub bzimage: PathBuf,
    pub plan: protocol::Plan,
    /// How many VMs the plan is split over ([`shards_here`]).
    pub shards: usize,
    /// The host's record of how to judge the run ([`boot::JUDGING_FILE`]).
    pub judging: String,
    pub runs: PathBuf,
}

/// One boot slot: boots the kernels it is handed, one after another, with its own runner
/// (a shell is not shared between threads). The VMs are tied to this thread, which lives
/// until its last VM has ended.
pub fn boot_slot(
    paths: &Paths,
    timeout: Duration,
    jobs: &Mutex<mpsc::Receiver<BootJob>>,
    booted: &mpsc::Sender<(usize, Result<GuestRun, SetupFailure>)>,
    labelled: bool,
) {
    let runner = Runner::new(&paths.root);
    loop {
        let job = jobs
            .lock()
            .expect("no slot panics holding the queue")
            .recv();
        let Ok(job) = job else { return };
        if labelled {
            progress::label_thread(&job.kernel);
        }
        let vm = match &runner {
            Ok(runner) => boot::run_plan(
                runner,
                paths,
                (&job.bzimage, &job.plan, job.shards),
                &job.judging,
                &job.runs,
                timeout,
            ),
            Err(error) => Err(anyhow::anyhow!("{error:#}")),
        };
        let _ = booted.send((job.index, vm.at(SetupStage::Boot)));
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::one_kernel(1, 8, 64_000, 1)]
    #[case::one_slot_per_core(4, 2, 64_000, 2)]
    #[case::more_kernels_than_slots(8, 2, 64_000, 2)]
    #[case::memory_for_two(4, 8, 2 * 1280 + 100, 2)]
    #[case::never_none(4, 2, 100, 1)]
    #[case::more_slots_than_kernels(2, 16, 64_000, 2)]
    fn vms_boot_side_by_side_as_cores_and_memory_allow(
        #[case] kernels: usize,
        #[case] cores: usize,
        #[case] available_mib: u64,
        #[case] slots: usize,
    ) {
        assert_eq!(boot_slots(kernels, cores, available_mib), slots);
    }

    fn failed(message: &str) -> SetupFailure {
        SetupFailure {
            stage: crate::infra::failure::SetupStage::Boot,
            message: message.into(),
        }
    }

    #[test]
    fn kernels_come_back_in_matrix_order_whatever_order_the_vms_end_in() {
        let mut in_order = InOrder::<u32, u32>::default();
        let names = |turns: Vec<Turn<u32, u32>>| -> Vec<String> {
            turns
                .into_iter()
                .map(|(kernel, turn)| match turn {
                    Ok((ready, vm)) => {
                        assert_eq!(ready, vm, "each kernel comes with its own VM");
                        format!("{kernel} booted")
                    }
                    Err(failure) => format!("{kernel}: {}", failure.message),
                })
                .collect()
        };
        in_order.prepared("5.10", Ok(0));
        in_order.prepared("6.1", Err(failed("the build failed")));
        in_order.prepared("6.12", Ok(2));
        in_order.booted([(2, Ok(2))].into_iter());
        assert!(in_order.due().is_empty(), "6.12 waits for 5.10");
        in_order.booted([(0, Ok(0))].into_iter());
        assert_eq!(
            names(in_order.due()),
            ["5.10 booted", "6.1: the build failed", "6.12 booted"]
        );
        assert!(in_order.due().is_empty(), "each kernel comes back once");
        in_order.prepared("7.2", Ok(3));
        in_order.booted([(3, Err(failed("no boot")))].into_iter());
        assert_eq!(
            names(in_order.due()),
            ["7.2: no boot"],
            "a failed boot is its kernel's"
        );
    }
}
