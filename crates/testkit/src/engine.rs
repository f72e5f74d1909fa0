//! The conformance suite of [`EnginePort`].
//!
//! The adapter's test supplies an [`EngineFixture`] that serves one [`EngineBehaviour`] at a
//! fresh endpoint (a local HTTP server for the HTTP adapter, a configured fake for the memory
//! one) and the timeout the port under test was configured with. The suite asks the port for
//! the status at that endpoint and checks what comes back.
//!
//! # What a failure must say
//!
//! The executor turns a failed probe into the message of a status change (`engine_unreachable`)
//! and a log line, so each failure must say what happened. The checks are lenient about the
//! wording (case is ignored) but each needs one of these words:
//!
//! | behaviour | error kind | the message contains |
//! | --- | --- | --- |
//! | [`EngineBehaviour::Status`] | any | the status code, such as `500` |
//! | [`EngineBehaviour::NotJson`] | `Invalid` | `json` |
//! | [`EngineBehaviour::SlowHeaders`], [`EngineBehaviour::SlowBody`] | `Timeout` | `timeout` or `timed out` |
//! | [`EngineBehaviour::Oversized`] | `Invalid` | `too large`, `limit` or `exceed` |
//! | [`EngineBehaviour::Redirect`] | any | `redirect` or `302` |
//! | [`EngineBehaviour::Refused`] | `Unavailable` | `refused` or `connect` |
//!
//! Every failure must come back within the timeout plus [`slack`]: a port never waits longer than
//! it was told to, whatever the engine does. A success returns the engine's JSON as is.
//!
//! # Writing the fixture
//!
//! For the HTTP adapter, the fixture binds a `127.0.0.1:0` listener per behaviour and answers
//! every request on it as the variant's docs say; for [`EngineBehaviour::Refused`] it binds a
//! port, notes its number and closes it again. With the in-memory engine it configures
//! endpoints:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::Duration;
//!
//! use async_trait::async_trait;
//! use galaxy_runtime_memory::{EngineAnswer, MemoryEngine};
//! use galaxy_runtime_ports::PortResult;
//! use galaxy_runtime_testkit::engine::{self, EngineBehaviour, EngineFixture};
//!
//! struct Fixture {
//!     engine: MemoryEngine,
//!     next: AtomicU64,
//! }
//!
//! #[async_trait]
//! impl EngineFixture for Fixture {
//!     async fn serve(&self, behaviour: EngineBehaviour) -> PortResult<String> {
//!         let endpoint = format!("http://engine-{}:8080", self.next.fetch_add(1, Ordering::SeqCst));
//!         let answer = match behaviour {
//!             EngineBehaviour::Json(value) => EngineAnswer::Json(value),
//!             EngineBehaviour::Status(code, body) => EngineAnswer::Status(code, body),
//!             EngineBehaviour::NotJson => EngineAnswer::Body("<html></html>".into()),
//!             EngineBehaviour::SlowHeaders(delay) | EngineBehaviour::SlowBody(delay) => {
//!                 self.engine.set_latency(&endpoint, delay);
//!                 EngineAnswer::Json(serde_json::json!({}))
//!             }
//!             EngineBehaviour::Oversized(bytes) => EngineAnswer::Body(format!("\"{}\"", "x".repeat(bytes))),
//!             EngineBehaviour::Redirect => EngineAnswer::Status(302, String::new()),
//!             EngineBehaviour::Refused => EngineAnswer::Refused,
//!         };
//!         self.engine.set_answer(&endpoint, answer);
//!         Ok(endpoint)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let timeout = Duration::from_millis(100);
//! let fixture = Fixture { engine: MemoryEngine::new(), next: AtomicU64::new(0) };
//! fixture.engine.set_timeout(Some(timeout));
//! engine::run_all(&fixture.engine, &fixture, timeout).await;
//! # }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_ports::{EnginePort, ErrorKind, PortError, PortResult};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::expect_ok;

/// The body size [`run_all`] asks [`EngineBehaviour::Oversized`] for: 4 MiB, four times the
/// default `engine_max_body_bytes`. A port under test must refuse bodies of this size.
pub const OVERSIZED_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the engine at an endpoint does when asked for its status.
///
/// The fixture's server answers the same way on every path and method, since the port decides
/// which path it asks (`engine_status_path`).
#[derive(Debug, Clone, PartialEq)]
pub enum EngineBehaviour {
    /// `200 OK`, `Content-Type: application/json`, this JSON as the body (with a
    /// `Content-Length`).
    Json(Value),
    /// This status code (never 2xx) with this body, which may itself be JSON: the port must
    /// not take it for a status.
    Status(u16, String),
    /// `200 OK`, `Content-Type: text/html`, a body that is not JSON (an HTML page).
    NotJson,
    /// Accepts the connection, then waits this long before sending the status line and headers.
    SlowHeaders(Duration),
    /// Sends `200 OK`, headers with the full `Content-Length` and the first part of a JSON
    /// body at once, then waits this long before sending the rest: only a timeout that covers
    /// the whole exchange catches it.
    SlowBody(Duration),
    /// `200 OK` with a valid JSON body of this many bytes (with a `Content-Length`; a port
    /// may refuse on the header alone or stop reading at its limit).
    Oversized(usize),
    /// `302 Found` with a `Location` to another endpoint that would answer JSON: the port must
    /// not follow it (an engine's status is never elsewhere).
    Redirect,
    /// Nothing listens at the endpoint's port on `127.0.0.1`: connecting is refused at once.
    Refused,
}

/// Serves engine behaviours for the suite.
#[async_trait]
pub trait EngineFixture: Send + Sync {
    /// Starts serving `behaviour` at a fresh endpoint and returns it, in the form the port takes
    /// (such as `http://127.0.0.1:40123`). The server keeps serving until the fixture is dropped.
    async fn serve(&self, behaviour: EngineBehaviour) -> PortResult<String>;
}

/// How much later than its timeout a failure may come back: one second plus half the timeout.
pub fn slack(timeout: Duration) -> Duration {
    Duration::from_secs(1) + timeout / 2
}

/// Runs every check of this module, one after the other. `timeout` is the longest one status
/// call of `port` may take, as configured.
pub async fn run_all(port: &dyn EnginePort, fixture: &dyn EngineFixture, timeout: Duration) {
    json_is_returned_as_is(port, fixture, timeout).await;
    error_status_is_an_error(port, fixture, timeout).await;
    not_json_is_an_error(port, fixture, timeout).await;
    slow_headers_time_out(port, fixture, timeout).await;
    slow_body_times_out(port, fixture, timeout).await;
    oversized_body_is_an_error(port, fixture, timeout, OVERSIZED_BODY_BYTES).await;
    redirect_is_not_followed(port, fixture, timeout).await;
    refused_is_unavailable(port, fixture, timeout).await;
}

/// Serves `behaviour`, panicking if the fixture cannot.
async fn serve(fixture: &dyn EngineFixture, behaviour: EngineBehaviour) -> String {
    expect_ok(
        "EngineFixture::serve: the fixture must serve the behaviour",
        fixture.serve(behaviour).await,
    )
}

/// Asks `port` for the status at `endpoint`, panicking if it takes longer than `timeout` plus
/// [`slack`].
async fn status_in_time(
    rule: &str,
    port: &dyn EnginePort,
    endpoint: &str,
    timeout: Duration,
) -> PortResult<Value> {
    let limit = timeout + slack(timeout);
    let start = Instant::now();
    match tokio::time::timeout(limit, port.status(endpoint)).await {
        Ok(result) => {
            let took = start.elapsed();
            assert!(
                took <= limit,
                "{rule}: must answer within the timeout ({timeout:?}) plus slack, took {took:?}"
            );
            result
        }
        Err(_) => panic!(
            "{rule}: must answer within the timeout ({timeout:?}) plus slack ({:?}), still \
             waiting after {limit:?}",
            slack(timeout)
        ),
    }
}

/// Panics unless `result` is an error of `kind` (when given) whose message contains one of
/// `words` (ignoring case).
fn expect_failure(
    rule: &str,
    result: PortResult<Value>,
    kind: Option<ErrorKind>,
    words: &[&str],
) -> PortError {
    let error = match result {
        Ok(value) => panic!("{rule}: must be an error, got Ok({value})"),
        Err(error) => error,
    };
    if let Some(kind) = kind {
        assert_eq!(
            error.kind(),
            kind,
            "{rule}: must be PortError::{kind:?}, got {error:?}"
        );
    }
    let message = error.to_string().to_lowercase();
    assert!(
        words.iter().any(|w| message.contains(w)),
        "{rule}: the message must say what happened (contain one of {words:?}), got {:?}",
        error.to_string()
    );
    error
}

/// A success returns the engine's JSON as is, and asking again gives it again.
pub async fn json_is_returned_as_is(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let values = [
        json!({
            "turn": 12,
            "players": [{"name": "Zoë \"the\" ✓", "score": -12.5}],
            "finished": false,
            "winner": null,
            "big": 9_007_199_254_740_993_u64,
        }),
        json!({}),
        json!([1, 2, 3]),
    ];
    for value in values {
        let endpoint = serve(fixture, EngineBehaviour::Json(value.clone())).await;
        for _ in 0..2 {
            let rule = "EnginePort::status: a JSON answer must be returned as is";
            let got = expect_ok(rule, status_in_time(rule, port, &endpoint, timeout).await);
            assert_eq!(got, value, "{rule}");
        }
    }
}

/// A non-2xx answer is an error naming the status code.
pub async fn error_status_is_an_error(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    for (code, body) in [
        (500, "internal error".to_owned()),
        (503, r#"{"turn": 1}"#.to_owned()),
        (404, "not found".to_owned()),
    ] {
        let endpoint = serve(fixture, EngineBehaviour::Status(code, body)).await;
        let rule = format!("EnginePort::status: HTTP status {code} must be an error naming it");
        let code = code.to_string();
        expect_failure(
            &rule,
            status_in_time(&rule, port, &endpoint, timeout).await,
            None,
            &[code.as_str()],
        );
    }
}

/// A body that is not JSON is an `Invalid` error saying so.
pub async fn not_json_is_an_error(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let endpoint = serve(fixture, EngineBehaviour::NotJson).await;
    let rule = "EnginePort::status: a body that is not JSON must be an Invalid error saying so";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        Some(ErrorKind::Invalid),
        &["json"],
    );
}

/// Headers that come later than the timeout give a `Timeout` error, on time.
pub async fn slow_headers_time_out(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let endpoint = serve(fixture, EngineBehaviour::SlowHeaders(timeout * 4)).await;
    let rule = "EnginePort::status: headers later than the timeout must give a Timeout error";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        Some(ErrorKind::Timeout),
        &["timeout", "timed out"],
    );
}

/// A body that ends later than the timeout gives a `Timeout` error, on time: the timeout covers
/// the whole exchange, not only the headers.
pub async fn slow_body_times_out(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let endpoint = serve(fixture, EngineBehaviour::SlowBody(timeout * 4)).await;
    let rule = "EnginePort::status: a body that ends later than the timeout must give a Timeout \
                error (the timeout covers the whole exchange)";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        Some(ErrorKind::Timeout),
        &["timeout", "timed out"],
    );
}

/// A body of `bytes` bytes, more than the port's limit, is an `Invalid` error saying it is too
/// large.
pub async fn oversized_body_is_an_error(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
    bytes: usize,
) {
    let endpoint = serve(fixture, EngineBehaviour::Oversized(bytes)).await;
    let rule = "EnginePort::status: a body over the size limit must be an Invalid error saying so";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        Some(ErrorKind::Invalid),
        &["too large", "limit", "exceed"],
    );
}

/// A redirect is not followed: it is an error saying so.
pub async fn redirect_is_not_followed(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let endpoint = serve(fixture, EngineBehaviour::Redirect).await;
    let rule = "EnginePort::status: a redirect must not be followed and must be an error saying so";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        None,
        &["redirect", "302"],
    );
}

/// A refused connection is an `Unavailable` error saying so.
pub async fn refused_is_unavailable(
    port: &dyn EnginePort,
    fixture: &dyn EngineFixture,
    timeout: Duration,
) {
    let endpoint = serve(fixture, EngineBehaviour::Refused).await;
    let rule = "EnginePort::status: a refused connection must be an Unavailable error saying so";
    expect_failure(
        rule,
        status_in_time(rule, port, &endpoint, timeout).await,
        Some(ErrorKind::Unavailable),
        &["refused", "connect"],
    );
}
