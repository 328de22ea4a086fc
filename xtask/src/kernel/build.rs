//! Kernel and bpf_testmod builds, cached by [`crate::kernel::cache`]. The kernel is built out of tree
//! (`O=`) in the cache entry; bpf_testmod is copied out of the source tree (which stays
//! pristine and shared) and built against that exact build tree and its Module.symvers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::cache::{self, Entry, KeyInputs, RECIPE_VERSION};
use crate::kernel::manifest::{Catalog, Manifest};
use crate::kernel::source::SourceTree;
use crate::kernel::{compiler, kconfig};

/// A built kernel, as recorded in its cache entry's `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelBuild {
    pub kernel: String,
    pub key: String,
    pub source_id: String,
    pub dir: PathBuf,
    pub bzimage: PathBuf,
    /// Modules to load in the guest before the cases run (bpf_testmod where there is one).
    pub modules: Vec<PathBuf>,
    pub build_secs: f64,
    /// Whether this call built it (false: it came from the cache); never stored.
    #[serde(skip)]
    pub built_now: bool,
    /// The entry's shared lock, held while this run uses the kernel; never stored.
    #[serde(skip)]
    pub in_use: Option<Arc<std::fs::File>>,
}

impl KernelBuild {
    /// The linked kernel with its symbols (kept in the entry's build tree; modules are built
    /// against it, and [`crate::kernel::raw_tp`] reads its raw tracepoints).
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("build").join("vmlinux")
    }
}

const TESTMOD_KO: &str = "bpf_testmod.ko";

/// Returns the cached build for `manifest`, building it first if needed. Errors name the
/// stage: only a failed kernel or module build is the tree's own fault.
pub fn ensure(
    runner: &Runner,
    paths: &Paths,
    catalog: &Catalog,
    manifest: &Manifest,
    source: &SourceTree,
) -> Result<KernelBuild, SetupFailure> {
    let merged = kconfig::merge_files(&catalog.config_paths(manifest)).at(SetupStage::Input)?;
    let config = merged.render();
    let toolchain = toolchain_fingerprint(runner).at(SetupStage::HostTools)?;
    let key = key_of(manifest, source, &config, &toolchain);
    let name = format!("{}-{key}", manifest.name);
    // A local tree can change under us: kbuild, not the cache key, knows what is stale. Any
    // other complete entry is used under a shared lock, so runs share it and only a build
    // (or `cache gc`) excludes the others.
    if !source.mutable {
        if let Some(build) = cached(paths, &name).at(SetupStage::Cache)? {
            crate::infra::progress::line(format_args!(
                "✓ kernel {} from cache ({})",
                manifest.name,
                build.dir.display()
            ));
            return Ok(build);
        }
    }
    let entry =
        Entry::lock(&paths.kernel_cache(), &paths.lock_dir(), &name).at(SetupStage::Cache)?;
    if let Some(build) = entry.published::<KernelBuild>().at(SetupStage::Cache)? {
        if !source.mutable {
            // Another run built it while this one waited for the lock.
            drop(entry);
            return in_use(paths, &name, build).at(SetupStage::Cache);
        }
    }

    let started = Instant::now();
    let build_dir = entry.dir.join("build");
    let trees = (source.dir.as_path(), build_dir.as_path());
    kconfig::configure(runner, trees, &paths.ccache, &merged).at(SetupStage::Config)?;
    build_kernel(runner, trees, &paths.ccache, &manifest.name).at(SetupStage::KernelBuild)?;
    let modules = match &manifest.testmod_dir {
        Some(dir) => {
            let module_source = source.dir.join(dir);
            vec![
                build_testmod(runner, &module_source, &entry.dir, &paths.ccache)
                    .at(SetupStage::ModuleBuild)?,
            ]
        }
        None => Vec::new(),
    };
    let build = KernelBuild {
        kernel: manifest.name.clone(),
        key,
        source_id: source.id.clone(),
        bzimage: build_dir.join("arch/x86/boot/bzImage"),
        dir: entry.dir.clone(),
        modules,
        build_secs: started.elapsed().as_secs_f64(),
        built_now: true,
        in_use: None,
    };
    entry.publish(&build).at(SetupStage::Cache)?;
    drop(entry);
    in_use(paths, &name, build).at(SetupStage::Cache)
}

/// The cache key of `manifest` built from `source` with `config` by `toolchain`.
fn key_of(manifest: &Manifest, source: &SourceTree, config: &str, toolchain: &str) -> String {
    KeyInputs {
        recipe: RECIPE_VERSION,
        source_id: &source.id,
        config,
        toolchain,
        testmod_dir: manifest.testmod_dir.as_deref(),
    }
    .key()
}

/// The cached build of `manifest` from `source`, held shared, if it is built already; never
/// builds (what `vmtest --list` and `cargo xtask docs` read a kernel's BTF from).
pub fn built(
    runner: &Runner,
    paths: &Paths,
    catalog: &Catalog,
    manifest: &Manifest,
    source: &SourceTree,
) -> Result<Option<KernelBuild>> {
    let config = kconfig::merge_files(&catalog.config_paths(manifest))?.render();
    let key = key_of(manifest, source, &config, &toolchain_fingerprint(runner)?);
    cached(paths, &format!("{}-{key}", manifest.name))
}

/// The complete entry `name`, held shared, if there is one.
fn cached(paths: &Paths, name: &str) -> Result<Option<KernelBuild>> {
    let guard = cache::hold_shared(&paths.lock_dir(), name)?;
    let Some(mut build) = cache::published_in::<KernelBuild>(&paths.kernel_cache().join(name))?
    else {
        return Ok(None);
    };
    cache::touch(&build.dir);
    build.in_use = Some(Arc::new(guard));
    Ok(Some(build))
}

/// The build, with the shared lock that keeps `cache gc` away while this run uses it.
fn in_use(paths: &Paths, name: &str, mut build: KernelBuild) -> Result<KernelBuild> {
    build.in_use = Some(Arc::new(cache::hold_shared(&paths.lock_dir(), name)?));
    cache::touch(&build.dir);
    Ok(build)
}

fn build_kernel(
    runner: &Runner,
    (source, build_dir): (&Path, &Path),
    ccache: &Path,
    name: &str,
) -> Result<()> {
    let stage = Stage::start(format!(
        "building kernel {name} (log: {}/build.log)",
        build_dir.display()
    ));
    make_kernel(
        runner,
        (source, build_dir),
        ccache,
        &build_dir.join("build.log"),
        &stage,
    )?;
    stage.finish("");
    Ok(())
}

/// `make bzImage modules` of the configured `build_dir` (`O=`), one job per core, logged to
/// `log`: the one kernel build command, for the cache and for the bench's builds alike.
pub fn make_kernel(
    runner: &Runner,
    (source, build_dir): (&Path, &Path),
    ccache: &Path,
    log: &Path,
    stage: &Stage,
) -> Result<()> {
    let jobs = crate::infra::machine::jobs();
    let sh = &runner.sh;
    let cmd = cmd!(
        sh,
        "make -C {source} O={build_dir} -j{jobs} bzImage modules"
    );
    let cmd = compiler::with_ccache(cmd, ccache, source, build_dir);
    runner.run_logged(cmd, log, stage)
}

/// Copies the module sources into the entry and builds them there; returns the .ko path.
fn build_testmod(
    runner: &Runner,
    module_source: &Path,
    entry_dir: &Path,
    ccache: &Path,
) -> Result<PathBuf> {
    let stage = Stage::start("building bpf_testmod");
    let dest = entry_dir.join("testmod");
    if dest.exists() {
        std::fs::remove_dir_all(&dest)?;
    }
    copy_dir(module_source, &dest).with_context(|| {
        format!(
            "copying {} (does this kernel have bpf_testmod there?)",
            module_source.display()
        )
    })?;
    let build_dir = entry_dir.join("build");
    let sh = &runner.sh;
    let jobs = crate::infra::machine::jobs();
    // 6.14+ trees build five modules here, not one.
    let cmd = cmd!(sh, "make -C {build_dir} M={dest} -j{jobs} modules");
    let cmd = compiler::with_ccache(cmd, ccache, &dest, &build_dir);
    runner.run_logged(cmd, &entry_dir.join("testmod.log"), &stage)?;
    stage.finish("");
    Ok(dest.join(TESTMOD_KO))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The versions of everything that shapes the binary, for the cache key.
fn toolchain_fingerprint(runner: &Runner) -> Result<String> {
    let sh = &runner.sh;
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_owned();
    Ok([
        first_line(cmd!(sh, "gcc --version").read()?),
        first_line(cmd!(sh, "ld --version").read()?),
        first_line(cmd!(sh, "pahole --version").read()?),
        first_line(cmd!(sh, "make --version").read()?),
    ]
    .join("\n"))
}
