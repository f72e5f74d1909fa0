//! What the loop's last passes say about its health, for health checks and readiness probes.

use galaxy_runtime_model::{PassKind, Timestamp};

/// How the last pass of a reconciler ended, and the last failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// The last pass that ended (full or quick), if any.
    pub last_pass: Option<PassOutcome>,
    /// The last pass that failed, if any, even when passes succeeded since.
    pub last_error: Option<PassOutcome>,
}

/// How one pass ended.
#[derive(Debug, Clone, PartialEq)]
pub struct PassOutcome {
    /// When it ended, by the reconciler's clock.
    pub at: Timestamp,
    /// Full or quick.
    pub pass: PassKind,
    /// `ok`, `error` or `not_leader`, as the `result` label of `galaxy_runtime_passes_total`.
    pub result: &'static str,
    /// Why it failed, for `error`.
    pub error: Option<String>,
}

impl PassOutcome {
    /// Whether the pass did its part: applied its plan (a leader), or learnt that another
    /// replica holds the lock (a standby, whose lock attempt succeeded).
    pub fn succeeded(&self) -> bool {
        self.result != crate::telemetry::RESULT_ERROR
    }

    /// `leader`, `standby`, or `unknown` when the pass failed before it could tell.
    pub fn role(&self) -> &'static str {
        match self.result {
            crate::telemetry::RESULT_OK => "leader",
            crate::telemetry::RESULT_NOT_LEADER => "standby",
            _ => "unknown",
        }
    }
}
