//! Kernel manifests: `kernels/<version>.toml`, one per kernel. Everything that differs between
//! kernel versions is data here (source, config fragments, where bpf_testmod lives, what the
//! kernel calls a tracepoint, which features it has), never a version check in code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Name used on the command line, in cache entries and snapshot directories.
    #[serde(skip)]
    pub name: String,
    pub source: SourceSpec,
    /// Config fragments under `kernels/`: the items this kernel's cases need, merged in order
    /// over allnoconfig and [`MINIMAL_BASE`].
    pub fragments: Vec<String>,
    /// Directory of the selftests' bpf_testmod inside the tree, if this kernel has one.
    #[serde(default)]
    pub testmod_dir: Option<String>,
    /// Features cases may require (`requires = [...]`); a missing one makes a case unsupported.
    #[serde(default)]
    pub features: BTreeSet<String>,
    /// Tracepoints this kernel names differently from the programs' section names.
    #[serde(default)]
    pub tracepoint_names: BTreeMap<String, String>,
}

/// Where a kernel's source tree comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// A Debian `linux-source-X` package, fetched with `apt-get download`; from `suite` (with
    /// private apt state) when the system's apt does not use that suite.
    Debian {
        package: String,
        version: String,
        #[serde(default)]
        suite: Option<String>,
    },
    /// A tarball (kernel.org style, one top directory), checked against its SHA-256.
    Tarball { url: String, sha256: String },
    /// A tree already on disk (a git checkout, an unpacked tarball); built incrementally.
    Local { path: PathBuf },
}

/// The fragment under `kernels/` that every kernel starts from, over allnoconfig: how small the
/// kernels are (`-Os`, EXPERT), not an item any case needs. B1's reference takes only the items.
pub const MINIMAL_BASE: &str = "minimal.config";

/// What a case file may name that the manifests define: the kernels (keys of `on` and
/// `load_on`) and the features any of them declares (`requires`). A name outside these would
/// silently make a case unsupported everywhere or a known answer dead, so reading a case
/// checks against it ([`Vocabulary::check_feature`], [`Vocabulary::check_kernel`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// Manifest names, sorted by version.
    pub kernels: Vec<String>,
    pub features: BTreeSet<String>,
}

impl Vocabulary {
    /// `value` of `key` must be a feature some manifest declares.
    pub fn check_feature(&self, key: &str, value: &str) -> Result<()> {
        if !self.features.contains(value) {
            let known: Vec<&str> = self.features.iter().map(String::as_str).collect();
            bail!(
                "{key}: unknown feature `{value}`; known features (the `features` of kernels/*.toml): {}",
                known.join(", ")
            );
        }
        Ok(())
    }

    /// `value` of `key` must be a manifest's name.
    pub fn check_kernel(&self, key: &str, value: &str) -> Result<()> {
        if !self.kernels.iter().any(|kernel| kernel == value) {
            bail!(
                "{key}: unknown kernel `{value}`; known kernels (kernels/*.toml): {}",
                self.kernels.join(", ")
            );
        }
        Ok(())
    }
}

/// The manifests directory and what is in it.
pub struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Names of every manifest, sorted by version.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing kernel manifests in {}", self.dir.display()))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".toml").map(str::to_owned)
            })
            .collect();
        names.sort_by_key(|name| version_key(name));
        Ok(names)
    }

    /// The manifests a run asked for: names, or `all` for every one.
    pub fn select(&self, requested: &[String]) -> Result<Vec<String>> {
        match requested.iter().any(|k| k == "all") {
            true => self.names(),
            false => Ok(requested.to_vec()),
        }
    }

    pub fn load(&self, name: &str) -> Result<Manifest> {
        let path = self.dir.join(format!("{name}.toml"));
        if !path.is_file() {
            bail!(
                "unknown kernel `{name}`: no {}; known kernels: {}",
                path.display(),
                self.names()?.join(", ")
            );
        }
        let text = std::fs::read_to_string(&path)?;
        let mut manifest: Manifest =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        manifest.name = name.to_owned();
        for fragment in &manifest.fragments {
            if !self.dir.join(fragment).is_file() {
                bail!(
                    "{}: config fragment `{fragment}` does not exist in {}",
                    path.display(),
                    self.dir.display()
                );
            }
        }
        Ok(manifest)
    }

    /// Every manifest's name and every feature any manifest declares.
    pub fn vocabulary(&self) -> Result<Vocabulary> {
        let kernels = self.names()?;
        let mut features = BTreeSet::new();
        for name in &kernels {
            features.extend(self.load(name)?.features);
        }
        Ok(Vocabulary { kernels, features })
    }

    /// The manifest's own fragments: the items its cases need.
    pub fn fragment_paths(&self, manifest: &Manifest) -> Vec<PathBuf> {
        manifest
            .fragments
            .iter()
            .map(|f| self.dir.join(f))
            .collect()
    }

    /// The minimal base every kernel starts from ([`MINIMAL_BASE`]).
    pub fn minimal_base_path(&self) -> PathBuf {
        self.dir.join(MINIMAL_BASE)
    }

    /// Everything a kernel is configured from, in merge order: the minimal base, then the items.
    pub fn config_paths(&self, manifest: &Manifest) -> Vec<PathBuf> {
        std::iter::once(self.minimal_base_path())
            .chain(self.fragment_paths(manifest))
            .collect()
    }
}

/// Sort key so that 5.10 < 6.1 < 6.12 < 7.2 (numeric, not lexical).
fn version_key(name: &str) -> Vec<u64> {
    name.split(['.', '-'])
        .map(|part| part.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_of(files: &[(&str, &str)]) -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let catalog = Catalog::new(dir.path());
        (dir, catalog)
    }

    const GOOD: &str = r#"
fragments = ["base.config"]
testmod_dir = "tools/testing/selftests/bpf/bpf_testmod"
features = ["bpf_testmod"]
[source.debian]
package = "linux-source-6.12"
version = "6.12.117-1~deb12u1"
[tracepoint_names]
bpf_testmod_test_writable_bare = "bpf_testmod_test_writable_bare_tp"
"#;

    #[test]
    fn manifests_load_and_sort_by_version() {
        let (_dir, catalog) = catalog_of(&[
            ("6.12.toml", GOOD),
            ("5.10.toml", GOOD),
            ("6.1.toml", GOOD),
            ("base.config", ""),
        ]);
        assert_eq!(catalog.names().unwrap(), ["5.10", "6.1", "6.12"]);
        let manifest = catalog.load("6.12").unwrap();
        assert_eq!(manifest.name, "6.12");
        assert!(
            matches!(manifest.source, SourceSpec::Debian { ref package, .. } if package == "linux-source-6.12")
        );
        assert_eq!(manifest.tracepoint_names.len(), 1);
    }

    #[test]
    fn the_minimal_base_is_merged_first_and_is_not_an_item() {
        let (_dir, catalog) = catalog_of(&[("6.12.toml", GOOD), ("base.config", "")]);
        let manifest = catalog.load("6.12").unwrap();
        let names = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(catalog.config_paths(&manifest)),
            [MINIMAL_BASE, "base.config"]
        );
        assert_eq!(names(catalog.fragment_paths(&manifest)), ["base.config"]);
    }

    #[test]
    fn an_unknown_kernel_lists_the_known_ones() {
        let (_dir, catalog) = catalog_of(&[("6.12.toml", GOOD), ("base.config", "")]);
        let error = catalog.load("6.13").unwrap_err().to_string();
        assert!(error.contains("unknown kernel `6.13`"), "{error}");
        assert!(error.contains("known kernels: 6.12"), "{error}");
    }

    #[test]
    fn a_missing_fragment_or_unknown_field_is_named() {
        let (_dir, catalog) = catalog_of(&[("6.12.toml", GOOD)]);
        let error = catalog.load("6.12").unwrap_err().to_string();
        assert!(
            error.contains("config fragment `base.config` does not exist"),
            "{error}"
        );

        let (_dir, catalog) = catalog_of(&[("6.12.toml", &format!("{GOOD}\nfragmnets = []\n"))]);
        let error = format!("{:#}", catalog.load("6.12").unwrap_err());
        assert!(error.contains("fragmnets"), "{error}");
    }

    #[test]
    fn the_vocabulary_is_every_manifest_and_every_feature() {
        let older = GOOD.replace(r#"features = ["bpf_testmod"]"#, r#"features = ["nbd"]"#);
        let (_dir, catalog) = catalog_of(&[
            ("6.12.toml", GOOD),
            ("5.10.toml", &older),
            ("base.config", ""),
        ]);
        let vocabulary = catalog.vocabulary().unwrap();
        assert_eq!(vocabulary.kernels, ["5.10", "6.12"]);
        assert_eq!(
            vocabulary.features.iter().collect::<Vec<_>>(),
            ["bpf_testmod", "nbd"]
        );
        assert!(vocabulary.check_feature("requires", "nbd").is_ok());
        assert!(vocabulary.check_kernel("on", "5.10").is_ok());
        let error = vocabulary
            .check_kernel("on", "6.13")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("known kernels (kernels/*.toml): 5.10, 6.12"),
            "{error}"
        );
    }
}
