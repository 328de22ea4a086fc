//! Host side of the writable raw tracepoint lab. `main.rs` is the CLI; everything else is a
//! library so the host tests in `tests/` drive the very same code.

pub mod kconfig;
pub mod paths;
pub mod progress;
pub mod runner;
