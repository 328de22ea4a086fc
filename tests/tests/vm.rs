//! Boots every kernel of the matrix (built and cached on first use) and runs every built-in
//! case through the same pipeline as `cargo xtask vmtest --kernel all`, comparing with
//! tests/snapshots/<kernel>/. A kernel that lacks a feature reports its cases unsupported.

use xtask::commands::vmtest::{self, Options};
use xtask::infra::paths::Paths;

#[test]
fn builtin_cases_meet_their_expectations_and_snapshots_on_every_kernel() {
    let options = Options {
        kernels: vec!["all".into()],
        ..Options::default()
    };
    let reports = vmtest::run(&Paths::from_env(), &options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    assert!(reports.len() >= 4, "the matrix has every manifest");
    for report in &reports {
        assert!(
            report.passed(),
            "kernel {}:\n{}",
            report.kernel,
            report.render()
        );
        assert!(!report.rows.is_empty(), "no cases ran on {}", report.kernel);
    }
}
