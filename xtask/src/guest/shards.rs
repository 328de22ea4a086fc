//! One kernel's plan split over several VMs of that kernel, booted side by side, and their
//! records joined again. Under TCG a VM keeps one host core busy; a run of one kernel on a
//! machine with more cores would leave the others idle while the cases run one after another.
//! Each shard is a whole run of its own (its kernel booted afresh, the modules loaded, its
//! share of the cases, sweeps and probes), so a case sees exactly what it sees unsharded;
//! only which VM runs it changes. Pure: [`count`], [`split`] and [`merge`] decide, boot.rs
//! boots.

use std::collections::BTreeMap;

use protocol::{Plan, PROBED_PROG_TYPES};

use crate::guest::results::{RunFailure, RunRecords};

/// Below this much work (in cases; [`work`]) a shard's boot costs more than it saves.
pub const MIN_WORK_PER_SHARD: usize = 16;

/// How many shards a plan gets: one VM per core the run leaves free (`cores` over the kernels
/// booting at once), no more than `vm_limit` VMs and memory allow, no more than its work fills
/// and never one without a piece of its own (a lone sweep is one piece). A shell's run is
/// never split (it ends in one interactive guest).
pub fn count(plan: &Plan, cores: usize, kernels: usize, vm_limit: usize) -> usize {
    if plan.shell {
        return 1;
    }
    let free = cores / kernels.max(1);
    let by_work = work(plan) / MIN_WORK_PER_SHARD;
    let pieces = plan.cases.len() + plan.sweeps.len() + usize::from(!plan.helper_probes.is_empty());
    (free.min(vm_limit / kernels.max(1)))
        .min(by_work)
        .min(pieces)
        .max(1)
}

/// A plan's work in cases: what [`split`] weighs it at with nothing measured, over what a
/// case costs then (a case is one; a sweep and the helper probes count as the cases they take
/// as long as).
pub fn work(plan: &Plan) -> usize {
    let unmeasured = Costs::default();
    let ms = plan
        .cases
        .iter()
        .map(|c| unmeasured.case(&c.name))
        .sum::<u64>()
        + plan.sweeps.iter().map(Costs::sweep).sum::<u64>()
        + Costs::probes(plan);
    usize::try_from(ms / DEFAULT_CASE_MS).unwrap_or(usize::MAX)
}

/// What each piece of a plan costs in guest milliseconds, as the kernel's last run measured
/// its cases (a case it did not run, or the last of a VM, costs the median of those it did);
/// a sweep and the probes by their size.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    case_ms: BTreeMap<String, u64>,
    median_ms: u64,
}

/// What a case costs with nothing measured: about the median under TCG.
const DEFAULT_CASE_MS: u64 = 40;
/// A sweep's program: loaded, attached, fired, detached, under the interpreter too.
const SWEEP_PROGRAM_MS: u64 = 1;
/// One helper probed for one program type.
const PROBE_MS: u64 = 3;

impl Costs {
    /// The costs a run's records measured.
    pub fn of(records: &RunRecords) -> Self {
        let case_ms: BTreeMap<String, u64> = records.case_ms.iter().cloned().collect();
        let mut all: Vec<u64> = case_ms.values().copied().collect();
        all.sort_unstable();
        let median_ms = all.get(all.len() / 2).copied().unwrap_or(DEFAULT_CASE_MS);
        Costs { case_ms, median_ms }
    }

    fn case(&self, name: &str) -> u64 {
        let fallback = match self.median_ms {
            0 => DEFAULT_CASE_MS,
            median => median,
        };
        self.case_ms.get(name).copied().unwrap_or(fallback)
    }

    fn sweep(sweep: &protocol::SweepPlan) -> u64 {
        sweep.programs.len() as u64 * SWEEP_PROGRAM_MS
    }

    fn probes(plan: &Plan) -> u64 {
        (plan.helper_probes.len() * PROBED_PROG_TYPES.len()) as u64 * PROBE_MS
    }
}

/// `plan` split into `shards` plans of about equal cost: the longest piece first, each to the
/// shard with the least so far (the earliest on a tie), as `costs` estimates them; within a
/// shard the cases and sweeps keep the plan's order. Every shard loads the same modules.
/// Deterministic.
pub fn split(plan: &Plan, shards: usize, costs: &Costs) -> Vec<Plan> {
    enum Piece<'p> {
        Case(&'p protocol::CasePlan),
        Sweep(&'p protocol::SweepPlan),
        Probes,
    }
    let shards = shards.max(1);
    let mut pieces: Vec<(u64, usize, Piece)> = Vec::new();
    if !plan.helper_probes.is_empty() {
        pieces.push((Costs::probes(plan), 0, Piece::Probes));
    }
    for (at, sweep) in plan.sweeps.iter().enumerate() {
        pieces.push((Costs::sweep(sweep), at, Piece::Sweep(sweep)));
    }
    for (at, case) in plan.cases.iter().enumerate() {
        pieces.push((costs.case(&case.name), at, Piece::Case(case)));
    }
    // Longest first; equal costs in plan order (a stable sort keeps it).
    pieces.sort_by_key(|(cost, _, _)| std::cmp::Reverse(*cost));
    let mut load = vec![0u64; shards];
    let mut chosen: Vec<Vec<(usize, &Piece)>> = (0..shards).map(|_| Vec::new()).collect();
    for (cost, at, piece) in &pieces {
        let shard = (0..shards)
            .min_by_key(|&shard| (load[shard], shard))
            .unwrap_or(0);
        load[shard] += cost;
        chosen[shard].push((*at, piece));
    }
    chosen
        .into_iter()
        .map(|mut mine| {
            mine.sort_by_key(|(at, _)| *at);
            let mut part = Plan {
                cases: Vec::new(),
                helper_probes: Vec::new(),
                sweeps: Vec::new(),
                ..plan.clone()
            };
            for (_, piece) in mine {
                match piece {
                    Piece::Case(case) => part.cases.push((*case).clone()),
                    Piece::Sweep(sweep) => part.sweeps.push((*sweep).clone()),
                    Piece::Probes => part.helper_probes = plan.helper_probes.clone(),
                }
            }
            part
        })
        .collect()
}

/// The shards' records as one run's: every case, sweep and probe answer of every shard; the
/// boot as the first shard saw it; how the run ended as the first shard that did not end well
/// says (each shard's failure is classified on its own records and console).
pub fn merge(parts: Vec<(RunRecords, Option<RunFailure>)>) -> (RunRecords, Option<RunFailure>) {
    let mut joined = RunRecords::default();
    let mut failure = None;
    let mut end_markers = Vec::new();
    for (records, part_failure) in parts {
        joined.boot = joined.boot.or(records.boot);
        joined.finished.extend(records.finished);
        joined.unfinished = joined.unfinished.or(records.unfinished);
        end_markers.push(records.end_markers);
        joined.case_starts.extend(records.case_starts);
        joined.case_ms.extend(records.case_ms);
        joined.helpers.extend(records.helpers);
        joined.kfuncs.extend(records.kfuncs);
        joined.bad_lines += records.bad_lines;
        joined.sweeps.extend(records.sweeps);
        failure = failure.or(part_failure);
    }
    // One end marker when every shard wrote one; otherwise the count of the shard that did not.
    joined.end_markers = match end_markers.iter().all(|&markers| markers == 1) {
        true => 1,
        false => (end_markers.into_iter())
            .find(|&markers| markers != 1)
            .unwrap_or_default(),
    };
    (joined, failure)
}

/// The directory of shard `index` inside its run directory.
pub fn dir_name(index: usize) -> String {
    format!("shard-{index}")
}

#[cfg(test)]
mod tests {
    use protocol::{CasePlan, HelperProbe, ProgType, ProgramSource, SweepPlan, SweepProgram};
    use rstest::rstest;

    use super::*;

    fn case(name: &str) -> CasePlan {
        CasePlan {
            name: name.into(),
            source: ProgramSource::object("/objects/noop.o", None),
            globals: Default::default(),
            prog_flags: 0,
            log_level: None,
            steps: Vec::new(),
        }
    }

    fn sweep(name: &str, programs: usize) -> SweepPlan {
        let program = SweepProgram {
            name: "p".into(),
            prog_type: ProgType::RawTracepointWritable,
            insns: Vec::new(),
            prog_array_at: None,
            callee: None,
            fire: false,
        };
        SweepPlan {
            name: name.into(),
            tracepoint: "bpf_test_finish".into(),
            programs: vec![program; programs],
            interpreter: false,
            trigger: Default::default(),
        }
    }

    fn plan(cases: usize) -> Plan {
        Plan {
            modules: vec!["/m/bpf_testmod.ko".into()],
            tracepoint_names: Default::default(),
            cases: (0..cases).map(|i| case(&format!("c{i:02}"))).collect(),
            helper_probes: Vec::new(),
            shell: false,
            sweeps: Vec::new(),
        }
    }

    #[rstest]
    #[case::one_kernel_two_cores(62, 2, 1, 8, 2)]
    #[case::more_cores_than_work(62, 8, 1, 8, 3)]
    #[case::four_kernels_two_cores(62, 2, 4, 8, 1)]
    #[case::few_cases(20, 2, 1, 8, 1)]
    #[case::vms_limited(62, 2, 1, 1, 1)]
    #[case::one_core(62, 1, 1, 8, 1)]
    fn one_vm_per_free_core_as_the_work_fills_them(
        #[case] cases: usize,
        #[case] cores: usize,
        #[case] kernels: usize,
        #[case] vm_limit: usize,
        #[case] expected: usize,
    ) {
        assert_eq!(count(&plan(cases), cores, kernels, vm_limit), expected);
    }

    #[test]
    fn a_lone_sweep_is_one_piece() {
        let mut lone = plan(0);
        lone.sweeps = vec![sweep("sweep.bpf_test_finish", 2158)];
        assert_eq!(count(&lone, 8, 1, 8), 1);
        lone.sweeps.push(sweep("sweep.nbd_send_request", 2601));
        assert_eq!(count(&lone, 8, 1, 8), 2);
    }

    #[test]
    fn a_shell_is_never_split() {
        let mut shell = plan(62);
        shell.shell = true;
        assert_eq!(count(&shell, 8, 1, 8), 1);
    }

    #[test]
    fn every_case_sweep_and_probe_lands_in_exactly_one_shard_in_plan_order() {
        let mut whole = plan(9);
        whole.sweeps = vec![sweep("sweep.a", 400), sweep("sweep.b", 2000)];
        whole.helper_probes = vec![HelperProbe {
            id: 1,
            name: "bpf_map_lookup_elem".into(),
        }];
        let parts = split(&whole, 2, &Costs::default());
        assert_eq!(parts.len(), 2);
        let names = |part: &Plan| {
            part.cases
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        let mut all: Vec<String> = parts.iter().flat_map(names).collect();
        all.sort();
        assert_eq!(all, names(&whole), "each case once");
        for part in &parts {
            let mine = names(part);
            let mut sorted = mine.clone();
            sorted.sort();
            assert_eq!(mine, sorted, "plan order kept within a shard");
            assert_eq!(part.modules, whole.modules, "every shard loads the modules");
        }
        // The big sweep alone outweighs everything else: the other shard takes the rest.
        assert_eq!(parts[0].sweeps.len() + parts[1].sweeps.len(), 2);
        let big = parts
            .iter()
            .position(|p| p.sweeps.iter().any(|s| s.name == "sweep.b"));
        let other = 1 - big.unwrap();
        assert_eq!(
            parts[other].cases.len(),
            9,
            "{:?}",
            parts.iter().map(work).collect::<Vec<_>>()
        );
        assert_eq!(
            parts.iter().filter(|p| !p.helper_probes.is_empty()).count(),
            1,
            "the probes run once"
        );
    }

    #[test]
    fn cases_alone_are_split_evenly() {
        let parts = split(&plan(7), 2, &Costs::default());
        assert_eq!(parts[0].cases.len(), 4);
        assert_eq!(parts[1].cases.len(), 3);
        assert_eq!(
            parts[0].cases[1].name, "c02",
            "alternating: c00 c02 c04 c06 | c01 c03 c05"
        );
    }

    #[test]
    fn measured_costs_balance_the_shards() {
        // c00 took as long as the other five together: it gets a VM of its own.
        let measured = records(&["c00", "c01", "c02", "c03", "c04", "c05"], 1);
        let mut costs = Costs::of(&measured);
        costs.case_ms = [
            ("c00", 500),
            ("c01", 100),
            ("c02", 100),
            ("c03", 100),
            ("c04", 100),
        ]
        .map(|(name, ms)| (name.to_string(), ms))
        .into();
        costs.median_ms = 100;
        let parts = split(&plan(6), 2, &costs);
        let names = |part: &Plan| {
            part.cases
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&parts[0]), ["c00"]);
        assert_eq!(
            names(&parts[1]),
            ["c01", "c02", "c03", "c04", "c05"],
            "c05: the median"
        );
    }

    #[test]
    fn the_costs_are_each_cases_time_to_the_next_case_in_its_vm() {
        let text = ["first:800", "a:1000", "b:1040", "c:1200"]
            .map(|entry| {
                let (case, ms) = entry.split_once(':').unwrap();
                format!("{{\"record\":\"started\",\"case\":\"{case}\",\"uptime_ms\":{ms}}}\n")
            })
            .concat();
        let costs = Costs::of(&RunRecords::parse(&text));
        assert_eq!((costs.case("a"), costs.case("b")), (40, 160));
        assert_eq!(costs.case("c"), 160, "a VM's last case: the median");
        assert_eq!(
            costs.case("first"),
            160,
            "nor the first, which carries the one-time work"
        );
    }

    fn records(cases: &[&str], end_markers: usize) -> RunRecords {
        let text: String = cases
            .iter()
            .map(|c| format!("{{\"record\":\"started\",\"case\":\"{c}\",\"uptime_ms\":1}}\n"))
            .collect();
        let mut records = RunRecords::parse(&text);
        records.end_markers = end_markers;
        records
    }

    #[test]
    fn merged_records_hold_every_shard_and_the_first_failure() {
        let crash = RunFailure::HarnessCrash {
            case: Some("b".into()),
        };
        let (joined, failure) = merge(vec![
            (records(&["a"], 1), None),
            (records(&["b"], 0), Some(crash.clone())),
        ]);
        assert_eq!(failure, Some(crash));
        assert_eq!(joined.end_markers, 0);
        assert_eq!(joined.case_starts.len(), 2);
        assert!(
            joined.case_ms.is_empty(),
            "no time runs from one VM's case to another's"
        );
        let (clean, none) = merge(vec![(records(&[], 1), None), (records(&[], 1), None)]);
        assert_eq!((clean.end_markers, none), (1, None));
    }
}
