//! The conformance suite of [`OutboxPort`]: the lobby events a store records with its status
//! changes, and how the relay claims and marks them.
//!
//! Call [`run_all`] with a store of its own (a fresh database, file or schema): the checks claim
//! whatever is due, so events of another writer would be claimed too. Each check delivers every
//! event it made before it returns, so that the next one starts from an empty queue.

use std::collections::BTreeSet;
use std::time::Duration;

use galaxy_runtime_model::{
    EventId, GameId, JobResult, Op, OutboxEntry, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{
    DeliveryOutcome, EventFilter, Expected, OutboxPort, StatusChange, StorePort,
};

use crate::store::sample_record;
use crate::{expect_conflict, expect_not_found, expect_ok, now_micros};

/// A claim lease longer than any check.
const LEASE: Duration = Duration::from_secs(60);

/// Runs every check of this module, one after the other.
pub async fn run_all<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    events_commit_with_their_changes(store).await;
    one_event_per_game_at_a_time_in_commit_order(store).await;
    claims_hold_until_they_expire(store).await;
    failed_attempts_wait_for_their_time(store).await;
    delivered_is_final_until_redelivered(store).await;
    stats_prune_and_listing(store).await;
}

/// `t` plus `seconds`.
fn later(t: Timestamp, seconds: u64) -> Timestamp {
    t.saturating_add(Duration::from_secs(seconds))
}

/// The job result of a pass's change to `to`.
fn result(to: RuntimeStatus, message: &str) -> JobResult {
    JobResult {
        op: Op::Reconcile,
        status: to,
        message: message.to_owned(),
    }
}

/// Creates a running record and moves it through `statuses`, each change with its event,
/// `at` one second after the other from `start`; returns the record as it ends.
async fn with_events<S: StorePort + ?Sized>(
    store: &S,
    start: Timestamp,
    statuses: &[RuntimeStatus],
) -> RuntimeRecord {
    let mut record = expect_ok(
        "StorePort::create_record",
        store
            .create_record(sample_record(GameId::new_random(), RuntimeStatus::Running))
            .await,
    );
    for (i, to) in statuses.iter().enumerate() {
        record = expect_ok(
            "StorePort::transition_status with an event: must apply",
            store
                .transition_status(StatusChange {
                    game_id: record.game_id,
                    expected: Expected::of(&record),
                    to: *to,
                    message: format!("testkit change {i}"),
                    at: later(start, i as u64),
                    event: Some(result(*to, &format!("testkit change {i}"))),
                })
                .await,
        );
    }
    record
}

/// Delivers every event due at `now` (claims until none is left), so that the next check
/// starts from an empty queue.
async fn drain<S: OutboxPort + ?Sized>(store: &S, now: Timestamp) {
    loop {
        let claimed = expect_ok(
            "OutboxPort::claim_due",
            store.claim_due(now, LEASE, 1_000).await,
        );
        if claimed.is_empty() {
            return;
        }
        let delivered: Vec<DeliveryOutcome> = claimed
            .iter()
            .map(|e| DeliveryOutcome::Delivered {
                event_id: e.event.event_id,
                at: now,
            })
            .collect();
        expect_ok(
            "OutboxPort::record_deliveries",
            store.record_deliveries(&delivered).await,
        );
    }
}

/// The events of `game_id`, in commit order.
async fn events_of<S: OutboxPort + ?Sized>(store: &S, game_id: GameId) -> Vec<OutboxEntry> {
    expect_ok(
        "OutboxPort::list_events",
        store
            .list_events(&EventFilter {
                game_id: Some(game_id),
                ..EventFilter::default()
            })
            .await,
    )
}

/// A status change with an event records the event with it — the game, op, status, message
/// and commit time of the change, pending, never attempted — and a change that does not apply
/// (a compare-and-set conflict) records none; a change without an event records none.
pub async fn events_commit_with_their_changes<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    let start = now_micros();
    let record = with_events(store, start, &[RuntimeStatus::Removed]).await;
    let events = events_of(store, record.game_id).await;
    assert_eq!(
        events.len(),
        1,
        "StorePort::transition_status: a change with an event must record exactly one event"
    );
    let entry = &events[0];
    assert_eq!(
        (
            entry.event.game_id,
            entry.event.result.clone(),
            entry.event.at
        ),
        (
            record.game_id,
            result(RuntimeStatus::Removed, "testkit change 0"),
            start
        ),
        "OutboxPort: the event must carry the change's game, op, status, message and time"
    );
    assert!(
        entry.is_pending() && entry.attempts == 0 && entry.last_error.is_none(),
        "OutboxPort: a new event must be pending and never attempted: {entry:?}"
    );

    // A change that conflicts writes nothing, its event neither.
    let other = expect_ok(
        "StorePort::create_record",
        store
            .create_record(sample_record(GameId::new_random(), RuntimeStatus::Running))
            .await,
    );
    let rule = "StorePort::transition_status: a change that does not apply must record no event";
    expect_conflict(
        rule,
        store
            .transition_status(StatusChange {
                game_id: other.game_id,
                expected: Expected {
                    current_container_id: "another-container".to_owned(),
                    ..Expected::of(&other)
                },
                to: RuntimeStatus::Removed,
                message: "container disappeared".to_owned(),
                at: start,
                event: Some(JobResult::container_disappeared()),
            })
            .await,
    );
    assert!(events_of(store, other.game_id).await.is_empty(), "{rule}");
    expect_ok(
        "StorePort::transition_status without an event",
        store
            .transition_status(StatusChange {
                game_id: other.game_id,
                expected: Expected::of(&other),
                to: RuntimeStatus::Stopped,
                message: "stopped".to_owned(),
                at: start,
                event: None,
            })
            .await,
    );
    assert!(
        events_of(store, other.game_id).await.is_empty(),
        "StorePort::transition_status: a change without an event must record none"
    );
    drain(store, later(start, 10)).await;
}

/// `claim_due` gives of each game only its oldest pending event, in commit order: the next
/// event of a game only once the previous one was delivered; other games are not held up.
pub async fn one_event_per_game_at_a_time_in_commit_order<S: StorePort + OutboxPort + ?Sized>(
    store: &S,
) {
    let start = now_micros();
    let a = with_events(
        store,
        start,
        &[RuntimeStatus::EngineUnreachable, RuntimeStatus::Running],
    )
    .await;
    let b = with_events(store, start, &[RuntimeStatus::Removed]).await;
    let now = later(start, 10);
    let ids = |entries: &[OutboxEntry]| -> Vec<EventId> {
        entries.iter().map(|e| e.event.event_id).collect()
    };
    let a_events = events_of(store, a.game_id).await;
    let b_events = events_of(store, b.game_id).await;
    assert_eq!(a_events.len(), 2, "OutboxPort: two changes, two events");
    assert!(
        a_events[0].seq < a_events[1].seq,
        "OutboxPort: events must be numbered in commit order"
    );

    let claimed = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(now, LEASE, 100).await,
    );
    assert_eq!(
        ids(&claimed),
        vec![a_events[0].event.event_id, b_events[0].event.event_id],
        "OutboxPort::claim_due: must give the oldest pending event of each game, in commit \
         order, and not the next event of a game whose previous one is pending"
    );
    let seqs: Vec<u64> = claimed.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "OutboxPort::claim_due: in commit order"
    );

    expect_ok(
        "OutboxPort::record_deliveries",
        store
            .record_deliveries(&[DeliveryOutcome::Delivered {
                event_id: a_events[0].event.event_id,
                at: now,
            }])
            .await,
    );
    let next = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(now, LEASE, 100).await,
    );
    assert_eq!(
        ids(&next),
        vec![a_events[1].event.event_id],
        "OutboxPort::claim_due: once a game's event is delivered, its next one is due (and a \
         claimed event is not claimed again)"
    );
    drain(store, later(start, 3_600)).await;
}

/// A claim keeps an event from being claimed again until it expires; then the same event —
/// the same id — is due again (a relay that died mid-attempt).
pub async fn claims_hold_until_they_expire<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    let start = now_micros();
    let record = with_events(store, start, &[RuntimeStatus::Removed]).await;
    let now = later(start, 10);
    let lease = Duration::from_secs(30);
    let first = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(now, lease, 100).await,
    );
    let ours: Vec<_> = first
        .iter()
        .filter(|e| e.event.game_id == record.game_id)
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "OutboxPort::claim_due: a due event is claimed"
    );
    let stats = expect_ok("OutboxPort::outbox_stats", store.outbox_stats().await);
    assert_eq!(
        stats.next_attempt_at,
        Some(later(now, 30)),
        "OutboxPort::outbox_stats: a claimed event can be claimed again when its claim expires"
    );
    let during = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(now, 29), lease, 100).await,
    );
    assert!(
        during.iter().all(|e| e.event.game_id != record.game_id),
        "OutboxPort::claim_due: an event claimed until a time must not be claimed before it"
    );
    let after = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(now, 31), lease, 100).await,
    );
    let again: Vec<_> = after
        .iter()
        .filter(|e| e.event.game_id == record.game_id)
        .collect();
    assert_eq!(
        again.len(),
        1,
        "OutboxPort::claim_due: an expired claim makes the event due again"
    );
    assert_eq!(
        again[0].event.event_id, ours[0].event.event_id,
        "OutboxPort: a redelivered event keeps its id"
    );
    drain(store, later(start, 3_600)).await;
}

/// A failed attempt counts, keeps its error, and makes the event due again only at its
/// `next_attempt_at`; the game's later events wait behind it.
pub async fn failed_attempts_wait_for_their_time<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    let start = now_micros();
    let record = with_events(
        store,
        start,
        &[RuntimeStatus::EngineUnreachable, RuntimeStatus::Running],
    )
    .await;
    let now = later(start, 10);
    let events = events_of(store, record.game_id).await;
    let first = events[0].event.event_id;
    let claimed = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(now, LEASE, 100).await,
    );
    assert!(claimed.iter().any(|e| e.event.event_id == first));
    expect_ok(
        "OutboxPort::record_deliveries",
        store
            .record_deliveries(&[DeliveryOutcome::Failed {
                event_id: first,
                error: "lobby answered 503".to_owned(),
                next_attempt_at: later(now, 120),
            }])
            .await,
    );
    let stats = expect_ok("OutboxPort::outbox_stats", store.outbox_stats().await);
    assert_eq!(
        (stats.pending, stats.next_attempt_at),
        (2, Some(later(now, 120))),
        "OutboxPort::outbox_stats: next_attempt_at is when the game's oldest pending event can \
         be claimed again (its later event waits behind it and does not count)"
    );
    let before = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(now, 119), LEASE, 100).await,
    );
    assert!(
        before.iter().all(|e| e.event.game_id != record.game_id),
        "OutboxPort::claim_due: a failed event is not due before its next attempt, and the \
         game's later events wait behind it"
    );
    let due = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(now, 120), LEASE, 100).await,
    );
    let entry = due
        .iter()
        .find(|e| e.event.event_id == first)
        .unwrap_or_else(|| {
            panic!("OutboxPort::claim_due: a failed event is due again at its next attempt")
        });
    assert_eq!(
        (entry.attempts, entry.last_error.as_deref()),
        (1, Some("lobby answered 503")),
        "OutboxPort::record_deliveries: a failure counts an attempt and keeps its error"
    );
    drain(store, later(start, 3_600)).await;
}

/// A delivered event is never due again — a late failure of it changes nothing — unless
/// `redeliver` makes it due, with the same id; an unknown id is `NotFound`.
pub async fn delivered_is_final_until_redelivered<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    let start = now_micros();
    let record = with_events(store, start, &[RuntimeStatus::Removed]).await;
    let now = later(start, 10);
    let event_id = events_of(store, record.game_id).await[0].event.event_id;
    drain(store, now).await;
    expect_ok(
        "OutboxPort::record_deliveries",
        store
            .record_deliveries(&[DeliveryOutcome::Failed {
                event_id,
                error: "a late answer of another relay".to_owned(),
                next_attempt_at: now,
            }])
            .await,
    );
    let entry = events_of(store, record.game_id).await.remove(0);
    assert_eq!(
        entry.delivered_at,
        Some(now),
        "OutboxPort::record_deliveries: an outcome for a delivered event must change nothing"
    );
    let nothing = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(now, 3_600), LEASE, 100).await,
    );
    assert!(
        nothing.iter().all(|e| e.event.event_id != event_id),
        "OutboxPort::claim_due: a delivered event is never due again"
    );
    let again = expect_ok(
        "OutboxPort::redeliver",
        store.redeliver(event_id, now).await,
    );
    assert!(
        again.is_pending() && again.event.event_id == event_id,
        "OutboxPort::redeliver: the event is pending again, with its id"
    );
    let due = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(now, LEASE, 100).await,
    );
    assert!(
        due.iter().any(|e| e.event.event_id == event_id),
        "OutboxPort::redeliver: the event is due at once"
    );
    expect_not_found(
        "OutboxPort::redeliver: an unknown event must give NotFound",
        store.redeliver(EventId::new_random(), now).await,
    );
    drain(store, later(start, 7_200)).await;
}

/// `outbox_stats` counts the pending events and names the oldest; `prune_delivered` deletes
/// the events delivered before a time and nothing else; `list_events` filters by game and by
/// pending, and gives the latest `limit` in commit order.
pub async fn stats_prune_and_listing<S: StorePort + OutboxPort + ?Sized>(store: &S) {
    let start = now_micros();
    let stats = expect_ok("OutboxPort::outbox_stats", store.outbox_stats().await);
    assert_eq!(
        stats.pending, 0,
        "OutboxPort::outbox_stats: nothing is pending after the other checks delivered theirs"
    );
    let old = with_events(store, start, &[RuntimeStatus::Removed]).await;
    let kept = with_events(
        store,
        later(start, 5),
        &[
            RuntimeStatus::Stopped,
            RuntimeStatus::Running,
            RuntimeStatus::Removed,
        ],
    )
    .await;
    let stats = expect_ok("OutboxPort::outbox_stats", store.outbox_stats().await);
    assert_eq!(
        (stats.pending, stats.oldest_pending_at),
        (4, Some(start)),
        "OutboxPort::outbox_stats: must count the pending events and name the oldest"
    );

    let pending = expect_ok(
        "OutboxPort::list_events",
        store
            .list_events(&EventFilter {
                pending_only: true,
                ..EventFilter::default()
            })
            .await,
    );
    let games: BTreeSet<GameId> = pending.iter().map(|e| e.event.game_id).collect();
    assert_eq!(
        (pending.len(), games),
        (4, BTreeSet::from([old.game_id, kept.game_id])),
        "OutboxPort::list_events: pending_only must list exactly the pending events"
    );
    let latest = expect_ok(
        "OutboxPort::list_events",
        store
            .list_events(&EventFilter {
                game_id: Some(kept.game_id),
                limit: 2,
                ..EventFilter::default()
            })
            .await,
    );
    let statuses: Vec<RuntimeStatus> = latest.iter().map(|e| e.event.result.status).collect();
    assert_eq!(
        statuses,
        vec![RuntimeStatus::Running, RuntimeStatus::Removed],
        "OutboxPort::list_events: limit keeps the latest events, in commit order"
    );

    // Deliver the old game's event long ago, the others now.
    let claimed = expect_ok(
        "OutboxPort::claim_due",
        store.claim_due(later(start, 10), LEASE, 100).await,
    );
    let outcomes: Vec<DeliveryOutcome> = claimed
        .iter()
        .map(|e| DeliveryOutcome::Delivered {
            event_id: e.event.event_id,
            at: if e.event.game_id == old.game_id {
                later(start, 10)
            } else {
                later(start, 1_000)
            },
        })
        .collect();
    expect_ok(
        "OutboxPort::record_deliveries",
        store.record_deliveries(&outcomes).await,
    );
    let cutoff = later(start, 500);
    let before = expect_ok(
        "OutboxPort::list_events",
        store
            .list_events(&EventFilter {
                limit: usize::MAX,
                ..EventFilter::default()
            })
            .await,
    );
    // The other checks' events, delivered earlier, go too.
    let due = before
        .iter()
        .filter(|e| e.delivered_at.is_some_and(|at| at < cutoff))
        .count() as u64;
    let pruned = expect_ok(
        "OutboxPort::prune_delivered",
        store.prune_delivered(cutoff).await,
    );
    assert_eq!(
        pruned, due,
        "OutboxPort::prune_delivered: must delete exactly the events delivered before the time, \
         and say how many"
    );
    assert!(
        events_of(store, old.game_id).await.is_empty(),
        "OutboxPort::prune_delivered: the old delivered event is gone"
    );
    assert_eq!(
        events_of(store, kept.game_id).await.len(),
        3,
        "OutboxPort::prune_delivered: pending and recently delivered events are kept"
    );
    drain(store, later(start, 7_200)).await;
}
