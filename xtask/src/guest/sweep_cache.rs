//! A sweep's records, kept per kernel build like the probe answers ([`super::probe_cache`]):
//! what thousands of programs come to depends only on the kernel (its build, and the module
//! that defines the tracepoint), the harness that loads and fires them and the programs, so the
//! normal run measures a sweep once and reuses it until one of those changes. A sweep named
//! with `--case` always runs. The file lives in the kernel's cache entry
//! (`sweeps/<case>-<key>.json`); only a finished sweep is kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use protocol::SweepPlan;
use sha2::{Digest, Sha256};

use crate::guest::results::SweepRecords;
use crate::infra::fsutil::write_atomic;

/// One sweep of one kernel's run: where its records are kept, and those of an earlier run
/// when they may be reused.
#[derive(Debug, Clone)]
pub struct KeptSweep {
    pub case: String,
    file: PathBuf,
    pub reused: Option<SweepRecords>,
}

impl KeptSweep {
    /// The sweep `plan` on the kernel cached in `entry_dir`, run by the harness whose digest
    /// is `harness`, the tracepoint defined by `module` (`None`: vmlinux); `reuse`: whether
    /// stored records count.
    pub fn new(
        plan: &SweepPlan,
        entry_dir: &Path,
        harness: &str,
        module: Option<&Path>,
        reuse: bool,
    ) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let module = module.map(read).transpose()?;
        let key = key(harness, module.as_deref(), plan);
        let file = entry_dir
            .join("sweeps")
            .join(format!("{}-{key}.json", plan.name));
        let reused = match reuse {
            true => std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok()),
            false => None,
        };
        Ok(Self {
            case: plan.name.clone(),
            file,
            reused,
        })
    }

    /// Keeps a finished sweep's records (a sweep cut short is run again next time).
    pub fn keep(&self, records: &SweepRecords) -> Result<()> {
        if self.reused.is_some() || records.done_ms.is_none() {
            return Ok(());
        }
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomic(&self.file, serde_json::to_string(records)?.as_bytes())
    }
}

/// 16 hex digits over the harness binary's digest, the module and the plan.
fn key(harness: &str, module: Option<&[u8]>, plan: &SweepPlan) -> String {
    let mut hash = Sha256::new();
    hash.update(harness.as_bytes());
    hash.update(module.unwrap_or_default());
    hash.update(serde_json::to_vec(plan).expect("a sweep plan serialises"));
    crate::infra::digest::short_hex(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(programs: usize) -> SweepPlan {
        let sweep = crate::cases::sweep::plan::Sweep {
            tracepoint: crate::cases::sweep::Tracepoint::new("bpf_test_finish", 4, 1),
            kernel_name: "bpf_test_finish".into(),
            module: None,
            program: None,
        };
        let mut plan = crate::cases::sweep::plan::guest_plan(&sweep, true);
        plan.programs.truncate(programs);
        plan
    }

    fn finished() -> SweepRecords {
        SweepRecords {
            results: Vec::new(),
            done_ms: Some(5),
            notes: vec!["n".into()],
        }
    }

    #[test]
    fn a_finished_sweep_is_reused_until_the_harness_the_module_or_the_programs_change() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m.ko");
        std::fs::write(&module, b"module v1").unwrap();
        let entry = dir.path().join("6.12-key");
        let kept = |programs, module: Option<&Path>, reuse, harness: &str| {
            KeptSweep::new(&plan(programs), &entry, harness, module, reuse).unwrap()
        };

        let first = kept(3, Some(&module), true, "harness v1");
        assert!(first.reused.is_none(), "nothing kept yet");
        first.keep(&SweepRecords::default()).unwrap();
        assert!(
            kept(3, Some(&module), true, "harness v1").reused.is_none(),
            "an unfinished sweep is not kept"
        );
        first.keep(&finished()).unwrap();
        assert_eq!(
            kept(3, Some(&module), true, "harness v1").reused,
            Some(finished())
        );

        assert!(
            kept(3, Some(&module), false, "harness v1").reused.is_none(),
            "asked by name: runs"
        );
        assert!(
            kept(2, Some(&module), true, "harness v1").reused.is_none(),
            "other programs"
        );
        assert!(
            kept(3, None, true, "harness v1").reused.is_none(),
            "another module"
        );
        std::fs::write(&module, b"module v2").unwrap();
        assert!(
            kept(3, Some(&module), true, "harness v1").reused.is_none(),
            "a rebuilt module"
        );
        std::fs::write(&module, b"module v1").unwrap();
        assert!(
            kept(3, Some(&module), true, "harness v2").reused.is_none(),
            "another harness"
        );
    }
}
