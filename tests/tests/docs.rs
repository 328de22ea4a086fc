//! Generated documentation must match the snapshots it is generated from. The test only reads:
//! a stale file fails it with the command that regenerates it, whose output is then reviewed
//! and committed.

use clap::Parser;
use xtask::cli::{Cli, Command};
use xtask::infra::paths::Paths;
use xtask::judge::{helpers, sweep_doc, upstream_doc};

/// What regenerates docs/helpers.md.
const REGENERATE: &str = "cargo xtask docs";

#[test]
fn the_helper_table_is_generated_from_the_snapshots() {
    let paths = Paths::from_env();
    let fresh = helpers::doc_from_snapshots(&paths).unwrap();
    let file = paths.root.join(helpers::DOC);
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is not what the snapshots give: run `{REGENERATE}`, review and commit it\n\
         first differing line: {}",
        file.display(),
        first_difference(&committed, &fresh)
    );
}

#[test]
fn the_sweep_grids_are_generated_from_the_snapshots() {
    let paths = Paths::from_env();
    let fresh = sweep_doc::doc_from_snapshots(&paths).unwrap();
    let file = paths.root.join(sweep_doc::DOC);
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is not what the sweep snapshots give: run `{REGENERATE}`, review and commit it\n\
         first differing line: {}",
        file.display(),
        first_difference(&committed, &fresh)
    );
}

#[test]
fn the_upstream_table_is_generated_from_the_record_and_the_snapshots() {
    let paths = Paths::from_env();
    let fresh = upstream_doc::doc_from_snapshots(&paths).unwrap();
    let file = paths.root.join(upstream_doc::DOC);
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is not what guest-programs/upstream/found.toml and the snapshots give: run \
         `{REGENERATE}`, review and commit it\nfirst differing line: {}",
        file.display(),
        first_difference(&committed, &fresh)
    );
}

/// The command the failure names is the one that regenerates the file.
#[test]
fn the_regenerating_command_exists() {
    let args = REGENERATE.split_whitespace().skip(1);
    let cli = Cli::try_parse_from(args).unwrap_or_else(|error| panic!("`{REGENERATE}`: {error}"));
    assert!(matches!(cli.command, Command::Docs), "{:?}", cli.command);
}

fn first_difference(committed: &str, fresh: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut fresh_lines = fresh.lines();
    for number in 1.. {
        match (committed_lines.next(), fresh_lines.next()) {
            (None, None) => return "none (the files differ in line endings)".to_owned(),
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "{number}\n  committed: {}\n  generated: {}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                )
            }
        }
    }
    unreachable!()
}
