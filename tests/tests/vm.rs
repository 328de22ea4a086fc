//! Boots every kernel of the matrix (built and cached on first use) and runs every built-in
//! case through the same pipeline as `cargo xtask vmtest --kernel all`, comparing with
//! tests/snapshots/<kernel>/. A kernel that lacks a feature reports its cases unsupported.

#[test]
fn builtin_cases_meet_their_expectations_and_snapshots_on_every_kernel() {
    for report in vmtests::matrix_passes(&[]) {
        assert!(!report.rows.is_empty(), "no cases ran on {}", report.kernel);
    }
}
