//! The C compiler of every kernel make: gcc through ccache, in a directory of the project's
//! ([`Paths::ccache`](crate::infra::paths::Paths)), so that rebuilding a source that was
//! built before (a new config of the same tree, another entry, a copy of the tree laid out
//! the same way) compiles from the cache. `CCACHE_BASEDIR` is the closest directory holding
//! both the source and the build directory: ccache then hashes the paths relative to it, so
//! a tree and its build directory moved together still hit. `CCACHE_NOHASHDIR`: the build
//! directory's own path stays out of the hash although the kernel builds with debug info
//! (BTF); the objects' DWARF then names the directory of the first build, which BTF does not
//! read.

use std::path::{Component, Path, PathBuf};

use xshell::Cmd;

/// ccache's size limit: four kernels with debug info, compressed, with room to spare.
const MAX_SIZE: &str = "10G";

/// `cmd` (a kernel make) with gcc through ccache at `ccache_dir`.
pub fn with_ccache<'a>(
    cmd: Cmd<'a>,
    ccache_dir: &Path,
    source: &Path,
    build_dir: &Path,
) -> Cmd<'a> {
    let cmd = cmd
        .arg("CC=ccache gcc")
        .env("CCACHE_DIR", ccache_dir)
        .env("CCACHE_MAXSIZE", MAX_SIZE)
        .env("CCACHE_NOHASHDIR", "1");
    match base_dir(source, build_dir) {
        Some(base) => cmd.env("CCACHE_BASEDIR", base),
        None => cmd,
    }
}

/// The deepest directory above both paths, unless that is `/` (ccache ignores a base
/// directory of `/`, and absolute paths then stay absolute).
fn base_dir(source: &Path, build_dir: &Path) -> Option<PathBuf> {
    let common: PathBuf = source
        .components()
        .zip(build_dir.components())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let below_root = common
        .components()
        .any(|c| matches!(c, Component::Normal(_)));
    below_root.then_some(common)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_deepest_directory_above_source_and_build() {
        assert_eq!(
            base_dir(
                Path::new("/root/.cache/wtp/sources/linux-source-6.12/linux"),
                Path::new("/root/.cache/wtp/kernels/6.12-abc/build"),
            ),
            Some(PathBuf::from("/root/.cache/wtp"))
        );
        assert_eq!(
            base_dir(Path::new("/work/tree"), Path::new("/root/.cache/wtp/b")),
            None,
            "only / in common: no base"
        );
        assert_eq!(
            base_dir(Path::new("/a/bc/x"), Path::new("/a/b/y")),
            Some(PathBuf::from("/a")),
            "components, not characters"
        );
    }
}
