//! Ways to make the kernel fire a tracepoint. One module per tracepoint family.

pub mod nbd;
pub mod test_run;
pub mod testmod;
