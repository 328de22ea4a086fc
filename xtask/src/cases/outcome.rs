//! What one case came to on one kernel: the value judged, reported and snapshotted.

use protocol::CaseResult;
use serde::{Deserialize, Serialize};

/// What one case came to on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per case, built once and moved a few times; boxing buys nothing"
)]
pub enum CaseOutcome {
    /// The harness ran it; the result as recorded (verifier log normalised).
    Ran(CaseResult),
    /// The kernel lacks something the case needs; not run, not failed.
    Unsupported { reason: String },
    /// clang rejected the program; the case fails, the others still run.
    CompileError { message: String },
    /// The VM run ended before this case finished (panic, hang, crash); never snapshotted.
    NotRun { reason: String },
    /// A measured table (helper availability, the kfunc answer), snapshotted as is.
    Probe(serde_json::Value),
}
