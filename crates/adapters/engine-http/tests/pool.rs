//! The engine client's connection pool against real HTTP servers on 127.0.0.1: the sockets it
//! keeps open between probes stay within the budget, per engine and in all, however many
//! engines it probes; counted on the servers' side (connections accepted and not yet closed).

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestServer};
use galaxy_runtime_engine_http::{EngineHttpConfig, HttpEngine};
use galaxy_runtime_ports::EnginePort;
use galaxy_runtime_testkit::engine::EngineBehaviour;
use serde_json::json;

fn engine(max_idle: usize, max_idle_per_engine: usize, idle_timeout: Duration) -> HttpEngine {
    HttpEngine::new(EngineHttpConfig {
        timeout: Duration::from_secs(2),
        idle_timeout,
        max_idle,
        max_idle_per_engine,
        ..EngineHttpConfig::default()
    })
}

async fn servers(n: usize) -> Vec<TestServer> {
    let mut servers = Vec::new();
    for turn in 0..n {
        servers.push(
            TestServer::start(Reply::Engine(EngineBehaviour::Json(json!({"turn": turn})))).await,
        );
    }
    servers
}

/// Connections open on all these servers.
fn open(servers: &[TestServer]) -> usize {
    servers.iter().map(|s| s.seen.open()).sum()
}

/// Polls `count` until it equals `want` or five seconds pass, and returns its last value: a
/// closed socket reaches the server's side a moment after the client drops it.
async fn settles_at(count: impl Fn() -> usize, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = count();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Probes every server at once; every probe must succeed.
async fn probe_all(engine: &HttpEngine, servers: &[TestServer]) {
    let mut tasks = tokio::task::JoinSet::new();
    for server in servers {
        let engine = engine.clone();
        let endpoint = server.endpoint.clone();
        tasks.spawn(async move { engine.status(&endpoint).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("probe task").expect("probe succeeds");
    }
}

#[tokio::test]
async fn more_engines_than_the_budget_keep_only_the_budget_open() {
    let servers = servers(12).await;
    let engine = engine(4, 1, Duration::from_secs(60));

    probe_all(&engine, &servers).await;
    assert_eq!(
        settles_at(|| open(&servers), 4).await,
        4,
        "12 engines probed, 4 idle connections allowed in all"
    );
    assert_eq!(engine.pooled_engines(), 4);
    let closing: usize = servers.iter().map(|s| s.seen.closing_requests()).sum();
    assert_eq!(
        closing, 8,
        "the engines beyond the budget are asked to close"
    );

    // A second round: the four pooled engines are probed on their kept connection, the others
    // on a new one each time, and the budget still holds.
    for server in &servers {
        engine
            .status(&server.endpoint)
            .await
            .expect("probe succeeds");
    }
    let reused = servers.iter().filter(|s| s.seen.connections() == 1).count();
    let reconnected = servers.iter().filter(|s| s.seen.connections() == 2).count();
    assert_eq!((reused, reconnected), (4, 8));
    assert_eq!(settles_at(|| open(&servers), 4).await, 4);
}

#[tokio::test]
async fn concurrent_probes_of_one_engine_keep_at_most_its_share() {
    let server = TestServer::start(Reply::LateJson(
        Duration::from_millis(200),
        json!({"turn": 1}),
    ))
    .await;
    let engine = engine(8, 2, Duration::from_secs(60));
    let six: Vec<&TestServer> = std::iter::repeat_n(&server, 6).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for server in six {
        let engine = engine.clone();
        let endpoint = server.endpoint.clone();
        tasks.spawn(async move { engine.status(&endpoint).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("probe task").expect("probe succeeds");
    }
    assert_eq!(
        server.seen.connections(),
        6,
        "the six probes overlapped, each on a connection of its own"
    );
    assert_eq!(
        settles_at(|| server.seen.open(), 2).await,
        2,
        "two idle connections per engine at most"
    );
    assert_eq!(server.seen.closing_requests(), 0, "the engine has a place");
}

#[tokio::test]
async fn an_engine_left_unprobed_for_the_idle_timeout_gives_its_place_up() {
    let idle_timeout = Duration::from_millis(300);
    let first = TestServer::start(Reply::Engine(EngineBehaviour::Json(json!({})))).await;
    let second = TestServer::start(Reply::Engine(EngineBehaviour::Json(json!({})))).await;
    let engine = engine(1, 1, idle_timeout);

    engine
        .status(&first.endpoint)
        .await
        .expect("probe succeeds");
    engine
        .status(&second.endpoint)
        .await
        .expect("probe succeeds");
    assert_eq!(
        settles_at(|| first.seen.open(), 1).await,
        1,
        "the first keeps the place"
    );
    assert_eq!(
        settles_at(|| second.seen.open(), 0).await,
        0,
        "the second closes"
    );
    assert_eq!(second.seen.closing_requests(), 1);

    tokio::time::sleep(idle_timeout + Duration::from_millis(200)).await;
    engine
        .status(&second.endpoint)
        .await
        .expect("probe succeeds");
    engine
        .status(&second.endpoint)
        .await
        .expect("probe succeeds");
    assert_eq!(
        second.seen.connections(),
        2,
        "once the first's place expired, the second keeps its new connection"
    );
    assert_eq!(second.seen.closing_requests(), 1);
    assert_eq!(settles_at(|| second.seen.open(), 1).await, 1);
    assert_eq!(settles_at(|| first.seen.open(), 0).await, 0);
    assert_eq!(engine.pooled_engines(), 1);
}

#[tokio::test]
async fn a_budget_of_zero_keeps_no_connection() {
    for (max_idle, per_engine) in [(0, 1), (16, 0)] {
        let server = TestServer::start(Reply::Engine(EngineBehaviour::Json(json!({})))).await;
        let engine = engine(max_idle, per_engine, Duration::from_secs(60));
        for _ in 0..3 {
            engine
                .status(&server.endpoint)
                .await
                .expect("probe succeeds");
        }
        assert_eq!(server.seen.connections(), 3, "({max_idle}, {per_engine})");
        assert_eq!(
            server.seen.closing_requests(),
            3,
            "({max_idle}, {per_engine})"
        );
        assert_eq!(settles_at(|| server.seen.open(), 0).await, 0);
        assert_eq!(engine.pooled_engines(), 0);
    }
}
