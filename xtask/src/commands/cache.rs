//! `cargo xtask cache` and `cache gc`: what the kernel cache holds, and what a clean-up may
//! remove. Choosing is pure ([`choose_removals`]); looking at the disk and removing is not.
//!
//! The rule: keep the newest complete entry of every manifest and every entry named with
//! `--keep`; never touch an entry whose lock another run holds (a build holds it exclusively,
//! a run that boots the kernel holds it shared); remove the rest, incomplete leftovers of
//! killed builds included.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::infra::paths::Paths;
use crate::infra::table::Table;
use crate::kernel::build::KernelBuild;
use crate::kernel::cache::{self, LAST_USED_FILE};

/// One entry as the listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryInfo {
    /// The directory name, `<manifest>-<config hash>`.
    pub name: String,
    pub kernel: String,
    pub config_hash: String,
    /// Where the source came from (`meta.json`), when the entry is complete.
    pub source: Option<String>,
    pub bytes: u64,
    pub last_used: SystemTime,
    pub complete: bool,
    /// Another run holds its lock right now.
    pub in_use: bool,
}

/// What gc decided about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep(&'static str),
    Remove,
}

/// Every entry of the cache, newest first.
pub fn entries(paths: &Paths) -> Result<Vec<EntryInfo>> {
    let root = paths.kernel_cache();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
        let name = dir.file_name().to_string_lossy().into_owned();
        found.push(inspect(&dir.path(), &name, &paths.lock_dir())?);
    }
    found.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.name.cmp(&b.name)));
    Ok(found)
}

fn inspect(dir: &Path, name: &str, locks: &Path) -> Result<EntryInfo> {
    let (kernel, config_hash) = name.rsplit_once('-').unwrap_or((name, ""));
    // A meta.json that cannot be read counts as incomplete, like a missing one.
    let meta: Option<KernelBuild> = cache::published_in(dir).ok().flatten();
    let last_used = [
        dir.join(LAST_USED_FILE),
        dir.join("meta.json"),
        dir.to_path_buf(),
    ]
    .iter()
    .find_map(|path| path.metadata().and_then(|m| m.modified()).ok())
    .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(EntryInfo {
        name: name.to_owned(),
        kernel: kernel.to_owned(),
        config_hash: config_hash.to_owned(),
        source: meta.as_ref().map(|m| m.source_id.clone()),
        bytes: size_of(dir),
        last_used,
        complete: meta.is_some(),
        in_use: cache::try_exclusive(locks, name)?.is_none(),
    })
}

/// For each entry (newest first, as [`entries`] returns them), whether gc keeps it and why.
pub fn choose_removals(entries: &[EntryInfo], keep: &[String]) -> Vec<Decision> {
    let mut newest_seen: Vec<&str> = Vec::new();
    entries
        .iter()
        .map(|entry| {
            // The newest is the newest whatever else keeps it: an older entry of the same
            // manifest is not promoted because `--keep` named the newest.
            let newest = entry.complete && !newest_seen.contains(&entry.kernel.as_str());
            if newest {
                newest_seen.push(&entry.kernel);
            }
            if entry.in_use {
                return Decision::Keep("in use by another run");
            }
            if keep
                .iter()
                .any(|k| *k == entry.name || *k == entry.config_hash)
            {
                return Decision::Keep("kept by --keep");
            }
            match newest {
                true => Decision::Keep("newest complete entry of its manifest"),
                false => Decision::Remove,
            }
        })
        .collect()
}

/// Removes what [`choose_removals`] says, each under its own exclusive lock (an entry that
/// a run took in the meantime is left alone). Returns the bytes freed.
pub fn collect(paths: &Paths, entries: &[EntryInfo], decisions: &[Decision]) -> Result<u64> {
    let mut freed = 0;
    for (entry, decision) in entries.iter().zip(decisions) {
        if *decision != Decision::Remove {
            continue;
        }
        let Some(_lock) = cache::try_exclusive(&paths.lock_dir(), &entry.name)? else {
            continue;
        };
        let dir = paths.kernel_cache().join(&entry.name);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        freed += entry.bytes;
    }
    Ok(freed)
}

/// The table `cargo xtask cache` prints.
pub fn render(entries: &[EntryInfo], decisions: Option<&[Decision]>) -> String {
    let header = ["entry", "kernel", "source", "size", "last used", "state"];
    let mut table = Table::new(header).right(3);
    for (index, entry) in entries.iter().enumerate() {
        let state = match (entry.complete, entry.in_use) {
            (_, true) => "in use",
            (true, false) => "complete",
            (false, false) => "incomplete",
        };
        let decision = match decisions.and_then(|d| d.get(index)) {
            Some(Decision::Keep(why)) => format!(" → kept ({why})"),
            Some(Decision::Remove) => " → removed".to_owned(),
            None => String::new(),
        };
        table.row([
            entry.name.clone(),
            entry.kernel.clone(),
            entry.source.clone().unwrap_or_else(|| "-".into()),
            human_size(entry.bytes),
            age(entry.last_used),
            format!("{state}{decision}"),
        ]);
    }
    let mut out = table.render();
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    out.push_str(&format!(
        "total: {} in {} entries\n",
        human_size(total),
        entries.len()
    ));
    out
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = path.symlink_metadata() else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|dirs| dirs.flatten().map(|d| size_of(&d.path())).sum())
        .unwrap_or(0)
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match bytes as f64 / MIB {
        mib if mib >= 1024.0 => format!("{:.1} GiB", mib / 1024.0),
        mib => format!("{mib:.0} MiB"),
    }
}

fn age(time: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(time)
        .map_or(0, |d| d.as_secs());
    match secs {
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rstest::rstest;

    use super::*;

    fn entry(name: &str, minutes_ago: u64, complete: bool, in_use: bool) -> EntryInfo {
        let (kernel, hash) = name.rsplit_once('-').unwrap();
        EntryInfo {
            name: name.into(),
            kernel: kernel.into(),
            config_hash: hash.into(),
            source: None,
            bytes: 1,
            last_used: SystemTime::now() - Duration::from_secs(minutes_ago * 60),
            complete,
            in_use,
        }
    }

    const NEWEST: Decision = Decision::Keep("newest complete entry of its manifest");

    #[rstest]
    #[case::older_entry_of_a_manifest_goes(
        vec![entry("6.12-new", 1, true, false), entry("6.12-old", 60, true, false)],
        &[], vec![NEWEST, Decision::Remove])]
    #[case::each_manifest_keeps_its_newest(
        vec![entry("6.12-a", 1, true, false), entry("7.2-b", 5, true, false)],
        &[], vec![NEWEST, NEWEST])]
    #[case::incomplete_leftovers_go_and_do_not_count_as_newest(
        vec![entry("6.12-broken", 1, false, false), entry("6.12-good", 60, true, false)],
        &[], vec![Decision::Remove, NEWEST])]
    #[case::keep_by_name_or_hash(
        vec![entry("6.12-new", 1, true, false), entry("6.12-old", 60, true, false), entry("6.12-older", 90, true, false)],
        &["6.12-old", "older"], vec![NEWEST, Decision::Keep("kept by --keep"), Decision::Keep("kept by --keep")])]
    #[case::keeping_the_newest_by_name_does_not_spare_an_older_one(
        vec![entry("6.12-new", 1, true, false), entry("6.12-old", 60, true, false)],
        &["6.12-new"], vec![Decision::Keep("kept by --keep"), Decision::Remove])]
    #[case::in_use_is_never_removed(
        vec![entry("6.12-new", 1, true, false), entry("6.12-busy", 60, false, true)],
        &[], vec![NEWEST, Decision::Keep("in use by another run")])]
    fn gc_keeps_the_newest_complete_entry_per_manifest(
        #[case] entries: Vec<EntryInfo>,
        #[case] keep: &[&str],
        #[case] expected: Vec<Decision>,
    ) {
        let keep: Vec<String> = keep.iter().map(|k| k.to_string()).collect();
        assert_eq!(choose_removals(&entries, &keep), expected);
    }

    #[test]
    fn gc_on_a_real_cache_leaves_a_locked_entry_alone() {
        let cache = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: cache.path().to_path_buf(),
            cache: cache.path().to_path_buf(),
            ccache: cache.path().join("ccache"),
        };
        for (name, minutes_ago) in [("6.12-new", 0), ("6.12-old", 30), ("6.12-older", 60)] {
            let dir = paths.kernel_cache().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("bzImage"), vec![0u8; 1000]).unwrap();
            let meta = serde_json::json!({"kernel": "6.12", "key": "x", "source_id": "s",
                "dir": dir, "bzimage": dir.join("bzImage"), "modules": [], "build_secs": 1.0});
            std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
            let when = SystemTime::now() - Duration::from_secs(minutes_ago * 60);
            std::fs::File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join(LAST_USED_FILE))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        let held = cache::hold_shared(&paths.lock_dir(), "6.12-old").unwrap();

        let found = entries(&paths).unwrap();
        let names: Vec<&str> = found.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["6.12-new", "6.12-old", "6.12-older"]);
        assert!(found[1].in_use && !found[2].in_use);
        let decisions = choose_removals(&found, &[]);
        let freed = collect(&paths, &found, &decisions).unwrap();
        assert!(freed >= 1000, "{freed}");
        assert!(paths.kernel_cache().join("6.12-old").exists(), "held: kept");
        assert!(!paths.kernel_cache().join("6.12-older").exists());
        assert!(render(&found, Some(&decisions)).contains("in use by another run"));

        drop(held);
        let found = entries(&paths).unwrap();
        let decisions = choose_removals(&found, &[]);
        collect(&paths, &found, &decisions).unwrap();
        assert!(
            !paths.kernel_cache().join("6.12-old").exists(),
            "released: removed"
        );
        assert!(paths.kernel_cache().join("6.12-new").exists());
    }
}
