//! The guest's init for a plan run. The kernel starts the harness as PID 1
//! (`init=<harness> -- --init <run dir>`, xtask's boot.rs) in place of virtme-ng's init, which
//! spends 2.5–4.5 s of every TCG boot in systemd-tmpfiles and udev's coldplug and settle that
//! no case needs. This init sets up only what the harness and the cases see under
//! virtme-ng's init too (the kernel filesystems, the host's directories with private writable
//! overlays, the writable run directory), runs the harness as its child, hands the exit status
//! to vng on the `virtme.ret` port as vng's init does, and resets the VM (vng starts QEMU
//! with `-no-reboot`, so the reset ends it).
//!
//! What vng shares with the guest is read from the variables vng puts on the kernel command
//! line for its own init, which the kernel passes to init's environment.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};

/// The exit status vng reports when the init itself failed before the harness ran.
pub const INIT_FAILED: i32 = 125;
/// 9p mount options, as virtme-ng's init mounts its host shares.
const NINE_P_OPTIONS: &str = "version=9p2000.L,trans=virtio,access=any,msize=524288";
/// The kernel's usermode module loader. Emptied, `request_module` fails at once with ENOENT
/// instead of running the host's modprobe over 9p: every bpffs mount asks for `bpf_preload`
/// (never built here), which cost 0.37 s under TCG. No case relies on autoloading: the
/// harness loads the modules a plan names itself, and everything else is built in.
const MODPROBE_SYSCTL: &str = "/proc/sys/kernel/modprobe";
/// The virtio port on which vng reads the guest command's exit status.
const RET_PORT: &str = "virtme.ret";

/// One mount this init makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: PathBuf,
    pub fstype: &'static str,
    pub options: Option<String>,
    /// Directories created (in the tmpfs on /run) before mounting.
    pub dirs: Vec<PathBuf>,
}

impl Mount {
    fn new(source: &str, target: impl Into<PathBuf>, fstype: &'static str) -> Self {
        Mount {
            source: source.into(),
            target: target.into(),
            fstype,
            options: None,
            dirs: Vec::new(),
        }
    }
}

/// Runs as the guest's PID 1: mounts, the harness (`harness`, given `run_dir`, giving its exit
/// status) in a child, its status to vng, the reset.
pub fn run(run_dir: &Path, harness: fn(&Path) -> i32) -> ! {
    let status = match mount_all(&mounts(std::env::vars())) {
        Ok(()) => {
            if let Err(error) = std::fs::write(MODPROBE_SYSCTL, "\n") {
                eprintln!("harness init: turning off module autoloading: {error}");
            }
            run_harness(run_dir, harness)
        }
        Err(error) => {
            eprintln!("harness init: {error}");
            INIT_FAILED
        }
    };
    if let Err(error) = report_status(status) {
        eprintln!("harness init: telling vng the exit status {status}: {error}");
    }
    reset_vm()
}

/// Every mount, in order, for init's environment `vars`: the kernel's filesystems, then
/// vng's overlays (`virtme_rw_overlayN=<dir>`: the host's directory, writable in the guest
/// only), then vng's shares (`virtme_initmountN=<dir>`, on tag `virtme.initmountN`: the run
/// directory, writable through to the host). Pure.
pub fn mounts(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Mount> {
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    let mut all = vec![
        Mount::new("proc", "/proc", "proc"),
        Mount::new("sysfs", "/sys", "sysfs"),
        Mount::new("devtmpfs", "/dev", "devtmpfs"),
        Mount::new("run", "/run", "tmpfs"),
    ];
    for (key, dir) in &vars {
        if key.strip_prefix("virtme_rw_overlay").is_some_and(is_index) {
            let work = PathBuf::from(format!("/run/overlays/{key}"));
            let (upper, scratch) = (work.join("upper"), work.join("work"));
            let mut overlay = Mount::new(key, dir, "overlay");
            overlay.options = Some(format!(
                "lowerdir={dir},upperdir={},workdir={}",
                upper.display(),
                scratch.display()
            ));
            overlay.dirs = vec![upper, scratch];
            all.push(overlay);
        }
    }
    for (key, dir) in &vars {
        if key.strip_prefix("virtme_initmount").is_some_and(is_index) {
            // vng gives the path relative to the root.
            let mut share = Mount::new(&key.replace('_', "."), Path::new("/").join(dir), "9p");
            share.options = Some(NINE_P_OPTIONS.into());
            all.push(share);
        }
    }
    all
}

fn is_index(suffix: &str) -> bool {
    !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit())
}

fn mount_all(mounts: &[Mount]) -> Result<(), String> {
    for m in mounts {
        for dir in &m.dirs {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        mount(
            Some(m.source.as_str()),
            &m.target,
            Some(m.fstype),
            MsFlags::empty(),
            m.options.as_deref(),
        )
        .map_err(|e| {
            format!(
                "mounting {} ({}) on {}: {e}",
                m.source,
                m.fstype,
                m.target.display()
            )
        })?;
    }
    Ok(())
}

/// Runs the harness on `run_dir` in a forked child (a crash there must not take PID 1 with
/// it), reaping every orphan meanwhile, and returns its exit status as a shell gives it (128 +
/// signal when it was killed). Forked, not executed again: the binary and its libraries are
/// already in memory, and under TCG a second exec cost 75 ms of every boot.
fn run_harness(run_dir: &Path, harness: fn(&Path) -> i32) -> i32 {
    // SAFETY: PID 1 has one thread here (the mounts are all it did), so the child may run
    // anything; it leaves by `exit`, never returning into the parent's code.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => std::process::exit(harness(run_dir)),
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(error) => {
            eprintln!("harness init: starting the harness: {error}");
            return INIT_FAILED;
        }
    };
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => {
                eprintln!("harness init: waiting for the harness: {error}");
                return INIT_FAILED;
            }
        }
    }
}

/// Writes `status` to vng's `virtme.ret` port; the write returns once QEMU has it.
fn report_status(status: i32) -> std::io::Result<()> {
    let port = port_named(Path::new("/sys/class/virtio-ports"), RET_PORT)?;
    let mut port = std::fs::OpenOptions::new().write(true).open(port)?;
    port.write_all(status.to_string().as_bytes())
}

/// The device node of the virtio port called `name` (udev would symlink it under
/// /dev/virtio-ports; there is no udev here).
fn port_named(class: &Path, name: &str) -> std::io::Result<PathBuf> {
    for entry in std::fs::read_dir(class)? {
        let entry = entry?;
        let port_name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if port_name.trim_end() == name {
            return Ok(Path::new("/dev").join(entry.file_name()));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no virtio port named {name} in {}", class.display()),
    ))
}

/// Resets the VM, which ends QEMU (`-no-reboot`); PID 1 must never exit.
fn reset_vm() -> ! {
    nix::unistd::sync();
    let error = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT).unwrap_err();
    eprintln!("harness init: reset: {error}");
    loop {
        std::thread::park();
    }
}

/// The run directory from init's arguments: `--init <run dir>`, then whatever the kernel
/// passed after it (vng's own `init=`, displaced behind the `--`).
pub fn run_dir_from(args: &[OsString]) -> Option<PathBuf> {
    match args {
        [flag, dir, ..] if flag == "--init" => Some(PathBuf::from(dir)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kernel_filesystems_then_overlays_then_the_run_directory() {
        let mounts = mounts(vars(&[
            ("virtme_initmount0", "work/images/runs/6.12/run-1"),
            ("virtme_initmount0_fstype", "9p"),
            ("virtme_rw_overlay1", "/tmp"),
            ("virtme_rw_overlay0", "/etc"),
            ("virtme_hostname", "virtme-ng"),
            ("TERM", "linux"),
        ]));
        let targets: Vec<_> = mounts
            .iter()
            .map(|m| m.target.display().to_string())
            .collect();
        assert_eq!(
            targets,
            [
                "/proc",
                "/sys",
                "/dev",
                "/run",
                "/etc",
                "/tmp",
                "/work/images/runs/6.12/run-1"
            ]
        );
        let share = mounts.last().unwrap();
        assert_eq!(
            (share.source.as_str(), share.fstype),
            ("virtme.initmount0", "9p")
        );
        let tmp = &mounts[5];
        assert_eq!(
            tmp.options.as_deref(),
            Some("lowerdir=/tmp,upperdir=/run/overlays/virtme_rw_overlay1/upper,workdir=/run/overlays/virtme_rw_overlay1/work")
        );
        assert_eq!(tmp.dirs.len(), 2);
    }

    #[test]
    fn the_run_directory_comes_from_the_init_arguments() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            run_dir_from(&args(&[
                "--init",
                "/runs/1",
                "init=/usr/lib/virtme-ng-init"
            ])),
            Some(PathBuf::from("/runs/1"))
        );
        assert_eq!(run_dir_from(&args(&["/runs/1"])), None);
        assert_eq!(run_dir_from(&args(&["--init"])), None);
    }

    #[test]
    fn the_status_port_is_found_by_name() {
        let class = tempfile::tempdir().unwrap();
        for (port, name) in [("vport0p1", "virtme.stdin"), ("vport0p4", "virtme.ret")] {
            std::fs::create_dir_all(class.path().join(port)).unwrap();
            std::fs::write(class.path().join(port).join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(
            port_named(class.path(), RET_PORT).unwrap(),
            Path::new("/dev/vport0p4")
        );
        assert!(port_named(class.path(), "virtme.none").is_err());
    }
}
