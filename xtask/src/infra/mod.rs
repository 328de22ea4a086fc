//! The ground floor: where things live, how host commands run, progress lines, run directories,
//! host tools, the machine's cores, plain-text tables. Uses nothing else of the crate.

pub mod apt;
pub mod digest;
pub mod failure;
pub mod fsutil;
pub mod host_tools;
pub mod machine;
pub mod paths;
pub mod progress;
pub mod rundir;
pub mod runner;
pub mod table;
