//! `--latest`: the newest package of a manifest's series that apt offers, in place of the
//! pinned version. Resolved through the very apt state the manifest's source is fetched with
//! (a suite's private state, its lists refreshed; without a suite, the system's apt).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::infra::apt;
use crate::infra::paths::Paths;
use crate::infra::runner::Runner;
use crate::kernel::manifest::{Manifest, SourceSpec};

/// What `--latest` took for one kernel instead of its pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub package: String,
    /// The manifest's version, whose snapshots the run is compared with.
    pub pinned: String,
    /// The newest version apt offers.
    pub took: String,
}

impl Latest {
    /// Whether the newest version is another than the pin.
    pub fn moved(&self) -> bool {
        self.took != self.pinned
    }

    /// One line: what was taken, and whether it moved.
    pub fn describe(&self) -> String {
        match self.moved() {
            true => format!(
                "{} {} (newer than the pinned {})",
                self.package, self.took, self.pinned
            ),
            false => format!(
                "{} {}: the newest apt offers is the pinned version",
                self.package, self.took
            ),
        }
    }
}

/// The newest version of `manifest`'s package that apt offers.
pub fn resolve(runner: &Runner, paths: &Paths, manifest: &Manifest) -> Result<Latest> {
    let SourceSpec::Debian {
        package,
        version,
        suite,
    } = &manifest.source
    else {
        bail!(
            "--latest needs a Debian package source; kernel {} is built from {:?}",
            manifest.name,
            manifest.source
        );
    };
    let options = match suite {
        Some(suite) => apt::suite_state(runner, &paths.cache.join("apt").join(suite), suite)?,
        None => Vec::new(),
    };
    Ok(Latest {
        package: package.clone(),
        pinned: version.clone(),
        took: apt::candidate(runner, &options, package)?,
    })
}

/// The manifest with its package's version replaced by `latest`'s (snapshots, features and
/// fragments stay the manifest's).
pub fn apply(manifest: &mut Manifest, latest: &Latest) {
    if let SourceSpec::Debian { version, .. } = &mut manifest.source {
        version.clone_from(&latest.took);
    }
}
