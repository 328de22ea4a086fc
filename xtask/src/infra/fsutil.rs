//! Files replaced at once: a reader (another run, a crash's aftermath) sees the old contents or
//! the new, never half of them.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Replaces `path` by `bytes` at once: a temporary file in the same directory (so the rename
/// stays on one file system; runs side by side each write their own), then a rename over
/// `path`. The file gets the mode `std::fs::write` would give it (0666 less the umask). Not
/// synced: a crash of the machine may leave the old contents, or an empty file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, false)
}

/// Like [`write_atomic`], and the contents reach the disk before the rename (fsync), so a
/// crash of the machine leaves the old file or the whole new one: for a file whose presence
/// means something (a cache entry's `meta.json`).
pub fn write_atomic_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, true)
}

fn replace(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            if sync {
                file.as_file().sync_all()?;
            }
            Ok(file)
        })
        .with_context(|| format!("writing {} (disk full?)", path.display()))?;
    file.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Replaces the text between the markers `<!-- {name}:start -->` and `<!-- {name}:end -->`
/// (appending them if missing), keeping the rest.
pub fn splice(document: &str, name: &str, table: &str) -> String {
    let (start_mark, end_mark) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let block = format!("{start_mark}\n{table}{end_mark}");
    match (document.find(&start_mark), document.find(&end_mark)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{block}{}",
                &document[..start],
                &document[end + end_mark.len()..]
            )
        }
        _ => format!("{}\n\n{block}\n", document.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic_synced(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.json"]);
    }

    #[test]
    fn the_mode_is_what_fs_write_gives() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, plain) = (dir.path().join("a"), dir.path().join("b"));
        write_atomic(&ours, b"x").unwrap();
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&ours), mode(&plain));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/f");
        let error = format!("{:#}", write_atomic(&path, b"x").unwrap_err());
        assert!(error.contains("no/such/f"), "{error}");
    }
}
