//! Compiles the cases' BPF C programs with clang (`-target bpf -O2 -g`, libbpf-dev headers).
//! A program that does not compile fails its own cases with clang's message; the rest still run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::cmd;

use crate::progress::Stage;
use crate::runner::Runner;

/// Source path → compiled object, or clang's diagnostics.
pub type Compiled = BTreeMap<PathBuf, Result<PathBuf, String>>;

pub fn compile_all(runner: &Runner, sources: &[PathBuf], out_dir: &Path) -> Result<Compiled> {
    let stage = Stage::start(format!("compiling {} BPF programs", sources.len()));
    std::fs::create_dir_all(out_dir)?;
    let mut compiled = Compiled::new();
    for source in sources {
        compiled.insert(source.clone(), compile(runner, source, out_dir, &[])?);
    }
    let failed = compiled.values().filter(|r| r.is_err()).count();
    stage.finish(format!("{failed} failed"));
    Ok(compiled)
}

/// Compiles one program into `out_dir`; `includes` are searched before the source's own
/// directory and the system's headers.
pub fn compile(
    runner: &Runner,
    source: &Path,
    out_dir: &Path,
    includes: &[PathBuf],
) -> Result<Result<PathBuf, String>> {
    let sh = &runner.sh;
    let stem = source
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".c").to_owned())
        .unwrap_or_default();
    let object = out_dir.join(format!("{stem}.o"));
    let own_dir = source.parent().unwrap_or(Path::new(".")).to_path_buf();
    let includes: Vec<PathBuf> = includes.iter().cloned().chain([own_dir]).collect();
    let args = clang_args(source, &object, &includes);
    let output = cmd!(sh, "clang {args...}")
        .quiet()
        .ignore_status()
        .output()?;
    if output.status.success() {
        Ok(Ok(object))
    } else {
        Ok(Err(String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned()))
    }
}

/// The clang command line for one program.
pub fn clang_args(source: &Path, object: &Path, includes: &[PathBuf]) -> Vec<String> {
    // asm/types.h lives in the multiarch include directory, which -target bpf does not search.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut args: Vec<String> = ["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"]
        .map(str::to_owned)
        .to_vec();
    for include in includes {
        args.extend(["-I".to_owned(), include.to_string_lossy().into_owned()]);
    }
    args.extend(["-idirafter".to_owned(), multiarch]);
    args.extend(
        [
            "-c",
            &source.to_string_lossy(),
            "-o",
            &object.to_string_lossy(),
        ]
        .map(str::to_owned),
    );
    args
}
