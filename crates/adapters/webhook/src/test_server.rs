//! A real webhook lobby for tests and benchmarks: a hyper HTTP/1.1 server on 127.0.0.1 that
//! records every request it receives and answers what the test says (a status, a redirect, or
//! nothing at all), changeable while it runs.
//!
//! Built with the `test-server` feature only; the tests of this crate and of the command line
//! use it, and so does the relay's throughput benchmark.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use galaxy_runtime_model::LobbyEvent;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// What the server answers to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// This status, with an empty body.
    Status(u16),
    /// `302 Found` to this location.
    RedirectTo(String),
    /// No answer at all: the request is read, then the connection stays silent until the
    /// client gives up.
    Hang,
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method (`POST`).
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `X-Galaxy-Event-Id`, if sent.
    pub event_id: Option<String>,
    /// `X-Galaxy-Signature-256`, if sent.
    pub signature: Option<String>,
    /// The exact body.
    pub body: Bytes,
    /// The status answered; `None` for a request left without an answer.
    pub answered: Option<u16>,
    /// When the request's head arrived.
    pub started: Instant,
    /// When its answer was sent (its start while unanswered).
    pub finished: Instant,
}

impl Received {
    /// Whether it was answered 2xx (accepted).
    pub fn accepted(&self) -> bool {
        self.answered.is_some_and(|s| (200..300).contains(&s))
    }

    /// The body as a lobby event; a panic naming the body if it is not one.
    pub fn event(&self) -> LobbyEvent {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the webhook received a body that is not a lobby event ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Debug)]
struct State {
    answer: Answer,
    delay: Duration,
    received: Vec<Received>,
}

/// A running webhook server; stops, with every connection it holds, when dropped.
pub struct WebhookServer {
    /// `http://127.0.0.1:<port>/galaxy/events`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock has failed already; its data is still fine
    // to read.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WebhookServer {
    /// Starts a server answering `answer` to every request, on a free port of 127.0.0.1.
    pub async fn start(answer: Answer) -> WebhookServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a webhook test server on 127.0.0.1");
        let url = format!(
            "http://{}/galaxy/events",
            listener.local_addr().expect("local address")
        );
        let state = Arc::new(Mutex::new(State {
            answer,
            delay: Duration::ZERO,
            received: Vec::new(),
        }));
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        WebhookServer { url, state, task }
    }

    /// Answers `answer` to the requests from now on.
    pub fn set_answer(&self, answer: Answer) {
        lock(&self.state).answer = answer;
    }

    /// Waits this long before answering each request (to make overlapping deliveries
    /// visible).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Every request so far, in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// The events answered 2xx, in the order they arrived.
    pub fn accepted_events(&self) -> Vec<LobbyEvent> {
        self.received()
            .iter()
            .filter(|r| r.accepted())
            .map(Received::event)
            .collect()
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    // Connections live in the set, so that aborting the server aborts them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = service_fn(move |request| answer(request, Arc::clone(&state)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let content_type = header("content-type");
    let event_id = header("x-galaxy-event-id");
    let signature = header("x-galaxy-signature-256");
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (reply, delay) = {
        let state = lock(&state);
        (state.answer.clone(), state.delay)
    };
    let mut received = Received {
        method,
        path,
        content_type,
        event_id,
        signature,
        body,
        answered: None,
        started,
        finished: started,
    };
    if reply == Answer::Hang {
        lock(&state).received.push(received.clone());
        std::future::pending::<()>().await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match reply {
        Answer::Status(status) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)),
        Answer::RedirectTo(location) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location),
        Answer::Hang => unreachable!("a hanging answer never gets here"),
    }
    .body(Full::new(Bytes::new()))
    .expect("a test answer is well formed");
    received.answered = Some(response.status().as_u16());
    received.finished = Instant::now();
    lock(&state).received.push(received);
    Ok(response)
}

/// A [`WebhookServer`] on a runtime of its own, for tests without one (the command line's,
/// which drive the real binary from plain `#[test]`s).
pub struct BackgroundWebhookServer {
    server: Option<WebhookServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackgroundWebhookServer {
    /// Starts a server answering `answer`, on a runtime with one worker thread.
    pub fn start(answer: Answer) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the webhook test server");
        let server = runtime.block_on(WebhookServer::start(answer));
        Self {
            server: Some(server),
            runtime: Some(runtime),
        }
    }
}

impl std::ops::Deref for BackgroundWebhookServer {
    type Target = WebhookServer;

    fn deref(&self) -> &WebhookServer {
        self.server.as_ref().expect("the server runs until dropped")
    }
}

impl Drop for BackgroundWebhookServer {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
