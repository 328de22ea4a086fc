//! `docs/upstream.md`: per tree, upstream's writable tests (the record discovery keeps,
//! [`crate::cases::upstream_found`]), their form, upstream's expectation, what the kernel
//! answered (its `upstream.*` snapshots) and whether the two agree. Generated like
//! docs/helpers.md: `cargo xtask docs` writes it, an accepting run rewrites it, and
//! `tests/tests/docs.rs` fails when it is stale.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use protocol::CaseResult;

use crate::cases::upstream_found::{FoundTest, Record, TreeRecord, RECORD};
use crate::cases::{CaseOutcome, UPSTREAM_PREFIX};
use crate::infra::paths::Paths;
use crate::judge::compare::{describe, matches};
use crate::judge::snapshots::Store;

/// Where the generated Markdown goes.
pub const DOC: &str = "docs/upstream.md";

/// What one test came to on its kernel, from its snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It ran: the kernel's answer in words, and where it differs from upstream's expectation.
    Ran {
        said: String,
        differences: Vec<String>,
    },
    /// Not runnable here (as shipped, or the kernel lacks what it needs): the reason.
    NotRunnable(String),
    /// No snapshot yet.
    NoSnapshot,
}

/// The kernel's answer in words: `load EACCES “<verdict>”; attach: EINVAL`.
pub fn said(result: &CaseResult) -> String {
    let mut words = format!("load {}", describe(&result.load.outcome));
    if !result.load.outcome.is_ok() {
        let verdict = protocol::verifier_verdict(&result.load.verifier_log);
        if !verdict.is_empty() {
            words.push_str(&format!(" “{verdict}”"));
        }
    }
    for record in &result.steps {
        words.push_str(&format!(
            "; {}: {}",
            record.step.name(),
            describe(&record.outcome)
        ));
    }
    words
}

/// Where the kernel's answer differs from upstream's expectation (the loaders' agreement was
/// checked when the snapshot was accepted; the snapshot keeps only what the own loader saw).
pub fn differences(test: &FoundTest, result: &CaseResult) -> Vec<String> {
    let mut found = Vec::new();
    if !matches(&test.load, &result.load.outcome) {
        found.push(format!(
            "load: upstream expects {}, got {}",
            test.load,
            describe(&result.load.outcome)
        ));
    }
    for words in &test.log_contains {
        if !result.load.verifier_log.contains(words.as_str()) {
            found.push(format!("the log lacks “{words}”"));
        }
    }
    if test.steps.len() != result.steps.len() {
        found.push(format!(
            "{} checks expected, {} ran",
            test.steps.len(),
            result.steps.len()
        ));
    }
    for (spec, record) in test.steps.iter().zip(&result.steps) {
        if !matches(&spec.expect, &record.outcome) {
            found.push(format!(
                "{}: upstream expects {}, got {}",
                record.step.name(),
                spec.expect,
                describe(&record.outcome)
            ));
        }
    }
    found
}

/// One test's answer from its snapshot body (`None`: no snapshot).
pub fn answer(test: &FoundTest, body: Option<&str>) -> Result<Answer> {
    if let Some(reason) = &test.not_runnable {
        return Ok(Answer::NotRunnable(reason.clone()));
    }
    let Some(body) = body else {
        return Ok(Answer::NoSnapshot);
    };
    let outcome = parse(body)?;
    Ok(match outcome {
        CaseOutcome::Ran(result) => Answer::Ran {
            said: said(&result),
            differences: differences(test, &result),
        },
        CaseOutcome::Unsupported { reason } => Answer::NotRunnable(reason),
        CaseOutcome::CompileError { message } => Answer::NotRunnable(format!(
            "does not compile: {}",
            message.lines().next().unwrap_or("")
        )),
        CaseOutcome::NotRun { reason } => Answer::NotRunnable(format!("not run: {reason}")),
        CaseOutcome::Probe(_) => Answer::NoSnapshot,
    })
}

/// A snapshot's body as the outcome it was written from (YAML's `ran:` map is the enum's
/// external tag, which serde_json reads as such).
fn parse(body: &str) -> Result<CaseOutcome> {
    let value: serde_json::Value = serde_norway::from_str(body)?;
    Ok(serde_json::from_value(value)?)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The body of a kernel's snapshot (kernel, case name).
pub type SnapshotOf<'a> = dyn Fn(&str, &str) -> Result<Option<String>> + 'a;
/// A kernel's rows that are no test (an absent family), with their reasons.
pub type AbsentOf<'a> = dyn Fn(&str, &TreeRecord) -> Result<Vec<(String, String)>> + 'a;

/// The Markdown for every recorded kernel, in `kernel_order`; `snapshot(kernel, name)` is the
/// body of a snapshot, `absent(kernel)` upstream's rows of that kernel that are no test (a
/// family whose file the tree does not have), with their reasons.
pub fn markdown(
    record: &Record,
    kernel_order: &[String],
    snapshot: &SnapshotOf<'_>,
    absent: &AbsentOf<'_>,
) -> Result<String> {
    let mut summary = String::from(
        "| kernel | tests found | run | agreeing with upstream | not runnable |\n|---|---|---|---|---|\n",
    );
    let mut sections = String::new();
    for kernel in kernel_order {
        let Some(tree) = record.kernel.get(kernel) else {
            continue;
        };
        let (mut run, mut agreeing, mut not_runnable) = (0, 0, 0);
        let mut rows = String::new();
        let mut reasons = String::new();
        for test in &tree.test {
            let body = snapshot(kernel, &test.name)?;
            let answer = answer(test, body.as_deref())
                .with_context(|| format!("the {kernel} snapshot of {}", test.name))?;
            let short = test
                .name
                .strip_prefix(UPSTREAM_PREFIX)
                .unwrap_or(&test.name);
            let (answered, agrees) = match &answer {
                Answer::Ran { said, differences } => {
                    run += 1;
                    match differences.is_empty() {
                        true => {
                            agreeing += 1;
                            (said.clone(), "yes".to_owned())
                        }
                        false => (said.clone(), format!("**no**: {}", differences.join("; "))),
                    }
                }
                Answer::NotRunnable(reason) => {
                    not_runnable += 1;
                    reasons.push_str(&format!("- `{short}`: {}\n", reason.trim()));
                    ("not runnable (below)".to_owned(), "-".to_owned())
                }
                Answer::NoSnapshot => ("no snapshot yet".to_owned(), "-".to_owned()),
            };
            rows.push_str(&format!(
                "| `{short}` | {} `{}` | {} | {} | {} |\n",
                test.form.words(),
                test.file,
                cell(&test.expectation()),
                cell(&answered),
                cell(&agrees)
            ));
        }
        summary.push_str(&format!(
            "| {kernel} | {} | {run} | {agreeing} | {not_runnable} |\n",
            tree.test.len()
        ));
        sections.push_str(&format!("\n## {kernel}\n\nTree: `{}`.\n\n", tree.source));
        sections.push_str(
            "| test | form | upstream expects | the kernel answered | agrees |\n|---|---|---|---|---|\n",
        );
        sections.push_str(&rows);
        if !reasons.is_empty() {
            sections.push_str("\nNot runnable:\n\n");
            sections.push_str(&reasons);
        }
        let absent = absent(kernel, tree)?;
        if !absent.is_empty() {
            sections.push_str("\nNot in this tree:\n\n");
            for (name, reason) in absent {
                sections.push_str(&format!("- `{name}`: {reason}\n"));
            }
        }
    }
    Ok(format!(
        "<!-- Generated by `cargo xtask docs` from guest-programs/upstream/{RECORD} and \
         tests/snapshots/<kernel>/upstream.*.snap: do not edit. -->\n\
         # Upstream's writable-tracepoint tests, per tree\n\n\
         Every writable test each kernel's own tree ships in tools/testing/selftests/bpf, in the form \
         it ships it (annotated BPF C judged by its `__success`/`__failure`/`__msg` tags, a \
         test_verifier `struct bpf_test`, a prog_tests instruction array with its test code's \
         checks), upstream's expectation, what that kernel answered in this project's VM (its \
         snapshot), and whether the two agree. Discovery: `xtask/src/cases/upstream_found.rs`; \
         `cargo xtask vmtest --list` shows the same per tree.\n\n\
         {summary}{sections}"
    ))
}

/// The Markdown from the record and the snapshots, kernels in manifest order.
pub fn doc_from_snapshots(paths: &Paths) -> Result<String> {
    let kernels = crate::kernel::manifest::Catalog::new(&paths.kernels()).names()?;
    let record = Record::read(&paths.upstream_families().join(RECORD))?;
    let snapshot = |kernel: &str, name: &str| Store::new(&paths.snapshots(kernel)).contents(name);
    let absent = |kernel: &str, tree: &TreeRecord| -> Result<Vec<(String, String)>> {
        let mut rows = BTreeMap::new();
        let dir = paths.snapshots(kernel);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".snap") else {
                continue;
            };
            if !name.starts_with(UPSTREAM_PREFIX) || tree.test.iter().any(|t| t.name == name) {
                continue;
            }
            let Some(body) = Store::new(&dir).contents(name)? else {
                continue;
            };
            if let Ok(CaseOutcome::Unsupported { reason }) = parse(&body) {
                if reason.starts_with("absent") {
                    rows.insert(name.to_owned(), reason);
                }
            }
        }
        Ok(rows.into_iter().collect())
    };
    markdown(&record, &kernels, &snapshot, &absent)
}

/// Regenerates [`DOC`] from the record and the snapshots.
pub fn write_doc(paths: &Paths) -> Result<()> {
    let doc = paths.root.join(DOC);
    std::fs::create_dir_all(doc.parent().expect("docs/ has a parent"))?;
    std::fs::write(&doc, doc_from_snapshots(paths)?)
        .with_context(|| format!("writing {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::upstream::Form;
    use crate::cases::Expect;

    fn test(load: Expect) -> FoundTest {
        FoundTest {
            name: "upstream.f.t".into(),
            form: Form::TestVerifier,
            file: "verifier/f.c".into(),
            requires: vec![],
            load,
            log_contains: vec!["R6 invalid".into()],
            log_sequence: vec![],
            log_level: None,
            steps: vec![],
            not_runnable: None,
            expects: None,
        }
    }

    const REFUSED: &str = "ran:\n  case: upstream.f.t\n  phase: compiled\n  load:\n    outcome:\n      result: errno\n      errno: 13\n      name: EACCES\n    prog_type: 24\n    insn_count: 2\n    verifier_log: |-\n      0: (79) r6 = *(u64 *)(r1 +0)\n      R6 invalid mem access\n  steps: []\n";

    #[test]
    fn a_snapshot_is_judged_by_upstreams_expectation() {
        let agrees = answer(&test(Expect::Fails), Some(REFUSED)).unwrap();
        assert_eq!(
            agrees,
            Answer::Ran {
                said: "load EACCES “R6 invalid mem access”".into(),
                differences: vec![]
            }
        );
        let Answer::Ran { differences, .. } = answer(&test(Expect::Ok), Some(REFUSED)).unwrap()
        else {
            panic!()
        };
        assert_eq!(differences, ["load: upstream expects ok, got EACCES"]);
        assert_eq!(answer(&test(Expect::Ok), None).unwrap(), Answer::NoSnapshot);
        let unsupported = "unsupported:\n  reason: the kernel lacks nbd\n";
        assert_eq!(
            answer(&test(Expect::Ok), Some(unsupported)).unwrap(),
            Answer::NotRunnable("the kernel lacks nbd".into())
        );
    }

    #[test]
    fn the_doc_counts_per_tree() {
        let mut record = Record::default();
        let mut broken = test(Expect::Fails);
        broken.name = "upstream.f.u".into();
        broken.not_runnable = Some("not runnable here: a fill_helper".into());
        record
            .update("7.2", "debian:x=1", vec![test(Expect::Fails), broken])
            .unwrap();
        let snapshot =
            |_: &str, name: &str| Ok((name == "upstream.f.t").then(|| REFUSED.to_owned()));
        let absent = |_: &str, _: &TreeRecord| Ok(vec![]);
        let doc = markdown(&record, &["6.1".into(), "7.2".into()], &snapshot, &absent).unwrap();
        assert!(doc.contains("| 7.2 | 2 | 1 | 1 | 1 |\n"), "{doc}");
        assert!(!doc.contains("| 6.1 |"), "{doc}");
        assert!(
            doc.contains("- `f.u`: not runnable here: a fill_helper\n"),
            "{doc}"
        );
    }
}
