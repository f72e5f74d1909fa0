//! The engine HTTP adapter against a real HTTP server on 127.0.0.1: every kind of answer an
//! engine may give, each the right failure within the timeout, and connection reuse.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, ServerFixture, TestServer, refused_endpoint};
use galaxy_runtime_engine_http::{EngineHttpConfig, HttpEngine};
use galaxy_runtime_model::Config;
use galaxy_runtime_ports::{EnginePort, ErrorKind, PortError};
use galaxy_runtime_testkit::engine::EngineBehaviour;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_millis(500);

fn engine() -> HttpEngine {
    HttpEngine::new(EngineHttpConfig {
        timeout: TIMEOUT,
        ..EngineHttpConfig::default()
    })
}

/// Probes `endpoint` and returns the failure and how long it took, panicking on success.
async fn failure(engine: &HttpEngine, endpoint: &str) -> (PortError, Duration) {
    let start = Instant::now();
    let result = engine.status(endpoint).await;
    let took = start.elapsed();
    match result {
        Ok(value) => panic!("expected a failure from {endpoint}, got {value}"),
        Err(error) => {
            let text = error.to_string();
            assert!(
                !text.chars().any(char::is_control),
                "messages carry no control characters: {text:?}"
            );
            (error, took)
        }
    }
}

fn engine_answering(behaviour: EngineBehaviour) -> Reply {
    Reply::Engine(behaviour)
}

#[tokio::test]
async fn success_returns_the_json_as_is() {
    let value = json!({"turn": 12, "players": [{"name": "Zoë"}], "winner": null});
    let server = TestServer::start(engine_answering(EngineBehaviour::Json(value.clone()))).await;
    let got = engine()
        .status(&server.endpoint)
        .await
        .expect("probe succeeds");
    assert_eq!(got, value);
    assert_eq!(server.seen.paths(), ["/status"]);
}

#[tokio::test]
async fn one_connection_serves_many_probes() {
    let server =
        TestServer::start(engine_answering(EngineBehaviour::Json(json!({"turn": 1})))).await;
    let engine = engine();
    for _ in 0..5 {
        engine
            .status(&server.endpoint)
            .await
            .expect("probe succeeds");
    }
    // A clone shares the pool: the executor may hand clones to its probe tasks.
    engine
        .clone()
        .status(&server.endpoint)
        .await
        .expect("probe succeeds");
    assert_eq!(server.seen.requests(), 6);
    assert_eq!(
        server.seen.connections(),
        1,
        "connections are reused across probes"
    );
}

#[tokio::test]
async fn status_path_comes_from_the_configuration() {
    let server = TestServer::start(engine_answering(EngineBehaviour::Json(json!({})))).await;
    let mut config = Config::default();
    config
        .set("engine_status_path", "/api/v1/state")
        .expect("valid path");
    let engine = HttpEngine::from_config(&config);
    engine
        .status(&format!("{}/", server.endpoint))
        .await
        .expect("probe succeeds");
    assert_eq!(server.seen.paths(), ["/api/v1/state"]);
}

#[tokio::test]
async fn slow_headers_time_out_on_time() {
    let server =
        TestServer::start(engine_answering(EngineBehaviour::SlowHeaders(TIMEOUT * 20))).await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert_eq!(
        error.to_string(),
        format!("timeout after 500ms: GET {}/status", server.endpoint)
    );
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(400),
        "took {took:?}"
    );
}

#[tokio::test]
async fn slow_body_times_out_on_time() {
    let server = TestServer::start(engine_answering(EngineBehaviour::SlowBody(TIMEOUT * 20))).await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(
        error.to_string().starts_with("timeout after 500ms: GET "),
        "{error}"
    );
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(400),
        "took {took:?}"
    );
}

#[tokio::test]
async fn server_error_says_the_status() {
    let server = TestServer::start(engine_answering(EngineBehaviour::Status(
        500,
        "boom".to_owned(),
    )))
    .await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_retryable());
    assert_eq!(
        error.to_string(),
        format!(
            "unavailable: HTTP 500 Internal Server Error from GET {}/status",
            server.endpoint
        )
    );
    assert!(took < TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn client_error_status_is_invalid() {
    let server = TestServer::start(engine_answering(EngineBehaviour::Status(
        404,
        String::new(),
    )))
    .await;
    let (error, _) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("HTTP 404 Not Found"), "{error}");
}

#[tokio::test]
async fn not_json_says_so_with_an_escaped_excerpt() {
    let server = TestServer::start(engine_answering(EngineBehaviour::NotJson)).await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with("invalid: not JSON: body of GET "),
        "{text}"
    );
    assert!(
        text.contains(r#"it starts with "<html>\u{1b}[31mnot json\u{d}\u{a}FAKE"#),
        "{text}"
    );
    assert!(took < TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn a_two_mebibyte_body_is_too_large() {
    let server = TestServer::start(engine_answering(EngineBehaviour::Oversized(
        2 * 1024 * 1024,
    )))
    .await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("too large"), "{error}");
    assert!(error.to_string().contains("2097152 bytes"), "{error}");
    assert!(
        took < TIMEOUT,
        "refused from the announced length at once, took {took:?}"
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap() {
    let server = TestServer::start(Reply::EndlessChunked).await;
    let engine = HttpEngine::new(EngineHttpConfig {
        timeout: Duration::from_secs(5),
        max_body_bytes: 256 * 1024,
        ..EngineHttpConfig::default()
    });
    let (error, took) = failure(&engine, &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid: too large: body of GET {}/status is over the limit of 262144 bytes",
            server.endpoint
        )
    );
    assert!(
        took < Duration::from_secs(2),
        "reading stopped at the cap, took {took:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target =
        TestServer::start(engine_answering(EngineBehaviour::Json(json!({"turn": 1})))).await;
    let location = format!("{}/status", target.endpoint);
    let server = TestServer::start(Reply::RedirectTo(location.clone())).await;
    let (error, took) = failure(&engine(), &server.endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid: redirect to {location} not followed: HTTP 302 from GET {}/status",
            server.endpoint
        )
    );
    assert_eq!(
        target.seen.requests(),
        0,
        "the redirect target was never asked"
    );
    assert!(took < TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn refused_connection_names_the_endpoint() {
    let endpoint = refused_endpoint().await;
    let (error, took) = failure(&engine(), &endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert_eq!(
        error.to_string(),
        format!("unavailable: connection refused by engine endpoint {endpoint}")
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
    assert!(took < TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn unresolvable_host_cannot_connect() {
    // `.invalid` never resolves (RFC 2606), with or without network access.
    let endpoint = "http://galaxy-game-nowhere.invalid:8080";
    let (error, _) = failure(&engine(), endpoint).await;
    assert!(
        matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{error}"
    );
    assert!(error.to_string().contains(endpoint), "{error}");
}

#[tokio::test]
async fn concurrent_probes_share_one_client() {
    let server =
        TestServer::start(engine_answering(EngineBehaviour::Json(json!({"turn": 3})))).await;
    let engine = engine();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let engine = engine.clone();
        let endpoint = server.endpoint.clone();
        tasks.spawn(async move { engine.status(&endpoint).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.expect("task").expect("probe"), json!({"turn": 3}));
    }
    assert_eq!(server.seen.requests(), 16);
    assert!(server.seen.connections() <= 16);
}

#[tokio::test]
async fn conformance() {
    let engine = engine();
    galaxy_runtime_testkit::engine::run_all(&engine, &ServerFixture::default(), TIMEOUT).await;
}
