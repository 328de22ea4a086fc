//! The boundary sweep on bpf_test_finish (opt-in in `vmtest`: about 20 s of guest time per
//! kernel under TCG) on every kernel of the matrix, against its snapshot in
//! tests/snapshots/<kernel>/sweep.bpf_test_finish.snap: a change in what any generated program
//! gets from any kernel (or in the model) shows as a snapshot diff here.

#[test]
fn the_sweep_meets_its_snapshot_on_every_kernel() {
    for report in vmtests::matrix_passes(&["sweep.bpf_test_finish"]) {
        let names: Vec<&str> = report.rows.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(names, ["sweep.bpf_test_finish"], "on {}", report.kernel);
    }
}
