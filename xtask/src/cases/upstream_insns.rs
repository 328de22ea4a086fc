//! Upstream's writable tests that are instruction arrays, taken from the tree under test and
//! expanded by the tree's own headers, never retyped:
//!
//! - test_verifier's `verifier/*.c` files that use `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE`:
//!   a small C program is generated that is the tree's own `test_verifier.c` up to its
//!   `struct bpf_test` (its includes, defines and the struct itself), then
//!   `static struct bpf_test tests[] = { #include "verifier/<file>.c" };` as test_verifier
//!   includes it, and a `main` that prints each test as JSON. It is compiled with the host's
//!   C compiler against the tree's `tools/include`, uapi and libbpf headers and run on the
//!   host. Each test becomes a case `upstream.<file>.<descr>` with test_verifier's own rules:
//!   program type (socket filter when unset), license "GPL", `prog_flags`
//!   (`BPF_F_TEST_RND_HI32`, plus `BPF_F_ANY_ALIGNMENT` for
//!   `F_NEEDS_EFFICIENT_UNALIGNED_ACCESS`, `BPF_F_STRICT_ALIGNMENT` for
//!   `F_LOAD_WITH_STRICT_ALIGNMENT`, higher bits as given), maps for its `fixup_*` arrays
//!   created as `do_test_fixup` creates them, and `.result`/`.errstr` as the expectation
//!   (anything but ACCEPT is a refusal whose log must contain `errstr`).
//! - prog_tests' `const struct bpf_insn <name>[] = { ... };` arrays in files that load
//!   `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE` ([`prog_tests`]): the array's text is cut out of
//!   the tree's file and compiled the same way (with the file's own includes); what the test
//!   code checks around it is data, `guest-programs/upstream/prog_tests.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use protocol::{Insn, InsnMap, ProgType};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::cases::asm::{InsnSource, ProgTypeName};
use crate::cases::compile::dependencies;
use crate::cases::{Case, CaseOutcome, Expect, UPSTREAM_PREFIX};
use crate::infra::digest;
use crate::infra::fsutil::write_atomic;
use crate::infra::runner::Runner;

/// Where the selftests live in a tree.
pub const SELFTESTS: &str = "tools/testing/selftests/bpf";

/// What one extraction found: cases to run and rows decided without a boot (a test this
/// project cannot run as shipped, a file that did not compile), with the reason.
#[derive(Debug, Default)]
pub struct Found {
    pub cases: Vec<Case>,
    pub decided: BTreeMap<String, CaseOutcome>,
    /// Each case's file, relative to the tree.
    pub files: BTreeMap<String, PathBuf>,
}

impl Found {
    fn push(&mut self, case: Case, file: &Path) {
        self.files.insert(case.name.clone(), file.to_path_buf());
        self.cases.push(case);
    }
}

/// The test_verifier files of `tree` that hold writable tests, relative to the tree.
pub fn test_verifier_files(tree: &Path) -> Vec<PathBuf> {
    files_mentioning(tree, "verifier", "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE")
}

fn files_mentioning(tree: &Path, dir: &str, word: &str) -> Vec<PathBuf> {
    let dir = tree.join(SELFTESTS).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|text| text.contains(word)))
        .filter_map(|p| p.strip_prefix(tree).ok().map(Path::to_path_buf))
        .collect();
    files.sort();
    files
}

/// One test as the generated program prints it.
#[derive(Debug, Deserialize)]
struct Printed {
    descr: String,
    prog_type: u32,
    accept: bool,
    errstr: String,
    flags: u32,
    insns: Vec<Insn>,
    #[serde(default)]
    fixups: BTreeMap<String, Vec<usize>>,
    #[serde(default)]
    fill_helper: bool,
}

/// The maps test_verifier's `do_test_fixup` creates for a fixup array this project knows:
/// (type, key size, value size, max entries, flags). BPF_F_NO_PREALLOC for hash maps, as
/// `__create_map` adds it.
fn fixup_map(fixup: &str) -> Option<InsnMap> {
    let (map_type, key_size, value_size, max_entries, map_flags) = match fixup {
        "fixup_map_hash_8b" => (1, 8, 8, 1, 1),
        "fixup_map_hash_48b" => (1, 8, 48, 1, 1),
        "fixup_map_hash_16b" => (1, 8, 16, 2, 1),
        "fixup_map_array_48b" => (2, 4, 48, 1, 0),
        _ => return None,
    };
    Some(InsnMap {
        name: Some(fixup.trim_start_matches("fixup_").to_owned()),
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        insns: Vec::new(),
    })
}

/// test_verifier's `prog_flags` for a test's `.flags` (do_test_single, the same in 5.10 and
/// 6.1).
fn test_verifier_prog_flags(flags: u32) -> u32 {
    const RND_HI32: u32 = 4;
    const STRICT: u32 = 1;
    const ANY: u32 = 2;
    let mut pflags = RND_HI32;
    if flags & 2 != 0 {
        pflags |= STRICT; // F_LOAD_WITH_STRICT_ALIGNMENT
    }
    if flags & 1 != 0 {
        pflags |= ANY; // F_NEEDS_EFFICIENT_UNALIGNED_ACCESS
    }
    if flags & !3 != 0 {
        pflags |= flags;
    }
    pflags
}

/// `text` as a name part: lower case, runs of other characters as one `_`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The C program that prints the tests of `file` (a test_verifier file of `tree`).
fn test_verifier_generator(tree: &Path, file: &Path) -> Result<String> {
    let main = tree.join(SELFTESTS).join("test_verifier.c");
    let text =
        std::fs::read_to_string(&main).with_context(|| format!("reading {}", main.display()))?;
    // The tree's own includes, defines and `struct bpf_test`, up to the struct's end.
    let start = text
        .find("\nstruct bpf_test {")
        .context("test_verifier.c has no `struct bpf_test`")?;
    let end = start
        + text[start..]
            .find("\n};")
            .context("`struct bpf_test` does not end")?
        + 3;
    let test_file = std::fs::read_to_string(tree.join(file))?;
    let mut fixups: Vec<String> = test_file
        .match_indices(".fixup_")
        .map(|(at, _)| {
            test_file[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    fixups.sort();
    fixups.dedup();
    let print_fixups: String = fixups
        .iter()
        .enumerate()
        .map(|(n, fixup)| {
            format!(
                "\t\tprintf(\"{comma}\\\"{fixup}\\\":[\");\n\t\tfor (int j = 0; t->{fixup}[j]; j++) printf(\"%s%d\", j ? \",\" : \"\", t->{fixup}[j]);\n\t\tprintf(\"]\");\n",
                comma = if n == 0 { "" } else { "," }
            )
        })
        .collect();
    let fill = if text[start..end].contains("fill_helper") {
        "t->fill_helper != NULL"
    } else {
        "0"
    };
    Ok(format!(
        r#"{preamble}

static void wtp_string(const char *s)
{{
	putchar('"');
	for (; s && *s; s++) {{
		if (*s == '"' || *s == '\\') putchar('\\');
		if ((unsigned char)*s < 0x20) printf("\\u%04x", *s); else putchar(*s);
	}}
	putchar('"');
}}

static struct bpf_test wtp_tests[] = {{
#include "{file}"
}};

int main(void)
{{
	for (unsigned i = 0; i < sizeof(wtp_tests) / sizeof(wtp_tests[0]); i++) {{
		struct bpf_test *t = &wtp_tests[i];
		int len = MAX_INSNS;
		while (len > 0 && !memcmp(&t->insns[len - 1], &(struct bpf_insn){{0}}, sizeof(struct bpf_insn)))
			len--;
		printf("{{\"descr\":");
		wtp_string(t->descr);
		printf(",\"prog_type\":%d,\"accept\":%s,\"errstr\":", (int)t->prog_type,
		       t->result == ACCEPT || t->result == VERBOSE_ACCEPT ? "true" : "false");
		wtp_string(t->errstr);
		printf(",\"flags\":%u,\"fill_helper\":%s,\"insns\":[", (unsigned)t->flags, {fill} ? "true" : "false");
		for (int j = 0; j < len; j++)
			printf("%s[%d,%d,%d,%d,%d]", j ? "," : "", t->insns[j].code, t->insns[j].dst_reg,
			       t->insns[j].src_reg, t->insns[j].off, t->insns[j].imm);
		printf("],\"fixups\":{{");
{print_fixups}		printf("}}}}\n");
	}}
	return 0;
}}
"#,
        preamble = &text[..end],
        file = tree.join(file).display(),
    ))
}

/// Compiles a generated program with the host's C compiler against the tree's headers and
/// runs it; its standard output. `Err` carries the compiler's message (a row says it).
///
/// The output is kept beside `out` (`.out`) with the compiler's dependency file (`.d`) and a
/// key over the generated source and the bytes of every header it read (`.key`), as the BPF
/// programs are kept ([`crate::cases::compile`]): an unchanged extraction is read back, not
/// compiled and run again (0.1–0.3 s of every run otherwise).
fn compile_and_run(
    runner: &Runner,
    tree: &Path,
    source: &str,
    out: &Path,
    cut_of_a_program: bool,
) -> Result<Result<String, String>> {
    let kept = KeptExtraction::beside(out);
    if let Some(printed) = kept.unchanged(source) {
        return Ok(Ok(printed));
    }
    let printed =
        compile_and_run_afresh(runner, tree, source, (out, &kept.depfile), cut_of_a_program)?;
    if let Ok(printed) = &printed {
        kept.keep(source, printed)?;
    }
    Ok(printed)
}

/// Where one extraction's output is kept, and the key it was made under.
struct KeptExtraction {
    output: PathBuf,
    depfile: PathBuf,
    key: PathBuf,
}

impl KeptExtraction {
    fn beside(out: &Path) -> Self {
        let with = |extension: &str| {
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(extension);
            out.with_file_name(name)
        };
        KeptExtraction {
            output: with(".out"),
            depfile: with(".d"),
            key: with(".key"),
        }
    }

    /// The kept output, when the source and every header the last compile read are unchanged.
    fn unchanged(&self, source: &str) -> Option<String> {
        let previous = std::fs::read_to_string(&self.key).ok()?;
        (Some(previous) == self.current_key(source))
            .then(|| std::fs::read_to_string(&self.output).ok())
            .flatten()
    }

    fn keep(&self, source: &str, printed: &str) -> Result<()> {
        write_atomic(&self.output, printed.as_bytes())?;
        if let Some(key) = self.current_key(source) {
            write_atomic(&self.key, key.as_bytes())?;
        }
        Ok(())
    }

    /// The generated source and the bytes of every file the dependency file names, but the
    /// compile's own files (its temporary directory: the source again and the stubs, which
    /// are fixed). `None` when a header is gone.
    fn current_key(&self, source: &str) -> Option<String> {
        let deps = dependencies(&std::fs::read_to_string(&self.depfile).ok()?);
        let mut hash = Sha256::new_with_prefix(source.as_bytes());
        for dep in deps.iter().filter(|dep| !is_in_extract_dir(dep)) {
            hash.update(dep.as_os_str().as_encoded_bytes());
            hash.update(std::fs::read(dep).ok()?);
        }
        Some(digest::short_hex(hash))
    }
}

/// Whether `path` lies in one compile's temporary directory ([`compile_and_run_afresh`]).
fn is_in_extract_dir(path: &Path) -> bool {
    path.components().any(|c| {
        c.as_os_str()
            .to_string_lossy()
            .starts_with(EXTRACT_DIR_PREFIX)
    })
}

/// The prefix of each compile's temporary directory.
const EXTRACT_DIR_PREFIX: &str = ".extract-";

fn compile_and_run_afresh(
    runner: &Runner,
    tree: &Path,
    source: &str,
    (out, depfile): (&Path, &Path),
    cut_of_a_program: bool,
) -> Result<Result<String, String>> {
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // A directory of this call's own: runs side by side extract from the same tree, and one
    // must never write the program another is executing (ETXTBSY) or its source.
    let work = tempfile::Builder::new()
        .prefix(EXTRACT_DIR_PREFIX)
        .tempdir_in(parent)?;
    let name = out.file_name().unwrap_or_default();
    let binary = work.path().join(name);
    let c_file = binary.with_extension("c");
    std::fs::write(&c_file, source)?;
    // Headers test_verifier.c includes that only build it (libcap's): the cut never uses them.
    let stubs = work.path().join("stubs");
    std::fs::create_dir_all(stubs.join("sys"))?;
    std::fs::write(stubs.join("sys/capability.h"), "")?;
    let selftests = tree.join(SELFTESTS);
    // The selftests Makefile's order: the selftests, libbpf's headers, tools/include, uapi.
    let includes = [
        selftests.clone(),
        tree.join("tools/lib"),
        tree.join("tools/include"),
        tree.join("tools/include/uapi"),
    ];
    let mut args: Vec<String> = vec!["-w".into(), "-O0".into()];
    for include in &includes {
        args.extend(["-I".into(), include.display().to_string()]);
    }
    args.extend(["-idirafter".into(), stubs.display().to_string()]);
    args.extend([
        c_file.display().to_string(),
        "-o".into(),
        binary.display().to_string(),
        "-MD".into(),
        "-MF".into(),
        depfile.display().to_string(),
    ]);
    if cut_of_a_program {
        // Functions of the cut of test_verifier.c that call libbpf are never called.
        args.push("-Wl,--unresolved-symbols=ignore-all".into());
    }
    let sh = &runner.sh;
    let output = cmd!(sh, "cc {args...}").quiet().ignore_status().output()?;
    if !output.status.success() {
        // The message names the stable path, not this call's directory.
        let message = String::from_utf8_lossy(&output.stderr).trim().replace(
            &work.path().display().to_string(),
            &parent.display().to_string(),
        );
        return Ok(Err(message));
    }
    let run = cmd!(sh, "{binary}").quiet().ignore_status().output()?;
    if !run.status.success() {
        return Ok(Err(format!("the generated program failed: {}", run.status)));
    }
    Ok(Ok(String::from_utf8_lossy(&run.stdout).into_owned()))
}

/// Every writable test_verifier test of `tree`, as cases.
pub fn test_verifier(runner: &Runner, tree: &Path, out_dir: &Path) -> Result<Found> {
    let mut found = Found::default();
    for file in test_verifier_files(tree) {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let generator = test_verifier_generator(tree, &file)?;
        let out = out_dir.join(format!("test_verifier-{stem}"));
        let printed = match compile_and_run(runner, tree, &generator, &out, true)? {
            Ok(printed) => printed,
            Err(message) => {
                let name = format!("{UPSTREAM_PREFIX}{stem}");
                found.push(row(&name, &file, "test_verifier", "(the file)"), &file);
                found
                    .decided
                    .insert(name, CaseOutcome::CompileError { message });
                continue;
            }
        };
        for line in printed.lines().filter(|l| !l.trim().is_empty()) {
            let test: Printed = serde_json::from_str(line)
                .with_context(|| format!("the tests printed from {}: {line}", file.display()))?;
            let (case, unsupported) = test_verifier_case(&file, &stem, test);
            if let Some(reason) = unsupported {
                found
                    .decided
                    .insert(case.name.clone(), CaseOutcome::Unsupported { reason });
            }
            found.push(case, &file);
        }
    }
    Ok(found)
}

/// A row for a test whose program is not runnable (or a file that did not compile).
fn row(name: &str, file: &Path, form: &str, what: &str) -> Case {
    Case {
        name: name.to_owned(),
        description: format!("upstream {} ({form}): {what}", file.display()),
        program: None,
        function: None,
        requires: Vec::new(),
        load: Expect::Ok,
        load_on: BTreeMap::new(),
        log_contains: Vec::new(),
        log_sequence: Vec::new(),
        log_level: None,
        globals: BTreeMap::new(),
        flags: Vec::new(),
        source: None,
        insns: None,
        steps: Vec::new(),
    }
}

/// One test_verifier test as a case, and why it cannot run when it cannot.
fn test_verifier_case(file: &Path, stem: &str, test: Printed) -> (Case, Option<String>) {
    let name = format!("{UPSTREAM_PREFIX}{stem}.{}", slug(&test.descr));
    let mut case = row(&name, file, "test_verifier", &test.descr);
    case.description = format!(
        "{}\n(upstream {}, test_verifier: expectation from its .result/.errstr)",
        test.descr,
        file.display()
    );
    let prog_type = match test.prog_type {
        0 => Ok(ProgType::SocketFilter),
        n => ProgType::try_from(n),
    };
    let prog_type = match prog_type {
        Ok(prog_type) => prog_type,
        Err(error) => return (case, Some(format!("not runnable here: {error}"))),
    };
    if test.fill_helper {
        return (
            case,
            Some("not runnable here: its instructions come from a fill_helper function".into()),
        );
    }
    let mut maps = Vec::new();
    for (fixup, insns) in &test.fixups {
        if insns.is_empty() {
            continue;
        }
        let Some(mut map) = fixup_map(fixup) else {
            return (
                case,
                Some(format!("not runnable here: test_verifier's {fixup} map")),
            );
        };
        map.insns = insns.clone();
        maps.push(map);
    }
    case.insns = Some(InsnSource {
        prog_type: ProgTypeName(prog_type),
        name: Some(slug(stem)),
        license: "GPL".into(),
        insns: test.insns,
        asm: Vec::new(),
        maps,
        tracepoint: None,
    });
    case.flags = vec![test_verifier_prog_flags(test.flags).to_string()];
    case.load = if test.accept {
        Expect::Ok
    } else {
        Expect::Fails
    };
    if !test.errstr.is_empty() {
        case.log_contains = vec![test.errstr];
    }
    (case, None)
}

/// What `guest-programs/upstream/prog_tests.toml` says about one array of a prog_tests file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgTestMapping {
    pub file: PathBuf,
    pub array: String,
    pub subtest: String,
    pub prog_type: ProgTypeName,
    pub license: String,
    #[serde(default)]
    pub requires: Vec<String>,
    pub load: Expect,
    /// The checks of upstream's test code this entry mirrors, in words.
    pub what: String,
    #[serde(default)]
    pub steps: Vec<crate::cases::CaseStep>,
}

/// An array of a writable prog_tests file that is no writable test of its own: a program
/// another subtest loads beside its writable one (the socket filter raw_tp_writable_test_run
/// test-runs), which that subtest's steps stand for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Companion {
    pub file: PathBuf,
    pub array: String,
    /// The subtest it belongs to.
    pub part_of: String,
    /// How the subtest's steps stand for it, in words.
    pub what: String,
}

/// What `guest-programs/upstream/prog_tests.toml` holds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgTestMappings {
    pub test: Vec<ProgTestMapping>,
    #[serde(default)]
    pub companion: Vec<Companion>,
}

/// Reads the prog_tests mapping (none when the file is missing).
pub fn prog_test_mappings(file: &Path) -> Result<ProgTestMappings> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(ProgTestMappings::default());
    };
    toml::from_str(&text).with_context(|| format!("reading {}", file.display()))
}

/// The `const struct bpf_insn <name>[] = { ... };` arrays of a C file: name and initialiser
/// text (braces included), in file order.
pub fn insn_arrays(text: &str) -> Vec<(String, String)> {
    const START: &str = "const struct bpf_insn ";
    let mut arrays = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        rest = &rest[at + START.len()..];
        let Some((name, after)) = rest.split_once("[] = {") else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut depth = 1;
        let mut end = None;
        for (index, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = Some(index);
                break;
            }
        }
        if let Some(end) = end {
            arrays.push((name.to_owned(), format!("{{{}}}", &after[..end])));
            rest = &after[end..];
        }
    }
    arrays
}

/// The C program that prints a prog_tests file's arrays as JSON: the file's own includes
/// (test_progs.h's own part, the uapi and filter.h macros, instead of test_progs.h itself).
fn prog_tests_generator(tree: &Path, text: &str, arrays: &[(String, String)]) -> String {
    // The macros' header by path, as test_verifier.c includes it: `<linux/filter.h>` is the
    // uapi one (tools/include/uapi comes first), which has no macros.
    let filter_h = tree.join("tools/include/linux/filter.h");
    let includes: String = text
        .lines()
        .filter(|l| l.starts_with("#include") && !l.contains("test_progs.h"))
        .map(|l| format!("{l}\n"))
        .collect();
    let prints: String = arrays
        .iter()
        .map(|(name, body)| {
            format!(
                "\t{{\n\t\tconst struct bpf_insn a[] = {body};\n\t\twtp_print(\"{name}\", a, sizeof(a) / sizeof(a[0]));\n\t}}\n"
            )
        })
        .collect();
    format!(
        r#"#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include "{filter_h}"
{includes}
static void wtp_print(const char *name, const struct bpf_insn *a, size_t n)
{{
	printf("{{\"array\":\"%s\",\"insns\":[", name);
	for (size_t j = 0; j < n; j++)
		printf("%s[%d,%d,%d,%d,%d]", j ? "," : "", a[j].code, a[j].dst_reg, a[j].src_reg, a[j].off, a[j].imm);
	printf("]}}\n");
}}

int main(void)
{{
{prints}	return 0;
}}
"#,
        filter_h = filter_h.display()
    )
}

#[derive(Debug, Deserialize)]
struct PrintedArray {
    array: String,
    insns: Vec<Insn>,
}

/// Every writable instruction array of the tree's prog_tests, as cases with the checks the
/// mapping gives; an array without a mapping is a row that says so.
pub fn prog_tests(
    runner: &Runner,
    tree: &Path,
    mappings: &ProgTestMappings,
    out_dir: &Path,
) -> Result<Found> {
    let mut found = Found::default();
    for file in files_mentioning(tree, "prog_tests", "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE") {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(tree.join(&file))?;
        let arrays = insn_arrays(&text);
        let relative = file.strip_prefix(SELFTESTS).unwrap_or(&file).to_path_buf();
        let out = out_dir.join(format!("prog_tests-{stem}"));
        let printed = match compile_and_run(
            runner,
            tree,
            &prog_tests_generator(tree, &text, &arrays),
            &out,
            false,
        )? {
            Ok(printed) => printed,
            Err(message) => {
                let name = format!("{UPSTREAM_PREFIX}{stem}");
                found.push(row(&name, &file, "prog_tests", "(the file)"), &file);
                found
                    .decided
                    .insert(name, CaseOutcome::CompileError { message });
                continue;
            }
        };
        for line in printed.lines().filter(|l| !l.trim().is_empty()) {
            let array: PrintedArray = serde_json::from_str(line)
                .with_context(|| format!("the arrays printed from {}: {line}", file.display()))?;
            let companion = |c: &&Companion| c.file == relative && c.array == array.array;
            if mappings.companion.iter().any(|c| companion(&c)) {
                continue;
            }
            let mapping = mappings
                .test
                .iter()
                .find(|m| m.file == relative && m.array == array.array);
            let Some(mapping) = mapping else {
                let name = format!("{UPSTREAM_PREFIX}{stem}.{}", array.array);
                found.push(row(&name, &file, "prog_tests", &array.array), &file);
                let reason = format!(
                    "not runnable here: no mapping of its checks in guest-programs/upstream/prog_tests.toml ({} {})",
                    relative.display(),
                    array.array
                );
                found
                    .decided
                    .insert(name, CaseOutcome::Unsupported { reason });
                continue;
            };
            let name = format!("{UPSTREAM_PREFIX}{stem}.{}", mapping.subtest);
            let mut case = row(&name, &file, "prog_tests", &mapping.subtest);
            case.description = format!(
                "{}\n(upstream {}, array {}: {})",
                mapping.subtest,
                file.display(),
                mapping.array,
                mapping.what.trim()
            );
            case.requires = mapping.requires.clone();
            case.load = mapping.load.clone();
            case.steps = mapping.steps.clone();
            case.insns = Some(InsnSource {
                prog_type: mapping.prog_type,
                name: Some(slug(&mapping.array)),
                license: mapping.license.clone(),
                insns: array.insns,
                asm: Vec::new(),
                maps: Vec::new(),
                tracepoint: None,
            });
            found.push(case, &file);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_extraction_is_read_back_until_its_source_or_a_header_changes() {
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("test_verifier.h");
        std::fs::write(&header, "struct bpf_test { int a; };").unwrap();
        let scratch = dir.path().join(format!("{EXTRACT_DIR_PREFIX}abc/gen.c"));
        let kept = KeptExtraction::beside(&dir.path().join("test_verifier-raw_tp_writable"));
        let depfile = format!("gen: {} {}\n", scratch.display(), header.display());
        std::fs::write(&kept.depfile, depfile).unwrap();
        assert_eq!(kept.unchanged("source"), None, "nothing kept yet");
        kept.keep("source", "{\"descr\":1}\n").unwrap();
        assert_eq!(kept.unchanged("source").as_deref(), Some("{\"descr\":1}\n"));
        assert_eq!(kept.unchanged("other source"), None);
        std::fs::write(&header, "struct bpf_test { long a; };").unwrap();
        assert_eq!(kept.unchanged("source"), None, "a header changed");
        std::fs::remove_file(&header).unwrap();
        assert_eq!(kept.unchanged("source"), None, "a header is gone");
    }

    #[test]
    fn test_verifier_flags_follow_do_test_single() {
        assert_eq!(test_verifier_prog_flags(0), 4);
        assert_eq!(test_verifier_prog_flags(1), 4 | 2);
        assert_eq!(test_verifier_prog_flags(2), 4 | 1);
        assert_eq!(test_verifier_prog_flags(8), 4 | 8);
    }

    #[test]
    fn a_printed_test_becomes_a_case_with_its_map() {
        let printed: Printed = serde_json::from_str(
            r#"{"descr":"raw_tracepoint_writable: reject variable offset","prog_type":24,"accept":false,
               "errstr":"R6 invalid","flags":1,"fill_helper":false,
               "insns":[[24,1,1,0,0],[0,0,0,0,0],[149,0,0,0,0]],"fixups":{"fixup_map_hash_8b":[1]}}"#,
        )
        .unwrap();
        let (case, unsupported) =
            test_verifier_case(Path::new("v/raw_tp_writable.c"), "raw_tp_writable", printed);
        assert_eq!(unsupported, None);
        assert_eq!(
            case.name,
            "upstream.raw_tp_writable.raw_tracepoint_writable_reject_variable_offset"
        );
        assert_eq!(case.load, Expect::Fails);
        assert_eq!(case.log_contains, ["R6 invalid"]);
        assert_eq!(case.prog_flags().unwrap(), 6);
        let program = case.insns.unwrap().program().unwrap();
        assert_eq!(program.maps[0].insns, [1]);
        assert_eq!(
            (program.maps[0].map_type, program.maps[0].map_flags),
            (1, 1)
        );
    }

    #[test]
    fn an_unknown_fixup_is_a_reason_not_a_silent_skip() {
        let printed: Printed = serde_json::from_str(
            r#"{"descr":"x","prog_type":24,"accept":true,"errstr":"","flags":0,
               "insns":[[149,0,0,0,0]],"fixups":{"fixup_sk_storage_map":[3]}}"#,
        )
        .unwrap();
        let (_, unsupported) = test_verifier_case(Path::new("v/x.c"), "x", printed);
        assert!(unsupported.unwrap().contains("fixup_sk_storage_map"));
    }

    #[test]
    fn insn_arrays_are_cut_out_by_their_braces() {
        let text = "void f(void)\n{\n\tconst struct bpf_insn program[] = {\n\t\tBPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_6,\n\t\t\t    sizeof(struct nbd_request)),\n\t\tBPF_EXIT_INSN(),\n\t};\n\tconst struct bpf_insn other[] = { BPF_EXIT_INSN() };\n}\n";
        let arrays = insn_arrays(text);
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["program", "other"]);
        assert!(arrays[0].1.starts_with('{') && arrays[0].1.ends_with("BPF_EXIT_INSN(),\n\t}"));
        assert_eq!(arrays[1].1, "{ BPF_EXIT_INSN() }");
    }

    /// The repository's mapping reads, and every entry names a step the cases know.
    #[test]
    fn the_prog_tests_mapping_reads() {
        let paths = crate::infra::paths::Paths::from_env();
        let mappings =
            prog_test_mappings(&paths.upstream_families().join("prog_tests.toml")).unwrap();
        assert!(mappings.test.len() >= 4);
        assert!(!mappings.companion.is_empty());
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(
            slug("raw_tracepoint_writable: reject variable offset"),
            "raw_tracepoint_writable_reject_variable_offset"
        );
    }
}
