//! `cargo xtask vmtest --list`: every case with what it requires, whether each kernel has
//! that, and the first line of its description, without building or booting anything.

use std::path::Path;

use crate::cases::upstream::{self, Family};
use crate::cases::{Case, CaseSet};
use crate::infra::paths::Paths;
use crate::infra::table::Table;
use crate::kernel::manifest::{Catalog, Manifest};

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
    Ok(render(&case_set.cases, &families, &manifests))
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
}
