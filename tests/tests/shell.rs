//! `cargo xtask vmtest --shell`, driven for real through a terminal: tmux runs it, the test
//! waits for the guest's prompt, asks bpftool for the links, and leaves the shell. The case's
//! raw_tracepoint link must be listed and leaving must end the VM with status 0; killing
//! xtask instead must end the VM too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Boot, harness and shell start take well under a minute here (TCG); the rest is margin.
const PATIENCE: Duration = Duration::from_secs(240);

struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` under `sh -c` in a 200×60 terminal of a tmux server of the test's own
    /// (`test` names it: tests run in parallel threads).
    fn start(test: &str, command: &str) -> Self {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "this test drives a terminal with tmux: apt-get install tmux (.ci/run does)"
        );
        let tmux = Self {
            socket: format!("wtp-shell-test-{}-{test}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "shell",
            "-x",
            "200",
            "-y",
            "60",
            "sh",
            "-c",
            command,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "shell"])
    }

    fn send(&self, keys: &str) {
        self.run(&["send-keys", "-t", "shell", keys, "Enter"]);
    }

    /// Waits until the screen shows `text`; panics with the screen if it never does.
    fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "`{text}` never appeared; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

fn wait_for_file(path: &Path) -> String {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{} was never written: xtask did not end", path.display());
}

#[test]
fn the_shell_keeps_the_case_attached_and_exit_ends_the_vm() {
    let xtask = vmtests::xtask_binary();
    let status_file = tempfile::NamedTempFile::new().unwrap();
    let command = format!(
        "'{}' vmtest --shell --kernel 6.12 --case bare_early_ret; echo \"exit=$?\" > '{}'",
        xtask.display(),
        status_file.path().display()
    );
    let tmux = Tmux::start("exit", &command);
    let prompt = tmux.wait_for("wtp-guest# ");
    assert!(
        prompt.contains("pinned at /sys/fs/bpf/wtp/bare_early_ret"),
        "{prompt}"
    );

    tmux.send("bpftool link show");
    let links = tmux.wait_for("tp 'bpf_testmod_test_writable_bare'");
    assert!(links.contains("raw_tracepoint"), "{links}");
    eprintln!("the screen:\n{links}");

    tmux.send("exit");
    assert_eq!(wait_for_file(status_file.path()).trim(), "exit=0");
}

/// The terminal belongs to the guest, so a Ctrl-C typed there interrupts the guest's command;
/// a kill of xtask on the host must end the whole VM (vng, virtme-run, QEMU) all the same.
#[test]
fn killing_xtask_ends_the_shells_vm() {
    let xtask = vmtests::xtask_binary();
    let command = format!(
        "'{}' vmtest --kernel 6.12 --shell; sleep 600",
        xtask.display()
    );
    let tmux = Tmux::start("kill", &command);
    let screen = tmux.wait_for("wtp-guest# ");
    let run_dir = screen
        .lines()
        .find_map(vmtests::run_dir_in)
        .unwrap_or_else(|| panic!("no run directory on the screen:\n{screen}"));
    let needle = run_dir.to_string_lossy().into_owned();
    let vm = vmtests::processes_mentioning(&needle);
    assert!(
        vm.iter()
            .any(|pid| vmtests::cmdline(*pid).contains("qemu-system")),
        "no QEMU for {needle}"
    );
    // The xtask process itself: its command line starts with the binary (tmux's and the
    // shell's only contain it).
    let own_prefix = format!("{} vmtest --kernel 6.12 --shell", xtask.display());
    let xtask_pid = vmtests::processes_mentioning(&own_prefix)
        .into_iter()
        .find(|pid| vmtests::cmdline(*pid).starts_with(&own_prefix))
        .unwrap_or_else(|| {
            let all = vmtests::processes_mentioning("vmtest");
            let all: Vec<String> = all.into_iter().map(vmtests::cmdline).collect();
            panic!("no process starts with {own_prefix:?}: {all:#?}\n{screen}")
        });
    // SAFETY: kill(2) of the xtask this test started.
    unsafe { libc::kill(xtask_pid as i32, libc::SIGKILL) };
    let started = Instant::now();
    loop {
        let left = vmtests::processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still running after xtask died: {:?}",
            left.iter()
                .map(|pid| vmtests::cmdline(*pid))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
