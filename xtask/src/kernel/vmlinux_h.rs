//! `vmlinux.h` headers generated from a built kernel's BTF, kept in its cache entry: what
//! programs that `#include "vmlinux.h"` are compiled against on that kernel.
//!
//! They are dumped by the tree's own bpftool, built from its `tools/bpf/bpftool` (`make
//! bootstrap`, out of the tree, kept in the entry), as upstream's selftests Makefile builds
//! and uses its own: the host's bpftool (Debian's 7.1, libbpf 1.1) cannot read 7.x module BTF,
//! which is split over a *distilled* base (`.BTF.base`, relocated against vmlinux by libbpf
//! 1.5+ and by the kernel at module load) — it printed the module's types with names cut and
//! members lost.
//!
//! Two headers, each in a directory of its own so that `-I <dir>` makes `"vmlinux.h"` the one
//! meant:
//! - `vmlinux`: `bpftool btf dump file <build>/vmlinux format c`, exactly the header upstream's
//!   selftests Makefile generates. Upstream's program files include their tree's
//!   `bpf_testmod.h` beside it for the module's types, so the module must not be in it
//!   (its structs would be defined twice).
//! - `bpf_testmod`: `bpftool btf dump file bpf_testmod.ko --base-btf <build>/vmlinux format c`.
//!   The module's BTF is split BTF over vmlinux's, and bpftool dumps every type of it, the
//!   base's included: vmlinux's types and the module's in one header, for programs that take
//!   the module's types (`struct bpf_testmod_test_writable_ctx`) from its BTF, as a program
//!   written against a running system's `/sys/kernel/btf/*` would.
//!
//! A header is generated again when it is older than what it is generated from (a local tree
//! is rebuilt in the same entry); runs side by side each write a whole file and rename it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use xshell::cmd;

use crate::infra::fsutil::write_atomic;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::build::KernelBuild;
use crate::kernel::manifest::{Catalog, Manifest};
use crate::kernel::source::SourceTree;

/// The file name programs include.
pub const HEADER: &str = "vmlinux.h";

/// The include directories of one kernel's headers (each holds a [`HEADER`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VmlinuxHeaders {
    /// vmlinux's types alone (what upstream's selftests compile against).
    pub vmlinux: PathBuf,
    /// vmlinux's types and bpf_testmod's; `None` where the kernel has no bpf_testmod.
    pub with_testmod: Option<PathBuf>,
}

/// The headers of `build` (built from the source tree `tree`), generated where missing or
/// stale.
pub fn ensure(runner: &Runner, build: &KernelBuild, tree: &Path) -> Result<VmlinuxHeaders> {
    let bpftool = tree_bpftool(runner, build, tree)?;
    let vmlinux = Paths::entry_vmlinux(&build.dir);
    let plain = Paths::entry_vmlinux_h(&build.dir, "vmlinux");
    generate(runner, &plain, &[&bpftool, &vmlinux], |sh| {
        cmd!(sh, "{bpftool} btf dump file {vmlinux} format c")
    })?;
    let with_testmod = match testmod(build) {
        Some(module) => {
            let dir = Paths::entry_vmlinux_h(&build.dir, "bpf_testmod");
            generate(runner, &dir, &[&bpftool, &vmlinux, &module], |sh| {
                cmd!(
                    sh,
                    "{bpftool} btf dump file {module} --base-btf {vmlinux} format c"
                )
            })?;
            Some(dir)
        }
        None => None,
    };
    Ok(VmlinuxHeaders {
        vmlinux: plain,
        with_testmod,
    })
}

/// The tree's own bpftool for `build`: built once per entry (`make -C <tree>/tools/bpf/bpftool
/// OUTPUT=<dir>/ bootstrap`: nothing is written into the tree) into a scratch directory
/// renamed into place, so runs side by side both end with one.
fn tree_bpftool(runner: &Runner, build: &KernelBuild, tree: &Path) -> Result<PathBuf> {
    let dir = Paths::entry_bpftool(&build.dir);
    let binary = dir.join("bootstrap").join("bpftool");
    if binary.is_file() {
        return Ok(binary);
    }
    let source = tree.join("tools/bpf/bpftool");
    let makefile = std::fs::read_to_string(source.join("Makefile")).unwrap_or_default();
    if !makefile.lines().any(|line| line.starts_with("bootstrap:")) {
        // 5.10's bpftool has no bootstrap build (its full build wants the BPF skeletons);
        // its BTF has no distilled base either, which the host's bpftool reads well.
        return Ok(PathBuf::from("bpftool"));
    }
    let scratch = tempfile::Builder::new()
        .prefix(".bpftool-")
        .tempdir_in(&build.dir)
        .with_context(|| format!("creating a build directory in {}", build.dir.display()))?;
    let stage = Stage::start(format!("building the tree's bpftool for {}", build.kernel));
    let output = format!("{}/", scratch.path().display());
    let jobs = crate::infra::machine::jobs();
    let sh = &runner.sh;
    let cmd = cmd!(sh, "make -C {source} OUTPUT={output} -j{jobs} bootstrap");
    let log = build.dir.join("bpftool.log");
    runner.run_logged(cmd, &log, &stage)?;
    let kept = scratch.keep();
    if std::fs::rename(&kept, &dir).is_err() {
        // Another run built it meanwhile: use its copy.
        let _ = std::fs::remove_dir_all(&kept);
    }
    if !binary.is_file() {
        anyhow::bail!(
            "the bpftool build left no {} (log: {})",
            binary.display(),
            log.display()
        );
    }
    stage.finish("");
    Ok(binary)
}

/// The headers of `manifest`'s kernel built from `source`, where it is built here already;
/// never builds one (`vmtest --list`, `cargo xtask docs`).
pub fn of_built(
    runner: &Runner,
    paths: &Paths,
    catalog: &Catalog,
    manifest: &Manifest,
    source: &SourceTree,
) -> Result<Option<VmlinuxHeaders>> {
    match crate::kernel::build::built(runner, paths, catalog, manifest, source)? {
        Some(build) => ensure(runner, &build, &source.dir).map(Some),
        None => Ok(None),
    }
}

/// bpf_testmod's .ko among the kernel's modules, if it has one.
fn testmod(build: &KernelBuild) -> Option<PathBuf> {
    build
        .modules
        .iter()
        .find(|m| m.file_name().is_some_and(|n| n == "bpf_testmod.ko"))
        .filter(|m| m.is_file())
        .cloned()
}

/// Writes `<dir>/vmlinux.h` from what `command` prints, unless it is newer than every input.
fn generate<'a>(
    runner: &'a Runner,
    dir: &Path,
    inputs: &[&Path],
    command: impl FnOnce(&'a xshell::Shell) -> xshell::Cmd<'a>,
) -> Result<()> {
    let header = dir.join(HEADER);
    if is_fresh(&header, inputs) {
        return Ok(());
    }
    let stage = Stage::start(format!("generating {}", header.display()));
    let text = command(&runner.sh).quiet().read().with_context(|| {
        format!(
            "bpftool dumping the BTF of {}",
            inputs[inputs.len() - 1].display()
        )
    })?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(&header, format!("{text}\n").as_bytes())?;
    stage.finish(format!("{} KiB", text.len() / 1024));
    Ok(())
}

/// Whether `header` exists and is no older than any of `inputs` (a bare program name, the
/// host's bpftool, is no file to compare).
fn is_fresh(header: &Path, inputs: &[&Path]) -> bool {
    let modified = |path: &Path| match path.is_absolute() {
        true => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        false => Some(SystemTime::UNIX_EPOCH),
    };
    let Some(made) = modified(header) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| modified(input).is_some_and(|t: SystemTime| t <= made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_fresh_only_when_newer_than_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let (input, header) = (dir.path().join("vmlinux"), dir.path().join(HEADER));
        std::fs::write(&input, "btf").unwrap();
        assert!(!is_fresh(&header, &[&input]), "no header yet");
        std::fs::write(&header, "struct x;").unwrap();
        assert!(is_fresh(&header, &[&input]));
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&input)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!is_fresh(&header, &[&input]), "the input was rebuilt");
    }
}
