//! Host-side tests that boot real kernels live in `tests/`; their snapshots in `snapshots/`.
//! What several test binaries share: the xtask binary, a fake kernel tree, reading a run's
//! directory from xtask's output.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::infra::paths::Paths;

/// The workspace's xtask binary, built (debug) if needed.
pub fn xtask_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--quiet", "-p", "xtask"])
        .current_dir(&Paths::from_env().root)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building xtask failed");
    Paths::from_env().cargo_target().join("debug").join("xtask")
}

const FAKE_MAKEFILE: &str = r#"# A stand-in for a kernel tree's Makefile (see tests/lib.rs).
allnoconfig:
	mkdir -p $(O)
	cp $(KCONFIG_ALLCONFIG) $(O)/.config
	printf 'modules:\n\ttouch $$(M)/bpf_testmod.ko\n' > $(O)/Makefile

bzImage modules:
	echo "fake build started" && sleep $${WTP_FAKE_BUILD_SECS:-0}
	mkdir -p $(O)/arch/x86/boot && touch $(O)/arch/x86/boot/bzImage
"#;

/// A "kernel tree" whose Makefile answers the targets xtask uses (allnoconfig with
/// KCONFIG_ALLCONFIG, bzImage/modules, an out-of-tree module build) in no time, or after
/// `$WTP_FAKE_BUILD_SECS` seconds of sleep.
pub fn fake_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("tools/testing/selftests/bpf/bpf_testmod")).unwrap();
    std::fs::write(dir.join("Makefile"), FAKE_MAKEFILE).unwrap();
    std::fs::write(dir.join("Kconfig"), "config FAKE\n\tbool\n").unwrap();
}

/// The run directory xtask announced in its output (`  run directory: <path>`), if any.
pub fn run_dir_in(output: &str) -> Option<PathBuf> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("run directory: "))
        .map(PathBuf::from)
}

/// Processes whose command line mentions `needle` (e.g. a run directory: vng and QEMU).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(pid)
        })
        .collect()
}

/// The command line of a process, for messages.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// `vmtest` of the built-in `cases` (all when empty) on every kernel of the matrix against
/// tests/snapshots/<kernel>/: every kernel reports and passes. The reports, for more checks.
pub fn matrix_passes(cases: &[&str]) -> Vec<xtask::report::KernelReport> {
    let options = xtask::commands::vmtest::Options {
        kernels: vec!["all".into()],
        only_cases: cases.iter().map(|case| (*case).to_owned()).collect(),
        ..xtask::commands::vmtest::Options::default()
    };
    let reports = xtask::commands::vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    assert!(reports.len() >= 4, "the matrix has every manifest");
    for report in &reports {
        assert!(
            report.passed(),
            "kernel {}:\n{}",
            report.kernel,
            report.render()
        );
    }
    reports
}
