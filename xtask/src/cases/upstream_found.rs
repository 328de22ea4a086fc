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
use crate::cases::{Case, CaseOutcome, CaseStep, Expect, LogPattern};
use crate::kernel::vmlinux_h::VmlinuxHeaders;

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
    /// ... the patterns its log must match in order (annotated C: `__msg`, `__not_msg`), ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_sequence: Vec<LogPattern>,
    /// ... the log level it is loaded with (`__log_level`), ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<u32>,
    /// ... and the checks after it (prog_tests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CaseStep>,
    /// Why it cannot run here as shipped, when it cannot (decided without a boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_runnable: Option<String>,
    /// Where upstream's expectation is not `load`/`log_contains`/`steps` (a program whose
    /// checks are C code of a prog_tests file, a macro's programs): the expectation in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects: Option<String>,
}

impl FoundTest {
    /// Upstream's expectation in words: `load ok; attach: EINVAL`, `load refused, log: "..."`.
    pub fn expectation(&self) -> String {
        if let Some(words) = &self.expects {
            return words.clone();
        }
        let mut words = match &self.load {
            Expect::Fails => "load refused".to_owned(),
            other => format!("load {other}"),
        };
        if let Some(level) = self.log_level {
            words.push_str(&format!(" (log level {level})"));
        }
        for message in &self.log_contains {
            words.push_str(&format!(", log: “{message}”"));
        }
        let mut positive = 0;
        for pattern in &self.log_sequence {
            let kind = match (pattern.not, positive) {
                (true, _) => "not",
                (false, 0) => "log",
                (false, _) => "then",
            };
            positive += usize::from(!pattern.not);
            let regex = if pattern.regex {
                " ({{…}}: regex)"
            } else {
                ""
            };
            words.push_str(&format!(", {kind}: “{}”{regex}", pattern.text));
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
            log_sequence: self.log_sequence.clone(),
            log_level: self.log_level,
            globals: BTreeMap::new(),
            flags: Vec::new(),
            source: None,
            insns: None,
            steps: self.steps.clone(),
        }
    }
}

/// Every writable test upstream ships in `tree`, in file order within each form. `headers`:
/// the kernel's generated `vmlinux.h` headers, `None` when it is not built here (the files
/// that need them are then read as text, each program a row that says so).
pub fn discover(
    clang: &Clang<'_>,
    tree: &Path,
    families: &[Family],
    out_dir: &Path,
    headers: Option<&VmlinuxHeaders>,
) -> Result<Vec<FoundTest>> {
    let members = upstream::members(clang, tree, families, out_dir, headers)?;
    let tree_text = tree.display().to_string();
    let first_line = |message: &str| {
        let line = (message.lines())
            .find(|line| line.contains("error:"))
            .or_else(|| message.lines().next())
            .unwrap_or("");
        format!(
            "does not compile here: {}",
            line.replace(&tree_text, "<tree>")
        )
    };
    let found = members.cases.iter().filter_map(|case| {
        let origin = members.origins.get(&case.name)?;
        let file = origin.file.strip_prefix(SELFTESTS).unwrap_or(&origin.file);
        let not_runnable = members
            .decided
            .get(&case.name)
            .map(|outcome| match outcome {
                CaseOutcome::Unsupported { reason } => reason.clone(),
                CaseOutcome::CompileError { message } => first_line(message),
                other => format!("{other:?}"),
            });
        Some(FoundTest {
            name: case.name.clone(),
            form: origin.form,
            file: file.display().to_string(),
            requires: case.requires.clone(),
            load: case.load.clone(),
            log_contains: case.log_contains.clone(),
            log_sequence: case.log_sequence.clone(),
            log_level: case.log_level,
            steps: case.steps.clone(),
            not_runnable,
            expects: None,
        })
    });
    let mut found: Vec<FoundTest> = found.collect();
    // The families whose programs were cases; the others' (a mixed file that did not
    // compile, or needs a vmlinux.h this kernel cannot give yet) are read from the text.
    let mut text_reasons = BTreeMap::new();
    for family in families {
        let source = tree.join(&family.source);
        let reason = match members.compiled.get(&source) {
            Some(Ok(_)) => continue,
            Some(Err(_)) if members.not_compilable.contains_key(&source) => {
                members.not_compilable[&source].clone()
            }
            Some(Err(message)) => first_line(message),
            None if family.vmlinux_h => format!(
                "{} includes vmlinux.h, which is generated from the built kernel's BTF, and this \
                 kernel is not built here (a run builds it)",
                family.source.display()
            ),
            None => continue,
        };
        text_reasons.insert(source, reason);
    }
    let compiled: Vec<&Path> = (families.iter())
        .filter(|f| !text_reasons.contains_key(&tree.join(&f.source)))
        .map(|f| f.source.as_path())
        .collect();
    found.extend(other_annotated(tree, &compiled, &text_reasons));
    found.sort_by_key(|test| test.form);
    Ok(found)
}

/// Section prefixes of a writable program (libbpf's `?` marks it not autoloaded).
const WRITABLE_SECTIONS: [&str; 4] = [
    "SEC(\"raw_tp.w",
    "SEC(\"?raw_tp.w",
    "SEC(\"raw_tracepoint.w",
    "SEC(\"?raw_tracepoint.w",
];

/// The writable programs of the tree's other `progs/*.c` files (not a family's, which are
/// compiled and run): found in the text, each a row that says why it does not run here yet.
/// A macro given a writable section (7.2's `no_rewrite_ctx_access("raw_tracepoint.w", ...)`)
/// is one row: its programs exist only once the file is preprocessed.
pub fn other_annotated(
    tree: &Path,
    compiled: &[&Path],
    reasons: &BTreeMap<std::path::PathBuf, String>,
) -> Vec<FoundTest> {
    let progs = tree.join(SELFTESTS).join("progs");
    let Ok(entries) = std::fs::read_dir(&progs) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .filter(|p| !compiled.iter().any(|c| tree.join(c) == *p))
        .collect();
    files.sort();
    let rules = upstream::LoaderRules::of_tree(tree);
    let mut found = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let file = format!("progs/{stem}.c");
        let why = match reasons.get(&path) {
            Some(reason) => format!("not run here: {reason}"),
            None => format!(
                "not run here yet: {file} is not an upstream family (guest-programs/upstream/{stem}.toml would make it one)"
            ),
        };
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if WRITABLE_SECTIONS.iter().any(|s| trimmed.starts_with(s)) {
                let Some((function, tags)) = program_after(&lines[at + 1..]) else {
                    continue;
                };
                let checked_in = prog_tests_naming(tree, &function, &stem);
                let annotated = tags
                    .iter()
                    .any(|t| t.starts_with("__success") || t.starts_with("__failure"));
                let expects = match (annotated, &checked_in) {
                    (true, _) => None,
                    (false, Some(test)) => Some(format!("checks in {test} (C code)")),
                    (false, None) => None,
                };
                let messages = tags
                    .iter()
                    .filter_map(|t| {
                        let (text, not) = match t.strip_prefix("__not_msg(\"") {
                            Some(rest) => (rest, true),
                            None => (t.strip_prefix("__msg(\"")?, false),
                        };
                        let text = text.strip_suffix("\")")?.to_owned();
                        let regex = rules.regex && text.contains("{{");
                        Some(LogPattern { text, not, regex })
                    })
                    .collect();
                let log_level = tags.iter().find_map(|t| {
                    t.strip_prefix("__log_level(")?
                        .strip_suffix(')')?
                        .parse()
                        .ok()
                });
                let reason = why.clone();
                found.push(FoundTest {
                    name: format!("{}{stem}.{function}", crate::cases::UPSTREAM_PREFIX),
                    form: Form::AnnotatedC,
                    file: file.clone(),
                    requires: Vec::new(),
                    load: match tags.iter().any(|t| t.starts_with("__failure")) {
                        true => Expect::Fails,
                        false => Expect::Ok,
                    },
                    log_contains: Vec::new(),
                    log_sequence: messages,
                    log_level,
                    steps: Vec::new(),
                    not_runnable: Some(reason),
                    expects,
                });
            } else if !trimmed.starts_with('#')
                && !trimmed.starts_with("SEC(")
                && (trimmed.contains("(\"raw_tracepoint.w\"") || trimmed.contains("(\"raw_tp.w\""))
            {
                let Some((call, args)) = trimmed.split_once('(') else {
                    continue;
                };
                let name: String = args
                    .split(',')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(FoundTest {
                    name: format!("{}{stem}.{call}.{name}", crate::cases::UPSTREAM_PREFIX),
                    form: Form::AnnotatedC,
                    file: file.clone(),
                    requires: Vec::new(),
                    load: Expect::Ok,
                    log_contains: Vec::new(),
                    log_sequence: Vec::new(),
                    log_level: None,
                    steps: Vec::new(),
                    not_runnable: Some(format!("{why}; the macro {call} expands to several programs, each with its own annotations")),
                    expects: Some(format!("per program of {call}'s expansion (annotations in the macro)")),
                });
            }
        }
    }
    found
}

/// The function a `SEC(...)` line introduces, and the annotations between them.
fn program_after(lines: &[&str]) -> Option<(String, Vec<String>)> {
    let mut tags = Vec::new();
    for line in lines.iter().take(8) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("int ") {
            let rest = rest.strip_prefix("BPF_PROG(").unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some((name, tags));
        }
        tags.extend(
            line.split_whitespace()
                .filter(|word| word.starts_with("__"))
                .map(str::to_owned),
        );
        if line.contains("_msg(") {
            // A message may hold spaces: take it whole.
            tags.retain(|t| !t.starts_with("__msg(") && !t.starts_with("__not_msg("));
            let mut rest = line;
            while let Some(at) = rest.find("_msg(\"") {
                let kind = match rest[..at].ends_with("__not") {
                    true => "__not_msg",
                    false => "__msg",
                };
                let after = &rest[at + 6..];
                let Some(end) = after.find("\")") else { break };
                tags.push(format!("{kind}(\"{}\")", &after[..end]));
                rest = &after[end..];
            }
        }
    }
    None
}

/// The prog_tests file whose C code names `function`, else the one that includes the
/// skeleton of `stem` (its checks then read the skeleton's globals), if one does.
fn prog_tests_naming(tree: &Path, function: &str, stem: &str) -> Option<String> {
    let dir = tree.join(SELFTESTS).join("prog_tests");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((
                format!("prog_tests/{name}"),
                std::fs::read_to_string(path).ok()?,
            ))
        })
        .collect();
    let names_function = |text: &str| {
        text.contains(&format!("\"{function}\"")) || text.contains(&format!("progs.{function}"))
    };
    let skeleton = format!("{stem}.skel.h");
    texts
        .iter()
        .find(|(_, text)| names_function(text))
        .or_else(|| texts.iter().find(|(_, text)| text.contains(&skeleton)))
        .map(|(file, _)| file.clone())
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
            log_sequence: Vec::new(),
            log_level: None,
            steps: Vec::new(),
            not_runnable: None,
            expects: None,
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

    #[test]
    fn writable_programs_of_other_files_are_rows_with_their_reason() {
        let tree = tempfile::tempdir().unwrap();
        let selftests = tree.path().join(SELFTESTS);
        std::fs::create_dir_all(selftests.join("progs")).unwrap();
        std::fs::create_dir_all(selftests.join("prog_tests")).unwrap();
        std::fs::write(
            selftests.join("progs/g.c"),
            "#include <vmlinux.h>\nSEC(\"?raw_tp.w\")\n__failure __msg(\"R1 bad ctx\") __log_level(2)\nint w_prog(void *ctx)\n{ return 0; }\n\
             SEC(\"raw_tp\")\nint plain(void *ctx)\n{ return 0; }\n\
             #define m(type, name) SEC(\"?\" type) int x_##name(void *ctx) { return 0; }\n\
             m(\"raw_tracepoint.w\", raw_tp_w);\n",
        )
        .unwrap();
        std::fs::write(
            selftests.join("progs/family.c"),
            "SEC(\"raw_tp.w\")\nint f(void *c)\n",
        )
        .unwrap();
        let family = Path::new(SELFTESTS).join("progs/family.c");
        let found = other_annotated(tree.path(), &[family.as_path()], &BTreeMap::new());
        let names: Vec<&str> = found.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["upstream.g.w_prog", "upstream.g.m.raw_tp_w"]);
        assert_eq!(found[0].load, Expect::Fails);
        assert_eq!(found[0].log_sequence[0].text, "R1 bad ctx");
        assert_eq!(found[0].log_level, Some(2));
        let reason = found[0].not_runnable.as_deref().unwrap();
        assert!(reason.contains("is not an upstream family"), "{reason}");
    }
}
