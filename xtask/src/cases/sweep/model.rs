//! The model: what today's upstream (7.2) answers for a sweep program on a tracepoint. Pure.
//!
//! It walks the program's instructions once, the way the verifier does for straight-line code,
//! keeping for each register what the verifier knows (ctx, the tracepoint buffer with its
//! offset as a tnum, a scalar as a tnum, a prog array, nothing), and applies the rules below at
//! the first instruction that breaks one. Each rule cites the kernel function and the lines
//! in 7.2.13 and 6.12.117 (`v7.2` / `v6.12`; paths under the kernel tree). Older kernels are
//! not special-cased: where they answer otherwise, that is a finding for the judge.
//!
//! Assumptions, both true of the project's guests: x86-64 (so
//! `CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS` and only atomics check alignment), no
//! `BPF_F_STRICT_ALIGNMENT`, a loader with CAP_BPF + CAP_PERFMON (no pointer sanitation).

use serde::{Deserialize, Serialize};

use super::insn::{
    AtomicOp, Insn, Size, BPF_ADD, BPF_ALU64, BPF_AND, BPF_ATOMIC, BPF_CALL, BPF_EXIT,
    BPF_FUNC_GET_PRANDOM_U32, BPF_FUNC_TAIL_CALL, BPF_JMP, BPF_LDX, BPF_MEM, BPF_MOV,
    BPF_PSEUDO_MAP_FD, BPF_ST, BPF_STX, BPF_X,
};
use super::{ProgType, Program, Tracepoint};

/// `MAX_BPF_FUNC_ARGS` (include/linux/bpf.h: v7.2 :1190, v6.12 :1051): ctx is 12 u64 slots.
pub const CTX_SLOTS: i64 = 12;

/// The errors the rules answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Errno {
    EACCES,
    EINVAL,
}

impl Errno {
    pub fn number(self) -> i32 {
        match self {
            Errno::EACCES => 13,
            Errno::EINVAL => 22,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Errno::EACCES => "EACCES",
            Errno::EINVAL => "EINVAL",
        }
    }
}

/// Each rule the model applies; the doc of each says where the kernel states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rule {
    /// A register read before it was written: `check_reg_arg` → "R%d !read_ok"
    /// (kernel/bpf/verifier.c v7.2 :3122, v6.12 :3481). EACCES.
    Uninitialised,
    /// ctx access that the program type does not allow: `__check_ctx_access` →
    /// "invalid bpf_context access off=%d size=%d" (kernel/bpf/verifier.c v7.2 :4708/:4736,
    /// v6.12 `check_ctx_access` :5913/:5948), asking `raw_tp_writable_prog_is_valid_access`
    /// (kernel/trace/bpf_trace.c v7.2 :1843, v6.12 :2056: offset 0 only as an 8-byte read,
    /// which yields PTR_TO_TP_BUFFER) or `raw_tp_prog_is_valid_access` (v7.2 :1800, v6.12
    /// :2013), both ending in `bpf_tracing_ctx_access` (include/linux/bpf.h v7.2 :3146,
    /// v6.12 :2632: 0 ≤ off < 96, read only, `off % size == 0`). EACCES.
    CtxAccess,
    /// A memory access through a scalar (plain raw_tp's ctx[0]): `check_mem_access`'s last
    /// branch, "R%d invalid mem access 'scalar'" (kernel/bpf/verifier.c v7.2 :6387, v6.12
    /// :7463). EACCES.
    NotAPointer,
    /// A buffer access at a variable offset: `__check_buffer_access`, "R%d invalid variable
    /// buffer offset: off=%d, var_off=%s" (kernel/bpf/verifier.c v7.2 :5395, v6.12 :6509;
    /// 6.12 also refuses a constant var_off that is not 0, which its pointer arithmetic never
    /// makes: constants go to `reg->off`, :13807). EACCES.
    BufferVariableOffset,
    /// A buffer access starting before the buffer: `__check_buffer_access` folds the constant
    /// var_off in, `start = var_off + off < 0` → "R%d invalid negative tracepoint buffer
    /// offset: off=%d, var_off=%lld" (kernel/bpf/verifier.c v7.2 :5404; v6.12 :6503 checks
    /// `off + reg->off < 0` and says "R%d invalid tracepoint buffer access: off=%d, size=%d").
    /// EACCES.
    BufferNegativeOffset,
    /// An atomic that is not 4 or 8 bytes: `check_atomic_rmw`, "invalid atomic operand size"
    /// (kernel/bpf/verifier.c v7.2 :6506, v6.12 :7550). EINVAL.
    AtomicSize,
    /// An atomic on ctx: `atomic_ptr_type_ok` (v7.2 :4901, v6.12 :6053) → "BPF_ATOMIC stores
    /// into R%d ctx is not allowed" (v7.2 :6541, v6.12 :7584). EACCES.
    AtomicIntoCtx,
    /// An atomic is checked with strict alignment (`check_mem_access(..., true)`,
    /// v7.2 :6560, v6.12 `check_atomic_rmw` :7543): `check_generic_ptr_alignment`,
    /// "misaligned access off %s+%d size %d" (v7.2 :4997; v6.12 :6148 prints
    /// "off %s+%d+%d" with `reg->off`). EACCES.
    Misaligned,
    /// What the model does not know how to answer (an instruction the generator never
    /// emits). Not a kernel rule: a gap in the model, shown as such.
    Unmodelled,
    /// Attach: the program read ctx past the tracepoint's arguments: `bpf_probe_register`,
    /// `max_ctx_offset > num_args * sizeof(u64)` (kernel/trace/bpf_trace.c v7.2 :2195,
    /// v6.12 :2391). EINVAL, no log.
    AttachCtxPastArgs,
    /// Attach: the program touched the buffer past its writable size: `bpf_probe_register`,
    /// `max_tp_access > writable_size` (v7.2 :2198, v6.12 :2394), where `max_tp_access` is
    /// the highest `start + size` `check_tp_buffer_access` saw (kernel/bpf/verifier.c v7.2
    /// :5429, v6.12 :6533). EINVAL, no log.
    AttachBufferPastWritable,
}

/// A refusal: the errno, the verifier's words (empty at attach: the kernel logs nothing) and
/// the instruction it points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: Rule,
    pub errno: Errno,
    pub words: String,
    pub insn: Option<usize>,
}

/// What firing the tracepoint does to the buffer. Offsets are from the buffer's start; an
/// effect past the writable size lands on whatever lies there (kernel stack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// These bytes are written (stx, st, xchg).
    Store { offset: i64, bytes: Vec<u8> },
    /// `size` bytes, little-endian, get `addend` added (wrapping).
    Add { offset: i64, size: u32, addend: u64 },
    /// If the `size` bytes equal `expected` (cut to size), they become `new`.
    CompareExchange {
        offset: i64,
        size: u32,
        expected: u64,
        new: u64,
    },
    /// Written with a value the model does not know.
    StoreUnknown { offset: i64, size: u32 },
}

impl Effect {
    pub fn offset(&self) -> i64 {
        match self {
            Effect::Store { offset, .. }
            | Effect::Add { offset, .. }
            | Effect::CompareExchange { offset, .. }
            | Effect::StoreUnknown { offset, .. } => *offset,
        }
    }

    pub fn size(&self) -> u32 {
        match self {
            Effect::Store { bytes, .. } => bytes.len() as u32,
            Effect::Add { size, .. }
            | Effect::CompareExchange { size, .. }
            | Effect::StoreUnknown { size, .. } => *size,
        }
    }

    /// Whether every byte it touches is inside a buffer of `writable_size`.
    pub fn within(&self, writable_size: u32) -> bool {
        self.offset() >= 0 && self.offset() + self.size() as i64 <= writable_size as i64
    }

    /// The buffer after the effect, from the buffer before it; `None` if the effect reaches
    /// past `before` or its value is unknown.
    pub fn apply(&self, before: &[u8]) -> Option<Vec<u8>> {
        if !self.within(before.len() as u32) {
            return None;
        }
        let at = self.offset() as usize;
        let size = self.size() as usize;
        let mut after = before.to_vec();
        let old = read_le(&before[at..at + size]);
        let new = match self {
            Effect::Store { bytes, .. } => read_le(bytes),
            Effect::Add { addend, .. } => old.wrapping_add(*addend),
            Effect::CompareExchange { expected, new, .. } => {
                if old == cut(*expected, size as u32) {
                    *new
                } else {
                    old
                }
            }
            Effect::StoreUnknown { .. } => return None,
        };
        after[at..at + size].copy_from_slice(&new.to_le_bytes()[..size]);
        Some(after)
    }
}

fn read_le(bytes: &[u8]) -> u64 {
    let mut full = [0u8; 8];
    full[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(full)
}

fn cut(value: u64, size: u32) -> u64 {
    if size >= 8 {
        value
    } else {
        value & ((1u64 << (size * 8)) - 1)
    }
}

/// The model's answer for one program on one tracepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// BPF_PROG_LOAD: `Ok` or the verifier's refusal.
    pub load: Result<(), Refusal>,
    /// BPF_RAW_TRACEPOINT_OPEN: `None` when the load is refused (nothing to attach).
    pub attach: Option<Result<(), Refusal>>,
    /// What `bpf_probe_register` compares, as the verifier left them.
    pub max_ctx_offset: u32,
    pub max_tp_access: u32,
    /// What one run of the program does to the buffer, from the verifier's pass (empty if the
    /// load is refused), whether or not it may attach: what a tail call into it does.
    pub run: Vec<Effect>,
    /// What firing the tracepoint does to the buffer with the program attached (empty unless
    /// it attaches); for a tail-call caller, its callee's `run`.
    pub effects: Vec<Effect>,
    /// For a tail-call caller: the callee's own answer, as if it were attached alone.
    pub callee: Option<Box<Expected>>,
}

impl Expected {
    pub fn refused_at_load(&self) -> bool {
        self.load.is_err()
    }

    pub fn refused_at_attach(&self) -> bool {
        matches!(self.attach, Some(Err(_)))
    }

    /// Whether firing it runs code the attach check would have refused (a tail call into a
    /// callee whose own attach is refused): the path upstream does not check.
    pub fn runs_unchecked(&self) -> bool {
        self.callee
            .as_deref()
            .is_some_and(|callee| callee.refused_at_attach())
    }

    /// Whether firing it writes outside the writable buffer (kernel stack): the guest must
    /// decide whether to fire such a program at all.
    pub fn writes_outside(&self, tp: &Tracepoint) -> bool {
        self.effects.iter().any(|e| !e.within(tp.writable_size))
    }
}

/// A tnum: `value` known bits, `mask` unknown ones (kernel/bpf/tnum.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

impl Tnum {
    pub const fn constant(value: u64) -> Self {
        Tnum { value, mask: 0 }
    }

    pub const fn unknown() -> Self {
        Tnum {
            value: 0,
            mask: u64::MAX,
        }
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// `tnum_add` (kernel/bpf/tnum.c).
    pub fn plus(self, other: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(other.mask);
        let sv = self.value.wrapping_add(other.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | other.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    /// `tnum_and` (kernel/bpf/tnum.c).
    pub fn and(self, other: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = other.value | other.mask;
        let v = self.value & other.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    /// `tnum_is_aligned`.
    pub fn is_aligned(self, size: u64) -> bool {
        size == 0 || ((self.value | self.mask) & (size - 1)) == 0
    }
}

/// `tnum_strn` as 7.2 prints it (kernel/bpf/log.c v7.2 :538): a constant in decimal when it
/// fits 16 bits (signed or not), else hex; otherwise `(value; mask)` with the kernel's `%#llx`,
/// which prints 0 as `0x0`.
impl std::fmt::Display for Tnum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.mask == 0 {
            let signed = self.value as i64;
            if self.value <= u16::MAX as u64 {
                write!(f, "{}", self.value)
            } else if (i16::MIN as i64..=i16::MAX as i64).contains(&signed) {
                write!(f, "{signed}")
            } else {
                write!(f, "{:#x}", self.value)
            }
        } else {
            write!(f, "({:#x}; {:#x})", self.value, self.mask)
        }
    }
}

/// What the verifier knows about a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Uninit,
    Ctx,
    /// PTR_TO_TP_BUFFER; 7.2 keeps its whole offset in var_off (`adjust_ptr_min_max_vals`,
    /// v7.2 :13958), which is how the model keeps it too.
    Buffer(Tnum),
    Scalar(Tnum),
    ProgArray,
}

impl Val {
    fn is_pointer(self) -> bool {
        matches!(self, Val::Ctx | Val::Buffer(_) | Val::ProgArray)
    }
}

struct Walk<'a> {
    program: &'a Program,
    regs: [Val; 11],
    max_ctx_offset: u32,
    max_tp_access: u32,
    effects: Vec<Effect>,
    tail_called: bool,
}

fn refuse(rule: Rule, errno: Errno, words: String, insn: usize) -> Refusal {
    Refusal {
        rule,
        errno,
        words,
        insn: Some(insn),
    }
}

fn sext(imm: i32) -> u64 {
    imm as i64 as u64
}

impl Walk<'_> {
    fn read(&self, reg: u8, at: usize) -> Result<Val, Refusal> {
        match self.regs.get(reg as usize) {
            Some(Val::Uninit) | None => Err(refuse(
                Rule::Uninitialised,
                Errno::EACCES,
                format!("R{reg} !read_ok"),
                at,
            )),
            Some(val) => Ok(*val),
        }
    }

    fn unmodelled(insn: &Insn, at: usize) -> Refusal {
        refuse(
            Rule::Unmodelled,
            Errno::EINVAL,
            format!("the model does not know `{insn}`"),
            at,
        )
    }

    /// `__check_ctx_access` with `raw_tp_writable_prog_is_valid_access` /
    /// `raw_tp_prog_is_valid_access` and `bpf_tracing_ctx_access` (see [`Rule::CtxAccess`]).
    /// The register read yields PTR_TO_TP_BUFFER for the writable type's 8-byte read of 0.
    fn ctx(&mut self, off: i64, size: u32, write: bool, at: usize) -> Result<Val, Refusal> {
        let writable = self.program.prog_type == ProgType::RawTracepointWritable;
        let mut yields = Val::Scalar(Tnum::unknown());
        // raw_tp_writable_prog_is_valid_access: `if (off == 0)` (v7.2 bpf_trace.c:1848).
        let valid = if writable && off == 0 {
            yields = Val::Buffer(Tnum::constant(0));
            size == 8 && !write
        } else {
            true
        };
        // bpf_tracing_ctx_access (v7.2 include/linux/bpf.h:3149-3154).
        let valid = valid && (0..8 * CTX_SLOTS).contains(&off) && !write && off % size as i64 == 0;
        if !valid {
            return Err(refuse(
                Rule::CtxAccess,
                Errno::EACCES,
                format!("invalid bpf_context access off={off} size={size}"),
                at,
            ));
        }
        // "remember the offset of last byte accessed in ctx" (v7.2 verifier.c:4731).
        self.max_ctx_offset = self.max_ctx_offset.max((off + size as i64) as u32);
        Ok(yields)
    }

    /// `check_tp_buffer_access` → `__check_buffer_access` (see [`Rule::BufferVariableOffset`],
    /// [`Rule::BufferNegativeOffset`]); returns the access's start in the buffer.
    fn buffer(
        &mut self,
        reg: u8,
        var_off: Tnum,
        off: i64,
        size: u32,
        at: usize,
    ) -> Result<i64, Refusal> {
        if !var_off.is_const() {
            return Err(refuse(
                Rule::BufferVariableOffset,
                Errno::EACCES,
                format!("R{reg} invalid variable buffer offset: off={off}, var_off={var_off}"),
                at,
            ));
        }
        let start = var_off.value as i64 + off;
        if start < 0 {
            return Err(refuse(
                Rule::BufferNegativeOffset,
                Errno::EACCES,
                format!(
                    "R{reg} invalid negative tracepoint buffer offset: off={off}, var_off={}",
                    var_off.value as i64
                ),
                at,
            ));
        }
        self.max_tp_access = self.max_tp_access.max((start + size as i64) as u32);
        Ok(start)
    }

    /// `check_mem_access` on the register an instruction goes through: the ctx or buffer
    /// checks, or [`Rule::NotAPointer`]. `strict` is the atomics' alignment check.
    fn memory(
        &mut self,
        reg: u8,
        off: i64,
        size: u32,
        write: bool,
        strict: bool,
        at: usize,
    ) -> Result<Place, Refusal> {
        match self.read(reg, at)? {
            Val::Ctx => self.ctx(off, size, write, at).map(Place::Ctx),
            Val::Buffer(var_off) => {
                // check_ptr_alignment → check_generic_ptr_alignment (v7.2 verifier.c:4997).
                let aligned = var_off
                    .plus(Tnum::constant(off as u64))
                    .is_aligned(size as u64);
                if strict && size > 1 && !aligned {
                    return Err(refuse(
                        Rule::Misaligned,
                        Errno::EACCES,
                        format!("misaligned access off {var_off}+{off} size {size}"),
                        at,
                    ));
                }
                self.buffer(reg, var_off, off, size, at).map(Place::Buffer)
            }
            Val::Scalar(_) => Err(refuse(
                Rule::NotAPointer,
                Errno::EACCES,
                format!("R{reg} invalid mem access 'scalar'"),
                at,
            )),
            Val::ProgArray => Err(refuse(
                Rule::Unmodelled,
                Errno::EACCES,
                format!("R{reg} is a map pointer"),
                at,
            )),
            Val::Uninit => unreachable!("read() refuses it"),
        }
    }

    fn known(&self, reg: u8) -> Option<u64> {
        match self.regs[reg as usize] {
            Val::Scalar(t) if t.is_const() => Some(t.value),
            _ => None,
        }
    }

    fn step(&mut self, insns: &[Insn], at: usize) -> Result<usize, Refusal> {
        let insn = &insns[at];
        let size = insn.size().bytes();
        let off = insn.off as i64;
        match (insn.class(), insn.mode()) {
            (BPF_LDX, BPF_MEM) => {
                let place = self.memory(insn.src_reg, off, size, false, false, at)?;
                self.regs[insn.dst_reg as usize] = match place {
                    Place::Ctx(val) => val,
                    Place::Buffer(_) => Val::Scalar(Tnum::unknown()),
                };
            }
            (BPF_STX, BPF_MEM) => {
                let value = self.read(insn.src_reg, at)?;
                self.read(insn.dst_reg, at)?;
                if value.is_pointer() && self.regs[insn.dst_reg as usize] == Val::Ctx {
                    // "R%d leaks addr into ctx" (v7.2 verifier.c:6265, v6.12 :7335).
                    return Err(refuse(
                        Rule::CtxAccess,
                        Errno::EACCES,
                        format!("R{} leaks addr into ctx", insn.src_reg),
                        at,
                    ));
                }
                let place = self.memory(insn.dst_reg, off, size, true, false, at)?;
                if let Place::Buffer(start) = place {
                    let effect = match self.known(insn.src_reg) {
                        Some(v) => Effect::Store {
                            offset: start,
                            bytes: v.to_le_bytes()[..size as usize].to_vec(),
                        },
                        None => Effect::StoreUnknown {
                            offset: start,
                            size,
                        },
                    };
                    self.effects.push(effect);
                }
            }
            (BPF_ST, BPF_MEM) => {
                // The BPF_ST path (v7.2 verifier.c:17483; v6.12 do_check :19098).
                let place = self.memory(insn.dst_reg, off, size, true, false, at)?;
                if let Place::Buffer(start) = place {
                    self.effects.push(Effect::Store {
                        offset: start,
                        bytes: sext(insn.imm).to_le_bytes()[..size as usize].to_vec(),
                    });
                }
            }
            (BPF_STX, BPF_ATOMIC) => self.atomic(insn, at)?,
            (BPF_ALU64, _) => self.alu64(insn, at)?,
            _ if insn.is_ld_imm64() && at + 1 < insns.len() => {
                self.regs[insn.dst_reg as usize] = match insn.src_reg {
                    0 => {
                        let high = insns[at + 1].imm as u32 as u64;
                        Val::Scalar(Tnum::constant((insn.imm as u32 as u64) | (high << 32)))
                    }
                    BPF_PSEUDO_MAP_FD => Val::ProgArray,
                    _ => return Err(Self::unmodelled(insn, at)),
                };
                return Ok(at + 2);
            }
            _ if insn.code == BPF_JMP | BPF_CALL => self.call(insn, at)?,
            _ if insn.code == BPF_JMP | BPF_EXIT => {
                self.read(0, at)?;
                return Ok(insns.len());
            }
            _ => return Err(Self::unmodelled(insn, at)),
        }
        Ok(at + 1)
    }

    /// `check_atomic` → `check_atomic_rmw` (v7.2 verifier.c:6618/:6499, v6.12 :7630/:7543),
    /// in its order: size, operands, r0 for cmpxchg, pointer type, then a strict-aligned read
    /// and write of the memory.
    fn atomic(&mut self, insn: &Insn, at: usize) -> Result<(), Refusal> {
        let Some(op) = AtomicOp::from_imm(insn.imm) else {
            return Err(Self::unmodelled(insn, at));
        };
        let size = insn.size();
        if size != Size::W && size != Size::DW {
            return Err(refuse(
                Rule::AtomicSize,
                Errno::EINVAL,
                "invalid atomic operand size".into(),
                at,
            ));
        }
        let size = size.bytes();
        self.read(insn.src_reg, at)?;
        let dst = self.read(insn.dst_reg, at)?;
        if op == AtomicOp::Cmpxchg {
            self.read(0, at)?;
        }
        if dst == Val::Ctx {
            return Err(refuse(
                Rule::AtomicIntoCtx,
                Errno::EACCES,
                format!(
                    "BPF_ATOMIC stores into R{} ctx is not allowed",
                    insn.dst_reg
                ),
                at,
            ));
        }
        let off = insn.off as i64;
        self.memory(insn.dst_reg, off, size, false, true, at)?;
        let Place::Buffer(start) = self.memory(insn.dst_reg, off, size, true, true, at)? else {
            return Ok(());
        };
        let value = self.known(insn.src_reg).map(|v| cut(v, size));
        let effect = match (op, value) {
            (AtomicOp::Add, Some(addend)) => Effect::Add {
                offset: start,
                size,
                addend,
            },
            (AtomicOp::Xchg, Some(v)) => Effect::Store {
                offset: start,
                bytes: v.to_le_bytes()[..size as usize].to_vec(),
            },
            (AtomicOp::Cmpxchg, Some(new)) => match self.known(0) {
                Some(expected) => Effect::CompareExchange {
                    offset: start,
                    size,
                    expected: cut(expected, size),
                    new,
                },
                None => Effect::StoreUnknown {
                    offset: start,
                    size,
                },
            },
            (_, None) => Effect::StoreUnknown {
                offset: start,
                size,
            },
        };
        self.effects.push(effect);
        // The fetching forms load the old value into src (xchg) or r0 (cmpxchg).
        match op {
            AtomicOp::Add => {}
            AtomicOp::Xchg => self.regs[insn.src_reg as usize] = Val::Scalar(Tnum::unknown()),
            AtomicOp::Cmpxchg => self.regs[0] = Val::Scalar(Tnum::unknown()),
        }
        Ok(())
    }

    /// 64-bit `mov`, `add` and `and`; pointer + scalar is `adjust_ptr_min_max_vals`
    /// (v7.2 verifier.c:13839: PTR_TO_TP_BUFFER may move, by a constant or a variable, both
    /// into var_off at :13958; v6.12 :13691 keeps a constant in `reg->off`, :13807).
    fn alu64(&mut self, insn: &Insn, at: usize) -> Result<(), Refusal> {
        let dst = insn.dst_reg as usize;
        let source = if insn.code & BPF_X != 0 {
            self.read(insn.src_reg, at)?
        } else {
            Val::Scalar(Tnum::constant(sext(insn.imm)))
        };
        let op = insn.code & 0xf0;
        if op == BPF_MOV {
            self.regs[dst] = source;
            return Ok(());
        }
        let target = self.read(insn.dst_reg, at)?;
        self.regs[dst] = match (op, target, source) {
            (BPF_ADD, Val::Buffer(var), Val::Scalar(by)) => Val::Buffer(var.plus(by)),
            (BPF_ADD, Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(a.plus(b)),
            (BPF_AND, Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(a.and(b)),
            _ => return Err(Self::unmodelled(insn, at)),
        };
        Ok(())
    }

    /// The two helpers the sweep calls; a call clobbers r0–r5.
    fn call(&mut self, insn: &Insn, at: usize) -> Result<(), Refusal> {
        match insn.imm {
            BPF_FUNC_GET_PRANDOM_U32 => {}
            BPF_FUNC_TAIL_CALL => {
                let args = [self.read(1, at)?, self.read(2, at)?, self.read(3, at)?];
                if !matches!(args, [Val::Ctx, Val::ProgArray, Val::Scalar(_)]) {
                    return Err(Self::unmodelled(insn, at));
                }
                self.tail_called = true;
            }
            _ => return Err(Self::unmodelled(insn, at)),
        }
        for reg in 1..=5 {
            self.regs[reg] = Val::Uninit;
        }
        // RET_INTEGER: an unknown 64-bit scalar.
        self.regs[0] = Val::Scalar(Tnum::unknown());
        Ok(())
    }
}

enum Place {
    Ctx(Val),
    Buffer(i64),
}

/// What today's upstream answers for `program` on `tp`: the load, the attach, and what
/// firing it does to the buffer.
pub fn predict(program: &Program, tp: &Tracepoint) -> Expected {
    let mut walk = Walk {
        program,
        regs: [Val::Uninit; 11],
        max_ctx_offset: 0,
        max_tp_access: 0,
        effects: Vec::new(),
        tail_called: false,
    };
    walk.regs[1] = Val::Ctx;
    walk.regs[10] = Val::Scalar(Tnum::unknown()); // the frame pointer: never used here
    let mut at = 0;
    let mut load = Ok(());
    while at < program.insns.len() {
        match walk.step(&program.insns, at) {
            Ok(next) => at = next,
            Err(refusal) => {
                load = Err(refusal);
                break;
            }
        }
    }
    let callee = program
        .tail_call
        .as_deref()
        .map(|callee| Box::new(predict(callee, tp)));
    let attach = load.as_ref().ok().map(|()| attach(&walk, tp));
    let attached = matches!(attach, Some(Ok(())));
    let run = if load.is_ok() {
        walk.effects.clone()
    } else {
        Vec::new()
    };
    let mut effects = Vec::new();
    if attached {
        // The sweep's callers do nothing before the call; the callee runs with what its own
        // verifier pass allowed, whether or not it could attach itself.
        effects.extend(run.iter().cloned());
        if let (Some(callee), true) = (&callee, walk.tail_called) {
            effects.extend(callee.run.iter().cloned());
        }
    }
    Expected {
        load,
        attach,
        max_ctx_offset: walk.max_ctx_offset,
        max_tp_access: walk.max_tp_access,
        run,
        effects,
        callee,
    }
}

/// `bpf_probe_register` (see [`Rule::AttachCtxPastArgs`], [`Rule::AttachBufferPastWritable`]).
fn attach(walk: &Walk<'_>, tp: &Tracepoint) -> Result<(), Refusal> {
    if walk.max_ctx_offset as u64 > tp.arg_count as u64 * 8 {
        return Err(Refusal {
            rule: Rule::AttachCtxPastArgs,
            errno: Errno::EINVAL,
            words: String::new(),
            insn: None,
        });
    }
    if walk.max_tp_access > tp.writable_size {
        return Err(Refusal {
            rule: Rule::AttachBufferPastWritable,
            errno: Errno::EINVAL,
            words: String::new(),
            insn: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::cases::sweep::family::{buffer, ctx, generate, tail_caller};
    use crate::cases::sweep::{Move, Op};

    const W: ProgType = ProgType::RawTracepointWritable;
    const P: ProgType = ProgType::RawTracepoint;
    const ADD: Op = Op::Atomic(AtomicOp::Add);

    fn testmod() -> Tracepoint {
        Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1)
    }

    fn nbd() -> Tracepoint {
        Tracepoint::new("nbd_send_request", 28, 3)
    }

    /// `load` is `ok`, `attach` (ok, or refused at attach with EINVAL), or the verifier's
    /// words; `max` is max_tp_access (buffer) or max_ctx_offset (ctx).
    #[rstest]
    // The buffer: last valid byte, one past, negative, misaligned (allowed, not atomic).
    #[case::last_byte(buffer(&testmod(), W, Op::Ldx, Size::B, 7, Move::None), "ok", 8)]
    #[case::one_past(buffer(&testmod(), W, Op::Ldx, Size::B, 8, Move::None), "attach", 9)]
    #[case::last_word(buffer(&testmod(), W, Op::Stx, Size::W, 4, Move::None), "ok", 8)]
    #[case::word_one_past(buffer(&testmod(), W, Op::St, Size::W, 5, Move::None), "attach", 9)]
    #[case::dw_misaligned_inside(buffer(&nbd(), W, Op::Ldx, Size::DW, 1, Move::None), "ok", 9)]
    #[case::last_nbd_byte(buffer(&nbd(), W, Op::St, Size::B, 27, Move::None), "ok", 28)]
    #[case::past_nbd(buffer(&nbd(), W, Op::St, Size::DW, 21, Move::None), "attach", 29)]
    #[case::negative(
        buffer(&testmod(), W, Op::Ldx, Size::B, -1, Move::None),
        "R6 invalid negative tracepoint buffer offset: off=-1, var_off=0",
        0
    )]
    #[case::negative_store(
        buffer(&testmod(), W, Op::St, Size::DW, -9, Move::None),
        "R6 invalid negative tracepoint buffer offset: off=-9, var_off=0",
        0
    )]
    // Atomics: strict alignment, 4 and 8 bytes only.
    #[case::atomic_aligned(buffer(&testmod(), W, ADD, Size::W, 4, Move::None), "ok", 8)]
    #[case::atomic_past(buffer(&testmod(), W, ADD, Size::DW, 8, Move::None), "attach", 16)]
    #[case::atomic_misaligned(
        buffer(&testmod(), W, ADD, Size::W, 1, Move::None),
        "misaligned access off 0+1 size 4",
        0
    )]
    #[case::atomic_negative(
        buffer(&testmod(), W, Op::Atomic(AtomicOp::Xchg), Size::DW, -8, Move::None),
        "R6 invalid negative tracepoint buffer offset: off=-8, var_off=0",
        0
    )]
    #[case::atomic_byte(
        buffer(&testmod(), W, ADD, Size::B, 0, Move::None),
        "invalid atomic operand size",
        0
    )]
    // Moved by a constant: 7.2 folds it into var_off (upstream's negative_var_off_past_end).
    #[case::k_past_end(buffer(&testmod(), W, Op::Ldx, Size::B, 16, Move::Const(-8)), "attach", 9)]
    #[case::k_last_byte(buffer(&testmod(), W, Op::Ldx, Size::B, 15, Move::Const(-8)), "ok", 8)]
    #[case::k_back_to_start(buffer(&testmod(), W, Op::Stx, Size::DW, -8, Move::Const(8)), "ok", 8)]
    #[case::k_negative(
        buffer(&testmod(), W, Op::Ldx, Size::B, 7, Move::Const(-8)),
        "R6 invalid negative tracepoint buffer offset: off=7, var_off=-8",
        0
    )]
    #[case::k_atomic_misaligned(
        buffer(&testmod(), W, ADD, Size::W, 9, Move::Const(-8)),
        "misaligned access off -8+9 size 4",
        0
    )]
    // Moved by a variable: refused at any offset, unless the variable is a known constant.
    #[case::variable(
        buffer(&testmod(), W, Op::Ldx, Size::B, 0, Move::Var { mask: 7 }),
        "R6 invalid variable buffer offset: off=0, var_off=(0x0; 0x7)",
        0
    )]
    #[case::variable_one(
        buffer(&nbd(), W, Op::Stx, Size::DW, 20, Move::Var { mask: 1 }),
        "R6 invalid variable buffer offset: off=20, var_off=(0x0; 0x1)",
        0
    )]
    #[case::known_zero(buffer(&testmod(), W, Op::Stx, Size::B, 7, Move::Var { mask: 0 }), "ok", 8)]
    // The ctx.
    #[case::ctx0(ctx(&testmod(), W, Op::Ldx, Size::DW, 0), "ok", 8)]
    #[case::ctx0_narrow(
        ctx(&testmod(), W, Op::Ldx, Size::W, 0),
        "invalid bpf_context access off=0 size=4",
        0
    )]
    #[case::ctx0_narrow_plain(ctx(&testmod(), P, Op::Ldx, Size::W, 0), "ok", 4)]
    #[case::ctx0_byte_inside(ctx(&testmod(), W, Op::Ldx, Size::B, 7), "ok", 8)]
    #[case::ctx_past_args(ctx(&testmod(), W, Op::Ldx, Size::DW, 8), "attach", 16)]
    #[case::ctx_last_arg(ctx(&nbd(), W, Op::Ldx, Size::B, 23), "ok", 24)]
    #[case::ctx_one_past_args(ctx(&nbd(), W, Op::Ldx, Size::DW, 24), "attach", 32)]
    #[case::ctx_last_slot(ctx(&nbd(), W, Op::Ldx, Size::DW, 88), "attach", 96)]
    #[case::ctx_past_slots(
        ctx(&nbd(), W, Op::Ldx, Size::B, 96),
        "invalid bpf_context access off=96 size=1",
        0
    )]
    #[case::ctx_negative(
        ctx(&nbd(), W, Op::Ldx, Size::B, -1),
        "invalid bpf_context access off=-1 size=1",
        0
    )]
    #[case::ctx_misaligned(
        ctx(&nbd(), W, Op::Ldx, Size::W, 14),
        "invalid bpf_context access off=14 size=4",
        0
    )]
    #[case::ctx_write(
        ctx(&nbd(), W, Op::Stx, Size::DW, 8),
        "invalid bpf_context access off=8 size=8",
        0
    )]
    #[case::ctx_write_imm(
        ctx(&nbd(), P, Op::St, Size::W, 0),
        "invalid bpf_context access off=0 size=4",
        0
    )]
    #[case::ctx_atomic(
        ctx(&nbd(), W, ADD, Size::DW, 0),
        "BPF_ATOMIC stores into R1 ctx is not allowed",
        0
    )]
    // Plain raw_tp: ctx[0] is a scalar.
    #[case::plain_deref(
        buffer(&nbd(), P, Op::Ldx, Size::DW, 0, Move::None),
        "R6 invalid mem access 'scalar'",
        0
    )]
    fn rules(#[case] program: Program, #[case] load: &str, #[case] max: u32) {
        let tp = if program.name.contains("nbd") {
            nbd()
        } else {
            testmod()
        };
        let expected = predict(&program, &tp);
        let max_seen = expected.max_tp_access.max(expected.max_ctx_offset);
        match load {
            "ok" => {
                assert_eq!(expected.load, Ok(()), "{}", program.name);
                assert_eq!(expected.attach, Some(Ok(())));
                assert_eq!(max_seen, max);
            }
            "attach" => {
                assert_eq!(expected.load, Ok(()), "{}", program.name);
                let refusal = expected.attach.clone().unwrap().unwrap_err();
                assert_eq!(refusal.errno, Errno::EINVAL);
                assert!(expected.effects.is_empty(), "nothing runs");
                assert_eq!(max_seen, max);
            }
            words => {
                let refusal = expected.load.clone().unwrap_err();
                assert_eq!(refusal.words, words, "{}", program.name);
                assert_eq!(expected.attach, None);
                assert!(expected.run.is_empty() && expected.effects.is_empty());
            }
        }
    }

    #[rstest]
    #[case::stx(Op::Stx, Size::W, 4, Effect::Store { offset: 4, bytes: vec![0x11, 0x22, 0x33, 0x44] })]
    #[case::st_sign_extends(
        Op::St,
        Size::DW,
        0,
        Effect::Store { offset: 0, bytes: vec![0xd1, 0xc2, 0xb3, 0xa4, 0xff, 0xff, 0xff, 0xff] }
    )]
    #[case::st_byte(Op::St, Size::B, 7, Effect::Store { offset: 7, bytes: vec![0xd1] })]
    #[case::xchg(
        Op::Atomic(AtomicOp::Xchg),
        Size::DW,
        0,
        Effect::Store { offset: 0, bytes: 0x8877_6655_4433_2211u64.to_le_bytes().to_vec() }
    )]
    #[case::add(ADD, Size::W, 4, Effect::Add { offset: 4, size: 4, addend: 0x0506_0708 })]
    #[case::cmpxchg(
        Op::Atomic(AtomicOp::Cmpxchg),
        Size::W,
        0,
        Effect::CompareExchange { offset: 0, size: 4, expected: 0, new: 0x4433_2211 }
    )]
    fn stores_change_these_bytes(
        #[case] op: Op,
        #[case] size: Size,
        #[case] off: i32,
        #[case] effect: Effect,
    ) {
        let tp = testmod();
        let expected = predict(&buffer(&tp, W, op, size, off, Move::None), &tp);
        assert_eq!(expected.effects, std::slice::from_ref(&effect));
        assert_eq!(expected.run, [effect]);
        assert!(!expected.writes_outside(&tp));
    }

    #[test]
    fn a_load_changes_nothing_and_a_refused_store_nothing_either() {
        let tp = testmod();
        let load = predict(&buffer(&tp, W, Op::Ldx, Size::DW, 0, Move::None), &tp);
        assert!(load.effects.is_empty());
        let past = predict(&buffer(&tp, W, Op::Stx, Size::W, 8, Move::None), &tp);
        assert!(past.effects.is_empty(), "refused at attach: never fires");
        assert_eq!(past.run.len(), 1, "but it would write if it ran");
    }

    #[test]
    fn a_tail_call_runs_what_attach_refuses() {
        let tp = testmod();
        let callee = buffer(&tp, W, Op::Stx, Size::W, 12, Move::None);
        let caller = tail_caller(&tp, &callee);
        let expected = predict(&caller, &tp);
        assert_eq!(expected.load, Ok(()));
        assert_eq!(expected.attach, Some(Ok(())), "the caller touches nothing");
        assert_eq!((expected.max_tp_access, expected.max_ctx_offset), (0, 0));
        assert!(expected.runs_unchecked());
        assert_eq!(
            expected.effects,
            [Effect::Store {
                offset: 12,
                bytes: vec![0x11, 0x22, 0x33, 0x44]
            }]
        );
        assert!(expected.writes_outside(&tp));
        let callee = expected.callee.unwrap();
        assert_eq!(
            callee.attach.unwrap().unwrap_err().rule,
            Rule::AttachBufferPastWritable
        );

        let reader = tail_caller(&tp, &ctx(&tp, W, Op::Ldx, Size::DW, 8));
        let expected = predict(&reader, &tp);
        assert!(expected.runs_unchecked() && expected.effects.is_empty());
        let callee = expected.callee.unwrap();
        assert_eq!(
            callee.attach.unwrap().unwrap_err().rule,
            Rule::AttachCtxPastArgs
        );
    }

    #[test]
    fn ctx_past_the_arguments_is_checked_before_the_buffer() {
        // bpf_probe_register compares max_ctx_offset first (v7.2 bpf_trace.c:2195).
        let tp = Tracepoint::new("x", 0, 0);
        let expected = predict(&buffer(&tp, W, Op::Ldx, Size::B, 0, Move::None), &tp);
        assert_eq!(
            expected.attach.unwrap().unwrap_err().rule,
            Rule::AttachCtxPastArgs
        );
        let tp = Tracepoint::new("x", 0, 1);
        let expected = predict(&buffer(&tp, W, Op::Ldx, Size::B, 0, Move::None), &tp);
        assert_eq!(
            expected.attach.unwrap().unwrap_err().rule,
            Rule::AttachBufferPastWritable
        );
    }

    #[test]
    fn an_instruction_the_model_does_not_know_is_a_gap_not_a_rule() {
        let tp = testmod();
        let mut program = buffer(&tp, W, Op::Ldx, Size::B, 0, Move::None);
        program.insns.insert(1, Insn::alu64_imm(BPF_AND, 6, 1));
        let refusal = predict(&program, &tp).load.unwrap_err();
        assert_eq!(refusal.rule, Rule::Unmodelled);
        assert_eq!(refusal.insn, Some(1));
    }

    #[test]
    fn every_generated_program_is_modelled_and_every_attach_refusal_has_a_tail_caller() {
        for tp in [testmod(), nbd(), Tracepoint::new("bpf_test_finish", 4, 1)] {
            let programs = generate(&tp);
            for program in &programs {
                let expected = predict(program, &tp);
                if let Err(refusal) = &expected.load {
                    assert_ne!(refusal.rule, Rule::Unmodelled, "{}", program.name);
                }
                if expected.refused_at_attach() {
                    let caller = program.name.replace(
                        &format!("sweep.{}.", tp.name),
                        &format!("sweep.{}.tail.", tp.name),
                    );
                    let caller = caller.replace(".tail.raw_tp.", ".raw_tp.tail.");
                    assert!(
                        programs.iter().any(|p| p.name == caller),
                        "{} has no caller {caller}",
                        program.name
                    );
                }
            }
        }
    }

    #[rstest]
    #[case(Tnum::constant(0), "0")]
    #[case(Tnum::constant(-8i64 as u64), "-8")]
    #[case(Tnum::constant(65535), "65535")]
    #[case(Tnum::constant(65536), "0x10000")]
    #[case(Tnum { value: 0, mask: 7 }, "(0x0; 0x7)")]
    #[case(Tnum { value: 0, mask: 0xffff_ffff }, "(0x0; 0xffffffff)")]
    fn tnums_print_as_the_kernel_does(#[case] tnum: Tnum, #[case] text: &str) {
        assert_eq!(tnum.to_string(), text);
    }

    #[test]
    fn tnum_arithmetic_is_the_kernels() {
        let masked = Tnum::unknown().and(Tnum::constant(7));
        assert_eq!(masked, Tnum { value: 0, mask: 7 });
        assert_eq!(Tnum::constant(0).and(Tnum::unknown()), Tnum::constant(0));
        assert_eq!(
            Tnum::constant(-8i64 as u64).plus(Tnum::constant(16)),
            Tnum::constant(8)
        );
        assert!(!Tnum::constant(0).plus(masked).is_const());
        assert!(Tnum::constant(4).is_aligned(4) && !Tnum::constant(6).is_aligned(4));
    }

    #[rstest]
    #[case(Effect::Store { offset: 1, bytes: vec![9, 9] }, [1, 9, 9, 4])]
    #[case(Effect::Add { offset: 0, size: 2, addend: 0x0101 }, [2, 3, 3, 4])]
    #[case(Effect::Add { offset: 2, size: 2, addend: 0xffff }, [1, 2, 2, 4])]
    #[case(Effect::CompareExchange { offset: 0, size: 4, expected: 0x0403_0201, new: 7 }, [7, 0, 0, 0])]
    #[case(Effect::CompareExchange { offset: 0, size: 4, expected: 0, new: 7 }, [1, 2, 3, 4])]
    fn effects_apply_to_the_bytes_before(#[case] effect: Effect, #[case] after: [u8; 4]) {
        assert_eq!(effect.apply(&[1, 2, 3, 4]), Some(after.to_vec()));
    }

    #[test]
    fn an_effect_past_the_buffer_cannot_be_applied() {
        let effect = Effect::Store {
            offset: 3,
            bytes: vec![0, 0],
        };
        assert!(!effect.within(4));
        assert_eq!(effect.apply(&[0; 4]), None);
        assert_eq!(
            Effect::StoreUnknown { offset: 0, size: 1 }.apply(&[0]),
            None
        );
    }
}
