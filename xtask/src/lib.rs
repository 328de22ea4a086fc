//! Host side of the writable raw tracepoint lab. `main.rs` is the CLI; everything else is a
//! library so the host tests in `tests/` drive the very same code.

pub mod apt;
pub mod bench;
pub mod bisect;
pub mod boot;
pub mod bpf;
pub mod cache;
pub mod cache_admin;
pub mod case_list;
pub mod cases;
pub mod cli;
pub mod compare;
pub mod config_cost;
pub mod decl_tags;
pub mod failure;
pub mod helpers;
pub mod host_tools;
pub mod initramfs;
pub mod judge;
pub mod kbuild;
pub mod kconfig;
pub mod manifest;
pub mod matrix;
pub mod normalise;
pub mod paths;
pub mod plan;
pub mod probe_cache;
pub mod progress;
pub mod report;
pub mod results;
pub mod rundir;
pub mod runner;
pub mod shell;
pub mod snapshots;
pub mod source;
#[cfg(test)]
mod test_support;
pub mod upstream;
pub mod vmtest;
