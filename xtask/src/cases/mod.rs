//! Cases are data: `<dir>/<case>.toml` beside `<dir>/<program>.bpf.c`. A case names its
//! program, what it needs from the kernel, the expected load outcome, globals to patch before
//! load, and steps, each with its expected outcome in kernel-independent terms (`ok`, an errno
//! name, or an exact value). The harness only runs steps; this module and [`crate::judge::compare`]
//! know what should have happened.

pub mod asm;
pub mod compile;
pub mod decl_tags;
mod outcome;
pub mod plan;
pub mod sweep;
pub mod upstream;
pub mod upstream_found;
pub mod upstream_insns;

pub use outcome::CaseOutcome;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use protocol::{errno_names, errno_number, Step};
use serde::{Deserialize, Serialize};

use crate::kernel::manifest::{Catalog, Vocabulary};

/// A directory of cases and where its snapshots live.
/// Names of upstream's cases start with this (they come from each kernel's tree).
pub const UPSTREAM_PREFIX: &str = "upstream.";

#[derive(Debug, Clone)]
pub struct CaseSet {
    /// Short name, used for the directory of compiled objects.
    pub name: String,
    pub dir: PathBuf,
    pub cases: Vec<Case>,
    /// The set's own kernel modules (`<dir>/modules/<name>/`), built for every kernel of the
    /// run and loaded before its cases; a case names one with `requires = ["module:<name>"]`.
    pub modules: Vec<ModuleSource>,
}

/// A module of a case set: `<dir>/modules/<name>/`, a Kbuild file (`obj-m += <name>.o`) and
/// its C files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSource {
    pub name: String,
    pub dir: PathBuf,
}

/// What a case's `requires` says for a module of its case set: `module:<name>`.
pub const MODULE_PREFIX: &str = "module:";

/// The modules of the case directory `dir`: every directory in `dir/modules/`, sorted. A
/// module directory needs a Kbuild (or Makefile) to build.
pub fn module_sources(dir: &Path) -> Result<Vec<ModuleSource>> {
    let root = dir.join("modules");
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if !dir.join("Kbuild").is_file() && !dir.join("Makefile").is_file() {
            bail!(
                "module {}: no Kbuild file (a module directory holds a Kbuild with `obj-m += {name}.o` and its C files)",
                dir.display()
            );
        }
        modules.push(ModuleSource { name, dir });
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(modules)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// Stem of the program's source, `<program>.bpf.c`; defaults to the case's own name.
    #[serde(default)]
    pub program: Option<String>,
    /// Function inside the object; needed only when the object has several programs.
    #[serde(default)]
    pub function: Option<String>,
    /// Manifest features the kernel must have; otherwise the case is reported unsupported.
    #[serde(default)]
    pub requires: Vec<String>,
    pub load: Expect,
    /// Kernels known to answer the load differently, each with the reason.
    #[serde(default)]
    pub load_on: BTreeMap<String, KnownAnswer>,
    /// Words the verifier's log of the load must contain (each as a substring, after the
    /// documented normalisation), whatever the load's outcome.
    #[serde(default)]
    pub log_contains: Vec<String>,
    /// Patterns the verifier's log must match one after the other, as upstream's
    /// test_loader.c matches `__msg` / `__not_msg` (see [`LogPattern`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_sequence: Vec<LogPattern>,
    /// BPF_PROG_LOAD's `log_level` (upstream's `__log_level`; 1 when not given). Level 2 logs
    /// every instruction's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<u32>,
    /// Globals patched into the object's data sections before load (signed or unsigned).
    #[serde(default)]
    pub globals: BTreeMap<String, i64>,
    /// BPF_PROG_LOAD flags by name (`"BPF_F_ANY_ALIGNMENT"`, ...) or number.
    #[serde(default)]
    pub flags: Vec<String>,
    /// The program's source when it is not `<dir>/<program>.bpf.c` (upstream's programs live
    /// in the kernel tree); never written in a case file.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// A program given as instructions instead of a C program (`[insns]`: `prog_type`,
    /// `insns` as `[code, dst, src, off, imm]` or `asm` lines, `license`, `maps`,
    /// `tracepoint`); then `program`, `function` and `globals` are not used.
    #[serde(default)]
    pub insns: Option<asm::InsnSource>,
    #[serde(default)]
    pub steps: Vec<CaseStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseStep {
    #[serde(flatten)]
    pub step: Step,
    pub expect: Expect,
    /// Kernels known to answer this step differently (e.g. a fix not backported), each with
    /// the reason; checked exactly like `expect`, and reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on: BTreeMap<String, KnownAnswer>,
    /// Errno names that mean "this kernel lacks the feature": the case is then reported
    /// unsupported, with the errno, instead of failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_if: Vec<String>,
}

/// One pattern of a [`Case::log_sequence`], matched as upstream's test_loader.c matches its
/// `__msg`: each positive pattern from where the previous one's match ended; a `not` pattern
/// (`__not_msg`) must not occur between the matches of the positive patterns around it. In a
/// `regex` pattern the parts inside `{{` `}}` are regular expressions and the rest is literal
/// (trees whose test_loader.c has no `{{`...`}}` syntax take every pattern literally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPattern {
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
}

/// What one kernel is known to answer instead, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownAnswer {
    pub expect: Expect,
    pub why: String,
}

impl CaseStep {
    /// The expectation on `kernel`, and the reason when it is a known deviation.
    pub fn expect_on(&self, kernel: &str) -> (&Expect, Option<&str>) {
        known_or(&self.expect, &self.on, kernel)
    }
}

fn known_or<'a>(
    default: &'a Expect,
    known: &'a BTreeMap<String, KnownAnswer>,
    kernel: &str,
) -> (&'a Expect, Option<&'a str>) {
    match known.get(kernel) {
        Some(answer) => (&answer.expect, Some(answer.why.as_str())),
        None => (default, None),
    }
}

/// An expected outcome, as case files write it: `"ok"` (any success), an errno name like
/// `"EINVAL"`, `"fails"` (any errno: upstream's `__failure` says no more), or `{ value = ... }`
/// (success with exactly this value).
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Ok,
    /// Any errno.
    Fails,
    /// The errno's name, one [`errno_number`] knows.
    Errno(String),
    Value(serde_json::Value),
}

/// The spelling in case files.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ExpectText {
    Word(String),
    Value { value: serde_json::Value },
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match ExpectText::deserialize(deserializer)? {
            ExpectText::Word(word) if word == "ok" => Ok(Expect::Ok),
            ExpectText::Word(word) if word == "fails" => Ok(Expect::Fails),
            ExpectText::Word(word) if errno_number(&word).is_some() => Ok(Expect::Errno(word)),
            ExpectText::Word(word) => Err(serde::de::Error::custom(format!(
                "unknown expectation `{word}`: use \"ok\", \"fails\", {{ value = ... }} or an errno name ({})",
                errno_names().collect::<Vec<_>>().join(", ")
            ))),
            ExpectText::Value { value } => Ok(Expect::Value(value)),
        }
    }
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Expect::Ok => ExpectText::Word("ok".into()),
            Expect::Fails => ExpectText::Word("fails".into()),
            Expect::Errno(name) => ExpectText::Word(name.clone()),
            Expect::Value(value) => ExpectText::Value {
                value: value.clone(),
            },
        }
        .serialize(serializer)
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ok => f.write_str("ok"),
            Expect::Fails => f.write_str("an error"),
            Expect::Errno(name) => f.write_str(name),
            Expect::Value(value) => write!(f, "ok {value}"),
        }
    }
}

impl Case {
    /// The load expectation on `kernel`, and the reason when it is a known deviation.
    pub fn load_on(&self, kernel: &str) -> (&Expect, Option<&str>) {
        known_or(&self.load, &self.load_on, kernel)
    }

    /// The `prog_flags` of the load: the flags or'ed together.
    pub fn prog_flags(&self) -> Result<u32> {
        self.flags
            .iter()
            .try_fold(0, |all, flag| Ok(all | prog_flag(flag)?))
    }

    pub fn program_stem(&self) -> &str {
        self.program.as_deref().unwrap_or(&self.name)
    }

    /// What serde cannot check: the program exists, the names the manifests define (features,
    /// kernels) and the errno names are known ones, and no step has a field its kind does not
    /// take (`steps` are the file's own step tables: a flattened, tagged step ignores unknown
    /// fields).
    fn validate(
        &self,
        dir: &Path,
        steps: &[toml::Table],
        known: &Vocabulary,
        modules: &[ModuleSource],
    ) -> Result<()> {
        match &self.insns {
            Some(insns) => {
                if self.program.is_some() || self.function.is_some() || !self.globals.is_empty() {
                    bail!("a case with `[insns]` has no `program`, `function` or `globals`");
                }
                insns.program().context("`[insns]`")?;
            }
            None => {
                let source = dir.join(format!("{}.bpf.c", self.program_stem()));
                if !source.is_file() {
                    bail!("program {} does not exist", source.display());
                }
            }
        }
        let loads = std::iter::once(&self.load).chain(self.load_on.values().map(|a| &a.expect));
        if loads.into_iter().any(|e| matches!(e, Expect::Value(_))) {
            bail!("`load` takes \"ok\" or an errno name, not a value");
        }
        self.prog_flags()?;
        let (own_modules, features): (Vec<String>, Vec<String>) = self
            .requires
            .iter()
            .cloned()
            .partition(|r| r.starts_with(MODULE_PREFIX));
        check_requires(&features, known)?;
        for wanted in &own_modules {
            let name = &wanted[MODULE_PREFIX.len()..];
            if !modules.iter().any(|m| m.name == name) {
                let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
                bail!(
                    "`requires`: unknown module `{name}`: there is no {}; modules of this case set: {}",
                    dir.join("modules").join(name).display(),
                    match names.is_empty() {
                        true => "none (a module is a directory modules/<name>/ with a Kbuild file)".to_owned(),
                        false => names.join(", "),
                    }
                );
            }
        }
        for kernel in self.load_on.keys() {
            known.check_kernel("`load_on`", kernel)?;
        }
        for (index, (step, table)) in self.steps.iter().zip(steps).enumerate() {
            let which = format!("step {} (`{}`)", index + 1, step.step.name());
            let fields: Vec<&str> = STEP_KEYS
                .iter()
                .chain(step.step.fields())
                .copied()
                .collect();
            if let Some(unknown) = table.keys().find(|key| !fields.contains(&key.as_str())) {
                bail!(
                    "{which}: unknown field `{unknown}`; known fields of `{}`: {}",
                    step.step.name(),
                    fields.join(", ")
                );
            }
            for kernel in step.on.keys() {
                known.check_kernel(&format!("`on` of {which}"), kernel)?;
            }
            let problem = match &step.step {
                Step::ReadFile { path, .. } | Step::WriteFile { path, .. } => {
                    protocol::guest_path_problem(path).map(|p| format!("`path`: {p}"))
                }
                Step::Exec { argv } => protocol::exec_problem(argv).map(|p| format!("`argv`: {p}")),
                _ => None,
            };
            if let Some(problem) = problem {
                bail!("{which}: {problem}");
            }
            if let Some(unknown) = step
                .unsupported_if
                .iter()
                .find(|n| errno_number(n).is_none())
            {
                bail!(
                    "`unsupported_if` of {which}: unknown errno `{unknown}`; known errnos: {}",
                    errno_names().collect::<Vec<_>>().join(", ")
                );
            }
        }
        Ok(())
    }
}

/// The keys every step may have, whatever its kind.
const STEP_KEYS: &[&str] = &["do", "expect", "on", "unsupported_if"];

/// Every feature in `requires` (a case's or an upstream family's) is one a manifest declares.
pub fn check_requires(requires: &[String], known: &Vocabulary) -> Result<()> {
    requires
        .iter()
        .try_for_each(|feature| known.check_feature("`requires`", feature))
}

impl CaseSet {
    /// The cases of a run and where their snapshots live: the built-in ones, or a user's
    /// directory (its objects kept apart by the directory's digest, its snapshots inside it).
    pub fn for_run(
        paths: &crate::infra::paths::Paths,
        user_dir: Option<&Path>,
    ) -> Result<(Self, PathBuf)> {
        let known = Catalog::new(&paths.kernels()).vocabulary()?;
        match user_dir {
            None => Ok((
                CaseSet::load("guest-programs", &paths.guest_programs(), &known)?,
                paths.root.join("tests").join("snapshots"),
            )),
            Some(dir) => {
                let dir = dir
                    .canonicalize()
                    .with_context(|| format!("case directory {}", dir.display()))?;
                let name = format!(
                    "user-{}",
                    crate::kernel::cache::KeyInputs::digest_of(&dir.to_string_lossy())
                );
                Ok((CaseSet::load(&name, &dir, &known)?, dir.join("snapshots")))
            }
        }
    }

    /// Reads every `*.toml` in `dir` as a case, checked against what the manifests define.
    /// Errors name the file and the problem.
    pub fn load(name: &str, dir: &Path, known: &Vocabulary) -> Result<Self> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading the case directory {}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{} has no cases: a case is <name>.toml beside <program>.bpf.c (see README.md)",
                dir.display()
            );
        }
        let modules = module_sources(dir)?;
        let cases = files
            .iter()
            .map(|file| {
                load_case(file, dir, known, &modules)
                    .with_context(|| format!("case {}", file.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            cases,
            modules,
        })
    }

    /// Keeps only the named cases (all when `names` is empty); an unknown name is an error.
    pub fn retain(&mut self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        // Upstream's cases come from each kernel's tree later (see [`crate::cases::upstream`]).
        let known_here = |name: &String| {
            name.starts_with(UPSTREAM_PREFIX)
                || sweep::plan::is_sweep(name)
                || self.cases.iter().any(|c| &c.name == name)
        };
        if let Some(unknown) = names.iter().find(|n| !known_here(n)) {
            let known: Vec<&str> = self.cases.iter().map(|c| c.name.as_str()).collect();
            bail!(
                "no case `{unknown}` in {}; cases: {}",
                self.dir.display(),
                known.join(", ")
            );
        }
        self.cases.retain(|case| names.contains(&case.name));
        Ok(())
    }

    /// The C source of a case's program.
    pub fn program_source(&self, case: &Case) -> PathBuf {
        match &case.source {
            Some(source) => source.clone(),
            None => self.dir.join(format!("{}.bpf.c", case.program_stem())),
        }
    }

    /// The distinct program sources the cases need.
    pub fn program_sources(&self) -> Vec<PathBuf> {
        let mut sources: Vec<PathBuf> = self
            .cases
            .iter()
            .filter(|case| case.insns.is_none())
            .map(|case| self.program_source(case))
            .collect();
        sources.sort();
        sources.dedup();
        sources
    }
}

/// BPF_PROG_LOAD flags by the names of `include/uapi/linux/bpf.h` (the ones upstream's
/// `__flag` accepts, and BPF_F_ANY_ALIGNMENT), or a number.
const PROG_FLAGS: &[(&str, u32)] = &[
    ("BPF_F_STRICT_ALIGNMENT", 1),
    ("BPF_F_ANY_ALIGNMENT", 2),
    ("BPF_F_TEST_RND_HI32", 4),
    ("BPF_F_TEST_STATE_FREQ", 8),
    ("BPF_F_SLEEPABLE", 16),
    ("BPF_F_XDP_HAS_FRAGS", 32),
];

pub fn prog_flag(flag: &str) -> Result<u32> {
    if let Some((_, value)) = PROG_FLAGS.iter().find(|(name, _)| *name == flag) {
        return Ok(*value);
    }
    let number = match flag.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => flag.parse(),
    };
    number.with_context(|| {
        let names: Vec<&str> = PROG_FLAGS.iter().map(|(name, _)| *name).collect();
        format!(
            "unknown program flag `{flag}`: use one of {} or a number",
            names.join(", ")
        )
    })
}

fn load_case(
    file: &Path,
    dir: &Path,
    known: &Vocabulary,
    modules: &[ModuleSource],
) -> Result<Case> {
    let text = std::fs::read_to_string(file)?;
    let mut case: Case = toml::from_str(&text)?;
    case.name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    /// The step tables as written, for the fields serde lets through.
    #[derive(Deserialize)]
    struct Written {
        #[serde(default)]
        steps: Vec<toml::Table>,
    }
    let written: Written = toml::from_str(&text)?;
    case.validate(dir, &written.steps, known, modules)?;
    Ok(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &str = r#"
description = "copies ctx->val into a global"
program = "writable_bare"
requires = ["bpf_testmod"]
load = "ok"
[globals]
early_ret = 1
out_val = 0xf1f2f3f4
minus_one = -1

[[steps]]
do = "attach"
expect = "ok"

[[steps]]
do = "testmod_read"
expect = { value = { len = 11, text = "-235736076\n" } }

[[steps]]
do = "read_global"
name = "in_val"
expect = { value = 1024 }

[[steps]]
do = "close_link"
expect = "ok"

[[steps]]
do = "testmod_read"
expect = "EIO"
"#;

    /// What the repository's manifests define (kernels/*.toml).
    fn known() -> Vocabulary {
        Vocabulary {
            kernels: ["5.10", "6.1", "6.12", "7.2"].map(String::from).into(),
            features: ["attach_cookie", "bpf_test_finish", "bpf_testmod", "nbd"]
                .map(String::from)
                .into(),
        }
    }

    fn case_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_case_file_parses_into_steps_and_expectations() {
        let dir = case_dir(&[("bare.toml", BARE), ("writable_bare.bpf.c", "")]);
        let set = CaseSet::load("builtin", dir.path(), &known()).unwrap();
        assert_eq!(set.cases.len(), 1);
        let case = &set.cases[0];
        assert_eq!(case.name, "bare");
        assert_eq!(case.program_stem(), "writable_bare");
        assert_eq!(case.globals["out_val"], 0xf1f2f3f4);
        assert_eq!(case.globals["minus_one"], -1);
        assert_eq!(case.steps.len(), 5);
        assert_eq!(
            case.steps[0].step,
            Step::Attach {
                tracepoint: None,
                cookie: None,
            }
        );
        assert_eq!(
            case.steps[2],
            CaseStep {
                step: Step::ReadGlobal {
                    name: "in_val".into()
                },
                expect: Expect::Value(1024.into()),
                on: Default::default(),
                unsupported_if: vec![],
            }
        );
        assert_eq!(case.steps[4].expect, Expect::Errno("EIO".into()));
        assert_eq!(
            set.program_sources(),
            vec![dir.path().join("writable_bare.bpf.c")]
        );
    }

    #[test]
    fn a_kernel_can_be_known_to_answer_otherwise_with_a_reason() {
        let text = BARE.replace(
            "do = \"close_link\"\nexpect = \"ok\"\n",
            "do = \"close_link\"\nexpect = \"ok\"\non = { \"6.1\" = { expect = \"EBADF\", why = \"made up\" } }\n",
        );
        let dir = case_dir(&[("bare.toml", &text), ("writable_bare.bpf.c", "")]);
        let case = CaseSet::load("x", dir.path(), &known())
            .unwrap()
            .cases
            .remove(0);
        assert_eq!(case.steps[3].expect_on("6.12"), (&Expect::Ok, None));
        assert_eq!(
            case.steps[3].expect_on("6.1"),
            (&Expect::Errno("EBADF".into()), Some("made up"))
        );
        assert_eq!(case.load_on("6.1"), (&Expect::Ok, None));
    }

    #[test]
    fn mistakes_are_named_with_their_file() {
        let dir = case_dir(&[("bare.toml", BARE)]);
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(
            error.contains("bare.toml") && error.contains("writable_bare.bpf.c does not exist"),
            "{error}"
        );

        let typo = BARE.replace("expect = \"EIO\"", "expect = \"EIOO\"");
        let dir = case_dir(&[("bare.toml", &typo), ("writable_bare.bpf.c", "")]);
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(
            error.contains("bare.toml") && error.contains("unknown expectation `EIOO`"),
            "{error}"
        );

        let unknown_step = BARE.replace("do = \"close_link\"", "do = \"detatch\"");
        let dir = case_dir(&[("bare.toml", &unknown_step), ("writable_bare.bpf.c", "")]);
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(error.contains("detatch"), "{error}");

        let dir = case_dir(&[]);
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(error.contains("has no cases"), "{error}");
    }

    /// The error of a case directory holding `bare.toml` = `text` (and its program).
    fn load_error(text: &str) -> (tempfile::TempDir, String) {
        let dir = case_dir(&[("bare.toml", text), ("writable_bare.bpf.c", "")]);
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        println!("{error}");
        (dir, error)
    }

    #[test]
    fn a_misspelt_feature_names_the_file_the_key_the_value_and_the_known_features() {
        let (dir, error) = load_error(&BARE.replace(
            r#"requires = ["bpf_testmod"]"#,
            r#"requires = ["bpf_testmd"]"#,
        ));
        let file = dir.path().join("bare.toml");
        assert_eq!(
            error,
            format!(
                "case {}: `requires`: unknown feature `bpf_testmd`; known features (the \
                 `features` of kernels/*.toml): attach_cookie, bpf_test_finish, bpf_testmod, nbd",
                file.display()
            )
        );
    }

    #[test]
    fn a_misspelt_kernel_names_the_file_the_key_the_value_and_the_known_kernels() {
        let (dir, error) = load_error(&BARE.replace(
            "do = \"close_link\"\nexpect = \"ok\"\n",
            "do = \"close_link\"\nexpect = \"ok\"\non = { \"6.13\" = { expect = \"EBADF\", why = \"typo\" } }\n",
        ));
        let file = dir.path().join("bare.toml");
        assert_eq!(
            error,
            format!(
                "case {}: `on` of step 4 (`close_link`): unknown kernel `6.13`; known kernels \
                 (kernels/*.toml): 5.10, 6.1, 6.12, 7.2",
                file.display()
            )
        );

        let (_dir, error) = load_error(&BARE.replace(
            "load = \"ok\"\n",
            "load = \"ok\"\nload_on = { \"5.1\" = { expect = \"EINVAL\", why = \"typo\" } }\n",
        ));
        assert!(
            error.contains("`load_on`: unknown kernel `5.1`; known kernels"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_step_field_or_errno_is_named_with_what_is_known() {
        let (_dir, error) = load_error(&BARE.replace(
            "do = \"attach\"\nexpect = \"ok\"\n",
            "do = \"attach\"\nexpect = \"ok\"\ntracepiont = \"x\"\n",
        ));
        assert!(
            error.ends_with(
                "step 1 (`attach`): unknown field `tracepiont`; known fields of `attach`: \
                 do, expect, on, unsupported_if, tracepoint, cookie"
            ),
            "{error}"
        );

        let (_dir, error) = load_error(&BARE.replace(
            "do = \"close_link\"\nexpect = \"ok\"\n",
            "do = \"close_link\"\nexpect = \"ok\"\nunsupported_if = [\"EOPNOTSUP\"]\n",
        ));
        assert!(
            error.contains("`unsupported_if` of step 4 (`close_link`): unknown errno `EOPNOTSUP`")
                && error.contains("EOPNOTSUPP"),
            "{error}"
        );

        let (_dir, error) = load_error(&BARE.replace("expect = \"EIO\"", "expect = \"EIOO\""));
        assert!(
            error.contains("expect = \"EIOO\"")
                && error.contains("unknown expectation `EIOO`")
                && error.contains("EPERM, ENOENT"),
            "{error}"
        );

        let (_dir, error) = load_error(&format!("require = []\n{BARE}"));
        assert!(error.contains("unknown field `require`"), "{error}");
    }

    #[test]
    fn a_module_a_case_requires_is_a_directory_of_the_set() {
        let text = BARE.replace(
            r#"requires = ["bpf_testmod"]"#,
            r#"requires = ["module:own_tp"]"#,
        );
        let (dir, error) = load_error(&text);
        assert_eq!(
            error,
            format!(
                "case {}: `requires`: unknown module `own_tp`: there is no {}; modules of this \
                 case set: none (a module is a directory modules/<name>/ with a Kbuild file)",
                dir.path().join("bare.toml").display(),
                dir.path().join("modules/own_tp").display()
            )
        );
        let other = dir.path().join("modules/other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("Kbuild"), "obj-m += other.o\n").unwrap();
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(
            error.ends_with("modules of this case set: other"),
            "{error}"
        );
        let own = dir.path().join("modules/own_tp");
        std::fs::create_dir_all(&own).unwrap();
        let error = format!(
            "{:#}",
            CaseSet::load("x", dir.path(), &known()).unwrap_err()
        );
        assert!(error.contains("no Kbuild file"), "{error}");
        std::fs::write(own.join("Kbuild"), "obj-m += own_tp.o\n").unwrap();
        let set = CaseSet::load("x", dir.path(), &known()).unwrap();
        let names: Vec<&str> = set.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["other", "own_tp"]);
    }

    #[test]
    fn file_and_exec_steps_are_checked_when_read() {
        let step = |body: &str| format!("{BARE}\n[[steps]]\n{body}\nexpect = \"ok\"\n");
        let (_dir, error) = load_error(&step("do = \"read_file\"\npath = \"/etc/shadow\""));
        assert!(
            error.ends_with(
                "step 6 (`read_file`): `path`: `/etc/shadow` is not one of the guest's own files \
                 (under /proc, /sys, /dev, /tmp)"
            ),
            "{error}"
        );
        let (_dir, error) = load_error(&step(
            "do = \"write_file\"\npath = \"/tmp/../x\"\ntext = \"1\"",
        ));
        assert!(error.contains("`..` component"), "{error}");
        let (_dir, error) = load_error(&step("do = \"exec\"\nargv = []"));
        assert!(
            error.ends_with(
                "step 6 (`exec`): `argv`: `argv` is empty: it needs at least the program"
            ),
            "{error}"
        );
        let dir = case_dir(&[
            (
                "bare.toml",
                &step("do = \"exec\"\nargv = [\"cat\", \"/proc/x\"]"),
            ),
            ("writable_bare.bpf.c", ""),
        ]);
        assert!(CaseSet::load("x", dir.path(), &known()).is_ok());
    }

    /// Every built-in case and upstream family reads cleanly against the real manifests.
    #[test]
    fn every_built_in_case_and_family_loads() {
        let paths = crate::infra::paths::Paths::from_env();
        let (set, _) = CaseSet::for_run(&paths, None).unwrap();
        assert!(set.cases.len() > 20);
        let known = Catalog::new(&paths.kernels()).vocabulary().unwrap();
        assert!(!upstream::families(&paths.upstream_families(), &known)
            .unwrap()
            .is_empty());
    }
}
