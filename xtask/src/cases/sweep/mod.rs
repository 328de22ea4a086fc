//! The boundary sweep (issue 27), host side and pure: a generated family of programs, given as
//! instructions, around one writable tracepoint's buffer and ctx ([`family`]), and a model of
//! the kernel's rules that says what each should come to ([`model`]) and what firing the
//! tracepoint then shows ([`trigger`]). The guest runs them; the judge compares
//! ([`crate::judge::sweep`]); the grid shows it ([`crate::report::sweep_grid`]).
//!
//! Which tracepoints: every one the kernel under test defines with a writable size, read
//! from its vmlinux and the modules the guest loads ([`crate::kernel::raw_tp`]: `struct
//! bpf_raw_event_map`'s `num_args` and `writable_size`), one sweep each, `sweep.<tracepoint>`
//! ([`plan`]). On the matrix's kernels: bpf_test_finish (4 bytes, 1 argument; all four),
//! nbd_send_request (28 bytes, 3 arguments; all four), bpf_testmod_test_writable_bare (8
//! bytes, 1 argument; 6.1, 6.12, 7.2), and a case directory's module's own (e.g.
//! examples/own-tracepoint's `wtp_own_rewrite`, 16 bytes, 2 arguments).
//!
//! How each is fired ([`trigger`]): bpf_test_finish by BPF_PROG_TEST_RUN (its 4 bytes come
//! back as the return value), bpf_testmod's by a 64-byte read (`early_ret` and, when set,
//! `val` come back as the read's answer); nbd_send_request and a module's own tracepoint are
//! loaded and attached only (rewriting an NBD request on the wire breaks the device; what fires
//! a module's own tracepoint is its code's business).
//!
//! What the guest-running half calls:
//! - [`family::generate`]`(&Tracepoint)` → every [`Program`] for one tracepoint, whose
//!   writable size and argument count the kernel gave;
//! - [`model::predict`]`(&Program, &Tracepoint)` → the [`model::Expected`] answer;
//! - [`trigger::predict`]`(trigger, &effects)` → what one firing shows;
//! - a tail-call caller ([`Program::tail_call`] is `Some`) has a [`Relocation`] naming the
//!   `ld_imm64` whose `imm` is [`insn::MAP_FD_PLACEHOLDER`]: the guest creates a
//!   `BPF_MAP_TYPE_PROG_ARRAY` (4-byte key and value, one entry), loads the callee (same
//!   type), puts its fd in slot 0, writes the map's fd into that `imm` (the slot's `src_reg`
//!   is already `BPF_PSEUDO_MAP_FD`), loads the caller and attaches only the caller.
//!
//! Counts (from the test `counts_per_tracepoint`; the family grows with the writable size and
//! shrinks with the argument count, whose ctx reads past the arguments get tail-call callers):
//! bpf_testmod_test_writable_bare (8 bytes, 1 argument) 2199 programs, nbd_send_request
//! (28 bytes, 3 arguments) 2601, bpf_test_finish (4 bytes, 1 argument) 2158, wtp_own_rewrite
//! (16 bytes, 2 arguments) 2400. Of nbd's, the model accepts 718 alone and refuses 1108
//! at load and 455 at attach; the other 455 are those reached through a tail call, and 135 of
//! the refusals at attach are ctx reads past the 3 arguments.

pub mod family;
pub mod insn;
pub mod model;
pub mod plan;
pub mod trigger;

use serde::{Deserialize, Serialize};

pub use family::generate;
use insn::{AtomicOp, Insn, Size};

/// One tracepoint as the kernel describes it (`struct bpf_raw_event_map`: `writable_size`,
/// `num_args`); the name as case files know it (where a kernel renames the tracepoint, the
/// sweep's [`plan::Sweep`] keeps the kernel's name for the attach).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracepoint {
    pub name: String,
    pub writable_size: u32,
    pub arg_count: u32,
}

impl Tracepoint {
    pub fn new(name: &str, writable_size: u32, arg_count: u32) -> Self {
        Tracepoint {
            name: name.to_owned(),
            writable_size,
            arg_count,
        }
    }
}

/// The two program types the sweep loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (17): may read ctx[0], never dereference it.
    RawTracepoint,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE` (24).
    RawTracepointWritable,
}

impl ProgType {
    /// The number BPF_PROG_LOAD takes.
    pub fn number(self) -> u32 {
        match self {
            ProgType::RawTracepoint => 17,
            ProgType::RawTracepointWritable => 24,
        }
    }
}

/// An `ld_imm64` whose `imm` the loading process fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relocation {
    /// Index of the `ld_imm64`'s first slot in [`Program::insns`].
    pub insn: usize,
    pub map: MapRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapRef {
    /// A one-entry `BPF_MAP_TYPE_PROG_ARRAY` whose slot 0 holds [`Program::tail_call`].
    ProgArray,
}

/// How the buffer pointer was moved before the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Move {
    /// `r6` as ctx[0] gave it.
    None,
    /// `r6 += k`.
    Const(i32),
    /// `r0 = bpf_get_prandom_u32(); r0 &= mask; r6 += r0`.
    Var { mask: i32 },
}

/// What a program does to the buffer or the ctx, in the terms a grid sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    Ldx,
    Stx,
    St,
    Atomic(AtomicOp),
}

impl Op {
    pub fn short(self) -> &'static str {
        match self {
            Op::Ldx => "ldx",
            Op::Stx => "stx",
            Op::St => "st",
            Op::Atomic(op) => op.short(),
        }
    }

    pub fn is_store(self) -> bool {
        self != Op::Ldx
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// Through `r6`, the pointer ctx[0] gave (a scalar in a plain raw_tp program).
    Buffer,
    /// Through `r1`, the ctx itself.
    Ctx,
}

/// The one access a program is about: the row and column it belongs to in a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shape {
    pub target: Target,
    pub op: Op,
    pub size: Size,
    /// The instruction's `off`.
    pub off: i32,
    pub moved: Move,
    /// Whether the program is reached through a tail call from an attached caller.
    pub tail_called: bool,
}

/// One generated program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Stable: `sweep.<tracepoint>.<what>`, e.g. `sweep.nbd_send_request.stx.w.off12`.
    pub name: String,
    pub prog_type: ProgType,
    pub insns: Vec<Insn>,
    /// What it does, in words.
    pub description: String,
    pub shape: Shape,
    pub relocations: Vec<Relocation>,
    /// The program the guest loads into slot 0 of the prog array before the caller attaches;
    /// it is never attached itself.
    pub tail_call: Option<Box<Program>>,
}

impl Program {
    /// The instructions in llvm-objdump's words, one per line (a finding shows these).
    pub fn listing(&self) -> String {
        insn::listing(&self.insns).join("\n")
    }

    /// The `insns` array BPF_PROG_LOAD takes (placeholders unfilled).
    pub fn bytes(&self) -> Vec<u8> {
        insn::encode(&self.insns)
    }
}

/// The value `stx` and `xchg` store (its bytes are all different, so a store at the wrong
/// offset or of the wrong width shows).
pub const STORE_VALUE: u64 = 0x8877_6655_4433_2211;
/// The immediate `st` stores: negative, so the u64 store's sign extension shows.
pub const STORE_IMM: i32 = 0xa4b3_c2d1_u32 as i32;
/// What atomic add adds.
pub const ADD_VALUE: u64 = 0x0102_0304_0506_0708;
/// What cmpxchg compares with (r0); it stores [`STORE_VALUE`] when the bytes are equal.
pub const CMPXCHG_EXPECTED: u64 = 0;
