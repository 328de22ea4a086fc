//! Boots the real 6.12 kernel (built and cached on first use) and runs every built-in case
//! through the same pipeline as `cargo xtask vmtest`, comparing with tests/snapshots/6.12.
//! One test per VM run: they share the kernel cache, and cargo runs them one after another
//! inside this binary only because there is one.

use xtask::paths::Paths;
use xtask::vmtest::{self, Options};

#[test]
fn builtin_cases_meet_their_expectations_and_snapshots_on_6_12() {
    let reports = vmtest::run(&Paths::from_env(), &Options::default())
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    assert_eq!(reports.len(), 1);
    for report in &reports {
        assert!(
            report.failure.is_none(),
            "kernel {}: {}",
            report.kernel,
            report.render()
        );
        assert!(!report.rows.is_empty(), "no cases ran");
        assert_eq!(report.failures(), 0, "\n{}", report.render());
    }
}
