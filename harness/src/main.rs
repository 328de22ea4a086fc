//! Guest harness: runs as root inside the VM. Reads the plan from the run directory, loads the
//! modules, runs every case and appends one record per event to the results file there.
//! Started as `--init <run dir>` it is the guest's PID 1 (harness/src/init.rs), which sets up
//! the guest and runs `harness <run dir>` as its child.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness::{case, init, module, probes, report, sweep};
use protocol::{BootInfo, ModuleLoad, Plan, Record, PLAN_FILE, PROBED_PROG_TYPES, RESULTS_FILE};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Some(run_dir) = init::run_dir_from(&args) {
        if std::process::id() != 1 {
            eprintln!("harness: --init is for the guest kernel's init (PID 1) only");
            return ExitCode::from(2);
        }
        init::run(&run_dir, harness_status);
    }
    let Some(run_dir) = args.first().map(PathBuf::from) else {
        eprintln!(
            "usage: harness <run-dir>  (the directory holding {PLAN_FILE})\n       \
             harness --init <run-dir>  (as the guest's init: mounts, runs the harness, resets)"
        );
        return ExitCode::from(2);
    };
    ExitCode::from(harness_status(&run_dir) as u8)
}

/// The harness's run on `run_dir`, as an exit status (its error on stderr).
fn harness_status(run_dir: &Path) -> i32 {
    match run(run_dir) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("harness: {error}");
            1
        }
    }
}

fn run(run_dir: &Path) -> Result<(), String> {
    let plan_path = run_dir.join(PLAN_FILE);
    let plan_text = std::fs::read_to_string(&plan_path)
        .map_err(|e| format!("reading {}: {e}", plan_path.display()))?;
    let plan: Plan = serde_json::from_str(&plan_text)
        .map_err(|e| format!("parsing {}: {e}", plan_path.display()))?;
    let results_path = run_dir.join(RESULTS_FILE);
    let mut results = report::Results::create(&results_path)
        .map_err(|e| format!("creating {}: {e}", results_path.display()))?;
    let mut write = |record: Record| {
        results
            .write(&record)
            .map_err(|e| format!("writing {}: {e}", results_path.display()))
    };

    match unlimited_memlock() {
        Ok(before) => eprintln!("harness: RLIMIT_MEMLOCK raised from {before} bytes to unlimited"),
        Err(error) => eprintln!("harness: raising RLIMIT_MEMLOCK: {error}"),
    }
    // Kept for the whole run: the first JIT pack (x86 since 5.18: 2 MiB, filled with int3
    // and made read-only and executable when allocated, freed when its last program goes)
    // then outlives every case. Without it each case's load allocated and filled a pack
    // and its close freed it again: a tenth of the harness's guest time under TCG.
    let _jit_pack_anchor = sweep::returns_zero(protocol::ProgType::SocketFilter, "wtp_jit_anchor")
        .map_err(|e| eprintln!("harness: loading the JIT pack's anchor program: {e}"));
    // Before the modules load: their uevents would wake udev too.
    match harness::udev::stop() {
        Ok(done) => eprintln!("harness: {done}"),
        Err(error) => eprintln!("harness: {error}; NBD cases wait for udev instead"),
    }
    write(Record::Boot(boot_info(&plan)))?;
    for case in &plan.cases {
        write(Record::Started {
            case: case.name.clone(),
            uptime_ms: uptime_ms(),
        })?;
        eprintln!("harness: case {}", case.name);
        write(Record::Finished(Box::new(case::run(
            case,
            &plan.tracepoint_names,
            plan.shell,
        ))))?;
    }
    for planned in &plan.sweeps {
        eprintln!(
            "harness: sweep {} ({} programs)",
            planned.name,
            planned.programs.len()
        );
        let started = uptime_ms();
        let notes = sweep::run(planned, 200, |results| {
            write(Record::Sweep {
                sweep: planned.name.clone(),
                results,
                done_ms: None,
                notes: Vec::new(),
            })
        })?;
        write(Record::Sweep {
            sweep: planned.name.clone(),
            results: Vec::new(),
            done_ms: Some(uptime_ms().saturating_sub(started)),
            notes,
        })?;
    }
    if !plan.helper_probes.is_empty() {
        for prog_type in PROBED_PROG_TYPES {
            eprintln!(
                "harness: probing {} helpers for program type {prog_type}",
                plan.helper_probes.len()
            );
            let answers = probes::helpers(&plan.helper_probes, prog_type);
            write(Record::Helpers { prog_type, answers })?;
            let answers = probes::kfuncs(prog_type);
            write(Record::Kfuncs { prog_type, answers })?;
        }
    }
    write(Record::End {
        cases: plan.cases.len(),
    })
}

fn boot_info(plan: &Plan) -> BootInfo {
    let modules = plan
        .modules
        .iter()
        .map(|path| ModuleLoad {
            path: path.clone(),
            outcome: module::load(path),
        })
        .collect();
    BootInfo {
        uptime_ms: uptime_ms(),
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        modules,
    }
}

/// Milliseconds since the guest kernel started (CLOCK_BOOTTIME).
fn uptime_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or_default()
}

/// Before BPF objects were charged to memory cgroups (5.11), every map and program counts
/// against RLIMIT_MEMLOCK (64 KiB for the guest's processes on 5.10), and a closed program is
/// uncharged only when its deferred free has run: a sweep's thousands of loads in a row then
/// failed with EPERM wherever the frees lagged. libbpf raises the limit the same way
/// (`bump_rlimit_memlock`), but only once it loads something; the harness does it first, for
/// both loaders and the sweeps alike.
/// Returns the soft limit it had.
fn unlimited_memlock() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let (before, _) = getrlimit(Resource::RLIMIT_MEMLOCK)?;
    setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY)?;
    Ok(before)
}
