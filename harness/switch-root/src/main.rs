//! The `/init` of the initramfs that a plan run boots with (xtask's `initramfs.rs` builds it,
//! linked statically: the initramfs holds nothing else). The kernel runs an initramfs's
//! `/init` in place of the `init=` that virtme-ng puts on the command line, so this is how the
//! harness becomes the guest's init while vng still sets up the VM. It mounts the host's root
//! that vng shares over 9p as the kernel would have (vng's `rootfstype`, `rootflags`, `ro`),
//! moves it over `/`, and executes `<wtp_harness> --init <wtp_run_dir>` there, both read from
//! its environment (the kernel passes unknown `name=value` arguments to init that way).
//! A failure is printed and ends the VM: the host then finds no harness records.

use std::convert::Infallible;
use std::ffi::CString;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, execv};

/// Where the shared root is mounted before it becomes `/`.
const NEW_ROOT: &str = "/newroot";
/// The 9p tag vng gives the host's root.
const ROOT_TAG: &str = "/dev/root";

fn main() {
    let error = switch_root().unwrap_err();
    eprintln!("switch-root: {error}");
    nix::unistd::sync();
    // PID 1 may not exit; a reset ends QEMU (-no-reboot).
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
}

fn switch_root() -> Result<Infallible, String> {
    let harness = env("wtp_harness")?;
    let run_dir = env("wtp_run_dir")?;
    let cmdline = kernel_cmdline()?;
    let fstype = kernel_arg(&cmdline, "rootfstype").unwrap_or("9p");
    let flags = root_flags(fstype, kernel_arg(&cmdline, "rootflags"));
    mount(
        Some(ROOT_TAG),
        NEW_ROOT,
        Some(fstype),
        MsFlags::MS_RDONLY,
        flags.as_deref(),
    )
    .map_err(|e| format!("mounting the root ({ROOT_TAG}, {fstype}) on {NEW_ROOT}: {e}"))?;
    chdir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("moving {NEW_ROOT} to /: {e}"))?;
    chroot(".").map_err(|e| format!("chroot: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    let argv = [harness.as_str(), "--init", run_dir.as_str()].map(c_string);
    execv(&argv[0], &argv).map_err(|e| format!("executing {harness}: {e}"))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not on the kernel command line"))
}

/// The kernel's command line, read through a /proc mounted for the purpose.
fn kernel_cmdline() -> Result<String, String> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mounting /proc: {e}"))?;
    let cmdline = std::fs::read_to_string("/proc/cmdline");
    let _ = umount2("/proc", MntFlags::MNT_DETACH);
    cmdline.map_err(|e| format!("reading /proc/cmdline: {e}"))
}

/// The value of the last `name=value` on the command line (the kernel's rule too).
fn kernel_arg<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .rev()
        .filter_map(|word| word.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// vng's root flags, with `cache=mmap` for a 9p root that names no cache mode. Without a cache
/// mode 9p turns readahead off, so executing the harness faulted its code and libc's in one
/// 4 KiB 9p round trip per page: 0.2 s of every TCG boot. `mmap` (every kernel since 3.x)
/// keeps mapped pages and reads ahead; `read()` still goes to the host each time, and the
/// root is read-only in the guest and unchanged by the host while a run uses it.
fn root_flags(fstype: &str, flags: Option<&str>) -> Option<String> {
    let names_a_cache = flags.is_some_and(|f| f.split(',').any(|o| o.starts_with("cache=")));
    match (fstype, flags) {
        ("9p", Some(flags)) if !names_a_cache => Some(format!("{flags},cache=mmap")),
        ("9p", None) => Some("cache=mmap".into()),
        (_, flags) => flags.map(str::to_owned),
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_9p_root_without_a_cache_mode_gets_mmap() {
        let vng = "version=9p2000.L,trans=virtio,access=any,msize=524288";
        assert_eq!(
            root_flags("9p", Some(vng)).as_deref(),
            Some("version=9p2000.L,trans=virtio,access=any,msize=524288,cache=mmap")
        );
        let chosen = "trans=virtio,cache=loose";
        assert_eq!(root_flags("9p", Some(chosen)).as_deref(), Some(chosen));
        assert_eq!(root_flags("virtiofs", Some("x")).as_deref(), Some("x"));
        assert_eq!(root_flags("9p", None).as_deref(), Some("cache=mmap"));
    }

    #[test]
    fn the_last_of_a_kernel_argument_counts() {
        let cmdline =
            "rootfstype=9p rootflags=version=9p2000.L,trans=virtio ro rootfstype=virtiofs";
        assert_eq!(kernel_arg(cmdline, "rootfstype"), Some("virtiofs"));
        assert_eq!(
            kernel_arg(cmdline, "rootflags"),
            Some("version=9p2000.L,trans=virtio")
        );
        assert_eq!(kernel_arg(cmdline, "ro"), None);
        assert_eq!(kernel_arg(cmdline, "root"), None);
    }
}
