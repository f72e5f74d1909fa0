//! Faults against a PostgreSQL server of the test's own, stopped in the middle of a pass and
//! started again: the pass fails with clear, retryable errors, nothing is half-written, the
//! next pass after the restart succeeds, and the leader knows it lost its lock.

mod common;

use std::time::Duration;

use common::TestServer;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use galaxy_runtime_model::{GameId, RuntimeStatus, Snapshot};
use galaxy_runtime_ports::{Expected, LeaderLock, PortError, ProbeFailuresUpdate, StorePort};
use galaxy_runtime_store::{Store, StoreConfig};
use galaxy_runtime_testkit::{now_micros, store::sample_record};
use serde_json::json;

const GAMES: usize = 4_000;

/// One pass as the executor writes it: read every record, publish a snapshot of every game
/// (one call, several statements) and write the probe counters (one call).
async fn pass(store: &Store, number: u64) -> Result<(), PortError> {
    let records = store.list_records().await?;
    let snapshots: Vec<Snapshot> = records
        .iter()
        .map(|r| Snapshot {
            game_id: r.game_id,
            state: json!({ "pass": number }).into(),
            observed_at: now_micros(),
        })
        .collect();
    store.publish_snapshots(&snapshots).await?;
    let updates: Vec<ProbeFailuresUpdate> = records
        .iter()
        .map(|r| ProbeFailuresUpdate {
            game_id: r.game_id,
            expected: Expected::of(r),
            failures: u32::try_from(number % 5).unwrap_or(0),
        })
        .collect();
    store.set_probe_failures(&updates).await?;
    Ok(())
}

#[derive(QueryableByName, Debug)]
struct PassCount {
    #[diesel(sql_type = Text)]
    pass: String,
    #[diesel(sql_type = BigInt)]
    games: i64,
}

/// How many snapshots each pass left: a pass that wrote half of its snapshots would show as two
/// groups.
async fn snapshot_passes(url: &str) -> Vec<PassCount> {
    let mut conn = AsyncPgConnection::establish(url).await.expect("connecting");
    let query = diesel::sql_query(
        "SELECT state->>'pass' AS pass, count(*) AS games FROM runtime_snapshots GROUP BY 1",
    );
    diesel_async::RunQueryDsl::load(query, &mut conn)
        .await
        .expect("counting snapshots")
}

fn assert_clear_and_retryable(error: &PortError) {
    assert!(
        matches!(
            error,
            PortError::Unavailable { .. } | PortError::Timeout { .. }
        ),
        "a stopped database is unavailable (or a timeout), got {error:?}"
    );
    assert!(error.is_retryable(), "{error:?} must be retryable");
    let text = error.to_string();
    assert!(
        text.contains("127.0.0.1")
            || text.contains("publish_snapshots")
            || text.contains("set_probe_failures")
            || text.contains("list_records"),
        "the error must say what failed where: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_mid_pass_then_restarted() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let config = StoreConfig {
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(10),
        ..StoreConfig::new(server.url())
    };
    let store = Store::connect(&config).await.expect("connect");
    let records: Vec<_> = (0..GAMES)
        .map(|_| sample_record(GameId::new_random(), RuntimeStatus::Running))
        .collect();
    for record in &records {
        store.create_record(record.clone()).await.expect("seeding");
    }
    pass(&store, 1).await.expect("a pass on a healthy database");
    let lock = store.leader_lock();
    assert!(
        lock.try_acquire().await.expect("acquire"),
        "the only replica leads"
    );

    // Passes run back to back until one fails; the server is stopped while they run.
    let runner = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut number = 2;
            loop {
                if let Err(error) = pass(&store, number).await {
                    return (number, error);
                }
                number += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    let (failed_pass, error) = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("the failing pass must end within the timeouts")
        .expect("the pass task");
    eprintln!("pass {failed_pass} failed with: {error}");
    assert_clear_and_retryable(&error);

    // While the server is down every call fails the same way, quickly.
    let error = store.list_records().await.expect_err("the server is down");
    assert_clear_and_retryable(&error);
    assert!(
        error.to_string().contains("127.0.0.1"),
        "a connection failure names the server: {error}"
    );
    assert!(
        !lock.is_held().await.expect("is_held"),
        "the leader's session died with the server"
    );

    server.restart();
    // Nothing half-written: every game's snapshot comes from one and the same pass, either the
    // failed one (its transaction committed just before the stop) or the one before.
    let passes = snapshot_passes(&server.url()).await;
    assert_eq!(passes.len(), 1, "snapshots from several passes: {passes:?}");
    assert_eq!(passes[0].games, GAMES as i64);
    let last: u64 = passes[0].pass.parse().expect("a pass number");
    assert!(
        last == failed_pass || last + 1 == failed_pass,
        "the snapshots are those of pass {last}, but pass {failed_pass} failed"
    );

    // The next pass after the restart succeeds on the same store (the pool replaces its dead
    // connections), and the lock can be taken again.
    pass(&store, failed_pass + 1)
        .await
        .expect("the next pass after the restart");
    let passes = snapshot_passes(&server.url()).await;
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].pass, (failed_pass + 1).to_string());
    assert_eq!(store.list_records().await.expect("list").len(), GAMES);
    assert!(
        lock.try_acquire().await.expect("acquire"),
        "leads again after the restart"
    );
    lock.release().await.expect("release");
}
