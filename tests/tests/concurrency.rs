//! Runs at the same time must not see each other: two `vmtest::run` on threads of one process
//! (no process-wide snapshot mode, no panic hook), and two `cargo xtask vmtest` processes on one
//! checkout and one cache (each with its own complete run directory).

use std::path::Path;
use std::process::Command;

use xtask::commands::vmtest::{self, Options};
use xtask::infra::paths::Paths;
use xtask::judge::Verdict;
use xtask::report::KernelReport;

const PROGRAM: &str = r#"
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u32 runs = 0;

SEC("raw_tp.w/bpf_test_finish")
int count_runs(__u64 *ctx)
{
	runs++;
	return 0;
}

char _license[] SEC("license") = "GPL";
"#;

/// Loads and reads its global: needs no module, so it runs on every kernel.
fn case(expected_runs: u32) -> String {
    format!(
        "description = \"concurrency test\"\nprogram = \"count_runs\"\nload = \"ok\"\n\
         [[steps]]\ndo = \"read_global\"\nname = \"runs\"\nexpect = {{ value = {expected_runs} }}\n"
    )
}

fn case_dir(cases: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("count_runs.bpf.c"), PROGRAM).unwrap();
    for (name, text) in cases {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    dir
}

fn run(dir: &Path, accept: bool) -> KernelReport {
    let options = Options {
        cases: Some(dir.to_path_buf()),
        accept,
        ..Options::default()
    };
    let mut reports = vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the run could not be set up: {error}"));
    reports.remove(0)
}

fn verdict(report: &KernelReport, case: &str) -> Verdict {
    report
        .rows
        .iter()
        .find(|r| r.case == case)
        .unwrap()
        .verdict()
}

/// One thread accepts snapshots while the other only compares: with insta's process-wide
/// `INSTA_UPDATE` the comparing run would have accepted too.
#[test]
fn two_runs_on_threads_of_one_process_keep_their_own_verdicts() {
    let accepting = case_dir(&[("holds", case(0)), ("wrong", case(7))]);
    let comparing = case_dir(&[("changed", case(0)), ("fresh", case(0))]);
    let stale = comparing.path().join("snapshots/6.12");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(
        stale.join("changed.snap"),
        "---\nsource: xtask/src/compare.rs\ndescription: concurrency test\n---\nran:\n  case: changed\n",
    )
    .unwrap();

    let (accepted, compared) = std::thread::scope(|scope| {
        let a = scope.spawn(|| run(accepting.path(), true));
        let b = scope.spawn(|| run(comparing.path(), false));
        (a.join().unwrap(), b.join().unwrap())
    });

    assert_eq!(
        verdict(&accepted, "holds"),
        Verdict::Pass,
        "{}",
        accepted.render()
    );
    assert_eq!(
        verdict(&accepted, "wrong"),
        Verdict::Fail,
        "{}",
        accepted.render()
    );
    let written = accepting.path().join("snapshots/6.12");
    assert!(written.join("holds.snap").is_file());
    assert!(
        !written.join("wrong.snap").exists(),
        "a deviating case was accepted"
    );

    assert_eq!(
        verdict(&compared, "changed"),
        Verdict::SnapshotDiffers,
        "{}",
        compared.render()
    );
    assert_eq!(
        verdict(&compared, "fresh"),
        Verdict::NewSnapshot,
        "{}",
        compared.render()
    );
    assert!(stale.join("changed.snap.new").is_file(), "left for review");
    assert!(stale.join("fresh.snap.new").is_file(), "left for review");
    assert!(
        std::fs::read_to_string(stale.join("changed.snap"))
            .unwrap()
            .ends_with("case: changed\n"),
        "a comparing run must not accept"
    );
    assert_ne!(accepted.run_dir, compared.run_dir);
}

/// Two `cargo xtask vmtest` processes at once on one checkout and one cache: both pass, each
/// with a run directory of its own that holds its whole run.
#[test]
fn two_xtask_processes_at_once_each_get_a_whole_run_directory() {
    let root = Paths::from_env().root;
    let spawn = || {
        Command::new("cargo")
            .args(["xtask", "vmtest", "--case", "bare_reads_val"])
            .current_dir(&root)
            .output()
            .unwrap()
    };
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut dirs = Vec::new();
    for output in [first, second] {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let dir = vmtests::run_dir_in(&stderr)
            .unwrap_or_else(|| panic!("no run directory in:\n{stderr}"));
        let results = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
        assert!(results.contains(r#""record":"end""#), "{results}");
        assert!(results.contains("bare_reads_val"), "{results}");
        assert!(dir.join("console.log").is_file() && dir.join("plan.json").is_file());
        dirs.push(dir);
    }
    assert_ne!(dirs[0], dirs[1], "two runs shared a run directory");
}
