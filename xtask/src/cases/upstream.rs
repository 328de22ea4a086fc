//! Upstream's own writable-tracepoint programs, from the tree under test: each family
//! (`guest-programs/upstream/<family>.toml`) names an annotated program file of the tree's
//! selftests. On every kernel the file is compiled with the tree's selftest headers, and each
//! program in it becomes a load-only case whose expectation comes from upstream's own
//! annotations (`__success`, `__failure`, `__msg`, `__flag`, `__description`, read from the
//! object's BTF as upstream's test_loader.c reads them). A tree without the file reports the
//! family as absent, naming the form the tree keeps those tests in instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cases::compile::{self, Compiled};
use crate::cases::decl_tags::{self, FunctionTags};
use crate::cases::CaseOutcome;
use crate::cases::{Case, CaseSet, Expect, UPSTREAM_PREFIX};
use crate::infra::progress::Stage;
use crate::kernel::manifest::Vocabulary;

/// One annotated program file of the kernel tree's selftests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    #[serde(skip)]
    pub name: String,
    /// The directory the family file is in (where [`PROG_TESTS_MAPPING`] lies too).
    #[serde(skip)]
    pub dir: PathBuf,
    pub description: String,
    /// The program file, relative to the tree's root.
    pub source: PathBuf,
    /// Include directories, relative to the tree's root, searched before the system's
    /// (the selftests' own headers, the tree's uapi).
    #[serde(default)]
    pub includes: Vec<PathBuf>,
    /// Where trees without `source` keep the same tests, named in the "absent" reason.
    #[serde(default)]
    pub other_forms: Vec<OtherForm>,
    #[serde(default)]
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherForm {
    pub path: PathBuf,
    /// What the file holds, e.g. "instruction arrays for test_verifier".
    pub what: String,
}

/// What the families come to on one tree: the cases, their objects, and the outcomes decided
/// without a boot (an absent family, a file that does not compile).
#[derive(Debug, Default)]
pub struct Members {
    pub cases: Vec<Case>,
    pub compiled: Compiled,
    pub decided: BTreeMap<String, CaseOutcome>,
    /// Where each of upstream's tests among the cases comes from (an absent family's row is
    /// no test and has none).
    pub origins: BTreeMap<String, Origin>,
}

/// The form upstream ships a writable test in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Form {
    /// A program of a `progs/*.c` file, judged by its `__success`/`__failure`/`__msg` tags.
    #[serde(rename = "annotated C")]
    AnnotatedC,
    /// A `struct bpf_test` of a `verifier/*.c` file (test_verifier).
    #[serde(rename = "test_verifier array")]
    TestVerifier,
    /// A `const struct bpf_insn` array of a `prog_tests/*.c` file and its test code's checks.
    #[serde(rename = "prog_tests array")]
    ProgTests,
}

impl Form {
    pub fn words(self) -> &'static str {
        match self {
            Form::AnnotatedC => "annotated C",
            Form::TestVerifier => "test_verifier array",
            Form::ProgTests => "prog_tests array",
        }
    }
}

/// One test's form and file (relative to the tree).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub form: Form,
    pub file: PathBuf,
}

/// A kernel's cases (the run's and upstream's), their objects, and the outcomes decided
/// without a boot.
pub type Joined = (CaseSet, Compiled, BTreeMap<String, CaseOutcome>);

impl Members {
    fn add(&mut self, case: Case, form: Form, file: &Path) {
        let origin = Origin {
            form,
            file: file.to_path_buf(),
        };
        self.origins.insert(case.name.clone(), origin);
        self.cases.push(case);
    }

    fn extend(&mut self, found: crate::cases::upstream_insns::Found, form: Form) {
        for case in found.cases {
            let file = found.files.get(&case.name).cloned().unwrap_or_default();
            self.add(case, form, &file);
        }
        self.decided.extend(found.decided);
    }

    /// The run's cases and objects with these added; when cases are chosen, only the chosen.
    pub fn joined(self, case_set: &CaseSet, compiled: &Compiled, only: &[String]) -> Joined {
        let mut cases = case_set.clone();
        let chosen = |case: &Case| only.is_empty() || only.contains(&case.name);
        cases.cases.extend(self.cases.into_iter().filter(chosen));
        let mut compiled = compiled.clone();
        compiled.extend(self.compiled);
        (cases, compiled, self.decided)
    }
}

/// The file beside the families that maps upstream's prog_tests checks
/// ([`crate::cases::upstream_insns::prog_tests`]).
pub const PROG_TESTS_MAPPING: &str = "prog_tests.toml";

/// The file beside the families that records what discovery found in each tree
/// ([`crate::cases::upstream_found`]).
pub const FOUND_RECORD: &str = "found.toml";

fn prog_tests_mapping(families: &[Family]) -> PathBuf {
    families
        .first()
        .map(|family| family.dir.join(PROG_TESTS_MAPPING))
        .unwrap_or_default()
}

/// Reads every `<dir>/*.toml` as a family (but the prog_tests mapping), its `requires` checked against what the manifests
/// define; a missing directory has none.
pub fn families(dir: &Path, known: &Vocabulary) -> Result<Vec<Family>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .filter(|p| !p.ends_with(PROG_TESTS_MAPPING))
        .filter(|p| !p.ends_with(FOUND_RECORD))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)?;
            let mut family: Family = toml::from_str(&text)
                .with_context(|| format!("upstream family {}", file.display()))?;
            crate::cases::check_requires(&family.requires, known)
                .with_context(|| format!("upstream family {}", file.display()))?;
            family.dir = dir.to_path_buf();
            family.name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(family)
        })
        .collect()
}

/// Compiles each family's file from `tree` into `out_dir` and turns its programs into cases.
pub fn members(
    clang: &compile::Clang<'_>,
    tree: &Path,
    families: &[Family],
    out_dir: &Path,
) -> Result<Members> {
    // Upstream's tests belong to the built-in set only: a user's case directory has no
    // families, and gets none of upstream's instruction arrays either.
    if families.is_empty() {
        return Ok(Members::default());
    }
    std::fs::create_dir_all(out_dir)?;
    let stage = Stage::start(format!(
        "compiling upstream's programs from {}",
        tree.display()
    ));
    let mut members = Members::default();
    for family in families {
        let source = tree.join(&family.source);
        if !source.is_file() {
            let (case, outcome) = absent(family, tree);
            members.decided.insert(case.name.clone(), outcome);
            members.cases.push(case);
            continue;
        }
        let includes: Vec<PathBuf> = family.includes.iter().map(|i| tree.join(i)).collect();
        let compiled = clang.compile(&source, out_dir, &includes)?;
        let tags = match &compiled {
            Ok(object) => decl_tags::of_object(&std::fs::read(object)?)
                .with_context(|| format!("reading the annotations of {}", object.display()))?,
            Err(message) => {
                let case = family_case(family, &source);
                let outcome = CaseOutcome::CompileError {
                    message: message.clone(),
                };
                members.decided.insert(case.name.clone(), outcome);
                members.add(case, Form::AnnotatedC, &family.source);
                continue;
            }
        };
        members.compiled.insert(source.clone(), compiled);
        for case in cases_of(family, &source, &tags) {
            members.add(case, Form::AnnotatedC, &family.source);
        }
    }
    let found = crate::cases::upstream_insns::test_verifier(clang.runner(), tree, out_dir)
        .context("extracting test_verifier's writable tests")?;
    members.extend(found, Form::TestVerifier);
    let mappings = crate::cases::upstream_insns::prog_test_mappings(&prog_tests_mapping(families))?;
    let found = crate::cases::upstream_insns::prog_tests(clang.runner(), tree, &mappings, out_dir)
        .context("extracting the prog_tests' writable instruction arrays")?;
    members.extend(found, Form::ProgTests);
    stage.finish(format!(
        "{} programs, {} absent or broken families",
        members.cases.len() - members.decided.len(),
        members.decided.len()
    ));
    Ok(members)
}

/// One case per program, its expectation from its annotations (upstream's defaults: no
/// annotation means success). Auxiliary programs (loaded for other tests) and programs that
/// upstream runs only unprivileged are not cases here: the harness runs as root.
pub fn cases_of(family: &Family, source: &Path, tags: &FunctionTags) -> Vec<Case> {
    tags.iter()
        .filter_map(|(function, tags)| {
            let words = Annotations::parse(tags);
            if words.auxiliary || words.unprivileged_only {
                return None;
            }
            let mut case = family_case(family, source);
            case.name = format!("{UPSTREAM_PREFIX}{function}");
            case.function = Some(function.clone());
            case.description = format!(
                "{}\n(upstream {}, {function}: expectation from its annotations)",
                words.description.unwrap_or_else(|| function.clone()),
                family.source.display()
            );
            case.load = match words.failure {
                true => Expect::Fails,
                false => Expect::Ok,
            };
            case.log_contains = words.messages;
            case.flags = words.flags;
            Some(case)
        })
        .collect()
}

/// What upstream's annotations of one program say, as far as a privileged load goes.
#[derive(Debug, Default, PartialEq)]
struct Annotations {
    description: Option<String>,
    failure: bool,
    messages: Vec<String>,
    flags: Vec<String>,
    auxiliary: bool,
    unprivileged_only: bool,
}

impl Annotations {
    fn parse(tags: &[String]) -> Self {
        let mut found = Annotations::default();
        let (mut privileged, mut unprivileged) = (false, false);
        for tag in tags {
            let Some(word) = tag
                .strip_prefix("comment:")
                .map(|word| without_number(word, ':'))
            else {
                continue;
            };
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match key {
                "test_description" => found.description = Some(value.to_owned()),
                "test_expect_failure" => (found.failure, privileged) = (true, true),
                "test_expect_success" => privileged = true,
                "test_expect_msg" => {
                    found.messages.push(without_number(value, '=').to_owned());
                    privileged = true;
                }
                "test_prog_flags" => found.flags.push(value.to_owned()),
                "test_auxiliary" => found.auxiliary = true,
                _ if key.ends_with("_unpriv") => unprivileged = true,
                _ => {}
            }
        }
        found.unprivileged_only = unprivileged && !privileged;
        found
    }
}

/// `text` without a leading `<digits><separator>`. Trees number their tags so that equal ones
/// stay apart and keep their order: the newest every tag (`comment:<n>:test_...`), 6.12-era
/// trees their messages (`test_expect_msg=<n>=<text>`, read back by test_loader.c's
/// `skip_dynamic_pfx`), older ones not at all. A tag name or verifier message never starts
/// with digits and the separator, so the number is recognised by its shape.
fn without_number(text: &str, separator: char) -> &str {
    match text.split_once(separator) {
        Some((number, rest))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => text,
    }
}

/// The family as one row: for an absent file or one that does not compile.
fn family_case(family: &Family, source: &Path) -> Case {
    Case {
        name: format!("{UPSTREAM_PREFIX}{}", family.name),
        description: family.description.trim().to_owned(),
        program: None,
        function: None,
        requires: family.requires.clone(),
        load: Expect::Ok,
        load_on: BTreeMap::new(),
        log_contains: Vec::new(),
        globals: BTreeMap::new(),
        flags: Vec::new(),
        source: Some(source.to_path_buf()),
        insns: None,
        steps: Vec::new(),
    }
}

fn absent(family: &Family, tree: &Path) -> (Case, CaseOutcome) {
    let case = family_case(family, &tree.join(&family.source));
    let instead: Vec<String> = family
        .other_forms
        .iter()
        .filter(|form| tree.join(&form.path).exists())
        .map(|form| format!("{} in {}", form.what, form.path.display()))
        .collect();
    let mut reason = format!("absent: the tree has no {}", family.source.display());
    if !instead.is_empty() {
        reason.push_str(&format!("; it keeps these tests as {}", instead.join(", ")));
    }
    (case, CaseOutcome::Unsupported { reason })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn family() -> Family {
        Family {
            name: "verifier_raw_tp_writable".into(),
            dir: PathBuf::new(),
            description: "upstream's programs".into(),
            source: "progs/verifier_raw_tp_writable.c".into(),
            includes: vec![],
            other_forms: vec![OtherForm {
                path: "verifier/raw_tp_writable.c".into(),
                what: "instruction arrays for test_verifier".into(),
            }],
            requires: vec![],
        }
    }

    fn tags(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| format!("comment:{w}")).collect()
    }

    #[rstest]
    #[case(&["test_expect_failure", "test_expect_msg=R6 invalid", "test_prog_flags=BPF_F_ANY_ALIGNMENT"],
        Expect::Fails, &["R6 invalid"], &["BPF_F_ANY_ALIGNMENT"])]
    #[case(&["test_expect_success"], Expect::Ok, &[], &[])]
    #[case(&[], Expect::Ok, &[], &[])]
    #[case(&["test_description=x", "test_expect_msg=a", "test_expect_msg=b", "test_expect_failure"],
        Expect::Fails, &["a", "b"], &[])]
    #[case::numbered_messages(&["test_expect_failure", "test_expect_msg=0=R6 invalid: off=0", "test_expect_msg=12=x=y"],
        Expect::Fails, &["R6 invalid: off=0", "x=y"], &[])]
    #[case::numbered_tags(&["7:test_expect_failure", "8:test_expect_msg=invalid negative tracepoint buffer offset", "9:test_prog_flags=BPF_F_ANY_ALIGNMENT"],
        Expect::Fails, &["invalid negative tracepoint buffer offset"], &["BPF_F_ANY_ALIGNMENT"])]
    #[case::a_message_that_only_looks_numbered(&["test_expect_msg=0: R1=ctx()"], Expect::Ok, &["0: R1=ctx()"], &[])]
    fn annotations_become_expectations(
        #[case] words: &[&str],
        #[case] load: Expect,
        #[case] messages: &[&str],
        #[case] flags: &[&str],
    ) {
        let found: FunctionTags = [("prog".to_owned(), tags(words))].into();
        let cases = cases_of(&family(), Path::new("/tree/x.c"), &found);
        assert_eq!(cases.len(), 1);
        let case = &cases[0];
        assert_eq!(case.name, "upstream.prog");
        assert_eq!(case.function.as_deref(), Some("prog"));
        assert_eq!(case.load, load);
        assert_eq!(case.log_contains, messages);
        assert_eq!(case.flags, flags);
        assert!(case.steps.is_empty(), "upstream's programs are load-only");
    }

    #[rstest]
    #[case(&["test_auxiliary"])]
    #[case(&["test_expect_failure_unpriv", "test_expect_msg_unpriv=x"])]
    fn auxiliary_and_unprivileged_only_programs_are_not_cases(#[case] words: &[&str]) {
        let found: FunctionTags = [("prog".to_owned(), tags(words))].into();
        assert!(cases_of(&family(), Path::new("/tree/x.c"), &found).is_empty());
    }

    #[test]
    fn an_absent_family_names_the_form_the_tree_keeps_instead() {
        let tree = tempfile::tempdir().unwrap();
        let (case, outcome) = absent(&family(), tree.path());
        assert_eq!(case.name, "upstream.verifier_raw_tp_writable");
        let CaseOutcome::Unsupported { reason } = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            reason,
            "absent: the tree has no progs/verifier_raw_tp_writable.c"
        );
        std::fs::create_dir_all(tree.path().join("verifier")).unwrap();
        std::fs::write(tree.path().join("verifier/raw_tp_writable.c"), "").unwrap();
        let (_, outcome) = absent(&family(), tree.path());
        assert_eq!(
            outcome,
            CaseOutcome::Unsupported {
                reason: "absent: the tree has no progs/verifier_raw_tp_writable.c; it keeps \
                         these tests as instruction arrays for test_verifier in \
                         verifier/raw_tp_writable.c"
                    .into()
            }
        );
    }
}
