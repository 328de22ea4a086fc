//! The helpers a kernel tree defines, read from its uapi header: the list the guest probes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use protocol::HelperProbe;

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
            Some(id) => id
                .parse()
                .with_context(|| format!("helper `{name}` has id `{id}`"))?,
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
    let text = std::fs::read_to_string(&header)
        .with_context(|| format!("reading {}", header.display()))?;
    parse_func_mapper(&text).with_context(|| format!("in {}", header.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPER_5_10: &str = include_str!("../../testdata/uapi-bpf-5.10-func-mapper.h");
    const MAPPER_6_12: &str = include_str!("../../testdata/uapi-bpf-6.12-func-mapper.h");

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
}
