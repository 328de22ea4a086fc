//! Reading the guest's results file. Records are data: case names in them are only ever
//! compared with the plan's names, never used to build paths.

use std::collections::BTreeMap;

use protocol::{BootInfo, CaseResult, Record};

/// What a results file says, including how complete it is.
#[derive(Debug, Default, PartialEq)]
pub struct RunRecords {
    pub boot: Option<BootInfo>,
    pub finished: BTreeMap<String, CaseResult>,
    /// The case that started last and never finished (it hung or crashed the guest).
    pub unfinished: Option<String>,
    pub end_markers: usize,
    /// Lines that are not records (a line cut short by a crash, or garbage).
    pub bad_lines: usize,
}

impl RunRecords {
    pub fn parse(text: &str) -> Self {
        let mut records = RunRecords::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Boot(info)) => records.boot = Some(info),
                Ok(Record::Started { case }) => records.unfinished = Some(case),
                Ok(Record::Finished(result)) => {
                    if records.unfinished.as_deref() == Some(result.case.as_str()) {
                        records.unfinished = None;
                    }
                    records.finished.insert(result.case.clone(), result);
                }
                Ok(Record::End { .. }) => records.end_markers += 1,
                Err(_) => records.bad_lines += 1,
            }
        }
        records
    }

    /// Why the run cannot be trusted as complete, if it cannot.
    pub fn incomplete_reason(&self) -> Option<String> {
        match (self.end_markers, &self.unfinished) {
            (_, Some(case)) => Some(format!("the guest stopped while case `{case}` was running")),
            (0, None) if self.boot.is_none() => {
                Some("the harness never started (no records)".into())
            }
            (0, None) => Some("the harness stopped before its end marker".into()),
            (1, None) => None,
            (n, None) => Some(format!("{n} end markers (expected exactly one)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::{LoadReport, Outcome, Phase};

    use super::*;

    fn line(record: &Record) -> String {
        serde_json::to_string(record).unwrap() + "\n"
    }

    fn finished(case: &str) -> Record {
        Record::Finished(CaseResult {
            case: case.into(),
            phase: Phase::Loaded,
            load: LoadReport {
                outcome: Outcome::ok(),
                prog_type: 24,
                insn_count: 1,
                verifier_log: String::new(),
            },
            steps: vec![],
        })
    }

    fn boot() -> Record {
        Record::Boot(BootInfo {
            kernel_release: "6.12".into(),
            modules: vec![],
        })
    }

    #[test]
    fn a_complete_run_has_every_case_and_one_end_marker() {
        let text = [
            boot(),
            Record::Started { case: "a".into() },
            finished("a"),
            Record::End { cases: 1 },
        ]
        .iter()
        .map(line)
        .collect::<String>();
        let records = RunRecords::parse(&text);
        assert_eq!(records.incomplete_reason(), None);
        assert!(records.finished.contains_key("a"));
    }

    #[test]
    fn a_crash_mid_case_names_the_case_and_keeps_earlier_results() {
        let mut text = [
            boot(),
            Record::Started { case: "a".into() },
            finished("a"),
            Record::Started { case: "b".into() },
        ]
        .iter()
        .map(line)
        .collect::<String>();
        text.push_str("{\"record\":\"fini");
        let records = RunRecords::parse(&text);
        assert!(records.finished.contains_key("a"));
        assert_eq!(records.bad_lines, 1);
        assert_eq!(
            records.incomplete_reason().unwrap(),
            "the guest stopped while case `b` was running"
        );
    }

    #[test]
    fn missing_or_duplicated_end_markers_are_errors() {
        assert!(RunRecords::parse("")
            .incomplete_reason()
            .unwrap()
            .contains("never started"));
        let no_end = line(&boot());
        assert!(RunRecords::parse(&no_end)
            .incomplete_reason()
            .unwrap()
            .contains("before its end marker"));
        let twice = [boot(), Record::End { cases: 0 }, Record::End { cases: 0 }]
            .iter()
            .map(line)
            .collect::<String>();
        assert!(RunRecords::parse(&twice)
            .incomplete_reason()
            .unwrap()
            .contains("2 end markers"));
    }
}
