//! The relay's throughput: lobby events committed by the store (SQLite, and PostgreSQL when
//! `DATABASE_URL` is set) delivered to a real webhook on loopback, with per-game order checked
//! afterwards. Baselines in the same run: the same relay to a lobby that accepts at once (what
//! the store's claims and marks cost alone), and the webhook client alone posting the same
//! events without any store (what HTTP on loopback costs alone).
//!
//! ```sh
//! scripts/with-postgres.sh cargo bench -p galaxy-runtime-cli --bench relay
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use galaxy_runtime_memory::{MemoryDocker, MemoryEngine};
use galaxy_runtime_model::{Config, EventId, GameId, JobResult, LobbyEvent, RuntimeStatus};
use galaxy_runtime_ports::noop::{NoCache, NoScheduler};
use galaxy_runtime_ports::{
    EventFilter, LobbyPort, OutboxPort, PortResult, StatusChange, StorePort,
};
use galaxy_runtime_reconciler::Reconciler;
use galaxy_runtime_store::{Store, StoreConfig};
use galaxy_runtime_testkit::store::{sample_expected, sample_record};
use galaxy_runtime_webhook::test_server::{Answer, WebhookServer};
use galaxy_runtime_webhook::{WebhookConfig, WebhookLobby, WebhookSecret};

const GAMES: usize = 500;
const EVENTS_PER_GAME: usize = 8;

/// A lobby that accepts every event at once.
struct AcceptingLobby;

#[async_trait]
impl LobbyPort for AcceptingLobby {
    async fn on_runtime_job_result(&self, _event: &LobbyEvent) -> PortResult<()> {
        Ok(())
    }
}

fn config() -> Config {
    Config {
        lobby_statuses: vec![RuntimeStatus::Running, RuntimeStatus::Stopped],
        ..Config::default()
    }
}

/// `GAMES` records, each moved `EVENTS_PER_GAME` times between running and stopped, each change
/// with its event: the events, in commit order, wait in the outbox.
async fn commit_events(store: &Store) {
    let games: Vec<GameId> = (0..GAMES).map(|_| GameId::new_random()).collect();
    for &game in &games {
        store
            .create_record(sample_record(game, RuntimeStatus::Running))
            .await
            .expect("create_record");
    }
    for step in 0..EVENTS_PER_GAME {
        let (from, to) = if step.is_multiple_of(2) {
            (RuntimeStatus::Running, RuntimeStatus::Stopped)
        } else {
            (RuntimeStatus::Stopped, RuntimeStatus::Running)
        };
        futures_util::stream::iter(games.iter().map(|&game_id| StatusChange {
            game_id,
            expected: sample_expected(game_id, from),
            to,
            message: format!("bench step {step}"),
            at: galaxy_runtime_model::Timestamp::now(),
            event: Some(JobResult {
                op: galaxy_runtime_model::Op::Reconcile,
                status: to,
                message: format!("bench step {step}"),
            }),
        }))
        .map(|change| store.transition_status(change))
        .buffer_unordered(store.config().max_connections)
        .for_each(|r| {
            r.expect("transition_status");
            std::future::ready(())
        })
        .await;
    }
}

fn reconciler(store: &Store, lobby: Arc<dyn LobbyPort>) -> Reconciler {
    let store = Arc::new(store.clone());
    Reconciler::builder()
        .docker(Arc::new(MemoryDocker::new()))
        .store(store.clone())
        .outbox(store)
        .engine(Arc::new(MemoryEngine::new()))
        .lobby(lobby)
        .cache(Arc::new(NoCache))
        .scheduler(Arc::new(NoScheduler))
        .config(config())
        .build()
        .expect("every port given")
}

/// Delivers everything due; returns the time it took and checks that nothing is left.
async fn deliver_all(store: &Store, lobby: Arc<dyn LobbyPort>) -> Duration {
    let reconciler = reconciler(store, lobby);
    let started = Instant::now();
    let mut delivered = 0;
    while delivered < GAMES * EVENTS_PER_GAME {
        let report = reconciler.deliver_events().await.expect("a delivery round");
        assert_eq!(report.failed, 0, "no delivery may fail here");
        if report.delivered == 0 {
            break;
        }
        delivered += report.delivered as usize;
    }
    let took = started.elapsed();
    assert_eq!(delivered, GAMES * EVENTS_PER_GAME, "every event delivered");
    took
}

/// The commit order of each game's events, from the outbox.
async fn commit_order(store: &Store) -> BTreeMap<GameId, Vec<EventId>> {
    let listed = store
        .list_events(&EventFilter {
            limit: GAMES * EVENTS_PER_GAME * 4,
            ..EventFilter::default()
        })
        .await
        .expect("list_events");
    let mut order: BTreeMap<GameId, Vec<EventId>> = BTreeMap::new();
    for entry in listed.iter().filter(|e| e.is_pending()) {
        order
            .entry(entry.event.game_id)
            .or_default()
            .push(entry.event.event_id);
    }
    order
}

fn rate(events: usize, took: Duration) -> String {
    format!(
        "{:.0} events/s",
        events as f64 / took.as_secs_f64().max(1e-9)
    )
}

async fn run(label: &str, connect: impl AsyncFn() -> Store) {
    let events = GAMES * EVENTS_PER_GAME;
    let server = WebhookServer::start(Answer::Status(204)).await;
    let webhook = |url: &str| {
        let config = WebhookConfig::new(url, &config())
            .expect("the test server's URL")
            .with_secret(WebhookSecret::new("bench secret").expect("a secret"));
        Arc::new(WebhookLobby::new(config))
    };

    // The relay to a lobby that accepts at once: the store's share.
    let store = connect().await;
    commit_events(&store).await;
    let baseline = deliver_all(&store, Arc::new(AcceptingLobby)).await;
    store.close();

    // The relay to the webhook.
    let store = connect().await;
    commit_events(&store).await;
    let order = commit_order(&store).await;
    let relayed = deliver_all(&store, webhook(&server.url)).await;
    store.close();
    let mut received: BTreeMap<GameId, Vec<EventId>> = BTreeMap::new();
    for event in server.accepted_events() {
        received
            .entry(event.game_id)
            .or_default()
            .push(event.event_id);
    }
    assert_eq!(
        received, order,
        "every event once, in commit order per game"
    );

    // The webhook client alone, as many in flight as the relay keeps: HTTP's share.
    let lone = WebhookServer::start(Answer::Status(204)).await;
    let client = webhook(&lone.url);
    let sample: Vec<LobbyEvent> = (0..events)
        .map(|i| LobbyEvent {
            event_id: EventId::new_random(),
            game_id: GameId::new_random(),
            result: JobResult::container_disappeared(),
            at: galaxy_runtime_model::Timestamp::from_unix_seconds(1_700_000_000 + i as i64)
                .expect("a time"),
        })
        .collect();
    let started = Instant::now();
    futures_util::stream::iter(&sample)
        .map(|event| client.on_runtime_job_result(event))
        .buffer_unordered(64)
        .for_each(|r| {
            r.expect("the webhook accepts");
            std::future::ready(())
        })
        .await;
    let http_only = started.elapsed();

    println!("\n## {label}: {events} events of {GAMES} games ({EVENTS_PER_GAME} each)\n");
    println!("| what | time | throughput | against the relay to the webhook |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |what: &str, took: Duration| {
        println!(
            "| {what} | {:.0} ms | {} | {:.2}x |",
            took.as_secs_f64() * 1000.0,
            rate(events, took),
            relayed.as_secs_f64() / took.as_secs_f64().max(1e-9)
        );
    };
    row("relay to the webhook on loopback (signed)", relayed);
    row("relay to a lobby that accepts at once", baseline);
    row("webhook client alone, 64 in flight, no store", http_only);
    println!("\nper-game order: kept for all {GAMES} games");
}

fn main() {
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
            let dir = std::env::temp_dir().join(format!(
                "galaxy-runtime-relay-bench-{}",
                GameId::new_random()
            ));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let counter = std::sync::atomic::AtomicUsize::new(0);
            run("SQLite", async || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path = dir.join(format!("relay-{n}.db"));
                Store::connect(&StoreConfig::new(format!("sqlite://{}", path.display())))
                    .await
                    .expect("opening SQLite")
            })
            .await;
            let _ = std::fs::remove_dir_all(&dir);
        }
        if wanted("postgres") {
            let Ok(url) = std::env::var("DATABASE_URL") else {
                println!(
                    "\nPostgreSQL skipped: DATABASE_URL is not set (run \
                     `scripts/with-postgres.sh cargo bench -p galaxy-runtime-cli --bench relay`)"
                );
                return;
            };
            let counter = std::sync::atomic::AtomicUsize::new(0);
            let schemas = std::sync::Mutex::new(Vec::new());
            run("PostgreSQL", async || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let schema = format!(
                    "relay_bench_{}_{n}",
                    GameId::new_random().as_uuid().simple()
                );
                schemas.lock().expect("schemas").push(schema.clone());
                Store::connect(&StoreConfig {
                    schema: Some(schema),
                    ..StoreConfig::new(url.clone())
                })
                .await
                .expect("connecting to PostgreSQL")
            })
            .await;
            for schema in schemas.lock().expect("schemas").iter() {
                let _ = std::process::Command::new("psql")
                    .arg(&url)
                    .args([
                        "-q",
                        "-c",
                        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                    ])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    });
}
