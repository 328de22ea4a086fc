//! How the boundary sweep ([`crate::sweep`]) fires its tracepoint once a program is attached,
//! and what the firing shows ([`SweepSeen`]); the plan says which ([`SweepTrigger`]). No
//! judging: the host's model predicts what each trigger should show.

use std::os::fd::BorrowedFd;

use protocol::{ReadAnswer, SweepSeen, SweepTrigger};

use crate::bpf_sys;
use crate::triggers::testmod;

/// Fires the tracepoint once; `None` for a sweep that is never fired. `filter` is the
/// trivial socket filter whose test run ends in `bpf_test_finish`.
pub fn fire(trigger: SweepTrigger, filter: BorrowedFd<'_>) -> Option<SweepSeen> {
    match trigger {
        SweepTrigger::TestRun => Some(SweepSeen::Buffer(test_run(filter).to_le_bytes().to_vec())),
        SweepTrigger::TestmodRead => Some(SweepSeen::Read(testmod_read())),
        SweepTrigger::None => None,
    }
}

/// The 4 bytes of bpf_test_finish's `err` after the program ran: the syscall's return, or
/// -errno when the test run itself failed.
fn test_run(filter: BorrowedFd<'_>) -> i32 {
    match bpf_sys::prog_test_run(filter, &[0u8; 64]) {
        Ok(run) => run.ret as i32,
        Err(error) => -error.raw_os_error().unwrap_or(0),
    }
}

/// bpf_testmod's 64-byte read: `"%d\n"` of `val` when the program set `early_ret`, else
/// EIO.
fn testmod_read() -> ReadAnswer {
    match testmod::read_writable_text() {
        Ok(text) => ReadAnswer::Text(text),
        Err(error) => ReadAnswer::Errno(error.raw_os_error().unwrap_or(-1)),
    }
}
