//! The boundary sweep (2–5 s of guest time per tracepoint and kernel under TCG; named with
//! `--case`, so never reused from an earlier run) of every writable tracepoint the built-in runs load,
//! on every kernel of the matrix, against its snapshots in
//! tests/snapshots/<kernel>/sweep.<tracepoint>.snap: a change in what any generated program
//! gets from any kernel (or in the model) shows as a snapshot diff here. The tracepoints'
//! sizes come from each kernel's own files; 5.10 has no bpf_testmod, so its row for that sweep
//! is unsupported (and snapshotted as such).

const SWEEPS: [&str; 3] = [
    "sweep.bpf_test_finish",
    "sweep.bpf_testmod_test_writable_bare",
    "sweep.nbd_send_request",
];

#[test]
fn the_sweep_meets_its_snapshot_on_every_kernel() {
    for report in vmtests::matrix_passes(&SWEEPS) {
        let names: Vec<&str> = report.rows.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(names, SWEEPS, "on {}", report.kernel);
    }
}
