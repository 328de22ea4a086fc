//! What a program type may call, measured: one minimal program per helper (`r1..r5 = 0;
//! call <id>; r0 = 0; exit`) and one calling a kfunc, each loaded with the verifier log kept.
//! The host classifies the answers; here they are only recorded.

use std::ffi::CString;

use aya_obj::btf::{Btf, BtfKind};
use aya_obj::generated::bpf_insn;
use protocol::{HelperAnswer, HelperProbe, KfuncAnswer, Outcome, ProgType, KFUNC_PROBES};

use crate::bpf_sys::{self, ProgLoadRequest};

/// BPF_CALL with src_reg BPF_PSEUDO_KFUNC_CALL calls the kfunc whose BTF id is in imm.
const PSEUDO_KFUNC_CALL: u8 = 2;

pub fn helpers(probes: &[HelperProbe], prog_type: ProgType) -> Vec<HelperAnswer> {
    probes
        .iter()
        .map(|probe| {
            let load = load(prog_type, &call_program(call(probe.id as i32, 0)));
            HelperAnswer {
                id: probe.id,
                loaded: load.result.is_ok(),
                errno: load
                    .result
                    .as_ref()
                    .err()
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(0),
                message: protocol::verifier_verdict(&load.verifier_log).to_owned(),
            }
        })
        .collect()
}

/// Loads, for each of [`KFUNC_PROBES`] whose kfuncs vmlinux BTF has, a program calling them.
pub fn kfuncs(prog_type: ProgType) -> Vec<KfuncAnswer> {
    let btf = Btf::from_sys_fs();
    KFUNC_PROBES
        .iter()
        .map(|names| {
            let kfuncs = names.join("+");
            let ids: Option<Vec<u32>> = match &btf {
                Ok(btf) => names
                    .iter()
                    .map(|n| btf.id_by_type_name_kind(n, BtfKind::Func).ok())
                    .collect(),
                Err(_) => None,
            };
            let Some(ids) = ids else {
                let message = match &btf {
                    Ok(_) => "not in this kernel's BTF".to_owned(),
                    Err(error) => format!("reading vmlinux BTF: {error}"),
                };
                return KfuncAnswer {
                    kfuncs,
                    present: false,
                    outcome: Outcome::Error { message },
                    message: String::new(),
                };
            };
            let calls = ids
                .iter()
                .map(|id| call(*id as i32, PSEUDO_KFUNC_CALL))
                .collect::<Vec<_>>();
            let load = load(prog_type, &calls_program(&calls));
            let outcome = match &load.result {
                Ok(_) => Outcome::ok(),
                Err(error) => Outcome::from_io(error),
            };
            KfuncAnswer {
                kfuncs,
                present: true,
                outcome,
                message: protocol::verifier_verdict(&load.verifier_log).to_owned(),
            }
        })
        .collect()
}

fn load(prog_type: ProgType, insns: &[bpf_insn]) -> bpf_sys::ProgLoad {
    let license = CString::new("GPL").unwrap();
    bpf_sys::prog_load(&ProgLoadRequest {
        flags: 0,
        log_level: crate::bpf_sys::DEFAULT_LOG_LEVEL,
        btf: None,
        replaces: None,
        fd_array: &[],
        prog_type,
        name: "wtp_probe",
        insns,
        license: &license,
    })
}

/// Zeroed argument registers, the call, `r0 = 0`, exit.
fn call_program(call: bpf_insn) -> Vec<bpf_insn> {
    calls_program(&[call])
}

fn calls_program(calls: &[bpf_insn]) -> Vec<bpf_insn> {
    let mut insns: Vec<bpf_insn> = (1..=5).map(|reg| mov_imm(reg, 0)).collect();
    insns.extend_from_slice(calls);
    insns.extend([mov_imm(0, 0), insn(0x95, 0, 0, 0)]);
    insns
}

fn mov_imm(reg: u8, imm: i32) -> bpf_insn {
    // BPF_ALU64 | BPF_MOV | BPF_K
    insn(0xb7, reg, 0, imm)
}

fn call(imm: i32, src_reg: u8) -> bpf_insn {
    // BPF_JMP | BPF_CALL
    insn(0x85, 0, src_reg, imm)
}

fn insn(code: u8, dst: u8, src: u8, imm: i32) -> bpf_insn {
    // SAFETY: bpf_insn is plain integers; zero is valid for every field.
    let mut insn: bpf_insn = unsafe { std::mem::zeroed() };
    insn.code = code;
    insn.set_dst_reg(dst);
    insn.set_src_reg(src);
    insn.imm = imm;
    insn
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instruction as the kernel reads it: opcode, `src_reg << 4 | dst_reg`, the 16-bit
    /// offset and the 32-bit immediate, little-endian.
    fn encoded(insn: &bpf_insn) -> [u8; 8] {
        const _: () = assert!(std::mem::size_of::<bpf_insn>() == 8);
        // SAFETY: bpf_insn is a repr(C) struct of 8 bytes of plain integers (checked above),
        // with no padding; any bytes read from it are initialised.
        unsafe { std::mem::transmute_copy(insn) }
    }

    #[test]
    fn a_probe_program_zeroes_the_arguments_and_calls() {
        let program = call_program(call(6, 0));
        let bytes: Vec<[u8; 8]> = program.iter().map(encoded).collect();
        assert_eq!(
            bytes,
            [
                [0xb7, 0x01, 0, 0, 0, 0, 0, 0], // r1 = 0
                [0xb7, 0x02, 0, 0, 0, 0, 0, 0], // r2 = 0
                [0xb7, 0x03, 0, 0, 0, 0, 0, 0], // r3 = 0
                [0xb7, 0x04, 0, 0, 0, 0, 0, 0], // r4 = 0
                [0xb7, 0x05, 0, 0, 0, 0, 0, 0], // r5 = 0
                [0x85, 0x00, 0, 0, 6, 0, 0, 0], // call 6 (trace_printk)
                [0xb7, 0x00, 0, 0, 0, 0, 0, 0], // r0 = 0
                [0x95, 0x00, 0, 0, 0, 0, 0, 0], // exit
            ]
        );
    }

    #[test]
    fn a_kfunc_call_names_its_btf_id_with_the_kernels_pseudo_call_marker() {
        assert_eq!(
            u32::from(PSEUDO_KFUNC_CALL),
            aya_obj::generated::BPF_PSEUDO_KFUNC_CALL
        );
        // src_reg 2 in the high nibble of the registers byte, the BTF id (1234) in imm.
        assert_eq!(
            encoded(&call(1234, PSEUDO_KFUNC_CALL)),
            [0x85, 0x20, 0, 0, 0xd2, 0x04, 0, 0]
        );
    }
}
