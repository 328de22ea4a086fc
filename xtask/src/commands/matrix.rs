//! Booting a matrix's kernels side by side: how many VMs at once, and the reports put back
//! in matrix order whatever order the VMs end in.

use std::collections::BTreeMap;

use crate::guest::boot;
use crate::infra::failure::SetupFailure;
use crate::infra::machine;
use crate::report::{KernelReport, Rows};

/// VMs per core. A VM does not keep its core busy all the time (9p round trips, QEMU's I/O
/// thread, the host judging the kernel before it), and with one per core a slot idles while
/// the other finishes the slowest kernel. Four kernels on two cores, interleaved runs (n=6
/// each): one per core 10.5 s median, two per core 9.6 s; three slots 11.3 s, because the
/// fourth kernel then boots alone at the end.
const VMS_PER_CORE: usize = 2;

/// How many VMs boot at once: [`VMS_PER_CORE`] per core, no more than memory holds (the
/// guest's memory plus what QEMU needs around it), no more than there are kernels.
pub fn boot_slots(kernels: usize, cores: usize, available_mib: u64) -> usize {
    let per_vm_mib = boot::GUEST_MEMORY_MIB + boot::QEMU_OVERHEAD_MIB;
    let by_memory = usize::try_from(available_mib / per_vm_mib).unwrap_or(usize::MAX);
    let by_cores = cores.saturating_mul(VMS_PER_CORE);
    kernels.min(by_cores).min(by_memory).max(1)
}

/// [`boot_slots`] for this machine now.
pub fn default_boot_slots(kernels: usize) -> usize {
    boot_slots(
        kernels,
        machine::available_cores(),
        machine::available_memory_mib(),
    )
}

/// The kernels of a run in matrix order: prepared, booted (in any order), then reported in
/// order, each printed as soon as it can be.
pub struct InOrder<P, V> {
    prepared: Vec<(String, Option<Result<P, SetupFailure>>)>,
    booted: BTreeMap<usize, Result<V, SetupFailure>>,
    pub reports: Vec<KernelReport>,
    /// Which rows each kernel's table shows.
    pub rows: Rows,
}

impl<P, V> Default for InOrder<P, V> {
    fn default() -> Self {
        Self {
            prepared: Vec::new(),
            booted: BTreeMap::new(),
            reports: Vec::new(),
            rows: Rows::All,
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

    /// Judges (`finish`) and prints every kernel whose turn has come and whose VM is done.
    pub fn report(&mut self, mut finish: impl FnMut(P, V) -> Result<KernelReport, SetupFailure>) {
        loop {
            let index = self.reports.len();
            let Some((kernel, ready)) = self.prepared.get_mut(index) else {
                return;
            };
            if matches!(ready, Some(Ok(_))) && !self.booted.contains_key(&index) {
                return;
            }
            let outcome = match ready.take().expect("a kernel is reported once") {
                Ok(ready) => (self.booted.remove(&index).expect("its VM is done"))
                    .and_then(|vm| finish(ready, vm)),
                Err(failure) => Err(failure),
            };
            let report =
                outcome.unwrap_or_else(|failure| KernelReport::setup_failure(kernel, failure));
            eprint!("\n{}", report.render_with(self.rows));
            self.reports.push(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::one_kernel(1, 8, 64_000, 1)]
    #[case::two_slots_per_core(4, 2, 64_000, 4)]
    #[case::more_kernels_than_slots(8, 2, 64_000, 4)]
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
    fn reports_come_in_matrix_order_whatever_order_the_vms_end_in() {
        let mut in_order = InOrder::<u32, u32>::default();
        let finish = |ready: u32, vm: u32| {
            assert_eq!(ready, vm, "each kernel is judged with its own VM");
            Ok(KernelReport::setup_failure(
                &format!("judged {vm}"),
                failed(""),
            ))
        };
        let names = |o: &InOrder<u32, u32>| -> Vec<String> {
            o.reports.iter().map(|r| r.kernel.clone()).collect()
        };
        in_order.prepared("5.10", Ok(0));
        in_order.prepared("6.1", Err(failed("the build failed")));
        in_order.prepared("6.12", Ok(2));
        in_order.booted([(2, Ok(2))].into_iter());
        in_order.report(finish);
        assert!(in_order.reports.is_empty(), "6.12 waits for 5.10");
        in_order.booted([(0, Ok(0))].into_iter());
        in_order.report(finish);
        assert_eq!(names(&in_order), ["judged 0", "6.1", "judged 2"]);
        in_order.prepared("7.2", Ok(3));
        in_order.booted([(3, Err(failed("no boot")))].into_iter());
        in_order.report(finish);
        assert_eq!(
            in_order.reports[3].kernel, "7.2",
            "a failed boot is its kernel's"
        );
    }
}
