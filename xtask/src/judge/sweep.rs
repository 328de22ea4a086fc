//! A sweep program's answer on one kernel against the model's ([`crate::cases::sweep::model`]).
//! Pure: the kernel's answer comes in as data (the guest-running half builds it from its
//! records), the verdict goes out as data.
//!
//! Compared: the load (accepted or not, and the errno), the attach (same), and, where the
//! guest fired the tracepoint, what the firing showed against what the model's bytes predict
//! ([`crate::cases::sweep::trigger`]: bpf_test_finish's whole buffer, bpf_testmod's read).
//! The verifier's words are compared
//! apart: the same refusal in other words (6.12's "invalid tracepoint buffer access" where 7.2
//! says "invalid negative tracepoint buffer offset") is [`Agreement::Reworded`], a finding of
//! its own but not a deviation.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use protocol::{SweepResult, SweepSeen, SweepTrigger};

use crate::cases::sweep::insn::{AtomicOp, Size};
use crate::cases::sweep::model::{predict, Expected};
use crate::cases::sweep::trigger::{self, shown, Prediction, Trigger};
use crate::cases::sweep::{generate, Move, Op, ProgType, Program, Target, Tracepoint};
use crate::guest::results::SweepRecords;

/// What the kernel did with one sweep program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelAnswer {
    /// BPF_PROG_LOAD: `Ok`, or the errno and the verifier's log.
    pub load: Result<(), Refused>,
    /// BPF_RAW_TRACEPOINT_OPEN after a load: `Ok` or the errno; `None` if not tried.
    pub attach: Option<Result<(), i32>>,
    /// What one firing showed (bpf_test_finish's buffer, bpf_testmod's read), where the guest
    /// fired it.
    pub seen: Option<SweepSeen>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub errno: i32,
    pub log: String,
}

/// How far the kernel and the model agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Agreement {
    Agrees,
    /// Same verdict, but the kernel's log lacks the model's words.
    Reworded {
        model: String,
        kernel: String,
    },
    /// A different verdict or different bytes: each reason in words.
    Deviates(Vec<String>),
}

impl Agreement {
    pub fn deviates(&self) -> bool {
        matches!(self, Agreement::Deviates(_))
    }
}

fn errno_text(errno: i32) -> String {
    format!("{} ({errno})", protocol::errno_name(errno))
}

/// The log line a refusal's words would be on: the last non-empty one (the verifier ends
/// with its reason, then "processed N insns" only on success).
fn last_line(log: &str) -> String {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// The kernel's answer against the model's.
pub fn compare(expected: &Expected, kernel: &KernelAnswer) -> Agreement {
    let mut reasons = Vec::new();
    let mut reworded = None;
    match (&expected.load, &kernel.load) {
        (Ok(()), Ok(())) => {}
        (Ok(()), Err(refused)) => reasons.push(format!(
            "load: model accepts, kernel refuses with {}: {}",
            errno_text(refused.errno),
            last_line(&refused.log)
        )),
        (Err(refusal), Ok(())) => reasons.push(format!(
            "load: model refuses with {} ({}), kernel accepts",
            refusal.errno.name(),
            refusal.words
        )),
        (Err(refusal), Err(refused)) => {
            if refusal.errno.number() != refused.errno {
                reasons.push(format!(
                    "load: model refuses with {}, kernel with {}: {}",
                    refusal.errno.name(),
                    errno_text(refused.errno),
                    last_line(&refused.log)
                ));
            } else if !refused.log.contains(&refusal.words) {
                reworded = Some(Agreement::Reworded {
                    model: refusal.words.clone(),
                    kernel: last_line(&refused.log),
                });
            }
        }
    }
    if reasons.is_empty() {
        match (&expected.attach, &kernel.attach) {
            (None, None) => {}
            (Some(_), None) => reasons.push("attach: the harness did not try".into()),
            (None, Some(_)) => {}
            (Some(Ok(())), Some(Err(errno))) => reasons.push(format!(
                "attach: model attaches, kernel refuses with {}",
                errno_text(*errno)
            )),
            (Some(Err(refusal)), Some(Ok(()))) => reasons.push(format!(
                "attach: model refuses with {} ({:?}), kernel attaches",
                refusal.errno.name(),
                refusal.rule
            )),
            (Some(Err(refusal)), Some(Err(errno))) if refusal.errno.number() != *errno => reasons
                .push(format!(
                    "attach: model refuses with {}, kernel with {}",
                    refusal.errno.name(),
                    errno_text(*errno)
                )),
            (Some(_), Some(_)) => {}
        }
    }
    if let (true, Some(seen)) = (reasons.is_empty(), &kernel.seen) {
        if let Some(reason) = seen_differs(expected, seen) {
            reasons.push(reason);
        }
    }
    if !reasons.is_empty() {
        return Agreement::Deviates(reasons);
    }
    reworded.unwrap_or(Agreement::Agrees)
}

/// What a firing showed against what the model predicts from the bytes its stores change;
/// `None` when they agree or the model cannot say.
fn seen_differs(expected: &Expected, seen: &SweepSeen) -> Option<String> {
    let kind = trigger::trigger_of(seen);
    let Some(Prediction::Seen(want)) = trigger::predict(kind, &expected.effects) else {
        return None;
    };
    if want == *seen {
        return None;
    }
    Some(match kind {
        SweepTrigger::TestmodRead => format!(
            "read: model {}, kernel {}",
            shown(&want).trim_start_matches("read "),
            shown(seen).trim_start_matches("read ")
        ),
        _ => format!(
            "buffer: model {} → {}, kernel → {}",
            hex(&trigger::TEST_RUN_BEFORE),
            shown(&want),
            shown(seen)
        ),
    })
}

/// Whether the model can say what a firing shows (a fired program whose answer it cannot
/// predict is not compared: counted apart).
pub fn predicted(expected: &Expected, seen: &SweepSeen) -> bool {
    matches!(
        trigger::predict(trigger::trigger_of(seen), &expected.effects),
        Some(Prediction::Seen(_))
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The kernel's answer as the guest recorded it.
pub fn kernel_answer(result: &SweepResult) -> KernelAnswer {
    KernelAnswer {
        load: match result.load {
            0 => Ok(()),
            errno => Err(Refused {
                errno,
                log: match result.note.is_empty() {
                    true => result.verdict.clone(),
                    false => format!("{}\n{}", result.note, result.verdict),
                },
            }),
        },
        attach: result.attach.map(|errno| match errno {
            0 => Ok(()),
            errno => Err(errno),
        }),
        seen: result.after.clone(),
    }
}

/// One sweep judged: each generated program with the model's answer and the kernel's (`None`
/// when the guest has no record of it).
pub struct Judged {
    pub tracepoint: Tracepoint,
    pub programs: Vec<Program>,
    pub expected: Vec<Expected>,
    pub answers: Vec<Option<KernelAnswer>>,
    /// Per program: what the JIT's firing showed and the interpreter's, where both ran.
    pub interpreted: Vec<Option<(SweepSeen, SweepSeen)>>,
    pub notes: Vec<String>,
    pub done_ms: Option<u64>,
}

impl Judged {
    /// The programs regenerated and predicted (pure, deterministic: the plan's), matched to
    /// the records by name.
    pub fn of(tp: &Tracepoint, records: Option<&SweepRecords>) -> Self {
        Self::of_programs(tp, generate(tp), records)
    }

    /// A sweep as a run asked for it: the whole family, or one cell's program.
    pub fn of_sweep(
        sweep: &crate::cases::sweep::plan::Sweep,
        records: Option<&SweepRecords>,
    ) -> Self {
        let tp = &sweep.tracepoint;
        let mut programs = generate(tp);
        if let Some(cell) = &sweep.program {
            programs.retain(|p| &p.name == cell);
        }
        Self::of_programs(tp, programs, records)
    }

    fn of_programs(
        tp: &Tracepoint,
        programs: Vec<Program>,
        records: Option<&SweepRecords>,
    ) -> Self {
        let expected = programs.iter().map(|p| predict(p, tp)).collect();
        let by_name: BTreeMap<&str, &SweepResult> = records
            .map(|r| r.results.iter().map(|x| (x.name.as_str(), x)).collect())
            .unwrap_or_default();
        let found = |p: &Program| by_name.get(p.name.as_str()).copied();
        let answers = programs
            .iter()
            .map(|p| found(p).map(kernel_answer))
            .collect();
        let interpreted = programs
            .iter()
            .map(|p| {
                let r = found(p)?;
                Some((r.after.clone()?, r.interpreted.clone()?))
            })
            .collect();
        Judged {
            tracepoint: tp.clone(),
            programs,
            expected,
            answers,
            interpreted,
            notes: records.map(|r| r.notes.clone()).unwrap_or_default(),
            done_ms: records.and_then(|r| r.done_ms),
        }
    }

    /// How many programs the guest fired.
    pub fn fired(&self) -> usize {
        let fired = |a: &&Option<KernelAnswer>| a.as_ref().is_some_and(|a| a.seen.is_some());
        self.answers.iter().filter(fired).count()
    }

    /// The compact summary a kernel's snapshot keeps: counts per cell kind, the deviations
    /// (each program with its reasons), the rewordings grouped (digits as `N`), the JIT and
    /// interpreter comparison. A change between kernels or commits is a diff of this.
    /// Each program the kernel answered otherwise than the model, with why.
    pub fn deviations(&self) -> Vec<String> {
        self.triples()
            .into_iter()
            .filter_map(
                |(program, expected, answer)| match compare(expected, answer?) {
                    Agreement::Deviates(reasons) => {
                        Some(format!("{}: {}", program.name, reasons.join("; ")))
                    }
                    _ => None,
                },
            )
            .collect()
    }

    /// Each program with the model's answer and the kernel's.
    pub fn triples(&self) -> Vec<Triple<'_>> {
        (self.programs.iter())
            .zip(&self.expected)
            .zip(&self.answers)
            .map(|((p, e), a)| (p, e, a.as_ref()))
            .collect()
    }

    /// The grid as the snapshot keeps it ([`compact`]), with a header naming the columns.
    pub fn grid_lines(&self) -> Vec<String> {
        let header = groups()
            .iter()
            .map(|(name, sizes)| {
                let sizes: Vec<String> = sizes.iter().map(u32::to_string).collect();
                format!("{name} {}", sizes.join(","))
            })
            .collect::<Vec<_>>()
            .join(" | ");
        let mut lines = vec![format!("off {header}")];
        lines.extend(compact(&self.tracepoint, &self.triples()));
        lines
    }

    pub fn summary(&self) -> serde_json::Value {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut deviations = Vec::new();
        let mut reworded: BTreeMap<String, usize> = BTreeMap::new();
        let mut not_fired = 0;
        let mut unpredicted = Vec::new();
        for ((program, expected), answer) in
            self.programs.iter().zip(&self.expected).zip(&self.answers)
        {
            let Some(answer) = answer else {
                *counts.entry("not run").or_default() += 1;
                continue;
            };
            if matches!(expected.attach, Some(Ok(()))) && answer.seen.is_none() {
                not_fired += 1;
            }
            if let Some(seen) = &answer.seen {
                if !predicted(expected, seen) {
                    unpredicted.push(program.name.clone());
                }
            }
            let kind = match compare(expected, answer) {
                Agreement::Deviates(reasons) => {
                    deviations.push(format!("{}: {}", program.name, reasons.join("; ")));
                    "deviates"
                }
                Agreement::Reworded { model, kernel } => {
                    let key = format!("{} → {}", digits(&model), digits(&kernel));
                    *reworded.entry(key).or_default() += 1;
                    "refused at load, reworded"
                }
                Agreement::Agrees if expected.refused_at_load() => "refused at load",
                Agreement::Agrees if expected.refused_at_attach() => "refused at attach",
                Agreement::Agrees => "ok",
            };
            *counts.entry(kind).or_default() += 1;
        }
        let compared = self.interpreted.iter().flatten().count();
        let differ: Vec<String> = self
            .programs
            .iter()
            .zip(&self.interpreted)
            .filter_map(|(program, pair)| {
                let (jit, interpreter) = pair.as_ref()?;
                (jit != interpreter).then(|| {
                    format!(
                        "{}: JIT → {}, interpreter → {}",
                        program.name,
                        shown(jit),
                        shown(interpreter)
                    )
                })
            })
            .collect();
        let mut summary = serde_json::json!({
            "tracepoint": format!(
                "{} ({} bytes writable, {} arguments)",
                self.tracepoint.name, self.tracepoint.writable_size, self.tracepoint.arg_count
            ),
            "programs": self.programs.len(),
            "fired": self.fired(),
            "not fired (the model says they write outside the buffer, or refuses their attach)":
                not_fired,
            "counts": counts,
            "deviations": deviations,
            "reworded": reworded
                .into_iter()
                .map(|(words, n)| format!("{words} ({n})"))
                .collect::<Vec<_>>(),
            "jit vs interpreter": {
                "compared": compared,
                "differ": differ,
            },
            "grid": self.grid_lines(),
            // Timings vary from run to run: printed, never snapshotted.
            "notes": self.notes.iter().filter(|n| !n.starts_with("guest time")).collect::<Vec<_>>(),
        });
        // bpf_test_finish's summary is as it was before there were other triggers.
        let object = summary.as_object_mut().expect("an object");
        match Trigger::of(&self.tracepoint) {
            Trigger::TestRun => {}
            Trigger::TestmodRead => {
                object.insert(
                    "fired, but the model cannot say what the read shows (not compared)".into(),
                    unpredicted.into(),
                );
            }
            Trigger::None(why) => {
                object.remove(
                    "not fired (the model says they write outside the buffer, or refuses their attach)",
                );
                object.insert("not fired".into(), why.into());
            }
        }
        summary
    }
}

/// Every run of digits as `N` (so rewordings group by their words, not their offsets).
fn digits(text: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_number && c == 'x') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

// The grid's cells: for each program of the grid (the buffer accessed straight through ctx[0]
// by a type-24 program, at one offset with one access), what came of it against the model.
// The terminal's and the job summary's grids (`report::sweep_grid`) and the snapshot's
// compact grid (which docs/writable-rules.md is generated from) are drawn from the same cells.

/// One program, the model's answer and the kernel's (`None`: the kernel did not run it).
pub type Triple<'a> = (&'a Program, &'a Expected, Option<&'a KernelAnswer>);

/// What a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Ok,
    RefusedAtLoad,
    /// Refused at load as the model says, in other words.
    RefusedAtLoadReworded,
    RefusedAtAttach,
    Deviates,
    NotRun,
}

impl Cell {
    pub fn mark(self) -> &'static str {
        match self {
            Cell::Ok => "✓",
            Cell::RefusedAtLoad => "L",
            Cell::RefusedAtLoadReworded => "l",
            Cell::RefusedAtAttach => "A",
            Cell::Deviates => "✗",
            Cell::NotRun => "-",
        }
    }

    pub fn of(expected: &Expected, kernel: Option<&KernelAnswer>) -> Self {
        let Some(kernel) = kernel else {
            return Cell::NotRun;
        };
        match compare(expected, kernel) {
            Agreement::Deviates(_) => Cell::Deviates,
            Agreement::Reworded { .. } => Cell::RefusedAtLoadReworded,
            Agreement::Agrees if expected.refused_at_load() => Cell::RefusedAtLoad,
            Agreement::Agrees if expected.refused_at_attach() => Cell::RefusedAtAttach,
            Agreement::Agrees => Cell::Ok,
        }
    }
}

pub const LEGEND: &str = "✓ ok · L refused at load · l refused at load in other words than \
                          the model's · A refused at attach · ✗ deviates from the model · - not run";

/// The grid's columns: (op, size) in display order.
pub fn columns() -> Vec<(Op, Size)> {
    let mut columns = Vec::new();
    for op in [Op::Ldx, Op::Stx, Op::St] {
        columns.extend(Size::ALL.map(|size| (op, size)));
    }
    for atomic in AtomicOp::ALL {
        columns.extend([Size::W, Size::DW].map(|size| (Op::Atomic(atomic), size)));
    }
    columns
}

pub fn column_name((op, size): (Op, Size)) -> String {
    format!("{}.{}", op.short(), size.short())
}

/// Whether a program is one of the grid's cells.
pub fn in_grid(program: &Program) -> bool {
    let shape = &program.shape;
    program.prog_type == ProgType::RawTracepointWritable
        && shape.target == Target::Buffer
        && shape.moved == Move::None
        && !shape.tail_called
}

/// The cells by (offset, column).
pub fn cells(triples: &[Triple<'_>]) -> BTreeMap<(i32, (Op, Size)), Cell> {
    triples
        .iter()
        .filter(|(program, ..)| in_grid(program))
        .map(|(program, expected, kernel)| {
            let key = (program.shape.off, (program.shape.op, program.shape.size));
            (key, Cell::of(expected, *kernel))
        })
        .collect()
}

/// The grid's rows: each offset from −9 to the writable size + 8 with a mark per column.
pub fn rows(tp: &Tracepoint, triples: &[Triple<'_>]) -> Vec<(i32, Vec<&'static str>)> {
    let cells = cells(triples);
    let ws = tp.writable_size as i32;
    (-9..=ws + 8)
        .map(|off| {
            let marks = columns()
                .into_iter()
                .map(|column| cells.get(&(off, column)).map_or(" ", |c| c.mark()))
                .collect();
            (off, marks)
        })
        .collect()
}

/// The columns grouped by op: (op name, sizes in bytes).
pub fn groups() -> Vec<(&'static str, Vec<u32>)> {
    let mut groups: Vec<(&'static str, Vec<u32>)> = Vec::new();
    for (op, size) in columns() {
        match groups.last_mut() {
            Some((name, sizes)) if *name == op.short() => sizes.push(size.bytes()),
            _ => groups.push((op.short(), vec![size.bytes()])),
        }
    }
    groups
}

/// The grid as the snapshot keeps it: a line per offset, its marks grouped by op (in
/// [`groups`]' order) — `"  0 ✓✓✓A ✓✓✓A ✓✓✓A ✓A ✓A ✓A"`.
pub fn compact(tp: &Tracepoint, triples: &[Triple<'_>]) -> Vec<String> {
    let groups = groups();
    rows(tp, triples)
        .into_iter()
        .map(|(off, marks)| {
            let mut marks = marks.into_iter();
            let grouped: Vec<String> = groups
                .iter()
                .map(|(_, sizes)| marks.by_ref().take(sizes.len()).collect())
                .collect();
            format!("{off:>3} {}", grouped.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::sweep::family::buffer;
    use crate::cases::sweep::insn::{AtomicOp, Size};
    use crate::cases::sweep::model::predict;
    use crate::cases::sweep::{Move, Op, ProgType, Tracepoint};
    use protocol::ReadAnswer;

    fn tp() -> Tracepoint {
        Tracepoint::new("bpf_test_finish", 4, 1)
    }

    fn expected(op: Op, size: Size, off: i32) -> Expected {
        let program = buffer(
            &tp(),
            ProgType::RawTracepointWritable,
            op,
            size,
            off,
            Move::None,
        );
        predict(&program, &tp())
    }

    fn ran(after: [u8; 4]) -> KernelAnswer {
        KernelAnswer {
            load: Ok(()),
            attach: Some(Ok(())),
            seen: Some(SweepSeen::Buffer(after.to_vec())),
        }
    }

    fn refused(errno: i32, log: &str) -> KernelAnswer {
        KernelAnswer {
            load: Err(Refused {
                errno,
                log: log.into(),
            }),
            attach: None,
            seen: None,
        }
    }

    #[test]
    fn the_right_bytes_agree_and_the_wrong_ones_deviate() {
        let store = expected(Op::Stx, Size::H, 2);
        assert_eq!(compare(&store, &ran([0, 0, 0x11, 0x22])), Agreement::Agrees);
        let wrong = compare(&store, &ran([0x11, 0x22, 0, 0]));
        assert_eq!(
            wrong,
            Agreement::Deviates(vec![
                "buffer: model 00000000 → 00001122, kernel → 11220000".into()
            ])
        );
    }

    #[test]
    fn bpf_testmods_read_is_compared_with_what_the_models_bytes_say() {
        let tp = Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1);
        let at = |op, size, off| {
            let program = buffer(
                &tp,
                ProgType::RawTracepointWritable,
                op,
                size,
                off,
                Move::None,
            );
            predict(&program, &tp)
        };
        let read = |answer: ReadAnswer| KernelAnswer {
            load: Ok(()),
            attach: Some(Ok(())),
            seen: Some(SweepSeen::Read(answer)),
        };
        let early_ret = at(Op::St, Size::B, 0);
        let text = |t: &str| read(ReadAnswer::Text(t.into()));
        assert_eq!(compare(&early_ret, &text("1024\n")), Agreement::Agrees);
        assert_eq!(
            compare(&early_ret, &read(ReadAnswer::Errno(5))),
            Agreement::Deviates(vec![r#"read: model "1024\n", kernel fails with EIO"#.into()])
        );
        let val_alone = at(Op::Stx, Size::W, 4);
        assert_eq!(
            compare(&val_alone, &read(ReadAnswer::Errno(5))),
            Agreement::Agrees
        );
        assert!(compare(&val_alone, &text("1144201745\n")).deviates());
        // What the padding decides is not compared, but counted apart.
        let cmpxchg = at(Op::Atomic(AtomicOp::Cmpxchg), Size::W, 0);
        let seen = SweepSeen::Read(ReadAnswer::Text("1024\n".into()));
        assert!(!predicted(&cmpxchg, &seen));
        assert_eq!(compare(&cmpxchg, &text("1024\n")), Agreement::Agrees);
        assert_eq!(
            compare(&cmpxchg, &read(ReadAnswer::Errno(5))),
            Agreement::Agrees
        );
    }

    #[test]
    fn the_summary_keeps_bpf_test_finishs_keys_and_says_what_others_add() {
        let keys = |name: &str, size, args| {
            let judged = Judged::of(&Tracepoint::new(name, size, args), None);
            let summary = judged.summary();
            let keys: Vec<String> = summary.as_object().unwrap().keys().cloned().collect();
            (keys, summary)
        };
        let finish = [
            "counts",
            "deviations",
            "fired",
            "grid",
            "jit vs interpreter",
            "not fired (the model says they write outside the buffer, or refuses their attach)",
            "notes",
            "programs",
            "reworded",
            "tracepoint",
        ];
        assert_eq!(keys("bpf_test_finish", 4, 1).0, finish);
        let (testmod, _) = keys("bpf_testmod_test_writable_bare", 8, 1);
        assert!(testmod.contains(
            &"fired, but the model cannot say what the read shows (not compared)".to_owned()
        ));
        let (nbd, summary) = keys("nbd_send_request", 28, 3);
        assert!(!nbd.iter().any(|k| k.starts_with("not fired (")));
        assert!(summary["not fired"]
            .as_str()
            .unwrap()
            .starts_with("its buffer is the NBD request"));
    }

    #[test]
    fn the_snapshots_grid_has_a_line_per_offset_with_the_marks_grouped_by_op() {
        let judged = Judged::of(&Tracepoint::new("bpf_test_finish", 4, 1), None);
        let grid = judged.grid_lines();
        assert_eq!(
            grid[0],
            "off ldx 1,2,4,8 | stx 1,2,4,8 | st 1,2,4,8 | add 4,8 | xchg 4,8 | cmpxchg 4,8"
        );
        assert_eq!(
            grid.len(),
            1 + (4 + 8 + 9 + 1) as usize,
            "offsets -9 ..= 12"
        );
        assert_eq!(
            grid[1], " -9 ---- ---- ---- -- -- --",
            "nothing ran: not run"
        );
    }

    #[test]
    fn other_words_for_the_same_refusal_are_reworded_not_deviating() {
        let negative = expected(Op::Ldx, Size::W, -4);
        let on_7_2 = "0: (79) r6 = *(u64 *)(r1 +0)\nR6 invalid negative tracepoint buffer offset: off=-4, var_off=0\n";
        assert_eq!(compare(&negative, &refused(13, on_7_2)), Agreement::Agrees);
        let on_6_12 = "R6 invalid tracepoint buffer access: off=-4, size=4\n";
        assert_eq!(
            compare(&negative, &refused(13, on_6_12)),
            Agreement::Reworded {
                model: "R6 invalid negative tracepoint buffer offset: off=-4, var_off=0".into(),
                kernel: "R6 invalid tracepoint buffer access: off=-4, size=4".into(),
            }
        );
        assert!(compare(&negative, &refused(22, on_6_12)).deviates());
    }

    #[test]
    fn a_different_verdict_deviates() {
        let past = expected(Op::Ldx, Size::B, 4);
        let attached = KernelAnswer {
            load: Ok(()),
            attach: Some(Ok(())),
            seen: None,
        };
        assert_eq!(
            compare(&past, &attached),
            Agreement::Deviates(vec![
                "attach: model refuses with EINVAL (AttachBufferPastWritable), kernel attaches"
                    .into()
            ])
        );
        let refused_at_attach = KernelAnswer {
            attach: Some(Err(22)),
            ..attached
        };
        assert_eq!(compare(&past, &refused_at_attach), Agreement::Agrees);
        let ok = expected(Op::Ldx, Size::B, 3);
        assert!(compare(&ok, &refused(13, "R6 something\n")).deviates());
        assert!(compare(
            &ok,
            &KernelAnswer {
                attach: None,
                ..ran([0; 4])
            }
        )
        .deviates());
    }
}
