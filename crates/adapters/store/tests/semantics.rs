//! What the store adds to the port contract, on each backend built in: the database's own forward-only
//! trigger and status check, errors naming unreadable rows, what only the store keeps (version,
//! message, times), batches with repeated games, timeouts, busy and unreachable databases, and
//! passwords kept out of messages.

mod common;

use std::time::Duration;

#[cfg(feature = "sqlite")]
use common::SqliteFile;
use common::TempDir;
#[cfg(feature = "postgres")]
use common::{PgSchema, free_port};
#[cfg(feature = "sqlite")]
use diesel::connection::SimpleConnection;
#[cfg(feature = "postgres")]
use diesel_async::SimpleAsyncConnection;
use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Snapshot, Timestamp};
use galaxy_runtime_ports::{Expected, PortError, ProbeFailuresUpdate, StatusChange, StorePort};
use galaxy_runtime_store::{Store, StoreConfig};
use galaxy_runtime_testkit::{now_micros, store::sample_record};
use serde_json::json;

async fn create(store: &Store, status: RuntimeStatus) -> RuntimeRecord {
    let record = sample_record(GameId::new_random(), status);
    store
        .create_record(record.clone())
        .await
        .expect("creating a record");
    record
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, PortError>, needles: &[&str]) {
    match result {
        Err(PortError::Invalid { message, .. }) => {
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "the error must name {needle:?}: {message}"
                );
            }
        }
        other => panic!("expected PortError::Invalid naming {needles:?}, got {other:?}"),
    }
}

/// The version counts writes, the status message and the times are kept, and the record part
/// equals what the port returns.
async fn check_stored_metadata(store: &Store) {
    let before = Timestamp::now();
    let record = create(store, RuntimeStatus::Starting).await;
    let change = StatusChange {
        game_id: record.game_id,
        expected: Expected::of(&record),
        to: RuntimeStatus::Running,
        message: "engine reachable".to_owned(),
        at: now_micros(),
        event: None,
    };
    let running = store.transition_status(change).await.expect("transition");
    store
        .set_probe_failures(&[ProbeFailuresUpdate {
            game_id: record.game_id,
            expected: Expected::of(&running),
            failures: 2,
        }])
        .await
        .expect("probe failures");
    let stored = store
        .list_stored_records()
        .await
        .expect("list_stored_records")
        .into_iter()
        .find(|s| s.record.game_id == record.game_id)
        .expect("the record is listed");
    assert_eq!(
        stored.version, 3,
        "insert, transition and probe update are three writes"
    );
    assert_eq!(stored.status_message, "engine reachable");
    assert_eq!(
        stored.record,
        RuntimeRecord {
            probe_failures: 2,
            ..running
        }
    );
    let slack = Duration::from_secs(1);
    assert!(
        stored.created_at.saturating_add(slack) >= before,
        "created_at is now"
    );
    assert!(
        stored.updated_at >= stored.created_at,
        "updated_at follows created_at"
    );
}

/// Repeated games in one batch: the last write of each wins, and each is answered once.
async fn check_batches_with_repeated_games(store: &Store) {
    let record = create(store, RuntimeStatus::Running).await;
    let updates = [1, 2, 3].map(|failures| ProbeFailuresUpdate {
        game_id: record.game_id,
        expected: Expected::of(&record),
        failures,
    });
    let answer = store.set_probe_failures(&updates).await.expect("batch");
    assert_eq!(answer.len(), 1, "a game named thrice is answered once");
    assert_eq!(answer[0].probe_failures, 3, "the last update wins");

    let snapshots: Vec<Snapshot> = (1..=3)
        .map(|turn| Snapshot {
            game_id: record.game_id,
            state: json!({ "turn": turn }).into(),
            observed_at: now_micros(),
        })
        .collect();
    store.publish_snapshots(&snapshots).await.expect("publish");
    let stored = store.get_snapshot(record.game_id).await.expect("get");
    assert_eq!(stored.as_ref(), snapshots.last(), "the last snapshot wins");
    let times = store.snapshot_times().await.expect("snapshot_times");
    assert_eq!(
        times.get(&record.game_id),
        Some(&snapshots[2].observed_at),
        "snapshot_times reports the observed_at of the latest snapshot"
    );
}

/// The probe-failure counter is written only for rows that still have the expected status, in
/// batches larger than one statement, and the counter's range is checked.
async fn check_probe_failures_range(store: &Store) {
    let record = create(store, RuntimeStatus::Running).await;
    let too_large = ProbeFailuresUpdate {
        game_id: record.game_id,
        expected: Expected::of(&record),
        failures: u32::MAX,
    };
    expect_invalid(
        store.set_probe_failures(&[too_large]).await,
        &[&record.game_id.to_string(), &u32::MAX.to_string()],
    );
    let mut huge = sample_record(GameId::new_random(), RuntimeStatus::Running);
    huge.probe_failures = u32::MAX;
    expect_invalid(store.create_record(huge).await, &["probe_failures"]);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_keeps_store_metadata_and_handles_repeated_games() {
    let db = SqliteFile::new();
    let store = db.store().await;
    check_stored_metadata(&store).await;
    check_batches_with_repeated_games(&store).await;
    check_probe_failures_range(&store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_store_metadata_and_handles_repeated_games() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    check_stored_metadata(&store).await;
    check_batches_with_repeated_games(&store).await;
    check_probe_failures_range(&store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_database_enforces_forward_only_and_known_statuses() {
    let db = SqliteFile::new();
    let store = db.store().await;
    let removed = create(&store, RuntimeStatus::Removed).await;
    let mut raw = db.raw();

    let error = raw
        .batch_execute(&format!(
            "UPDATE runtime_records SET status = 'running' WHERE game_id = '{}'",
            removed.game_id
        ))
        .expect_err("the trigger must refuse to leave a terminal status");
    assert!(error.to_string().contains("is terminal"), "{error}");
    // Other columns of a terminal row, and a terminal status kept as is, are allowed.
    raw.batch_execute(&format!(
        "UPDATE runtime_records SET status = 'removed', turn_schedule = 'x' WHERE game_id = '{}'",
        removed.game_id
    ))
    .expect("writing a terminal row without leaving its status");

    let error = raw
        .batch_execute(&format!(
            "INSERT INTO runtime_records (game_id, status, status_changed_at, created_at, \
             updated_at) VALUES ('{}', 'hibernating', 'x', 'x', 'x')",
            GameId::new_random()
        ))
        .expect_err("the CHECK must refuse an unknown status");
    assert!(error.to_string().contains("CHECK"), "{error}");
    assert_eq!(
        store
            .get_record(removed.game_id)
            .await
            .expect("get")
            .map(|r| r.status),
        Some(RuntimeStatus::Removed)
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_database_enforces_forward_only_and_known_statuses() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let failed = create(&store, RuntimeStatus::Failed).await;
    let mut raw = schema.raw().await;

    let error = raw
        .batch_execute(&format!(
            "UPDATE runtime_records SET status = 'removed' WHERE game_id = '{}'",
            failed.game_id
        ))
        .await
        .expect_err("the trigger must refuse to leave a terminal status");
    assert!(error.to_string().contains("is terminal"), "{error}");

    let error = raw
        .batch_execute(&format!(
            "INSERT INTO runtime_records (game_id, status, status_changed_at) \
             VALUES ('{}', 'hibernating', now())",
            GameId::new_random()
        ))
        .await
        .expect_err("the CHECK must refuse an unknown status");
    assert!(error.to_string().contains("check"), "{error}");
    assert_eq!(
        store
            .get_record(failed.game_id)
            .await
            .expect("get")
            .map(|r| r.status),
        Some(RuntimeStatus::Failed)
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_bad_rows_give_errors_naming_them() {
    let db = SqliteFile::new();
    let store = db.store().await;
    let good = create(&store, RuntimeStatus::Running).await;
    let mut raw = db.raw();
    let now = "2026-11-27T12:00:00.000000Z";
    let insert = |raw: &mut diesel::SqliteConnection, id: &str, status: &str, changed: &str| {
        raw.batch_execute(&format!(
            "INSERT INTO runtime_records (game_id, status, status_changed_at, created_at, \
             updated_at) VALUES ('{id}', '{status}', '{changed}', '{now}', '{now}')"
        ))
        .expect("inserting a row by hand");
    };
    let delete = |raw: &mut diesel::SqliteConnection, id: &str| {
        raw.batch_execute(&format!(
            "DELETE FROM runtime_records WHERE game_id = '{id}'"
        ))
        .expect("deleting a row by hand");
    };

    // An unknown status, as a newer build might write (CHECK switched off to get it in).
    let id = GameId::new_random().to_string();
    raw.batch_execute("PRAGMA ignore_check_constraints = ON")
        .expect("pragma");
    insert(&mut raw, &id, "hibernating", now);
    expect_invalid(store.list_records().await, &[&id, "hibernating"]);
    expect_invalid(
        store.get_record(id.parse().expect("id")).await,
        &[&id, "hibernating"],
    );
    delete(&mut raw, &id);

    // A game id that is not a UUID.
    insert(&mut raw, "not-a-uuid", "running", now);
    expect_invalid(store.list_records().await, &["not-a-uuid"]);
    delete(&mut raw, "not-a-uuid");

    // A timestamp that is not RFC 3339.
    let id = GameId::new_random().to_string();
    insert(&mut raw, &id, "running", "yesterday");
    expect_invalid(
        store.list_records().await,
        &[&id, "status_changed_at", "yesterday"],
    );
    delete(&mut raw, &id);

    // A snapshot that is not JSON.
    let id = GameId::new_random().to_string();
    raw.batch_execute(&format!(
        "INSERT INTO runtime_snapshots (game_id, state, observed_at) VALUES ('{id}', '{{turn: 1', \
         '{now}')"
    ))
    .expect("inserting a snapshot by hand");
    expect_invalid(
        store.get_snapshot(id.parse().expect("id")).await,
        &[&id, "{turn: 1"],
    );

    // A bad projection id.
    raw.batch_execute("INSERT INTO game_projections (game_id, turn_schedule) VALUES ('g-1', '')")
        .expect("inserting a projection by hand");
    expect_invalid(
        galaxy_runtime_ports::GameCatalog::list_games(&store).await,
        &["g-1"],
    );

    // Once the bad rows are gone, everything reads again.
    let all = store.list_records().await.expect("list after cleanup");
    assert_eq!(all, vec![good.into()]);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_bad_rows_give_errors_naming_them() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let good = create(&store, RuntimeStatus::Running).await;
    let mut raw = schema.raw().await;

    // PostgreSQL's types refuse a bad UUID or timestamp; an unknown status needs the CHECK
    // dropped, as a newer build with another status would have done.
    let id = GameId::new_random();
    raw.batch_execute(&format!(
        "ALTER TABLE runtime_records DROP CONSTRAINT runtime_records_status_check; \
         INSERT INTO runtime_records (game_id, status, status_changed_at) \
         VALUES ('{id}', 'hibernating', now())"
    ))
    .await
    .expect("inserting a row by hand");
    expect_invalid(
        store.list_records().await,
        &[&id.to_string(), "hibernating"],
    );
    expect_invalid(
        store.get_record(id).await,
        &[&id.to_string(), "hibernating"],
    );
    let conflict = store
        .transition_status(StatusChange {
            game_id: id,
            expected: Expected {
                status: RuntimeStatus::Running,
                current_container_id: String::new(),
                docker_host: String::new(),
            },
            to: RuntimeStatus::Stopped,
            message: String::new(),
            at: now_micros(),
            event: None,
        })
        .await;
    expect_invalid(conflict, &["hibernating"]);

    // Infinity is a valid timestamptz but no point in time.
    let id2 = GameId::new_random();
    raw.batch_execute(&format!(
        "DELETE FROM runtime_records WHERE game_id = '{id}'; \
         INSERT INTO runtime_records (game_id, status, status_changed_at) \
         VALUES ('{id2}', 'running', 'infinity')"
    ))
    .await
    .expect("inserting a row by hand");
    expect_invalid(store.list_records().await, &[&id2.to_string(), "infinity"]);
    raw.batch_execute(&format!(
        "DELETE FROM runtime_records WHERE game_id = '{id2}'"
    ))
    .await
    .expect("deleting");
    assert_eq!(store.list_records().await.expect("list"), vec![good.into()]);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_busy_database_is_unavailable_then_recovers() {
    let db = SqliteFile::new();
    let config = StoreConfig {
        busy_timeout: Duration::from_millis(200),
        ..db.config()
    };
    let store = Store::connect(&config).await.expect("connect");
    let mut raw = db.raw();
    raw.batch_execute("BEGIN IMMEDIATE")
        .expect("taking the write lock");
    let error = store
        .create_record(sample_record(GameId::new_random(), RuntimeStatus::Running))
        .await
        .expect_err("a write must fail while another writer holds the lock");
    assert!(
        matches!(error, PortError::Unavailable { .. }) && error.is_retryable(),
        "a locked database is unavailable for now: {error:?}"
    );
    assert!(error.to_string().contains("locked"), "{error}");
    raw.batch_execute("ROLLBACK").expect("releasing the lock");
    create(&store, RuntimeStatus::Running).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_query_timeout_then_recovers() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let config = StoreConfig {
        query_timeout: Duration::from_millis(400),
        ..schema.config()
    };
    let store = Store::connect(&config).await.expect("connect");
    let record = create(&store, RuntimeStatus::Running).await;
    let mut raw = schema.raw().await;
    raw.batch_execute(&format!(
        "BEGIN; SELECT * FROM runtime_records WHERE game_id = '{}' FOR UPDATE",
        record.game_id
    ))
    .await
    .expect("locking the row");
    let change = StatusChange {
        game_id: record.game_id,
        expected: Expected::of(&record),
        to: RuntimeStatus::Stopped,
        message: "stop job".to_owned(),
        at: now_micros(),
        event: None,
    };
    let error = store
        .transition_status(change.clone())
        .await
        .expect_err("a write blocked past the query timeout must fail");
    assert!(
        matches!(error, PortError::Timeout { .. }),
        "expected a timeout: {error:?}"
    );
    raw.batch_execute("ROLLBACK").await.expect("unlocking");
    let stopped = store
        .transition_status(change)
        .await
        .expect("after the lock");
    assert_eq!(stopped.status, RuntimeStatus::Stopped);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_hides_the_password() {
    // A port nothing listens on: refused at once.
    let port = free_port();
    let config = StoreConfig::new(format!("postgres://runtime:sekrit@127.0.0.1:{port}/galaxy"));
    let error = Store::connect(&config)
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(error, PortError::Unavailable { .. }),
        "a refused connection is unavailable: {error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains("sekrit"), "the password leaked: {text}");
    assert!(
        text.contains("runtime:***@127.0.0.1"),
        "the error names the server: {text}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn silent_postgres_times_out_and_hides_the_password() {
    // A listener that accepts and never answers: the connect timeout must fire.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = StoreConfig {
        connect_timeout: Duration::from_millis(300),
        ..StoreConfig::new(format!("postgres://runtime:sekrit@127.0.0.1:{port}/galaxy"))
    };
    let error = Store::connect(&config)
        .await
        .expect_err("the server never answers");
    assert!(
        matches!(error, PortError::Timeout { .. }),
        "a silent server is a timeout: {error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains("sekrit"), "the password leaked: {text}");
    drop(listener);
}

#[tokio::test]
async fn bad_configurations_are_invalid() {
    for url in [
        "mysql://h/db",
        "sqlite://",
        "sqlite://:memory:",
        "galaxy.db",
    ] {
        let error = Store::connect(&StoreConfig::new(url))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, PortError::Invalid { .. }),
            "{url}: {error:?}"
        );
    }
    let schema = StoreConfig {
        schema: Some("x\"; DROP TABLE y; --".to_owned()),
        ..StoreConfig::new("postgres://h/db")
    };
    let error = Store::connect(&schema).await.expect_err("refused");
    assert!(error.to_string().contains("schema"), "{error}");
    // A SQLite file in a directory that does not exist.
    let dir = TempDir::new();
    let missing = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let error = Store::connect(&StoreConfig::new(missing))
        .await
        .expect_err("no such directory");
    assert!(error.to_string().contains("x.db"), "{error}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn debug_and_display_of_a_postgres_store_hide_the_password() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    // The test servers trust local connections, so any password is accepted and ignored.
    let url = schema.url.replacen("postgres@", "postgres:sekrit@", 1);
    let config = StoreConfig {
        url,
        ..schema.config()
    };
    let store = Store::connect(&config).await.expect("connect");
    for text in [
        format!("{store:?}"),
        format!("{:?}", store.config()),
        store.config().to_string(),
        format!("{:?}", store.leader_lock()),
    ] {
        assert!(!text.contains("sekrit"), "the password leaked: {text}");
    }
    store.ping().await.expect("ping");
}
