//! The store's write and read paths at fleet scale, on SQLite and (when `DATABASE_URL` is set)
//! PostgreSQL:
//!
//! - a pass's writes — 10 000 snapshot publications, 1 000 probe-failure counters and 1 000
//!   status changes — applied batched (one call per kind, 1 000 rows per statement) and row by
//!   row (one call, hence one statement and one transaction, per row), in the same run;
//! - 1 000 removals (`running` to `removed`) without and with their lobby event written in the
//!   same transaction (the outbox of CONTRACT §7), batched and row by row, on fresh records
//!   each round, the order of the two alternating from round to round;
//! - listing 100 000 records.
//!
//! ```sh
//! scripts/with-postgres.sh cargo bench -p galaxy-runtime-store --bench store
//! ```
//!
//! Each figure is the median of `ROUNDS` runs. Status changes are one compare-and-set call per
//! record in both modes (the port has no batch form for them): the batched pass keeps as many in
//! flight as the pool has connections, the row-by-row pass sends one after the other.

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use galaxy_runtime_model::{GameId, JobResult, RuntimeStatus, Snapshot, Timestamp};
use galaxy_runtime_ports::{ProbeFailuresUpdate, StatusChange, StorePort};
use galaxy_runtime_store::{Store, StoreConfig};
use galaxy_runtime_testkit::store::sample_expected;
use serde_json::json;

const LISTED: usize = 100_000;
const SNAPSHOTS: usize = 10_000;
const STATUS_CHANGES: usize = 1_000;
const ROUNDS: usize = 3;

#[derive(Default)]
struct Figures {
    snapshots: Vec<Duration>,
    probe_failures: Vec<Duration>,
    status_changes: Vec<Duration>,
}

impl Figures {
    fn pass(&self) -> Duration {
        median(&self.snapshots) + median(&self.probe_failures) + median(&self.status_changes)
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// SQL that inserts `LISTED` running records (and nothing else) in one statement, each on the
/// container the test kit's `sample_expected` expects, so that compare-and-set writes apply.
fn seed_sql(postgres: bool) -> String {
    if postgres {
        format!(
            "INSERT INTO runtime_records (game_id, status, current_container_id, \
             current_image_ref, current_engine_version, engine_endpoint, docker_network, \
             turn_schedule, status_changed_at) \
             SELECT g, 'running', 'container-' || replace(g::text, '-', ''), \
             'galaxy/engine:1.4', '1.4.0', 'http://galaxy-game-' || i || ':8080', 'galaxy', \
             '0 */6 * * *', now() \
             FROM (SELECT gen_random_uuid() AS g, i FROM generate_series(1, {LISTED}) AS i) AS s"
        )
    } else {
        // Lowercase hyphenated UUID text and fixed-width RFC 3339 text, as the store writes;
        // the ids are materialised so that the game id and the container id use the same
        // random value (SQLite evaluates a CTE's randomblob once per use otherwise).
        let now = "2026-11-27T12:00:00.000000Z";
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LISTED}), \
             ids(i, h) AS MATERIALIZED (SELECT i, lower(hex(randomblob(16))) FROM n) \
             INSERT INTO runtime_records (game_id, status, current_container_id, \
             current_image_ref, current_engine_version, engine_endpoint, docker_network, \
             turn_schedule, status_changed_at, created_at, updated_at) \
             SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' \
             || substr(h, 17, 4) || '-' || substr(h, 21, 12), 'running', 'container-' || h, \
             'galaxy/engine:1.4', '1.4.0', 'http://galaxy-game-' || i || ':8080', 'galaxy', \
             '0 */6 * * *', '{now}', '{now}', '{now}' FROM ids"
        )
    }
}

fn snapshots(ids: &[GameId], round: usize) -> Vec<Snapshot> {
    let at = Timestamp::now();
    ids.iter()
        .map(|&game_id| Snapshot {
            game_id,
            state: json!({
                "turn": round,
                "players": [{"name": "a", "score": 12}, {"name": "b", "score": 7}],
                "finished": false,
            })
            .into(),
            observed_at: at,
        })
        .collect()
}

fn probe_updates(ids: &[GameId], round: usize) -> Vec<ProbeFailuresUpdate> {
    ids.iter()
        .map(|&game_id| ProbeFailuresUpdate {
            game_id,
            expected: sample_expected(game_id, RuntimeStatus::Running),
            failures: u32::try_from(round % 3 + 1).unwrap_or(1),
        })
        .collect()
}

/// Removals of `ids`, with their lobby event or without.
fn removals(ids: &[GameId], with_events: bool) -> Vec<StatusChange> {
    ids.iter()
        .map(|&game_id| StatusChange {
            game_id,
            expected: sample_expected(game_id, RuntimeStatus::Running),
            to: RuntimeStatus::Removed,
            message: "container disappeared".to_owned(),
            at: Timestamp::now(),
            event: with_events.then(JobResult::container_disappeared),
        })
        .collect()
}

/// Applies `changes` batched (as many in flight as the pool has connections) or row by row.
async fn apply(store: &Store, changes: Vec<StatusChange>, batched: bool) -> Duration {
    timed(async {
        if batched {
            let in_flight = store.config().max_connections;
            futures_util::stream::iter(changes)
                .map(|change| store.transition_status(change))
                .buffer_unordered(in_flight)
                .for_each(|result| {
                    result.expect("removal");
                    std::future::ready(())
                })
                .await;
        } else {
            for change in changes {
                store.transition_status(change).await.expect("removal");
            }
        }
    })
    .await
}

/// Round `round` moves the records one way, the next one back, so every change applies.
fn status_changes(ids: &[GameId], round: usize) -> Vec<StatusChange> {
    let (from, to) = if round.is_multiple_of(2) {
        (RuntimeStatus::Running, RuntimeStatus::Stopped)
    } else {
        (RuntimeStatus::Stopped, RuntimeStatus::Running)
    };
    ids.iter()
        .map(|&game_id| StatusChange {
            game_id,
            expected: sample_expected(game_id, from),
            to,
            message: "bench".to_owned(),
            at: Timestamp::now(),
            event: None,
        })
        .collect()
}

async fn timed<F: Future<Output = ()>>(work: F) -> Duration {
    let start = Instant::now();
    work.await;
    start.elapsed()
}

async fn run(label: &str, store: &Store, postgres: bool, seed: impl Future<Output = ()>) {
    seed.await;
    let mut list = Vec::new();
    let mut records = Vec::new();
    for _ in 0..ROUNDS {
        list.push(
            timed(async {
                records = store.list_records().await.expect("list_records");
            })
            .await,
        );
    }
    assert_eq!(records.len(), LISTED);
    let ids: Vec<GameId> = records.iter().map(|r| r.game_id).collect();
    // Separate records for each mode, so neither works on rows the other just wrote.
    let (batched_ids, single_ids) = ids.split_at(LISTED / 2);
    let probe_ids = |ids: &[GameId]| ids[SNAPSHOTS..SNAPSHOTS + STATUS_CHANGES].to_vec();
    let status_ids = |ids: &[GameId]| ids[SNAPSHOTS + STATUS_CHANGES..][..STATUS_CHANGES].to_vec();

    let mut batched = Figures::default();
    let mut single = Figures::default();
    for round in 0..ROUNDS {
        // Batched: one call per kind of write.
        let all = snapshots(&batched_ids[..SNAPSHOTS], round);
        batched
            .snapshots
            .push(timed(async { store.publish_snapshots(&all).await.expect("publish") }).await);
        let updates = probe_updates(&probe_ids(batched_ids), round);
        batched.probe_failures.push(
            timed(async {
                let written = store.set_probe_failures(&updates).await.expect("probe");
                assert_eq!(written.len(), STATUS_CHANGES);
            })
            .await,
        );
        // Status changes have no batch form: they are compare-and-sets of one record each, so
        // the batched pass sends them concurrently, as many in flight as the pool has
        // connections.
        let changes = status_changes(&status_ids(batched_ids), round);
        batched.status_changes.push(
            timed(async {
                let in_flight = store.config().max_connections;
                futures_util::stream::iter(changes)
                    .map(|change| store.transition_status(change))
                    .buffer_unordered(in_flight)
                    .for_each(|result| {
                        result.expect("transition");
                        std::future::ready(())
                    })
                    .await;
            })
            .await,
        );

        // Row by row: one call per row.
        let all = snapshots(&single_ids[..SNAPSHOTS], round);
        single.snapshots.push(
            timed(async {
                for snapshot in all.chunks(1) {
                    store.publish_snapshots(snapshot).await.expect("publish");
                }
            })
            .await,
        );
        let updates = probe_updates(&probe_ids(single_ids), round);
        single.probe_failures.push(
            timed(async {
                for update in updates.chunks(1) {
                    let written = store.set_probe_failures(update).await.expect("probe");
                    assert_eq!(written.len(), 1);
                }
            })
            .await,
        );
        let changes = status_changes(&status_ids(single_ids), round);
        single.status_changes.push(
            timed(async {
                for change in changes {
                    store.transition_status(change).await.expect("transition");
                }
            })
            .await,
        );
    }

    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!("\n## {label} ({backend}), median of {ROUNDS} rounds\n");
    println!("| what | batched | row by row | speed-up |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |what: &str, b: Duration, s: Duration| {
        println!(
            "| {what} | {} | {} | {:.1}x |",
            ms(b),
            ms(s),
            s.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    };
    row(
        &format!("{SNAPSHOTS} snapshot publications"),
        median(&batched.snapshots),
        median(&single.snapshots),
    );
    row(
        &format!("{STATUS_CHANGES} probe-failure counters"),
        median(&batched.probe_failures),
        median(&single.probe_failures),
    );
    row(
        &format!(
            "{STATUS_CHANGES} status changes (one compare-and-set call each; batched: 8 in flight)"
        ),
        median(&batched.status_changes),
        median(&single.status_changes),
    );
    row("the whole pass", batched.pass(), single.pass());
    println!("\nlist_records of {LISTED} records: {}", ms(median(&list)));

    // Removals, without and with their event, on records no other measurement touched: each
    // record can be removed once only (removed is terminal).
    println!("\n| {STATUS_CHANGES} removals | without events | with events | with / without |");
    println!("| --- | ---: | ---: | ---: |");
    let first_free = SNAPSHOTS + 2 * STATUS_CHANGES;
    for (mode, batched, ids) in [
        ("batched (8 in flight)", true, batched_ids),
        ("row by row", false, single_ids),
    ] {
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let base = first_free + round * 2 * STATUS_CHANGES;
            let plain = removals(&ids[base..][..STATUS_CHANGES], false);
            let evented = removals(&ids[base + STATUS_CHANGES..][..STATUS_CHANGES], true);
            if round.is_multiple_of(2) {
                without.push(apply(store, plain, batched).await);
                with.push(apply(store, evented, batched).await);
            } else {
                with.push(apply(store, evented, batched).await);
                without.push(apply(store, plain, batched).await);
            }
        }
        let (without, with) = (median(&without), median(&with));
        println!(
            "| {mode} | {} | {} | {:.2}x |",
            ms(without),
            ms(with),
            with.as_secs_f64() / without.as_secs_f64().max(1e-9)
        );
    }
}

fn main() {
    // Cargo passes `--bench`; any other argument is a filter: `sqlite` or `postgres`.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        if wanted("sqlite") {
            let dir =
                std::env::temp_dir().join(format!("galaxy-runtime-bench-{}", GameId::new_random()));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let path = dir.join("bench.db");
            let store = Store::connect(&StoreConfig::new(format!("sqlite://{}", path.display())))
                .await
                .expect("opening SQLite");
            let seed = async {
                use diesel::Connection;
                use diesel::connection::SimpleConnection;
                let mut raw = diesel::SqliteConnection::establish(path.to_str().expect("utf-8"))
                    .expect("raw SQLite");
                raw.batch_execute(&seed_sql(false)).expect("seeding SQLite");
            };
            run("sqlite", &store, false, seed).await;
            store.close();
            let _ = std::fs::remove_dir_all(&dir);
        }
        if wanted("postgres") {
            let Ok(url) = std::env::var("DATABASE_URL") else {
                println!(
                    "\nPostgreSQL skipped: DATABASE_URL is not set (run \
                     `scripts/with-postgres.sh cargo bench -p galaxy-runtime-store --bench store`)"
                );
                return;
            };
            let schema = format!("bench_{}", GameId::new_random().as_uuid().simple());
            let config = StoreConfig {
                schema: Some(schema.clone()),
                ..StoreConfig::new(url.clone())
            };
            let store = Store::connect(&config)
                .await
                .expect("connecting to PostgreSQL");
            let seed = async {
                let mut raw = AsyncPgConnection::establish(&url)
                    .await
                    .expect("raw PostgreSQL");
                raw.batch_execute(&format!(
                    "SET search_path TO \"{schema}\"; {}; ANALYZE runtime_records",
                    seed_sql(true)
                ))
                .await
                .expect("seeding PostgreSQL");
            };
            run("postgres", &store, true, seed).await;
            store.close();
            if let Ok(mut raw) = AsyncPgConnection::establish(&url).await {
                let _ = raw
                    .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .await;
            }
        }
    });
}
