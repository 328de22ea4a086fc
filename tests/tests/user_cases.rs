//! `vmtest --cases DIR` with a directory outside the repository (a temporary one): one case
//! whose expectation holds and one whose expectation is wrong, through the whole pipeline on
//! the real kernel. It accepts snapshots; that is per run, never process-wide.

use xtask::cases::CaseOutcome;
use xtask::commands::vmtest::{self, Options};
use xtask::infra::paths::Paths;
use xtask::report::KernelReport;

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

/// Writes the files into a new case directory and runs it on 6.12, accepting snapshots.
fn run_accepting(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<KernelReport>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let options = Options {
        cases: Some(dir.path().to_path_buf()),
        accept: true,
        ..Options::default()
    };
    let reports = vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    (dir, reports)
}

#[test]
fn a_user_directory_gets_a_verdict_per_case() {
    let wrong = HOLDS.replace("expect = { value = 1 }", "expect = { value = 2 }");
    let (dir, reports) = run_accepting(&[
        ("count_runs.bpf.c", PROGRAM),
        ("holds.toml", HOLDS),
        ("wrong.toml", &wrong),
    ]);
    assert!(reports[0].failure.is_none(), "{}", reports[0].render());
    let rows = &reports[0].rows;
    let row = |name: &str| rows.iter().find(|r| r.case == name).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    assert_eq!(
        names,
        ["holds", "wrong"],
        "the directory's cases and nothing else (upstream's belong to the built-in set)"
    );

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

/// An object written the way libbpf users write them: BTF-defined hash and ring buffer maps,
/// a global, and a second program of a type the harness does not run (fmod_ret, which aya-obj
/// cannot parse) beside the case's raw_tp.w program.
const LIBBPF_STYLE: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct writable_ctx {
	_Bool early_ret;
	int val;
};

__u64 seen_val = 0;
__u64 reads = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int count_and_rewrite(__u64 *ctx)
{
	struct writable_ctx *writable = (void *)ctx[0];
	__u32 key = 0;
	__u64 one = 1, *count = bpf_map_lookup_elem(&counts, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		reads = *count;
	bpf_ringbuf_output(&events, &key, sizeof(key), 0);
	seen_val = writable->val;
	writable->early_ret = 1;
	writable->val = 7;
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int other_type(__u64 *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
"#;

const LIBBPF_STYLE_CASE: &str = r#"
description = "A libbpf-style object: hash map, ring buffer, a global, and an fmod_ret program it does not run."
program = "libbpf_style"
function = "count_and_rewrite"
requires = ["bpf_testmod"]
load = "ok"

[[steps]]
do = "attach"
expect = "ok"

[[steps]]
do = "testmod_read"
expect = { value = { len = 2, text = "7\n" } }

[[steps]]
do = "read_global"
name = "seen_val"
expect = { value = 1024 }

[[steps]]
do = "read_global"
name = "reads"
expect = { value = 1 }
"#;

#[test]
fn a_libbpf_style_object_loads_runs_and_libbpf_agrees() {
    let (_dir, reports) = run_accepting(&[
        ("libbpf_style.bpf.c", LIBBPF_STYLE),
        ("maps_and_more.toml", LIBBPF_STYLE_CASE),
    ]);
    let report = &reports[0];
    let row = &report.rows[0];
    assert!(row.passed(), "{}", report.render());
    let CaseOutcome::Ran(result) = &row.outcome else {
        panic!("{}", report.render())
    };
    assert!(
        result.load.notes.iter().any(|n| n.contains("fmod_ret")),
        "the skipped section is noted: {:?}",
        result.load.notes
    );
    let libbpf = result.libbpf.as_ref().expect("libbpf answered");
    assert!(libbpf.load.is_ok(), "{libbpf:?}");
    assert_eq!(libbpf.attach.as_ref().map(|a| a.is_ok()), Some(true));
}
