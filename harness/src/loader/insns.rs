//! Programs given as instructions ([`protocol::InsnProgram`]): the maps they name are
//! created, each map's fd goes into the instructions that load it, and the instructions go to
//! BPF_PROG_LOAD as they are. No object, no aya-obj: what the case gives is what the kernel
//! sees.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use aya_obj::generated::bpf_insn;
use protocol::{Insn, InsnProgram};

use crate::bpf_sys::{self, ProgLoadRequest};
use crate::loader::LoadAttempt;

/// An instruction program the kernel accepted, with its maps.
pub struct InsnLoaded {
    pub fd: OwnedFd,
    pub tracepoint: Option<String>,
    /// The maps by name (a map without a name is `map<index>`).
    pub maps: Vec<(String, OwnedFd)>,
}

/// The kernel's `struct bpf_insn` of one instruction (`dst` low nibble, `src` high).
pub fn encode(insn: &Insn) -> bpf_insn {
    // SAFETY: bpf_insn is plain integers; zero is a valid value for every field.
    let mut out: bpf_insn = unsafe { std::mem::zeroed() };
    out.code = insn.code;
    out.set_dst_reg(insn.dst);
    out.set_src_reg(insn.src);
    out.off = insn.off;
    out.imm = insn.imm;
    out
}

/// The map's name for steps and for the kernel.
pub fn map_name(index: usize, map: &protocol::InsnMap) -> String {
    map.name.clone().unwrap_or_else(|| format!("map{index}"))
}

/// Creates the maps and loads the instructions with their fds patched in. A map the kernel
/// refuses is the load's answer (its errno), noted.
pub fn load(program: &InsnProgram, prog_flags: u32) -> (LoadAttempt, Option<InsnLoaded>) {
    let name = program.name.clone().unwrap_or_else(|| "wtp_insns".into());
    let mut insns: Vec<bpf_insn> = program.insns.iter().map(encode).collect();
    let mut attempt = LoadAttempt {
        program: name.clone(),
        prog_type: program.prog_type,
        insn_count: insns.len(),
        result: Ok(()),
        verifier_log: String::new(),
        notes: Vec::new(),
    };
    let mut maps = Vec::new();
    for (index, map) in program.maps.iter().enumerate() {
        match bpf_sys::map_create(map) {
            Ok(fd) => {
                for at in &map.insns {
                    if let Some(insn) = insns.get_mut(*at) {
                        insn.imm = std::os::fd::AsRawFd::as_raw_fd(&fd);
                    }
                }
                maps.push((map_name(index, map), fd));
            }
            Err(error) => {
                attempt
                    .notes
                    .push(format!("creating map {}: {error}", map_name(index, map)));
                attempt.result = Err(error);
                return (attempt, None);
            }
        }
    }
    let license = CString::new(program.license.as_bytes()).unwrap_or_else(|_| c"GPL".into());
    let loaded = bpf_sys::prog_load(&ProgLoadRequest {
        prog_type: program.prog_type,
        name: &name,
        insns: &insns,
        license: &license,
        flags: prog_flags,
        log_level: crate::bpf_sys::DEFAULT_LOG_LEVEL,
        btf: None,
        replaces: None,
        fd_array: &[],
    });
    attempt.verifier_log = loaded.verifier_log;
    match loaded.result {
        Ok(fd) => (
            attempt,
            Some(InsnLoaded {
                fd,
                tracepoint: program.tracepoint.clone(),
                maps,
            }),
        ),
        Err(error) => {
            attempt.result = Err(error);
            (attempt, None)
        }
    }
}

impl InsnLoaded {
    pub fn map(&self, name: &str) -> Option<BorrowedFd<'_>> {
        self.maps
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, fd)| fd.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_go_into_their_nibbles() {
        let insn = encode(&Insn {
            code: 0x79,
            dst: 6,
            src: 1,
            off: -8,
            imm: 7,
        });
        // SAFETY: bpf_insn is 8 plain bytes.
        let bytes: [u8; 8] = unsafe { std::mem::transmute(insn) };
        assert_eq!(bytes, [0x79, 0x16, 0xf8, 0xff, 7, 0, 0, 0]);
    }
}
