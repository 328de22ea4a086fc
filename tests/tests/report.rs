//! `cargo xtask report` on the run directories of a real local matrix run: the grid it renders
//! from `images/runs/<kernel>/run-*` is the grid `vmtest --kernel all` printed (the same
//! judging, read back from disk), also from an artifact-like layout; a kernel left out is
//! named as not reporting, a run cut short as ended early, and the Markdown links failures to
//! the kernel's job.

use std::path::{Path, PathBuf};

use xtask::commands::report::{self, Options};
use xtask::commands::vmtest;
use xtask::infra::paths::Paths;
use xtask::report::grid::{self, Links};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
}

#[test]
fn the_report_of_a_local_matrix_runs_directories_is_the_grid_the_run_printed() {
    let paths = Paths::from_env();
    let options = vmtest::Options {
        kernels: vec!["all".into()],
        // One VM per kernel whatever the cores: the cut below edits an unsharded run's files.
        vms: Some(4),
        ..vmtest::Options::default()
    };
    let reports = vmtest::run(&paths, &options)
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    let printed = grid::render(&reports);
    let dirs: Vec<PathBuf> = reports
        .iter()
        .map(|r| r.run_dir.clone().expect("every kernel booted"))
        .collect();

    // The run directories themselves (what `cargo xtask report images/runs/*/latest` reads).
    let matrix = report::run(
        &paths,
        &Options {
            dirs: dirs.clone(),
            kernels: Vec::new(),
        },
    )
    .unwrap();
    assert!(matrix.silent.is_empty(), "{:?}", matrix.silent);
    let text = report::render(&matrix);
    assert_eq!(text, printed, "report:\n{text}\nvmtest printed:\n{printed}");
    assert_eq!(
        grid::markdown(&matrix.reports, &Links::default()),
        grid::markdown(&reports, &Links::default())
    );
    eprintln!("{text}");

    // Downloaded artifacts: results-<kernel>/images/runs/<kernel>/run-*/, one kernel missing,
    // one run cut short (no end of the VM recorded, the last records lost).
    let artifacts = tempfile::tempdir().unwrap();
    let (last, kept) = reports.split_last().unwrap();
    for report in kept {
        let run = report.run_dir.as_ref().unwrap();
        let to = artifacts
            .path()
            .join(format!("results-{}", report.kernel))
            .join("images/runs")
            .join(&report.kernel)
            .join(run.file_name().unwrap());
        copy_dir(run, &to);
    }
    let cut = &kept[0];
    let cut_dir = artifacts
        .path()
        .join(format!("results-{}", cut.kernel))
        .join("images/runs")
        .join(&cut.kernel)
        .join(cut.run_dir.as_ref().unwrap().file_name().unwrap());
    std::fs::remove_file(cut_dir.join("vm.json")).unwrap();
    let results = std::fs::read_to_string(cut_dir.join("results.jsonl")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    std::fs::write(
        cut_dir.join("results.jsonl"),
        lines[..lines.len() / 2].join("\n") + "\n",
    )
    .unwrap();

    let matrix = report::run(
        &paths,
        &Options {
            dirs: vec![artifacts.path().to_path_buf()],
            kernels: Vec::new(),
        },
    )
    .unwrap();
    let text = report::render(&matrix);
    eprintln!("{text}");
    assert_eq!(matrix.reports.len(), kept.len(), "{text}");
    assert!(
        text.contains(&format!(
            "did not report: {}: no run directory among the arguments",
            last.kernel
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "did not report: {}: the run ended early: the results break the protocol: the VM's end was never recorded",
            cut.kernel
        )),
        "{text}"
    );
    assert!(text.contains("NOT RUN"), "{text}");
    assert!(report::nothing_from(&matrix));

    let links = report::grid_links(
        vec![(cut.kernel.clone(), "https://ci.example/job/1".into())],
        Some("https://ci.example/run".into()),
    );
    let markdown = report::markdown(&matrix, &links);
    eprintln!("{markdown}");
    assert!(
        markdown.contains("[NOT RUN](https://ci.example/job/1)"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "- {}: no run directory among the arguments",
            last.kernel
        )) && markdown.contains("([job output](https://ci.example/run))"),
        "{markdown}"
    );
}

/// A run of one kernel split over VMs (one per core; two on two cores) is read back shard by
/// shard: `report` on its directory renders what `vmtest` printed.
#[test]
fn the_report_of_a_sharded_run_is_what_the_run_printed() {
    let paths = Paths::from_env();
    let reports = vmtest::run(&paths, &vmtest::Options::default())
        .unwrap_or_else(|error| panic!("the VM run could not be done: {error:#}"));
    let dir = reports[0].run_dir.clone().expect("the kernel booted");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        dir.join("shard-1").is_dir(),
        cores >= 2,
        "a one-kernel run of every case takes a VM per core"
    );
    let matrix = report::run(
        &paths,
        &Options {
            dirs: vec![dir],
            kernels: vec!["6.12".into()],
        },
    )
    .unwrap();
    assert!(matrix.silent.is_empty(), "{:?}", matrix.silent);
    assert_eq!(
        grid::render(&matrix.reports),
        grid::render(&reports),
        "report read the shards back as the run did"
    );
    let passed = |r: &xtask::report::KernelReport| r.rows.iter().filter(|row| row.passed()).count();
    assert_eq!(passed(&matrix.reports[0]), passed(&reports[0]));
    assert_eq!(matrix.reports[0].rows.len(), reports[0].rows.len());
    assert!(passed(&reports[0]) > 50, "{}", reports[0].render());
}
