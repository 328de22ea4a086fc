//! The boundary sweep on bpf_test_finish (opt-in in `vmtest`: about 20 s of guest time per
//! kernel under TCG) on every kernel of the matrix, against its snapshot in
//! tests/snapshots/<kernel>/sweep.bpf_test_finish.snap: a change in what any generated program
//! gets from any kernel (or in the model) shows as a snapshot diff here.

use xtask::commands::vmtest::{self, Options};
use xtask::infra::paths::Paths;

#[test]
fn the_sweep_meets_its_snapshot_on_every_kernel() {
    let options = Options {
        kernels: vec!["all".into()],
        only_cases: vec!["sweep.bpf_test_finish".into()],
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
        let names: Vec<&str> = report.rows.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(names, ["sweep.bpf_test_finish"], "on {}", report.kernel);
    }
}
