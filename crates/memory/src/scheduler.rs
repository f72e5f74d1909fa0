use std::collections::BTreeSet;
use std::sync::Mutex;

use galaxy_runtime_model::{GameId, RuntimeRecord};
use galaxy_runtime_ports::Scheduler;

use crate::lock;

#[derive(Debug, Default)]
struct State {
    calls: Vec<RuntimeRecord>,
    started: Vec<GameId>,
    scheduled: BTreeSet<GameId>,
}

/// A [`Scheduler`] that records the games it was asked to start; starting a game already
/// scheduled does nothing (but the call is recorded).
#[derive(Debug, Default)]
pub struct MemoryScheduler {
    state: Mutex<State>,
}

impl MemoryScheduler {
    /// A scheduler with nothing scheduled.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scheduled games, in the order they were first started.
    pub fn started(&self) -> Vec<GameId> {
        lock(&self.state).started.clone()
    }

    /// Whether the game is scheduled.
    pub fn is_scheduled(&self, game_id: GameId) -> bool {
        lock(&self.state).scheduled.contains(&game_id)
    }

    /// How many times the game is scheduled: 0 or 1.
    pub fn scheduled_count(&self, game_id: GameId) -> usize {
        usize::from(self.is_scheduled(game_id))
    }

    /// The record of every `start_game` call, repeats included, oldest first.
    pub fn calls(&self) -> Vec<RuntimeRecord> {
        lock(&self.state).calls.clone()
    }
}

impl Scheduler for MemoryScheduler {
    fn start_game(&self, record: &RuntimeRecord) {
        let mut state = lock(&self.state);
        state.calls.push(record.clone());
        if state.scheduled.insert(record.game_id) {
            state.started.push(record.game_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::{RuntimeStatus, Timestamp};

    use super::*;

    #[test]
    fn repeats_are_recorded_but_schedule_once() {
        let scheduler = MemoryScheduler::new();
        let record = RuntimeRecord::new(
            GameId::new_random(),
            RuntimeStatus::Running,
            Timestamp::now(),
        );
        scheduler.start_game(&record);
        scheduler.start_game(&record);
        assert_eq!(scheduler.started(), vec![record.game_id]);
        assert_eq!(scheduler.calls().len(), 2);
        assert_eq!(scheduler.scheduled_count(record.game_id), 1);
    }
}
