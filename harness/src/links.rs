//! The raw tracepoint link as an object of its own: what the kernel says about it (info,
//! fdinfo, enumeration), pinning it in bpffs and getting it back, and the link commands its
//! ops may lack (detach, update). Every kernel answer becomes an [`Outcome`].

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use protocol::{Outcome, PIN_DIR};

use crate::bpf_sys;

/// `statfs` magic of bpffs (`BPF_FS_MAGIC`).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Info, fdinfo and enumeration, as one value without the ids (they change every run).
pub fn info(link: BorrowedFd<'_>, program: BorrowedFd<'_>) -> Outcome {
    let answer = (|| {
        let info = bpf_sys::link_info(link)?;
        let prog_id = bpf_sys::prog_id(program)?;
        let listed = bpf_sys::link_ids()?.contains(&info.id);
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", link.as_raw_fd()))?;
        Ok::<_, std::io::Error>(serde_json::json!({
            "type": info.link_type,
            "fdinfo_link_type": fdinfo_field(&fdinfo, "link_type"),
            "tp_name": info.tp_name,
            "prog_id_is_the_program": info.prog_id == prog_id,
            "listed_by_id": listed,
        }))
    })();
    answer.map_or_else(|e| Outcome::from_io(&e), Outcome::value)
}

/// Pins the link at `PIN_DIR/<case>` (mounting bpffs first if nothing is mounted there).
pub fn pin(link: BorrowedFd<'_>, case: &str) -> Result<PathBuf, Outcome> {
    let path = Path::new(PIN_DIR).join(case);
    ensure_pin_dir().map_err(|e| error(format!("preparing {PIN_DIR}: {e}")))?;
    let c_path = c_path(&path)?;
    bpf_sys::obj_pin(link, &c_path).map_err(|e| Outcome::from_io(&e))?;
    Ok(path)
}

/// A new fd of the pinned link.
pub fn get_pinned(path: &Path) -> Result<OwnedFd, Outcome> {
    bpf_sys::obj_get(&c_path(path)?).map_err(|e| Outcome::from_io(&e))
}

pub fn unpin(path: &Path) -> Outcome {
    std::fs::remove_file(path).map_or_else(|e| Outcome::from_io(&e), |()| Outcome::ok())
}

pub fn detach(link: BorrowedFd<'_>) -> Outcome {
    bpf_sys::link_detach(link).map_or_else(|e| Outcome::from_io(&e), |()| Outcome::ok())
}

pub fn update(link: BorrowedFd<'_>, program: BorrowedFd<'_>) -> Outcome {
    bpf_sys::link_update(link, program).map_or_else(|e| Outcome::from_io(&e), |()| Outcome::ok())
}

fn ensure_pin_dir() -> std::io::Result<()> {
    let root = Path::new(PIN_DIR)
        .parent()
        .unwrap_or(Path::new("/sys/fs/bpf"));
    let mounted =
        nix::sys::statfs::statfs(root).is_ok_and(|fs| fs.filesystem_type().0 == BPF_FS_MAGIC);
    if !mounted {
        nix::mount::mount(
            Some("bpf"),
            root,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )?;
    }
    std::fs::create_dir_all(PIN_DIR)
}

fn c_path(path: &Path) -> Result<CString, Outcome> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| error(format!("{} has a NUL byte", path.display())))
}

/// The value of `name:\t<value>` in an fdinfo text.
fn fdinfo_field<'a>(fdinfo: &'a str, name: &str) -> Option<&'a str> {
    fdinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

fn error(message: String) -> Outcome {
    Outcome::Error { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields_are_found_by_name() {
        let text = "pos:\t0\nflags:\t02000000\nlink_type:\traw_tracepoint\nlink_id:\t3\n";
        assert_eq!(fdinfo_field(text, "link_type"), Some("raw_tracepoint"));
        assert_eq!(fdinfo_field(text, "link_id"), Some("3"));
        assert_eq!(fdinfo_field(text, "prog_tag"), None);
    }
}
