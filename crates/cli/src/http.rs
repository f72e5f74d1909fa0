//! The listener of `run`: `/metrics` (Prometheus, durations as histograms with buckets so that
//! they aggregate across replicas), `/healthz` and `/readyz`, on a small hyper server of our
//! own that a slow or greedy client cannot hold: each connection serves one request, must send
//! its headers within [`HEADER_TIMEOUT`] and is closed after [`CONNECTION_TIMEOUT`], and at
//! most [`MAX_CONNECTIONS`] are open at once (more are closed at once).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use galaxy_runtime_model::{Timestamp, duration};
use galaxy_runtime_reconciler::{PassOutcome, Reconciler, telemetry};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::{debug, warn};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The longest a client may take to send its request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection stays open, whatever it does.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How many reconcile intervals a leader's last successful pass stays fresh for `/readyz`.
pub const READY_INTERVALS: u32 = 3;

/// The buckets of duration histograms, in seconds: from a fast probe to a slow pass.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// The buckets of the lobby's delivery attempts.
const ATTEMPT_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0];

/// Installs the Prometheus recorder, with histograms (not summaries).
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(telemetry::LOBBY_ATTEMPTS.to_owned()),
                ATTEMPT_BUCKETS,
            )
        })
        .map_err(|e| anyhow!("cannot set up the metrics: {e}"))?
        .install_recorder()
        .map_err(|e| anyhow!("cannot set up the metrics: {e}"))
}

/// Binds `addr` now, so that a taken or forbidden address is one clear error before anything
/// starts.
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        anyhow!(
            "cannot serve metrics on {addr}: {e}. Choose a free address with --http-addr \
             (alias --metrics-addr, or BACKEND_RUNTIME_METRICS_ADDR)."
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| anyhow!("cannot serve metrics on {addr}: {e}"))?;
    Ok(listener)
}

/// What the endpoints read.
struct State {
    metrics: PrometheusHandle,
    reconciler: Reconciler,
    interval: Duration,
}

/// Serves the endpoints on `listener` until `cancel` fires.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: PrometheusHandle,
    reconciler: Reconciler,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| anyhow!("cannot serve HTTP: {e}"))?;
    let state = Arc::new(State {
        metrics,
        interval: reconciler.config().reconcile_interval,
        reconciler,
    });
    let upkeep = {
        let (state, cancel) = (Arc::clone(&state), cancel.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = tick.tick() => state.metrics.run_upkeep(),
                }
            }
        })
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait a little rather than spin.
                warn!("http: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!("http: {MAX_CONNECTIONS} connections open; closing a new one");
            drop(stream);
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(&state, &request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
    upkeep.abort();
    Ok(())
}

fn answer(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".to_owned(),
        );
    }
    match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(),
        ),
        "/healthz" => {
            let running = state.reconciler.is_running();
            reply(
                if running {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "application/json",
                serde_json::json!({ "running": running }).to_string() + "\n",
            )
        }
        "/readyz" => {
            let (ready, body) = readiness(state, Timestamp::now());
            reply(
                if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "application/json",
                body.to_string() + "\n",
            )
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /healthz and /readyz are served\n".to_owned(),
        ),
    }
}

/// Ready when the loop runs and its last pass succeeded (a leader's pass, or a standby's lock
/// attempt) within [`READY_INTERVALS`] intervals; the body says the role, the last pass and the
/// last error.
fn readiness(state: &State, now: Timestamp) -> (bool, serde_json::Value) {
    let health = state.reconciler.health();
    let fresh_for = state.interval * READY_INTERVALS;
    let age = |outcome: &PassOutcome| {
        Duration::from_micros(
            now.unix_micros()
                .saturating_sub(outcome.at.unix_micros())
                .max(0) as u64,
        )
    };
    let running = state.reconciler.is_running();
    let ready = running
        && health
            .last_pass
            .as_ref()
            .is_some_and(|p| p.succeeded() && age(p) <= fresh_for);
    let shown = |outcome: &PassOutcome| {
        serde_json::json!({
            "at": outcome.at.to_string(),
            "age_seconds": age(outcome).as_secs_f64(),
            "pass": outcome.pass.as_str(),
            "result": outcome.result,
            "error": outcome.error,
        })
    };
    let body = serde_json::json!({
        "ready": ready,
        "running": running,
        "role": health.last_pass.as_ref().map_or("unknown", PassOutcome::role),
        "fresh_for": duration::format(fresh_for),
        "last_pass": health.last_pass.as_ref().map(shown),
        "last_error": health.last_error.as_ref().map(shown),
    });
    (ready, body)
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
