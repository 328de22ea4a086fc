//! `vmtest --cases DIR` with a directory outside the repository (a temporary one): one case
//! whose expectation holds and one whose expectation is wrong, through the whole pipeline on
//! the real kernel. It accepts snapshots; that is per run, never process-wide.

use xtask::compare::CaseOutcome;
use xtask::paths::Paths;
use xtask::vmtest::{self, Options};

const PROGRAM: &str = r#"
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u32 runs = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int count_runs(__u64 *ctx)
{
	runs++;
	return 0;
}

char _license[] SEC("license") = "GPL";
"#;

const HOLDS: &str = r#"
description = "Counts its runs: attached, one 64-byte read runs it once (and fails with EIO)."
program = "count_runs"
requires = ["bpf_testmod"]
load = "ok"

[[steps]]
do = "attach"
expect = "ok"

[[steps]]
do = "testmod_read"
expect = "EIO"

[[steps]]
do = "read_global"
name = "runs"
expect = { value = 1 }
"#;

#[test]
fn a_user_directory_gets_a_verdict_per_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("count_runs.bpf.c"), PROGRAM).unwrap();
    std::fs::write(dir.path().join("holds.toml"), HOLDS).unwrap();
    let wrong = HOLDS.replace("expect = { value = 1 }", "expect = { value = 2 }");
    std::fs::write(dir.path().join("wrong.toml"), wrong).unwrap();

    let options = Options {
        cases: Some(dir.path().to_path_buf()),
        accept: true,
        ..Options::default()
    };
    let reports = vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    assert!(reports[0].failure.is_none(), "{}", reports[0].render());
    let rows = &reports[0].rows;
    let row = |name: &str| rows.iter().find(|r| r.case == name).unwrap();

    assert!(row("holds").passed(), "{}", reports[0].render());
    assert!(matches!(row("holds").outcome, CaseOutcome::Ran(_)));
    assert_eq!(
        row("wrong").deviations,
        vec!["step 3 (read_global): expected ok 2, got ok 1"]
    );
    let snapshots = dir.path().join("snapshots").join("6.12");
    assert!(
        snapshots.join("holds.snap").is_file(),
        "the passing case's snapshot is written"
    );
    assert!(
        !snapshots.join("wrong.snap").exists(),
        "a deviating case is never accepted"
    );
}
