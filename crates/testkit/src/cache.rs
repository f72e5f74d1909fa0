//! The conformance suite of [`Cache`].
//!
//! The cache's calls are synchronous, so are the checks.

use galaxy_runtime_model::{GameId, RuntimeStatus};
use galaxy_runtime_ports::Cache;

use crate::store::sample_record;

/// Runs every check of this module.
pub fn run_all(cache: &dyn Cache) {
    unknown_is_none(cache);
    put_then_get(cache);
    put_replaces(cache);
}

/// A game never put reads as `None`.
pub fn unknown_is_none(cache: &dyn Cache) {
    assert_eq!(
        cache.get_runtime(GameId::new_random()),
        None,
        "Cache::get_runtime: a game never put must read as None"
    );
}

/// What was put reads back as is, per game.
pub fn put_then_get(cache: &dyn Cache) {
    let a = sample_record(GameId::new_random(), RuntimeStatus::Running);
    let b = sample_record(GameId::new_random(), RuntimeStatus::Stopped);
    cache.put_runtime(a.clone());
    cache.put_runtime(b.clone());
    assert_eq!(
        cache.get_runtime(a.game_id),
        Some(a),
        "Cache::get_runtime: must return what was put"
    );
    assert_eq!(
        cache.get_runtime(b.game_id),
        Some(b),
        "Cache::get_runtime: must keep games apart"
    );
}

/// A later put replaces the earlier record of the game.
pub fn put_replaces(cache: &dyn Cache) {
    let old = sample_record(GameId::new_random(), RuntimeStatus::Running);
    cache.put_runtime(old.clone());
    let mut new = old.clone();
    new.status = RuntimeStatus::Removed;
    new.probe_failures = 0;
    new.current_container_id = "another".to_owned();
    cache.put_runtime(new.clone());
    assert_eq!(
        cache.get_runtime(old.game_id),
        Some(new),
        "Cache::put_runtime: must replace the older record"
    );
}
