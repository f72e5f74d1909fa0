use serde::{Deserialize, Serialize};

use crate::RuntimeStatus;

/// The kind of job a [`JobResult`] reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A start job.
    Start,
    /// A stop job.
    Stop,
    /// A restart job.
    Restart,
    /// A patch (image change) job.
    Patch,
    /// A reconcile pass.
    Reconcile,
}

/// What the lobby is told about a game's runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job.
    pub op: Op,
    /// The status it led to.
    pub status: RuntimeStatus,
    /// Why, for people.
    pub message: String,
}

impl JobResult {
    /// The message the lobby gets when a pass marks a record `removed`.
    pub const CONTAINER_DISAPPEARED: &'static str = "container disappeared";

    /// `{op: reconcile, status: removed, message: "container disappeared"}`.
    pub fn container_disappeared() -> Self {
        Self {
            op: Op::Reconcile,
            status: RuntimeStatus::Removed,
            message: Self::CONTAINER_DISAPPEARED.to_owned(),
        }
    }
}
