//! Reading the guest's results file. Records are data: case names in them are only ever
//! compared with the plan's names, never used to build paths.

use std::collections::BTreeMap;

use protocol::{BootInfo, CaseResult, HelperAnswer, KfuncAnswer, ProgType, Record, SweepResult};
use serde::Serialize;

/// Console lines that mean the guest kernel died.
pub const PANIC_PATTERNS: &[&str] = &[
    "Kernel panic - not syncing",
    "BUG: kernel NULL pointer dereference",
];

/// Why a VM run did not end with every case recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "failure")]
pub enum RunFailure {
    /// The guest kernel panicked; `line` is the console's panic line.
    KernelPanic { line: String, case: Option<String> },
    /// The run's timeout expired; the guest was killed.
    Hang {
        case: Option<String>,
        timeout_secs: u64,
    },
    /// The harness stopped (crashed, was killed) without its end marker, the kernel alive.
    HarnessCrash { case: Option<String> },
    /// The harness never started: the VM or its init failed first.
    NoHarness,
    /// The results file breaks the protocol (e.g. two end markers).
    Protocol { problem: String },
}

impl RunFailure {
    /// Classifies a finished VM run from its records, the console, and whether it timed out.
    pub fn classify(
        records: &RunRecords,
        console: &str,
        timed_out: bool,
        timeout_secs: u64,
    ) -> Option<Self> {
        let case = records.unfinished.clone();
        if let Some(line) = console
            .lines()
            .find(|line| PANIC_PATTERNS.iter().any(|p| line.contains(p)))
        {
            return Some(RunFailure::KernelPanic {
                line: line.trim().to_owned(),
                case,
            });
        }
        if timed_out {
            return Some(RunFailure::Hang { case, timeout_secs });
        }
        if records.end_markers > 1 {
            return Some(RunFailure::Protocol {
                problem: format!("{} end markers (expected exactly one)", records.end_markers),
            });
        }
        match (records.boot.is_some(), records.end_markers, case) {
            (false, _, _) => Some(RunFailure::NoHarness),
            (true, 1, None) => None,
            (true, _, case) => Some(RunFailure::HarnessCrash { case }),
        }
    }

    /// What happened, in one line.
    pub fn describe(&self) -> String {
        let during = |case: &Option<String>| match case {
            Some(case) => format!(" while case `{case}` was running"),
            None => String::new(),
        };
        match self {
            RunFailure::KernelPanic { line, case } => {
                format!("kernel panic{}: {line}", during(case))
            }
            RunFailure::Hang { case, timeout_secs } => {
                format!(
                    "the guest hung{}; killed after the {timeout_secs}s timeout",
                    during(case)
                )
            }
            RunFailure::HarnessCrash { case } => format!("the harness crashed{}", during(case)),
            RunFailure::NoHarness => {
                "the harness never started (the VM or its init failed first)".into()
            }
            RunFailure::Protocol { problem } => {
                format!("the results break the protocol: {problem}")
            }
        }
    }
}

/// What a results file says, including how complete it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecords {
    pub boot: Option<BootInfo>,
    pub finished: BTreeMap<String, CaseResult>,
    /// The case that started last and never finished (it hung or crashed the guest).
    pub unfinished: Option<String>,
    pub end_markers: usize,
    /// Guest uptime (ms) at each case's start, in run order (a sharded run's shard by shard,
    /// each on its own VM's clock).
    pub case_starts: Vec<(String, u64)>,
    /// Guest milliseconds from each case's start to the next case's in the same VM, by case;
    /// none for a VM's last case, nor for its first, whose time is mostly the harness's
    /// one-time work (aya's and libbpf's feature probes, code run for the first time).
    pub case_ms: Vec<(String, u64)>,
    /// Helper probe answers by program type.
    pub helpers: BTreeMap<ProgType, Vec<HelperAnswer>>,
    /// Kfunc probe answers by program type.
    pub kfuncs: BTreeMap<ProgType, Vec<KfuncAnswer>>,
    /// Lines that are not records (a line cut short by a crash, or garbage).
    pub bad_lines: usize,
    /// Each sweep's results by its name, in plan order.
    pub sweeps: BTreeMap<String, SweepRecords>,
}

/// One sweep's records, joined from its batches.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepRecords {
    pub results: Vec<SweepResult>,
    /// Guest milliseconds the whole sweep took; `None`: it did not finish.
    pub done_ms: Option<u64>,
    pub notes: Vec<String>,
}

impl RunRecords {
    pub fn parse(text: &str) -> Self {
        let mut records = RunRecords::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Boot(info)) => records.boot = Some(info),
                Ok(Record::Started { case, uptime_ms }) => {
                    records.case_starts.push((case.clone(), uptime_ms));
                    records.unfinished = Some(case);
                }
                Ok(Record::Finished(result)) => {
                    if records.unfinished.as_deref() == Some(result.case.as_str()) {
                        records.unfinished = None;
                    }
                    records.finished.insert(result.case.clone(), *result);
                }
                Ok(Record::Helpers { prog_type, answers }) => {
                    records.helpers.insert(prog_type, answers);
                }
                Ok(Record::Kfuncs { prog_type, answers }) => {
                    records.kfuncs.insert(prog_type, answers);
                }
                Ok(Record::Sweep {
                    sweep,
                    results,
                    done_ms,
                    notes,
                }) => {
                    let entry = records.sweeps.entry(sweep).or_default();
                    entry.results.extend(results);
                    entry.done_ms = entry.done_ms.or(done_ms);
                    entry.notes.extend(notes);
                }
                Ok(Record::End { .. }) => records.end_markers += 1,
                Err(_) => records.bad_lines += 1,
            }
        }
        records.case_ms = (records.case_starts.windows(2).skip(1))
            .map(|pair| (pair[0].0.clone(), pair[1].1.saturating_sub(pair[0].1)))
            .collect();
        records
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn line(record: &Record) -> String {
        serde_json::to_string(record).unwrap() + "\n"
    }

    fn finished(case: &str) -> Record {
        Record::Finished(Box::new(crate::test_support::loaded(case)))
    }

    fn boot() -> Record {
        Record::Boot(BootInfo {
            kernel_release: "6.12".into(),
            modules: vec![],
            uptime_ms: 0,
        })
    }

    fn text(records: &[Record]) -> String {
        records.iter().map(line).collect()
    }

    #[test]
    fn a_complete_run_has_every_case_and_one_end_marker() {
        let records = RunRecords::parse(&text(&[
            boot(),
            Record::Started {
                case: "a".into(),
                uptime_ms: 0,
            },
            finished("a"),
            Record::End { cases: 1 },
        ]));
        assert_eq!(RunFailure::classify(&records, "", false, 300), None);
        assert!(records.finished.contains_key("a"));
    }

    #[test]
    fn a_crash_mid_case_names_the_case_and_keeps_earlier_results() {
        let mut text = text(&[
            boot(),
            Record::Started {
                case: "a".into(),
                uptime_ms: 0,
            },
            finished("a"),
            Record::Started {
                case: "b".into(),
                uptime_ms: 0,
            },
        ]);
        text.push_str("{\"record\":\"fini");
        let records = RunRecords::parse(&text);
        assert!(records.finished.contains_key("a"));
        assert_eq!(records.bad_lines, 1);
        let failure =
            RunFailure::classify(&records, "[ 1.0] harness: case b\n", false, 300).unwrap();
        assert_eq!(
            failure,
            RunFailure::HarnessCrash {
                case: Some("b".into())
            }
        );
        assert_eq!(
            failure.describe(),
            "the harness crashed while case `b` was running"
        );
    }

    #[test]
    fn a_panic_on_the_console_wins_and_names_the_case() {
        let records = RunRecords::parse(&text(&[
            boot(),
            Record::Started {
                case: "crash".into(),
                uptime_ms: 0,
            },
        ]));
        let console = "[ 2.1] sysrq: Trigger a crash\n[ 2.1] Kernel panic - not syncing: sysrq triggered crash\n";
        let failure = RunFailure::classify(&records, console, false, 300).unwrap();
        assert_eq!(
            failure.describe(),
            "kernel panic while case `crash` was running: [ 2.1] Kernel panic - not syncing: sysrq triggered crash"
        );
    }

    #[test]
    fn a_timeout_is_a_hang_of_the_running_case() {
        let records = RunRecords::parse(&text(&[
            boot(),
            Record::Started {
                case: "sleepy".into(),
                uptime_ms: 0,
            },
        ]));
        let failure = RunFailure::classify(&records, "", true, 60).unwrap();
        assert_eq!(
            failure,
            RunFailure::Hang {
                case: Some("sleepy".into()),
                timeout_secs: 60
            }
        );
    }

    #[test]
    fn missing_or_duplicated_end_markers_are_errors() {
        assert_eq!(
            RunFailure::classify(&RunRecords::parse(""), "", false, 1),
            Some(RunFailure::NoHarness)
        );
        let no_end = RunRecords::parse(&text(&[boot()]));
        assert_eq!(
            RunFailure::classify(&no_end, "", false, 1),
            Some(RunFailure::HarnessCrash { case: None })
        );
        let twice = RunRecords::parse(&text(&[
            boot(),
            Record::End { cases: 0 },
            Record::End { cases: 0 },
        ]));
        let failure = RunFailure::classify(&twice, "", false, 1).unwrap();
        assert!(
            failure.describe().contains("2 end markers"),
            "{}",
            failure.describe()
        );
    }
}
