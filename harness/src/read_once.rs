//! Files read for case after case, read once per harness process: the running kernel's
//! (/proc/kallsyms, /sys/kernel/btf/*) and the cases' BPF objects. None can change under the
//! harness: the guest's modules are loaded before the first case and none after, and the host
//! wrote the objects before the boot. Under TCG a read of /proc/kallsyms costs about 50 ms
//! (the kernel formats every line), vmlinux's BTF 2 MB, and every read of an object from the
//! host (9p without a cache: walk, getattr, open, read, clunk) a few round trips to QEMU,
//! which both loaders would otherwise pay for every case.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

static READ: Mutex<Option<HashMap<String, Arc<[u8]>>>> = Mutex::new(None);

/// The file's bytes, from the first read of it in this process.
pub fn read(path: &str) -> io::Result<Arc<[u8]>> {
    if let Some(bytes) = cached(path) {
        return Ok(bytes);
    }
    let bytes: Arc<[u8]> = std::fs::read(path)?.into();
    if let Ok(mut guard) = READ.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(path.to_owned(), bytes.clone());
    }
    Ok(bytes)
}

fn cached(path: &str) -> Option<Arc<[u8]>> {
    READ.lock().ok()?.as_ref()?.get(path).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_read_gives_the_first_reads_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kallsyms");
        std::fs::write(&path, "ffffffff81000000 T _stext\n").unwrap();
        let path = path.to_str().unwrap();
        let first = read(path).unwrap();
        std::fs::write(path, "changed").unwrap();
        assert_eq!(read(path).unwrap(), first);
    }
}
