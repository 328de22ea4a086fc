//! Discovery must find, in each kernel's tree, every writable test upstream ships that it
//! found before (`guest-programs/upstream/found.toml`): a renamed file, a moved array or a
//! broken extraction fails here instead of quietly shrinking what runs. Reads the trees in the
//! source cache (no VM, nothing fetched or built); a kernel whose tree is not fetched, or which
//! is not built (its files that include vmlinux.h need the header generated from its BTF), is
//! skipped, and says so.

use std::collections::BTreeMap;

use xtask::cases::compile::Clang;
use xtask::cases::upstream;
use xtask::cases::upstream_found::{self, Record};
use xtask::infra::paths::Paths;
use xtask::infra::runner::Runner;
use xtask::kernel::manifest::Catalog;
use xtask::kernel::{source, vmlinux_h};

#[test]
fn discovery_finds_every_recorded_upstream_test() {
    let paths = Paths::from_env();
    let record = Record::read(&paths.upstream_families().join(upstream_found::RECORD)).unwrap();
    let catalog = Catalog::new(&paths.kernels());
    let families =
        upstream::families(&paths.upstream_families(), &catalog.vocabulary().unwrap()).unwrap();
    let runner = Runner::new(&paths.root).unwrap();
    let clang = Clang::new(&runner).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (kernel, recorded) in &record.kernel {
        let manifest = catalog.load(kernel).unwrap();
        let Some(tree) = source::fetched(&paths, &manifest.source) else {
            eprintln!("{kernel}: tree not fetched, not checked");
            continue;
        };
        let Some(headers) =
            vmlinux_h::of_built(&runner, &paths, &catalog, &manifest, &tree).unwrap()
        else {
            eprintln!("{kernel}: not built, not checked");
            continue;
        };
        let out_dir = scratch.path().join(kernel);
        let found =
            upstream_found::discover(&clang, &tree.dir, &families, &out_dir, Some(&headers))
                .unwrap();
        let lost = record.lost(kernel, &found);
        if !lost.is_empty() || found.len() < recorded.test.len() {
            problems.push(format!(
                "{kernel}: {} found, {} recorded; lost: {lost:?}",
                found.len(),
                recorded.test.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The record itself: per kernel, how many files of each form hold writable tests (5.10: one
/// test_verifier file and two prog_tests; 6.1: the same and test_module_attach.c; 6.12:
/// verifier_raw_tp_writable.c, test_module_attach.c, linked_list_fail.c,
/// verifier_global_subprogs.c and two prog_tests; 7.2: those and verifier_ctx.c). A record
/// rewritten smaller fails here too.
#[test]
fn the_record_holds_each_trees_files() {
    let paths = Paths::from_env();
    let record = Record::read(&paths.upstream_families().join(upstream_found::RECORD)).unwrap();
    let files = |kernel: &str| {
        let mut by_form: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for test in &record.kernel[kernel].test {
            by_form
                .entry(test.form.words())
                .or_default()
                .insert(&test.file);
        }
        by_form
            .into_iter()
            .map(|(form, files)| (form, files.len()))
            .collect::<Vec<_>>()
    };
    let minimum: [(&str, &[(&str, usize)]); 4] = [
        (
            "5.10",
            &[("prog_tests array", 2), ("test_verifier array", 1)],
        ),
        (
            "6.1",
            &[
                ("annotated C", 1),
                ("prog_tests array", 2),
                ("test_verifier array", 1),
            ],
        ),
        ("6.12", &[("annotated C", 4), ("prog_tests array", 2)]),
        ("7.2", &[("annotated C", 5), ("prog_tests array", 2)]),
    ];
    for (kernel, expected) in minimum {
        let found = files(kernel);
        for (form, count) in expected {
            let have = found.iter().find(|(f, _)| f == form).map_or(0, |(_, n)| *n);
            assert!(
                have >= *count,
                "{kernel}: {have} {form} files, at least {count} recorded before: {found:?}"
            );
        }
    }
}
