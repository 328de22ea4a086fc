//! Bad input and broken downloads on the host: each must give a clear error that names the
//! problem and the fix, and leave nothing half-made behind. Nothing here builds a kernel or
//! boots a VM: the config test configures the real 6.12 source tree (fetched into the cache on
//! first use) and stops there, the apt test asks apt, and the bisect step fails at its cache
//! before any build. (The KVM probe, which boots, is tested in kvm_probe.rs.)

use std::path::Path;

use xtask::cases::compile;
use xtask::infra::paths::Paths;
use xtask::infra::runner::Runner;
use xtask::kernel::cache::Entry;
use xtask::kernel::kconfig::{self, Merged};
use xtask::kernel::manifest::{Catalog, SourceSpec};
use xtask::kernel::source;

fn runner() -> Runner {
    Runner::new(&Paths::from_env().root).unwrap()
}

#[test]
fn config_symbols_that_do_not_exist_or_do_not_stick_are_named() {
    let paths = Paths::from_env();
    let runner = runner();
    let manifest = Catalog::new(&paths.kernels()).load("6.12").unwrap();
    let tree = source::fetch(&runner, &paths, &manifest.source).unwrap();
    let build = tempfile::tempdir().unwrap();
    let fragment = "CONFIG_NET=y\n\
                    CONFIG_WTP_NO_SUCH_SYMBOL=y\n\
                    # DEBUG_INFO_BTF needs DEBUG_KERNEL (and DWARF), which this fragment leaves out\n\
                    CONFIG_DEBUG_INFO_BTF=y\n";
    let merged = Merged::from_fragments([kconfig::parse_fragment(fragment, "bad.config").unwrap()]);
    let error = kconfig::configure(&runner, (&tree.dir, build.path()), &paths.ccache, &merged)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("CONFIG_WTP_NO_SUCH_SYMBOL=y (bad.config:2)"),
        "{error}"
    );
    assert!(error.contains("no such symbol in this kernel"), "{error}");
    assert!(
        error.contains("CONFIG_DEBUG_INFO_BTF=y (bad.config:4)"),
        "{error}"
    );
    assert!(error.contains("its dependencies are not met"), "{error}");
    assert!(
        !error.contains("CONFIG_NET="),
        "a symbol that stuck is not blamed: {error}"
    );
}

/// A minimal "kernel tree" tarball (what `source` checks for) and its SHA-256.
fn tiny_tarball(dir: &Path) -> (std::path::PathBuf, String) {
    let tree = dir.join("linux-tiny");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("Makefile"), "all:\n").unwrap();
    std::fs::write(tree.join("Kconfig"), "config X\n\tbool\n").unwrap();
    let tarball = dir.join("linux-tiny.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .arg("linux-tiny")
        .status()
        .unwrap();
    assert!(status.success());
    let sha = {
        use std::process::Command;
        let out = Command::new("sha256sum").arg(&tarball).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    (tarball, sha)
}

#[test]
fn a_corrupt_download_is_discarded_and_a_retry_works() {
    let work = tempfile::tempdir().unwrap();
    let (tarball, sha256) = tiny_tarball(work.path());
    let good = std::fs::read(&tarball).unwrap();
    let mut paths = Paths::from_env();
    paths.cache = work.path().join("cache");
    let spec = SourceSpec::Tarball {
        url: format!("file://{}", tarball.display()),
        sha256: sha256.clone(),
    };

    std::fs::write(&tarball, &good[..good.len() / 2]).unwrap();
    let error = format!("{:#}", source::fetch(&runner(), &paths, &spec).unwrap_err());
    assert!(
        error.contains("SHA-256") && error.contains("truncated or corrupt"),
        "{error}"
    );
    let entries: Vec<_> = std::fs::read_dir(paths.source_cache())
        .unwrap()
        .flatten()
        .collect();
    for entry in &entries {
        assert!(
            !entry.path().join("meta.json").exists(),
            "a corrupt download was published"
        );
    }

    std::fs::write(&tarball, &good).unwrap();
    let tree = source::fetch(&runner(), &paths, &spec).unwrap();
    assert!(tree.dir.join("Kconfig").is_file());
    assert_eq!(tree.id, format!("tarball:{sha256}"));
}

#[test]
fn a_program_that_does_not_compile_fails_alone_with_clangs_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bpf.c");
    let bad = dir.path().join("bad.bpf.c");
    std::fs::write(&good, "int x;\n").unwrap();
    std::fs::write(&bad, "int x = ;\n").unwrap();
    let runner = runner();
    let clang = compile::Clang::new(&runner).unwrap();
    let compiled = clang
        .compile_all(&[good.clone(), bad.clone()], &dir.path().join("out"))
        .unwrap();
    assert!(compiled[&good].is_ok());
    let message = compiled[&bad].as_ref().unwrap_err();
    assert!(message.contains("bad.bpf.c:1:9: error"), "{message}");
}

#[test]
fn an_unusable_cache_directory_is_named_with_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let blocker = work.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    // A directory below a regular file cannot be created, even by root.
    let error = match Entry::lock(&blocker.join("kernels"), &blocker.join("locks"), "x") {
        Ok(_) => panic!("a cache below a file was accepted"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("a-file/kernels"), "{error}");
    assert!(error.contains("WTP_CACHE_DIR"), "{error}");
}

#[test]
fn a_package_version_apt_does_not_have_lists_the_ones_it_has() {
    let into = tempfile::tempdir().unwrap();
    let error = xtask::infra::apt::download(
        &runner(),
        &[],
        "linux-source-6.12",
        "0.0-wtp-bogus",
        into.path(),
        "pick one",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("apt-get download linux-source-6.12=0.0-wtp-bogus failed"),
        "{error}"
    );
    assert!(
        error.contains("versions apt knows of linux-source-6.12:"),
        "{error}"
    );
    assert!(error.contains("6.12.117-1~deb12u1"), "{error}");
    assert!(error.ends_with("fix: pick one"), "{error}");
}

/// A bisect step whose cache cannot be used says nothing about the commit: it must abort the
/// bisect (128, after its one retry), never skip the commit (125) as if it did not build.
#[test]
fn a_bisect_step_with_an_unusable_cache_aborts_the_bisect() {
    let xtask = vmtests::xtask_binary();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("linux");
    vmtests::fake_tree(&tree);
    let blocker = work.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let steps = work.path().join("steps.jsonl");
    let output = std::process::Command::new(xtask)
        .args([
            "bisect-step",
            "--kernel",
            "6.12",
            "--timeout",
            "20",
            "--kernel-dir",
        ])
        .arg(&tree)
        .arg("--steps-file")
        .arg(&steps)
        .env("WTP_CACHE_DIR", blocker.join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "{stderr}");
    assert!(stderr.contains("retrying once"), "{stderr}");
    let record = std::fs::read_to_string(&steps).unwrap();
    assert!(record.contains(r#""verdict":"infra""#), "{record}");
    assert!(
        record.contains("using the kernel cache failed") && record.contains("WTP_CACHE_DIR"),
        "{record}"
    );
}
