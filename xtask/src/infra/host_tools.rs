//! The host tools a run needs. Missing ones are installed when we are root (apt-get, pip);
//! otherwise the run stops with the exact command that installs them.

use std::path::Path;

use anyhow::{bail, Result};
use xshell::cmd;

use crate::infra::progress::Stage;
use crate::infra::runner::Runner;

/// virtme-ng release this project is tested with (PyPI).
pub const VIRTME_NG: &str = "virtme-ng==1.42";

/// How to tell that a requirement is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// An executable on PATH.
    Binary(&'static str),
    /// A file (headers of -dev packages).
    File(&'static str),
}

/// A Debian package and how to see that it is installed.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub package: &'static str,
    pub probe: Probe,
}

const fn binary(package: &'static str, name: &'static str) -> Requirement {
    Requirement {
        package,
        probe: Probe::Binary(name),
    }
}

const fn file(package: &'static str, path: &'static str) -> Requirement {
    Requirement {
        package,
        probe: Probe::File(path),
    }
}

pub const DEBIAN_PACKAGES: &[Requirement] = &[
    binary("qemu-system-x86", "qemu-system-x86_64"),
    binary("clang", "clang"),
    binary("llvm", "llvm-objdump"),
    binary("gcc", "gcc"),
    binary("make", "make"),
    binary("flex", "flex"),
    binary("bison", "bison"),
    binary("bc", "bc"),
    // Every kernel make compiles through ccache (kernel/compiler.rs).
    binary("ccache", "ccache"),
    binary("dwarves", "pahole"),
    binary("cpio", "cpio"),
    binary("xz-utils", "xz"),
    // kernels/minimal.config compresses the kernel image with LZ4.
    binary("lz4", "lz4"),
    binary("curl", "curl"),
    binary("udev", "udevadm"),
    // `vmtest --shell` puts bpftool in the guest (the host's root filesystem).
    binary("bpftool", "bpftool"),
    // virtme-ng runs depmod on the kernel's module directory before every boot.
    binary("kmod", "depmod"),
    // libelf, zlib and pkg-config: the harness builds libbpf from source (libbpf-sys, vendored).
    file("libelf-dev", "/usr/include/libelf.h"),
    file("zlib1g-dev", "/usr/include/zlib.h"),
    binary("pkg-config", "pkg-config"),
    file("libssl-dev", "/usr/include/openssl/ssl.h"),
    // The initramfs's /init (harness/switch-root) is linked statically against glibc.
    file("libc6-dev", "/usr/lib/x86_64-linux-gnu/libc.a"),
    file("libbpf-dev", "/usr/include/bpf/bpf_helpers.h"),
    file("linux-libc-dev", "/usr/include/linux/bpf.h"),
];

pub fn ensure(runner: &Runner) -> Result<()> {
    let mut missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|r| !is_met(r.probe))
        .map(|r| r.package)
        .collect();
    let need_vng = !is_met(Probe::Binary("vng"));
    let sh = &runner.sh;
    if need_vng
        && cmd!(sh, "python3 -m pip --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_err()
    {
        missing.push("python3-pip");
    }
    if missing.is_empty() && !need_vng {
        return Ok(());
    }
    if !is_root() {
        bail!("{}", install_hint(&missing, need_vng));
    }
    if !missing.is_empty() {
        install_packages(runner, &missing)?;
    }
    if need_vng {
        install_virtme_ng(runner)?;
    }
    Ok(())
}

/// What a user who is not root must run to get the missing tools.
pub fn install_hint(missing: &[&str], need_vng: bool) -> String {
    let mut steps = Vec::new();
    if !missing.is_empty() {
        steps.push(format!(
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
            missing.join(" ")
        ));
    }
    if need_vng {
        // Debian's and Ubuntu's Python refuse a plain `pip install` (PEP 668): pipx works
        // there, and pip does with --user --break-system-packages.
        steps.push(format!(
            "pipx install {VIRTME_NG}    # or: python3 -m pip install --user --break-system-packages {VIRTME_NG}"
        ));
    }
    format!(
        "missing host tools; install them with:\n  {}",
        steps.join("\n  ")
    )
}

fn install_packages(runner: &Runner, packages: &[&str]) -> Result<()> {
    let stage = Stage::start(format!("installing {}", packages.join(" ")));
    let sh = &runner.sh;
    let _frontend = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "apt-get update -q")
        .quiet()
        .ignore_stdout()
        .run()?;
    cmd!(
        sh,
        "apt-get install -y -q --no-install-recommends {packages...}"
    )
    .quiet()
    .ignore_stdout()
    .run()?;
    stage.finish("");
    Ok(())
}

fn install_virtme_ng(runner: &Runner) -> Result<()> {
    let stage = Stage::start(format!("installing {VIRTME_NG} (pip)"));
    let sh = &runner.sh;
    // Debian's and Ubuntu's system Python refuse pip installs (PEP 668) unless told: that
    // refusal is expected, so only the outcome is shown, and pip's output only if both fail.
    let plain = cmd!(
        sh,
        "python3 -m pip install -q --root-user-action=ignore {VIRTME_NG}"
    )
    .quiet()
    .ignore_status()
    .output()?;
    if !plain.status.success() {
        let told = cmd!(
            sh,
            "python3 -m pip install -q --root-user-action=ignore --break-system-packages {VIRTME_NG}"
        )
        .quiet()
        .ignore_status()
        .output()?;
        if !told.status.success() {
            bail!(
                "pip could not install {VIRTME_NG}:\n{}",
                String::from_utf8_lossy(&told.stderr).trim_end()
            );
        }
    }
    if !is_met(Probe::Binary("vng")) {
        bail!("{VIRTME_NG} installed but `vng` is not on PATH; add pip's script directory (e.g. ~/.local/bin) to PATH");
    }
    stage.finish("");
    Ok(())
}

fn is_met(probe: Probe) -> bool {
    match probe {
        Probe::Binary(name) => find_on_path(name),
        Probe::File(path) => Path::new(path).exists(),
    }
}

fn find_on_path(name: &str) -> bool {
    // depmod and friends live in sbin, which is not on every user's PATH but is where vng
    // finds them.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .any(|dir| dir.join(name).is_file())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_see_what_is_there_and_what_is_not() {
        assert!(is_met(Probe::Binary("sh")));
        assert!(!is_met(Probe::Binary("no-such-tool-wtp")));
        assert!(is_met(Probe::File("/")));
        assert!(!is_met(Probe::File("/no/such/header.h")));
    }

    #[test]
    fn the_hint_is_the_exact_commands() {
        assert_eq!(
            install_hint(&["clang", "dwarves"], true),
            "missing host tools; install them with:\n  \
             sudo apt-get update && sudo apt-get install -y --no-install-recommends clang dwarves\n  \
             pipx install virtme-ng==1.42    # or: python3 -m pip install --user --break-system-packages virtme-ng==1.42"
        );
        assert!(!install_hint(&[], true).contains("apt-get"));
    }

    #[test]
    fn every_requirement_names_a_package() {
        for requirement in DEBIAN_PACKAGES {
            assert!(!requirement.package.is_empty());
        }
    }
}
