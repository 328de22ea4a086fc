//! BPF instructions in the kernel's own encoding (`struct bpf_insn`, include/uapi/linux/bpf.h):
//! 8 bytes, `code`, a byte of `dst_reg` (low nibble) and `src_reg` (high nibble), a signed
//! 16-bit `off` and a signed 32-bit `imm`, little-endian (the guests are x86-64). A tiny
//! assembler for what the sweep needs, and a disassembler in llvm-objdump's words for findings.
//! Pure.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One instruction slot, field for field the kernel's `struct bpf_insn`. `ld_imm64` takes two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Insn {
    pub code: u8,
    pub dst_reg: u8,
    pub src_reg: u8,
    pub off: i16,
    pub imm: i32,
}

// Instruction classes (BPF_CLASS).
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_ALU64: u8 = 0x07;
// Modes (BPF_MODE).
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_ATOMIC: u8 = 0xc0;
// Sources (BPF_SRC).
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
// ALU operations (BPF_OP) the sweep uses.
pub const BPF_ADD: u8 = 0x00;
pub const BPF_AND: u8 = 0x50;
pub const BPF_MOV: u8 = 0xb0;
// Jump operations.
pub const BPF_CALL: u8 = 0x80;
pub const BPF_EXIT: u8 = 0x90;
/// `src_reg` of an `ld_imm64` whose `imm` is a map fd (the loader's relocation).
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// Helper ids (include/uapi/linux/bpf.h `__BPF_FUNC_MAPPER`).
pub const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
pub const BPF_FUNC_TAIL_CALL: i32 = 12;

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R10: u8 = 10;

/// Access sizes (BPF_SIZE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub const ALL: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

    pub fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code & 0x18 {
            0x00 => Size::W,
            0x08 => Size::H,
            0x10 => Size::B,
            _ => Size::DW,
        }
    }

    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The name in program names and grids: `b`, `h`, `w`, `dw`.
    pub fn short(self) -> &'static str {
        match self {
            Size::B => "b",
            Size::H => "h",
            Size::W => "w",
            Size::DW => "dw",
        }
    }

    fn c_type(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// The atomic operations the sweep generates (`imm` of a `BPF_STX | BPF_ATOMIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AtomicOp {
    /// `BPF_ADD` (0x00): the old `BPF_XADD`, on every kernel.
    Add,
    /// `BPF_XCHG` (0xe0 | BPF_FETCH): v3 ISA, 5.12+.
    Xchg,
    /// `BPF_CMPXCHG` (0xf0 | BPF_FETCH), compares with r0: v3 ISA, 5.12+.
    Cmpxchg,
}

impl AtomicOp {
    pub const ALL: [AtomicOp; 3] = [AtomicOp::Add, AtomicOp::Xchg, AtomicOp::Cmpxchg];

    pub fn imm(self) -> i32 {
        match self {
            AtomicOp::Add => 0x00,
            AtomicOp::Xchg => 0xe1,
            AtomicOp::Cmpxchg => 0xf1,
        }
    }

    pub fn from_imm(imm: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.imm() == imm)
    }

    pub fn short(self) -> &'static str {
        match self {
            AtomicOp::Add => "add",
            AtomicOp::Xchg => "xchg",
            AtomicOp::Cmpxchg => "cmpxchg",
        }
    }
}

impl Insn {
    const fn new(code: u8, dst_reg: u8, src_reg: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst_reg,
            src_reg,
            off,
            imm,
        }
    }

    /// `dst = *(size *)(src + off)` (BPF_LDX_MEM).
    pub fn ldx(size: Size, dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | size.bits(), dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src` (BPF_STX_MEM).
    pub fn stx(size: Size, dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_STX | BPF_MEM | size.bits(), dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm` (BPF_ST_MEM; a u64 store sign-extends imm).
    pub fn st(size: Size, dst: u8, off: i16, imm: i32) -> Self {
        Self::new(BPF_ST | BPF_MEM | size.bits(), dst, 0, off, imm)
    }

    /// An atomic read-modify-write of `*(size *)(dst + off)` with `src` (BPF_ATOMIC_OP).
    pub fn atomic(size: Size, op: AtomicOp, dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_STX | BPF_ATOMIC | size.bits(), dst, src, off, op.imm())
    }

    /// `dst op= imm`, 64-bit (BPF_ALU64_IMM).
    pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
    }

    /// `dst op= src`, 64-bit (BPF_ALU64_REG).
    pub fn alu64_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
    }

    /// `dst = imm` sign-extended (BPF_MOV64_IMM).
    pub fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self::alu64_imm(BPF_MOV, dst, imm)
    }

    /// `dst = src` (BPF_MOV64_REG).
    pub fn mov64_reg(dst: u8, src: u8) -> Self {
        Self::alu64_reg(BPF_MOV, dst, src)
    }

    /// `dst = value ll`: two slots (BPF_LD_IMM64).
    pub fn ld_imm64(dst: u8, value: u64) -> [Self; 2] {
        [
            Self::new(
                BPF_LD | BPF_IMM | Size::DW.bits(),
                dst,
                0,
                0,
                value as u32 as i32,
            ),
            Self::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
        ]
    }

    /// `dst = <map fd> ll` (BPF_LD_MAP_FD): `imm` is the fd, which only the loading process
    /// knows; the generator writes [`MAP_FD_PLACEHOLDER`] and a [`super::Relocation`] says
    /// which slot the guest fills.
    pub fn ld_map_fd(dst: u8, fd: i32) -> [Self; 2] {
        [
            Self::new(
                BPF_LD | BPF_IMM | Size::DW.bits(),
                dst,
                BPF_PSEUDO_MAP_FD,
                0,
                fd,
            ),
            Self::new(0, 0, 0, 0, 0),
        ]
    }

    /// `call helper` (BPF_EMIT_CALL).
    pub fn call(helper: i32) -> Self {
        Self::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
    }

    /// `exit` (BPF_EXIT_INSN).
    pub fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    pub fn mode(&self) -> u8 {
        self.code & 0xe0
    }

    pub fn size(&self) -> Size {
        Size::from_code(self.code)
    }

    /// Whether this is the first slot of a two-slot `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD | BPF_IMM | Size::DW.bits()
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst_reg & 0x0f) | (self.src_reg << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Insn {
            code: bytes[0],
            dst_reg: bytes[1] & 0x0f,
            src_reg: bytes[1] >> 4,
            off: i16::from_le_bytes([bytes[2], bytes[3]]),
            imm: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// A map fd the guest has not filled yet (an fd is never negative).
pub const MAP_FD_PLACEHOLDER: i32 = -1;

/// The instructions as the kernel's `insns` array.
pub fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(Insn::to_bytes).collect()
}

/// The instructions of an `insns` array; `None` if its length is not a multiple of 8.
pub fn decode(bytes: &[u8]) -> Option<Vec<Insn>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// One line per instruction (an `ld_imm64` is one line for its two slots), numbered by slot
/// like llvm-objdump: `   0: r6 = *(u64 *)(r1 + 0)`.
pub fn listing(insns: &[Insn]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < insns.len() {
        let insn = &insns[at];
        let text = if insn.is_ld_imm64() && at + 1 < insns.len() {
            ld_imm64_text(insn, &insns[at + 1])
        } else {
            insn.to_string()
        };
        lines.push(format!("{at:4}: {text}"));
        at += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    lines
}

fn ld_imm64_text(low: &Insn, high: &Insn) -> String {
    if low.src_reg == BPF_PSEUDO_MAP_FD {
        return format!("r{} = map_fd({}) ll", low.dst_reg, low.imm);
    }
    let value = (low.imm as u32 as u64) | ((high.imm as u32 as u64) << 32);
    format!("r{} = {value:#x} ll", low.dst_reg)
}

fn address(reg: u8, off: i16) -> String {
    if off < 0 {
        format!("r{reg} - {}", -(off as i32))
    } else {
        format!("r{reg} + {off}")
    }
}

/// llvm-objdump's words for one slot (the first slot of an `ld_imm64` shows its low half).
impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = self.size();
        let at = address(self.dst_reg, self.off);
        match (self.class(), self.mode()) {
            (BPF_LDX, BPF_MEM) => write!(
                f,
                "r{} = *({} *)({})",
                self.dst_reg,
                size.c_type(),
                address(self.src_reg, self.off)
            ),
            (BPF_STX, BPF_MEM) => {
                write!(f, "*({} *)({at}) = r{}", size.c_type(), self.src_reg)
            }
            (BPF_ST, BPF_MEM) => write!(f, "*({} *)({at}) = {}", size.c_type(), self.imm),
            (BPF_STX, BPF_ATOMIC) => {
                let bits = size.bytes() * 8;
                let (reg, op_suffix) = if size == Size::DW {
                    ("r", "_64".to_owned())
                } else {
                    ("w", format!("32_{bits}"))
                };
                let base = address(self.dst_reg, self.off);
                match AtomicOp::from_imm(self.imm) {
                    Some(AtomicOp::Add) => write!(
                        f,
                        "lock *({} *)({base}) += r{}",
                        size.c_type(),
                        self.src_reg
                    ),
                    Some(AtomicOp::Xchg) => write!(
                        f,
                        "{reg}{src} = xchg{op_suffix}({base}, {reg}{src})",
                        src = self.src_reg
                    ),
                    Some(AtomicOp::Cmpxchg) => write!(
                        f,
                        "{reg}0 = cmpxchg{op_suffix}({base}, {reg}0, {reg}{})",
                        self.src_reg
                    ),
                    None => write!(
                        f,
                        "atomic {:#04x} *({} *)({base}), r{}",
                        self.imm,
                        size.c_type(),
                        self.src_reg
                    ),
                }
            }
            (BPF_ALU64, _) | (BPF_ALU, _) => {
                let reg = if self.class() == BPF_ALU64 { "r" } else { "w" };
                let op = match self.code & 0xf0 {
                    BPF_ADD => "+=",
                    BPF_AND => "&=",
                    BPF_MOV => "=",
                    _ => "?=",
                };
                if self.code & BPF_X != 0 {
                    write!(f, "{reg}{} {op} {reg}{}", self.dst_reg, self.src_reg)
                } else {
                    write!(f, "{reg}{} {op} {}", self.dst_reg, self.imm)
                }
            }
            _ if self.code == BPF_JMP | BPF_CALL => write!(f, "call {}", self.imm),
            _ if self.code == BPF_JMP | BPF_EXIT => write!(f, "exit"),
            _ if self.is_ld_imm64() => ld_imm64_text(self, &Insn::new(0, 0, 0, 0, 0)).fmt(f),
            _ => write!(
                f,
                "<code {:#04x} dst r{} src r{} off {} imm {}>",
                self.code, self.dst_reg, self.src_reg, self.off, self.imm
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn hex(insn: Insn) -> String {
        insn.to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Byte patterns and words from llvm-objdump 14 on clang-built objects (the project's
    /// guest-programs/ objects, and `clang -target bpf -mcpu=v3` for the atomics). llvm 14
    /// prints the 32-bit xchg and cmpxchg as `<unknown>`: their words are newer llvm's.
    #[rstest]
    #[case(
        Insn::ldx(Size::DW, R1, R1, 0),
        "79 11 00 00 00 00 00 00",
        "r1 = *(u64 *)(r1 + 0)"
    )]
    #[case(
        Insn::ldx(Size::B, R2, R1, 7),
        "71 12 07 00 00 00 00 00",
        "r2 = *(u8 *)(r1 + 7)"
    )]
    #[case(Insn::ldx(Size::DW, R1, R1, -8), "79 11 f8 ff 00 00 00 00", "r1 = *(u64 *)(r1 - 8)")]
    #[case(
        Insn::ldx(Size::W, R2, R1, 4),
        "61 12 04 00 00 00 00 00",
        "r2 = *(u32 *)(r1 + 4)"
    )]
    #[case(
        Insn::stx(Size::B, R1, R2, 7),
        "73 21 07 00 00 00 00 00",
        "*(u8 *)(r1 + 7) = r2"
    )]
    #[case(
        Insn::stx(Size::W, R1, R3, 4),
        "63 31 04 00 00 00 00 00",
        "*(u32 *)(r1 + 4) = r3"
    )]
    #[case(
        Insn::stx(Size::DW, R1, R2, 16),
        "7b 21 10 00 00 00 00 00",
        "*(u64 *)(r1 + 16) = r2"
    )]
    #[case(
        Insn::stx(Size::H, R1, R2, 0),
        "6b 21 00 00 00 00 00 00",
        "*(u16 *)(r1 + 0) = r2"
    )]
    #[case(Insn::st(Size::W, R6, 12, -1), "62 06 0c 00 ff ff ff ff", "*(u32 *)(r6 + 12) = -1")]
    #[case(Insn::st(Size::DW, R6, -9, 1), "7a 06 f7 ff 01 00 00 00", "*(u64 *)(r6 - 9) = 1")]
    #[case(
        Insn::st(Size::B, R1, 0, 7),
        "72 01 00 00 07 00 00 00",
        "*(u8 *)(r1 + 0) = 7"
    )]
    #[case(
        Insn::st(Size::H, R1, 2, 7),
        "6a 01 02 00 07 00 00 00",
        "*(u16 *)(r1 + 2) = 7"
    )]
    #[case(Insn::alu64_imm(BPF_AND, R2, 7), "57 02 00 00 07 00 00 00", "r2 &= 7")]
    #[case(Insn::alu64_imm(BPF_ADD, R2, 1), "07 02 00 00 01 00 00 00", "r2 += 1")]
    #[case(
        Insn::alu64_reg(BPF_ADD, R1, R2),
        "0f 21 00 00 00 00 00 00",
        "r1 += r2"
    )]
    #[case(Insn::mov64_imm(R2, 4242), "b7 02 00 00 92 10 00 00", "r2 = 4242")]
    #[case(Insn::mov64_imm(R2, -1507605807), "b7 02 00 00 d1 c2 23 a6", "r2 = -1507605807")]
    #[case(Insn::mov64_reg(4, R3), "bf 34 00 00 00 00 00 00", "r4 = r3")]
    #[case(Insn::call(12), "85 00 00 00 0c 00 00 00", "call 12")]
    #[case(Insn::exit(), "95 00 00 00 00 00 00 00", "exit")]
    #[case(
        Insn::atomic(Size::DW, AtomicOp::Add, R1, 4, 0),
        "db 41 00 00 00 00 00 00",
        "lock *(u64 *)(r1 + 0) += r4"
    )]
    #[case(
        Insn::atomic(Size::W, AtomicOp::Add, R2, 4, 0),
        "c3 42 00 00 00 00 00 00",
        "lock *(u32 *)(r2 + 0) += r4"
    )]
    #[case(
        Insn::atomic(Size::DW, AtomicOp::Xchg, R1, 4, 0),
        "db 41 00 00 e1 00 00 00",
        "r4 = xchg_64(r1 + 0, r4)"
    )]
    #[case(
        Insn::atomic(Size::W, AtomicOp::Xchg, R2, 4, 0),
        "c3 42 00 00 e1 00 00 00",
        "w4 = xchg32_32(r2 + 0, w4)"
    )]
    #[case(
        Insn::atomic(Size::DW, AtomicOp::Cmpxchg, R1, R3, 0),
        "db 31 00 00 f1 00 00 00",
        "r0 = cmpxchg_64(r1 + 0, r0, r3)"
    )]
    #[case(
        Insn::atomic(Size::W, AtomicOp::Cmpxchg, R2, R3, 0),
        "c3 32 00 00 f1 00 00 00",
        "w0 = cmpxchg32_32(r2 + 0, w0, w3)"
    )]
    fn encodes_like_clang(#[case] insn: Insn, #[case] bytes: &str, #[case] words: &str) {
        assert_eq!(hex(insn), bytes);
        assert_eq!(insn.to_string(), words);
        assert_eq!(Insn::from_bytes(insn.to_bytes()), insn);
    }

    #[test]
    fn ld_imm64_takes_two_slots() {
        let [low, high] = Insn::ld_imm64(R3, 0);
        assert_eq!(
            format!("{} {}", hex(low), hex(high)),
            "18 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
        );
        let value = Insn::ld_imm64(R7, 0x8877_6655_4433_2211);
        assert_eq!(hex(value[0]), "18 07 00 00 11 22 33 44");
        assert_eq!(hex(value[1]), "00 00 00 00 55 66 77 88");
        let map = Insn::ld_map_fd(R2, 5);
        assert_eq!(hex(map[0]), "18 12 00 00 05 00 00 00");
        let program = [value[0], value[1], map[0], map[1], Insn::exit()];
        assert_eq!(
            listing(&program),
            [
                "   0: r7 = 0x8877665544332211 ll",
                "   2: r2 = map_fd(5) ll",
                "   4: exit",
            ]
        );
    }

    #[test]
    fn encode_and_decode_are_inverse() {
        let program = [
            Insn::ldx(Size::DW, R6, R1, 0),
            Insn::st(Size::W, R6, -3, i32::MIN),
            Insn::exit(),
        ];
        let bytes = encode(&program);
        assert_eq!(bytes.len(), 24);
        assert_eq!(decode(&bytes).unwrap(), program);
        assert_eq!(decode(&bytes[..7]), None);
    }

    #[test]
    fn serialises_as_the_kernels_fields() {
        let json = serde_json::to_string(&Insn::st(Size::W, R6, 12, 1)).unwrap();
        assert_eq!(
            json,
            r#"{"code":98,"dst_reg":6,"src_reg":0,"off":12,"imm":1}"#
        );
    }
}
