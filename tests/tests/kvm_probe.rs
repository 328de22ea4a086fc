//! The KVM probe (`guest::boot::choose_accel`) against an independent answer. This test builds
//! the 6.12 kernel (or takes it from the cache) and boots it: once under QEMU directly, strict
//! `-accel kvm` with the CPU vng asks for under KVM, and once or more through the probe.
//!
//! KVM may exist and still be unusable (on some nested hosts QEMU asserts on an MSR; on
//! others the guest hangs). Whatever this host is, the probe must give the answer the direct
//! boot gives, decide within its bound, and remember the answer for this host boot.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xtask::guest::boot::{self, Accel, KVM_PROBE_TIMEOUT};
use xtask::infra::paths::Paths;
use xtask::infra::runner::Runner;
use xtask::kernel::manifest::Catalog;
use xtask::kernel::source;

/// Whether `bzimage` boots under KVM here, asked of QEMU itself rather than through vng or
/// the probe: `-accel kvm` alone (no fallback to TCG), `-cpu host` as vng asks for it under
/// KVM, and no root filesystem, so the kernel boots until it cannot mount one and panics;
/// `panic=-1` resets and `-no-reboot` turns the reset into QEMU's exit. Its console and
/// QEMU's messages go to `log`.
fn kvm_boots(bzimage: &Path, log: &Path) -> bool {
    let console = log.with_extension("console");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(bzimage)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("qemu-system-x86_64 runs (cargo xtask setup installs it)");
    let deadline = Instant::now() + KVM_PROBE_TIMEOUT;
    let status = loop {
        if let Some(status) = qemu.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = std::fs::read_to_string(&console).unwrap_or_default();
    status.is_some_and(|status| status.success()) && console.contains("Kernel panic")
}

#[test]
fn the_kvm_probe_answers_what_a_direct_kvm_boot_says_quickly_and_remembers() {
    let paths = Paths::from_env();
    let runner = Runner::new(&paths.root).unwrap();
    let catalog = Catalog::new(&paths.kernels());
    let manifest = catalog.load("6.12").unwrap();
    let tree = source::fetch(&runner, &paths, &manifest.source).unwrap();
    let kernel = xtask::kernel::build::ensure(&runner, &paths, &catalog, &manifest, &tree).unwrap();

    let work = tempfile::tempdir().unwrap();
    let direct_log = work.path().join("direct-kvm-boot.log");
    // WTP_ACCEL=tcg is the user's word: no boot, TCG.
    let forced_tcg = std::env::var_os("WTP_ACCEL").is_some_and(|v| v == "tcg");
    let expected = match forced_tcg || !kvm_boots(&kernel.bzimage, &direct_log) {
        true => Accel::Tcg,
        false => Accel::Kvm,
    };
    let direct = format!(
        "the direct KVM boot (QEMU's messages, then the console's tail):\n{}\n{}",
        std::fs::read_to_string(&direct_log).unwrap_or_default(),
        xtask::infra::progress::tail(&direct_log.with_extension("console"), 10)
    );

    // A cache of its own: no answer remembered from an earlier probe.
    let mut fresh = paths.clone();
    fresh.cache = work.path().join("cache");
    let (first_run, second_run) = (work.path().join("run-1"), work.path().join("run-2"));
    std::fs::create_dir_all(&first_run).unwrap();
    std::fs::create_dir_all(&second_run).unwrap();

    let started = Instant::now();
    let first = boot::choose_accel(&runner, &fresh, &kernel.bzimage, &first_run).unwrap();
    assert!(
        started.elapsed() < KVM_PROBE_TIMEOUT + Duration::from_secs(15),
        "the probe hung"
    );
    assert_eq!(first, expected, "{direct}");
    let probe_log = first_run.join("kvm-probe.log");
    if first == Accel::Kvm {
        assert!(
            probe_log.is_file(),
            "the probe's console stays with the run's logs"
        );
    }
    if forced_tcg {
        assert!(!probe_log.exists(), "WTP_ACCEL=tcg, and the probe booted");
    }

    let started = Instant::now();
    let second = boot::choose_accel(&runner, &fresh, &kernel.bzimage, &second_run).unwrap();
    assert_eq!(second, first);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the answer was not remembered"
    );
    assert!(
        !second_run.join("kvm-probe.log").exists(),
        "the second run booted a probe again"
    );
}
