//! Ctrl-C during a kernel build: xtask stops the build's whole process group, exits 130, and
//! leaves no published cache entry; the next run builds and publishes cleanly.
//!
//! The "kernel" is a fake tree whose Makefile answers the targets xtask uses (allnoconfig with
//! KCONFIG_ALLCONFIG, bzImage/modules, an out-of-tree module build) and whose build sleeps, so
//! the interrupt lands in the middle of `make` without minutes of compiling.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmtests::fake_tree;
use xtask::infra::paths::Paths;

fn xtask(tree: &Path, cache: &Path, build_secs: &str) -> Command {
    let mut command = Command::new(Paths::from_env().cargo_target().join("debug").join("xtask"));
    command
        .args(["vmtest", "--kernel", "6.12", "--kernel-dir"])
        .arg(tree)
        .args(["--timeout", "20"])
        .env("WTP_CACHE_DIR", cache)
        .env("WTP_ACCEL", "tcg")
        .env("WTP_FAKE_BUILD_SECS", build_secs)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn published_entries(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("kernels"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("meta.json").exists())
                .count()
        })
        .unwrap_or(0)
}

fn build_log(cache: &Path) -> Option<std::path::PathBuf> {
    let entries = std::fs::read_dir(cache.join("kernels")).ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("build/build.log"))
        .find(|log| log.exists())
}

#[test]
fn ctrl_c_during_a_build_publishes_nothing_and_the_next_run_builds() {
    vmtests::xtask_binary();
    let work = tempfile::tempdir().unwrap();
    let (tree, cache) = (work.path().join("linux"), work.path().join("cache"));
    fake_tree(&tree);

    // The build sleeps 120 s and a fraction no other process uses: its `sleep` is found by
    // that marker, not by whatever else runs on this machine.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let build_secs = format!("120.{}{nanos:09}", std::process::id());
    let marker = format!("sleep {build_secs}");
    let mut child = xtask(&tree, &cache, &build_secs)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let started = build_log(&cache)
            .and_then(|log| std::fs::read_to_string(log).ok())
            .is_some_and(|text| text.contains("fake build started"));
        // Also seen where the check below looks, so that check can find what it looks for.
        if started && !vmtests::processes_mentioning(&marker).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fake build never started (or its `{marker}` was never seen)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: SIGINT to our own child, as a terminal's Ctrl-C would send.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let interrupted_at = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "xtask's exit status on Ctrl-C");
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(10),
        "stopping took too long"
    );
    assert_eq!(
        published_entries(&cache),
        0,
        "an interrupted build was published"
    );
    let outlived: Vec<String> = vmtests::processes_mentioning(&marker)
        .into_iter()
        .map(vmtests::cmdline)
        .collect();
    assert!(
        outlived.is_empty(),
        "the build's processes outlived xtask: {outlived:?}"
    );

    // The next run resumes: builds, publishes (the fake kernel then fails to boot: exit 2).
    let output = xtask(&tree, &cache, "0").output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        published_entries(&cache),
        1,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
