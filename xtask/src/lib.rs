//! Host side of the writable raw tracepoint lab. `main.rs` is the CLI; everything else is a
//! library so the host tests in `tests/` drive the very same code.
//!
//! The folders are floors; each uses only those listed before it:
//! [`infra`] → [`kernel`] → [`cases`] → [`guest`] → [`judge`] → [`report`] → [`commands`] → [`cli`].

pub mod cases;
pub mod cli;
pub mod commands;
pub mod guest;
pub mod infra;
pub mod judge;
pub mod kernel;
pub mod report;
#[cfg(test)]
mod test_support;
