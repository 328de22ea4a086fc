//! `examples/own-tracepoint` (a module with a writable tracepoint of its own, built per
//! kernel from the case directory) on every kernel of the matrix, against its reviewed
//! snapshots; and a copy of it whose module does not compile, which fails each kernel at the
//! module build with the compiler's words while the run goes on.

use xtask::commands::vmtest::{self, Options};
use xtask::infra::failure::SetupStage;
use xtask::infra::paths::Paths;
use xtask::judge::Verdict;
use xtask::report::KernelReport;

fn example() -> std::path::PathBuf {
    Paths::from_env()
        .root
        .join("examples")
        .join("own-tracepoint")
}

fn run(options: &Options) -> Vec<KernelReport> {
    vmtest::run(&Paths::from_env(), options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"))
}

#[test]
fn the_example_runs_on_every_kernel_and_matches_its_snapshots() {
    let reports = run(&Options {
        kernels: vec!["all".into()],
        cases: Some(example()),
        ..Options::default()
    });
    assert_eq!(reports.len(), 4);
    for report in &reports {
        assert!(report.failure.is_none(), "{}", report.render());
        assert!(
            report.context.contains("wtp_own_tp.ko ok"),
            "the module loads: {}",
            report.context
        );
        let verdict = |case: &str| {
            report
                .rows
                .iter()
                .find(|row| row.case == case)
                .unwrap_or_else(|| panic!("{case} on {}", report.kernel))
                .verdict()
        };
        for case in ["rewrite", "last_word", "read_past_end", "third_arg"] {
            assert_eq!(verdict(case), Verdict::Pass, "{}", report.render());
        }
        // 5.10 makes no module BTF (DEBUG_INFO_BTF_MODULES is 5.11+): no CO-RE against it.
        let core = match report.kernel.as_str() {
            "5.10" => Verdict::Unsupported,
            _ => Verdict::Pass,
        };
        assert_eq!(verdict("core_rewrite"), core, "{}", report.render());
    }
}

#[test]
fn a_module_that_does_not_compile_fails_its_kernel_with_the_compilers_words() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    };
    copy(&example(), dir.path());
    let module = dir.path().join("modules").join("wtp_own_tp");
    std::fs::create_dir_all(&module).unwrap();
    copy(&example().join("modules").join("wtp_own_tp"), &module);
    let source = module.join("wtp_own_tp.c");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("++reads", "++no_such_counter")).unwrap();

    let reports = run(&Options {
        kernels: vec!["5.10".into(), "6.12".into()],
        cases: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    assert_eq!(reports.len(), 2, "every kernel gets its report");
    for report in &reports {
        let Some(xtask::guest::failure::KernelFailure::Setup(failure)) = &report.failure else {
            panic!("{}", report.render());
        };
        assert_eq!(failure.stage, SetupStage::ModuleBuild);
        assert!(
            failure.message.contains("module `wtp_own_tp`")
                && failure
                    .message
                    .contains("error: ‘no_such_counter’ undeclared"),
            "{}",
            failure.message
        );
    }
}
