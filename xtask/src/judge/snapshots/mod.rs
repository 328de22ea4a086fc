//! The per-kernel snapshot store: insta's `.snap` files, read with insta's own parser and
//! written in its exact format ([`yaml`]), without insta's assertion macro, so nothing here
//! touches a panic hook or the process environment and two runs on two threads never see each
//! other. `cargo insta review` and `cargo insta accept` work on the `.snap.new` files a
//! differing run leaves.
//!
//! [`check`] is the pure comparison; [`Store`] only reads and writes files.

mod yaml;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use insta::internals::SnapshotContents;
use serde::Serialize;

use crate::infra::fsutil::write_atomic;

/// The `source` header of every snapshot (the module that judges results; kept as insta
/// first wrote it so the reviewed files stay unchanged).
pub const SOURCE: &str = "xtask/src/compare.rs";

/// A result as it would be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub description: String,
    /// The YAML after the header, as insta's parser returns it.
    pub contents: String,
}

impl Snapshot {
    pub fn of(description: &str, value: &impl Serialize) -> Self {
        let value = serde_norway::to_value(value).expect("results serialise to YAML");
        let document = yaml::document(&value);
        Self {
            description: description.trim().to_owned(),
            contents: document.trim_start_matches("---\n").to_owned(),
        }
    }

    /// The whole file: insta's header document, then the contents.
    fn file_text(&self) -> String {
        let mut header = serde_norway::Mapping::new();
        header.insert("source".into(), SOURCE.into());
        header.insert("description".into(), self.description.clone().into());
        yaml::document(&serde_norway::Value::Mapping(header)) + "---\n" + &self.contents
    }
}

/// How a result compares with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotCheck {
    /// Not compared: the case did not run, or the run judges by expectations only (bisect).
    Skipped,
    Matches,
    /// There is no snapshot yet.
    New,
    /// The stored snapshot says otherwise; `diff` is old (-) against new (+).
    Differs {
        diff: String,
    },
    /// `--accept`: the result is the new snapshot.
    Accepted,
    /// `--accept` refused: the case deviates from its expectation, so its result is wrong.
    Refused,
}

impl SnapshotCheck {
    /// Whether the row is fine as far as snapshots go.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            SnapshotCheck::Skipped | SnapshotCheck::Matches | SnapshotCheck::Accepted
        )
    }
}

/// Compares a new result with the stored contents (`None`: no snapshot). Like insta,
/// trailing whitespace does not count.
pub fn check(stored: Option<&str>, new: &Snapshot) -> SnapshotCheck {
    match stored {
        None => SnapshotCheck::New,
        Some(old) if old.trim_end() == new.contents.trim_end() => SnapshotCheck::Matches,
        Some(old) => SnapshotCheck::Differs {
            diff: diff(old, &new.contents),
        },
    }
}

/// A unified diff with a little context.
fn diff(old: &str, new: &str) -> String {
    let (old, new) = (
        format!("{}\n", old.trim_end()),
        format!("{}\n", new.trim_end()),
    );
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header("snapshot", "this run")
        .to_string()
}

/// Splits a `.snap` file into its header document and its body document.
#[cfg(test)]
fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")? + "---\n".len() + 1;
    Some((&text[..end], &text[end..]))
}

/// The snapshots of one kernel: `<dir>/<name>.snap`, and `<name>.snap.new` for review.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.snap"))
    }

    fn pending(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.snap.new"))
    }

    /// The stored contents of `name` (insta's parser, insta's normalisation), if any.
    pub fn contents(&self, name: &str) -> Result<Option<String>> {
        let path = self.path(name);
        if !path.exists() {
            return Ok(None);
        }
        let snapshot = insta::Snapshot::from_file(&path)
            .map_err(|error| anyhow!("reading {}: {error}", path.display()))?;
        match snapshot.contents() {
            SnapshotContents::Text(text) => Ok(Some(text.to_string())),
            SnapshotContents::Binary(_) => bail!(
                "{} is a binary snapshot; results are text: delete it",
                path.display()
            ),
        }
    }

    /// The stored contents of every one of `names` that has a snapshot; an unreadable one is
    /// reported and counts as missing (its row then says "new", and names no file twice).
    pub fn contents_of<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> std::collections::BTreeMap<String, String> {
        names
            .filter_map(|name| match self.contents(name) {
                Ok(contents) => contents.map(|contents| (name.to_owned(), contents)),
                Err(error) => {
                    eprintln!("  error: {error:#}");
                    None
                }
            })
            .collect()
    }

    /// Makes the files say what `check` decided: an accepted result becomes the snapshot, a
    /// new or differing one is left as `.snap.new` for review, and a matching or accepted one
    /// removes a stale `.snap.new` of an earlier run.
    /// [`Store::record`] for every (name, snapshot, check); the names that failed, with why.
    pub fn record_all<'a>(
        &self,
        results: impl Iterator<Item = (&'a String, &'a Snapshot, &'a SnapshotCheck)>,
    ) -> Vec<(&'a str, anyhow::Error)> {
        results
            .filter_map(|(name, snapshot, check)| {
                let error = self.record(name, snapshot, check).err()?;
                Some((name.as_str(), error))
            })
            .collect()
    }

    pub fn record(&self, name: &str, snapshot: &Snapshot, check: &SnapshotCheck) -> Result<()> {
        match check {
            SnapshotCheck::Skipped | SnapshotCheck::Refused => Ok(()),
            SnapshotCheck::Matches => self.remove_pending(name),
            SnapshotCheck::Accepted => {
                self.write(&self.path(name), snapshot)?;
                self.remove_pending(name)
            }
            SnapshotCheck::New | SnapshotCheck::Differs { .. } => {
                self.write(&self.pending(name), snapshot)
            }
        }
    }

    fn write(&self, path: &Path, snapshot: &Snapshot) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        // Through a rename: a reader never sees half a snapshot.
        write_atomic(path, snapshot.file_text().as_bytes())
    }

    fn remove_pending(&self, name: &str) -> Result<()> {
        let path = self.pending(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_written_snapshot_reads_back_and_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let snapshot = Snapshot::of("what it shows", &json!({"value": 1024}));
        assert_eq!(store.contents("c").unwrap(), None);
        assert_eq!(check(None, &snapshot), SnapshotCheck::New);
        store
            .record("c", &snapshot, &SnapshotCheck::Accepted)
            .unwrap();
        let text = std::fs::read_to_string(store.path("c")).unwrap();
        assert_eq!(
            text,
            "---\nsource: xtask/src/compare.rs\ndescription: what it shows\n---\nvalue: 1024\n"
        );
        let body = store.contents("c").unwrap();
        assert_eq!(check(body.as_deref(), &snapshot), SnapshotCheck::Matches);
    }

    #[test]
    fn a_difference_is_shown_as_a_diff_and_left_for_review() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let old = Snapshot::of("d", &json!({"value": 1025}));
        store.record("c", &old, &SnapshotCheck::Accepted).unwrap();
        let new = Snapshot::of("d", &json!({"value": 1024}));
        let found = check(store.contents("c").unwrap().as_deref(), &new);
        let SnapshotCheck::Differs { diff } = &found else {
            panic!("expected a difference, got {found:?}");
        };
        assert!(diff.contains("-value: 1025\n+value: 1024"), "{diff}");
        store.record("c", &new, &found).unwrap();
        assert!(dir.path().join("c.snap.new").is_file());
        assert!(std::fs::read_to_string(store.path("c"))
            .unwrap()
            .contains("1025"));
    }

    #[test]
    fn accepting_or_matching_removes_a_stale_pending_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let snapshot = Snapshot::of("d", &json!({"value": 1}));
        store.record("c", &snapshot, &SnapshotCheck::New).unwrap();
        assert!(dir.path().join("c.snap.new").is_file());
        store
            .record("c", &snapshot, &SnapshotCheck::Accepted)
            .unwrap();
        assert!(!dir.path().join("c.snap.new").exists());
        store.record("c", &snapshot, &SnapshotCheck::New).unwrap();
        store
            .record("c", &snapshot, &SnapshotCheck::Matches)
            .unwrap();
        assert!(!dir.path().join("c.snap.new").exists());
    }

    #[test]
    fn insta_reads_what_the_store_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let text = "-235736076\n";
        let snapshot = Snapshot::of("two\nlines", &json!({"len": 11, "text": text}));
        store.record("c", &snapshot, &SnapshotCheck::New).unwrap();
        let pending = insta::Snapshot::from_file(&dir.path().join("c.snap.new")).unwrap();
        assert_eq!(pending.metadata().description(), Some("two\nlines"));
        assert_eq!(pending.metadata().source(), Some(SOURCE));
        let SnapshotContents::Text(contents) = pending.contents() else {
            panic!("text snapshot expected");
        };
        assert_eq!(contents.to_string(), snapshot.contents.trim_end());
    }
}
