//! A case set's own kernel module (`<cases>/modules/<name>/`: a Kbuild file and C files),
//! built against one kernel's cache entry the way bpf_testmod is: copied out of the user's
//! directory, `make -C <entry>/build M=<copy> modules` through ccache
//! ([`crate::kernel::compiler`]). Kept in the entry (`user-modules/<name>-<digest>/`) by a
//! digest of the module's sources and of the build tree it is built against, so an unchanged
//! module is not built again, and removed with the entry by `cache gc`. Where the kernel
//! makes module BTF (`CONFIG_DEBUG_INFO_BTF_MODULES`, 5.11+), the .ko must have a `.BTF`
//! section: its types are what CO-RE and `bpftool btf dump` see.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::infra::paths::Paths;
use crate::infra::progress::{self, Stage};
use crate::infra::runner::Runner;
use crate::kernel::build::KernelBuild;
use crate::kernel::compiler;

/// The module `name`, built from `source` against `build`; returns the .ko's path (as the
/// guest sees it too: the host's root is the guest's).
pub fn ensure(
    runner: &Runner,
    paths: &Paths,
    build: &KernelBuild,
    name: &str,
    source: &Path,
) -> Result<PathBuf> {
    let build_tree = build.dir.join("build");
    let digest = digest(source, &build_tree)?;
    let root = build.dir.join("user-modules");
    let dest = root.join(format!("{name}-{digest}"));
    let ko = dest.join(format!("{name}.ko"));
    if ko.is_file() {
        progress::line(format_args!(
            "✓ module {name} for {} from cache ({})",
            build.kernel,
            ko.display()
        ));
        return Ok(ko);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempdir_in(&root)
        .with_context(|| format!("creating a build directory in {}", root.display()))?;
    copy_sources(source, scratch.path())
        .with_context(|| format!("copying {}", source.display()))?;
    let stage = Stage::start(format!("building module {name} for {}", build.kernel));
    let log = root.join(format!("{name}-{digest}.log"));
    let sh = &runner.sh;
    let copy = scratch.path();
    let cmd = cmd!(sh, "make -C {build_tree} M={copy} modules");
    let cmd = compiler::with_ccache(cmd, &paths.ccache, copy, &build_tree);
    runner.run_logged(cmd, &log, &stage)?;
    let built = copy.join(format!("{name}.ko"));
    if !built.is_file() {
        bail!(
            "the build made no {name}.ko: the module's Kbuild must say `obj-m += {name}.o` (the module is named after its directory)"
        );
    }
    let btf = match wants_btf(&build_tree) {
        true => {
            if !has_btf(&built)? {
                bail!(
                    "{name}.ko has no .BTF section although this kernel makes module BTF \
                     (CONFIG_DEBUG_INFO_BTF_MODULES): is pahole on the PATH? (log: {})",
                    log.display()
                );
            }
            "with BTF"
        }
        false => "no BTF: this kernel makes no module BTF",
    };
    let kept = scratch.keep();
    if std::fs::rename(&kept, &dest).is_err() {
        // Another run built the same module meanwhile: use its copy.
        let _ = std::fs::remove_dir_all(&kept);
        if !ko.is_file() {
            bail!("could not keep the built module at {}", dest.display());
        }
    }
    stage.finish(btf);
    Ok(ko)
}

/// A digest of the module's sources (names and contents, build outputs left out) and of
/// what it is built against: the kernel's release, Module.symvers and vmlinux (a local tree
/// is rebuilt in the same entry).
fn digest(source: &Path, build_tree: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    list_sources(source, source, &mut files)?;
    files.sort();
    for relative in &files {
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        let bytes = std::fs::read(source.join(relative))
            .with_context(|| format!("reading {}", source.join(relative).display()))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    for against in ["include/config/kernel.release", "Module.symvers"] {
        hasher.update(std::fs::read(build_tree.join(against)).unwrap_or_default());
    }
    let vmlinux = std::fs::metadata(build_tree.join("vmlinux"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.update(vmlinux.to_le_bytes());
    Ok(crate::infra::digest::short_hex(hasher))
}

/// Whether a file is a build output (an in-place build in the user's directory leaves them).
fn is_build_output(name: &str) -> bool {
    name.starts_with('.')
        || [".o", ".ko", ".mod", ".mod.c", ".symvers", ".order"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

fn list_sources(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_build_output(&name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_sources(root, &path, files)?;
        } else {
            files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    let mut files = Vec::new();
    list_sources(from, from, &mut files)?;
    for relative in files {
        let target = to.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&relative), &target)?;
    }
    Ok(())
}

/// Whether the build tree's kernel makes BTF for its modules.
fn wants_btf(build_tree: &Path) -> bool {
    std::fs::read_to_string(build_tree.join(".config")).is_ok_and(|config| {
        config
            .lines()
            .any(|l| l == "CONFIG_DEBUG_INFO_BTF_MODULES=y")
    })
}

fn has_btf(ko: &Path) -> Result<bool> {
    let bytes = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*bytes).with_context(|| format!("parsing {}", ko.display()))?;
    Ok(file.sections().any(|s| s.name() == Ok(".BTF")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_the_sources_not_their_build_outputs() {
        let module = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(module.path().join("Kbuild"), "obj-m += m.o\n").unwrap();
        std::fs::write(module.path().join("m.c"), "int x;\n").unwrap();
        let first = digest(module.path(), tree.path()).unwrap();
        std::fs::write(module.path().join("m.o"), "object").unwrap();
        std::fs::write(module.path().join(".m.o.cmd"), "cmd").unwrap();
        assert_eq!(digest(module.path(), tree.path()).unwrap(), first);
        std::fs::write(module.path().join("m.c"), "int y;\n").unwrap();
        assert_ne!(digest(module.path(), tree.path()).unwrap(), first);
        let second = digest(module.path(), tree.path()).unwrap();
        std::fs::write(tree.path().join("Module.symvers"), "0x1 sym vmlinux\n").unwrap();
        assert_ne!(digest(module.path(), tree.path()).unwrap(), second);
    }
}
