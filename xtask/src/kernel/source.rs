//! Kernel source trees. A Debian package is fetched with `apt-get download` (no root needed,
//! nothing on the system changes), unpacked once into the cache and never modified afterwards:
//! builds are out of tree and module sources are copied out before building. A local tree is
//! used where it is.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::infra::apt;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::cache::Entry;
use crate::kernel::manifest::SourceSpec;

/// A kernel source tree ready to configure.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub dir: PathBuf,
    /// Identifies the tree's content for cache keys.
    pub id: String,
    /// The tree can change under us (a local checkout): build it incrementally every run
    /// instead of trusting a cache entry.
    pub mutable: bool,
}

pub fn fetch(runner: &Runner, paths: &Paths, spec: &SourceSpec) -> Result<SourceTree> {
    match spec {
        SourceSpec::Debian {
            package,
            version,
            suite,
        } => debian(runner, paths, package, version, suite.as_deref()),
        SourceSpec::Tarball { url, sha256 } => tarball(runner, paths, url, sha256),
        SourceSpec::Local { path } => local(path),
    }
}

/// The tree of `spec` if it is fetched already (a published cache entry, or a local tree), without
/// fetching, locking or unpacking anything: what `vmtest --list` reads upstream's tests from.
pub fn fetched(paths: &Paths, spec: &SourceSpec) -> Option<SourceTree> {
    let (name, id) = match spec {
        SourceSpec::Debian {
            package, version, ..
        } => (
            format!("{package}_{}", version.replace(['~', ':'], "_")),
            format!("debian:{package}={version}"),
        ),
        SourceSpec::Tarball { sha256, .. } => (
            format!("tarball-{}", &sha256[..sha256.len().min(16)]),
            format!("tarball:{sha256}"),
        ),
        SourceSpec::Local { path } => return local(path).ok(),
    };
    let entry = paths.source_cache().join(name);
    let published = crate::kernel::cache::published_in::<serde_json::Value>(&entry);
    matches!(published, Ok(Some(_))).then(|| SourceTree {
        dir: entry.join("linux"),
        id,
        mutable: false,
    })
}

fn local(path: &Path) -> Result<SourceTree> {
    if !path.join("Makefile").is_file() || !path.join("Kconfig").is_file() {
        bail!(
            "{} is not a kernel source tree (no top-level Makefile and Kconfig)",
            path.display()
        );
    }
    let dir = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    Ok(SourceTree {
        id: format!("local:{}", dir.display()),
        dir,
        mutable: true,
    })
}

fn debian(
    runner: &Runner,
    paths: &Paths,
    package: &str,
    version: &str,
    suite: Option<&str>,
) -> Result<SourceTree> {
    let name = format!("{package}_{}", version.replace(['~', ':'], "_"));
    let id = format!("debian:{package}={version}");
    cached_tree(paths, &name, id, |download, tree| {
        let stage = Stage::start(format!("downloading {package}={version}"));
        match suite {
            Some(suite) => {
                let state = paths.cache.join("apt").join(suite);
                apt::download_from_suite(runner, &state, suite, package, version, download)?
            }
            None => {
                let fix = "run `apt-get update`, or set the manifest's version to one of the above";
                apt::download(runner, &[], package, version, download, fix)?
            }
        }
        stage.finish("");
        let stage = Stage::start(format!("unpacking {package}"));
        unpack_deb(runner, download, tree)?;
        stage.finish(tree.display());
        Ok(())
    })
}

fn tarball(runner: &Runner, paths: &Paths, url: &str, sha256: &str) -> Result<SourceTree> {
    let name = format!("tarball-{}", &sha256[..sha256.len().min(16)]);
    let id = format!("tarball:{sha256}");
    cached_tree(paths, &name, id, |download, tree| {
        let stage = Stage::start(format!("downloading {url}"));
        let file = download.join("source.tar");
        let sh = &runner.sh;
        cmd!(sh, "curl -fsSL -o {file} {url}")
            .quiet()
            .run()
            .with_context(|| format!("downloading {url}"))?;
        verify_sha256(&file, sha256)?;
        stage.finish("checksum ok");
        let stage = Stage::start("unpacking the tarball");
        untar(runner, &file, download, tree)?;
        stage.finish(tree.display());
        Ok(())
    })
}

/// A source tree unpacked once into the cache: `fill(download dir, tree)` runs only when the
/// entry is not published yet, after any half-finished earlier attempt is removed.
fn cached_tree(
    paths: &Paths,
    name: &str,
    id: String,
    fill: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<SourceTree> {
    let entry = Entry::lock(&paths.source_cache(), &paths.lock_dir(), name)?;
    let tree = entry.dir.join("linux");
    let done = |dir, id| SourceTree {
        dir,
        id,
        mutable: false,
    };
    if entry.published::<serde_json::Value>()?.is_some() {
        return Ok(done(tree, id));
    }
    if entry.dir.exists() {
        std::fs::remove_dir_all(&entry.dir)
            .with_context(|| format!("removing the incomplete {}", entry.dir.display()))?;
    }
    let download = entry.dir.join("download");
    std::fs::create_dir_all(&download)?;
    let filled = fill(&download, &tree);
    // Whatever happened, the download area goes; a failed entry stays unpublished.
    let _ = std::fs::remove_dir_all(&download);
    filled?;
    entry.publish(&serde_json::json!({ "id": id }))?;
    Ok(done(tree, id))
}

/// Fails unless the file's SHA-256 is `expected` (hex); a bad download is named as such.
pub fn verify_sha256(file: &Path, expected: &str) -> Result<()> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut reader = std::fs::File::open(file)?;
    std::io::copy(&mut reader, &mut hasher)?;
    let actual: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual != expected.to_ascii_lowercase() {
        bail!(
            "{} has SHA-256 {actual}, the manifest expects {expected}: the download is truncated or corrupt (it was discarded; run again), or the manifest's sha256 is wrong",
            file.display()
        );
    }
    Ok(())
}

/// The .deb holds `/usr/src/linux-source-X.tar.xz`; its single top directory becomes `tree`.
fn unpack_deb(runner: &Runner, download: &Path, tree: &Path) -> Result<()> {
    let sh = &runner.sh;
    let deb = single_file(download, ".deb")?;
    let extracted = download.join("deb");
    cmd!(sh, "dpkg-deb -x {deb} {extracted}")
        .quiet()
        .run()
        .with_context(|| {
            format!(
                "{} is not a valid .deb (truncated download?)",
                deb.display()
            )
        })?;
    let tarball = single_file(&extracted.join("usr/src"), ".tar.xz")?;
    untar(runner, &tarball, download, tree)
}

/// Unpacks a tarball with one top directory (any compression tar recognises) into `tree`.
fn untar(runner: &Runner, tarball: &Path, scratch: &Path, tree: &Path) -> Result<()> {
    let sh = &runner.sh;
    let unpacked = scratch.join("tree");
    std::fs::create_dir_all(&unpacked)?;
    cmd!(sh, "tar -xf {tarball} -C {unpacked}")
        .quiet()
        .run()
        .with_context(|| format!("unpacking {} (corrupt archive?)", tarball.display()))?;
    let top = single_dir(&unpacked)?;
    std::fs::rename(&top, tree)?;
    Ok(())
}

fn single_file(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let matches: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one *{suffix} in {}, found {}",
            dir.display(),
            matches.len()
        ),
    }
}

fn single_dir(dir: &Path) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one top directory in the source archive, found {}",
            dirs.len()
        ),
    }
}
