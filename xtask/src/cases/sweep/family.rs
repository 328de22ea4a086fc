//! The generated family for one tracepoint. Every program is straight-line code of the same
//! skeleton: `r6 = *(u64 *)(r1 + 0)` (the buffer pointer), the pointer moved or not, the value
//! to store put in `r7`, the one access, `r0 = 0; exit`. Pure: the tracepoint in, programs out.
//!
//! The parts (offsets `o` run from −9 to writable size + 8; sizes are 1, 2, 4 and 8 bytes):
//! - buffer: `ldx`, `stx`, `st` at every `o` and size; atomic add, xchg and cmpxchg (4 and 8
//!   bytes; xchg and cmpxchg are v3 ISA, 5.12+) at every `o`; atomic add of 1 and 2 bytes
//!   (no such instruction) once;
//! - moved by a constant: `r6 += k` for k in −16..=16 (not 0), then `ldx`/`stx` of 1 and 8
//!   bytes at the offsets around the edges the move shifts (start − 1, start, last valid,
//!   one past), and 4-byte atomic add there (aligned and not);
//! - moved by a bounded variable: `r6 += prandom & mask` (mask 0, 1, 3, 7; 0 makes it a known
//!   zero), then `ldx`/`stx` of 1 and 8 bytes at −1, 0, last valid and one past;
//! - ctx: reads of every size at every offset of slots 0–12 (0..104) and at −8 and −1;
//!   `stx`/`st` of every size at every slot; atomic add at slots 0 and 1;
//! - plain raw_tp (type 17) where it differs: the buffer accesses at offset 0 (ctx[0] is a
//!   scalar there) and the ctx slot 0 reads and writes (type 24 wants exactly an 8-byte read);
//! - for every program [`super::model::predict`] refuses at attach: a caller that attaches
//!   (it touches nothing) and tail-calls it through slot 0 of a prog array.

use std::collections::{BTreeSet, HashSet};

use super::insn::{
    AtomicOp, Insn, Size, BPF_ADD, BPF_AND, BPF_FUNC_GET_PRANDOM_U32, BPF_FUNC_TAIL_CALL,
    MAP_FD_PLACEHOLDER, R0, R1, R2, R3, R6, R7,
};
use super::{
    model, MapRef, Move, Op, ProgType, Program, Relocation, Shape, Target, Tracepoint, ADD_VALUE,
    CMPXCHG_EXPECTED, STORE_IMM, STORE_VALUE,
};

/// Every program of the sweep for `tp`, in a stable order, names unique.
pub fn generate(tp: &Tracepoint) -> Vec<Program> {
    let writable = ProgType::RawTracepointWritable;
    let plain = ProgType::RawTracepoint;
    let ws = tp.writable_size as i32;
    let mut programs = Vec::new();

    // The buffer at every offset.
    for off in -9..=ws + 8 {
        for op in [Op::Ldx, Op::Stx, Op::St] {
            for size in Size::ALL {
                programs.push(buffer(tp, writable, op, size, off, Move::None));
            }
        }
        for op in AtomicOp::ALL {
            for size in [Size::W, Size::DW] {
                programs.push(buffer(tp, writable, Op::Atomic(op), size, off, Move::None));
            }
        }
    }
    for size in [Size::B, Size::H] {
        let op = Op::Atomic(AtomicOp::Add);
        programs.push(buffer(tp, writable, op, size, 0, Move::None));
    }

    // The pointer moved by a constant.
    for k in (-16..=16).filter(|k| *k != 0) {
        for op in [Op::Ldx, Op::Stx] {
            for size in [Size::B, Size::DW] {
                let n = size.bytes() as i32;
                for off in edges(-k, ws - k - n) {
                    programs.push(buffer(tp, writable, op, size, off, Move::Const(k)));
                }
            }
        }
        let add = Op::Atomic(AtomicOp::Add);
        for off in [-k - 4, -k, -k + 1, ws - k - 4, ws - k] {
            programs.push(buffer(tp, writable, add, Size::W, off, Move::Const(k)));
        }
    }

    // The pointer moved by a bounded variable.
    for mask in [0, 1, 3, 7] {
        for op in [Op::Ldx, Op::Stx] {
            for size in [Size::B, Size::DW] {
                for off in edges(0, ws - size.bytes() as i32) {
                    programs.push(buffer(tp, writable, op, size, off, Move::Var { mask }));
                }
            }
        }
    }

    // The ctx.
    let ctx_reads = [(-8, Size::DW), (-1, Size::B)]
        .into_iter()
        .chain((0..13 * 8).flat_map(|off| Size::ALL.map(|size| (off, size))));
    for (off, size) in ctx_reads {
        programs.push(ctx(tp, writable, Op::Ldx, size, off));
    }
    for slot in 0..13 {
        for op in [Op::Stx, Op::St] {
            for size in Size::ALL {
                programs.push(ctx(tp, writable, op, size, slot * 8));
            }
        }
    }
    for off in [0, 8] {
        for size in [Size::W, Size::DW] {
            programs.push(ctx(tp, writable, Op::Atomic(AtomicOp::Add), size, off));
        }
    }

    // Plain raw_tp where it differs.
    for op in [Op::Ldx, Op::Stx, Op::St] {
        for size in Size::ALL {
            programs.push(buffer(tp, plain, op, size, 0, Move::None));
        }
    }
    for size in [Size::W, Size::DW] {
        programs.push(buffer(
            tp,
            plain,
            Op::Atomic(AtomicOp::Add),
            size,
            0,
            Move::None,
        ));
    }
    for off in 0..8 {
        for size in Size::ALL {
            programs.push(ctx(tp, plain, Op::Ldx, size, off));
        }
    }
    for op in [Op::Stx, Op::St] {
        for size in Size::ALL {
            programs.push(ctx(tp, plain, op, size, 0));
        }
    }

    // What attach refuses, reached through a tail call.
    let callers: Vec<Program> = programs
        .iter()
        .filter(|program| model::predict(program, tp).refused_at_attach())
        .map(|program| tail_caller(tp, program))
        .collect();
    programs.extend(callers);

    let mut seen = HashSet::new();
    programs.retain(|program| seen.insert(program.name.clone()));
    programs
}

/// The offsets around a range that starts at `first` and whose last valid start is `last`:
/// one before, the first, the last, one past — each once.
fn edges(first: i32, last: i32) -> BTreeSet<i32> {
    [first - 1, first, last, last + 1].into_iter().collect()
}

fn prefix(tp: &Tracepoint, prog_type: ProgType) -> String {
    match prog_type {
        ProgType::RawTracepointWritable => format!("sweep.{}.", tp.name),
        ProgType::RawTracepoint => format!("sweep.{}.raw_tp.", tp.name),
    }
}

fn type_words(prog_type: ProgType) -> &'static str {
    match prog_type {
        ProgType::RawTracepointWritable => "raw_tp.w",
        ProgType::RawTracepoint => "raw_tp",
    }
}

fn op_words(op: Op, size: Size) -> String {
    let n = size.bytes();
    match op {
        Op::Ldx => format!("{n}-byte load"),
        Op::Stx => format!("{n}-byte store of a register ({STORE_VALUE:#x} cut to size)"),
        Op::St => format!("{n}-byte store of the immediate {STORE_IMM}"),
        Op::Atomic(AtomicOp::Add) => format!("{n}-byte atomic add of {ADD_VALUE:#x}"),
        Op::Atomic(AtomicOp::Xchg) => format!("{n}-byte atomic xchg with {STORE_VALUE:#x}"),
        Op::Atomic(AtomicOp::Cmpxchg) => {
            format!("{n}-byte atomic cmpxchg of {CMPXCHG_EXPECTED} for {STORE_VALUE:#x}")
        }
    }
}

/// The value register and the access, `base` being r6 (buffer) or r1 (ctx).
fn access(op: Op, size: Size, base: u8, off: i16) -> Vec<Insn> {
    let mut insns = Vec::new();
    match op {
        Op::Ldx => insns.push(Insn::ldx(size, R7, base, off)),
        Op::Stx => {
            insns.extend(Insn::ld_imm64(R7, STORE_VALUE));
            insns.push(Insn::stx(size, base, R7, off));
        }
        Op::St => insns.push(Insn::st(size, base, off, STORE_IMM)),
        Op::Atomic(atomic) => {
            let value = if atomic == AtomicOp::Add {
                ADD_VALUE
            } else {
                STORE_VALUE
            };
            insns.extend(Insn::ld_imm64(R7, value));
            if atomic == AtomicOp::Cmpxchg {
                insns.push(Insn::mov64_imm(R0, CMPXCHG_EXPECTED as i32));
            }
            insns.push(Insn::atomic(size, atomic, base, R7, off));
        }
    }
    insns
}

fn finish(insns: &mut Vec<Insn>) {
    insns.push(Insn::mov64_imm(R0, 0));
    insns.push(Insn::exit());
}

/// A program that accesses the buffer through r6 (ctx[0]), moved as `moved` says.
pub fn buffer(
    tp: &Tracepoint,
    prog_type: ProgType,
    op: Op,
    size: Size,
    off: i32,
    moved: Move,
) -> Program {
    let mut insns = vec![Insn::ldx(Size::DW, R6, R1, 0)];
    let (move_name, move_words) = match moved {
        Move::None => (String::new(), String::new()),
        Move::Const(k) => {
            insns.push(Insn::alu64_imm(BPF_ADD, R6, k));
            (format!("k{k}."), format!("r6 += {k}; "))
        }
        Move::Var { mask } => {
            insns.push(Insn::call(BPF_FUNC_GET_PRANDOM_U32));
            insns.push(Insn::alu64_imm(BPF_AND, R0, mask));
            insns.push(Insn::alu64_reg(BPF_ADD, R6, R0));
            (
                format!("var{mask}."),
                format!("r6 += bpf_get_prandom_u32() & {mask}; "),
            )
        }
    };
    insns.extend(access(op, size, R6, off as i16));
    finish(&mut insns);
    Program {
        name: format!(
            "{}{}.{}.{move_name}off{off}",
            prefix(tp, prog_type),
            op.short(),
            size.short()
        ),
        prog_type,
        insns,
        description: format!(
            "{}: r6 = ctx[0]; {move_words}{} at r6 {} {}",
            type_words(prog_type),
            op_words(op, size),
            if off < 0 { '-' } else { '+' },
            off.abs()
        ),
        shape: Shape {
            target: Target::Buffer,
            op,
            size,
            off,
            moved,
            tail_called: false,
        },
        relocations: Vec::new(),
        tail_call: None,
    }
}

/// A program that accesses the ctx (the tracepoint's arguments, 8 bytes each) through r1.
pub fn ctx(tp: &Tracepoint, prog_type: ProgType, op: Op, size: Size, off: i32) -> Program {
    let mut insns = access(op, size, R1, off as i16);
    finish(&mut insns);
    Program {
        name: format!(
            "{}ctx.{}.{}.off{off}",
            prefix(tp, prog_type),
            op.short(),
            size.short()
        ),
        prog_type,
        insns,
        description: format!(
            "{}: {} at ctx {} {}",
            type_words(prog_type),
            op_words(op, size),
            if off < 0 { '-' } else { '+' },
            off.abs()
        ),
        shape: Shape {
            target: Target::Ctx,
            op,
            size,
            off,
            moved: Move::None,
            tail_called: false,
        },
        relocations: Vec::new(),
        tail_call: None,
    }
}

/// A caller of the same type that touches nothing (so it attaches anywhere) and tail-calls
/// slot 0 of a prog array holding `callee`.
pub fn tail_caller(tp: &Tracepoint, callee: &Program) -> Program {
    let mut insns = Insn::ld_map_fd(R2, MAP_FD_PLACEHOLDER).to_vec();
    insns.push(Insn::mov64_imm(R3, 0));
    insns.push(Insn::call(BPF_FUNC_TAIL_CALL));
    finish(&mut insns);
    let base = prefix(tp, callee.prog_type);
    let rest = callee.name.strip_prefix(&base).unwrap_or(&callee.name);
    Program {
        name: format!("{base}tail.{rest}"),
        prog_type: callee.prog_type,
        insns,
        description: format!(
            "{}: bpf_tail_call(ctx, prog array, 0) into `{}` ({})",
            type_words(callee.prog_type),
            callee.name,
            callee.description
        ),
        shape: Shape {
            tail_called: true,
            ..callee.shape
        },
        relocations: vec![Relocation {
            insn: 0,
            map: MapRef::ProgArray,
        }],
        tail_call: Some(Box::new(callee.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(programs: &[Program]) -> Vec<&str> {
        programs.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn counts_per_tracepoint() {
        let count = |name, size, args| generate(&Tracepoint::new(name, size, args)).len();
        let counts = [
            count("bpf_testmod_test_writable_bare", 8, 1),
            count("nbd_send_request", 28, 3),
            count("bpf_test_finish", 4, 1),
            count("wtp_own_rewrite", 16, 2),
        ];
        // Keep the module's doc comment in step with these.
        assert_eq!(counts, [2199, 2601, 2158, 2400]);
        assert!(counts.iter().all(|n| *n < 5000), "a few thousand at most");
    }

    #[test]
    fn names_are_stable_and_unique() {
        let tp = Tracepoint::new("nbd_send_request", 28, 3);
        let programs = generate(&tp);
        let unique: HashSet<&str> = names(&programs).into_iter().collect();
        assert_eq!(unique.len(), programs.len());
        for name in [
            "sweep.nbd_send_request.stx.w.off12",
            "sweep.nbd_send_request.ldx.b.off-9",
            "sweep.nbd_send_request.st.dw.off36",
            "sweep.nbd_send_request.cmpxchg.dw.off0",
            "sweep.nbd_send_request.ldx.b.k-8.off36",
            "sweep.nbd_send_request.ldx.dw.var7.off0",
            "sweep.nbd_send_request.ctx.ldx.w.off12",
            "sweep.nbd_send_request.ctx.st.dw.off96",
            "sweep.nbd_send_request.raw_tp.ldx.dw.off0",
            "sweep.nbd_send_request.raw_tp.ctx.ldx.b.off0",
            "sweep.nbd_send_request.tail.ldx.b.off28",
            "sweep.nbd_send_request.tail.ctx.ldx.dw.off24",
        ] {
            assert!(unique.contains(name), "{name} missing");
        }
        assert_eq!(generate(&tp), programs, "the family is deterministic");
    }

    #[test]
    fn the_family_covers_every_offset_and_size() {
        let tp = Tracepoint::new("bpf_test_finish", 4, 1);
        let programs = generate(&tp);
        for off in -9..=12 {
            for op in ["ldx", "stx", "st"] {
                for size in Size::ALL {
                    let name = format!("sweep.bpf_test_finish.{op}.{}.off{off}", size.short());
                    assert!(programs.iter().any(|p| p.name == name), "{name}");
                }
            }
        }
        let k = programs
            .iter()
            .filter_map(|p| match p.shape.moved {
                Move::Const(k) => Some(k),
                _ => None,
            })
            .collect::<BTreeSet<_>>();
        assert_eq!(k.len(), 32);
        assert_eq!((k.first(), k.last()), (Some(&-16), Some(&16)));
    }

    #[test]
    fn a_program_reads_as_its_description_says() {
        let tp = Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1);
        let program = buffer(
            &tp,
            ProgType::RawTracepointWritable,
            Op::Stx,
            Size::W,
            12,
            Move::Const(-8),
        );
        assert_eq!(
            program.name,
            "sweep.bpf_testmod_test_writable_bare.stx.w.k-8.off12"
        );
        assert_eq!(
            program.listing(),
            "   0: r6 = *(u64 *)(r1 + 0)\n   1: r6 += -8\n   2: r7 = 0x8877665544332211 ll\n   4: *(u32 *)(r6 + 12) = r7\n   5: r0 = 0\n   6: exit"
        );
        assert_eq!(
            program.description,
            "raw_tp.w: r6 = ctx[0]; r6 += -8; 4-byte store of a register (0x8877665544332211 cut to size) at r6 + 12"
        );
        assert_eq!(program.bytes().len(), 7 * 8);
    }

    #[test]
    fn a_tail_caller_names_its_slot_for_the_guest() {
        let tp = Tracepoint::new("bpf_test_finish", 4, 1);
        let callee = buffer(
            &tp,
            ProgType::RawTracepointWritable,
            Op::Ldx,
            Size::W,
            4,
            Move::None,
        );
        let caller = tail_caller(&tp, &callee);
        assert_eq!(caller.name, "sweep.bpf_test_finish.tail.ldx.w.off4");
        assert_eq!(
            caller.relocations,
            [Relocation {
                insn: 0,
                map: MapRef::ProgArray
            }]
        );
        assert_eq!(caller.insns[0].imm, MAP_FD_PLACEHOLDER);
        assert_eq!(
            caller.listing(),
            "   0: r2 = map_fd(-1) ll\n   2: r3 = 0\n   3: call 12\n   4: r0 = 0\n   5: exit"
        );
        assert_eq!(caller.tail_call.as_deref(), Some(&callee));
        assert!(caller.shape.tail_called);
    }
}
