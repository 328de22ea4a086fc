//! `cargo xtask vmtest --shell`: the same kernel, modules, harness and writable run directory
//! as a run, but the guest runs the chosen case only up to and including its last attach,
//! pins the link under /sys/fs/bpf/wtp/, prints what is loaded and how to trigger it, and
//! hands over an interactive shell (bpftool on the PATH). Leaving the shell ends the VM; the
//! VM dies with xtask (Ctrl-C or a kill on the host).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use protocol::{
    CasePlan, Plan, Step, PIN_DIR, PLAN_FILE, TESTMOD_SYSFS, TESTMOD_WRITABLE_READ_LEN,
};
use xshell::cmd;

use crate::cases::plan::{self, Scope};
use crate::cases::CaseOutcome;
use crate::cases::CaseSet;
use crate::guest::boot::{self, Boot};
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::paths::Paths;
use crate::infra::runner::Runner;
use crate::infra::{host_tools, rundir};
use crate::kernel::build;
use crate::kernel::manifest::Catalog;
use crate::kernel::source;

#[derive(Debug, Clone)]
pub struct Options {
    pub kernel: String,
    /// The case to prepare; none: only the modules are loaded.
    pub case: Option<String>,
    /// The case directory (default: the built-in cases).
    pub cases: Option<PathBuf>,
}

/// Prepares and boots; returns the shell's (vng's) exit status.
pub fn run(paths: &Paths, options: &Options) -> Result<i32, SetupFailure> {
    let runner = Runner::new(&paths.root).at(SetupStage::HostTools)?;
    host_tools::ensure(&runner).at(SetupStage::HostTools)?;
    let catalog = Catalog::new(&paths.kernels());
    let manifest = catalog.load(&options.kernel).at(SetupStage::Input)?;
    let (mut case_set, _) =
        CaseSet::for_run(paths, options.cases.as_deref()).at(SetupStage::Input)?;
    match &options.case {
        Some(case) => case_set
            .retain(std::slice::from_ref(case))
            .at(SetupStage::Input)?,
        None => case_set.cases.clear(),
    }
    let compiled =
        crate::commands::vmtest::prepare::guest_side(&runner, paths, &case_set)?.compiled;
    let tree = source::fetch(&runner, paths, &manifest.source).at(SetupStage::Fetch)?;
    let build = build::ensure(&runner, paths, &catalog, &manifest, &tree)?;
    // The case set's own modules load before the shell like bpf_testmod, with or without a case.
    let modules =
        crate::commands::vmtest::prepare::with_user_modules(&runner, paths, &build, &case_set)?;
    let kernel_plan = plan::plan(
        &case_set,
        &manifest,
        &modules,
        &compiled,
        Scope::CasesOnly,
        Vec::new(),
    );
    if let Some((name, outcome)) = kernel_plan.decided.iter().next() {
        let error = anyhow!(
            "case {name} cannot run on {}: {}",
            manifest.name,
            why(outcome)
        );
        return Err(error).at(SetupStage::Input);
    }
    let guest = for_shell(kernel_plan.guest).at(SetupStage::Input)?;
    let dir = rundir::create(&paths.runs(&manifest.name)).at(SetupStage::Boot)?;
    let script = write_run_dir(paths, &dir, &guest).at(SetupStage::Boot)?;
    eprintln!("  run directory: {}", dir.display());
    let accel = boot::choose_accel(&runner, paths, &build.bzimage, &dir).at(SetupStage::Boot)?;
    let boot = Boot {
        kernel: &build.bzimage,
        accel,
        writable_dir: &dir,
    };
    let sh = &runner.sh;
    let args = boot::vng_shell_args(&boot, &script);
    let status = runner
        .run_interactive(cmd!(sh, "vng {args...}"))
        .at(SetupStage::Boot)?;
    Ok(status.code().unwrap_or(1))
}

/// The guest's plan for a shell: the case's steps up to and including its last attach, then
/// a pin, and nothing unpinned at the end. Pure.
pub fn for_shell(mut plan: Plan) -> Result<Plan> {
    plan.shell = true;
    plan.helper_probes.clear();
    for case in &mut plan.cases {
        let last_attach = case
            .steps
            .iter()
            .rposition(|step| matches!(step, Step::Attach { .. }))
            .ok_or_else(|| {
                anyhow!(
                    "case {} never attaches: there is nothing to keep attached for a shell \
                     (choose a case with an `attach` step, or none to only load the modules)",
                    case.name
                )
            })?;
        case.steps.truncate(last_attach + 1);
        case.steps.push(Step::Pin);
    }
    Ok(plan)
}

/// What the user reads before the prompt: what is loaded and how to poke at it.
pub fn introduction(plan: &Plan) -> String {
    let mut text = String::from("\nwtp shell: ");
    match plan.cases.first() {
        None => text.push_str("the modules are loaded; no case was run.\n"),
        Some(case) => text.push_str(&describe(case)),
    }
    let modules: Vec<String> = plan
        .modules
        .iter()
        .map(|path| {
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if !modules.is_empty() {
        text.push_str(&format!(
            "  modules loaded: {} (their tracepoints: ls /sys/kernel/tracing/events/)\n",
            modules.join(", ")
        ));
    }
    text.push_str(
        "  inspect: bpftool prog show; bpftool link show; cat /sys/kernel/tracing/available_events\n\
         leave with `exit` (or Ctrl-D): the VM ends.\n",
    );
    text
}

fn describe(case: &CasePlan) -> String {
    format!(
        "case {name} ran up to its last attach; the link is pinned at {PIN_DIR}/{name}.\n\
         \x20 results so far: the run directory's results.jsonl\n\
         \x20 trigger bpf_testmod's writable tracepoint: dd if={TESTMOD_SYSFS} bs={TESTMOD_WRITABLE_READ_LEN} count=1\n\
         \x20 detach: rm {PIN_DIR}/{name}\n",
        name = case.name
    )
}

/// Writes the plan, the introduction and the script vng runs as the guest's shell.
fn write_run_dir(paths: &Paths, dir: &Path, plan: &Plan) -> Result<PathBuf> {
    std::fs::write(dir.join(PLAN_FILE), serde_json::to_string_pretty(plan)?)?;
    let intro = dir.join("shell-intro.txt");
    std::fs::write(&intro, introduction(plan))?;
    let script = dir.join("shell.sh");
    let harness = paths.harness_binary();
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             # Written by `cargo xtask vmtest --shell`: prepare, then hand over a shell.\n\
             export PATH=\"$PATH:/usr/sbin:/sbin\"\n\
             '{harness}' '{dir}' || echo 'wtp: the harness failed; see {dir}/results.jsonl'\n\
             cat '{intro}'\n\
             export PS1='wtp-guest# '\n\
             /bin/bash --norc -i\n\
             {reset}\n",
            reset = crate::guest::boot::RESET_VM,
            harness = harness.display(),
            dir = dir.display(),
            intro = intro.display()
        ),
    )
    .with_context(|| format!("writing {}", script.display()))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

fn why(outcome: &CaseOutcome) -> String {
    match outcome {
        CaseOutcome::Unsupported { reason } => reason.clone(),
        CaseOutcome::CompileError { message } => format!("it does not compile:\n{message}"),
        other => format!("{other:?}"),
    }
}

/// Refuses what cannot be a shell's case before anything is built.
pub fn check(options: &Options) -> Result<()> {
    if let Some(case) = &options.case {
        if case.starts_with(crate::cases::UPSTREAM_PREFIX) {
            bail!("{case} is one of upstream's load-only programs: it never attaches, so there is nothing to keep for a shell");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            modules: vec!["/m/bpf_testmod.ko".into()],
            tracepoint_names: Default::default(),
            cases: vec![CasePlan {
                name: "bare".into(),
                source: protocol::ProgramSource::object("/o.o", None),
                globals: Default::default(),
                prog_flags: 0,
                log_level: None,
                steps,
            }],
            helper_probes: vec![],
            shell: false,
            sweeps: Vec::new(),
        }
    }

    fn attach() -> Step {
        Step::Attach {
            tracepoint: None,
            cookie: None,
        }
    }

    #[test]
    fn the_shell_runs_a_case_to_its_last_attach_and_pins_it() {
        let shell = for_shell(plan(vec![
            Step::TestmodRead,
            attach(),
            Step::TestmodRead,
            Step::Detach,
            attach(),
            Step::TestmodRead,
        ]))
        .unwrap();
        assert!(shell.shell);
        assert_eq!(
            shell.cases[0].steps,
            [
                Step::TestmodRead,
                attach(),
                Step::TestmodRead,
                Step::Detach,
                attach(),
                Step::Pin
            ]
        );
        let intro = introduction(&shell);
        assert!(intro.contains("/sys/fs/bpf/wtp/bare"), "{intro}");
        assert!(intro.contains("modules loaded: bpf_testmod.ko"), "{intro}");
        assert!(
            intro.contains("dd if=/sys/kernel/bpf_testmod bs=64 count=1"),
            "{intro}"
        );
    }

    #[test]
    fn a_case_that_never_attaches_is_refused_with_the_way_out() {
        let error = for_shell(plan(vec![Step::TestmodRead])).unwrap_err();
        assert!(error.to_string().contains("never attaches"), "{error}");
        let modules_only = Plan {
            cases: vec![],
            ..plan(vec![])
        };
        let shell = for_shell(modules_only).unwrap();
        assert!(introduction(&shell).contains("no case was run"));
    }
}
