//! One module per `cargo xtask` command (and the side-by-side scheduler `vmtest` uses).
//! The top floor: uses everything below, nothing below uses it.

pub mod bench;
pub mod bisect;
pub mod cache;
pub mod config_cost;
pub mod docs;
pub mod list;
pub mod report;
pub mod shell;
pub mod vmtest;
