//! BPF helper availability, measured rather than claimed: the helper list is read from the
//! tested tree's own `include/uapi/linux/bpf.h` (`__BPF_FUNC_MAPPER` up to 6.0, with ids
//! implied by order; `___BPF_FUNC_MAPPER` from 6.1, with explicit ids), the guest loads a
//! minimal program calling each helper for each program type, and the verifier's answer is
//! classified here.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use protocol::{HelperAnswer, HelperProbe, KfuncAnswer, ProgType, PROBED_PROG_TYPES};
use serde::{Deserialize, Serialize};

use crate::cases::CaseOutcome;
use crate::guest::results::{RunFailure, RunRecords};
use crate::judge::compare::describe;
use crate::judge::snapshots::Store;

/// Snapshot names of the probe rows (a leading `_` keeps them apart from case names).
pub const PROBE_HELPERS: &str = "_helpers";
pub const PROBE_KFUNC: &str = "_kfunc";
const HELPERS_DESCRIPTION: &str = "Which helpers raw_tp.w and raw_tp may call (one load per helper id of this tree's uapi header).";
const KFUNC_DESCRIPTION: &str = "raw_tp.w / raw_tp programs calling vmlinux kfuncs (a generic pair, a test-run-only one): what the verifier says.";

/// What the verifier said about a helper for one program type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// The verifier knows the helper for this type (whatever else it complained about).
    Available,
    /// Unknown to the kernel, or not allowed for this program type.
    NotAvailable,
}

/// Verifier messages that mean "this type cannot call this helper".
const NOT_AVAILABLE: &[&str] = &[
    "unknown func",
    "invalid func",
    "program of this type cannot use helper",
];

/// Classifies one probe from the load's errno and the verifier log.
pub fn classify(loaded: bool, verifier_log: &str) -> Availability {
    if !loaded && NOT_AVAILABLE.iter().any(|m| verifier_log.contains(m)) {
        Availability::NotAvailable
    } else {
        Availability::Available
    }
}

/// A helper as the table names it: `map_lookup_elem (1)`. Ordered by name, like the text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct HelperKey {
    pub name: String,
    pub id: u32,
}

impl From<HelperKey> for String {
    fn from(key: HelperKey) -> String {
        format!("{} ({})", key.name, key.id)
    }
}

impl TryFrom<String> for HelperKey {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let parsed = text
            .strip_suffix(')')
            .and_then(|rest| rest.rsplit_once(" ("));
        match parsed {
            Some((name, id)) => Ok(HelperKey {
                name: name.to_owned(),
                id: id
                    .parse()
                    .map_err(|_| format!("`{text}`: the id is not a number"))?,
            }),
            None => Err(format!("`{text}` is not `<helper> (<id>)`")),
        }
    }
}

/// Which of raw_tp.w / raw_tp may call a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    #[serde(rename = "both")]
    Both,
    #[serde(rename = "raw_tp.w only")]
    WritableOnly,
    #[serde(rename = "raw_tp only")]
    PlainOnly,
    #[serde(rename = "neither")]
    Neither,
    #[serde(rename = "not probed")]
    NotProbed,
}

impl Access {
    fn cell(self) -> &'static str {
        match self {
            Access::Both => "both",
            Access::WritableOnly => "raw_tp.w only",
            Access::PlainOnly => "raw_tp only",
            Access::Neither => "neither",
            Access::NotProbed => "not probed",
        }
    }
}

/// Every helper of a kernel → who may call it, as snapshotted.
pub type Table = BTreeMap<HelperKey, Access>;

/// The table of one kernel from its probe answers.
pub fn table(probes: &[HelperProbe], answers: &BTreeMap<ProgType, Vec<HelperAnswer>>) -> Table {
    let available = |prog_type: ProgType, id: u32| {
        answers
            .get(&prog_type)
            .and_then(|list| list.iter().find(|a| a.id == id))
            .map(|a| classify(a.loaded, &a.message) == Availability::Available)
    };
    probes
        .iter()
        .map(|probe| {
            let access = match (
                available(ProgType::RawTracepointWritable, probe.id),
                available(ProgType::RawTracepoint, probe.id),
            ) {
                (Some(true), Some(true)) => Access::Both,
                (Some(true), Some(false)) => Access::WritableOnly,
                (Some(false), Some(true)) => Access::PlainOnly,
                (Some(false), Some(false)) => Access::Neither,
                _ => Access::NotProbed,
            };
            let key = HelperKey {
                name: probe.name.clone(),
                id: probe.id,
            };
            (key, access)
        })
        .collect()
}

/// The kfunc probe of one kernel, as snapshotted: per program type and kfunc sequence, what
/// the verifier said (`-` where this kernel's BTF lacks the kfuncs).
pub fn kfunc_summary(kfuncs: &BTreeMap<ProgType, Vec<KfuncAnswer>>) -> BTreeMap<String, String> {
    kfuncs
        .iter()
        .flat_map(|(type_name, answers)| {
            answers.iter().map(move |answer| {
                let said = match (answer.present, answer.message.is_empty()) {
                    (false, _) => "- (not in this kernel's BTF)".to_owned(),
                    (true, true) => describe(&answer.outcome),
                    (true, false) => format!("{} ({})", describe(&answer.outcome), answer.message),
                };
                (format!("{type_name} {}", answer.kfuncs), said)
            })
        })
        .collect()
}

/// A Markdown table helper × kernel from each kernel's table.
pub fn markdown(tables: &BTreeMap<String, Table>, kernel_order: &[String]) -> String {
    let kernels: Vec<&String> = kernel_order
        .iter()
        .filter(|k| tables.contains_key(*k))
        .collect();
    let mut helpers: Vec<&HelperKey> = tables.values().flat_map(|t| t.keys()).collect();
    helpers.sort_by_key(|key| (key.id, &key.name));
    helpers.dedup();
    let mut out = String::from(
        "<!-- Generated by `cargo xtask vmtest` from tests/snapshots/<kernel>/_helpers.snap: do not edit. -->\n\
         # Helpers callable from raw_tp.w (and raw_tp), measured\n\n\
         Each cell: which of BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE (`raw_tp.w`) and\n\
         BPF_PROG_TYPE_RAW_TRACEPOINT (`raw_tp`) the verifier lets call the helper on that kernel\n\
         (`both`, `raw_tp.w only`, `raw_tp only`, `neither`; `-` = the kernel has no such helper).\n\n",
    );
    out.push_str(&format!(
        "| helper | {} |\n|---|{}\n",
        kernels
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(kernels.len())
    ));
    for helper in helpers {
        let cells: Vec<&str> = kernels
            .iter()
            .map(|k| tables[*k].get(helper).map_or("-", |access| access.cell()))
            .collect();
        let name = String::from(helper.clone());
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    out
}

/// Where the generated Markdown goes.
pub const DOC: &str = "docs/helpers.md";

/// The Markdown generated from every kernel's `_helpers` snapshot, in manifest order.
pub fn doc_from_snapshots(paths: &crate::infra::paths::Paths) -> Result<String> {
    let kernels = crate::kernel::manifest::Catalog::new(&paths.kernels()).names()?;
    let mut tables = BTreeMap::new();
    for kernel in &kernels {
        let store = Store::new(&paths.snapshots(kernel));
        let Some(body) = store.contents(PROBE_HELPERS)? else {
            continue;
        };
        let table = parse_snapshot(&body)
            .with_context(|| format!("reading {}", store.path(PROBE_HELPERS).display()))?;
        tables.insert(kernel.clone(), table);
    }
    Ok(markdown(&tables, &kernels))
}

/// Regenerates [`DOC`] from the snapshots.
pub fn write_doc(paths: &crate::infra::paths::Paths) -> Result<()> {
    let doc = paths.root.join(DOC);
    std::fs::create_dir_all(doc.parent().expect("docs/ has a parent"))?;
    std::fs::write(&doc, doc_from_snapshots(paths)?)
        .with_context(|| format!("writing {}", doc.display()))
}

/// The table in the body of a `_helpers` snapshot.
fn parse_snapshot(body: &str) -> Result<Table> {
    #[derive(Deserialize)]
    struct ProbeRow {
        probe: Table,
    }
    Ok(serde_norway::from_str::<ProbeRow>(body)?.probe)
}

/// The probe rows of one run, named and described for their snapshots: the helper table and
/// the kfunc answers, or why they were not recorded.
pub fn probe_outcomes(
    probes: &[HelperProbe],
    records: &RunRecords,
    failure: Option<&RunFailure>,
) -> Vec<(&'static str, &'static str, CaseOutcome)> {
    let complete = records.helpers.len() == PROBED_PROG_TYPES.len();
    let outcome = |value: serde_json::Value| match (complete, failure) {
        (true, _) => CaseOutcome::Probe(value),
        (false, Some(failure)) => CaseOutcome::NotRun {
            reason: failure.describe(),
        },
        (false, None) => CaseOutcome::NotRun {
            reason: "the probes were not recorded".into(),
        },
    };
    let helpers = serde_json::to_value(table(probes, &records.helpers));
    let kfuncs = serde_json::to_value(kfunc_summary(&records.kfuncs));
    vec![
        (
            PROBE_HELPERS,
            HELPERS_DESCRIPTION,
            outcome(helpers.expect("a table of strings serialises")),
        ),
        (
            PROBE_KFUNC,
            KFUNC_DESCRIPTION,
            outcome(kfuncs.expect("a table of strings serialises")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn answer(id: u32, loaded: bool, message: &str) -> HelperAnswer {
        HelperAnswer {
            id,
            loaded,
            errno: if loaded { 0 } else { 13 },
            message: message.into(),
        }
    }

    #[test]
    fn the_table_says_which_type_may_call_what() {
        let probes = vec![
            HelperProbe {
                id: 1,
                name: "map_lookup_elem".into(),
            },
            HelperProbe {
                id: 46,
                name: "get_socket_cookie".into(),
            },
        ];
        let answers = BTreeMap::from([
            (
                ProgType::RawTracepointWritable,
                vec![
                    answer(1, false, "R1 type=scalar expected=map_ptr"),
                    answer(
                        46,
                        false,
                        "program of this type cannot use helper bpf_get_socket_cookie#46",
                    ),
                ],
            ),
            (
                ProgType::RawTracepoint,
                vec![
                    answer(1, false, "R1 type=scalar expected=map_ptr"),
                    answer(46, false, "unknown func bpf_get_socket_cookie#46"),
                ],
            ),
        ]);
        let table = table(&probes, &answers);
        let key = |name: &str, id| HelperKey {
            name: name.into(),
            id,
        };
        assert_eq!(table[&key("map_lookup_elem", 1)], Access::Both);
        assert_eq!(table[&key("get_socket_cookie", 46)], Access::Neither);

        let tables = BTreeMap::from([
            ("6.12".to_owned(), table.clone()),
            ("5.10".to_owned(), table),
        ]);
        let doc = markdown(&tables, &["5.10".into(), "6.1".into(), "6.12".into()]);
        assert!(
            doc.contains(
                "| helper | 5.10 | 6.12 |\n|---|---|---|\n| map_lookup_elem (1) | both | both |\n"
            ),
            "{doc}"
        );
    }

    #[test]
    fn snapshots_are_read_back() {
        let body =
            "---\nprobe:\n  map_lookup_elem (1): both\n  \"trace_printk (6)\": raw_tp only\n";
        let table = parse_snapshot(body).unwrap();
        let keys: Vec<String> = table.keys().cloned().map(String::from).collect();
        assert_eq!(keys, ["map_lookup_elem (1)", "trace_printk (6)"]);
        assert_eq!(
            table.values().copied().collect::<Vec<_>>(),
            [Access::Both, Access::PlainOnly]
        );
        assert!(parse_snapshot("probe:\n  no id: both\n").is_err());
        assert!(parse_snapshot("ran: {}").is_err());
    }

    #[rstest]
    #[case(
        false,
        "0: (85) call bpf_xyz#300\nunknown func bpf_xyz#300",
        Availability::NotAvailable
    )]
    #[case(false, "invalid func unknown#300", Availability::NotAvailable)]
    #[case(
        false,
        "program of this type cannot use helper bpf_get_socket_cookie#46",
        Availability::NotAvailable
    )]
    #[case(false, "R1 type=scalar expected=map_ptr", Availability::Available)]
    #[case(
        false,
        "cannot call GPL-restricted function from non-GPL compatible program",
        Availability::Available
    )]
    #[case(true, "processed 7 insns", Availability::Available)]
    fn verifier_answers_are_classified(
        #[case] loaded: bool,
        #[case] log: &str,
        #[case] expected: Availability,
    ) {
        assert_eq!(classify(loaded, log), expected);
    }
}
