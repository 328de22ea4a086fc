//! `cargo xtask vmtest --shell`, driven for real through a terminal: tmux runs it, the test
//! waits for the guest's prompt, asks bpftool for the links, and leaves the shell. The case's
//! raw_tracepoint link must be listed and leaving must end the VM with status 0.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Boot, harness and shell start take well under a minute here (TCG); the rest is margin.
const PATIENCE: Duration = Duration::from_secs(240);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "this test drives a terminal with tmux: apt-get install tmux (.ci/run does)"
        );
        Self {
            socket: format!("wtp-shell-test-{}", std::process::id()),
        }
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
    let tmux = Tmux::new();
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
        &command,
    ]);
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
