//! The conformance suite of [`Scheduler`].
//!
//! The scheduler's only call returns nothing, so the suite needs a view of its state:
//! `scheduled(game_id)` tells how many times the game is scheduled now — 0 or 1 for a correct
//! scheduler, however often `start_game` was called.

use galaxy_runtime_model::{GameId, RuntimeStatus};
use galaxy_runtime_ports::Scheduler;

use crate::store::sample_record;

/// Runs every check of this module.
pub fn run_all(scheduler: &dyn Scheduler, scheduled: &dyn Fn(GameId) -> usize) {
    start_schedules(scheduler, scheduled);
    start_twice_schedules_once(scheduler, scheduled);
}

/// A started game is scheduled; another one is not.
pub fn start_schedules(scheduler: &dyn Scheduler, scheduled: &dyn Fn(GameId) -> usize) {
    let record = sample_record(GameId::new_random(), RuntimeStatus::Running);
    let other = GameId::new_random();
    assert_eq!(
        scheduled(record.game_id),
        0,
        "Scheduler: a new game must not be scheduled"
    );
    scheduler.start_game(&record);
    assert_eq!(
        scheduled(record.game_id),
        1,
        "Scheduler::start_game: must schedule the game"
    );
    assert_eq!(
        scheduled(other),
        0,
        "Scheduler::start_game: must schedule only that game"
    );
}

/// Starting a game already scheduled does nothing: it stays scheduled once.
pub fn start_twice_schedules_once(scheduler: &dyn Scheduler, scheduled: &dyn Fn(GameId) -> usize) {
    let record = sample_record(GameId::new_random(), RuntimeStatus::Running);
    scheduler.start_game(&record);
    scheduler.start_game(&record);
    assert_eq!(
        scheduled(record.game_id),
        1,
        "Scheduler::start_game: starting a scheduled game again must do nothing"
    );
}
