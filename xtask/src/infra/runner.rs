//! The one runner for host commands. Commands are written with xshell's `cmd!`; short ones run
//! through xshell directly, long ones (kernel builds, VM boots) go through [`Runner::run_logged`]
//! with their output in a log file, a heartbeat, an optional timeout, and a Ctrl-C handler that
//! kills their whole process group so no QEMU or make outlives xtask.

use std::fs::File;
use std::io::IsTerminal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{getpgrp, getpid, getppid, setpgid, tcsetpgrp, Pid};
use xshell::{Cmd, Shell};

use crate::infra::progress::{self, Stage, HEARTBEAT};

/// Process groups of the long commands running now, killed on Ctrl-C.
static RUNNING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());
/// Set first thing on Ctrl-C: a command that dies now died of the interrupt, not of itself.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// What must still happen if the user interrupts (e.g. `git bisect reset`), after the kill;
/// each under the id of the [`OnInterrupt`] guard that registered it.
static ON_INTERRUPT: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());

type Cleanup = Box<dyn Fn() + Send>;

/// Registers cleanup to run if xtask is interrupted (Ctrl-C) while the returned guard lives;
/// dropping the guard (the work it guards is over, or cleaned up another way) unregisters it.
#[must_use = "the cleanup is unregistered when the guard is dropped"]
pub fn on_interrupt(cleanup: impl Fn() + Send + 'static) -> OnInterrupt {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    ON_INTERRUPT.lock().unwrap().push((id, Box::new(cleanup)));
    OnInterrupt(id)
}

/// A registered interrupt cleanup ([`on_interrupt`]); unregistered when dropped.
#[derive(Debug)]
pub struct OnInterrupt(u64);

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        let mut cleanups = ON_INTERRUPT.lock().unwrap_or_else(|e| e.into_inner());
        cleanups.retain(|(id, _)| *id != self.0);
    }
}

pub struct Runner {
    pub sh: Shell,
}

/// How a logged command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Exited(ExitStatus),
    TimedOut,
}

impl Finished {
    pub fn success(self) -> bool {
        matches!(self, Finished::Exited(status) if status.success())
    }
}

/// How a measured command ended ([`Runner::spawn_tied_measured`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub finished: Finished,
    /// The peak resident set (KiB) of the largest process of the command's tree that was
    /// waited for (wait4's `ru_maxrss`: a process's own or its reaped children's); `None`
    /// when it timed out and was killed.
    pub peak_rss_kib: Option<u64>,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finished::Exited(status) => write!(f, "{status}"),
            Finished::TimedOut => f.write_str("timed out"),
        }
    }
}

impl Runner {
    pub fn new(root: &Path) -> Result<Self> {
        let sh = Shell::new()?;
        sh.change_dir(root);
        install_interrupt_handler();
        Ok(Self { sh })
    }

    /// Runs a long command with stdout and stderr in `log`; fails with the log's tail.
    pub fn run_logged(&self, cmd: Cmd<'_>, log: &Path, stage: &Stage) -> Result<()> {
        let shown = cmd.to_string();
        match self.spawn_logged(cmd, log, stage, None)? {
            Finished::Exited(status) if status.success() => Ok(()),
            finished => bail!(
                "`{shown}` failed ({finished}); last lines of {}:\n{}",
                log.display(),
                progress::tail(log, 25)
            ),
        }
    }

    /// Like [`Runner::run_logged`] but reports how it ended instead of failing, and kills the
    /// command's process group after `timeout`.
    pub fn spawn_logged(
        &self,
        cmd: Cmd<'_>,
        log: &Path,
        stage: &Stage,
        timeout: Option<Duration>,
    ) -> Result<Finished> {
        Ok(self.supervise(cmd.into(), log, stage, timeout)?.finished)
    }

    /// Like [`Runner::spawn_logged`], for a command whose whole process tree must die with
    /// this process, however it ends (a VM: vng starts virtme-run, which forks QEMU; `kill -9`
    /// of xtask must not leave QEMU running, a hanging guest would run forever).
    ///
    /// The command runs under a shell that the kernel sends SIGTERM when this process dies
    /// (PR_SET_PDEATHSIG); its trap kills the command's process group, where vng, virtme-run
    /// and QEMU all are (none of them starts a session of its own).
    pub fn spawn_tied(
        &self,
        cmd: Cmd<'_>,
        log: &Path,
        stage: &Stage,
        timeout: Option<Duration>,
    ) -> Result<Finished> {
        Ok(self.spawn_tied_measured(cmd, log, stage, timeout)?.finished)
    }

    /// [`Runner::spawn_tied`], also reporting the peak resident set of the command's process
    /// tree (for a VM: QEMU's, which vng and the tying shell wait for, so it reaches us
    /// through their `ru_maxrss`).
    pub fn spawn_tied_measured(
        &self,
        cmd: Cmd<'_>,
        log: &Path,
        stage: &Stage,
        timeout: Option<Duration>,
    ) -> Result<Measured> {
        let mut command = tied(cmd, r#"trap 'kill -KILL 0' TERM; "$@" & wait $!"#);
        let parent = getpid();
        // SAFETY: `stay_tied` only makes async-signal-safe calls.
        unsafe { command.pre_exec(move || stay_tied(parent)) };
        self.supervise(command, log, stage, timeout)
    }

    /// Runs an interactive command on this terminal. Like [`Runner::spawn_tied`], it runs
    /// under a shell in a process group of its own that dies as one (vng, virtme-run and
    /// QEMU) when xtask dies or is interrupted; that group is made the terminal's foreground
    /// group for the command's life (the job control a shell does), and the terminal is
    /// handed to the command explicitly, because a shell's asynchronous list reads /dev/null.
    pub fn run_interactive(&self, cmd: Cmd<'_>) -> Result<std::process::ExitStatus> {
        let mut command = tied(
            cmd,
            r#"trap 'kill -KILL 0' TERM; exec 3<&0; "$@" <&3 3<&- & wait $!"#,
        );
        let parent = getpid();
        let terminal = std::io::stdin().is_terminal();
        // SAFETY: `stay_tied`, setpgid, getpid and `foreground` are async-signal-safe;
        // nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                stay_tied(parent)?;
                // As a shell does: should it fail, the command still runs, in xtask's group.
                let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
                if terminal {
                    foreground(getpid());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .context("starting the interactive command")?;
        let group = ProcessGroup::register(child_pid(&child));
        let status = child.wait();
        if terminal {
            foreground(getpgrp());
        }
        drop(group);
        Ok(status?)
    }

    fn supervise(
        &self,
        mut command: Command,
        log: &Path,
        stage: &Stage,
        timeout: Option<Duration>,
    ) -> Result<Measured> {
        let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .process_group(0);
        let mut child = command.spawn().context("spawning command")?;
        let group = ProcessGroup::register(child_pid(&child));
        let started = Instant::now();
        let mut next_heartbeat = HEARTBEAT;
        loop {
            if let Some((status, peak_rss_kib)) = reap(&child)? {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    // The interrupt handler stopped it and is about to exit(130): reporting a
                    // failed build here would race it to a wrong exit status.
                    loop {
                        std::thread::park();
                    }
                }
                return Ok(Measured {
                    finished: Finished::Exited(status),
                    peak_rss_kib: Some(peak_rss_kib),
                });
            }
            let elapsed = started.elapsed();
            if timeout.is_some_and(|limit| elapsed >= limit) {
                group.kill();
                child.wait()?;
                return Ok(Measured {
                    finished: Finished::TimedOut,
                    peak_rss_kib: None,
                });
            }
            if elapsed >= next_heartbeat {
                stage.heartbeat(log);
                next_heartbeat += HEARTBEAT;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `cmd` run by `sh -c script` (the script starts `"$@"`), with `cmd`'s directory and
/// environment: the shell that ties a command's process group to xtask's life.
fn tied(cmd: Cmd<'_>, script: &str) -> Command {
    let inner: Command = cmd.into();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        command.current_dir(dir);
    }
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

fn child_pid(child: &Child) -> Pid {
    Pid::from_raw(child.id() as i32)
}

/// The child's exit status and peak RSS (KiB) once it has ended (then it is reaped), `None`
/// while it runs. wait4 because nix has no call that returns the rusage of one child.
fn reap(child: &Child) -> std::io::Result<Option<(ExitStatus, u64)>> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: our own unreaped child, with valid out-pointers for the call's duration.
        let pid = unsafe { libc::wait4(child.id() as i32, &mut status, libc::WNOHANG, &mut usage) };
        match pid {
            0 => return Ok(None),
            pid if pid > 0 => {
                let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0);
                return Ok(Some((ExitStatus::from_raw(status), peak)));
            }
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Between fork and exec: SIGTERM when xtask dies (PR_SET_PDEATHSIG), and a refusal if it
/// died before the prctl (then no signal would come). Only async-signal-safe calls.
fn stay_tied(parent: Pid) -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    if getppid() != parent {
        return Err(std::io::Error::other("the parent exited"));
    }
    Ok(())
}

/// Makes `group` the foreground process group of the terminal on stdin. A process outside
/// the foreground group that does so gets SIGTTOU, which is ignored for the call. Only
/// async-signal-safe calls: usable between fork and exec.
fn foreground(group: Pid) {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code; the previous action is put back as it was.
    let Ok(old) = (unsafe { sigaction(Signal::SIGTTOU, &ignore) }) else {
        return;
    };
    let _ = tcsetpgrp(std::io::stdin(), group);
    // SAFETY: restores the action that was installed before, unchanged.
    let _ = unsafe { sigaction(Signal::SIGTTOU, &old) };
}

/// A registered process group; killed when dropped so an early return leaves nothing running.
struct ProcessGroup(Pid);

impl ProcessGroup {
    fn register(pgid: Pid) -> Self {
        RUNNING.lock().unwrap().push(pgid);
        Self(pgid)
    }

    fn kill(&self) {
        stop_groups(&[self.0]);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
        RUNNING.lock().unwrap().retain(|pgid| *pgid != self.0);
    }
}

fn install_interrupt_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, Ordering::SeqCst);
            stop_groups(&RUNNING.lock().map(|g| g.clone()).unwrap_or_default());
            if let Ok(cleanups) = ON_INTERRUPT.lock() {
                cleanups.iter().for_each(|(_, cleanup)| cleanup());
            }
            eprintln!("\ninterrupted: stopped the running commands");
            std::process::exit(130);
        });
    });
}

/// SIGTERM first (make deletes a half-written target on it, never on SIGKILL, which would leave
/// a truncated object that looks up to date), then SIGKILL whatever is left.
fn stop_groups(groups: &[Pid]) {
    let signal_all = |signal| {
        for pgid in groups {
            // A gone group only yields ESRCH.
            let _ = killpg(*pgid, signal);
        }
    };
    // No signal only checks whether the group still has members.
    let any_alive = || groups.iter().any(|pgid| killpg(*pgid, None).is_ok());
    if !any_alive() {
        return;
    }
    signal_all(Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while any_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_all(Signal::SIGKILL);
}

/// How long a stopped command gets to clean up before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(1500);

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(guard: &OnInterrupt) -> bool {
        let cleanups = ON_INTERRUPT.lock().unwrap();
        cleanups.iter().any(|(id, _)| *id == guard.0)
    }

    #[test]
    fn an_interrupt_cleanup_lives_as_long_as_its_guard() {
        let first = on_interrupt(|| {});
        let second = on_interrupt(|| {});
        assert!(registered(&first) && registered(&second));
        let id = first.0;
        drop(first);
        assert!(!ON_INTERRUPT.lock().unwrap().iter().any(|(i, _)| *i == id));
        assert!(registered(&second));
    }

    /// The peak RSS reaches us through the tying shell and the command's own shell: a
    /// grandchild's 50 MiB buffer (dd's) is seen, as QEMU's is under vng.
    #[test]
    fn a_tied_command_reports_its_status_and_its_tree_s_peak_rss() {
        let runner = Runner {
            sh: Shell::new().unwrap(),
        };
        let sh = &runner.sh;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let script = "dd if=/dev/zero of=/dev/null bs=50M count=1; exit 3";
        let measured = runner
            .spawn_tied_measured(
                xshell::cmd!(sh, "sh -c {script}"),
                &log,
                &Stage::start("a measured command"),
                Some(Duration::from_secs(60)),
            )
            .unwrap();
        let Finished::Exited(status) = measured.finished else {
            panic!("{measured:?}");
        };
        assert_eq!(status.code(), Some(3));
        let peak = measured.peak_rss_kib.unwrap();
        assert!((50 * 1024..1024 * 1024).contains(&peak), "{peak} KiB");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_measures_nothing() {
        let runner = Runner {
            sh: Shell::new().unwrap(),
        };
        let sh = &runner.sh;
        let dir = tempfile::tempdir().unwrap();
        let measured = runner
            .spawn_tied_measured(
                xshell::cmd!(sh, "sleep 30"),
                &dir.path().join("log"),
                &Stage::start("a hanging command"),
                Some(Duration::from_millis(300)),
            )
            .unwrap();
        assert_eq!(
            measured,
            Measured {
                finished: Finished::TimedOut,
                peak_rss_kib: None
            }
        );
    }
}
