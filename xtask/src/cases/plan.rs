//! Planning, pure: which cases and probes run on one kernel. A case whose required feature
//! the kernel lacks, or whose program did not compile, is decided here and never reaches the
//! guest; everything else goes into the guest's [`Plan`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use protocol::{CasePlan, HelperProbe, Plan, ProgramSource};

use crate::cases::compile::Compiled;
use crate::cases::CaseOutcome;
use crate::cases::{Case, CaseSet};
use crate::kernel::manifest::Manifest;

/// What one kernel's run will do, and what was decided without it.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelPlan {
    /// What the guest runs.
    pub guest: Plan,
    /// Outcomes known before the boot: unsupported cases, compile errors.
    pub decided: BTreeMap<String, CaseOutcome>,
}

impl KernelPlan {
    pub fn runs_probes(&self) -> bool {
        !self.guest.helper_probes.is_empty()
    }
}

/// What a run is for: measuring (the built-in cases plus the helper and kfunc probes, which
/// also regenerate docs/helpers.md when accepted) or judging chosen cases only (a case
/// directory, `--case`, every bisect step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Measure,
    CasesOnly,
}

impl Scope {
    /// Probes belong to the whole built-in measurement, never to a selection or to bisect
    /// (which passes `probes_allowed = false`).
    pub fn of(builtin_cases: bool, chosen_cases: &[String], probes_allowed: bool) -> Self {
        match builtin_cases && chosen_cases.is_empty() && probes_allowed {
            true => Scope::Measure,
            false => Scope::CasesOnly,
        }
    }
}

/// Plans one kernel: `helpers` are the tree's helpers, probed only when measuring.
pub fn plan(
    case_set: &CaseSet,
    manifest: &Manifest,
    modules: &[PathBuf],
    compiled: &Compiled,
    scope: Scope,
    helpers: Vec<HelperProbe>,
) -> KernelPlan {
    let mut decided = BTreeMap::new();
    let mut cases = Vec::new();
    for case in &case_set.cases {
        match plan_case(case_set, case, manifest, compiled) {
            Ok(planned) => cases.push(planned),
            Err(outcome) => {
                decided.insert(case.name.clone(), *outcome);
            }
        }
    }
    let guest = Plan {
        modules: modules.to_vec(),
        tracepoint_names: manifest.tracepoint_names.clone(),
        cases,
        helper_probes: match scope {
            Scope::Measure => helpers,
            Scope::CasesOnly => Vec::new(),
        },
        shell: false,
        sweeps: Vec::new(),
    };
    KernelPlan { guest, decided }
}

/// The guest's part of a case, or the outcome that makes it unnecessary.
fn plan_case(
    case_set: &CaseSet,
    case: &Case,
    manifest: &Manifest,
    compiled: &Compiled,
) -> Result<CasePlan, Box<CaseOutcome>> {
    // `module:<name>` is the case set's own module: built for every kernel (a kernel it does
    // not build for fails as a whole) and loaded with the others.
    let missing: Vec<&str> = case
        .requires
        .iter()
        .filter(|feature| !feature.starts_with(crate::cases::MODULE_PREFIX))
        .filter(|feature| !manifest.features.contains(*feature))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let reason = format!(
            "needs {}, which this kernel does not have",
            missing.join(", ")
        );
        return Err(Box::new(CaseOutcome::Unsupported { reason }));
    }
    let source = match &case.insns {
        Some(insns) => {
            let program = insns.program().map_err(|error| {
                Box::new(CaseOutcome::CompileError {
                    message: format!("{error:#}"),
                })
            })?;
            ProgramSource::Insns(program)
        }
        None => ProgramSource::object(object_of(case_set, case, compiled)?, case.function.clone()),
    };
    Ok(CasePlan {
        name: case.name.clone(),
        source,
        // Two's complement: a negative global is the same bits in the object's data section.
        globals: case
            .globals
            .iter()
            .map(|(name, value)| (name.clone(), *value as u64))
            .collect(),
        // Validated when the case was read.
        prog_flags: case.prog_flags().unwrap_or_default(),
        log_level: case.log_level,
        steps: case.steps.iter().map(|s| s.step.clone()).collect(),
    })
}

/// The compiled object of a case's C program, or the outcome that stops it.
fn object_of(
    case_set: &CaseSet,
    case: &Case,
    compiled: &Compiled,
) -> Result<PathBuf, Box<CaseOutcome>> {
    let source = case_set.program_source(case);
    match compiled.get(&source) {
        Some(Ok(object)) => Ok(object.clone()),
        Some(Err(message)) => Err(Box::new(CaseOutcome::CompileError {
            message: message.clone(),
        })),
        None => {
            let message = format!("{} was not compiled", source.display());
            Err(Box::new(CaseOutcome::CompileError { message }))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    use crate::test_support::manifest;

    fn case(name: &str, requires: &[&str]) -> Case {
        Case {
            globals: [("minus_one".to_owned(), -1)].into(),
            ..crate::test_support::case(name, requires)
        }
    }

    fn set(cases: Vec<Case>) -> CaseSet {
        CaseSet {
            name: "builtin".into(),
            dir: "/cases".into(),
            cases,
            modules: vec![],
        }
    }

    fn compiled(entries: &[(&str, Result<&str, &str>)]) -> Compiled {
        entries
            .iter()
            .map(|(source, result)| {
                (
                    Path::new("/cases").join(source),
                    result.map(PathBuf::from).map_err(str::to_owned),
                )
            })
            .collect()
    }

    fn probe() -> Vec<HelperProbe> {
        vec![HelperProbe {
            id: 1,
            name: "map_lookup_elem".into(),
        }]
    }

    #[rstest]
    #[case::planned(&["bpf_testmod"], Ok("/o/c.o"), None)]
    #[case::unsupported_by_feature(&[], Ok("/o/c.o"), Some("unsupported: needs bpf_testmod, which this kernel does not have"))]
    #[case::compile_error(&["bpf_testmod"], Err("c.bpf.c:3:1: error: x"), Some("compile error: c.bpf.c:3:1: error: x"))]
    fn a_case_is_planned_or_decided(
        #[case] features: &[&str],
        #[case] object: Result<&str, &str>,
        #[case] decided: Option<&str>,
    ) {
        let plan = plan(
            &set(vec![case("c", &["bpf_testmod"])]),
            &manifest(features),
            &[],
            &compiled(&[("c.bpf.c", object)]),
            Scope::CasesOnly,
            probe(),
        );
        let found = plan.decided.get("c").map(|outcome| match outcome {
            CaseOutcome::Unsupported { reason } => format!("unsupported: {reason}"),
            CaseOutcome::CompileError { message } => format!("compile error: {message}"),
            other => format!("{other:?}"),
        });
        assert_eq!(found.as_deref(), decided);
        assert_eq!(plan.guest.cases.len(), usize::from(decided.is_none()));
        if let Some(planned) = plan.guest.cases.first() {
            assert_eq!(planned.source, ProgramSource::object("/o/c.o", None));
            assert_eq!(planned.globals["minus_one"], u64::MAX);
        }
    }

    /// A case set's own module is built for every kernel that gets a plan at all.
    #[test]
    fn a_module_of_the_case_set_is_no_missing_feature() {
        let plan = plan(
            &set(vec![case("c", &["module:own_tp", "bpf_testmod"])]),
            &manifest(&[]),
            &[],
            &compiled(&[("c.bpf.c", Ok("/o/c.o"))]),
            Scope::CasesOnly,
            vec![],
        );
        assert!(matches!(
            &plan.decided["c"],
            CaseOutcome::Unsupported { reason } if reason == "needs bpf_testmod, which this kernel does not have"
        ));
    }

    #[test]
    fn a_program_that_was_never_compiled_is_a_compile_error_not_a_crash() {
        let plan = plan(
            &set(vec![case("c", &[])]),
            &manifest(&[]),
            &[],
            &compiled(&[]),
            Scope::CasesOnly,
            vec![],
        );
        assert!(matches!(
            &plan.decided["c"],
            CaseOutcome::CompileError { message } if message.contains("/cases/c.bpf.c was not compiled")
        ));
    }

    #[rstest]
    #[case::builtin_run(true, &[], true, Scope::Measure)]
    #[case::chosen_cases(true, &["bare"], true, Scope::CasesOnly)]
    #[case::user_directory(false, &[], true, Scope::CasesOnly)]
    #[case::bisect_without_cases(true, &[], false, Scope::CasesOnly)]
    fn probes_run_only_when_measuring_the_builtin_set(
        #[case] builtin: bool,
        #[case] chosen: &[&str],
        #[case] probes_allowed: bool,
        #[case] scope: Scope,
    ) {
        let chosen: Vec<String> = chosen.iter().map(|c| c.to_string()).collect();
        assert_eq!(Scope::of(builtin, &chosen, probes_allowed), scope);
        let plan = plan(
            &set(vec![]),
            &manifest(&[]),
            &[],
            &compiled(&[]),
            scope,
            probe(),
        );
        assert_eq!(plan.runs_probes(), scope == Scope::Measure);
    }

    #[test]
    fn the_guest_gets_the_modules_and_the_kernels_tracepoint_names() {
        let mut manifest = manifest(&[]);
        manifest.tracepoint_names.insert("a".into(), "a_tp".into());
        let plan = plan(
            &set(vec![]),
            &manifest,
            &[PathBuf::from("/m/bpf_testmod.ko")],
            &compiled(&[]),
            Scope::CasesOnly,
            vec![],
        );
        assert_eq!(plan.guest.modules, [PathBuf::from("/m/bpf_testmod.ko")]);
        assert_eq!(plan.guest.tracepoint_names["a"], "a_tp");
    }
}
