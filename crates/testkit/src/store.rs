//! The conformance suite of [`StorePort`] and [`GameCatalog`].
//!
//! Call [`run_all`] from the adapter's tests with a store connected to a real (possibly shared)
//! database. Every check creates its own rows under fresh random game ids and never assumes the
//! store is empty; rows are left behind (nothing in the ports deletes a runtime record), so point
//! it at a throwaway database.
//!
//! Batch checks use [`LARGE_BATCH`] rows, more than two of the 1 000-row chunks a SQL store
//! typically splits a batch into, so a chunking bug shows. Timestamps are whole microseconds
//! ([`crate::now_micros`]), the precision the stores keep: records are compared with
//! `==` after a round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use galaxy_runtime_model::{
    GameId, GameProjection, RuntimeRecord, RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, Expected, GameCatalog, PortError, ProbeFailuresUpdate, Rebind,
    StatusChange, StorePort,
};
use serde_json::json;

use galaxy_runtime_ports::PortResult;

use crate::{expect_conflict, expect_not_found, expect_ok, now_micros};

/// How many rows the large-batch checks write: more than two 1 000-row chunks.
pub const LARGE_BATCH: usize = 2_500;

/// How many concurrent writers race in the compare-and-set checks.
pub const RACERS: usize = 16;

/// How many rows are created at once when a check needs many: enough to be quick on a pooled
/// store, few enough not to exhaust a small pool.
const CREATE_CONCURRENCY: usize = 16;

/// Runs every check of this module, one after the other.
pub async fn run_all<S: StorePort + GameCatalog + ?Sized>(store: &S) {
    list_get_create(store).await;
    create_twice_conflicts(store).await;
    transition_status_compare_and_set(store).await;
    transition_status_compares_the_container(store).await;
    transition_status_not_found(store).await;
    transition_status_probe_failures(store).await;
    forward_only(store).await;
    rebind_compare_and_set(store).await;
    rebind_compares_the_status(store).await;
    writes_compare_the_host(store).await;
    upsert_adopted_inserts(store).await;
    upsert_adopted_updates(store).await;
    upsert_adopted_compare_and_set(store).await;
    upsert_adopted_terminal_conflicts(store).await;
    set_probe_failures_batch(store).await;
    set_probe_failures_large_batch(store).await;
    publish_snapshots_batch(store).await;
    publish_snapshots_large_batch(store).await;
    load_game_projections_batch(store).await;
    game_catalog(store).await;
    concurrent_transitions_one_winner(store).await;
    concurrent_rebinds_one_winner(store).await;
}

/// The container id of [`sample_record`]'s record of `game_id`.
pub fn sample_container_id(game_id: GameId) -> String {
    format!("container-{}", game_id.as_uuid().simple())
}

/// What a writer expects of [`sample_record`]'s record of `game_id` with `status`.
pub fn sample_expected(game_id: GameId, status: RuntimeStatus) -> Expected {
    Expected {
        status,
        current_container_id: sample_container_id(game_id),
        docker_host: String::new(),
    }
}

/// A record with every field filled, as a start job would write it, whose status changed an hour
/// ago (so `start_grace` never matters to a reader).
pub fn sample_record(game_id: GameId, status: RuntimeStatus) -> RuntimeRecord {
    let at = now_micros();
    let an_hour_ago = Timestamp::from_unix_micros(at.unix_micros() - 3_600_000_000).unwrap_or(at);
    RuntimeRecord {
        game_id,
        status,
        current_container_id: sample_container_id(game_id),
        current_image_ref: "galaxy/engine:1.4".to_owned(),
        current_engine_version: "1.4.0".to_owned(),
        engine_endpoint: format!("http://galaxy-game-{game_id}:8080"),
        docker_network: "galaxy".to_owned(),
        turn_schedule: "0 */6 * * *".to_owned(),
        probe_failures: 0,
        status_changed_at: an_hour_ago,
        docker_host: String::new(),
    }
}

/// What a restart job writes: `record`'s game moved to the new container `container_id` on the
/// same host, with the same image and engine version, expecting the record as it is.
pub fn restart_onto(record: &RuntimeRecord, container_id: &str) -> Rebind {
    Rebind {
        game_id: record.game_id,
        expected: Expected::of(record),
        container_id: container_id.to_owned(),
        image_ref: record.current_image_ref.clone(),
        engine_version: record.current_engine_version.clone(),
        docker_host: record.docker_host.clone(),
    }
}

/// Creates `record`, checking that the store returns it unchanged.
async fn create<S: StorePort + ?Sized>(store: &S, record: RuntimeRecord) -> RuntimeRecord {
    let created = expect_ok(
        "StorePort::create_record: a new game must be accepted",
        store.create_record(record.clone()).await,
    );
    assert_eq!(
        created, record,
        "StorePort::create_record: must return the record as given"
    );
    created
}

/// Creates many records, a few at a time.
async fn create_many<S: StorePort + ?Sized>(store: &S, records: &[RuntimeRecord]) {
    for chunk in records.chunks(CREATE_CONCURRENCY) {
        join_all(chunk.iter().map(|r| create(store, r.clone()))).await;
    }
}

/// Reads a record that must exist.
async fn get<S: StorePort + ?Sized>(store: &S, game_id: GameId) -> RuntimeRecord {
    let found = expect_ok(
        "StorePort::get_record: must read an existing record",
        store.get_record(game_id).await,
    );
    match found {
        Some(record) => record,
        None => panic!("StorePort::get_record: record {game_id} was created but is not found"),
    }
}

/// Panics unless the stored record of `expected.game_id` still equals `expected`.
async fn assert_unchanged<S: StorePort + ?Sized>(store: &S, expected: &RuntimeRecord, rule: &str) {
    let now = get(store, expected.game_id).await;
    assert_eq!(&now, expected, "{rule}: the record must be unchanged");
}

/// The records of `ids`, from one `list_records` call, by game id.
async fn list_ours<S: StorePort + ?Sized>(
    store: &S,
    ids: &BTreeSet<GameId>,
) -> BTreeMap<GameId, RuntimeRecord> {
    let all = expect_ok(
        "StorePort::list_records: must list",
        store.list_records().await,
    );
    let mut ours = BTreeMap::new();
    for record in all.into_iter().filter(|r| ids.contains(&r.game_id)) {
        let game_id = record.game_id;
        assert!(
            ours.insert(game_id, RuntimeRecord::clone(&record))
                .is_none(),
            "StorePort::list_records: game {game_id} is listed twice"
        );
    }
    ours
}

/// `list_records`, `get_record` and `create_record` agree on what was created; a game without a
/// record reads as `None`.
pub async fn list_get_create<S: StorePort + ?Sized>(store: &S) {
    let a = sample_record(GameId::new_random(), RuntimeStatus::Running);
    let mut b = sample_record(GameId::new_random(), RuntimeStatus::Starting);
    // Empty strings must survive as empty strings (not NULL, not dropped).
    b.current_container_id = String::new();
    b.current_engine_version = String::new();
    b.probe_failures = 7;
    b.turn_schedule = "30 1 * * 1 — weekly, ünïcode".to_owned();

    assert_eq!(
        expect_ok("StorePort::get_record", store.get_record(a.game_id).await),
        None,
        "StorePort::get_record: a game without a record must read as None"
    );
    create(store, a.clone()).await;
    create(store, b.clone()).await;
    assert_eq!(
        get(store, a.game_id).await,
        a,
        "StorePort::get_record: must round-trip"
    );
    assert_eq!(
        get(store, b.game_id).await,
        b,
        "StorePort::get_record: must round-trip"
    );

    let ids = BTreeSet::from([a.game_id, b.game_id]);
    let listed = list_ours(store, &ids).await;
    assert_eq!(
        listed,
        BTreeMap::from([(a.game_id, a), (b.game_id, b)]),
        "StorePort::list_records: must list every created record, as created"
    );
}

/// Creating a record for a game that has one is a `Conflict` and changes nothing.
pub async fn create_twice_conflicts<S: StorePort + ?Sized>(store: &S) {
    let first = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let mut again = sample_record(first.game_id, RuntimeStatus::Starting);
    again.current_container_id = "another-container".to_owned();
    let rule = "StorePort::create_record: creating twice must give Conflict";
    expect_conflict(rule, store.create_record(again).await);
    assert_unchanged(store, &first, rule).await;
}

/// `transition_status` is a compare-and-set on `from`: a wrong `from` is a `Conflict` that
/// changes nothing; the right one changes the status, sets `status_changed_at` to `at` and
/// returns the stored record; repeating the same change is then a `Conflict`.
pub async fn transition_status_compare_and_set<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Starting),
    )
    .await;
    let at = now_micros();

    let rule = "StorePort::transition_status: a wrong expected status must give Conflict";
    let wrong = StatusChange {
        game_id: record.game_id,
        expected: Expected {
            status: RuntimeStatus::Running,
            ..Expected::of(&record)
        },
        to: RuntimeStatus::Stopped,
        message: "testkit: wrong from".to_owned(),
        at,
        event: None,
    };
    expect_conflict(rule, store.transition_status(wrong).await);
    assert_unchanged(store, &record, rule).await;

    let change = StatusChange {
        game_id: record.game_id,
        expected: Expected::of(&record),
        to: RuntimeStatus::Running,
        message: "engine reachable".to_owned(),
        at,
        event: None,
    };
    let updated = expect_ok(
        "StorePort::transition_status: the right expected status and container must succeed",
        store.transition_status(change.clone()).await,
    );
    let expected = RuntimeRecord {
        status: RuntimeStatus::Running,
        status_changed_at: at,
        ..record
    };
    assert_eq!(
        updated, expected,
        "StorePort::transition_status: must return the updated record (status = to, \
         status_changed_at = at, every other field kept)"
    );
    assert_unchanged(
        store,
        &expected,
        "StorePort::transition_status: the returned record must be the stored one",
    )
    .await;

    let rule = "StorePort::transition_status: repeating a change that succeeded must give Conflict";
    let later = StatusChange {
        at: at.saturating_add(Duration::from_secs(1)),
        ..change
    };
    expect_conflict(rule, store.transition_status(later).await);
    assert_unchanged(store, &expected, rule).await;
}

/// The conflict message of `result`, which must be a `Conflict`.
fn conflict_message(rule: &str, result: PortResult<RuntimeRecord>) -> String {
    match result {
        Err(PortError::Conflict { message, .. }) => message,
        Err(other) => panic!("{rule}: expected Conflict, got {other:?}"),
        Ok(record) => panic!("{rule}: expected Conflict, got Ok({record:?})"),
    }
}

/// `transition_status` compares the container too: a restart job that moved the game to a new
/// container (status unchanged, `running`) makes a change planned on the old container a
/// `Conflict` that changes nothing, whose message says what changed
/// (`record now on container …, not …`). A store that compares the status alone fails here —
/// and would mark a running game `removed`.
pub async fn transition_status_compares_the_container<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let seen_before_restart = Expected {
        current_container_id: "the-container-before-a-restart".to_owned(),
        ..Expected::of(&record)
    };
    let rule = "StorePort::transition_status: compare-and-set on the container too: a record \
                moved to another container meanwhile must give Conflict";
    let message = conflict_message(
        rule,
        store
            .transition_status(StatusChange {
                game_id: record.game_id,
                expected: seen_before_restart,
                to: RuntimeStatus::Removed,
                message: "container disappeared".to_owned(),
                at: now_micros(),
                event: None,
            })
            .await,
    );
    assert_unchanged(store, &record, rule).await;
    assert!(
        message.contains("record now on container"),
        "StorePort::transition_status: a conflict must say what changed (\"record now on \
         container …, not …\"), got {message:?}"
    );
}

/// Container ids are unique within a Docker host only (CONTRACT §6): every compare-and-set
/// compares the record's `docker_host` too, and `rebind` moves a record to another host.
pub async fn writes_compare_the_host<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        RuntimeRecord {
            docker_host: "a".to_owned(),
            ..sample_record(GameId::new_random(), RuntimeStatus::Running)
        },
    )
    .await;
    assert_eq!(
        record.docker_host, "a",
        "StorePort::create: must keep docker_host"
    );
    let seen_on_another_host = Expected {
        docker_host: "b".to_owned(),
        ..Expected::of(&record)
    };
    let rule = "StorePort::transition_status: compare-and-set on the host too: the same \
                container id on another host is another container";
    let message = conflict_message(
        rule,
        store
            .transition_status(StatusChange {
                game_id: record.game_id,
                expected: seen_on_another_host.clone(),
                to: RuntimeStatus::Removed,
                message: "container disappeared".to_owned(),
                at: now_micros(),
                event: None,
            })
            .await,
    );
    assert!(
        message.contains("record now on host"),
        "StorePort::transition_status: a conflict must say the host changed, got {message:?}"
    );
    assert_unchanged(store, &record, rule).await;

    let rule = "StorePort::set_probe_failures: a row on another host than expected is skipped";
    let written = expect_ok(
        rule,
        store
            .set_probe_failures(&[ProbeFailuresUpdate {
                game_id: record.game_id,
                expected: seen_on_another_host,
                failures: 2,
            }])
            .await,
    );
    assert!(written.is_empty(), "{rule}, got {written:?}");
    assert_unchanged(store, &record, rule).await;

    let moved = expect_ok(
        "StorePort::rebind: a move to the same container id on another host must succeed",
        store
            .rebind(Rebind {
                game_id: record.game_id,
                expected: Expected::of(&record),
                container_id: record.current_container_id.clone(),
                image_ref: record.current_image_ref.clone(),
                engine_version: record.current_engine_version.clone(),
                docker_host: "b".to_owned(),
            })
            .await,
    );
    assert_eq!(
        moved,
        RuntimeRecord {
            docker_host: "b".to_owned(),
            ..record.clone()
        },
        "StorePort::rebind: must write the new docker_host"
    );
    let rule = "StorePort::rebind: compare-and-set on the host: the record moved to host b";
    expect_conflict(
        rule,
        store
            .rebind(Rebind {
                game_id: record.game_id,
                expected: Expected::of(&record),
                container_id: "c2".to_owned(),
                image_ref: record.current_image_ref.clone(),
                engine_version: record.current_engine_version.clone(),
                docker_host: "a".to_owned(),
            })
            .await,
    );
    assert_unchanged(store, &moved, rule).await;
}

/// `rebind` compares the status too: a record whose status changed meanwhile (a stop job) is a
/// `Conflict` even when its container is the expected one.
pub async fn rebind_compares_the_status<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Stopped),
    )
    .await;
    let rule = "StorePort::rebind: compare-and-set on the status too: a record whose status \
                changed meanwhile must give Conflict";
    let message = conflict_message(
        rule,
        store
            .rebind(Rebind {
                game_id: record.game_id,
                expected: Expected {
                    status: RuntimeStatus::Running,
                    ..Expected::of(&record)
                },
                container_id: "testkit-other".to_owned(),
                image_ref: "galaxy/engine:1.5".to_owned(),
                engine_version: "1.5.0".to_owned(),
                docker_host: String::new(),
            })
            .await,
    );
    assert_unchanged(store, &record, rule).await;
    assert!(
        message.contains("stopped"),
        "StorePort::rebind: a conflict must say what changed, got {message:?}"
    );
}

/// `upsert_adopted` is compare-and-set on what the caller saw: with `expected: None` (the caller
/// saw no record) an existing record is a `Conflict` and stays as it is (a start job wrote it
/// meanwhile); with an expectation the record no longer holds (another container), too.
pub async fn upsert_adopted_compare_and_set<S: StorePort + ?Sized>(store: &S) {
    let mut existing = sample_record(GameId::new_random(), RuntimeStatus::Starting);
    existing.current_container_id = String::new();
    let existing = create(store, existing).await;

    let (insert, update) = adoption(existing.game_id, RuntimeStatus::Running);
    let rule = "StorePort::upsert_adopted: with expected None, a record that exists must give \
                Conflict";
    expect_conflict(
        rule,
        store.upsert_adopted(insert.clone(), update.clone()).await,
    );
    assert_unchanged(store, &existing, rule).await;

    let stale = AdoptUpdate {
        expected: Some(Expected {
            current_container_id: "another-container".to_owned(),
            ..Expected::of(&existing)
        }),
        ..update
    };
    let rule = "StorePort::upsert_adopted: an expectation the record no longer holds must give \
                Conflict";
    expect_conflict(rule, store.upsert_adopted(insert, stale).await);
    assert_unchanged(store, &existing, rule).await;
}

/// `transition_status` of a game without a record is `NotFound`.
pub async fn transition_status_not_found<S: StorePort + ?Sized>(store: &S) {
    let change = StatusChange {
        game_id: GameId::new_random(),
        expected: Expected {
            status: RuntimeStatus::Running,
            current_container_id: "c1".to_owned(),
            docker_host: String::new(),
        },
        to: RuntimeStatus::Removed,
        message: "container disappeared".to_owned(),
        at: now_micros(),
        event: None,
    };
    expect_not_found(
        "StorePort::transition_status: a game without a record must give NotFound",
        store.transition_status(change).await,
    );
}

/// `probe_failures` is reset to 0 when the new status is `running` or terminal, and kept for
/// the other statuses.
pub async fn transition_status_probe_failures<S: StorePort + ?Sized>(store: &S) {
    for to in RuntimeStatus::ALL {
        if to == RuntimeStatus::Starting {
            continue;
        }
        let mut record = sample_record(GameId::new_random(), RuntimeStatus::Starting);
        record.probe_failures = 2;
        let record = create(store, record).await;
        let updated = expect_ok(
            "StorePort::transition_status: the right expected status and container must succeed",
            store
                .transition_status(StatusChange {
                    game_id: record.game_id,
                    expected: Expected::of(&record),
                    to,
                    message: "testkit".to_owned(),
                    at: now_micros(),
                    event: None,
                })
                .await,
        );
        let expected = if to == RuntimeStatus::Running || to.is_terminal() {
            0
        } else {
            2
        };
        assert_eq!(
            updated.probe_failures, expected,
            "StorePort::transition_status: probe_failures must be reset to 0 when the new status \
             is running or terminal and kept otherwise (starting -> {to})"
        );
        assert_eq!(
            updated.status, to,
            "StorePort::transition_status: status must be `to`"
        );
    }
}

/// The forward-only rule: nothing moves a record out of `removed` or `failed` — neither
/// `transition_status` (whatever the expected status says) nor `rebind`; each attempt is a
/// `Conflict` and the record is unchanged.
pub async fn forward_only<S: StorePort + ?Sized>(store: &S) {
    for terminal in [RuntimeStatus::Removed, RuntimeStatus::Failed] {
        let record = create(store, sample_record(GameId::new_random(), terminal)).await;
        for to in RuntimeStatus::ALL.into_iter().filter(|s| *s != terminal) {
            for from in [terminal, to] {
                let rule = format!(
                    "StorePort::transition_status: forward-only, {terminal} -> {to} (from = {from}) \
                     must give Conflict"
                );
                let change = StatusChange {
                    game_id: record.game_id,
                    expected: Expected {
                        status: from,
                        ..Expected::of(&record)
                    },
                    to,
                    message: "testkit: leave a terminal status".to_owned(),
                    at: now_micros(),
                    event: None,
                };
                expect_conflict(&rule, store.transition_status(change).await);
                assert_unchanged(store, &record, &rule).await;
            }
        }
        let rule = format!(
            "StorePort::rebind: forward-only, rebinding a {terminal} record must give Conflict"
        );
        let rebind = Rebind {
            game_id: record.game_id,
            expected: Expected::of(&record),
            container_id: "testkit-new-container".to_owned(),
            image_ref: "galaxy/engine:9.9".to_owned(),
            engine_version: "9.9.0".to_owned(),
            docker_host: String::new(),
        };
        expect_conflict(&rule, store.rebind(rebind).await);
        assert_unchanged(store, &record, &rule).await;
    }
}

/// `rebind` is a compare-and-set on the expected container (an empty one included): a wrong one
/// is a `Conflict` that changes nothing; the right one changes container, image and engine
/// version only and returns the stored record; a game without a record is `NotFound`.
pub async fn rebind_compare_and_set<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let rebind = |expected: &str, to: &str| Rebind {
        game_id: record.game_id,
        expected: Expected {
            status: RuntimeStatus::Running,
            current_container_id: expected.to_owned(),
            docker_host: String::new(),
        },
        container_id: to.to_owned(),
        image_ref: "galaxy/engine:1.5".to_owned(),
        engine_version: "1.5.0".to_owned(),
        docker_host: String::new(),
    };

    let rule = "StorePort::rebind: a wrong expected container must give Conflict";
    expect_conflict(rule, store.rebind(rebind("not-the-container", "c2")).await);
    assert_unchanged(store, &record, rule).await;

    let updated = expect_ok(
        "StorePort::rebind: the right expected status and container must succeed",
        store
            .rebind(rebind(&record.current_container_id, "c2"))
            .await,
    );
    let expected = RuntimeRecord {
        current_container_id: "c2".to_owned(),
        current_image_ref: "galaxy/engine:1.5".to_owned(),
        current_engine_version: "1.5.0".to_owned(),
        ..record.clone()
    };
    assert_eq!(
        updated, expected,
        "StorePort::rebind: must change container, image and engine version only"
    );
    assert_unchanged(
        store,
        &expected,
        "StorePort::rebind: the returned record must be stored",
    )
    .await;

    let rule = "StorePort::rebind: repeating a rebind that succeeded must give Conflict";
    expect_conflict(
        rule,
        store
            .rebind(rebind(&record.current_container_id, "c3"))
            .await,
    );
    assert_unchanged(store, &expected, rule).await;

    // A start job may write its record before it knows the container: the id is empty.
    let mut unbound = sample_record(GameId::new_random(), RuntimeStatus::Starting);
    unbound.current_container_id = String::new();
    let unbound = create(store, unbound).await;
    let updated = expect_ok(
        "StorePort::rebind: an empty expected container must match an empty one",
        store
            .rebind(Rebind {
                game_id: unbound.game_id,
                expected: Expected::of(&unbound),
                ..rebind("", "c4")
            })
            .await,
    );
    assert_eq!(
        updated.current_container_id, "c4",
        "StorePort::rebind: container must change"
    );
    assert_eq!(
        updated.status,
        RuntimeStatus::Starting,
        "StorePort::rebind: status must be kept"
    );

    expect_not_found(
        "StorePort::rebind: a game without a record must give NotFound",
        store
            .rebind(Rebind {
                game_id: GameId::new_random(),
                ..rebind("c1", "c2")
            })
            .await,
    );
}

/// The insert and update halves of an adoption for `game_id`.
fn adoption(game_id: GameId, status: RuntimeStatus) -> (AdoptInsert, AdoptUpdate) {
    let mut record = sample_record(game_id, status);
    record.current_container_id = "adopted-container".to_owned();
    record.current_image_ref = "galaxy/engine:2.0".to_owned();
    record.current_engine_version = "2.0.0".to_owned();
    record.docker_network = "adopt-network".to_owned();
    record.turn_schedule = "adopt-schedule".to_owned();
    record.status_changed_at = now_micros();
    let update = AdoptUpdate {
        expected: None,
        status,
        current_container_id: record.current_container_id.clone(),
        current_image_ref: record.current_image_ref.clone(),
        current_engine_version: record.current_engine_version.clone(),
        engine_endpoint: record.engine_endpoint.clone(),
        docker_host: String::new(),
    };
    (AdoptInsert { record }, update)
}

/// `upsert_adopted` of a game without a record inserts `insert.record` and returns it;
/// repeating it (the caller still saw no record) is a `Conflict` that changes nothing.
pub async fn upsert_adopted_inserts<S: StorePort + ?Sized>(store: &S) {
    let (insert, update) = adoption(GameId::new_random(), RuntimeStatus::Running);
    let stored = expect_ok(
        "StorePort::upsert_adopted: must insert when the game has no record",
        store.upsert_adopted(insert.clone(), update.clone()).await,
    );
    assert_eq!(
        stored, insert.record,
        "StorePort::upsert_adopted: the insert path must store insert.record as is"
    );
    assert_unchanged(
        store,
        &insert.record,
        "StorePort::upsert_adopted: insert must be stored",
    )
    .await;

    // The caller saw no record, and now there is one: repeating the adoption is a conflict
    // that leaves the adopted record as it is.
    let rule = "StorePort::upsert_adopted: repeating it must give Conflict and change nothing";
    expect_conflict(rule, store.upsert_adopted(insert.clone(), update).await);
    assert_unchanged(store, &insert.record, rule).await;
}

/// `upsert_adopted` of a game with a non-terminal record overwrites status, container, image,
/// engine version and endpoint only: docker network, turn schedule and probe failures of the
/// existing row are kept. (`status_changed_at` is left to the store.)
pub async fn upsert_adopted_updates<S: StorePort + ?Sized>(store: &S) {
    let mut existing = sample_record(GameId::new_random(), RuntimeStatus::Starting);
    existing.docker_network = "existing-network".to_owned();
    existing.turn_schedule = "existing-schedule".to_owned();
    existing.engine_endpoint = "http://old-endpoint:8080".to_owned();
    existing.probe_failures = 2;
    let existing = create(store, existing).await;

    let (insert, mut update) = adoption(existing.game_id, RuntimeStatus::Running);
    update.expected = Some(Expected::of(&existing));
    let stored = expect_ok(
        "StorePort::upsert_adopted: must update a non-terminal record that holds what was \
         expected",
        store.upsert_adopted(insert, update.clone()).await,
    );
    let rule = "StorePort::upsert_adopted: the update path must overwrite only status, container, \
                image, engine version and endpoint";
    assert_eq!(stored.game_id, existing.game_id, "{rule}");
    assert_eq!(stored.status, update.status, "{rule}");
    assert_eq!(
        stored.current_container_id, update.current_container_id,
        "{rule}"
    );
    assert_eq!(stored.current_image_ref, update.current_image_ref, "{rule}");
    assert_eq!(
        stored.current_engine_version, update.current_engine_version,
        "{rule}"
    );
    assert_eq!(stored.engine_endpoint, update.engine_endpoint, "{rule}");
    assert_eq!(
        (
            stored.docker_network.as_str(),
            stored.turn_schedule.as_str(),
            stored.probe_failures
        ),
        ("existing-network", "existing-schedule", 2),
        "StorePort::upsert_adopted: the update path must keep docker_network, turn_schedule and \
         probe_failures of the existing row"
    );
    assert_unchanged(
        store,
        &stored,
        "StorePort::upsert_adopted: the returned record must be the stored one",
    )
    .await;
}

/// `upsert_adopted` of a game whose record is terminal is a `Conflict` and changes nothing.
pub async fn upsert_adopted_terminal_conflicts<S: StorePort + ?Sized>(store: &S) {
    for terminal in [RuntimeStatus::Removed, RuntimeStatus::Failed] {
        let record = create(store, sample_record(GameId::new_random(), terminal)).await;
        let (insert, mut update) = adoption(record.game_id, RuntimeStatus::Running);
        update.expected = Some(Expected::of(&record));
        let rule = format!(
            "StorePort::upsert_adopted: forward-only, adopting over a {terminal} record must give \
             Conflict"
        );
        expect_conflict(&rule, store.upsert_adopted(insert, update).await);
        assert_unchanged(store, &record, &rule).await;
    }
}

/// Checks a `set_probe_failures` answer against what was expected, then the stored rows.
async fn check_probe_failures<S: StorePort + ?Sized>(
    store: &S,
    answer: Vec<RuntimeRecord>,
    expected: &BTreeMap<GameId, RuntimeRecord>,
    all: &BTreeSet<GameId>,
    originals: &BTreeMap<GameId, RuntimeRecord>,
) {
    let mut returned = BTreeMap::new();
    for record in answer {
        let game_id = record.game_id;
        assert!(
            returned.insert(game_id, record).is_none(),
            "StorePort::set_probe_failures: game {game_id} is returned twice"
        );
    }
    assert_eq!(
        returned.len(),
        expected.len(),
        "StorePort::set_probe_failures: must return exactly the updated rows, those that hold \
         their expected status and container"
    );
    assert!(
        &returned == expected,
        "StorePort::set_probe_failures: must return exactly the updated rows, with the new count \
         and every other field kept"
    );
    let listed = list_ours(store, all).await;
    for (game_id, original) in originals {
        let want = expected.get(game_id).unwrap_or(original);
        assert_eq!(
            listed.get(game_id),
            Some(want),
            "StorePort::set_probe_failures: a row must be updated only if it exists and has its \
             expected status and container, and then only its probe_failures"
        );
    }
}

/// `set_probe_failures` updates the rows that exist with their expected status and container,
/// skips the others (another status, another container, no record), returns exactly the
/// updated rows, and accepts an empty batch.
pub async fn set_probe_failures_batch<S: StorePort + ?Sized>(store: &S) {
    let running = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let unreachable = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::EngineUnreachable),
    )
    .await;
    let stopped = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Stopped),
    )
    .await;
    let moved = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let missing = GameId::new_random();

    let updates = [
        ProbeFailuresUpdate {
            game_id: running.game_id,
            expected: Expected::of(&running),
            failures: 1,
        },
        ProbeFailuresUpdate {
            game_id: unreachable.game_id,
            expected: Expected {
                status: RuntimeStatus::Running,
                ..Expected::of(&unreachable)
            },
            failures: 5,
        },
        ProbeFailuresUpdate {
            game_id: stopped.game_id,
            expected: Expected::of(&stopped),
            failures: 3,
        },
        // The status is as expected, the container is not: a restart job moved the game.
        ProbeFailuresUpdate {
            game_id: moved.game_id,
            expected: Expected {
                current_container_id: "the-container-before-a-restart".to_owned(),
                ..Expected::of(&moved)
            },
            failures: 4,
        },
        ProbeFailuresUpdate {
            game_id: missing,
            expected: Expected {
                status: RuntimeStatus::Running,
                current_container_id: "c1".to_owned(),
                docker_host: String::new(),
            },
            failures: 1,
        },
    ];
    let answer = expect_ok(
        "StorePort::set_probe_failures: a batch with skipped rows must succeed",
        store.set_probe_failures(&updates).await,
    );
    let expected = BTreeMap::from([
        (
            running.game_id,
            RuntimeRecord {
                probe_failures: 1,
                ..running.clone()
            },
        ),
        (
            stopped.game_id,
            RuntimeRecord {
                probe_failures: 3,
                ..stopped.clone()
            },
        ),
    ]);
    let originals = BTreeMap::from([
        (running.game_id, running.clone()),
        (unreachable.game_id, unreachable.clone()),
        (stopped.game_id, stopped.clone()),
        (moved.game_id, moved.clone()),
    ]);
    let all = originals.keys().copied().collect();
    check_probe_failures(store, answer, &expected, &all, &originals).await;
    assert_eq!(
        expect_ok("StorePort::get_record", store.get_record(missing).await),
        None,
        "StorePort::set_probe_failures: must not create a row for a game without a record"
    );

    let empty = expect_ok(
        "StorePort::set_probe_failures: an empty batch must succeed",
        store.set_probe_failures(&[]).await,
    );
    assert!(
        empty.is_empty(),
        "StorePort::set_probe_failures: an empty batch must return no rows"
    );
}

/// `set_probe_failures` with [`LARGE_BATCH`] rows, one in ten of them skipped for a wrong
/// expected status and one in ten for a wrong expected container, in one call.
pub async fn set_probe_failures_large_batch<S: StorePort + ?Sized>(store: &S) {
    let records: Vec<_> = (0..LARGE_BATCH)
        .map(|_| sample_record(GameId::new_random(), RuntimeStatus::Running))
        .collect();
    create_many(store, &records).await;

    let mut updates = Vec::with_capacity(LARGE_BATCH);
    let mut expected = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let failures = u32::try_from(i % 7 + 1).unwrap_or(1);
        let skipped = matches!(i % 10, 3 | 7);
        let mut expected_row = Expected::of(record);
        match i % 10 {
            3 => expected_row.status = RuntimeStatus::EngineUnreachable,
            7 => expected_row.current_container_id = format!("moved-{i}"),
            _ => {}
        }
        updates.push(ProbeFailuresUpdate {
            game_id: record.game_id,
            expected: expected_row,
            failures,
        });
        if !skipped {
            expected.insert(
                record.game_id,
                RuntimeRecord {
                    probe_failures: failures,
                    ..record.clone()
                },
            );
        }
    }
    let answer = expect_ok(
        "StorePort::set_probe_failures: a large batch must succeed",
        store.set_probe_failures(&updates).await,
    );
    let originals: BTreeMap<_, _> = records.iter().map(|r| (r.game_id, r.clone())).collect();
    let all = originals.keys().copied().collect();
    check_probe_failures(store, answer, &expected, &all, &originals).await;
}

/// A snapshot with a state that exercises JSON round trips (nesting, unicode, escapes, numbers).
fn sample_snapshot(game_id: GameId, turn: u64) -> Snapshot {
    Snapshot {
        game_id,
        state: json!({
            "turn": turn,
            "players": [{"name": "Zoë \"the\" ✓", "score": -12.5}, {"name": "b", "score": 0}],
            "finished": false,
            "winner": null,
            "map": {"width": 64, "height": 48},
        })
        .into(),
        observed_at: now_micros(),
    }
}

/// Reads a snapshot that must exist and compares it.
async fn assert_snapshot<S: StorePort + ?Sized>(store: &S, expected: &Snapshot, rule: &str) {
    let found = expect_ok(
        "StorePort::get_snapshot: must read",
        store.get_snapshot(expected.game_id).await,
    );
    assert_eq!(found.as_ref(), Some(expected), "{rule}");
}

/// `publish_snapshots` stores each snapshot, replacing the game's previous one and leaving the
/// others; `get_snapshot` of a game without one is `None`; an empty batch is accepted.
///
/// A record is created for every game first, so stores that tie snapshots to records pass.
pub async fn publish_snapshots_batch<S: StorePort + ?Sized>(store: &S) {
    let a = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let b = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    assert_eq!(
        expect_ok(
            "StorePort::get_snapshot",
            store.get_snapshot(a.game_id).await
        ),
        None,
        "StorePort::get_snapshot: a game without a snapshot must read as None"
    );

    let first = [sample_snapshot(a.game_id, 1), sample_snapshot(b.game_id, 1)];
    expect_ok(
        "StorePort::publish_snapshots: must publish",
        store.publish_snapshots(&first).await,
    );
    for snapshot in &first {
        assert_snapshot(
            store,
            snapshot,
            "StorePort::publish_snapshots: must round-trip",
        )
        .await;
    }

    let second = [sample_snapshot(a.game_id, 2)];
    expect_ok(
        "StorePort::publish_snapshots: must publish over a previous snapshot",
        store.publish_snapshots(&second).await,
    );
    assert_snapshot(
        store,
        &second[0],
        "StorePort::publish_snapshots: must replace the previous snapshot",
    )
    .await;
    assert_snapshot(
        store,
        &first[1],
        "StorePort::publish_snapshots: must leave the snapshots of other games",
    )
    .await;
    expect_ok(
        "StorePort::publish_snapshots: repeating it must be harmless",
        store.publish_snapshots(&second).await,
    );
    expect_ok(
        "StorePort::publish_snapshots: an empty batch must succeed",
        store.publish_snapshots(&[]).await,
    );
}

/// `publish_snapshots` with [`LARGE_BATCH`] snapshots in one call, then again with new states.
pub async fn publish_snapshots_large_batch<S: StorePort + ?Sized>(store: &S) {
    let records: Vec<_> = (0..LARGE_BATCH)
        .map(|_| sample_record(GameId::new_random(), RuntimeStatus::Running))
        .collect();
    create_many(store, &records).await;
    for turn in [1, 2] {
        let snapshots: Vec<_> = records
            .iter()
            .map(|r| sample_snapshot(r.game_id, turn))
            .collect();
        expect_ok(
            "StorePort::publish_snapshots: a large batch must succeed",
            store.publish_snapshots(&snapshots).await,
        );
        for snapshot in &snapshots {
            assert_snapshot(
                store,
                snapshot,
                "StorePort::publish_snapshots: every snapshot of a large batch must be stored, \
                 replacing the previous one",
            )
            .await;
        }
    }
}

/// `load_game_projections` answers for many games in one call: games without a projection are
/// simply absent, repeated ids give one projection, an empty input gives an empty answer.
pub async fn load_game_projections_batch<S: StorePort + GameCatalog + ?Sized>(store: &S) {
    const GAMES: usize = 1_500;
    let games: Vec<_> = (0..GAMES)
        .map(|i| GameProjection {
            game_id: GameId::new_random(),
            turn_schedule: format!("{} */6 * * *", i % 60),
        })
        .collect();
    for chunk in games.chunks(CREATE_CONCURRENCY) {
        join_all(chunk.iter().map(|g| async {
            expect_ok(
                "GameCatalog::put_game: must store",
                store.put_game(g.clone()).await,
            )
        }))
        .await;
    }

    let mut ids: Vec<_> = games.iter().map(|g| g.game_id).collect();
    let missing: Vec<_> = (0..10).map(|_| GameId::new_random()).collect();
    ids.extend(&missing);
    ids.push(games[0].game_id);
    let answer = expect_ok(
        "StorePort::load_game_projections: must load many games in one call",
        store.load_game_projections(&ids).await,
    );
    let mut loaded = BTreeMap::new();
    for game in answer {
        let game_id = game.game_id;
        assert!(
            loaded.insert(game_id, game).is_none(),
            "StorePort::load_game_projections: game {game_id} is returned twice"
        );
    }
    let expected: BTreeMap<_, _> = games.iter().map(|g| (g.game_id, g.clone())).collect();
    assert!(
        loaded == expected,
        "StorePort::load_game_projections: must return exactly the asked games that have a \
         projection ({} asked with a projection, {} returned); games without one are absent",
        expected.len(),
        loaded.len()
    );

    let some = [games[1].game_id, missing[0], games[2].game_id];
    let mut answer = expect_ok(
        "StorePort::load_game_projections: must load",
        store.load_game_projections(&some).await,
    );
    answer.sort();
    let mut want = vec![games[1].clone(), games[2].clone()];
    want.sort();
    assert_eq!(
        answer, want,
        "StorePort::load_game_projections: must return the asked games"
    );

    let none = expect_ok(
        "StorePort::load_game_projections: an empty input must succeed",
        store.load_game_projections(&[]).await,
    );
    assert!(
        none.is_empty(),
        "StorePort::load_game_projections: an empty input must give an empty answer"
    );
}

/// `GameCatalog`: `put_game` inserts or replaces, `list_games` is sorted by game id,
/// `remove_game` removes and is `NotFound` for a game without a projection.
pub async fn game_catalog<S: GameCatalog + ?Sized>(store: &S) {
    let a = GameProjection {
        game_id: GameId::new_random(),
        turn_schedule: "0 0 * * *".to_owned(),
    };
    let b = GameProjection {
        game_id: GameId::new_random(),
        turn_schedule: String::new(),
    };
    expect_ok(
        "GameCatalog::put_game: must insert",
        store.put_game(a.clone()).await,
    );
    expect_ok(
        "GameCatalog::put_game: must insert",
        store.put_game(b.clone()).await,
    );

    let ours = |all: Vec<GameProjection>| -> Vec<GameProjection> {
        assert!(
            all.windows(2).all(|w| w[0].game_id < w[1].game_id),
            "GameCatalog::list_games: must be sorted by game id, each game once"
        );
        all.into_iter()
            .filter(|g| g.game_id == a.game_id || g.game_id == b.game_id)
            .collect()
    };
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    let listed = ours(expect_ok(
        "GameCatalog::list_games",
        store.list_games().await,
    ));
    assert_eq!(
        listed, want,
        "GameCatalog::list_games: must list what was put"
    );

    let a2 = GameProjection {
        turn_schedule: "15 3 * * *".to_owned(),
        ..a.clone()
    };
    expect_ok(
        "GameCatalog::put_game: must replace an existing projection",
        store.put_game(a2.clone()).await,
    );
    let mut want = vec![a2.clone(), b.clone()];
    want.sort();
    let listed = ours(expect_ok(
        "GameCatalog::list_games",
        store.list_games().await,
    ));
    assert_eq!(listed, want, "GameCatalog::put_game: must replace, not add");

    expect_ok(
        "GameCatalog::remove_game: must remove an existing projection",
        store.remove_game(a.game_id).await,
    );
    let listed = ours(expect_ok(
        "GameCatalog::list_games",
        store.list_games().await,
    ));
    assert_eq!(
        listed,
        vec![b.clone()],
        "GameCatalog::remove_game: must remove"
    );
    expect_not_found(
        "GameCatalog::remove_game: removing a game without a projection must give NotFound",
        store.remove_game(a.game_id).await,
    );
}

/// [`RACERS`] concurrent `transition_status` calls from the same `from`: exactly one wins, every
/// other one gets `Conflict`, and the stored record is the winner's.
pub async fn concurrent_transitions_one_winner<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let targets = [
        RuntimeStatus::Stopped,
        RuntimeStatus::EngineUnreachable,
        RuntimeStatus::Removed,
        RuntimeStatus::Failed,
    ];
    let base = now_micros();
    let changes: Vec<_> = (0..RACERS)
        .map(|i| StatusChange {
            game_id: record.game_id,
            expected: Expected::of(&record),
            to: targets[i % targets.len()],
            message: format!("testkit racer {i}"),
            at: base.saturating_add(Duration::from_millis(u64::try_from(i).unwrap_or(0))),
            event: None,
        })
        .collect();
    let results = join_all(changes.iter().cloned().map(|c| store.transition_status(c))).await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(updated) => winners.push((i, updated)),
            Err(e) if e.is_conflict() => {}
            Err(e) => panic!(
                "StorePort::transition_status: a racing writer that loses must get Conflict, got \
                 {e:?}"
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "StorePort::transition_status: exactly one of {RACERS} racing compare-and-sets must win"
    );
    let (i, won) = &winners[0];
    assert_eq!(
        (won.status, won.status_changed_at),
        (changes[*i].to, changes[*i].at),
        "StorePort::transition_status: the winner must get its change"
    );
    assert_unchanged(
        store,
        won,
        "StorePort::transition_status: the stored record must be the winner's",
    )
    .await;
}

/// [`RACERS`] concurrent `rebind` calls from the same expected container: exactly one wins,
/// every other one gets `Conflict`, and the stored record is the winner's.
pub async fn concurrent_rebinds_one_winner<S: StorePort + ?Sized>(store: &S) {
    let record = create(
        store,
        sample_record(GameId::new_random(), RuntimeStatus::Running),
    )
    .await;
    let rebinds: Vec<_> = (0..RACERS)
        .map(|i| Rebind {
            game_id: record.game_id,
            expected: Expected::of(&record),
            container_id: format!("racer-{i}"),
            image_ref: format!("galaxy/engine:{i}"),
            engine_version: format!("{i}.0.0"),
            docker_host: String::new(),
        })
        .collect();
    let results = join_all(rebinds.iter().cloned().map(|r| store.rebind(r))).await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(updated) => winners.push((i, updated)),
            Err(e) if e.is_conflict() => {}
            Err(e) => {
                panic!("StorePort::rebind: a racing writer that loses must get Conflict, got {e:?}")
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "StorePort::rebind: exactly one of {RACERS} racing compare-and-sets must win"
    );
    let (i, won) = &winners[0];
    assert_eq!(
        won.current_container_id, rebinds[*i].container_id,
        "StorePort::rebind: the winner must get its change"
    );
    assert_unchanged(
        store,
        won,
        "StorePort::rebind: the stored record must be the winner's",
    )
    .await;
}
