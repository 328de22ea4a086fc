//! The initramfs a plan run boots with: one static program, `switch-root`
//! (harness/switch-root), as its `/init`. The kernel runs an initramfs's `/init` instead of
//! the `init=` virtme-ng puts last on the command line; `switch-root` mounts the root vng
//! shares and executes the harness there as the guest's init (harness/src/init.rs). vng still
//! builds the VM (QEMU, the 9p shares, the console and status ports); its guest init, whose
//! systemd-tmpfiles and udev coldplug take 2.5–4.5 s of every TCG boot, does not run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::cmd;

use crate::infra::fsutil::write_atomic;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;

/// The crate and binary of the initramfs's /init.
const PACKAGE: &str = "wtp-switch-root";
const BINARY: &str = "switch-root";

/// Builds `switch-root` linked statically and writes the initramfs around it, at
/// `Paths::initramfs`.
pub fn build(runner: &Runner, paths: &Paths) -> Result<()> {
    let stage = Stage::start("building the guest's initramfs");
    let init = build_switch_root(runner, paths)?;
    let program = std::fs::read(&init).with_context(|| format!("reading {}", init.display()))?;
    let archive = paths.initramfs();
    write_atomically(
        &archive,
        &newc(&[
            Entry::dir("newroot"),
            Entry::dir("proc"),
            Entry::program("init", program),
        ]),
    )?;
    stage.finish("");
    Ok(())
}

/// The initramfs holds no libc, so `switch-root` is linked statically: glibc's static
/// linking wants the target named explicitly, which also keeps these flags off build
/// scripts and off the workspace's other builds (their own target directory).
fn build_switch_root(runner: &Runner, paths: &Paths) -> Result<PathBuf> {
    let sh = &runner.sh;
    let target = host_target(runner)?;
    cmd!(
        sh,
        "cargo build --release --quiet -p {PACKAGE} --target {target}"
    )
    .env(
        "RUSTFLAGS",
        "-C target-feature=+crt-static -C strip=symbols",
    )
    .run()?;
    Ok(paths
        .cargo_target()
        .join(target)
        .join("release")
        .join(BINARY))
}

/// rustc's host triple (`rustc -vV`).
fn host_target(runner: &Runner) -> Result<String> {
    let sh = &runner.sh;
    let version = cmd!(sh, "rustc -vV").read()?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` names no host target")
}

/// Replaces `path` by `bytes` at once: runs side by side may write the same archive.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .context("the initramfs path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(path, bytes)
}

/// One file or directory of a cpio archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn dir(name: &str) -> Self {
        Entry {
            name: name.into(),
            mode: 0o040_755,
            data: Vec::new(),
        }
    }

    pub fn program(name: &str, data: Vec<u8>) -> Self {
        Entry {
            name: name.into(),
            mode: 0o100_755,
            data,
        }
    }
}

/// The archive in the kernel's initramfs format ("newc" cpio: a 110-byte ASCII header per
/// entry, name and data each padded to 4 bytes, a `TRAILER!!!` entry last). Pure.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut archive = Vec::new();
    let trailer = Entry {
        name: "TRAILER!!!".into(),
        mode: 0,
        data: Vec::new(),
    };
    for (index, entry) in entries.iter().chain([&trailer]).enumerate() {
        let links = if entry.mode & 0o040_000 != 0 { 2 } else { 1 };
        let fields = [
            index as u32 + 1, // inode
            entry.mode,
            0, // uid
            0, // gid
            links,
            0, // mtime
            entry.data.len() as u32,
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            entry.name.len() as u32 + 1,
            0, // check
        ];
        archive.extend_from_slice(b"070701");
        for field in fields {
            archive.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        archive.extend_from_slice(entry.name.as_bytes());
        archive.push(0);
        pad(&mut archive);
        archive.extend_from_slice(&entry.data);
        pad(&mut archive);
    }
    archive
}

fn pad(archive: &mut Vec<u8>) {
    archive.resize(archive.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newc_archive_is_what_cpio_reads() {
        let archive = newc(&[
            Entry::dir("proc"),
            Entry::program("init", b"#!x\n".to_vec()),
        ]);
        assert_eq!(archive.len() % 4, 0);
        // The second header: after the first (110 bytes + "proc\0" padded to 116).
        let second = &archive[116..116 + 110];
        assert_eq!(&second[..6], b"070701");
        let field = |header: &[u8], n: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&header[6 + 8 * n..14 + 8 * n]).unwrap(),
                16,
            )
            .unwrap()
        };
        assert_eq!(field(second, 1), 0o100_755, "mode");
        assert_eq!(field(second, 6), 4, "file size");
        assert_eq!(field(second, 11), 5, "name size with its NUL");
        assert_eq!(&archive[116 + 110..116 + 115], b"init\0");
        assert!(archive.windows(10).any(|w| w == b"TRAILER!!!"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cpio");
        std::fs::write(&path, &archive).unwrap();
        // cpio is one of the host tools (host_tools.rs).
        let listing = std::process::Command::new("cpio")
            .args(["-t", "-F"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&listing.stdout), "proc\ninit\n");
    }
}
