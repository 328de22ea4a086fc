//! What the user sees while a run goes on: one line when a stage starts, one when it ends with
//! its duration, and for long commands a heartbeat line with the elapsed time and the last line
//! of their log.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a long command reports that it is still alive.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

thread_local! {
    /// What this thread's lines are about (the kernel, when kernels boot side by side).
    static LABEL: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Prefixes this thread's progress lines with `[label] ` from now on (none: no prefix).
pub fn label_thread(label: &str) {
    let prefix = match label {
        "" => String::new(),
        label => format!("[{label}] "),
    };
    LABEL.with(|l| *l.borrow_mut() = prefix);
}

/// One progress line, with this thread's label.
pub fn line(text: impl fmt::Display) {
    LABEL.with(|label| eprintln!("{}{text}", label.borrow()));
}

/// A stage of the run; prints its end (with elapsed time) when finished or dropped.
pub struct Stage {
    what: String,
    started: Instant,
    done: bool,
}

impl Stage {
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        line(format_args!("▶ {what}"));
        Self {
            what,
            started: Instant::now(),
            done: false,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the stage successfully, with an optional detail.
    pub fn finish(mut self, detail: impl fmt::Display) {
        self.done = true;
        let detail = detail.to_string();
        let sep = if detail.is_empty() { "" } else { ", " };
        line(format_args!(
            "✓ {} ({}{sep}{detail})",
            self.what,
            Elapsed(self.elapsed())
        ));
    }

    /// Ends the stage as failed, with what went wrong.
    pub fn fail(mut self, detail: impl fmt::Display) {
        self.done = true;
        line(format_args!(
            "✗ {} ({}, {detail})",
            self.what,
            Elapsed(self.elapsed())
        ));
    }

    /// A heartbeat line for a long command writing to `log`.
    pub fn heartbeat(&self, log: &Path) {
        let last = last_line(log).unwrap_or_default();
        line(format_args!(
            "  … {}: {}",
            Elapsed(self.elapsed()),
            truncate(last.trim(), 100)
        ));
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.done {
            line(format_args!(
                "✗ {} (failed after {})",
                self.what,
                Elapsed(self.elapsed())
            ));
        }
    }
}

/// A duration as `4m05s` or `12.3s`.
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs >= 60.0 {
            write!(f, "{}m{:02}s", secs as u64 / 60, secs as u64 % 60)
        } else {
            write!(f, "{secs:.1}s")
        }
    }
}

/// The last `count` lines of a text file (for failure reports).
pub fn tail(path: &Path, count: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn last_line(path: &Path) -> Option<String> {
    tail(path, 1).lines().last().map(str::to_owned)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_naturally() {
        assert_eq!(Elapsed(Duration::from_millis(12_340)).to_string(), "12.3s");
        assert_eq!(Elapsed(Duration::from_secs(245)).to_string(), "4m05s");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&log, 2), "b\nc");
        assert_eq!(tail(&dir.path().join("missing"), 2), "");
    }
}
