use std::time::Duration;

use galaxy_runtime_model::Config;

/// How the engine adapter probes: the status path, the time limit and the body cap.
///
/// Built from the reconciler's [`Config`] with [`EngineHttpConfig::from_config`], so the
/// adapter reads the same `engine_status_path`, `probe_timeout` and `engine_max_body_bytes` as
/// the rest of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHttpConfig {
    /// The path of the engine's status resource, appended to the endpoint (`/status`).
    pub status_path: String,
    /// The longest one probe may take, connect to last body byte.
    pub timeout: Duration,
    /// The largest body read; a larger one fails the probe and no more of it is read.
    pub max_body_bytes: u64,
    /// How long an idle connection is kept for the next probe of the same engine.
    pub idle_timeout: Duration,
}

impl EngineHttpConfig {
    /// The settings the configuration gives (`engine_status_path`, `probe_timeout`,
    /// `engine_max_body_bytes`). Idle connections are kept for three reconcile intervals, so a
    /// connection survives from one periodic pass to the next.
    pub fn from_config(config: &Config) -> Self {
        Self {
            status_path: config.engine_status_path.clone(),
            timeout: config.probe_timeout,
            max_body_bytes: config.engine_max_body_bytes,
            idle_timeout: config.reconcile_interval.saturating_mul(3),
        }
    }
}

impl Default for EngineHttpConfig {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}
