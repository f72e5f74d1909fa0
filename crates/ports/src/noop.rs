//! Ports that do nothing, for hosts that have no use for them: a process without a record cache
//! or without a turn scheduler of its own (the command-line tool, for one) gives the reconciler
//! these rather than a test double that remembers everything it is told.

use galaxy_runtime_model::{GameId, RuntimeRecord};

use crate::{Cache, Scheduler};

/// A [`Cache`] that remembers nothing: every `get_runtime` misses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl Cache for NoCache {
    fn put_runtime(&self, _record: RuntimeRecord) {}

    fn get_runtime(&self, _game_id: GameId) -> Option<RuntimeRecord> {
        None
    }
}

/// A [`Scheduler`] for a process that schedules no turns: `start_game` does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoScheduler;

impl Scheduler for NoScheduler {
    fn start_game(&self, _record: &RuntimeRecord) {}
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::{RuntimeStatus, Timestamp};

    use super::*;

    #[test]
    fn no_cache_remembers_nothing() {
        let record = RuntimeRecord::new(
            GameId::new_random(),
            RuntimeStatus::Running,
            Timestamp::now(),
        );
        NoCache.put_runtime(record.clone());
        assert_eq!(NoCache.get_runtime(record.game_id), None);
        NoScheduler.start_game(&record);
    }
}
