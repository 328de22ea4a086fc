//! Programs given as instructions, as case files write them (`[insns]`), and a small assembler
//! for writing them by hand in the verifier log's own syntax:
//!
//! ```text
//! r6 = *(u64 *)(r1 +0)        r0 = 42            w0 = w1          r2 += -8     w3 <<= 2
//! *(u32 *)(r6 +0) = r0        *(u8 *)(r10 -1) = 7                 r1 = map[counts]
//! r1 = 0x1234 ll              if r0 != 0x0 goto pc+1              if w1 s< 3 goto pc-2
//! goto pc+3                   call 1             exit
//! ```
//!
//! The interchange form is plain data: each instruction `[code, dst, src, off, imm]`
//! ([`protocol::Insn`]), which is what the plan carries, what upstream's arrays are extracted
//! into and what a generator writes; `asm` lines are turned into it when the case is read.
//! Pure: text in, instructions out.

use anyhow::{bail, Context, Result};
use protocol::{Insn, InsnMap, InsnProgram, ProgType};
use serde::{Deserialize, Serialize};

/// A case's `[insns]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsnSource {
    /// `"raw_tp.w"`, `"raw_tp"`, `"socket"`, `"freplace"` or the kernel's number.
    pub prog_type: ProgTypeName,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "gpl")]
    pub license: String,
    /// The instructions as data (`[code, dst, src, off, imm]` each) ...
    #[serde(default)]
    pub insns: Vec<Insn>,
    /// ... or as assembler lines (one of the two).
    #[serde(default)]
    pub asm: Vec<String>,
    #[serde(default)]
    pub maps: Vec<InsnMap>,
    #[serde(default)]
    pub tracepoint: Option<String>,
}

fn gpl() -> String {
    "GPL".to_owned()
}

/// A program type by libbpf's section prefix or by number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value", into = "u32")]
pub struct ProgTypeName(pub ProgType);

impl TryFrom<toml::Value> for ProgTypeName {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let all = [
            ProgType::SocketFilter,
            ProgType::RawTracepoint,
            ProgType::RawTracepointWritable,
            ProgType::Extension,
        ];
        let found = match &value {
            toml::Value::Integer(number) => u32::try_from(*number)
                .map_err(|e| e.to_string())
                .and_then(ProgType::try_from)?,
            toml::Value::String(name) => all
                .into_iter()
                .find(|t| {
                    t.section() == name
                        || (name == "raw_tracepoint.w" && *t == ProgType::RawTracepointWritable)
                })
                .ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|t| t.section()).collect();
                    format!(
                        "unknown program type `{name}`; known: {} or a number",
                        names.join(", ")
                    )
                })?,
            other => return Err(format!("a program type is a name or a number, not {other}")),
        };
        Ok(ProgTypeName(found))
    }
}

impl From<ProgTypeName> for u32 {
    fn from(name: ProgTypeName) -> u32 {
        name.0.number()
    }
}

impl InsnSource {
    /// The program the plan carries: the instructions (assembled if given as `asm`), with the
    /// maps the assembler's `map[name]` references filled in.
    pub fn program(&self) -> Result<InsnProgram> {
        let mut maps = self.maps.clone();
        let insns = match (self.insns.is_empty(), self.asm.is_empty()) {
            (false, true) => self.insns.clone(),
            (true, false) => assemble(&self.asm, &mut maps)?,
            _ => bail!("give the instructions either as `insns` or as `asm`, not both or neither"),
        };
        for (index, map) in maps.iter().enumerate() {
            if let Some(bad) = map.insns.iter().find(|i| **i >= insns.len()) {
                bail!(
                    "map {index}: instruction {bad} is past the program's end ({} instructions)",
                    insns.len()
                );
            }
        }
        Ok(InsnProgram {
            prog_type: self.prog_type.0,
            name: self.name.clone(),
            license: self.license.clone(),
            insns,
            maps,
            tracepoint: self.tracepoint.clone(),
        })
    }
}

/// Assembles `lines`; `map[name]` loads add their index to the named map's `insns`.
pub fn assemble(lines: &[String], maps: &mut [InsnMap]) -> Result<Vec<Insn>> {
    let mut insns = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let line = line.trim();
        let at = insns.len();
        let mut assembled =
            one(line).with_context(|| format!("asm line {} `{line}`", number + 1))?;
        if let Some(name) = map_reference(line) {
            let map = maps
                .iter_mut()
                .find(|m| m.name.as_deref() == Some(name))
                .with_context(|| {
                    format!(
                        "asm line {} `{line}`: no map named `{name}` in `maps`",
                        number + 1
                    )
                })?;
            map.insns.push(at);
        }
        insns.append(&mut assembled);
    }
    Ok(insns)
}

const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const MEM: u8 = 0x60;
const IMM_MODE: u8 = 0x00;
const DW: u8 = 0x18;
const X: u8 = 0x08;
/// BPF_PSEUDO_MAP_FD.
const PSEUDO_MAP_FD: u8 = 1;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

fn map_reference(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("= map[")?;
    rest.strip_suffix(']')
}

/// One line: one instruction, or two for a 64-bit immediate.
fn one(line: &str) -> Result<Vec<Insn>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["exit"] => return Ok(vec![insn(JMP | 0x90, 0, 0, 0, 0)]),
        ["call", id] => return Ok(vec![insn(JMP | 0x80, 0, 0, 0, number(id)?)]),
        ["goto", target] => return Ok(vec![insn(JMP, 0, 0, jump(target)?, 0)]),
        ["if", dst, op, src, "goto", target] => {
            let (dst, wide) = register(dst)?;
            let class = if wide { JMP } else { JMP32 };
            let op = jump_op(op)?;
            let off = jump(target)?;
            return Ok(vec![match register(src) {
                Ok((src, _)) => insn(class | op | X, dst, src, off, 0),
                Err(_) => insn(class | op, dst, 0, off, number(src)?),
            }]);
        }
        _ => {}
    }
    if let [dst_text, op, rest @ ..] = words.as_slice() {
        if op.ends_with('=') && *op != "=" && register(dst_text).is_ok() {
            let (dst, wide) = register(dst_text)?;
            let class = if wide { ALU64 } else { ALU };
            let op = alu_op(op)?;
            let right = rest.join(" ");
            return Ok(vec![match register(&right) {
                Ok((src, _)) => insn(class | op | X, dst, src, 0, 0),
                Err(_) => insn(class | op, dst, 0, 0, number(&right)?),
            }]);
        }
    }
    let (left, right) = line
        .split_once(" = ")
        .map(|(l, r)| (l.trim(), r.trim()))
        .context("not an instruction this assembler knows")?;
    if let Some((size, base, off)) = memory(left)? {
        return Ok(vec![match register(right) {
            Ok((src, _)) => insn(STX | MEM | size, base, src, off, 0),
            Err(_) => insn(ST | MEM | size, base, 0, off, number(right)?),
        }]);
    }
    let op = 0xb0;
    let dst_text = left;
    let (dst, wide) = register(dst_text)?;
    let class = if wide { ALU64 } else { ALU };
    {
        if let Some((size, base, off)) = memory(right)? {
            return Ok(vec![insn(LDX | MEM | size, dst, base, off, 0)]);
        }
        if right.starts_with("map[") {
            return Ok(vec![
                insn(LD | IMM_MODE | DW, dst, PSEUDO_MAP_FD, 0, 0),
                insn(0, 0, 0, 0, 0),
            ]);
        }
        if let Some(value) = right.strip_suffix(" ll") {
            let value = number64(value)?;
            return Ok(vec![
                insn(LD | IMM_MODE | DW, dst, 0, 0, value as u32 as i32),
                insn(0, 0, 0, 0, (value >> 32) as u32 as i32),
            ]);
        }
    }
    Ok(vec![match register(right) {
        Ok((src, _)) => insn(class | op | X, dst, src, 0, 0),
        Err(_) => insn(class | op, dst, 0, 0, number(right)?),
    }])
}

/// `r0`..`r10` (64-bit) or `w0`..`w10` (32-bit).
fn register(text: &str) -> Result<(u8, bool)> {
    let (wide, digits) = match text.split_at_checked(1) {
        Some(("r", digits)) => (true, digits),
        Some(("w", digits)) => (false, digits),
        _ => bail!("`{text}` is not a register"),
    };
    match digits.parse::<u8>() {
        Ok(n) if n <= 10 => Ok((n, wide)),
        _ => bail!("`{text}` is not a register"),
    }
}

/// `*(u32 *)(r6 +4)`: size, base register, offset.
fn memory(text: &str) -> Result<Option<(u8, u8, i16)>> {
    let Some(rest) = text.strip_prefix("*(") else {
        return Ok(None);
    };
    let (size, rest) = rest
        .split_once(" *)(")
        .with_context(|| format!("`{text}`: write memory as *(u32 *)(r1 +0)"))?;
    let size = match size {
        "u8" => 0x10,
        "u16" => 0x08,
        "u32" => 0x00,
        "u64" => DW,
        other => bail!("unknown size `{other}`: u8, u16, u32 or u64"),
    };
    let inner = rest.strip_suffix(')').context("missing `)`")?;
    let (base, off) = match inner.split_once(' ') {
        Some((base, off)) => (base, off.trim()),
        None => (inner, "+0"),
    };
    let off: i16 = number(off)?
        .try_into()
        .with_context(|| format!("offset {off} does not fit 16 bits"))?;
    Ok(Some((size, register(base)?.0, off)))
}

fn alu_op(op: &str) -> Result<u8> {
    Ok(match op {
        "+=" => 0x00,
        "-=" => 0x10,
        "*=" => 0x20,
        "/=" => 0x30,
        "|=" => 0x40,
        "&=" => 0x50,
        "<<=" => 0x60,
        ">>=" => 0x70,
        "%=" => 0x90,
        "^=" => 0xa0,
        "s>>=" => 0xc0,
        other => bail!("unknown operator `{other}`"),
    })
}

fn jump_op(op: &str) -> Result<u8> {
    Ok(match op {
        "==" => 0x10,
        ">" => 0x20,
        ">=" => 0x30,
        "&" => 0x40,
        "!=" => 0x50,
        "s>" => 0x60,
        "s>=" => 0x70,
        "<" => 0xa0,
        "<=" => 0xb0,
        "s<" => 0xc0,
        "s<=" => 0xd0,
        other => bail!("unknown comparison `{other}`"),
    })
}

/// `pc+N` / `pc-N`.
fn jump(text: &str) -> Result<i16> {
    let off = text
        .strip_prefix("pc")
        .with_context(|| format!("`{text}`: a jump target is pc+N or pc-N"))?;
    Ok(number(off)?.try_into()?)
}

fn number(text: &str) -> Result<i32> {
    let value = number64(text)?;
    i32::try_from(value)
        .or_else(|_| u32::try_from(value).map(|v| v as i32))
        .with_context(|| format!("{text} does not fit 32 bits"))
}

fn number64(text: &str) -> Result<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse::<u64>(),
    }
    .with_context(|| format!("`{text}` is not a number"))? as i64;
    Ok(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|l| l.to_string()).collect()
    }

    /// upstream's raw_tp_writable_test_run program, as tools/include/linux/filter.h encodes it.
    #[test]
    fn the_verifier_logs_syntax_assembles_to_filter_h_encodings() {
        let asm = lines(&[
            "r6 = *(u64 *)(r1 +0)",
            "w0 = *(u32 *)(r6 +0)",
            "r0 = 42",
            "*(u32 *)(r6 +0) = r0",
            "exit",
        ]);
        let insns = assemble(&asm, &mut []).unwrap();
        let raw: Vec<(u8, u8, u8, i16, i32)> = insns.into_iter().map(Into::into).collect();
        assert_eq!(
            raw,
            [
                (0x79, 6, 1, 0, 0),
                (0x61, 0, 6, 0, 0),
                (0xb7, 0, 0, 0, 42),
                (0x63, 6, 0, 0, 0),
                (0x95, 0, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn jumps_alu_stores_wide_immediates_and_maps() {
        let mut maps = vec![InsnMap {
            name: Some("m".into()),
            map_type: 1,
            key_size: 8,
            value_size: 8,
            max_entries: 1,
            map_flags: 0,
            insns: vec![],
        }];
        let asm = lines(&[
            "r1 = map[m]",
            "r2 += -8",
            "w3 <<= 2",
            "if r0 != 0x0 goto pc+1",
            "if w1 s< r2 goto pc-2",
            "*(u8 *)(r10 -1) = 7",
            "r4 = 0x100000002 ll",
            "call 1",
            "goto pc+0",
        ]);
        let raw: Vec<(u8, u8, u8, i16, i32)> = assemble(&asm, &mut maps)
            .unwrap()
            .into_iter()
            .map(Into::into)
            .collect();
        assert_eq!(
            raw,
            [
                (0x18, 1, 1, 0, 0),
                (0, 0, 0, 0, 0),
                (0x07, 2, 0, 0, -8),
                (0x64, 3, 0, 0, 2),
                (0x55, 0, 0, 1, 0),
                (0xce, 1, 2, -2, 0),
                (0x72, 10, 0, -1, 7),
                (0x18, 4, 0, 0, 2),
                (0, 0, 0, 0, 1),
                (0x85, 0, 0, 0, 1),
                (0x05, 0, 0, 0, 0),
            ]
        );
        assert_eq!(maps[0].insns, [0]);
    }

    #[test]
    fn mistakes_name_the_line() {
        let error = format!(
            "{:#}",
            assemble(&lines(&["exit", "r11 = 1"]), &mut []).unwrap_err()
        );
        assert!(error.contains("asm line 2 `r11 = 1`"), "{error}");
        let error = format!(
            "{:#}",
            assemble(&lines(&["r1 = map[x]"]), &mut []).unwrap_err()
        );
        assert!(error.contains("no map named `x`"), "{error}");
    }

    #[test]
    fn a_case_table_gives_data_or_asm_and_a_named_type() {
        let source: InsnSource = toml::from_str(
            "prog_type = \"raw_tp.w\"\ntracepoint = \"bpf_test_finish\"\ninsns = [[0xb7, 0, 0, 0, 0], [0x95, 0, 0, 0, 0]]\n",
        )
        .unwrap();
        let program = source.program().unwrap();
        assert_eq!(program.prog_type, ProgType::RawTracepointWritable);
        assert_eq!(program.license, "GPL");
        assert_eq!(program.insns.len(), 2);
        let json = serde_json::to_string(&program).unwrap();
        assert!(
            json.contains("\"insns\":[[183,0,0,0,0],[149,0,0,0,0]]"),
            "{json}"
        );
        let both: InsnSource =
            toml::from_str("prog_type = 24\ninsns = [[0x95, 0, 0, 0, 0]]\nasm = [\"exit\"]\n")
                .unwrap();
        assert!(both.program().is_err());
        assert!(toml::from_str::<InsnSource>("prog_type = \"kprobe\"\nasm = [\"exit\"]").is_err());
    }
}
