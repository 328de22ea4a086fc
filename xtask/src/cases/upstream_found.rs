//! Upstream's writable tests each tree holds, as discovery finds them, and the checked-in
//! record of what it found (`guest-programs/upstream/found.toml`).
//!
//! Discovery is [`upstream::members`], the very code a run takes its upstream cases from: the
//! annotated program files compiled with clang (objects kept by content, so a second call
//! compiles nothing), the instruction arrays expanded by small host programs built with `cc`.
//! No VM, a second or two per tree: cheap enough for `vmtest --list`.
//!
//! The record holds, per kernel, every test found with its form, file and upstream's
//! expectation. `cargo xtask docs` rewrites a kernel's entries from its fetched tree and
//! refuses to drop one (a renamed file or a broken extraction is noticed, not forgotten);
//! `tests/tests/upstream_found.rs` fails when discovery finds fewer than recorded;
//! `docs/upstream.md` is generated from the record and the snapshots.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cases::compile::Clang;
use crate::cases::upstream::{self, Family, Form};
use crate::cases::upstream_insns::SELFTESTS;
use crate::cases::{Case, CaseOutcome, CaseStep, Expect};

/// The record's file name, beside the families.
pub const RECORD: &str = upstream::FOUND_RECORD;

/// One of upstream's writable tests in one tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundTest {
    /// The case's name (`upstream.<file>.<test>`, `upstream.<function>`).
    pub name: String,
    pub form: Form,
    /// The file, relative to the selftests directory.
    pub file: String,
    /// Manifest features it needs (the prog_tests' tracepoints: nbd, bpf_testmod).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Upstream's expectation of the load, ...
    pub load: Expect,
    /// ... the words its log must contain, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_contains: Vec<String>,
    /// ... and the checks after it (prog_tests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CaseStep>,
    /// Why it cannot run here as shipped, when it cannot (decided without a boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_runnable: Option<String>,
}

impl FoundTest {
    /// Upstream's expectation in words: `load ok; attach: EINVAL`, `load refused, log: "..."`.
    pub fn expectation(&self) -> String {
        let mut words = match &self.load {
            Expect::Fails => "load refused".to_owned(),
            other => format!("load {other}"),
        };
        for message in &self.log_contains {
            words.push_str(&format!(", log: “{message}”"));
        }
        for step in &self.steps {
            words.push_str(&format!("; {}: {}", step.step.name(), step.expect));
        }
        words
    }

    /// The case the judge checks a snapshot of this test against.
    pub fn case(&self) -> Case {
        Case {
            name: self.name.clone(),
            description: String::new(),
            program: None,
            function: None,
            requires: self.requires.clone(),
            load: self.load.clone(),
            load_on: BTreeMap::new(),
            log_contains: self.log_contains.clone(),
            globals: BTreeMap::new(),
            flags: Vec::new(),
            source: None,
            insns: None,
            steps: self.steps.clone(),
        }
    }
}

/// Every writable test upstream ships in `tree`, in file order within each form.
pub fn discover(
    clang: &Clang<'_>,
    tree: &Path,
    families: &[Family],
    out_dir: &Path,
) -> Result<Vec<FoundTest>> {
    let members = upstream::members(clang, tree, families, out_dir)?;
    let tree_text = tree.display().to_string();
    let found = members.cases.iter().filter_map(|case| {
        let origin = members.origins.get(&case.name)?;
        let file = origin.file.strip_prefix(SELFTESTS).unwrap_or(&origin.file);
        let not_runnable = members
            .decided
            .get(&case.name)
            .map(|outcome| match outcome {
                CaseOutcome::Unsupported { reason } => reason.clone(),
                CaseOutcome::CompileError { message } => format!(
                    "does not compile here: {}",
                    message
                        .lines()
                        .next()
                        .unwrap_or("")
                        .replace(&tree_text, "<tree>")
                ),
                other => format!("{other:?}"),
            });
        Some(FoundTest {
            name: case.name.clone(),
            form: origin.form,
            file: file.display().to_string(),
            requires: case.requires.clone(),
            load: case.load.clone(),
            log_contains: case.log_contains.clone(),
            steps: case.steps.clone(),
            not_runnable,
        })
    });
    let mut found: Vec<FoundTest> = found.collect();
    found.sort_by_key(|test| test.form);
    Ok(found)
}

/// What one tree was found to hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeRecord {
    /// The source it was discovered in (`debian:linux-source-6.12=6.12.117-1~deb12u1`).
    pub source: String,
    #[serde(default)]
    pub test: Vec<FoundTest>,
}

/// The checked-in record: kernel name → what its tree holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    #[serde(default)]
    pub kernel: BTreeMap<String, TreeRecord>,
}

const HEADER: &str = "\
# Upstream's writable tests each kernel's tree holds, as discovery found them
# (xtask/src/cases/upstream_found.rs). Written by `cargo xtask docs` from the fetched trees,
# which never drops an entry; tests/tests/upstream_found.rs fails when discovery finds fewer.
# docs/upstream.md is generated from this file and the snapshots.

";

impl Record {
    /// The record at `path`; none recorded when the file is missing.
    pub fn read(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn render(&self) -> Result<String> {
        Ok(format!("{HEADER}{}", toml::to_string(self)?))
    }

    /// Replaces `kernel`'s entries with what discovery found, unless that lost a recorded
    /// test: then the names it lost.
    pub fn update(
        &mut self,
        kernel: &str,
        source: &str,
        found: Vec<FoundTest>,
    ) -> Result<(), Vec<String>> {
        let lost = self.lost(kernel, &found);
        if !lost.is_empty() {
            return Err(lost);
        }
        self.kernel.insert(
            kernel.to_owned(),
            TreeRecord {
                source: source.to_owned(),
                test: found,
            },
        );
        Ok(())
    }

    /// The recorded tests of `kernel` that `found` does not have.
    pub fn lost(&self, kernel: &str, found: &[FoundTest]) -> Vec<String> {
        let Some(recorded) = self.kernel.get(kernel) else {
            return Vec::new();
        };
        recorded
            .test
            .iter()
            .filter(|test| !found.iter().any(|f| f.name == test.name))
            .map(|test| format!("{} ({})", test.name, test.file))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(name: &str) -> FoundTest {
        FoundTest {
            name: name.into(),
            form: Form::TestVerifier,
            file: "verifier/raw_tp_writable.c".into(),
            requires: Vec::new(),
            load: Expect::Fails,
            log_contains: vec!["R6 invalid variable buffer offset".into()],
            steps: Vec::new(),
            not_runnable: None,
        }
    }

    #[test]
    fn the_record_never_drops_a_test_and_reads_back() {
        let mut record = Record::default();
        record
            .update(
                "6.1",
                "debian:x=1",
                vec![test("upstream.a"), test("upstream.b")],
            )
            .unwrap();
        let lost = record
            .update("6.1", "debian:x=2", vec![test("upstream.a")])
            .unwrap_err();
        assert_eq!(lost, ["upstream.b (verifier/raw_tp_writable.c)"]);
        record
            .update(
                "6.1",
                "debian:x=2",
                vec![test("upstream.b"), test("upstream.a"), test("upstream.c")],
            )
            .unwrap();
        let text = record.render().unwrap();
        let body = text.trim_start_matches(|c| c != '[');
        assert_eq!(toml::from_str::<Record>(body).unwrap(), record);
        assert_eq!(
            test("upstream.a").expectation(),
            "load refused, log: “R6 invalid variable buffer offset”"
        );
    }
}
