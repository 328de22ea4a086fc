//! BPF_PROG_TEST_RUN: on a trivial socket filter it ends in `bpf_test_finish`, whose writable
//! buffer is the syscall's error code; on a writable program itself it is not supported.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use aya_obj::generated::bpf_insn;
use protocol::Outcome;
use serde_json::json;

use protocol::ProgType;

use crate::bpf_sys::{self, ProgLoadRequest};

/// Test-runs `r0 = 0; exit` as a socket filter over 64 zero bytes.
pub fn socket_filter() -> Outcome {
    let program = [mov_r0_zero(), exit()];
    let license = CString::new("GPL").unwrap();
    let load = bpf_sys::prog_load(&ProgLoadRequest {
        flags: 0,
        log_level: crate::bpf_sys::DEFAULT_LOG_LEVEL,
        btf: None,
        replaces: None,
        fd_array: &[],
        prog_type: ProgType::SocketFilter,
        name: "wtp_sock_filter",
        insns: &program,
        license: &license,
    });
    match load.result {
        Ok(fd) => run(fd.as_fd()),
        Err(error) => Outcome::Error {
            message: format!(
                "loading the trivial socket filter: {error}\n{}",
                load.verifier_log
            ),
        },
    }
}

pub fn run(program: BorrowedFd<'_>) -> Outcome {
    match bpf_sys::prog_test_run(program, &[0u8; 64]) {
        Ok(run) => Outcome::value(json!({ "ret": run.ret, "retval": run.retval })),
        Err(error) => Outcome::from_io(&error),
    }
}

fn mov_r0_zero() -> bpf_insn {
    // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm 0
    insn(0xb7, 0)
}

fn exit() -> bpf_insn {
    // BPF_JMP | BPF_EXIT
    insn(0x95, 0)
}

fn insn(code: u8, imm: i32) -> bpf_insn {
    // SAFETY: bpf_insn is plain integers; zero is a valid value for every field.
    let mut insn: bpf_insn = unsafe { std::mem::zeroed() };
    insn.code = code;
    insn.imm = imm;
    insn
}
