//! The conformance suite of [`LeaderLock`].
//!
//! [`run_all`] checks one lock on its own. A lock shared between processes (an advisory lock in
//! the database, say) also runs [`exclusive`] with two handles that stand for two replicas. A
//! store that fences its writes by a lock runs [`fenced_writes_need_the_lock`].

use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus};
use galaxy_runtime_ports::{Expected, LeaderLock, PortResult, StatusChange, StorePort};

use crate::expect_ok;

/// Runs every single-lock check of this module. Leaves the lock released.
pub async fn run_all(lock: &dyn LeaderLock) {
    acquire_is_idempotent(lock).await;
    release_gives_up(lock).await;
}

/// `try_acquire` takes the lock and says so again when already held; `is_held` agrees.
pub async fn acquire_is_idempotent(lock: &dyn LeaderLock) {
    for _ in 0..2 {
        assert!(
            expect_ok("LeaderLock::try_acquire", lock.try_acquire().await),
            "LeaderLock::try_acquire: an uncontended lock must be acquired, and acquiring it \
             again must say it is held"
        );
        assert!(
            expect_ok("LeaderLock::is_held", lock.is_held().await),
            "LeaderLock::is_held: must be true after try_acquire succeeded"
        );
    }
    expect_ok("LeaderLock::release", lock.release().await);
}

/// After `release`, `is_held` is false; releasing again is harmless; the lock can be taken
/// again.
pub async fn release_gives_up(lock: &dyn LeaderLock) {
    assert!(
        expect_ok("LeaderLock::try_acquire", lock.try_acquire().await),
        "LeaderLock::try_acquire: an uncontended lock must be acquired"
    );
    expect_ok(
        "LeaderLock::release: must release a held lock",
        lock.release().await,
    );
    assert!(
        !expect_ok("LeaderLock::is_held", lock.is_held().await),
        "LeaderLock::is_held: must be false after release"
    );
    expect_ok(
        "LeaderLock::release: releasing a lock not held must be harmless",
        lock.release().await,
    );
    assert!(
        expect_ok("LeaderLock::try_acquire", lock.try_acquire().await),
        "LeaderLock::try_acquire: a released lock must be acquired again"
    );
    expect_ok("LeaderLock::release", lock.release().await);
}

/// Two handles on the same lock (two replicas): while one holds it the other cannot take it;
/// once it is released the other can. Leaves both released.
pub async fn exclusive(first: &dyn LeaderLock, second: &dyn LeaderLock) {
    assert!(
        expect_ok("LeaderLock::try_acquire", first.try_acquire().await),
        "LeaderLock::try_acquire: an uncontended lock must be acquired"
    );
    assert!(
        !expect_ok("LeaderLock::try_acquire", second.try_acquire().await),
        "LeaderLock::try_acquire: a lock held by another replica must not be acquired"
    );
    assert!(
        !expect_ok("LeaderLock::is_held", second.is_held().await),
        "LeaderLock::is_held: must be false for the replica that did not get the lock"
    );
    expect_ok("LeaderLock::release", first.release().await);
    assert!(
        expect_ok("LeaderLock::try_acquire", second.try_acquire().await),
        "LeaderLock::try_acquire: a lock released by another replica must be acquired"
    );
    assert!(
        !expect_ok("LeaderLock::is_held", first.is_held().await),
        "LeaderLock::is_held: must be false for the replica that released the lock"
    );
    expect_ok("LeaderLock::release", second.release().await);
}

/// A store handle fenced by `lock` (`fenced`, over the same rows as `plain`) writes only while
/// `lock` is held: before `try_acquire` and after `release` its writes are refused with
/// [`PortError::Fenced`](galaxy_runtime_ports::PortError::Fenced) and change nothing; in
/// between they apply. Leaves the lock released.
pub async fn fenced_writes_need_the_lock(
    fenced: &dyn StorePort,
    plain: &dyn StorePort,
    lock: &dyn LeaderLock,
) {
    let game_id = GameId::new_random();
    let record = crate::expect_ok(
        "StorePort::create_record (unfenced handle)",
        plain
            .create_record(crate::store::sample_record(game_id, RuntimeStatus::Running))
            .await,
    );
    let change = |record: &RuntimeRecord, to| StatusChange {
        game_id,
        expected: Expected::of(record),
        to,
        message: "testkit: fenced write".to_owned(),
        at: crate::now_micros(),
        event: None,
    };
    let refused = |rule: &str, result: PortResult<RuntimeRecord>| match result {
        Err(error) if error.is_fenced() => {}
        other => panic!("{rule}: expected PortError::Fenced, got {other:?}"),
    };
    let unchanged = async |rule: &str, expected: &RuntimeRecord| {
        let now = crate::expect_ok("StorePort::get_record", plain.get_record(game_id).await);
        assert_eq!(
            now.as_ref(),
            Some(expected),
            "{rule}: the record must be unchanged"
        );
    };

    let rule = "fenced store: a write without the leader lock must be refused";
    assert!(
        !crate::expect_ok("LeaderLock::is_held", lock.is_held().await),
        "{rule}: the lock must start released"
    );
    refused(
        rule,
        fenced
            .transition_status(change(&record, RuntimeStatus::Stopped))
            .await,
    );
    unchanged(rule, &record).await;

    assert!(
        crate::expect_ok("LeaderLock::try_acquire", lock.try_acquire().await),
        "fenced store: the lock must be free to take"
    );
    let stopped = crate::expect_ok(
        "fenced store: a write while holding the leader lock must apply",
        fenced
            .transition_status(change(&record, RuntimeStatus::Stopped))
            .await,
    );
    assert_eq!(stopped.status, RuntimeStatus::Stopped);

    crate::expect_ok("LeaderLock::release", lock.release().await);
    let rule = "fenced store: a write after the leader lock was released must be refused";
    refused(
        rule,
        fenced
            .transition_status(change(&stopped, RuntimeStatus::Running))
            .await,
    );
    unchanged(rule, &stopped).await;
}
