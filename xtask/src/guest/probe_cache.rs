//! The helper and kfunc probe answers, kept per kernel build: they depend only on the kernel,
//! the probe set (the tree's helper list) and the harness that builds the probe programs, so
//! they are measured once and reused until one of those changes. The file lives in the
//! kernel's cache entry (`probes-<key>.json`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use protocol::{HelperAnswer, HelperProbe, KfuncAnswer, ProgType, PROBED_PROG_TYPES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::guest::results::RunRecords;
use crate::infra::failure::{AtStage, SetupFailure, SetupStage};
use crate::infra::fsutil::write_atomic;

/// What the probes answered, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    pub helpers: Vec<(ProgType, Vec<HelperAnswer>)>,
    pub kfuncs: Vec<(ProgType, Vec<KfuncAnswer>)>,
}

/// The probes of one kernel's run: the list measured, and where its answers are kept.
#[derive(Debug, Clone)]
pub struct Probes {
    pub list: Vec<HelperProbe>,
    file: PathBuf,
    /// The stored answers, when there are some for this kernel, probe set and harness.
    pub reused: Option<Answers>,
}

impl Probes {
    /// Every helper of `tree`'s uapi header, with the answers of an earlier run of this kernel
    /// build (`entry_dir`) and harness (its digest) when there are some.
    pub fn of_tree(tree: &Path, entry_dir: &Path, harness: &str) -> Result<Self, SetupFailure> {
        let list = crate::kernel::helper_list::of_tree(tree).at(SetupStage::Fetch)?;
        Self::new(list, entry_dir, harness).at(SetupStage::Cache)
    }

    /// The probes for `list` on the kernel cached in `entry_dir`, run by the harness whose
    /// digest is `harness`.
    pub fn new(list: Vec<HelperProbe>, entry_dir: &Path, harness: &str) -> Result<Self> {
        let file = entry_dir.join(format!("probes-{}.json", key(harness, &list)));
        let reused = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Ok(Self { list, file, reused })
    }

    /// What the guest must probe this time: nothing when the answers are reused.
    pub fn to_run(&self) -> Vec<HelperProbe> {
        match self.reused {
            Some(_) => Vec::new(),
            None => self.list.clone(),
        }
    }

    /// Puts reused answers into the run's records, or stores the answers the run recorded
    /// (only a complete set: a run cut short is measured again next time).
    pub fn settle(&self, records: &mut RunRecords) -> Result<()> {
        if let Some(answers) = &self.reused {
            records.helpers = answers.helpers.iter().cloned().collect();
            records.kfuncs = answers.kfuncs.iter().cloned().collect();
            return Ok(());
        }
        if records.helpers.len() != PROBED_PROG_TYPES.len() {
            return Ok(());
        }
        let answers = Answers {
            helpers: records.helpers.clone().into_iter().collect(),
            kfuncs: records.kfuncs.clone().into_iter().collect(),
        };
        write_atomic(&self.file, serde_json::to_string(&answers)?.as_bytes())
    }
}

/// 16 hex digits over the harness binary's digest and the probe list.
fn key(harness: &str, list: &[HelperProbe]) -> String {
    let mut hash = Sha256::new();
    hash.update(harness);
    hash.update(serde_json::to_vec(list).expect("probes serialise"));
    crate::infra::digest::short_hex(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(id: u32) -> HelperProbe {
        HelperProbe {
            id,
            name: format!("helper_{id}"),
        }
    }

    fn answered() -> RunRecords {
        let mut records = RunRecords::default();
        for prog_type in PROBED_PROG_TYPES {
            let answer = HelperAnswer {
                id: 1,
                loaded: true,
                errno: 0,
                message: String::new(),
            };
            records.helpers.insert(prog_type, vec![answer]);
            records.kfuncs.insert(prog_type, vec![]);
        }
        records
    }

    #[test]
    fn answers_are_reused_until_the_kernel_the_probes_or_the_harness_change() {
        let dir = tempfile::tempdir().unwrap();
        let harness = "harness v1";
        let entry = dir.path().join("6.12-key");
        std::fs::create_dir_all(&entry).unwrap();

        let first = Probes::new(vec![probe(1)], &entry, harness).unwrap();
        assert_eq!(first.to_run(), [probe(1)], "nothing stored yet: probe");
        first.settle(&mut RunRecords::default()).unwrap();
        let still = Probes::new(vec![probe(1)], &entry, harness).unwrap();
        assert!(still.reused.is_none(), "an incomplete run stores nothing");
        first.settle(&mut answered()).unwrap();

        let second = Probes::new(vec![probe(1)], &entry, harness).unwrap();
        assert!(second.to_run().is_empty(), "stored: not probed again");
        let mut records = RunRecords::default();
        second.settle(&mut records).unwrap();
        assert_eq!(records.helpers, answered().helpers);

        let other_list = Probes::new(vec![probe(1), probe(2)], &entry, harness).unwrap();
        assert!(other_list.reused.is_none(), "another probe set");
        let other_harness = Probes::new(vec![probe(1)], &entry, "harness v2").unwrap();
        assert!(other_harness.reused.is_none(), "another harness");
        let other_kernel = dir.path().join("7.2-key");
        std::fs::create_dir_all(&other_kernel).unwrap();
        let elsewhere = Probes::new(vec![probe(1)], &other_kernel, harness).unwrap();
        assert!(elsewhere.reused.is_none(), "another kernel build");
    }
}
