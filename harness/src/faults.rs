//! Deliberate failures, so the host's handling of a misbehaving guest is tested for real:
//! a kernel panic, a step that never returns, a harness that dies, a write to the read-only
//! host filesystem. Only the fault tests' own cases use these steps.

use std::io::Write;

use protocol::Outcome;

/// Writes `c` to /proc/sysrq-trigger; returns only if the kernel refused.
pub fn crash_kernel() -> Outcome {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sysrq-trigger")
        .and_then(|mut trigger| trigger.write_all(b"c"));
    match written {
        Ok(()) => Outcome::Error {
            message: "the kernel survived sysrq-c".into(),
        },
        Err(error) => Outcome::from_io(&error),
    }
}

pub fn hang() -> Outcome {
    loop {
        std::thread::park();
    }
}

pub fn abort_harness() -> Outcome {
    eprintln!("harness: aborting on purpose (abort_harness step)");
    std::process::abort()
}

/// Creates (or truncates) `path` and writes a marker into it.
pub fn write_file(path: &str) -> Outcome {
    match std::fs::write(path, b"written from the guest\n") {
        Ok(()) => Outcome::ok(),
        Err(error) => Outcome::from_io(&error),
    }
}
