//! `--latest` without a VM: the newest package of a manifest's series, resolved through the
//! apt state the manifest is fetched with (7.2: suite `sid`, private state in the kernel
//! cache, its lists refreshed from the Debian mirror apt already uses). Needs the network.

use std::process::Command;

use xtask::infra::paths::Paths;
use xtask::infra::runner::Runner;
use xtask::kernel::latest;
use xtask::kernel::manifest::Catalog;

#[test]
fn latest_resolves_the_newest_package_of_a_suite_manifest_through_its_private_apt_state() {
    let paths = Paths::from_env();
    let runner = Runner::new(&paths.root).unwrap();
    let manifest = Catalog::new(&paths.kernels()).load("7.2").unwrap();
    let latest = latest::resolve(&runner, &paths, &manifest).unwrap();
    eprintln!("7.2: {}", latest.describe());
    assert_eq!(latest.package, "linux-source-7.2");
    assert!(latest.took.starts_with("7.2."), "{latest:?}");
    // Never older than the pin: apt's candidate is the newest it offers.
    let newer_or_same = Command::new("dpkg")
        .args(["--compare-versions", &latest.took, "ge", &latest.pinned])
        .status()
        .unwrap();
    assert!(newer_or_same.success(), "{latest:?}");
    // What it takes is what a run would fetch: the manifest with the version replaced.
    let mut moved = manifest.clone();
    latest::apply(&mut moved, &latest);
    assert_eq!(
        format!("{:?}", moved.source),
        format!("{:?}", manifest.source).replace(&latest.pinned, &latest.took)
    );
}
