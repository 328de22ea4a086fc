//! The sweep's offset × size grid for one tracepoint on one kernel: a row per buffer offset,
//! a column per access (`ldx`, `stx`, `st` of 1, 2, 4, 8 bytes; atomic add, xchg, cmpxchg of
//! 4 and 8), each cell what came of the program at that offset (the buffer accessed straight
//! through ctx[0], type 24). Below it, the rest of the family counted by part, and each
//! deviation with the program, both answers and the disassembly. Pure: triples in, text out.

use crate::cases::sweep::trigger::Trigger;
use crate::cases::sweep::{Move, ProgType, Program, Target, Tracepoint};
use crate::infra::table::Table;
use crate::judge::sweep::{
    column_name, columns, compare, groups, rows, Agreement, Cell, Judged, Triple, LEGEND,
};

/// The part of the family a program belongs to, for the counts below the grid.
fn part(program: &Program) -> &'static str {
    let shape = &program.shape;
    match (
        program.prog_type,
        shape.target,
        shape.moved,
        shape.tail_called,
    ) {
        (_, _, _, true) => "through a tail call",
        (ProgType::RawTracepoint, ..) => "plain raw_tp",
        (_, Target::Ctx, ..) => "ctx",
        (_, _, Move::Const(_), _) => "moved by a constant",
        (_, _, Move::Var { .. }, _) => "moved by a variable",
        _ => "buffer (the grid)",
    }
}

const PARTS: [&str; 6] = [
    "buffer (the grid)",
    "moved by a constant",
    "moved by a variable",
    "ctx",
    "plain raw_tp",
    "through a tail call",
];

const COUNTED: [Cell; 6] = [
    Cell::Ok,
    Cell::RefusedAtLoad,
    Cell::RefusedAtLoadReworded,
    Cell::RefusedAtAttach,
    Cell::Deviates,
    Cell::NotRun,
];

fn counts(triples: &[Triple<'_>]) -> Vec<(&'static str, [usize; 6])> {
    PARTS
        .iter()
        .map(|name| {
            let mut row = [0; 6];
            for (_, expected, kernel) in triples.iter().filter(|t| part(t.0) == *name) {
                let cell = Cell::of(expected, *kernel);
                row[COUNTED.iter().position(|c| *c == cell).expect("counted")] += 1;
            }
            (*name, row)
        })
        .filter(|(_, row)| row.iter().sum::<usize>() > 0)
        .collect()
}

/// The deviations, each as a block: name, what it does, both answers, the instructions.
fn deviations(triples: &[Triple<'_>]) -> Vec<String> {
    triples
        .iter()
        .filter_map(
            |(program, expected, kernel)| match compare(expected, (*kernel)?) {
                Agreement::Deviates(reasons) => Some(format!(
                    "{} — {}\n{}\n{}",
                    program.name,
                    program.description,
                    reasons
                        .iter()
                        .map(|r| format!("  {r}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    program
                        .listing()
                        .lines()
                        .map(|l| format!("    {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
                _ => None,
            },
        )
        .collect()
}

/// `off` column text: the first offset past the writable size is marked `end▸`.
fn offset_label(off: i32, tp: &Tracepoint) -> String {
    if off == tp.writable_size as i32 {
        format!("end▸ {off}")
    } else {
        off.to_string()
    }
}

/// The grid as plain text for the terminal: a header of ops over sizes in bytes, a mark per
/// cell, the groups two spaces apart.
fn text_grid(tp: &Tracepoint, triples: &[Triple<'_>]) -> String {
    let groups = groups();
    let widths: Vec<usize> = groups
        .iter()
        .map(|(name, sizes)| name.len().max(2 * sizes.len() - 1))
        .collect();
    let label_width = 8;
    let mut out = format!("{:>label_width$}", "");
    for ((name, _), width) in groups.iter().zip(&widths) {
        out.push_str(&format!("  {name:<width$}"));
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out.push_str(&format!("{:>label_width$}", "off"));
    for ((_, sizes), width) in groups.iter().zip(&widths) {
        let text = sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!("  {text:<width$}"));
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for (off, marks) in rows(tp, triples) {
        out.push_str(&format!("{:>label_width$}", offset_label(off, tp)));
        let mut marks = marks.into_iter();
        for ((_, sizes), width) in groups.iter().zip(&widths) {
            let text = marks
                .by_ref()
                .take(sizes.len())
                .collect::<Vec<_>>()
                .join(" ");
            let pad = width - text.chars().count();
            out.push_str(&format!("  {text}{}", " ".repeat(pad)));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// The grid as plain text for the terminal.
pub fn render_text(kernel: &str, tp: &Tracepoint, triples: &[Triple<'_>]) -> String {
    let mut out = format!(
        "sweep {} on {kernel}: {} bytes writable, {} arguments, {} programs\n",
        tp.name,
        tp.writable_size,
        tp.arg_count,
        triples.len()
    );
    out.push_str(&text_grid(tp, triples));
    out.push_str(LEGEND);
    out.push('\n');
    let mut counted = Table::new(["part"].into_iter().chain(COUNTED.iter().map(|c| c.mark())));
    for (name, row) in counts(triples) {
        counted.row(
            [name.to_owned()]
                .into_iter()
                .chain(row.map(|n| n.to_string())),
        );
    }
    out.push_str(&counted.render());
    for block in deviations(triples) {
        out.push_str(&block);
        out.push('\n');
    }
    out
}

/// The grid as Markdown (GitHub's job summary, docs/writable-rules.md).
pub fn render_markdown(kernel: &str, tp: &Tracepoint, triples: &[Triple<'_>]) -> String {
    let columns = columns();
    let mut out = format!(
        "#### `{}` on {kernel} ({} bytes writable, {} arguments, {} programs)\n\n",
        tp.name,
        tp.writable_size,
        tp.arg_count,
        triples.len()
    );
    let header: Vec<String> = ["off".to_owned()]
        .into_iter()
        .chain(columns.iter().map(|c| column_name(*c)))
        .collect();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---:|".repeat(header.len())));
    for (off, marks) in rows(tp, triples) {
        let label = if off == tp.writable_size as i32 {
            format!("**{off}**")
        } else {
            off.to_string()
        };
        out.push_str(&format!("| {label} | {} |\n", marks.join(" | ")));
    }
    out.push_str(&format!(
        "\n{LEGEND}. **Bold**: the first offset past the writable size.\n\n"
    ));
    out.push_str(&format!(
        "| part | {} |\n|---|{}\n",
        COUNTED.map(|c| c.mark()).join(" | "),
        "---:|".repeat(COUNTED.len())
    ));
    for (name, row) in counts(triples) {
        out.push_str(&format!(
            "| {name} | {} |\n",
            row.map(|n| n.to_string()).join(" | ")
        ));
    }
    let deviations = deviations(triples);
    if !deviations.is_empty() {
        out.push_str("\n<details><summary>Deviations</summary>\n\n```\n");
        for block in deviations {
            out.push_str(&block);
            out.push('\n');
        }
        out.push_str("```\n</details>\n");
    }
    out
}

/// One judged sweep as (terminal text, Markdown): the grid, the counts, the deviations, the
/// JIT against the interpreter, and the rate (programs per second of guest time).
pub fn render_judged(kernel: &str, judged: &Judged) -> (String, String) {
    let triples = judged.triples();
    let trigger = Trigger::of(&judged.tracepoint);
    let mut extra = format!("{}\n", trigger.words());
    if trigger.fires() {
        extra.push_str(&format!(
            "fired {} (a store the model says lands outside the buffer, even through a tail \
             call, is loaded and attached but never fired)\n",
            judged.fired()
        ));
    }
    let compared = judged.interpreted.iter().flatten().count();
    let differ = judged
        .interpreted
        .iter()
        .flatten()
        .filter(|(jit, interpreter)| jit != interpreter)
        .count();
    if trigger.fires() {
        extra.push_str(&format!(
            "JIT vs interpreter: {compared} programs fired both ways, {differ} differ\n"
        ));
    }
    for note in &judged.notes {
        extra.push_str(&format!("note: {note}\n"));
    }
    if let Some(ms) = judged.done_ms {
        let secs = ms as f64 / 1000.0;
        let loads = judged.programs.len() + compared;
        extra.push_str(&format!(
            "sweep rate: {} programs (+{compared} again under the interpreter) in {secs:.1} s \
             of guest time: {:.0} programs/s\n",
            judged.programs.len(),
            loads as f64 / secs.max(0.001)
        ));
    }
    let text = render_text(kernel, &judged.tracepoint, &triples) + &extra;
    let markdown = render_markdown(kernel, &judged.tracepoint, &triples) + "\n" + &extra;
    (text, markdown)
}

/// Appends a sweep's Markdown to `$GITHUB_STEP_SUMMARY` when running in GitHub Actions.
pub fn publish_github_summary(markdown: &str) {
    super::append_github_summary(markdown, "the sweep to the job summary");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::sweep::family::generate;
    use crate::cases::sweep::model::predict;
    use crate::cases::sweep::model::Expected;
    use crate::judge::sweep::{KernelAnswer, Refused};

    fn tp() -> Tracepoint {
        Tracepoint::new("bpf_test_finish", 4, 1)
    }

    /// A kernel that answers as the model says, except at the programs `twist` changes.
    fn kernel_like_the_model(
        programs: &[Program],
        expected: &[Expected],
        twist: impl Fn(&Program, KernelAnswer) -> Option<KernelAnswer>,
    ) -> Vec<Option<KernelAnswer>> {
        programs
            .iter()
            .zip(expected)
            .map(|(program, e)| {
                let answer = KernelAnswer {
                    load: e.load.clone().map_err(|r| Refused {
                        errno: r.errno.number(),
                        log: format!("{}\n", r.words),
                    }),
                    attach: e.attach.clone().map(|a| a.map_err(|r| r.errno.number())),
                    seen: None,
                };
                twist(program, answer)
            })
            .collect()
    }

    fn triples<'a>(
        programs: &'a [Program],
        expected: &'a [Expected],
        kernel: &'a [Option<KernelAnswer>],
    ) -> Vec<Triple<'a>> {
        programs
            .iter()
            .zip(expected)
            .zip(kernel)
            .map(|((p, e), k)| (p, e, k.as_ref()))
            .collect()
    }

    #[test]
    fn the_grid_shows_what_the_rules_allow() {
        let tp = tp();
        let programs = generate(&tp);
        let expected: Vec<Expected> = programs.iter().map(|p| predict(p, &tp)).collect();
        let kernel = kernel_like_the_model(&programs, &expected, |_, a| Some(a));
        let text = render_text("7.2", &tp, &triples(&programs, &expected, &kernel));
        let line = |off: &str| {
            text.lines()
                .find(|l| {
                    l.trim_start()
                        .trim_start_matches("end▸ ")
                        .split_whitespace()
                        .next()
                        == Some(off)
                })
                .unwrap_or_else(|| panic!("no row {off} in\n{text}"))
                .trim_start()
                .trim_start_matches("end▸ ")
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        // Columns: ldx b h w dw, stx b h w dw, st b h w dw, add/xchg/cmpxchg w dw.
        assert_eq!(line("-1"), "L L L L L L L L L L L L L L L L L L");
        assert_eq!(line("0"), "✓ ✓ ✓ A ✓ ✓ ✓ A ✓ ✓ ✓ A ✓ A ✓ A ✓ A");
        assert_eq!(line("2"), "✓ ✓ A A ✓ ✓ A A ✓ ✓ A A L L L L L L");
        assert_eq!(line("3"), "✓ A A A ✓ A A A ✓ A A A L L L L L L");
        // 4 is not a multiple of 8: the 8-byte atomics are refused for alignment first.
        assert_eq!(line("4"), "A A A A A A A A A A A A A L A L A L");
        assert!(text.starts_with("sweep bpf_test_finish on 7.2: 4 bytes writable"));
        assert!(text.contains(LEGEND));
        let grid = text.split(LEGEND).next().unwrap();
        assert!(!grid.contains('✗'), "{text}");
    }

    #[test]
    fn a_deviation_shows_in_its_cell_with_the_program_below() {
        let tp = tp();
        let programs = generate(&tp);
        let expected: Vec<Expected> = programs.iter().map(|p| predict(p, &tp)).collect();
        let target = "sweep.bpf_test_finish.ldx.b.off4";
        let reworded = "sweep.bpf_test_finish.ldx.b.off-1";
        let kernel = kernel_like_the_model(&programs, &expected, |p, mut a| {
            if p.name == target {
                a.attach = Some(Ok(()));
            }
            if p.name == reworded {
                a.load = Err(Refused {
                    errno: 13,
                    log: "R6 invalid tracepoint buffer access: off=-1, size=1\n".into(),
                });
            }
            (!p.name.ends_with("st.dw.off0")).then_some(a)
        });
        let all = triples(&programs, &expected, &kernel);
        let text = render_text("6.12", &tp, &all);
        assert!(text.contains(&format!(
            "{target} — raw_tp.w: r6 = ctx[0]; 1-byte load at r6 + 4\n  attach: model refuses with EINVAL (AttachBufferPastWritable), kernel attaches\n       0: r6 = *(u64 *)(r1 + 0)\n"
        )), "{text}");
        let row = |off| {
            text.lines()
                .find(|l| {
                    l.trim_start()
                        .trim_start_matches("end▸ ")
                        .split_whitespace()
                        .next()
                        == Some(off)
                })
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(row("4").starts_with("end▸ 4 ✗ A"), "{}", row("4"));
        assert!(row("-1").contains(" l L"), "{}", row("-1"));
        assert!(
            row("0").contains('-'),
            "st.dw at 0 did not run: {}",
            row("0")
        );

        let markdown = render_markdown("6.12", &tp, &all);
        assert!(markdown.starts_with(
            "#### `bpf_test_finish` on 6.12 (4 bytes writable, 1 arguments, 2158 programs)\n\n| off | ldx.b | ldx.h |"
        ));
        assert!(markdown.contains("| **4** | ✗ | A |"), "{markdown}");
        assert!(markdown.contains("<details><summary>Deviations</summary>"));
        assert!(markdown.contains("| buffer (the grid) |"));
    }

    #[test]
    fn a_tracepoint_without_a_trigger_says_why_it_was_not_fired() {
        let tp = Tracepoint::new("nbd_send_request", 28, 3);
        let judged = Judged::of(&tp, None);
        let (text, markdown) = render_judged("6.12", &judged);
        assert!(
            text.starts_with(
                "sweep nbd_send_request on 6.12: 28 bytes writable, 3 arguments, 2601 programs\n"
            ),
            "{text}"
        );
        for out in [&text, &markdown] {
            assert!(
                out.contains("\nnot fired: its buffer is the NBD request"),
                "{out}"
            );
            assert!(
                !out.contains("JIT vs interpreter") && !out.contains("\nfired "),
                "{out}"
            );
        }
        let testmod = Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1);
        let (text, _) = render_judged("6.12", &Judged::of(&testmod, None));
        assert!(
            text.contains("\nfired by a 64-byte read of /sys/kernel/bpf_testmod"),
            "{text}"
        );
        assert!(
            text.contains("\nfired 0 ") && text.contains("JIT vs interpreter: 0"),
            "{text}"
        );
    }

    #[test]
    fn cells_count_by_part() {
        let tp = tp();
        let programs = generate(&tp);
        let expected: Vec<Expected> = programs.iter().map(|p| predict(p, &tp)).collect();
        let kernel = kernel_like_the_model(&programs, &expected, |_, a| Some(a));
        let all = triples(&programs, &expected, &kernel);
        let counted = counts(&all);
        let total: usize = counted
            .iter()
            .map(|(_, row)| row.iter().sum::<usize>())
            .sum();
        assert_eq!(total, programs.len());
        assert_eq!(counted.len(), PARTS.len());
        let tail = counted
            .iter()
            .find(|(n, _)| *n == "through a tail call")
            .unwrap();
        assert_eq!(tail.1[0], tail.1.iter().sum::<usize>(), "callers attach");
    }
}
