//! Verifier-log normalisation before snapshotting. Only what varies from run to run on the
//! same kernel is redacted; what varies between kernels stays, because snapshots are per kernel.
//! Each rule is one regex and its replacement, documented by its tests.

use std::sync::LazyLock;

use regex::Regex;

/// (what varies, pattern, replacement)
const RULES: &[(&str, &str, &str)] = &[
    // Map ids are allocated globally, so they depend on what ran before.
    ("map ids", r"map\[id:\d+\]", "map[id:N]"),
    // Kernel virtual addresses (map values, kallsyms) move between boots: 16 hex digits in the
    // upper half, 0xffff... with 4-level paging, 0xff11... for 7.2's 5-level direct map.
    (
        "kernel addresses",
        r"\b0xff[0-9a-f]{14}\b",
        "0x<kernel address>",
    ),
    // Times are measured, not computed (only printed with BPF_LOG_STATS, redacted anyway).
    (
        "verification time",
        r"verification time \d+ usec",
        "verification time N usec",
    ),
];

static COMPILED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|(_, pattern, replacement)| {
            (Regex::new(pattern).expect("rule compiles"), *replacement)
        })
        .collect()
});

/// The log with every rule applied and trailing blanks removed from each line.
pub fn verifier_log(log: &str) -> String {
    let mut text = log.to_owned();
    for (regex, replacement) in COMPILED.iter() {
        text = regex.replace_all(&text, *replacement).into_owned();
    }
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_owned()
}

/// Replaces every occurrence of a host path (the workspace, the cache) by a placeholder, so
/// messages that quote paths are the same on every machine.
pub fn host_paths(text: &str, replacements: &[(&std::path::Path, &str)]) -> String {
    replacements
        .iter()
        .fold(text.to_owned(), |text, (path, name)| {
            text.replace(&*path.to_string_lossy(), name)
        })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("0: (18) r1 = map[id:12][0]+0", "0: (18) r1 = map[id:N][0]+0")]
    #[case("1: (18) r2 = 0xffffc90000d3e000", "1: (18) r2 = 0x<kernel address>")]
    #[case(
        "1: (18) r2 = 0xff110000037ba110       ; R2=map_value(map=.bss,ks=4,vs=4)",
        "1: (18) r2 = 0x<kernel address>       ; R2=map_value(map=.bss,ks=4,vs=4)"
    )]
    #[case("r2 = 0xffff", "r2 = 0xffff")]
    #[case("R1_w=0xff00ff00", "R1_w=0xff00ff00")]
    #[case("R1_w=0xf1f2f3f4", "R1_w=0xf1f2f3f4")]
    #[case("verification time 37 usec", "verification time N usec")]
    #[case(
        "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
        "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0"
    )]
    #[case(
        "R6 invalid tracepoint buffer access: off=-8, size=8  \n\n",
        "R6 invalid tracepoint buffer access: off=-8, size=8"
    )]
    fn rules_redact_only_what_varies_between_runs(#[case] log: &str, #[case] expected: &str) {
        assert_eq!(verifier_log(log), expected);
    }

    #[test]
    fn host_paths_become_placeholders() {
        let text = "/work/main/guest-programs/x.bpf.c:3:1: error";
        let out = host_paths(text, &[(std::path::Path::new("/work/main"), "<root>")]);
        assert_eq!(out, "<root>/guest-programs/x.bpf.c:3:1: error");
    }
}
