//! Kernel configuration: merge the manifest's fragments (later ones win), hand the result to
//! `make allnoconfig` as KCONFIG_ALLCONFIG, then check that every requested symbol ended up
//! with the requested value. Kconfig silently drops a symbol whose dependencies are not met;
//! here that is an error naming the symbol and the fragment line that asked for it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::infra::progress::Stage;
use crate::infra::runner::Runner;

/// A requested value: `y`, `m`, `n` (also written `# CONFIG_X is not set`) or raw text
/// (numbers, quoted strings) compared verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Yes,
    Module,
    No,
    Text(String),
}

/// One `CONFIG_X=...` request and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub symbol: String,
    pub value: Value,
    pub origin: String,
}

/// The merged requests, keyed by symbol, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    requests: BTreeMap<String, Request>,
}

/// A requested symbol whose value in `.config` differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub request: Request,
    /// The value in `.config` (`None` when the symbol is absent or not set).
    pub actual: Option<String>,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Yes => f.write_str("y"),
            Value::Module => f.write_str("m"),
            Value::No => f.write_str("n"),
            Value::Text(text) => f.write_str(text),
        }
    }
}

/// Parses one fragment. `origin` names the file in messages.
pub fn parse_fragment(text: &str, origin: &str) -> Result<Vec<Request>> {
    let mut requests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let origin = format!("{origin}:{}", number + 1);
        if let Some(symbol) = line
            .strip_prefix("# ")
            .and_then(|rest| rest.strip_suffix(" is not set"))
        {
            requests.push(request(symbol, Value::No, origin)?);
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some((symbol, value)) = line.split_once('=') {
            let value = match value {
                "y" => Value::Yes,
                "m" => Value::Module,
                "n" => Value::No,
                text => Value::Text(text.to_owned()),
            };
            requests.push(request(symbol, value, origin)?);
        } else {
            bail!("{origin}: expected `CONFIG_NAME=value` or `# CONFIG_NAME is not set`, found `{line}`");
        }
    }
    Ok(requests)
}

fn request(symbol: &str, value: Value, origin: String) -> Result<Request> {
    let valid = symbol.strip_prefix("CONFIG_").is_some_and(|name| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !valid {
        bail!("{origin}: `{symbol}` is not a CONFIG_ symbol name");
    }
    Ok(Request {
        symbol: symbol.to_owned(),
        value,
        origin,
    })
}

/// A `## heading` section of a fragment and the symbols it requests: the unit whose build cost
/// `bench --config-blocks` measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub heading: String,
    pub symbols: Vec<String>,
}

/// The fragment's `## ` sections, in order (requests before the first heading belong to none).
pub fn blocks(text: &str, origin: &str) -> Result<Vec<Block>> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut continues_heading = false;
    for line in text.lines() {
        match (line.strip_prefix("## "), blocks.last_mut()) {
            // A heading said over two `##` lines.
            (Some(more), Some(last)) if continues_heading => {
                last.heading = format!("{} {}", last.heading, more.trim());
            }
            (Some(heading), _) => blocks.push(Block {
                heading: heading.trim().to_owned(),
                symbols: Vec::new(),
            }),
            (None, Some(block)) => {
                let requests = parse_fragment(line, origin)?;
                block.symbols.extend(requests.into_iter().map(|r| r.symbol));
            }
            (None, None) => {}
        }
        continues_heading = line.starts_with("## ");
    }
    Ok(blocks)
}

impl Merged {
    /// Every request, as a fragment to merge with others.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.values().cloned().collect()
    }

    /// The same requests without `symbols`.
    pub fn without(&self, symbols: &[String]) -> Self {
        let mut requests = self.requests.clone();
        requests.retain(|symbol, _| !symbols.contains(symbol));
        Self { requests }
    }

    /// Merges fragments in order: a later request for the same symbol replaces an earlier one.
    pub fn from_fragments(fragments: impl IntoIterator<Item = Vec<Request>>) -> Self {
        let mut requests = BTreeMap::new();
        for request in fragments.into_iter().flatten() {
            requests.insert(request.symbol.clone(), request);
        }
        Self { requests }
    }

    /// The KCONFIG_ALLCONFIG text: one line per symbol, `# ... is not set` for `n`.
    pub fn render(&self) -> String {
        self.requests
            .values()
            .map(|r| match &r.value {
                Value::No => format!("# {} is not set\n", r.symbol),
                value => format!("{}={value}\n", r.symbol),
            })
            .collect()
    }

    /// Requests whose value in `dot_config` (the text of a `.config`) is not the requested one.
    pub fn verify(&self, dot_config: &str) -> Vec<Mismatch> {
        let actual = parse_dot_config(dot_config);
        self.requests
            .values()
            .filter_map(|request| {
                let got = actual.get(request.symbol.as_str()).copied();
                let matches = match (&request.value, got) {
                    (Value::No, None) => true,
                    (wanted, Some(got)) => wanted.to_string() == got,
                    (_, None) => false,
                };
                (!matches).then(|| Mismatch {
                    request: request.clone(),
                    actual: got.map(str::to_owned),
                })
            })
            .collect()
    }
}

/// Symbol → value of every set symbol in a `.config`.
fn parse_dot_config(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter(|line| line.starts_with("CONFIG_"))
        .filter_map(|line| line.split_once('='))
        .collect()
}

/// Reads and merges the fragment files, in order.
pub fn merge_files(files: &[PathBuf]) -> Result<Merged> {
    let fragments = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading config fragment {}", file.display()))?;
            parse_fragment(&text, &file.display().to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Merged::from_fragments(fragments))
}

/// Writes `build_dir/.config` from allnoconfig plus `merged`, then verifies it.
pub fn configure(
    runner: &Runner,
    (source, build_dir): (&Path, &Path),
    ccache: &Path,
    merged: &Merged,
) -> Result<()> {
    let stage = Stage::start("configuring (allnoconfig + fragments)");
    let dot_config = write_config(runner, (source, build_dir), ccache, merged, &stage)?;
    let mismatches = merged.verify(&dot_config);
    if !mismatches.is_empty() {
        bail!(explain_mismatches(&mismatches, source));
    }
    stage.finish("every requested symbol stuck");
    Ok(())
}

/// Writes `build_dir/.config` from allnoconfig plus `merged` and returns its text, unverified
/// (`bench --config-blocks` leaves blocks out, and what depended on them drops on purpose).
pub fn write_config(
    runner: &Runner,
    (source, build_dir): (&Path, &Path),
    ccache: &Path,
    merged: &Merged,
    stage: &Stage,
) -> Result<String> {
    std::fs::create_dir_all(build_dir)?;
    let wanted = build_dir.join("wtp-requested.config");
    std::fs::write(&wanted, merged.render())?;
    let log = build_dir.join("config.log");
    let sh = &runner.sh;
    // Jobs for the host tools a fresh build directory compiles first (kconfig's own conf).
    let jobs = crate::infra::machine::jobs();
    let cmd = cmd!(
        sh,
        "make -C {source} O={build_dir} -j{jobs} allnoconfig KCONFIG_ALLCONFIG={wanted}"
    );
    // The same CC as the build's: kconfig records it, and a different one re-runs syncconfig.
    let cmd = crate::kernel::compiler::with_ccache(cmd, ccache, source, build_dir);
    runner.run_logged(cmd, &log, stage)?;
    Ok(std::fs::read_to_string(build_dir.join(".config"))?)
}

fn explain_mismatches(mismatches: &[Mismatch], source: &Path) -> String {
    let mut text = String::from("these config requests did not stick:\n");
    for Mismatch { request, actual } in mismatches {
        let got = actual.as_deref().unwrap_or("not set");
        let why = if symbol_exists(source, &request.symbol) {
            "its dependencies are not met: add them to the fragment (see `depends on` in its Kconfig)"
        } else {
            "no such symbol in this kernel: remove it from the fragment or fix its spelling"
        };
        text.push_str(&format!(
            "  {}={} ({}) -> {got}: {why}\n",
            request.symbol, request.value, request.origin
        ));
    }
    text
}

/// Whether any Kconfig file of the tree defines the symbol (`config NAME` / `menuconfig NAME`).
fn symbol_exists(source: &Path, symbol: &str) -> bool {
    let name = symbol.trim_start_matches("CONFIG_");
    let mut pending = vec![source.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if path.is_dir() && !file_name.starts_with('.') {
                pending.push(path);
            } else if file_name.starts_with("Kconfig") && defines(&path, name) {
                return true;
            }
        }
    }
    false
}

fn defines(kconfig: &Path, name: &str) -> bool {
    let text = std::fs::read_to_string(kconfig).unwrap_or_default();
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        matches!(words.next(), Some("config" | "menuconfig")) && words.next() == Some(name)
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn merged(fragments: &[&str]) -> Merged {
        Merged::from_fragments(
            fragments
                .iter()
                .enumerate()
                .map(|(i, text)| parse_fragment(text, &format!("f{i}")).unwrap()),
        )
    }

    #[test]
    fn later_fragments_win_and_render_is_sorted() {
        let merged = merged(&[
            "CONFIG_NET=y\nCONFIG_BLK_DEV_NBD=m\n# comment\n\nCONFIG_LOG_BUF_SHIFT=17\n",
            "CONFIG_BLK_DEV_NBD=y\n# CONFIG_NET is not set\nCONFIG_CMDLINE=\"quiet\"\n",
        ]);
        assert_eq!(
            merged.render(),
            "CONFIG_BLK_DEV_NBD=y\nCONFIG_CMDLINE=\"quiet\"\nCONFIG_LOG_BUF_SHIFT=17\n# CONFIG_NET is not set\n"
        );
    }

    #[rstest]
    #[case("CONFIG_BPF=y", "CONFIG_BPF=y\n", true)]
    #[case("CONFIG_BPF=y", "# CONFIG_BPF is not set\n", false)]
    #[case("CONFIG_BPF=y", "", false)]
    #[case("CONFIG_BPF=y", "CONFIG_BPF=m\n", false)]
    #[case("CONFIG_BPF=n", "", true)]
    #[case("# CONFIG_BPF is not set", "# CONFIG_BPF is not set\n", true)]
    #[case("CONFIG_BPF=n", "CONFIG_BPF=y\n", false)]
    #[case("CONFIG_PANIC_TIMEOUT=-1", "CONFIG_PANIC_TIMEOUT=-1\n", true)]
    #[case("CONFIG_PANIC_TIMEOUT=-1", "CONFIG_PANIC_TIMEOUT=0\n", false)]
    #[case("CONFIG_CMDLINE=\"a b\"", "CONFIG_CMDLINE=\"a b\"\n", true)]
    fn verify_compares_each_request(
        #[case] fragment: &str,
        #[case] dot_config: &str,
        #[case] ok: bool,
    ) {
        let mismatches = merged(&[fragment]).verify(dot_config);
        assert_eq!(mismatches.is_empty(), ok, "{mismatches:?}");
    }

    #[test]
    fn a_mismatch_names_the_symbol_its_origin_and_what_was_found() {
        let mismatches = merged(&["CONFIG_NET=y\nCONFIG_DEBUG_INFO_BTF=y\n"])
            .verify("CONFIG_NET=y\n# CONFIG_DEBUG_INFO_BTF is not set\n");
        assert_eq!(mismatches.len(), 1);
        assert_eq!(mismatches[0].request.symbol, "CONFIG_DEBUG_INFO_BTF");
        assert_eq!(mismatches[0].request.origin, "f0:2");
        assert_eq!(mismatches[0].actual, None);
    }

    #[rstest]
    #[case("NET=y", "not a CONFIG_ symbol")]
    #[case("CONFIG_=y", "not a CONFIG_ symbol")]
    #[case("CONFIG_NET y", "expected `CONFIG_NAME=value`")]
    #[case("CONFIG_N-ET=y", "not a CONFIG_ symbol")]
    fn bad_lines_are_rejected_with_their_location(#[case] line: &str, #[case] message: &str) {
        let error = parse_fragment(&format!("CONFIG_OK=y\n{line}\n"), "base.config").unwrap_err();
        let error = error.to_string();
        assert!(error.starts_with("base.config:2: "), "{error}");
        assert!(error.contains(message), "{error}");
    }

    #[test]
    fn symbol_lookup_reads_kconfig_files() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("drivers/block")).unwrap();
        std::fs::write(
            tree.path().join("drivers/block/Kconfig"),
            "menuconfig BLK_DEV\n\tbool\nconfig BLK_DEV_NBD\n\ttristate \"nbd\"\n",
        )
        .unwrap();
        assert!(symbol_exists(tree.path(), "CONFIG_BLK_DEV_NBD"));
        assert!(symbol_exists(tree.path(), "CONFIG_BLK_DEV"));
        assert!(!symbol_exists(tree.path(), "CONFIG_BLK_DEV_NB"));
    }
}
