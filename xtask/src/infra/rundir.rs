//! One directory per VM run (plan, results, console), under `images/runs/<kernel>/`. Names
//! are made unique by the kernel (mkdtemp), not by the clock, so concurrent runs on one
//! checkout never share one; `latest` is swapped in by a rename, so it always points at a
//! whole directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Creates a fresh run directory in `runs` and points `runs/latest` at it.
pub fn create(runs: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(runs).with_context(|| format!("creating {}", runs.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // The time first, so `ls` lists runs in order; the random part makes the name unique.
    let dir = tempfile::Builder::new()
        .prefix(&format!("run-{stamp}-"))
        .rand_bytes(6)
        .tempdir_in(runs)
        .with_context(|| format!("creating a run directory in {}", runs.display()))?
        .keep();
    point_latest(runs, &dir)?;
    Ok(dir)
}

/// The symlink in a kernel's runs directory to its newest run.
pub const LATEST: &str = "latest";

/// `latest` → `dir`, replaced atomically (a symlink beside it, renamed over it).
fn point_latest(runs: &Path, dir: &Path) -> Result<()> {
    let name = dir.file_name().context("a run directory has a name")?;
    let staged = runs.join(format!(".latest-{}", name.to_string_lossy()));
    std::os::unix::fs::symlink(name, &staged)
        .and_then(|()| std::fs::rename(&staged, runs.join(LATEST)))
        .with_context(|| format!("pointing {}/latest at {}", runs.display(), dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_runs_get_directories_of_their_own_and_latest_stays_whole() {
        let runs = tempfile::tempdir().unwrap();
        let made: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| create(runs.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = made.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 16, "two runs shared a directory");
        let latest = std::fs::canonicalize(runs.path().join("latest")).unwrap();
        assert!(
            made.contains(&latest),
            "latest points at {}",
            latest.display()
        );
        let leftovers = std::fs::read_dir(runs.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".latest-"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn latest_follows_the_newest_run() {
        let runs = tempfile::tempdir().unwrap();
        create(runs.path()).unwrap();
        let second = create(runs.path()).unwrap();
        assert_eq!(
            std::fs::canonicalize(runs.path().join("latest")).unwrap(),
            second
        );
    }
}
