//! Upstream's own writable-tracepoint programs, from the tree under test: each family
//! (`guest-programs/upstream/<family>.toml`) names an annotated program file of the tree's
//! selftests. On every kernel the file is compiled with the tree's selftest headers (and, for
//! a file that includes `vmlinux.h`, the header generated from that kernel's BTF, as upstream's
//! Makefile generates it: [`crate::kernel::vmlinux_h`]), and each program in it (each writable
//! one, for a file that holds other tests too) becomes a case whose expectation comes from
//! upstream's own annotations (`__success`, `__failure`, `__msg`, `__not_msg`, `__flag`,
//! `__log_level`, `__description`, read from the object's BTF as upstream's test_loader.c reads
//! them), or from the family's `[[checks]]` where upstream's checks are C code of a prog_tests
//! file. A tree without the file reports the family as absent, naming the form the tree keeps
//! those tests in instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use crate::cases::compile::{self, Compiled};
use crate::cases::decl_tags::{self, FunctionTags};
use crate::cases::upstream_insns::SELFTESTS;
use crate::cases::CaseOutcome;
use crate::cases::{Case, CaseSet, CaseStep, Expect, LogPattern, UPSTREAM_PREFIX};
use crate::infra::fsutil::write_atomic;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::manifest::Vocabulary;
use crate::kernel::vmlinux_h::VmlinuxHeaders;

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
    /// The file includes `vmlinux.h`: it is compiled with the header generated from the
    /// kernel's own BTF; where that kernel is not built (discovery without a run), its
    /// programs are found in the text and say so.
    #[serde(default)]
    pub vmlinux_h: bool,
    /// Only the file's writable programs (`raw_tp.w`, `raw_tracepoint.w`, with or without
    /// libbpf's `?`) become cases: the file holds other tests too.
    #[serde(default)]
    pub writable_only: bool,
    /// Cases are named `upstream.<file stem>.<function>`; otherwise `upstream.<function>`
    /// (verifier_raw_tp_writable's, the first family, named before there were others).
    #[serde(default)]
    pub names_with_file: bool,
    /// What upstream's C code checks of a program (a prog_tests file), as data.
    #[serde(default)]
    pub checks: Vec<ProgramChecks>,
    /// Known reasons the file does not compile against a kernel's `vmlinux.h`: where every
    /// error clang reports is one of these and what it names is indeed missing from that
    /// kernel's header, the family is a row saying "not runnable: <reason>"; any other compile
    /// error fails the row.
    #[serde(default)]
    pub known_compile_errors: Vec<KnownCompileError>,
}

/// A compile error the kernel under test explains: clang's words, and what that kernel's
/// `vmlinux.h` lacks for it (checked), with the reason in words.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownCompileError {
    /// Words of clang's `error:` lines this cause makes (any one of them marks a line).
    pub errors: Vec<String>,
    pub vmlinux_h_lacks: Lacks,
    pub reason: String,
}

/// What a `vmlinux.h` may lack.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Lacks {
    /// Kfunc prototypes: bpftool's `BPF_NO_KFUNC_PROTOTYPES` block declares no `__ksym` (or the
    /// header has no such block): the kernel's BTF has no kfunc declaration tags.
    KfuncPrototypes,
    /// The definition of `struct <name>` (its type is not in the kernel's BTF).
    Struct(String),
}

impl Lacks {
    fn holds(&self, vmlinux_h: &str) -> bool {
        match self {
            Lacks::KfuncPrototypes => {
                let block = vmlinux_h
                    .split_once("#ifndef BPF_NO_KFUNC_PROTOTYPES")
                    .map(|(_, rest)| rest.split_once("#endif").map_or(rest, |(block, _)| block));
                !block.is_some_and(|block| block.contains("__ksym"))
            }
            Lacks::Struct(name) => !vmlinux_h.contains(&format!("struct {name} {{")),
        }
    }
}

impl Family {
    /// The reasons when every error in clang's `message` is a known one whose cause
    /// `vmlinux_h` (the kernel's header) shows; `None` for any other failure.
    pub fn known_compile_failure(&self, message: &str, vmlinux_h: &str) -> Option<String> {
        // clang's cut-off after -ferror-limit errors is no error of its own.
        let errors: Vec<&str> = (message.lines())
            .filter(|l| l.contains("error:") && !l.contains("too many errors emitted"))
            .collect();
        if errors.is_empty() {
            return None;
        }
        let mut reasons: Vec<&str> = Vec::new();
        for line in errors {
            let known = self.known_compile_errors.iter().find(|known| {
                known
                    .errors
                    .iter()
                    .any(|words| line.contains(words.as_str()))
                    && known.vmlinux_h_lacks.holds(vmlinux_h)
            })?;
            if !reasons.contains(&known.reason.trim()) {
                reasons.push(known.reason.trim());
            }
        }
        Some(reasons.join("; "))
    }
}

/// The checks a prog_tests file makes of one program of the family's file: C code, so data
/// here, each entry saying in words which check it mirrors. Its messages are looked up in the
/// tree's prog_tests file: one that is not there any more makes the case a row saying the
/// mapping is out of date, never a wrong expectation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramChecks {
    pub program: String,
    /// The prog_tests file, relative to the selftests directory.
    pub test: PathBuf,
    #[serde(default)]
    pub requires: Vec<String>,
    /// The load's expectation, when the test expects other than the annotations say.
    #[serde(default)]
    pub load: Option<Expect>,
    /// Words the test looks for in the verifier's log (`strstr`).
    #[serde(default)]
    pub log_contains: Vec<String>,
    /// The test looks for the message its table pairs with the program's name
    /// (`{ "<program>", "<message>" }`): taken from the tree's file, never retyped.
    #[serde(default)]
    pub log_from_test: bool,
    #[serde(default)]
    pub steps: Vec<CaseStep>,
    pub what: String,
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
    /// The family files that do not compile against this kernel for a known reason (source →
    /// the reason).
    pub not_compilable: BTreeMap<PathBuf, String>,
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

impl Origin {
    /// The test as upstream names it: `<file>/<program or subtest>`, the file without its
    /// directory and `.c` (`verifier_raw_tp_writable/tracepoint_writable_reject_variable_offset`,
    /// `raw_tp_writable_reject_bad_access/past_end`), for JUnit.
    pub fn upstream_name(&self, case: &str) -> String {
        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let test = case.strip_prefix(UPSTREAM_PREFIX).unwrap_or(case);
        let test = test.strip_prefix(&format!("{stem}.")).unwrap_or(test);
        format!("{stem}/{test}")
    }
}

/// A kernel's cases (the run's and upstream's), their objects, the outcomes decided without a
/// boot, and upstream's name of each of upstream's tests (case → `<file>/<test>`).
pub struct Joined {
    pub cases: CaseSet,
    pub compiled: Compiled,
    pub decided: BTreeMap<String, CaseOutcome>,
    pub upstream_names: BTreeMap<String, String>,
}

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
        let upstream_names = (self.origins.iter())
            .map(|(case, origin)| (case.clone(), origin.upstream_name(case)))
            .collect();
        Joined {
            cases,
            compiled,
            decided: self.decided,
            upstream_names,
        }
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
/// `headers` are the kernel's generated `vmlinux.h` headers; `None` where the kernel is not
/// built (discovery without a run), and then a family that needs them is one row saying so,
/// which is none of upstream's tests (discovery finds its programs in the text).
pub fn members(
    clang: &compile::Clang<'_>,
    tree: &Path,
    families: &[Family],
    out_dir: &Path,
    headers: Option<&VmlinuxHeaders>,
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
    let rules = LoaderRules::of_tree(tree);
    let mut members = Members::default();
    for family in families {
        let source = tree.join(&family.source);
        if !source.is_file() {
            // A file of other tests that has no writable program in this tree is no news.
            if !family.writable_only {
                let (case, outcome) = absent(family, tree);
                members.decided.insert(case.name.clone(), outcome);
                members.cases.push(case);
            }
            continue;
        }
        let includes = match (family.vmlinux_h, headers) {
            (true, None) => {
                let case = family_case(family, &source);
                let reason = format!(
                    "{} includes vmlinux.h, which is generated from the built kernel's BTF, and                      this kernel is not built here",
                    family.source.display()
                );
                members
                    .decided
                    .insert(case.name.clone(), CaseOutcome::Unsupported { reason });
                members.cases.push(case);
                continue;
            }
            // Upstream's Makefile: the generated vmlinux.h and the tree's own libbpf headers
            // (`__arg_ctx` and friends are newer than the host's libbpf-dev).
            (true, Some(headers)) => vec![
                headers.vmlinux.clone(),
                tree_libbpf_headers(clang.runner(), tree, out_dir)?,
            ],
            (false, _) => Vec::new(),
        };
        let includes: Vec<PathBuf> = (includes.into_iter())
            .chain(family.includes.iter().map(|i| tree.join(i)))
            .collect();
        let compiled = clang.compile(&source, out_dir, &includes)?;
        let object = match &compiled {
            Ok(object) => object.clone(),
            Err(message) => {
                let case = family_case(family, &source);
                let vmlinux_h = (headers.filter(|_| family.vmlinux_h))
                    .and_then(|h| std::fs::read_to_string(h.vmlinux.join("vmlinux.h")).ok());
                let known = vmlinux_h
                    .as_deref()
                    .and_then(|text| family.known_compile_failure(message, text));
                let outcome = match known {
                    Some(reason) => {
                        members
                            .not_compilable
                            .insert(source.clone(), reason.clone());
                        CaseOutcome::Unsupported {
                            reason: format!("not runnable: {reason}"),
                        }
                    }
                    None => CaseOutcome::CompileError {
                        message: message.clone(),
                    },
                };
                members.decided.insert(case.name.clone(), outcome);
                match family.writable_only {
                    // Discovery finds a mixed file's writable programs in its text instead.
                    true => members.cases.push(case),
                    false => members.add(case, Form::AnnotatedC, &family.source),
                }
                members.compiled.insert(source.clone(), compiled);
                continue;
            }
        };
        let elf = std::fs::read(&object)?;
        let tags = decl_tags::of_object(&elf)
            .with_context(|| format!("reading the annotations of {}", object.display()))?;
        let sections = decl_tags::program_sections(&elf)
            .with_context(|| format!("reading the programs of {}", object.display()))?;
        members.compiled.insert(source.clone(), compiled);
        let programs = programs_of(family, &sections, &tags);
        for (case, cannot_run) in cases_of(family, &source, &programs, &rules) {
            let mut case = case;
            let cannot_run = cannot_run.or_else(|| complete_checks(family, &mut case, tree));
            if let Some(reason) = cannot_run {
                members
                    .decided
                    .insert(case.name.clone(), CaseOutcome::Unsupported { reason });
            }
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

/// The tree's libbpf headers as upstream's selftests Makefile installs them: `bpf/*.h` of
/// tools/lib/bpf and `bpf/bpf_helper_defs.h` generated by the tree's `scripts/bpf_doc.py`
/// from its tools' uapi `bpf.h` (as tools/lib/bpf/Makefile does); the include directory.
fn tree_libbpf_headers(runner: &Runner, tree: &Path, out_dir: &Path) -> Result<PathBuf> {
    let include = out_dir.join("libbpf-include");
    let dir = include.join("bpf");
    let defs = dir.join("bpf_helper_defs.h");
    let libbpf = tree.join("tools/lib/bpf");
    let uapi = tree.join("tools/include/uapi/linux/bpf.h");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in
        std::fs::read_dir(&libbpf).with_context(|| format!("reading {}", libbpf.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "h") {
            let bytes = std::fs::read(&path)?;
            let target = dir.join(path.file_name().unwrap_or_default());
            if std::fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
                write_atomic(&target, &bytes)?;
            }
        }
    }
    if !defs.is_file() {
        let sh = &runner.sh;
        let script = tree.join("scripts/bpf_doc.py");
        let text = cmd!(sh, "python3 {script} --header --file {uapi}")
            .quiet()
            .read()
            .with_context(|| format!("generating bpf_helper_defs.h with {}", script.display()))?;
        write_atomic(&defs, format!("{text}\n").as_bytes())?;
    }
    Ok(include)
}

/// What the tree's own test_loader.c makes of an annotation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoaderRules {
    /// `{{...}}` in a `__msg` is a regular expression (test_loader.c's `compile_regex`, 6.10+);
    /// older loaders take the braces literally.
    pub regex: bool,
}

impl LoaderRules {
    pub fn of_tree(tree: &Path) -> Self {
        let loader = tree.join(SELFTESTS).join("test_loader.c");
        let text = std::fs::read_to_string(loader).unwrap_or_default();
        Self {
            regex: text.contains("\"{{\""),
        }
    }
}

/// Whether a section holds a writable raw tracepoint program (libbpf's `?` prefix aside).
pub fn is_writable_section(name: &str) -> bool {
    let name = name.strip_prefix('?').unwrap_or(name);
    ["raw_tp.w", "raw_tracepoint.w"]
        .iter()
        .any(|marker| name == *marker || name.starts_with(&format!("{marker}/")))
}

/// The programs of a family's object that become cases (its writable ones, for a file that
/// holds other tests too), each with its annotations (none: upstream's defaults).
fn programs_of(
    family: &Family,
    sections: &BTreeMap<String, String>,
    tags: &FunctionTags,
) -> FunctionTags {
    (sections.iter())
        .filter(|(_, section)| !family.writable_only || is_writable_section(section))
        .map(|(function, _)| {
            let tags = tags.get(function).cloned().unwrap_or_default();
            (function.clone(), tags)
        })
        .collect()
}

/// One case per program, its expectation from its annotations (upstream's defaults: no
/// annotation means success) and the family's checks of it; with the reason when upstream's
/// test cannot run here as shipped. Auxiliary programs (loaded for other tests) and programs
/// that upstream runs only unprivileged are not cases here: the harness runs as root.
pub fn cases_of(
    family: &Family,
    source: &Path,
    programs: &FunctionTags,
    rules: &LoaderRules,
) -> Vec<(Case, Option<String>)> {
    programs
        .iter()
        .filter_map(|(function, tags)| {
            let words = Annotations::parse(tags, rules);
            if words.auxiliary || words.unprivileged_only {
                return None;
            }
            let mut case = family_case(family, source);
            case.name = match family.names_with_file {
                true => format!("{UPSTREAM_PREFIX}{}.{function}", file_stem(&family.source)),
                false => format!("{UPSTREAM_PREFIX}{function}"),
            };
            case.function = Some(function.clone());
            case.description = format!(
                "{}\n(upstream {}, {function}: expectation from its annotations)",
                words
                    .description
                    .clone()
                    .unwrap_or_else(|| function.clone()),
                family.source.display()
            );
            case.load = match words.failure {
                true => Expect::Fails,
                false => Expect::Ok,
            };
            case.log_sequence = words.messages;
            case.log_level = words.log_level;
            case.flags = words.flags;
            if let Some(checks) = family.checks.iter().find(|c| &c.program == function) {
                apply_checks(&mut case, checks);
            }
            // Every program here is writable, and BPF_PROG_TEST_RUN has no runner for them.
            let cannot_run = words.retval.map(|retval| {
                format!(
                    "upstream test-runs it (__retval({retval})), and BPF_PROG_TEST_RUN has no \
                     runner for raw_tp.w programs (ENOTSUPP)"
                )
            });
            Some((case, cannot_run))
        })
        .collect()
}

/// The family's checks of a program (C code of a prog_tests file) put into its case.
fn apply_checks(case: &mut Case, checks: &ProgramChecks) {
    case.requires.extend(checks.requires.iter().cloned());
    if let Some(load) = &checks.load {
        case.load = load.clone();
    }
    case.log_contains
        .extend(checks.log_contains.iter().cloned());
    case.steps = checks.steps.clone();
    case.description = format!(
        "{}\nChecks of {} (C code, mirrored): {}",
        case.description,
        checks.test.display(),
        checks.what.trim()
    );
}

/// The case's checks completed from the tree's prog_tests file (the message its table pairs
/// with the program, for `log_from_test`); the reason they no longer describe the tree's
/// test when its file is gone or no longer holds a message the mapping expects.
fn complete_checks(family: &Family, case: &mut Case, tree: &Path) -> Option<String> {
    let function = case.function.as_deref()?;
    let checks = family.checks.iter().find(|c| c.program == function)?;
    let test = tree.join(SELFTESTS).join(&checks.test);
    let Ok(text) = std::fs::read_to_string(&test) else {
        return Some(format!(
            "the mapping of its checks names {}, which this tree does not have",
            checks.test.display()
        ));
    };
    if checks.log_from_test {
        match message_paired_with(&text, function) {
            Some(message) => case.log_contains.push(message),
            None => {
                return Some(format!(
                "the mapping of its checks is out of date: {} pairs no message with “{function}”",
                checks.test.display()
            ))
            }
        }
    }
    let missing = checks
        .log_contains
        .iter()
        .find(|m| !text.contains(m.as_str()))?;
    Some(format!(
        "the mapping of its checks is out of date: {} no longer looks for “{missing}”",
        checks.test.display()
    ))
}

/// In a prog_tests table of `{ "<program>", "<message>" }` rows, the message of `program`.
fn message_paired_with(text: &str, program: &str) -> Option<String> {
    let name = format!("\"{program}\"");
    let line = text.lines().find(|line| line.contains(&name))?;
    let after = &line[line.find(&name)? + name.len()..];
    let start = after.find('"')? + 1;
    let end = start + after[start..].find('"')?;
    Some(after[start..end].to_owned())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What upstream's annotations of one program say, as far as a privileged load goes.
#[derive(Debug, Default, PartialEq)]
struct Annotations {
    description: Option<String>,
    failure: bool,
    messages: Vec<LogPattern>,
    flags: Vec<String>,
    log_level: Option<u32>,
    retval: Option<String>,
    auxiliary: bool,
    unprivileged_only: bool,
}

impl Annotations {
    /// Read in the order upstream's test_loader.c reads them: numbered tags by their number
    /// (the `__COUNTER__` bpf_misc.h puts in, so source order), the rest as the object lists
    /// them.
    fn parse(tags: &[String], rules: &LoaderRules) -> Self {
        let mut found = Annotations::default();
        let (mut privileged, mut unprivileged) = (false, false);
        let mut words: Vec<(Option<u64>, &str)> = tags
            .iter()
            .filter_map(|tag| tag.strip_prefix("comment:"))
            .map(numbered)
            .collect();
        words.sort_by_key(|(number, _)| *number);
        for (_, word) in words {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match key {
                "test_description" => found.description = Some(value.to_owned()),
                "test_expect_failure" => (found.failure, privileged) = (true, true),
                "test_expect_success" => privileged = true,
                "test_expect_msg" | "test_expect_not_msg" => {
                    let text = without_number(value, '=').to_owned();
                    found.messages.push(LogPattern {
                        regex: rules.regex && text.contains("{{"),
                        not: key == "test_expect_not_msg",
                        text,
                    });
                    privileged = true;
                }
                "test_prog_flags" => found.flags.push(value.to_owned()),
                "test_log_level" => found.log_level = value.parse().ok(),
                "test_retval" => (found.retval, privileged) = (Some(value.to_owned()), true),
                "test_auxiliary" => found.auxiliary = true,
                _ if key.ends_with("_unpriv") => unprivileged = true,
                _ => {}
            }
        }
        found.unprivileged_only = unprivileged && !privileged;
        found
    }
}

/// A tag's number, if the tree numbers its tags (`<n>:test_...`), and the tag without it.
fn numbered(word: &str) -> (Option<u64>, &str) {
    let rest = without_number(word, ':');
    let number = (rest.len() != word.len())
        .then(|| word[..word.len() - rest.len() - 1].parse().ok())
        .flatten();
    (number, rest)
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
        log_sequence: Vec::new(),
        log_level: None,
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
            vmlinux_h: false,
            writable_only: false,
            names_with_file: false,
            checks: vec![],
            known_compile_errors: vec![],
        }
    }

    const REGEX: LoaderRules = LoaderRules { regex: true };

    fn texts(case: &Case) -> Vec<&str> {
        case.log_sequence.iter().map(|p| p.text.as_str()).collect()
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
        let cases = cases_of(&family(), Path::new("/tree/x.c"), &found, &REGEX);
        assert_eq!(cases.len(), 1);
        let (case, cannot_run) = &cases[0];
        assert_eq!(*cannot_run, None);
        assert_eq!(case.name, "upstream.prog");
        assert_eq!(case.function.as_deref(), Some("prog"));
        assert_eq!(case.load, load);
        assert_eq!(texts(case), messages);
        assert_eq!(case.flags, flags);
        assert!(case.steps.is_empty(), "upstream's programs are load-only");
    }

    #[rstest]
    #[case(&["test_auxiliary"])]
    #[case(&["test_expect_failure_unpriv", "test_expect_msg_unpriv=x"])]
    fn auxiliary_and_unprivileged_only_programs_are_not_cases(#[case] words: &[&str]) {
        let found: FunctionTags = [("prog".to_owned(), tags(words))].into();
        assert!(cases_of(&family(), Path::new("/tree/x.c"), &found, &REGEX).is_empty());
    }

    /// test_loader.c's order is the tags' numbers (source order), whatever the object's;
    /// `__not_msg`, `{{regex}}` where the tree's loader has it, `__log_level`, and `__retval`,
    /// which cannot run on a writable program.
    #[test]
    fn numbered_tags_keep_source_order_and_every_annotation_counts() {
        let words = &[
            "3:test_expect_msg=b{{[0-9]+}}",
            "1:test_expect_failure",
            "2:test_expect_msg=a",
            "4:test_expect_not_msg=c",
            "5:test_log_level=2",
            "6:test_retval=0",
        ];
        let found: FunctionTags = [("prog".to_owned(), tags(words))].into();
        let mut family = family();
        family.names_with_file = true;
        let cases = cases_of(&family, Path::new("/tree/x.c"), &found, &REGEX);
        let (case, cannot_run) = &cases[0];
        assert_eq!(case.name, "upstream.verifier_raw_tp_writable.prog");
        assert_eq!(texts(case), ["a", "b{{[0-9]+}}", "c"]);
        let flags: Vec<(bool, bool)> = case.log_sequence.iter().map(|p| (p.not, p.regex)).collect();
        assert_eq!(flags, [(false, false), (false, true), (true, false)]);
        assert_eq!(case.log_level, Some(2));
        assert!(cannot_run.as_deref().unwrap().contains("__retval(0)"));
        let older = cases_of(
            &family,
            Path::new("/tree/x.c"),
            &found,
            &LoaderRules::default(),
        );
        assert!(
            !older[0].0.log_sequence[1].regex,
            "braces are literal to older loaders"
        );
    }

    #[rstest]
    #[case("raw_tp.w", true)]
    #[case("?raw_tp.w/xyz", true)]
    #[case("?raw_tracepoint.w", true)]
    #[case("raw_tp/xyz", false)]
    #[case("?raw_tp", false)]
    #[case("raw_tp.wx", false)]
    fn writable_sections_with_or_without_libbpfs_question_mark(
        #[case] section: &str,
        #[case] writable: bool,
    ) {
        assert_eq!(is_writable_section(section), writable);
    }

    #[test]
    fn a_prog_tests_table_pairs_a_program_with_its_message() {
        let text = "static struct { const char *prog_name; const char *err_msg; } t[] = {\n\
                    \t{ \"map_compat_raw_tp\", \"x\" },\n\
                    \t{ \"map_compat_raw_tp_w\", \"tracing progs cannot use bpf_{list_head,rb_root} yet\" },\n";
        assert_eq!(
            message_paired_with(text, "map_compat_raw_tp_w").as_deref(),
            Some("tracing progs cannot use bpf_{list_head,rb_root} yet")
        );
        assert_eq!(message_paired_with(text, "absent"), None);
    }

    #[rstest]
    #[case(
        "upstream.tracepoint_writable_reject_variable_offset",
        "progs/verifier_raw_tp_writable.c",
        "verifier_raw_tp_writable/tracepoint_writable_reject_variable_offset"
    )]
    #[case(
        "upstream.test_module_attach.handle_raw_tp_writable_bare",
        "progs/test_module_attach.c",
        "test_module_attach/handle_raw_tp_writable_bare"
    )]
    #[case(
        "upstream.raw_tp_writable_reject_bad_access.past_end",
        "prog_tests/raw_tp_writable_reject_bad_access.c",
        "raw_tp_writable_reject_bad_access/past_end"
    )]
    fn upstream_names_are_file_and_test(
        #[case] case: &str,
        #[case] file: &str,
        #[case] name: &str,
    ) {
        let origin = Origin {
            form: Form::AnnotatedC,
            file: file.into(),
        };
        assert_eq!(origin.upstream_name(case), name);
    }

    fn known_errors() -> Family {
        let mut family = family();
        family.known_compile_errors = vec![
            KnownCompileError {
                errors: vec![
                    "implicit declaration of function 'bpf_".into(),
                    "from smaller integer type 'int'".into(),
                ],
                vmlinux_h_lacks: Lacks::KfuncPrototypes,
                reason: "no kfunc prototypes".into(),
            },
            KnownCompileError {
                errors: vec!["incomplete definition of type 'struct bpf_sockopt'".into()],
                vmlinux_h_lacks: Lacks::Struct("bpf_sockopt".into()),
                reason: "no CONFIG_CGROUP_BPF".into(),
            },
        ];
        family
    }

    const NO_KFUNCS: &str =
        "struct x {\n};\n/* BPF kfuncs */\n#ifndef BPF_NO_KFUNC_PROTOTYPES\n#endif\n";
    const KFUNCS: &str = "/* BPF kfuncs */\n#ifndef BPF_NO_KFUNC_PROTOTYPES\nextern void *bpf_obj_new(u64 id) __weak __ksym;\n#endif\n";

    /// Only a failure whose every error is a known one, caused by what this kernel's
    /// vmlinux.h lacks, is "not runnable"; any other compile error stays a failure.
    #[rstest]
    #[case::every_error_known(
        "a.c:1:1: error: implicit declaration of function 'bpf_obj_new' is invalid\n\
         a.c:1:1: note: x\n\
         a.c:2:1: error: cast to 'struct foo *' from smaller integer type 'int'\n\
         fatal error: too many errors emitted, stopping now [-ferror-limit=]\n20 errors generated.",
        NO_KFUNCS,
        Some("no kfunc prototypes")
    )]
    #[case::two_causes(
        "a.c:1:1: error: implicit declaration of function 'bpf_obj_drop'\n\
         a.c:3:1: error: incomplete definition of type 'struct bpf_sockopt'",
        NO_KFUNCS,
        Some("no kfunc prototypes; no CONFIG_CGROUP_BPF")
    )]
    #[case::an_unknown_error_too(
        "a.c:1:1: error: implicit declaration of function 'bpf_obj_new'\n\
         a.c:9:1: error: expected ';' after expression",
        NO_KFUNCS,
        None
    )]
    #[case::the_kernel_has_the_prototypes(
        "a.c:1:1: error: implicit declaration of function 'bpf_obj_new'",
        KFUNCS,
        None
    )]
    #[case::the_kernel_has_the_struct(
        "a.c:3:1: error: incomplete definition of type 'struct bpf_sockopt'",
        "struct bpf_sockopt {\n\tint level;\n};\n",
        None
    )]
    #[case::no_error_line("clang crashed", NO_KFUNCS, None)]
    fn a_compile_failure_is_not_runnable_only_for_a_known_checked_cause(
        #[case] message: &str,
        #[case] vmlinux_h: &str,
        #[case] reason: Option<&str>,
    ) {
        assert_eq!(
            known_errors()
                .known_compile_failure(message, vmlinux_h)
                .as_deref(),
            reason
        );
    }

    /// The families' data parse (`vmlinux_h_lacks` as a word or a table).
    #[test]
    fn the_families_known_compile_errors_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-programs/upstream");
        let known = crate::kernel::manifest::Vocabulary::default();
        let families = families(&dir, &known).unwrap();
        let lacks: Vec<&Lacks> = (families.iter())
            .flat_map(|f| &f.known_compile_errors)
            .map(|k| &k.vmlinux_h_lacks)
            .collect();
        assert!(lacks.contains(&&Lacks::KfuncPrototypes), "{lacks:?}");
        assert!(lacks.contains(&&Lacks::Struct("bpf_sockopt".into())));
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
