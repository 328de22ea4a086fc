//! Booting a kernel with virtme-ng. The guest sees the host's root filesystem read-only and
//! only the run directory writable; the harness binary and the BPF objects are read from their
//! host paths. The whole console goes to `console.log` in the run directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use protocol::{Plan, PLAN_FILE, RESULTS_FILE};
use xshell::cmd;

use crate::guest::results::{RunFailure, RunRecords};
use crate::guest::shards;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::rundir;
use crate::infra::runner::{Finished, Runner};

/// Memory and vCPUs of the guest. One vCPU: the minimal kernel is built without SMP.
pub const GUEST_MEMORY_MIB: u64 = 1024;
/// QEMU's own memory around the guest's (its peak RSS is about 200 MiB for a 1 GiB guest,
/// which the minimal kernel leaves mostly untouched): a margin for several VMs at once.
pub const QEMU_OVERHEAD_MIB: u64 = 256;
pub const GUEST_CPUS: u32 = 1;
/// A KVM boot of the minimal kernel takes about a second; a nested KVM that hangs never ends.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the guest's CPU comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    Kvm,
    /// QEMU's software emulation; slower but works anywhere.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        })
    }
}

/// One VM boot: which kernel, how, and the one host directory the guest may write.
pub struct Boot<'a> {
    pub kernel: &'a Path,
    pub accel: Accel,
    pub writable_dir: &'a Path,
}

/// What the guest runs before the VM ends.
pub enum Guest<'a> {
    /// A shell command, run by virtme-ng's init (the KVM probe, the bench's bare boot).
    Command(String),
    /// The harness on the run directory (`Boot::writable_dir`) as the guest's init, started
    /// from `initramfs` (initramfs.rs) in place of virtme-ng's init: a plan run needs none of
    /// the 2.5–4.5 s that vng's init spends in systemd-tmpfiles and udev.
    HarnessInit {
        harness: &'a Path,
        initramfs: &'a Path,
    },
}

/// The `vng` arguments for a boot that runs `guest` and ends.
pub fn vng_args(boot: &Boot<'_>, guest: &Guest<'_>) -> Vec<String> {
    let init_args = match guest {
        Guest::Command(_) => Vec::new(),
        Guest::HarnessInit { harness, .. } => harness_init_args(harness, boot.writable_dir),
    };
    let mut args = common_args(boot, init_args);
    // The kernel console goes to stdout too: panics and boot timing are read from it.
    args.push("--verbose".into());
    let command = match guest {
        Guest::Command(command) => command.clone(),
        // vng needs a command for its batch mode (-no-reboot, the status port); the
        // initramfs's init runs instead of vng's, which would run this.
        Guest::HarnessInit { harness, .. } => {
            format!("'{}' '{}'", harness.display(), boot.writable_dir.display())
        }
    };
    args.extend(["--exec".into(), ending_the_vm(&command)]);
    if let Guest::HarnessInit { initramfs, .. } = guest {
        // Last: vng passes everything after --qemu-opts to QEMU.
        args.push(format!(
            "--qemu-opts=-initrd {}",
            shell_word(&initramfs.display().to_string())
        ));
    }
    args
}

/// What the initramfs's init reads from its environment (the kernel passes `name=value`
/// arguments it does not know to init that way): the harness and its run directory.
fn harness_init_args(harness: &Path, run_dir: &Path) -> Vec<String> {
    vec![
        format!("wtp_harness={}", harness.display()),
        format!("wtp_run_dir={}", run_dir.display()),
    ]
}

/// `word` as one word for vng, which splits `--append` and `--qemu-opts` like a shell.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    match word.chars().all(plain) {
        true => word.to_owned(),
        false => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

/// The line a guest runs to end the VM. The minimal kernel has no ACPI (19–57 s of every cold
/// build, BENCHMARKS.md), so the guest init's power-off would only halt the CPU and QEMU would
/// idle until the timeout. A reset instead ends QEMU at once, because vng starts it with
/// `-no-reboot`; sysrq `b` resets without going through init.
pub const RESET_VM: &str = "echo b > /proc/sysrq-trigger";

/// `command`, then its exit status written where vng reads it (the `virtme.ret` port, as
/// vng's own init does: the write returns once QEMU has it), then the reset.
fn ending_the_vm(command: &str) -> String {
    format!("{command}; echo $? > /dev/virtio-ports/virtme.ret; {RESET_VM}")
}

/// The `vng` arguments for an interactive boot whose shell is `script` (`vmtest --shell`):
/// virtme-ng's own init, for a guest that is a usual environment; the kernel's console
/// messages stay out of the terminal.
pub fn vng_shell_args(boot: &Boot<'_>, script: &Path) -> Vec<String> {
    let mut args = common_args(boot, Vec::new());
    // The shell script ends with RESET_VM; vng adds -no-reboot only for --exec.
    args.push("--qemu-opts=-no-reboot".into());
    args.extend(["--shell".into(), script.display().to_string()]);
    args
}

/// The arguments every boot shares; `init_args` go on the kernel command line after ours.
fn common_args(boot: &Boot<'_>, init_args: Vec<String>) -> Vec<String> {
    let mut kernel_args = kernel_args(host_tsc_khz());
    kernel_args.extend(init_args);
    let kernel_args: Vec<String> = kernel_args.iter().map(|a| shell_word(a)).collect();
    let mut args = vec![
        "--run".to_owned(),
        boot.kernel.display().to_string(),
        // The harness needs root in the guest whoever runs xtask on the host.
        "--user".into(),
        "root".into(),
        // The minimal config has virtio-pci and 9p, not virtio-mmio (microvm) or virtiofs.
        "--force-9p".into(),
        "--disable-microvm".into(),
        "--memory".into(),
        format!("{GUEST_MEMORY_MIB}M"),
        "--cpus".into(),
        GUEST_CPUS.to_string(),
        // Only this directory is writable from the guest; the rest of the host is read-only.
        "--rwdir".into(),
        boot.writable_dir.display().to_string(),
        // One NBD device and no partition scan: the only requests on the wire are the cases'.
        "--append".into(),
        kernel_args.join(" "),
    ];
    if boot.accel == Accel::Tcg {
        args.push("--disable-kvm".into());
    }
    args
}

/// The guest kernel's command line (vng adds its own).
fn kernel_args(tsc_khz: Option<u64>) -> Vec<String> {
    let mut args = vec!["nbd.nbds_max=1".to_owned(), "nbd.max_part=0".into()];
    // Without ACPI the guest has no PM timer or HPET to calibrate its TSC against, and the
    // PIT calibration fails under TCG: the kernel marks the TSC unstable and keeps time in
    // jiffies (4 ms steps). It is told the rate instead; the TSC is then its only
    // clocksource, so there is nothing for a watchdog to compare it with.
    if let Some(khz) = tsc_khz {
        args.extend([format!("tsc_early_khz={khz}"), "tsc=reliable".into()]);
    }
    args
}

/// The host's TSC rate in kHz, which is the guest's: QEMU's TCG reads the host's TSC for the
/// guest's, and KVM passes it through unscaled. Measured once against the monotonic clock.
#[cfg(target_arch = "x86_64")]
fn host_tsc_khz() -> Option<u64> {
    static KHZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let sample = || {
        // SAFETY: rdtsc has no preconditions on x86_64.
        let tsc = || unsafe { std::arch::x86_64::_rdtsc() };
        let (started, first) = (Instant::now(), tsc());
        // 5 ms: the two clocks are read together, so the sleep's length only sets the precision
        // (a microsecond of skew is 2e-4), and three samples cost 15 ms of every run's start.
        std::thread::sleep(Duration::from_millis(5));
        let (ticks, elapsed) = (tsc() - first, started.elapsed());
        // ticks per microsecond × 1000 = ticks per millisecond = kHz.
        ticks * 1000 / elapsed.as_micros().max(1) as u64
    };
    Some(*KHZ.get_or_init(|| {
        let mut samples = [sample(), sample(), sample()];
        samples.sort_unstable();
        samples[1]
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn host_tsc_khz() -> Option<u64> {
    None
}

/// Boots, runs `guest`, and returns how vng ended; the console is in `console_log`.
pub fn run(
    runner: &Runner,
    boot: &Boot<'_>,
    guest: &Guest<'_>,
    console_log: &Path,
    timeout: Duration,
) -> Result<Finished> {
    let stage = Stage::start(format!(
        "booting {} ({}, console: {})",
        boot.kernel.display(),
        boot.accel,
        console_log.display()
    ));
    let sh = &runner.sh;
    let args = vng_args(boot, guest);
    let finished = runner.spawn_tied(
        cmd!(sh, "vng {args...}"),
        console_log,
        &stage,
        Some(timeout),
    )?;
    match finished.success() {
        true => stage.finish(finished),
        false => stage.fail(finished),
    }
    Ok(finished)
}

/// Builds the guest harness (release: it runs under TCG).
pub fn build_harness(runner: &Runner) -> Result<()> {
    let stage = Stage::start("building the guest harness");
    let sh = &runner.sh;
    cmd!(sh, "cargo build --release --quiet -p harness").run()?;
    stage.finish("");
    Ok(())
}

/// How one VM run of a plan ended.
pub struct GuestRun {
    /// The run's own directory (plan, results, console).
    pub dir: PathBuf,
    pub accel: Accel,
    pub records: RunRecords,
    pub failure: Option<RunFailure>,
    pub console: PathBuf,
    pub secs: f64,
}

/// What the host wrote into the run directory (beside the plan) before the boot: how to
/// judge the run, so that `cargo xtask report` judges it later exactly as the run did.
pub const JUDGING_FILE: &str = "judging.json";
/// How the VM ended, written right after it did: without it the run ended early (xtask died).
pub const VM_FILE: &str = "vm.json";

/// How a VM run ended, as [`VM_FILE`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VmEnd {
    pub accel: Accel,
    pub timed_out: bool,
    pub timeout_secs: u64,
    pub secs: f64,
}

impl VmEnd {
    /// The end recorded in `dir` ([`VM_FILE`]), if there is one.
    pub fn read(dir: &Path) -> Option<VmEnd> {
        let text = std::fs::read_to_string(dir.join(VM_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The end of a VM whose `vm.json` is missing (or not needed): TCG, not timed out.
    pub const UNRECORDED: VmEnd = VmEnd {
        accel: Accel::Tcg,
        timed_out: false,
        timeout_secs: 0,
        secs: 0.0,
    };
}

/// Boots `kernel` with the harness running `plan` in a fresh run directory under `runs`, and
/// reads back what the guest recorded and how the run ended. `judging` (the host's own record
/// of how to judge this run) goes into [`JUDGING_FILE`] before the boot. With `shards` > 1 the
/// plan is split ([`shards::split`]) and each part runs in a VM of its own, side by side, in
/// `shard-<i>/` of the run directory; the run directory keeps the whole plan and, once every
/// VM has ended, their consoles one after another and how the last one ended.
pub fn run_plan(
    runner: &Runner,
    paths: &Paths,
    (kernel, plan, shards): (&Path, &Plan, usize),
    judging: &str,
    runs: &Path,
    timeout: Duration,
) -> Result<GuestRun> {
    // Before the new run directory becomes `latest`: the last run's case times.
    let costs = if shards > 1 {
        last_costs(runs)
    } else {
        shards::Costs::default()
    };
    let dir = rundir::create(runs)?;
    crate::infra::progress::line(format_args!("  run directory: {}", dir.display()));
    std::fs::write(dir.join(PLAN_FILE), serde_json::to_string_pretty(plan)?)?;
    std::fs::write(dir.join(JUDGING_FILE), judging)?;
    let accel = choose_accel(runner, paths, kernel, &dir)?;
    let end = match shards {
        0 | 1 => run_one(runner, paths, (kernel, accel), &dir, timeout)?,
        _ => run_shards(
            paths,
            (kernel, accel),
            &dir,
            shards::split(plan, shards, &costs),
            timeout,
        )?,
    };
    std::fs::write(dir.join(VM_FILE), serde_json::to_string_pretty(&end)?)?;
    let (records, failure) = read_back(&dir, &end);
    if failure == Some(RunFailure::NoHarness) {
        forget_accel(paths);
    }
    Ok(GuestRun {
        console: dir.join(CONSOLE_FILE),
        dir,
        accel,
        records,
        failure,
        secs: end.secs,
    })
}

/// What the kernel's last run (`runs/latest`, if any) measured each case to cost: how the
/// next run's shards are balanced.
fn last_costs(runs: &Path) -> shards::Costs {
    let (records, _) = read_back(&runs.join(rundir::LATEST), &VmEnd::UNRECORDED);
    shards::Costs::of(&records)
}

/// The console log of a VM run, in its run directory (a shard's in the shard's).
pub const CONSOLE_FILE: &str = "console.log";

/// One VM on the plan in `dir`; how it ended.
fn run_one(
    runner: &Runner,
    paths: &Paths,
    (kernel, accel): (&Path, Accel),
    dir: &Path,
    timeout: Duration,
) -> Result<VmEnd> {
    let harness = paths.harness_binary();
    let boot = Boot {
        kernel,
        accel,
        writable_dir: dir,
    };
    let started = Instant::now();
    let guest = Guest::HarnessInit {
        harness: &harness,
        initramfs: &paths.initramfs(),
    };
    let finished = run(runner, &boot, &guest, &dir.join(CONSOLE_FILE), timeout)?;
    Ok(VmEnd {
        accel,
        timed_out: finished == Finished::TimedOut,
        timeout_secs: timeout.as_secs(),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Each part in a VM of its own, all at once (each with its own runner: a shell is not shared
/// between threads); each shard's end goes into its directory. The run's end: the slowest
/// shard's time, timed out if any did; the run directory's console is the shards' in order.
fn run_shards(
    paths: &Paths,
    (kernel, accel): (&Path, Accel),
    dir: &Path,
    parts: Vec<Plan>,
    timeout: Duration,
) -> Result<VmEnd> {
    let ends: Vec<Result<VmEnd>> = std::thread::scope(|scope| {
        let vms: Vec<_> = (parts.iter().enumerate())
            .map(|(index, part)| {
                scope.spawn(move || {
                    let shard = dir.join(shards::dir_name(index));
                    std::fs::create_dir_all(&shard)?;
                    std::fs::write(shard.join(PLAN_FILE), serde_json::to_string_pretty(part)?)?;
                    let runner = Runner::new(&paths.root)?;
                    let end = run_one(&runner, paths, (kernel, accel), &shard, timeout)?;
                    std::fs::write(shard.join(VM_FILE), serde_json::to_string_pretty(&end)?)?;
                    Ok(end)
                })
            })
            .collect();
        (vms.into_iter())
            .map(|vm| vm.join().expect("a shard's boot does not panic"))
            .collect()
    });
    let mut console = Vec::new();
    for index in 0..parts.len() {
        let shard = dir.join(shards::dir_name(index)).join(CONSOLE_FILE);
        console.extend(format!("--- shard {index} ({}) ---\n", shard.display()).bytes());
        console.extend(std::fs::read(&shard).unwrap_or_default());
    }
    std::fs::write(dir.join(CONSOLE_FILE), console)?;
    let ends = ends.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(VmEnd {
        accel,
        timed_out: ends.iter().any(|end| end.timed_out),
        timeout_secs: timeout.as_secs(),
        secs: ends.iter().map(|end| end.secs).fold(0.0, f64::max),
    })
}

/// What a finished run directory's guest recorded, and how the run ended: the same reading
/// for a run just ended and for one read back later (`cargo xtask report`). A sharded run's
/// shards are each read and classified on their own (a panic is its shard's), then joined.
pub fn read_back(dir: &Path, end: &VmEnd) -> (RunRecords, Option<RunFailure>) {
    let shard_dirs: Vec<PathBuf> = (0..)
        .map(|index| dir.join(shards::dir_name(index)))
        .take_while(|shard| shard.is_dir())
        .collect();
    if shard_dirs.is_empty() {
        return read_back_one(dir, end);
    }
    let parts =
        (shard_dirs.iter()).map(|shard| read_back_one(shard, &VmEnd::read(shard).unwrap_or(*end)));
    shards::merge(parts.collect())
}

fn read_back_one(dir: &Path, end: &VmEnd) -> (RunRecords, Option<RunFailure>) {
    let results = std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap_or_default();
    let records = RunRecords::parse(&results);
    let console = std::fs::read(dir.join(CONSOLE_FILE)).unwrap_or_default();
    let console = String::from_utf8_lossy(&console);
    let failure = RunFailure::classify(&records, &console, end.timed_out, end.timeout_secs);
    (records, failure)
}

/// Whether KVM works here: a short bounded boot, remembered until the host reboots. The
/// probe's console log stays in `run_dir` with the run's other logs.
pub fn choose_accel(
    runner: &Runner,
    paths: &Paths,
    kernel: &Path,
    run_dir: &Path,
) -> Result<Accel> {
    if std::env::var_os("WTP_ACCEL").is_some_and(|v| v == "tcg") {
        return Ok(Accel::Tcg);
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        eprintln!("  note: /dev/kvm is not usable by this user; using TCG (software emulation)");
        return Ok(Accel::Tcg);
    }
    let remembered = probe_record(paths);
    if let Some(accel) = std::fs::read_to_string(&remembered)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
    {
        return Ok(accel);
    }
    let boot = Boot {
        kernel,
        accel: Accel::Kvm,
        writable_dir: run_dir,
    };
    let log = run_dir.join("kvm-probe.log");
    let guest = Guest::Command("true".into());
    let finished = run(runner, &boot, &guest, &log, KVM_PROBE_TIMEOUT)?;
    let accel = if finished.success() {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    if accel == Accel::Tcg {
        eprintln!(
            "  warning: {}",
            kvm_unusable_warning(finished, &crate::infra::progress::tail(&log, 20))
        );
    }
    if let Some(parent) = remembered.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&remembered, serde_json::to_string(&accel)?)?;
    Ok(accel)
}

/// The one line that says why KVM is not used: how the probe ended and its first error.
fn kvm_unusable_warning(finished: Finished, probe_output: &str) -> String {
    let how = match finished {
        Finished::TimedOut => format!("hung for {}s", KVM_PROBE_TIMEOUT.as_secs()),
        Finished::Exited(status) => format!("failed ({status})"),
    };
    let cause = probe_output
        .lines()
        .find(|line| line.contains("error"))
        .or_else(|| {
            probe_output
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
        })
        // The console log is raw: keep NULs and escapes out of the terminal line.
        .map(|line| {
            let printable: String = line.chars().filter(|c| !c.is_control()).collect();
            format!(": {}", printable.trim())
        })
        .unwrap_or_default();
    format!("/dev/kvm exists but a KVM boot {how}{cause}; using TCG (software emulation)")
}

/// Drops the remembered probe answer: a TCG boot that fails too means the probe may have
/// failed for another reason than KVM (a broken vng, a missing tool).
pub fn forget_accel(paths: &Paths) {
    let _ = std::fs::remove_file(probe_record(paths));
}

/// The probe's answer is kept per host boot (a reboot may fix or break KVM).
fn probe_record(paths: &Paths) -> PathBuf {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    paths.cache.join("kvm-probe").join(boot_id.trim())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn boot_with(accel: Accel, guest: &Guest<'_>) -> Vec<String> {
        let boot = Boot {
            kernel: Path::new("/cache/bzImage"),
            accel,
            writable_dir: Path::new("/runs/1"),
        };
        vng_args(&boot, guest)
    }

    fn boot(accel: Accel) -> Vec<String> {
        boot_with(accel, &Guest::Command("/bin/true".into()))
    }

    #[rstest]
    #[case(Accel::Tcg, true)]
    #[case(Accel::Kvm, false)]
    fn kvm_is_disabled_only_for_tcg(#[case] accel: Accel, #[case] disabled: bool) {
        assert_eq!(boot(accel).contains(&"--disable-kvm".to_owned()), disabled);
    }

    #[test]
    fn only_the_run_directory_is_writable_and_the_command_comes_last() {
        let args = boot(Accel::Tcg);
        let rw = args.iter().position(|a| a == "--rwdir").unwrap();
        assert_eq!(args[rw + 1], "/runs/1");
        assert!(!args.contains(&"--rw".to_owned()));
        assert_eq!(
            args[args.len() - 2..],
            [
                "--exec",
                "/bin/true; echo $? > /dev/virtio-ports/virtme.ret; echo b > /proc/sysrq-trigger"
            ]
        );
        assert_eq!(args[..2], ["--run", "/cache/bzImage"]);
    }

    /// The harness is the guest's init through the initramfs, told where it is and its run
    /// directory on the kernel command line; vng's batch command is the same harness run.
    #[test]
    fn a_plan_run_boots_the_initramfs_that_starts_the_harness() {
        let guest = Guest::HarnessInit {
            harness: Path::new("/t/harness"),
            initramfs: Path::new("/my images/initramfs.cpio"),
        };
        let args = boot_with(Accel::Tcg, &guest);
        let append = args.iter().position(|a| a == "--append").unwrap();
        assert!(
            args[append + 1].ends_with(" wtp_harness=/t/harness wtp_run_dir=/runs/1"),
            "{}",
            args[append + 1]
        );
        assert_eq!(
            args.last().unwrap(),
            "--qemu-opts=-initrd '/my images/initramfs.cpio'"
        );
        assert!(args[args.len() - 2].starts_with("'/t/harness' '/runs/1'; echo $?"));
        assert!(!boot(Accel::Tcg).iter().any(|a| a.contains("initrd")));
    }

    #[test]
    fn words_are_quoted_for_vngs_shell_like_split() {
        assert_eq!(shell_word("wtp_run_dir=/runs/1"), "wtp_run_dir=/runs/1");
        assert_eq!(
            shell_word("wtp_harness=/my repo/h"),
            "'wtp_harness=/my repo/h'"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_kvm_warning_is_one_line_with_the_cause() {
        use std::os::unix::process::ExitStatusExt;
        let output = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu: kvm.c:3183: Assertion failed.\n";
        let warning = kvm_unusable_warning(
            Finished::Exited(std::process::ExitStatus::from_raw(255 << 8)),
            output,
        );
        assert_eq!(
            warning,
            "/dev/kvm exists but a KVM boot failed (exit status: 255): qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69; using TCG (software emulation)"
        );
        let with_nuls = "\0\0\0qemu-system-x86_64: error: \u{1b}[0mno\0\n";
        assert!(
            !kvm_unusable_warning(Finished::TimedOut, with_nuls).contains(|c: char| c.is_control()),
            "control bytes reach the terminal"
        );
        assert!(kvm_unusable_warning(Finished::TimedOut, "")
            .starts_with("/dev/kvm exists but a KVM boot hung for 30s;"));
    }

    #[test]
    fn the_guest_is_told_its_tsc_rate_when_the_host_knows_it() {
        assert_eq!(
            kernel_args(Some(2_596_123)).join(" "),
            "nbd.nbds_max=1 nbd.max_part=0 tsc_early_khz=2596123 tsc=reliable"
        );
        assert_eq!(kernel_args(None).join(" "), "nbd.nbds_max=1 nbd.max_part=0");
        #[cfg(target_arch = "x86_64")]
        assert!(
            (100_000..20_000_000).contains(&host_tsc_khz().unwrap()),
            "a TSC between 100 MHz and 20 GHz"
        );
    }

    #[test]
    fn the_probe_record_round_trips() {
        for accel in [Accel::Kvm, Accel::Tcg] {
            let text = serde_json::to_string(&accel).unwrap();
            assert_eq!(serde_json::from_str::<Accel>(&text).unwrap(), accel);
        }
        assert_eq!(serde_json::to_string(&Accel::Tcg).unwrap(), "\"tcg\"");
    }
}
