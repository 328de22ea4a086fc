//! `cargo xtask bench --config-blocks`: what each `## ` block of `kernels/minimal.config` and
//! `kernels/base.config` costs in B1's cold build. The 6.12 config is built cold as it is, then
//! once without each block (what depended on the block drops with it), then once with each item
//! the config no longer has. A block's cost is the build time it adds. The table goes into
//! BENCHMARKS.md between its own markers.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::commands::bench;
use crate::infra::host_tools;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::kconfig::{self, Merged};
use crate::kernel::manifest::Catalog;
use crate::kernel::{build, source};

/// The markers of BENCHMARKS.md's block table.
const TABLE: &str = "blocks";
const KERNEL: &str = "6.12";

/// Items taken out of the config, measured by putting them back.
const REMOVED: &[(&str, &str)] = &[
    (
        "ACPI (was there for power-off; the guest now ends the VM with a reset)",
        "CONFIG_ACPI=y",
    ),
    (
        "IPv4 (no case uses it; 9p needs it on 5.10 and 6.1, whose fragments have it)",
        "CONFIG_INET=y",
    ),
];

/// One measured cold build.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockCost {
    pub what: String,
    /// The config this build had, relative to the project's.
    pub change: Change,
    pub build_secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    AsIs,
    Without(usize),
    With(String),
}

pub fn run(paths: &Paths) -> Result<Vec<BlockCost>> {
    let runner = Runner::new(&paths.root)?;
    host_tools::ensure(&runner)?;
    let catalog = Catalog::new(&paths.kernels());
    let manifest = catalog.load(KERNEL)?;
    let source = source::fetch(&runner, paths, &manifest.source)?;
    let merged = kconfig::merge_files(&catalog.config_paths(&manifest))?;
    // The minimal base's blocks, then base.config's: the manifest's first fragment, the items
    // every kernel shares.
    let shared_items = catalog.fragment_paths(&manifest)[0].clone();
    let mut blocks = Vec::new();
    for fragment in [catalog.minimal_base_path(), shared_items] {
        let text = std::fs::read_to_string(&fragment)?;
        blocks.extend(kconfig::blocks(&text, &fragment.display().to_string())?);
    }
    let work = tempfile::Builder::new()
        .prefix("config-blocks-")
        .tempdir_in(paths.images())?;
    let scratch = work.path().to_path_buf();
    let _remove_on_interrupt = crate::infra::runner::on_interrupt(move || {
        let _ = std::fs::remove_dir_all(&scratch);
    });

    let mut costs = vec![BlockCost {
        what: "the whole config".into(),
        change: Change::AsIs,
        build_secs: build(
            &runner,
            &source.dir,
            work.path(),
            &merged,
            "the whole config",
        )?,
    }];
    for block in blocks {
        let config = merged.without(&block.symbols);
        let secs = build(&runner, &source.dir, work.path(), &config, &block.heading)?;
        costs.push(BlockCost {
            what: block.heading,
            change: Change::Without(block.symbols.len()),
            build_secs: secs,
        });
    }
    for (what, line) in REMOVED {
        let added = kconfig::parse_fragment(line, "config_cost.rs")?;
        let config = Merged::from_fragments([merged.requests(), added]);
        let secs = build(&runner, &source.dir, work.path(), &config, what)?;
        costs.push(BlockCost {
            what: (*what).into(),
            change: Change::With((*line).into()),
            build_secs: secs,
        });
    }
    Ok(costs)
}

/// One cold `make bzImage modules` of `config`, in a build directory removed afterwards.
fn build(runner: &Runner, source: &Path, work: &Path, config: &Merged, what: &str) -> Result<f64> {
    let dir = work.join("build");
    let stage = Stage::start(format!("B1 block costs: configuring {what}"));
    // A fresh ccache per build: each one is cold, as B1's are.
    let ccache = work.join("ccache");
    let _ = std::fs::remove_dir_all(&ccache);
    kconfig::write_config(runner, (source, &dir), &ccache, config, &stage)?;
    stage.finish("");
    let stage = Stage::start(format!("B1 block costs: building {what} (cold)"));
    let started = Instant::now();
    build::make_kernel(
        runner,
        (source, &dir),
        &ccache,
        &work.join("build.log"),
        &stage,
    )?;
    let secs = started.elapsed().as_secs_f64();
    stage.finish("");
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    std::fs::remove_dir_all(&ccache).with_context(|| format!("removing {}", ccache.display()))?;
    Ok(secs)
}

/// The Markdown table: each build, and what the block adds to (or would add to) the whole.
pub fn render(costs: &[BlockCost]) -> String {
    let whole = costs
        .iter()
        .find(|c| c.change == Change::AsIs)
        .map_or(f64::NAN, |c| c.build_secs);
    let mut out = String::from(
        "| block of kernels/minimal.config and base.config (6.12) | cold build (s) | cost of the block (s) | share |\n|---|---|---|---|\n",
    );
    for cost in costs {
        let (name, added) = match &cost.change {
            Change::AsIs => (format!("**{}**", cost.what), None),
            Change::Without(n) => (
                format!("{} ({n} symbols) left out", short(&cost.what)),
                Some(whole - cost.build_secs),
            ),
            Change::With(line) => (
                format!("{} (`{line}`) put back", short(&cost.what)),
                Some(cost.build_secs - whole),
            ),
        };
        let (added, share) = match added {
            Some(secs) => (
                format!("{secs:+.0}"),
                format!("{:.0}%", secs / whole * 100.0),
            ),
            None => ("–".into(), "100%".into()),
        };
        out.push_str(&format!(
            "| {name} | {:.0} | {added} | {share} |\n",
            cost.build_secs
        ));
    }
    out
}

/// A block's heading up to its first explanation (`:` or `(`), for the table.
fn short(heading: &str) -> &str {
    let end = heading.find([':', '(']).unwrap_or(heading.len());
    heading[..end].trim_end()
}

pub fn publish(paths: &Paths, costs: &[BlockCost]) -> Result<std::path::PathBuf> {
    bench::publish_table(paths, TABLE, &render(costs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_costs_what_leaving_it_out_saves() {
        let costs = [
            BlockCost {
                what: "the whole config".into(),
                change: Change::AsIs,
                build_secs: 200.0,
            },
            BlockCost {
                what: "BTF: pahole (and DWARF)".into(),
                change: Change::Without(2),
                build_secs: 150.0,
            },
            BlockCost {
                what: "ACPI (power-off)".into(),
                change: Change::With("CONFIG_ACPI=y".into()),
                build_secs: 260.0,
            },
        ];
        let table = render(&costs);
        assert!(
            table.contains("| **the whole config** | 200 | – | 100% |"),
            "{table}"
        );
        assert!(
            table.contains("| BTF (2 symbols) left out | 150 | +50 | 25% |"),
            "{table}"
        );
        assert!(
            table.contains("| ACPI (`CONFIG_ACPI=y`) put back | 260 | +60 | 30% |"),
            "{table}"
        );
    }
}
