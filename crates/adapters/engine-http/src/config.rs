use std::time::Duration;

use galaxy_runtime_model::Config;

/// How the engine adapter probes: the status path, the time limit, the body cap and the idle
/// connections it keeps.
///
/// Built from the reconciler's [`Config`] with [`EngineHttpConfig::from_config`], so the
/// adapter reads the same `engine_status_path`, `probe_timeout`, `engine_max_body_bytes` and
/// `engine_pool_*` as the rest of the process.
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
    /// At most this many idle connections in all (`engine_pool_max_idle`); 0 keeps none.
    pub max_idle: usize,
    /// At most this many idle connections per engine (`engine_pool_max_idle_per_engine`); 0
    /// keeps none.
    pub max_idle_per_engine: usize,
}

impl EngineHttpConfig {
    /// The settings the configuration gives (`engine_status_path`, `probe_timeout`,
    /// `engine_max_body_bytes`, `engine_pool_max_idle`, `engine_pool_max_idle_per_engine`).
    /// Idle connections are kept for three reconcile intervals, so a connection survives from
    /// one periodic pass to the next.
    pub fn from_config(config: &Config) -> Self {
        Self {
            status_path: config.engine_status_path.clone(),
            timeout: config.probe_timeout,
            max_body_bytes: config.engine_max_body_bytes,
            idle_timeout: config.reconcile_interval.saturating_mul(3),
            max_idle: config.engine_pool_max_idle,
            max_idle_per_engine: config.engine_pool_max_idle_per_engine,
        }
    }
}

impl EngineHttpConfig {
    /// How many idle connections one engine may keep: the per-engine limit, never more than
    /// the total.
    pub fn idle_per_engine(&self) -> usize {
        self.max_idle_per_engine.min(self.max_idle)
    }

    /// How many engines may keep idle connections at once: as many as the total allows at
    /// [`idle_per_engine`](Self::idle_per_engine) each (0 when nothing is kept).
    pub fn pooled_engines(&self) -> usize {
        self.max_idle
            .checked_div(self.idle_per_engine())
            .unwrap_or(0)
    }
}

impl Default for EngineHttpConfig {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_idle: usize, max_idle_per_engine: usize) -> (usize, usize) {
        let config = EngineHttpConfig {
            max_idle,
            max_idle_per_engine,
            ..EngineHttpConfig::default()
        };
        (config.idle_per_engine(), config.pooled_engines())
    }

    #[test]
    fn the_total_divides_into_places_of_the_per_engine_share() {
        assert_eq!(budget(256, 1), (1, 256), "the defaults");
        assert_eq!(budget(10, 3), (3, 3), "never more than the total");
        assert_eq!(
            budget(1, 2),
            (1, 1),
            "a share larger than the total is cut to it"
        );
        assert_eq!(budget(0, 1), (0, 0));
        assert_eq!(budget(5, 0), (0, 0));
        let defaults = EngineHttpConfig::default();
        assert_eq!((defaults.max_idle, defaults.max_idle_per_engine), (256, 1));
    }
}
