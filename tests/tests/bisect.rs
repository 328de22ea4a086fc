//! `cargo xtask bisect` on a real kernel history: a git repository made from the 6.12 source
//! (one commit), then commits on top: unrelated ones, one that changes writable behaviour
//! (bpf_testmod's writable ctx grows from 8 to 12 bytes, so reject_past_end's read at offset
//! 8 now attaches instead of failing with EINVAL; the writable size must equal the struct's,
//! the kernel checks that at build time), and one that does not compile, placed where bisect
//! tests it first. The bisect must name the behaviour commit and skip (125) the broken one,
//! never blame it.
//!
//! The repository lives in a directory of its own under images/ (unique per run, removed at
//! the end, so two runs never share a tree), and its files are hard links into the pristine
//! source cache (edits unlink first, as git's checkout does). The bisect builds into a kernel
//! cache in that directory too: a local tree's cache entry is named after its path, so the
//! shared cache would keep one dead entry per run. The builds compile through the shared
//! ccache (WTP_CCACHE_DIR), and the tree sits in the private cache where a package's source
//! would (`sources/<package>/linux`): its build directory then sees it at the same relative
//! path as the cached 6.12 build sees the pristine tree, so ccache's hashes (relative to the
//! base directory above both) are the same and the cold build compiles from ccache.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xtask::commands::bisect::{self, BisectOptions, Verdict};
use xtask::infra::paths::{Paths, CACHE_ENV, CCACHE_ENV};
use xtask::infra::runner::Runner;
use xtask::kernel::manifest::Catalog;
use xtask::kernel::source;

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Rewrites a file without touching the inode it may share with the source cache.
fn edit(repo: &Path, file: &str, change: impl FnOnce(String) -> String) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, change(text)).unwrap();
}

fn commit(repo: &Path, message: &str, change: impl FnOnce(&Path)) -> String {
    change(repo);
    git(repo, &["commit", "-q", "-a", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

const TESTMOD_HEADER: &str = "tools/testing/selftests/bpf/bpf_testmod/bpf_testmod.h";
const BEHAVIOUR_SUBJECT: &str = "selftests/bpf: grow bpf_testmod's writable ctx";
const NBD_DRIVER: &str = "drivers/block/nbd.c";

fn unrelated(n: usize) -> impl FnOnce(&Path) {
    move |repo: &Path| edit(repo, "README", |t| format!("{t}\nunrelated change {n}\n"))
}

#[test]
fn bisect_names_the_behaviour_commit_and_skips_the_one_that_does_not_build() {
    let paths = Paths::from_env();
    let runner = Runner::new(&paths.root).unwrap();
    let manifest = Catalog::new(&paths.kernels()).load("6.12").unwrap();
    let pristine = source::fetch(&runner, &paths, &manifest.source).unwrap();

    std::fs::create_dir_all(paths.images()).unwrap();
    let work = tempfile::Builder::new()
        .prefix("bisect-test-")
        .tempdir_in(paths.images())
        .unwrap();
    let package_dir = pristine.dir.parent().unwrap().file_name().unwrap();
    let private_cache = work.path().join("cache");
    let repo = private_cache
        .join("sources")
        .join(package_dir)
        .join("linux");
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    let copied = Command::new("cp")
        .arg("-al")
        .arg(&pristine.dir)
        .arg(&repo)
        .status()
        .unwrap();
    assert!(copied.success());
    git(&repo, &["init", "-q"]);
    git(&repo, &["config", "user.email", "bisect-test@wtp.invalid"]);
    git(&repo, &["config", "user.name", "bisect test"]);
    // Debian's packaged tree ignores everything at its top level (.gitignore): add by force.
    git(&repo, &["add", "-A", "--force"]);
    git(&repo, &["commit", "-q", "-m", "Linux 6.12 (Debian source)"]);
    let base = git(&repo, &["rev-parse", "HEAD"]);

    commit(&repo, "README: unrelated change 1", unrelated(1));
    let behaviour = commit(&repo, BEHAVIOUR_SUBJECT, |repo| {
        edit(repo, TESTMOD_HEADER, |t| {
            let grown = "\tbool early_ret;\n\tint val;\n\tint extra;\n};";
            t.replacen("\tbool early_ret;\n\tint val;\n};", grown, 1)
        })
    });
    let broken = commit(&repo, "nbd: a commit that does not compile", |repo| {
        edit(repo, NBD_DRIVER, |t| {
            format!("{t}\n#error this commit does not build\n")
        })
    });
    commit(&repo, "nbd: build again", |repo| {
        edit(repo, NBD_DRIVER, |t| {
            t.replace("\n#error this commit does not build\n", "")
        })
    });
    commit(&repo, "README: unrelated change 2", unrelated(2));
    commit(&repo, "README: unrelated change 3", unrelated(3));
    let head = git(&repo, &["rev-parse", "HEAD"]);

    // The steps are `cargo xtask bisect-step` processes: they read the cache from the
    // environment. This binary's only test sets it before any thread reads it.
    let private = Paths {
        cache: private_cache,
        ..paths.clone()
    };
    std::env::set_var(CACHE_ENV, &private.cache);
    std::env::set_var(CCACHE_ENV, &private.ccache);
    let result = bisect::run(
        &private,
        &BisectOptions {
            tree: repo.clone(),
            good: base,
            bad: head.clone(),
            kernel: "6.12".into(),
            cases: vec!["reject_past_end".into()],
            timeout: Duration::from_secs(300),
        },
    )
    .unwrap_or_else(|error| panic!("bisect failed: {error:#}"));
    eprintln!("{}\n{}", result.transcript, bisect::render(&result));

    assert_eq!(result.first_bad.as_deref(), Some(behaviour.as_str()));
    assert_eq!(result.subject.trim(), BEHAVIOUR_SUBJECT);
    let broken_step = result.steps.iter().find(|s| broken.starts_with(&s.commit));
    assert_eq!(
        broken_step.map(|s| &s.verdict),
        Some(&Verdict::Skip),
        "{:?}",
        result.steps
    );
    assert!(
        result.steps.iter().all(|s| s.verdict != Verdict::Infra),
        "{:?}",
        result.steps
    );
    // The tree is left as it was found.
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    assert!(!repo.join(".git/BISECT_LOG").exists());
}
