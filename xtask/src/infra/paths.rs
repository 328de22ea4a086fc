//! The one place that knows where things live: the repository's fixed layout, the run
//! directories under `images/`, and the kernel build cache.

use std::path::{Path, PathBuf};

/// Overrides the kernel build cache directory (default: `$XDG_CACHE_HOME/wtp` or `~/.cache/wtp`).
pub const CACHE_ENV: &str = "WTP_CACHE_DIR";
/// Overrides ccache's directory for kernel builds (default: `ccache/` in the kernel cache).
pub const CCACHE_ENV: &str = "WTP_CCACHE_DIR";

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub cache: PathBuf,
    /// ccache's directory for every kernel make (kernel/compiler.rs).
    pub ccache: PathBuf,
}

impl Paths {
    /// Paths for the workspace this xtask was built from, with the cache from the environment.
    pub fn from_env() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one level below the workspace root")
            .to_path_buf();
        let cache = cache_dir_from_env();
        let ccache = std::env::var_os(CCACHE_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| cache.join("ccache"));
        Self {
            root,
            cache,
            ccache,
        }
    }

    pub fn kernels(&self) -> PathBuf {
        self.root.join("kernels")
    }

    pub fn guest_programs(&self) -> PathBuf {
        self.root.join("guest-programs")
    }

    /// Upstream program families (`<family>.toml`), compiled from each kernel's tree.
    pub fn upstream_families(&self) -> PathBuf {
        self.guest_programs().join("upstream")
    }

    /// Snapshots of one kernel for the built-in cases.
    pub fn snapshots(&self, kernel: &str) -> PathBuf {
        self.root.join("tests").join("snapshots").join(kernel)
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Compiled BPF objects of one case directory (the built-in one is `guest-programs`).
    pub fn bpf_objects(&self, case_set: &str) -> PathBuf {
        self.images().join("bpf").join(case_set)
    }

    /// Where each VM run of a kernel leaves its plan, results and console log.
    pub fn runs(&self, kernel: &str) -> PathBuf {
        self.images().join("runs").join(kernel)
    }

    pub fn cargo_target(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"))
    }

    pub fn harness_binary(&self) -> PathBuf {
        self.cargo_target().join("release").join("harness")
    }

    /// The initramfs a plan run boots with (`initramfs.rs`).
    pub fn initramfs(&self) -> PathBuf {
        self.images().join("initramfs.cpio")
    }

    pub fn source_cache(&self) -> PathBuf {
        self.cache.join("sources")
    }

    pub fn kernel_cache(&self) -> PathBuf {
        self.cache.join("kernels")
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.cache.join("locks")
    }

    /// The BTF-carrying `vmlinux` of a kernel cache entry's build tree.
    pub fn entry_vmlinux(entry: &Path) -> PathBuf {
        entry.join("build").join("vmlinux")
    }

    /// The tree's own bpftool built for a kernel cache entry (its `bootstrap` build's output
    /// directory; the binary is `bootstrap/bpftool` in it).
    pub fn entry_bpftool(entry: &Path) -> PathBuf {
        entry.join("bpftool")
    }

    /// Where the `vmlinux.h` headers generated from a kernel cache entry's BTF live: one
    /// directory per header, each holding a file named `vmlinux.h` (what programs include).
    pub fn entry_vmlinux_h(entry: &Path, header: &str) -> PathBuf {
        entry.join("vmlinux-h").join(header)
    }
}

fn cache_dir_from_env() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("wtp")
}
