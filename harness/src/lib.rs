//! Guest side: everything the harness binary does, as a library so each piece is testable.
//!
//! - [`loader`]: the writable loader (the only code that loads BPF programs);
//! - [`bpf_sys`]: raw BPF syscalls on aya-obj's `bpf_attr`;
//! - [`case`]: runs one case's load and steps, then libbpf's;
//! - [`program`]: what a case's steps need from a loaded program, for either loader;
//! - [`reference`]: libbpf's answer to the same case (the second opinion);
//! - [`sweep`]: the boundary sweep's batch, [`sweep_fire`] how it fires its tracepoint;
//! - [`triggers`]: ways to fire tracepoints; [`nbd`]: the in-guest NBD device and server;
//! - [`module`]: finit_module; [`report`]: the results file;
//! - [`read_once`]: the kernel's files and the cases' objects, read once per process;
//! - [`faults`]: deliberate failures, for testing the harness itself;
//! - [`init`]: the guest's PID 1 for a plan run, in place of virtme-ng's init;
//! - [`udev`]: stops the guest's udevd, which the cases do not need.

pub mod bpf_sys;
pub mod case;
pub mod faults;
pub mod init;
pub mod links;
pub mod loader;
pub mod module;
pub mod nbd;
pub mod probes;
pub mod program;
pub mod read_once;
pub mod reference;
pub mod reference_insns;
pub mod report;
pub mod sweep;
pub mod sweep_fire;
pub mod triggers;
pub mod udev;
