//! `cargo xtask vmtest --list`: every case with what it requires, whether each kernel has
//! that, and the first line of its description, without building or booting anything.

use std::path::Path;

use crate::cases::upstream::{self, Family};
use crate::cases::{Case, CaseSet};
use crate::infra::paths::Paths;
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
    let mut out = format!("{:<34} {:<28}", "case", "requires");
    for manifest in manifests {
        out.push_str(&format!(" {:<6}", manifest.name));
    }
    out.push_str(" description\n");
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
        out.push_str(&format!("{name:<34} {needs:<28}"));
        for manifest in manifests {
            let has = requires.iter().all(|r| manifest.features.contains(r));
            out.push_str(&format!(" {:<6}", if has { present } else { "no" }));
        }
        out.push_str(&format!(" {}\n", description.lines().next().unwrap_or("")));
    }
    out
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
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("5.10") && lines[0].contains("6.12"),
            "{text}"
        );
        assert!(lines[1].starts_with("bare "), "{text}");
        assert!(lines[1].contains("bpf_testmod"), "{text}");
        assert!(lines[1].contains(" no     yes    First line."), "{text}");
        assert!(!text.contains("Second line"), "{text}");
        assert!(lines[2].contains(" yes    yes "), "{text}");
        assert!(
            lines[3].starts_with("upstream.verifier_raw_tp_writable (family)"),
            "{text}"
        );
        assert!(lines[3].contains(" tree   tree "), "{text}");
    }
}
