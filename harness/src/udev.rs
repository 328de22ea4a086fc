//! The guest's udev, stopped before the cases run. virtme-ng's init starts systemd-udevd and
//! waits for its coldplug; the cases need none of it (devtmpfs makes /dev/nbd0), and a running
//! udevd probes every new block device (blkid reads nbd0) and handles every module's uevents
//! on the guest's only CPU. Stopping it once costs less than settling it in each NBD case,
//! and leaves the NBD server seeing only the cases' own requests.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The daemon's name in /proc/<pid>/comm (virtme-ng-init runs it as systemd-udevd).
const DAEMON: &str = "systemd-udevd";
/// How long the killed daemon and its workers may take to be gone.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a udevd runs (its control socket outlives a killed daemon, so it proves nothing).
pub fn running() -> bool {
    !pids_named(DAEMON).is_empty()
}

/// Kills udevd and its workers (same name) and waits until they are gone; says what it did.
/// SIGKILL, not SIGTERM: nothing of udev's is kept, and a graceful exit took a tenth of a
/// second of the guest's only CPU under TCG.
pub fn stop() -> Result<String, String> {
    let daemons = pids_named(DAEMON);
    if daemons.is_empty() {
        return Ok("no udevd running".into());
    }
    for &pid in &daemons {
        kill(Pid::from_raw(pid), Signal::SIGKILL)
            .map_err(|e| format!("stopping udevd (pid {pid}): {e}"))?;
    }
    let started = Instant::now();
    while daemons.iter().any(|&pid| alive(pid)) {
        if started.elapsed() > EXIT_TIMEOUT {
            return Err(format!(
                "udevd did not exit within {EXIT_TIMEOUT:?} of SIGKILL"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed().as_millis();
    Ok(format!(
        "stopped udevd ({} processes) in {took} ms",
        daemons.len()
    ))
}

fn pids_named(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

/// Running: neither gone nor a zombie waiting for init to reap it.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name, which may hold spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
