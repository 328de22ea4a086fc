//! BPF helper availability, measured rather than claimed: the helper list is read from the
//! tested tree's own `include/uapi/linux/bpf.h` (`__BPF_FUNC_MAPPER` up to 6.0, with ids
//! implied by order; `___BPF_FUNC_MAPPER` from 6.1, with explicit ids), the guest loads a
//! minimal program calling each helper for each program type, and the verifier's answer is
//! classified here.

use std::path::Path;

use anyhow::{bail, Context, Result};
use protocol::HelperProbe;
use serde::Serialize;

/// Where the helper list lives in a kernel tree.
pub const UAPI_HEADER: &str = "include/uapi/linux/bpf.h";

/// Every helper of the header, `unspec` (id 0) left out.
pub fn parse_func_mapper(header: &str) -> Result<Vec<HelperProbe>> {
    let start = header
        .find("#define ___BPF_FUNC_MAPPER(FN, ctx...)")
        .or_else(|| header.find("#define __BPF_FUNC_MAPPER(FN)"))
        .context("no __BPF_FUNC_MAPPER / ___BPF_FUNC_MAPPER definition in the header")?;
    let mut helpers = Vec::new();
    // The macro body is every continuation line after the #define.
    for (index, line) in header[start..]
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.trim().strip_prefix("FN("))
        .enumerate()
    {
        let inside = line.split(')').next().unwrap_or_default();
        let mut parts = inside.split(',').map(str::trim);
        let name = parts.next().unwrap_or_default().to_owned();
        let id = match parts.next() {
            Some(id) => id.parse().with_context(|| format!("helper `{name}` has id `{id}`"))?,
            None => index as u32,
        };
        if name != "unspec" {
            helpers.push(HelperProbe { id, name });
        }
    }
    if helpers.is_empty() {
        bail!("the helper mapper macro has no FN(...) entries");
    }
    Ok(helpers)
}

/// The helpers of a kernel tree.
pub fn of_tree(tree: &Path) -> Result<Vec<HelperProbe>> {
    let header = tree.join(UAPI_HEADER);
    let text = std::fs::read_to_string(&header).with_context(|| format!("reading {}", header.display()))?;
    parse_func_mapper(&text).with_context(|| format!("in {}", header.display()))
}

/// What the verifier said about a helper for one program type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// The verifier knows the helper for this type (whatever else it complained about).
    Available,
    /// Unknown to the kernel, or not allowed for this program type.
    NotAvailable,
}

/// Verifier messages that mean "this type cannot call this helper".
const NOT_AVAILABLE: &[&str] = &["unknown func", "invalid func", "program of this type cannot use helper"];

/// Classifies one probe from the load's errno and the verifier log.
pub fn classify(loaded: bool, verifier_log: &str) -> Availability {
    if !loaded && NOT_AVAILABLE.iter().any(|m| verifier_log.contains(m)) {
        Availability::NotAvailable
    } else {
        Availability::Available
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const MAPPER_5_10: &str = include_str!("../testdata/uapi-bpf-5.10-func-mapper.h");
    const MAPPER_6_12: &str = include_str!("../testdata/uapi-bpf-6.12-func-mapper.h");

    fn find<'a>(helpers: &'a [HelperProbe], name: &str) -> &'a HelperProbe {
        helpers.iter().find(|h| h.name == name).unwrap()
    }

    #[test]
    fn ids_are_implied_by_order_in_5_10() {
        let helpers = parse_func_mapper(MAPPER_5_10).unwrap();
        assert_eq!(find(&helpers, "map_lookup_elem").id, 1);
        assert_eq!(find(&helpers, "trace_printk").id, 6);
        assert_eq!(helpers.last().unwrap().name, "redirect_peer");
        assert_eq!(helpers.last().unwrap().id, helpers.len() as u32);
    }

    #[test]
    fn ids_are_explicit_from_6_1() {
        let helpers = parse_func_mapper(MAPPER_6_12).unwrap();
        assert_eq!(find(&helpers, "map_lookup_elem").id, 1);
        assert_eq!(find(&helpers, "trace_printk").id, 6);
        assert_eq!(find(&helpers, "cgrp_storage_delete").id, 211);
        assert_eq!(helpers.len(), 211);
        assert!(helpers.iter().all(|h| h.name != "unspec"));
    }

    #[test]
    fn a_header_without_the_mapper_is_an_error() {
        assert!(parse_func_mapper("enum bpf_func_id { BPF_FUNC_unspec };").is_err());
    }

    #[rstest]
    #[case(false, "0: (85) call bpf_xyz#300\nunknown func bpf_xyz#300", Availability::NotAvailable)]
    #[case(false, "invalid func unknown#300", Availability::NotAvailable)]
    #[case(false, "program of this type cannot use helper bpf_get_socket_cookie#46", Availability::NotAvailable)]
    #[case(false, "R1 type=scalar expected=map_ptr", Availability::Available)]
    #[case(false, "cannot call GPL-restricted function from non-GPL compatible program", Availability::Available)]
    #[case(true, "processed 7 insns", Availability::Available)]
    fn verifier_answers_are_classified(#[case] loaded: bool, #[case] log: &str, #[case] expected: Availability) {
        assert_eq!(classify(loaded, log), expected);
    }
}
