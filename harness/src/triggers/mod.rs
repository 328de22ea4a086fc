//! Ways to make the kernel fire a tracepoint. One module per tracepoint family.

pub mod testmod;
