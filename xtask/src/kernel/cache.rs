//! The kernel build cache. An entry is a directory named after its key; it counts as built
//! only once its `meta.json` exists, and that file is written last, by rename, so a killed
//! build never looks complete. A per-key lock file makes a second run wait instead of
//! building the same kernel twice; the waiting run then finds the entry complete.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};

use crate::infra::fsutil::write_atomic_synced;

/// Bump when the build recipe changes in a way the other key inputs do not show.
pub const RECIPE_VERSION: u32 = 1;

const META_FILE: &str = "meta.json";

/// What a cache key is made of. Changing any field gives a new entry.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInputs<'a> {
    pub recipe: u32,
    pub source_id: &'a str,
    pub config: &'a str,
    pub toolchain: &'a str,
    pub testmod_dir: Option<&'a str>,
}

impl KeyInputs<'_> {
    /// A short, filesystem-safe digest of the inputs.
    pub fn key(&self) -> String {
        Self::digest_of(&serde_json::to_string(self).expect("key inputs serialize"))
    }

    /// 16 hex digits of the SHA-256 of `text`.
    pub fn digest_of(text: &str) -> String {
        crate::infra::digest::short_hex_of(text.as_bytes())
    }
}

/// One cache entry, held under its lock for as long as this value lives.
pub struct Entry {
    pub dir: PathBuf,
    _lock: File,
}

impl Entry {
    /// Opens (creating) the entry `name` in `root`, waiting for any other run that holds it.
    pub fn lock(root: &Path, locks: &Path, name: &str) -> Result<Self> {
        create_cache_dir(root)?;
        let (lock, lock_path) = lock_file(locks, name)?;
        if lock.try_lock().is_err() {
            eprintln!(
                "  waiting for another run that holds {}",
                lock_path.display()
            );
            lock.lock()
                .with_context(|| format!("locking {}", lock_path.display()))?;
        }
        let dir = root.join(name);
        Ok(Self { dir, _lock: lock })
    }

    /// The entry's metadata if it was published.
    pub fn published<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        published_in(&self.dir)
    }

    /// Marks the entry complete: writes `meta.json` through a synced temporary file and a
    /// rename.
    pub fn publish<T: Serialize>(&self, meta: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(meta)?;
        write_atomic_synced(&self.dir.join(META_FILE), text.as_bytes())
            .with_context(|| format!("publishing {}", self.dir.display()))
    }
}

/// The metadata of the entry in `dir`, if it was published.
pub fn published_in<T: DeserializeOwned>(dir: &Path) -> Result<Option<T>> {
    let path = dir.join(META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Takes the lock of entry `name` shared, waiting while a run builds it (exclusively): held
/// by a run while it uses a cached kernel, so `cache gc` leaves the entry alone.
pub fn hold_shared(locks: &Path, name: &str) -> Result<File> {
    let (file, path) = lock_file(locks, name)?;
    file.lock_shared()
        .with_context(|| format!("locking {} shared", path.display()))?;
    Ok(file)
}

/// The lock of entry `name` taken exclusively, if no other run holds it now.
pub fn try_exclusive(locks: &Path, name: &str) -> Result<Option<File>> {
    let (file, _) = lock_file(locks, name)?;
    Ok(file.try_lock().is_ok().then_some(file))
}

/// The lock file of entry `name` (created, with its directory, if missing), and its path.
fn lock_file(locks: &Path, name: &str) -> Result<(File, PathBuf)> {
    create_cache_dir(locks)?;
    let path = locks.join(format!("{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock {}", path.display()))?;
    Ok((file, path))
}

fn create_cache_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "creating cache directory {} (is it writable? set {} to move the cache)",
            dir.display(),
            crate::infra::paths::CACHE_ENV
        )
    })
}

/// Written into an entry each time a run uses it: "last used" for the listing and for gc.
pub const LAST_USED_FILE: &str = "last-used";

/// Records that a run uses the entry now (for "last used").
pub fn touch(entry_dir: &Path) {
    let stamp = format!("{:?}\n", SystemTime::now());
    let _best_effort = std::fs::write(entry_dir.join(LAST_USED_FILE), stamp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(config: &'a str, toolchain: &'a str) -> KeyInputs<'a> {
        KeyInputs {
            recipe: RECIPE_VERSION,
            source_id: "debian:linux-source-6.12=6.12.117-1~deb12u1",
            config,
            toolchain,
            testmod_dir: Some("tools/testing/selftests/bpf/bpf_testmod"),
        }
    }

    #[test]
    fn key_is_stable_and_changes_with_every_input() {
        let base = inputs("CONFIG_BPF=y\n", "gcc 12.2.0");
        assert_eq!(base.key(), inputs("CONFIG_BPF=y\n", "gcc 12.2.0").key());
        assert_eq!(base.key().len(), 16);
        assert_ne!(base.key(), inputs("CONFIG_BPF=n\n", "gcc 12.2.0").key());
        assert_ne!(base.key(), inputs("CONFIG_BPF=y\n", "gcc 13.1.0").key());
        let other_source = KeyInputs {
            source_id: "debian:linux-source-6.1=6.1.192-2",
            ..inputs("CONFIG_BPF=y\n", "gcc 12.2.0")
        };
        assert_ne!(base.key(), other_source.key());
    }

    #[test]
    fn an_entry_is_complete_only_after_publish() {
        let cache = tempfile::tempdir().unwrap();
        let entry =
            Entry::lock(&cache.path().join("k"), &cache.path().join("l"), "6.12-x").unwrap();
        std::fs::create_dir_all(entry.dir.join("build")).unwrap();
        assert_eq!(entry.published::<serde_json::Value>().unwrap(), None);
        entry
            .publish(&serde_json::json!({"bzimage": "build/arch/x86/boot/bzImage"}))
            .unwrap();
        let meta: serde_json::Value = entry.published().unwrap().unwrap();
        assert_eq!(meta["bzimage"], "build/arch/x86/boot/bzImage");
        let names: Vec<_> = std::fs::read_dir(&entry.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "build")
            .collect();
        assert_eq!(names, [META_FILE], "no temporary file is left");
    }

    /// A second `Entry::lock` of a held entry blocks until the first holder is dropped, and
    /// then sees what the first published. The main thread goes on only once the kernel lists
    /// the second as a waiter on the lock file, so neither order of the threads is left to
    /// chance: if it does not wait, it finishes first and the test fails.
    #[test]
    fn a_second_holder_waits_for_the_first() {
        use std::time::{Duration, Instant};

        let cache = tempfile::tempdir().unwrap();
        let (root, locks) = (cache.path().join("k"), cache.path().join("l"));
        let first = Entry::lock(&root, &locks, "e").unwrap();
        assert!(
            try_exclusive(&locks, "e").unwrap().is_none(),
            "the first holder does not hold the entry's lock"
        );
        let (root2, locks2) = (root.clone(), locks.clone());
        let waiter = std::thread::spawn(move || {
            let second = Entry::lock(&root2, &locks2, "e").unwrap();
            second.published::<serde_json::Value>().unwrap()
        });
        let lock_file = locks.join("e.lock");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !waits_on(&lock_file) {
            assert!(
                !waiter.is_finished(),
                "the second holder did not wait for the first"
            );
            assert!(
                Instant::now() < deadline,
                "no waiter on {} in /proc/locks",
                lock_file.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::create_dir_all(&first.dir).unwrap();
        first.publish(&serde_json::json!({"done": true})).unwrap();
        drop(first);
        assert_eq!(
            waiter.join().unwrap(),
            Some(serde_json::json!({"done": true}))
        );
    }

    /// Whether a thread of this process waits for a lock on `file`: /proc/locks lists a
    /// blocked request as `N: -> FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> ...`.
    fn waits_on(file: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;

        let inode = std::fs::metadata(file).unwrap().ino().to_string();
        let pid = std::process::id().to_string();
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"->")
                && fields.get(5) == Some(&pid.as_str())
                && fields
                    .get(6)
                    .is_some_and(|id| id.rsplit(':').next() == Some(inode.as_str()))
        })
    }
}
