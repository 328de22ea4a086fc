//! The second opinion on a program given as instructions: libbpf's own low-level API, as
//! upstream's prog_tests use it — `bpf_map_create` for the maps, `bpf_prog_load` with the same
//! instructions, type, license and flags, `bpf_raw_tracepoint_open_opts` to attach.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;
use protocol::{InsnProgram, LibbpfAnswer, Outcome};

use crate::loader::insns::{encode, map_name};
use crate::program::{harness_error, no_such_part_of_insns, CaseProgram, Link};

/// An instruction program as libbpf loaded it.
pub struct LibbpfInsns {
    fd: OwnedFd,
    tracepoint: Option<String>,
    maps: Vec<(String, OwnedFd)>,
}

/// The fd a libbpf call returned, or its errno (libbpf 1.x returns `-errno`).
fn fd_or_errno(ret: i32) -> Result<OwnedFd, Outcome> {
    match ret {
        // SAFETY: libbpf returned a new fd that nothing else owns.
        fd if fd >= 0 => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        errno => Err(Outcome::errno(-errno)),
    }
}

/// Loads `program` with libbpf into `log` (level 1, as the own loader); the answer and the
/// program if the kernel accepted it.
pub fn load(
    program: &InsnProgram,
    prog_flags: u32,
    log: &mut [u8],
) -> (LibbpfAnswer, Option<LibbpfInsns>) {
    let mut answer = LibbpfAnswer {
        load: Outcome::ok(),
        reached_verifier: false,
        verdict: String::new(),
        attach: None,
        messages: Vec::new(),
        steps: Vec::new(),
    };
    let mut insns: Vec<_> = program.insns.iter().map(encode).collect();
    let mut maps = Vec::new();
    for (index, map) in program.maps.iter().enumerate() {
        let name = CString::new(map_name(index, map)).unwrap_or_default();
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            map_flags: map.map_flags,
            ..Default::default()
        };
        // SAFETY: the name and options outlive the call.
        let ret = unsafe {
            libbpf_sys::bpf_map_create(
                map.map_type,
                name.as_ptr(),
                map.key_size,
                map.value_size,
                map.max_entries,
                &opts,
            )
        };
        match fd_or_errno(ret) {
            Ok(fd) => {
                for at in &map.insns {
                    if let Some(insn) = insns.get_mut(*at) {
                        insn.imm = fd.as_raw_fd();
                    }
                }
                maps.push((map_name(index, map), fd));
            }
            Err(outcome) => {
                answer.load = outcome;
                return (answer, None);
            }
        }
    }
    let name = CString::new(program.name.clone().unwrap_or_else(|| "wtp_insns".into()))
        .unwrap_or_default();
    let license = CString::new(program.license.as_bytes()).unwrap_or_default();
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        prog_flags,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr().cast(),
        ..Default::default()
    };
    // SAFETY: aya-obj's bpf_insn and libbpf's are the kernel's 8-byte `struct bpf_insn`; the
    // instructions, strings, options and log outlive the call.
    let ret = unsafe {
        libbpf_sys::bpf_prog_load(
            program.prog_type.number(),
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut opts,
        )
    };
    answer.reached_verifier = log.first().is_some_and(|byte| *byte != 0);
    match fd_or_errno(ret) {
        Ok(fd) => (
            answer,
            Some(LibbpfInsns {
                fd,
                tracepoint: program.tracepoint.clone(),
                maps,
            }),
        ),
        Err(outcome) => {
            answer.load = outcome;
            answer.verdict =
                protocol::verifier_verdict(&crate::bpf_sys::c_buffer_to_string(log)).to_owned();
            (answer, None)
        }
    }
}

impl CaseProgram for LibbpfInsns {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn section_tracepoint(&self) -> Option<&str> {
        self.tracepoint.as_deref()
    }

    /// `bpf_raw_tracepoint_open_opts`, as upstream's prog_tests attach.
    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome> {
        let name = CString::new(tracepoint)
            .map_err(|_| harness_error("tracepoint name has a NUL byte"))?;
        let mut opts = libbpf_sys::bpf_raw_tp_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_raw_tp_opts>() as _,
            tp_name: name.as_ptr(),
            cookie: cookie.unwrap_or(0),
        };
        // SAFETY: the name and options outlive the call.
        let ret =
            unsafe { libbpf_sys::bpf_raw_tracepoint_open_opts(self.fd.as_raw_fd(), &mut opts) };
        fd_or_errno(ret).map(Link::Fd)
    }

    fn read_global(&self, _: &str) -> Result<u64, Outcome> {
        Err(no_such_part_of_insns("globals"))
    }

    fn write_global(&self, _: &str, _: u64) -> Result<(), Outcome> {
        Err(no_such_part_of_insns("globals"))
    }

    fn map(&self, name: &str) -> Result<OwnedFd, Outcome> {
        let map = self.maps.iter().find(|(known, _)| known == name);
        let (_, fd) = map.ok_or_else(|| harness_error(&format!("no map named `{name}`")))?;
        fd.try_clone().map_err(|e| Outcome::from_io(&e))
    }

    fn sibling(&mut self, _: &str) -> Result<OwnedFd, Outcome> {
        Err(no_such_part_of_insns("sibling programs"))
    }

    fn freplace(&mut self, _: &str) -> Result<Link, Outcome> {
        Err(no_such_part_of_insns("extensions"))
    }
}
