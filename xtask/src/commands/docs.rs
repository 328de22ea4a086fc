//! `cargo xtask docs`: the generated documentation. docs/helpers.md from the `_helpers`
//! snapshots; upstream's record (`guest-programs/upstream/found.toml`) from each fetched
//! tree, never dropping a recorded test; docs/upstream.md from the record and the snapshots.

use anyhow::{bail, Context, Result};

use crate::cases::compile::Clang;
use crate::cases::upstream;
use crate::cases::upstream_found::{self, Record};
use crate::infra::paths::Paths;
use crate::infra::runner::Runner;
use crate::judge::{helpers, sweep_doc, upstream_doc};
use crate::kernel::manifest::Catalog;
use crate::kernel::{source, vmlinux_h};

pub fn run(paths: &Paths) -> Result<()> {
    helpers::write_doc(paths)?;
    sweep_doc::write_doc(paths)?;
    record_upstream(paths)?;
    upstream_doc::write_doc(paths)
}

/// Rewrites each kernel's entries of the record from its fetched tree (a kernel whose tree is
/// not fetched keeps its entries); fails, writing nothing, when discovery lost a recorded test.
fn record_upstream(paths: &Paths) -> Result<()> {
    let catalog = Catalog::new(&paths.kernels());
    let families = upstream::families(&paths.upstream_families(), &catalog.vocabulary()?)?;
    let file = paths.upstream_families().join(upstream_found::RECORD);
    let mut record = Record::read(&file)?;
    let runner = Runner::new(&paths.root)?;
    let clang = Clang::new(&runner)?;
    for kernel in catalog.names()? {
        let manifest = catalog.load(&kernel)?;
        let Some(tree) = source::fetched(paths, &manifest.source) else {
            eprintln!("{kernel}: its tree is not fetched; its recorded upstream tests are kept");
            continue;
        };
        let Some(headers) = vmlinux_h::of_built(&runner, paths, &catalog, &manifest, &tree)? else {
            eprintln!(
                "{kernel}: not built here (its files that include vmlinux.h cannot be compiled); \
                 its recorded upstream tests are kept"
            );
            continue;
        };
        let out_dir = paths.bpf_objects(&format!("upstream-list-{kernel}"));
        let found =
            upstream_found::discover(&clang, &tree.dir, &families, &out_dir, Some(&headers))
                .with_context(|| {
                    format!("discovering upstream's tests in {}", tree.dir.display())
                })?;
        if let Err(lost) = record.update(&kernel, &tree.id, found) {
            bail!(
                "{kernel}: discovery no longer finds {} recorded upstream test(s): {}. Fix the \
                 discovery, or, if upstream really dropped them, delete their entries from {} by hand",
                lost.len(),
                lost.join(", "),
                file.display()
            );
        }
    }
    std::fs::write(&file, record.render()?).with_context(|| format!("writing {}", file.display()))
}
