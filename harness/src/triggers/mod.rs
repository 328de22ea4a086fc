//! Ways to make the kernel fire a tracepoint. One module per tracepoint family, and
//! `anything` for a case's own (a command, a file read or written).

pub mod anything;
pub mod nbd;
pub mod test_run;
pub mod testmod;
