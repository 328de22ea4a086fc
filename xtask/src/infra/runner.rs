//! The one runner for host commands. Commands are written with xshell's `cmd!`; short ones run
//! through xshell directly, long ones (kernel builds, VM boots) go through [`Runner::run_logged`]
//! with their output in a log file, a heartbeat, an optional timeout, and a Ctrl-C handler that
//! kills their whole process group so no QEMU or make outlives xtask.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{Cmd, Shell};

use crate::infra::progress::{self, Stage, HEARTBEAT};

/// Process groups of the long commands running now, killed on Ctrl-C.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Set first thing on Ctrl-C: a command that dies now died of the interrupt, not of itself.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// What must still happen if the user interrupts (e.g. `git bisect reset`), after the kill.
static ON_INTERRUPT: Mutex<Vec<Box<dyn Fn() + Send>>> = Mutex::new(Vec::new());

/// Registers cleanup to run if xtask is interrupted (Ctrl-C) before it returns normally.
pub fn on_interrupt(cleanup: impl Fn() + Send + 'static) {
    ON_INTERRUPT.lock().unwrap().push(Box::new(cleanup));
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
        self.supervise(cmd.into(), log, stage, timeout)
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
        let mut command = tied(cmd, r#"trap 'kill -KILL 0' TERM; "$@" & wait $!"#);
        let parent = parent_pid();
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
        let parent = parent_pid();
        // SAFETY: isatty has no preconditions.
        let terminal = unsafe { libc::isatty(0) } == 1;
        // SAFETY: `stay_tied`, setpgid, getpid and `foreground` are async-signal-safe;
        // nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                stay_tied(parent)?;
                libc::setpgid(0, 0);
                if terminal {
                    foreground(libc::getpid());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .context("starting the interactive command")?;
        let group = ProcessGroup::register(child.id() as i32);
        let status = child.wait();
        if terminal {
            // SAFETY: getpgrp has no preconditions; `foreground` is sound for any group.
            unsafe { foreground(libc::getpgrp()) };
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
    ) -> Result<Finished> {
        let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .process_group(0);
        let mut child = command.spawn().context("spawning command")?;
        let group = ProcessGroup::register(child.id() as i32);
        let started = Instant::now();
        let mut next_heartbeat = HEARTBEAT;
        loop {
            if let Some(status) = child.try_wait()? {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    // The interrupt handler stopped it and is about to exit(130): reporting a
                    // failed build here would race it to a wrong exit status.
                    loop {
                        std::thread::park();
                    }
                }
                return Ok(Finished::Exited(status));
            }
            let elapsed = started.elapsed();
            if timeout.is_some_and(|limit| elapsed >= limit) {
                group.kill();
                child.wait()?;
                return Ok(Finished::TimedOut);
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

fn parent_pid() -> i32 {
    std::process::id() as i32
}

/// Between fork and exec: SIGTERM when xtask dies (PR_SET_PDEATHSIG), and a refusal if it
/// died before the prctl (then no signal would come). Only async-signal-safe calls.
fn stay_tied(parent: i32) -> std::io::Result<()> {
    // SAFETY: prctl and getppid have no memory-safety preconditions.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(std::io::Error::other("the parent exited"));
        }
    }
    Ok(())
}

/// Makes `group` the terminal's foreground process group. A process outside the foreground
/// group that does so gets SIGTTOU, which is ignored for the call.
///
/// # Safety
/// Only async-signal-safe calls: usable between fork and exec.
unsafe fn foreground(group: i32) {
    // SAFETY: signal and tcsetpgrp on our own terminal; the old disposition is restored.
    unsafe {
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, group);
        libc::signal(libc::SIGTTOU, old);
    }
}

/// A registered process group; killed when dropped so an early return leaves nothing running.
struct ProcessGroup(i32);

impl ProcessGroup {
    fn register(pgid: i32) -> Self {
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
                cleanups.iter().for_each(|cleanup| cleanup());
            }
            eprintln!("\ninterrupted: stopped the running commands");
            std::process::exit(130);
        });
    });
}

/// SIGTERM first (make deletes a half-written target on it, never on SIGKILL, which would leave
/// a truncated object that looks up to date), then SIGKILL whatever is left.
fn stop_groups(groups: &[i32]) {
    let signal_all = |signal| {
        for pgid in groups {
            // SAFETY: kill(2) on process groups we created; a gone group only yields ESRCH.
            unsafe { libc::kill(-pgid, signal) };
        }
    };
    let any_alive = || {
        groups.iter().any(|pgid| {
            // SAFETY: signal 0 only checks whether the group still has members.
            unsafe { libc::kill(-pgid, 0) == 0 }
        })
    };
    if !any_alive() {
        return;
    }
    signal_all(libc::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while any_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_all(libc::SIGKILL);
}

/// How long a stopped command gets to clean up before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(1500);
