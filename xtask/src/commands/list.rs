//! `cargo xtask vmtest --list`: every case with what it requires, whether each kernel has
//! that, and the first line of its description, without building or booting anything; then
//! upstream's writable tests of each kernel whose tree is fetched, discovered as a run
//! discovers them (`upstream_found::discover`: clang's objects are kept by content, the
//! extraction programs are compiled with `cc`, about a second per tree; no VM).

use std::collections::BTreeMap;
use std::path::Path;

use crate::cases::compile::Clang;
use crate::cases::upstream::{self, Family};
use crate::cases::upstream_found::{self, FoundTest};
use crate::cases::{Case, CaseSet};
use crate::infra::paths::Paths;
use crate::infra::runner::Runner;
use crate::infra::table::Table;
use crate::kernel::manifest::{Catalog, Manifest};
use crate::kernel::{source, vmlinux_h};

/// Upstream's tests per kernel: `None` where the kernel's tree is not fetched yet.
pub type Upstream = BTreeMap<String, Option<Vec<FoundTest>>>;

/// `vmtest --list`: the cases and the kernels (all when none is named), nothing built.
pub fn list(paths: &Paths, kernels: &[String], cases: Option<&Path>) -> anyhow::Result<String> {
    let catalog = Catalog::new(&paths.kernels());
    let all = ["all".to_owned()];
    let names = catalog.select(if kernels.is_empty() { &all } else { kernels })?;
    let manifests = names
        .iter()
        .map(|n| catalog.load(n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (case_set, _) = CaseSet::for_run(paths, cases)?;
    let families = match cases {
        None => upstream::families(&paths.upstream_families(), &catalog.vocabulary()?)?,
        Some(_) => Vec::new(),
    };
    let found = match families.is_empty() {
        true => Upstream::new(),
        false => discover(paths, &families, &manifests)?,
    };
    let mut text = render(&case_set.cases, &families, &manifests);
    if !found.is_empty() {
        text.push('\n');
        text.push_str(&render_upstream(&found, &manifests));
    }
    Ok(text)
}

/// Upstream's tests of each kernel whose tree is fetched (nothing is fetched here).
fn discover(
    paths: &Paths,
    families: &[Family],
    manifests: &[Manifest],
) -> anyhow::Result<Upstream> {
    let runner = Runner::new(&paths.root)?;
    let clang = Clang::new(&runner)?;
    let mut found = Upstream::new();
    for manifest in manifests {
        let tests = match source::fetched(paths, &manifest.source) {
            Some(tree) => {
                // Apart from a run's objects: a run may be compiling them at this moment.
                let out_dir = paths.bpf_objects(&format!("upstream-list-{}", manifest.name));
                let catalog = Catalog::new(&paths.kernels());
                let headers = vmlinux_h::of_built(&runner, paths, &catalog, manifest, &tree)?;
                Some(upstream_found::discover(
                    &clang,
                    &tree.dir,
                    families,
                    &out_dir,
                    headers.as_ref(),
                )?)
            }
            None => None,
        };
        found.insert(manifest.name.clone(), tests);
    }
    Ok(found)
}

/// Upstream's tests × kernels: `yes` (runs there), `no` (the kernel lacks what it requires),
/// `not runnable` (as shipped; `docs/upstream.md` says why), `-` (not in that tree), `?`
/// (the tree is not fetched yet: a run fetches it).
pub fn render_upstream(found: &Upstream, manifests: &[Manifest]) -> String {
    let header = ["upstream test", "form"]
        .into_iter()
        .chain(manifests.iter().map(|m| m.name.as_str()))
        .chain(["upstream expects"]);
    let mut table = Table::new(header);
    let mut names: Vec<&FoundTest> = Vec::new();
    for test in found.values().flatten().flatten() {
        if !names.iter().any(|t| t.name == test.name) {
            names.push(test);
        }
    }
    for test in names {
        let cells = manifests.iter().map(|manifest| {
            let Some(tests) = found.get(&manifest.name) else {
                return "-".to_owned();
            };
            let Some(tests) = tests else {
                return "?".to_owned();
            };
            match tests.iter().find(|t| t.name == test.name) {
                None => "-",
                Some(t) if t.not_runnable.is_some() => "not runnable",
                Some(t) if t.requires.iter().all(|r| manifest.features.contains(r)) => "yes",
                Some(_) => "no",
            }
            .to_owned()
        });
        let form = format!("{} {}", test.form.words(), test.file);
        table.row(
            [test.name.clone(), form]
                .into_iter()
                .chain(cells)
                .chain([test.expectation()]),
        );
    }
    let fetched = found.values().filter(|tests| tests.is_some()).count();
    let mut text = table.render();
    if fetched < found.len() {
        text.push_str("? = the kernel's tree is not fetched yet (a run fetches it)\n");
    }
    text
}

/// `vmtest --list`: every case with what it requires, whether each kernel has that, and the
/// first line of its description; upstream's families last (their programs come from each
/// kernel's tree, so they are known only once it is fetched). Nothing is built or booted.
pub fn render(cases: &[Case], families: &[Family], manifests: &[Manifest]) -> String {
    let header = ["case", "requires"]
        .into_iter()
        .chain(manifests.iter().map(|m| m.name.as_str()))
        .chain(["description"]);
    let mut table = Table::new(header);
    // A family's programs exist on a kernel only if its tree has the file: "tree" says so.
    let rows = cases
        .iter()
        .map(|c| (c.name.clone(), &c.requires, &c.description, "yes"))
        .chain(families.iter().map(|f| {
            let name = format!("{}{} (family)", crate::cases::UPSTREAM_PREFIX, f.name);
            (name, &f.requires, &f.description, "tree")
        }));
    for (name, requires, description, present) in rows {
        let needs = match requires.is_empty() {
            true => "-".to_owned(),
            false => requires.join(", "),
        };
        let has = manifests.iter().map(|manifest| {
            let has = requires.iter().all(|r| manifest.features.contains(r));
            if has { present } else { "no" }.to_owned()
        });
        let first_line = description.lines().next().unwrap_or("").to_owned();
        table.row([name, needs].into_iter().chain(has).chain([first_line]));
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{case, manifest};

    #[test]
    fn the_case_list_says_which_kernel_has_what_each_case_requires() {
        let mut old = manifest(&["nbd"]);
        old.name = "5.10".into();
        let mut testmod = case("bare", &["bpf_testmod"]);
        testmod.description = "First line.\nSecond line.".into();
        let family = Family {
            dir: Default::default(),
            name: "verifier_raw_tp_writable".into(),
            description: "Upstream's programs".into(),
            source: "progs/v.c".into(),
            includes: vec![],
            other_forms: vec![],
            requires: vec![],
            vmlinux_h: false,
            writable_only: false,
            names_with_file: false,
            checks: vec![],
            known_compile_errors: vec![],
        };
        let text = render(
            &[testmod, case("plain", &[])],
            &[family],
            &[old, manifest(&["bpf_testmod"])],
        );
        let expected = "\
case                                        requires     5.10  6.12  description
bare                                        bpf_testmod  no    yes   First line.
plain                                       -            yes   yes
upstream.verifier_raw_tp_writable (family)  -            tree  tree  Upstream's programs
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn upstream_tests_are_listed_per_tree() {
        use crate::cases::upstream::Form;
        use crate::cases::Expect;
        let test = |name: &str, not_runnable: Option<&str>| FoundTest {
            name: name.into(),
            form: Form::ProgTests,
            file: "prog_tests/x.c".into(),
            requires: vec!["bpf_testmod".into()],
            load: Expect::Ok,
            log_contains: vec![],
            log_sequence: Vec::new(),
            log_level: None,
            steps: vec![],
            not_runnable: not_runnable.map(Into::into),
            expects: None,
        };
        let mut old = manifest(&["nbd"]);
        old.name = "5.10".into();
        let mut new = manifest(&["bpf_testmod"]);
        new.name = "7.2".into();
        let mut middle = manifest(&[]);
        middle.name = "6.1".into();
        let found = Upstream::from([
            ("5.10".to_owned(), Some(vec![test("upstream.x.a", None)])),
            ("6.1".to_owned(), None),
            (
                "7.2".to_owned(),
                Some(vec![
                    test("upstream.x.a", None),
                    test("upstream.x.b", Some("why")),
                ]),
            ),
        ]);
        let text = render_upstream(&found, &[old, middle, new]);
        let expected = "\
upstream test  form                             5.10  6.1  7.2           upstream expects
upstream.x.a   prog_tests array prog_tests/x.c  no    ?    yes           load ok
upstream.x.b   prog_tests array prog_tests/x.c  -     ?    not runnable  load ok
? = the kernel's tree is not fetched yet (a run fetches it)
";
        assert_eq!(text, expected, "\n{text}");
    }
}
