//! A harness is used exactly when kernels misbehave. Each test here makes the guest misbehave
//! for real on 6.12 (a kernel panic, a step that never returns, a harness that aborts, a write
//! to the read-only host) and checks what the host reports: the right failure, the case it
//! happened in, the results of the cases before it kept, and the exit status.

use std::path::Path;
use std::time::Duration;

use xtask::cases::CaseOutcome;
use xtask::cli::exit_status;
use xtask::commands::vmtest::{self, Options};
use xtask::guest::failure::KernelFailure;
use xtask::guest::results::RunFailure;
use xtask::infra::paths::Paths;
use xtask::report::KernelReport;

/// Attaches to nothing and needs no module: runs on every kernel.
const NOOP: &str = r#"
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w/bpf_test_finish")
int noop(__u64 *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
"#;

fn case(steps: &str) -> String {
    format!("description = \"fault test\"\nprogram = \"noop\"\nload = \"ok\"\n{steps}")
}

/// Runs the cases (name, TOML) from a fresh temporary directory on 6.12.
fn run(cases: &[(&str, String)], timeout: Duration) -> (tempfile::TempDir, KernelReport, u8) {
    let (dir, reports, status) = run_on(Options::default().kernels, cases, timeout);
    (dir, reports.into_iter().next().unwrap(), status)
}

/// Runs the cases on `kernels`, their VMs side by side.
fn run_on(
    kernels: Vec<String>,
    cases: &[(&str, String)],
    timeout: Duration,
) -> (tempfile::TempDir, Vec<KernelReport>, u8) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("noop.bpf.c"), NOOP).unwrap();
    for (name, text) in cases {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    let options = Options {
        kernels,
        cases: Some(dir.path().to_path_buf()),
        accept: true,
        timeout,
        vms: Some(2),
        ..Options::default()
    };
    let reports = vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the run could not be set up: {error:#}"));
    let status = exit_status(&reports);
    (dir, reports, status)
}

fn run_failure(report: &KernelReport) -> &RunFailure {
    match &report.failure {
        Some(KernelFailure::Run { failure, .. }) => failure,
        other => panic!("expected a run failure, got {other:?}\n{}", report.render()),
    }
}

fn verdict<'a>(report: &'a KernelReport, case: &str) -> &'a xtask::judge::Row {
    report.rows.iter().find(|r| r.case == case).unwrap()
}

const FAST: Duration = Duration::from_secs(120);

#[test]
fn a_kernel_panic_is_reported_with_its_case_and_earlier_results_are_kept() {
    let crash = "[[steps]]\ndo = \"crash_kernel\"\nexpect = \"ok\"\n";
    let (_dir, report, status) = run(
        &[
            ("a_before", case("")),
            ("b_crash", case(crash)),
            ("c_after", case("")),
        ],
        FAST,
    );
    match run_failure(&report) {
        RunFailure::KernelPanic { line, case } => {
            assert!(line.contains("Kernel panic - not syncing"), "{line}");
            assert_eq!(case.as_deref(), Some("b_crash"));
        }
        other => panic!("expected a kernel panic, got {other:?}"),
    }
    assert!(
        report.render().contains("Kernel panic"),
        "the console tail is shown"
    );
    assert!(verdict(&report, "a_before").passed(), "{}", report.render());
    assert!(matches!(
        verdict(&report, "c_after").outcome,
        CaseOutcome::NotRun { .. }
    ));
    assert_eq!(status, 3);
}

#[test]
fn a_panic_in_one_of_two_kernels_booting_side_by_side_is_that_kernels_alone() {
    let crash =
        "requires = [\"attach_cookie\"]\n[[steps]]\ndo = \"crash_kernel\"\nexpect = \"ok\"\n";
    let kernels = vec!["6.1".to_owned(), "6.12".to_owned()];
    let (_dir, reports, status) = run_on(
        kernels.clone(),
        &[
            ("a_before", case("")),
            ("b_crash_with_cookies", case(crash)),
        ],
        FAST,
    );
    let names: Vec<&str> = reports.iter().map(|r| r.kernel.as_str()).collect();
    assert_eq!(names, kernels, "the reports come in matrix order");
    let (old, new) = (&reports[0], &reports[1]);
    assert!(old.failure.is_none() && old.passed(), "{}", old.render());
    assert!(matches!(
        verdict(old, "b_crash_with_cookies").outcome,
        CaseOutcome::Unsupported { .. }
    ));
    assert!(
        matches!(run_failure(new), RunFailure::KernelPanic { case, .. } if case.as_deref() == Some("b_crash_with_cookies")),
        "{}",
        new.render()
    );
    assert!(verdict(new, "a_before").passed(), "{}", new.render());
    assert_eq!(status, 3);
}

#[test]
fn a_hanging_case_is_killed_by_the_timeout_and_named() {
    let hang = "[[steps]]\ndo = \"hang\"\nexpect = \"ok\"\n";
    let started = std::time::Instant::now();
    let (_dir, report, status) = run(
        &[("a_before", case("")), ("b_hang", case(hang))],
        Duration::from_secs(60),
    );
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "the timeout did not stop the VM"
    );
    assert_eq!(
        run_failure(&report),
        &RunFailure::Hang {
            case: Some("b_hang".into()),
            timeout_secs: 60
        }
    );
    assert!(verdict(&report, "a_before").passed(), "{}", report.render());
    assert_eq!(status, 4);
}

#[test]
fn a_harness_crash_is_reported_and_earlier_results_are_kept() {
    let abort = "[[steps]]\ndo = \"abort_harness\"\nexpect = \"ok\"\n";
    let (_dir, report, status) = run(&[("a_before", case("")), ("b_abort", case(abort))], FAST);
    assert_eq!(
        run_failure(&report),
        &RunFailure::HarnessCrash {
            case: Some("b_abort".into())
        }
    );
    assert!(verdict(&report, "a_before").passed(), "{}", report.render());
    assert_eq!(status, 5);
}

/// virtme-ng shares the host's root read-only over 9p and gives the guest private writable
/// overlays on /tmp, /opt, /etc, /var...; only the run directory is shared writable. A write
/// into the shared root fails with EROFS; a write into an overlay succeeds in the guest and
/// never reaches the host. Either way the host must not see the file. The shared-root path is
/// in the kernel cache (under the home directory, never an overlay): the checkout may be
/// anywhere, /tmp included, where the guest's write would land in its overlay.
#[test]
fn the_guest_cannot_write_to_the_host_outside_its_run_directory() {
    let in_root = Paths::from_env().cache.join("wtp-guest-write-probe");
    let _ = std::fs::remove_file(&in_root);
    let tmp_dir = tempfile::tempdir().unwrap();
    let in_overlay = tmp_dir.path().join("written-by-guest");
    let write = |path: &Path, expect: &str| {
        case(&format!(
            "[[steps]]\ndo = \"host_write\"\npath = \"{}\"\nexpect = \"{expect}\"\n",
            path.display()
        ))
    };
    let (_dir, report, status) = run(
        &[
            ("write_shared_root", write(&in_root, "EROFS")),
            ("write_guest_overlay", write(&in_overlay, "ok")),
        ],
        FAST,
    );
    assert!(report.passed(), "{}", report.render());
    assert_eq!(status, 0);
    assert!(
        !in_root.exists(),
        "the guest's write to the shared root reached the host"
    );
    assert!(
        !in_overlay.exists(),
        "the guest's write to its /tmp overlay reached the host"
    );
}

/// `kill -9` of xtask while its guest hangs: the VM (vng, virtme-run, QEMU) dies with it
/// instead of running until the guest ends, which a hanging guest never does.
#[test]
fn killing_xtask_kills_its_vm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let xtask = vmtests::xtask_binary();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("noop.bpf.c"), NOOP).unwrap();
    let hang = "[[steps]]\ndo = \"hang\"\nexpect = \"ok\"\n";
    std::fs::write(dir.path().join("hangs.toml"), case(hang)).unwrap();
    let mut child = Command::new(xtask)
        .args(["vmtest", "--timeout", "600", "--cases"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // xtask's output, read to the end on a thread: the pipe never fills, and a failure can
    // show what xtask said.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = String::new();
    let run_dir = lines_rx
        .iter()
        .find_map(|line| {
            seen.push_str(&line);
            seen.push('\n');
            vmtests::run_dir_in(&line)
        })
        .unwrap_or_else(|| panic!("xtask announced no run directory:\n{seen}"));
    let needle = run_dir.to_string_lossy().into_owned();
    // The guest is up and hanging once the harness has started the case.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(run_dir.join("results.jsonl"))
        .unwrap_or_default()
        .contains(r#""record":"started""#)
    {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            seen.extend(lines_rx.try_iter().map(|line| line + "\n"));
            panic!("the case never started; xtask said:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let vm = vmtests::processes_mentioning(&needle);
    assert!(
        vm.iter()
            .any(|pid| vmtests::cmdline(*pid).contains("qemu-system")),
        "no QEMU for {needle}"
    );

    child.kill().unwrap(); // SIGKILL: no handler of xtask's can run.
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = vmtests::processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after xtask died: {:?}",
            left.iter()
                .map(|pid| vmtests::cmdline(*pid))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
