//! xtask's folders are floors (see `xtask/src/lib.rs` and ARCHITECTURE.md): a module uses
//! only modules of its own floor or the floors below, and no set of modules uses each other in
//! a circle. Read from the sources, so a new `use` that breaks either rule fails here. Test
//! code (`#[cfg(test)]` tails and `test_support.rs`, the shared fixtures) is left out: fixtures
//! may build values of any floor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use xtask::infra::paths::Paths;

const FLOORS: &[&str] = &[
    "infra", "kernel", "cases", "guest", "judge", "report", "commands", "cli",
];

/// Module path (`kernel::build`) → the modules its non-test code names through `crate::`.
fn uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = BTreeMap::new();
    collect(src, src, &mut files);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let path = Regex::new(r"crate::((?:[a-z_]+::)*[a-z_]+)").unwrap();
    let group = Regex::new(r"crate::((?:[a-z_]+::)*)\{([^}]*)\}").unwrap();
    let comment = Regex::new(r"//.*").unwrap();
    let mut edges = BTreeMap::new();
    for (module, text) in &files {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code = comment.replace_all(code, "");
        let mut named = BTreeSet::new();
        for found in path.captures_iter(&code) {
            named.extend(longest_module(&found[1], &modules));
        }
        for found in group.captures_iter(&code) {
            for item in found[2].split(',') {
                let head = item.trim().split([' ', ':']).next().unwrap_or_default();
                named.extend(longest_module(&format!("{}{head}", &found[1]), &modules));
            }
        }
        named.remove(module);
        edges.insert(module.clone(), named);
    }
    edges
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|last| last == "mod") {
            parts.pop();
        }
        let module = parts.join("::");
        if ["lib", "main", "test_support"].contains(&module.as_str()) {
            continue;
        }
        files.insert(module, std::fs::read_to_string(&path).unwrap());
    }
}

fn longest_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

fn floor(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    FLOORS
        .iter()
        .position(|f| *f == top)
        .unwrap_or_else(|| panic!("module {module} is on no floor: add its folder to FLOORS"))
}

/// The modules reachable from `start` through uses, `start` excluded unless it is on a circle.
fn reachable(start: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = edges[start].iter().map(String::as_str).collect();
    while let Some(next) = todo.pop() {
        if seen.insert(next.to_owned()) {
            todo.extend(edges.get(next).into_iter().flatten().map(String::as_str));
        }
    }
    seen
}

#[test]
fn no_module_uses_a_floor_above_its_own() {
    let edges = uses(&Paths::from_env().root.join("xtask/src"));
    let upward: Vec<String> = edges
        .iter()
        .flat_map(|(from, to)| to.iter().map(move |to| (from, to)))
        .filter(|(from, to)| floor(to) > floor(from))
        .map(|(from, to)| format!("{from} uses {to}"))
        .collect();
    assert!(upward.is_empty(), "uses that go up a floor: {upward:#?}");
}

#[test]
fn no_modules_use_each_other_in_a_circle() {
    let edges = uses(&Paths::from_env().root.join("xtask/src"));
    assert!(
        edges.len() > 30,
        "the walk found too few modules: {edges:?}"
    );
    let circular: Vec<&String> = edges
        .keys()
        .filter(|module| reachable(module, &edges).contains(*module))
        .collect();
    assert!(
        circular.is_empty(),
        "modules on an import circle: {circular:?}"
    );
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("kernel::build", &["kernel::cache"][..]),
        ("kernel::cache", &["kernel::build"][..]),
        ("infra::paths", &[][..]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.iter().map(|t| (*t).to_owned()).collect()))
    .collect();
    assert!(reachable("kernel::build", &edges).contains("kernel::build"));
    assert!(!reachable("infra::paths", &edges).contains("infra::paths"));
}
