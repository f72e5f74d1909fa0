//! Concurrency against PostgreSQL: a pass racing a stop job on the same records (no lost
//! update, the loser gets `Conflict`), and the leader lock between replicas — in one process,
//! after a lost connection, and across two processes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::PgSchema;
use diesel_async::SimpleAsyncConnection;
use futures_util::future::join_all;
use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Snapshot};
use galaxy_runtime_ports::{LeaderLock, PortResult, ProbeFailuresUpdate, StatusChange, StorePort};
use galaxy_runtime_store::{PgLeaderLock, Store, StoreConfig, StoreLeaderLock};
use galaxy_runtime_testkit::now_micros;
use galaxy_runtime_testkit::store::{sample_expected, sample_record};
use serde_json::json;

const RECORDS: usize = 300;

fn change(game_id: GameId, to: RuntimeStatus, message: &str) -> StatusChange {
    StatusChange {
        game_id,
        expected: sample_expected(game_id, RuntimeStatus::Running),
        to,
        message: message.to_owned(),
        at: now_micros(),
        event: None,
    }
}

/// A pass (probe failures in one batch, then `running → engine_unreachable` for each record)
/// and a stop job (`running → stopped` for each record, in the other order, from another
/// replica's pool) race. For every record exactly one status change wins and the other gets
/// `Conflict`; the row's version counts every successful write, so none was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_and_stop_job_race_without_lost_updates() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let pass_store = schema.store().await;
    let job_store = schema.store().await;
    let records: Vec<RuntimeRecord> = (0..RECORDS)
        .map(|_| sample_record(GameId::new_random(), RuntimeStatus::Running))
        .collect();
    for chunk in records.chunks(32) {
        for result in join_all(chunk.iter().map(|r| pass_store.create_record(r.clone()))).await {
            result.expect("creating a record");
        }
    }
    let ids: Vec<GameId> = records.iter().map(|r| r.game_id).collect();

    let pass = {
        let store = pass_store.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let updates: Vec<ProbeFailuresUpdate> = ids
                .iter()
                .map(|&game_id| ProbeFailuresUpdate {
                    game_id,
                    expected: sample_expected(game_id, RuntimeStatus::Running),
                    failures: 3,
                })
                .collect();
            let counted = store
                .set_probe_failures(&updates)
                .await
                .expect("probe batch");
            let mut outcomes = Vec::with_capacity(ids.len());
            for &game_id in &ids {
                let to = RuntimeStatus::EngineUnreachable;
                outcomes.push(
                    store
                        .transition_status(change(game_id, to, "timeout"))
                        .await,
                );
            }
            (counted, outcomes)
        })
    };
    let job = {
        let store = job_store.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(ids.len());
            for &game_id in ids.iter().rev() {
                let to = RuntimeStatus::Stopped;
                outcomes.push((
                    game_id,
                    store.transition_status(change(game_id, to, "stop")).await,
                ));
            }
            outcomes
        })
    };
    let (counted, pass_outcomes) = pass.await.expect("the pass task");
    let job_outcomes = job.await.expect("the stop job task");

    let counted: std::collections::HashSet<GameId> = counted.iter().map(|r| r.game_id).collect();
    let job_outcomes: std::collections::HashMap<GameId, PortResult<RuntimeRecord>> =
        job_outcomes.into_iter().collect();
    let stored: std::collections::HashMap<GameId, _> = pass_store
        .list_stored_records()
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.record.game_id, s))
        .collect();
    let (mut pass_wins, mut job_wins) = (0, 0);
    for (&game_id, pass_outcome) in ids.iter().zip(&pass_outcomes) {
        let job_outcome = &job_outcomes[&game_id];
        let winner = match (pass_outcome, job_outcome) {
            (Ok(won), Err(lost)) => {
                assert!(lost.is_conflict(), "the stop job lost with {lost:?}");
                pass_wins += 1;
                won
            }
            (Err(lost), Ok(won)) => {
                assert!(lost.is_conflict(), "the pass lost with {lost:?}");
                job_wins += 1;
                won
            }
            other => panic!("{game_id}: exactly one change must win, got {other:?}"),
        };
        let row = &stored[&game_id];
        assert_eq!(
            row.record.status, winner.status,
            "{game_id}: the winner's status is stored"
        );
        let probe_written = counted.contains(&game_id);
        assert_eq!(
            row.record.probe_failures,
            if probe_written { 3 } else { 0 },
            "{game_id}: the probe counter is there exactly when the batch said it wrote it"
        );
        // Insert + the winning status change + the probe update when it applied.
        assert_eq!(
            row.version,
            2 + i64::from(probe_written),
            "{game_id}: every successful write, and only those, reached the row"
        );
    }
    eprintln!("pass won {pass_wins}, stop job won {job_wins} of {RECORDS} races");
}

/// Two replicas run passes side by side, each applying only while it holds the leader lock:
/// exactly one applies; when it stops (releases), the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_applies() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let a = schema.store().await;
    let b = schema.store().await;
    let record = sample_record(GameId::new_random(), RuntimeStatus::Running);
    a.create_record(record.clone()).await.expect("create");
    let (lock_a, lock_b) = (a.leader_lock(), b.leader_lock());

    /// `rounds` passes that apply (publish a snapshot) only while `lock` is held.
    async fn passes(
        name: &str,
        store: &Store,
        lock: &StoreLeaderLock,
        rounds: usize,
        game_id: GameId,
    ) -> usize {
        let mut applied = 0;
        for round in 0..rounds {
            if lock.try_acquire().await.expect("try_acquire")
                && lock.is_held().await.expect("is_held")
            {
                let snapshot = Snapshot {
                    game_id,
                    state: json!({ "replica": name, "round": round }).into(),
                    observed_at: now_micros(),
                };
                store.publish_snapshots(&[snapshot]).await.expect("publish");
                applied += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        applied
    }

    let (applied_a, applied_b) = tokio::join!(
        passes("a", &a, &lock_a, 30, record.game_id),
        passes("b", &b, &lock_b, 30, record.game_id)
    );
    assert!(
        (applied_a, applied_b) == (30, 0) || (applied_a, applied_b) == (0, 30),
        "exactly one replica must apply, in every round (a applied {applied_a}, b {applied_b})"
    );

    // The leader stops (releases); the other replica takes over at its next pass.
    let (leader, follower, follower_store) = if applied_a > 0 {
        (&lock_a, &lock_b, &b)
    } else {
        (&lock_b, &lock_a, &a)
    };
    leader.release().await.expect("release");
    assert_eq!(
        passes("follower", follower_store, follower, 5, record.game_id).await,
        5,
        "the follower takes over once the leader released"
    );
    follower.release().await.expect("release");
}

/// A leader whose connection is cut loses the lock: `is_held` says so at once, and the other
/// replica can take it.
#[tokio::test]
async fn leader_lock_is_lost_with_its_connection() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let config = schema.config();
    let leader = PgLeaderLock::new(&config);
    let follower = PgLeaderLock::new(&config);
    assert!(leader.try_acquire().await.expect("acquire"));
    assert!(!follower.try_acquire().await.expect("contended"));

    // The server ends the leader's session (a network cut or an administrator would).
    let key = PgLeaderLock::key(config.schema.as_deref());
    let mut raw = schema.raw().await;
    raw.batch_execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid::bigint * 4294967296 + objid::bigint = {key}"
    ))
    .await
    .expect("terminating the leader's session");

    assert!(
        !leader.is_held().await.expect("is_held"),
        "a leader whose connection is gone must know it no longer leads"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !follower.try_acquire().await.expect("try_acquire") {
        assert!(Instant::now() < deadline, "the lock was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !leader.try_acquire().await.expect("try_acquire"),
        "the old leader must now follow"
    );
    follower.release().await.expect("release");
}

/// The variable that makes this test binary a lock holder in a child process.
const HOLDER_ENV: &str = "GALAXY_RUNTIME_STORE_TEST_LOCK_HOLDER";
const HELD_LINE: &str = "leader lock held";

/// Two processes: a child takes the lock and keeps it until it is killed; while it lives, this
/// process cannot take it; once it is killed (its session dies with it), this process can.
///
/// The child is this very test binary, running this same test with `HOLDER_ENV` set to the
/// schema, which makes it take the holder's part.
#[tokio::test]
async fn leader_lock_across_processes() {
    if let Ok(schema) = std::env::var(HOLDER_ENV) {
        // The child's part.
        let url = std::env::var("DATABASE_URL").expect("the parent passes DATABASE_URL");
        let config = StoreConfig {
            schema: Some(schema),
            ..StoreConfig::new(url)
        };
        let lock = PgLeaderLock::new(&config);
        assert!(
            lock.try_acquire().await.expect("try_acquire"),
            "the child takes the lock"
        );
        println!("{HELD_LINE}");
        // Bounded: the parent kills this process long before.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }

    let Some(schema) = PgSchema::new() else {
        return;
    };
    // The schema exists only once a store connected.
    let store = schema.store().await;
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "leader_lock_across_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, &schema.name)
        .env("DATABASE_URL", &schema.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the child process");
    let stdout = child.stdout.take().expect("the child's output");
    let held = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(HELD_LINE))
    });
    let held = tokio::time::timeout(Duration::from_secs(60), held)
        .await
        .expect("the child took too long")
        .expect("reading the child's output");
    assert!(held, "the child must report that it holds the lock");

    let lock = store.leader_lock();
    assert!(
        !lock.try_acquire().await.expect("try_acquire"),
        "another process holds the lock"
    );
    child.kill().expect("killing the child");
    child.wait().expect("reaping the child");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.try_acquire().await.expect("try_acquire") {
        assert!(
            Instant::now() < deadline,
            "the dead process's lock was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(lock.is_held().await.expect("is_held"));
    lock.release().await.expect("release");
}
