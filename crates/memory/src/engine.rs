use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_ports::{EnginePort, PortError, PortResult};
use serde_json::Value;

use crate::lock;

/// The largest body a [`MemoryEngine`] accepts unless told otherwise: 1 MiB, the default
/// `engine_max_body_bytes`.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What a [`MemoryEngine`] endpoint answers to one probe, modelled on what an engine behind
/// HTTP can do.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineAnswer {
    /// Success with this JSON.
    Json(Value),
    /// A `200 OK` with this raw body: success if it is JSON within the body limit, else an
    /// [`PortError::Invalid`] saying `not JSON` or `too large`.
    Body(String),
    /// This HTTP status with this body: an error naming the status (a `3xx` says the redirect
    /// was not followed).
    Status(u16, String),
    /// An error whose message is exactly this text ([`PortError::Other`]), such as a scenario's
    /// probe error.
    Error(String),
    /// The connection is refused ([`PortError::Unavailable`]).
    Refused,
}

impl EngineAnswer {
    fn into_result(self, endpoint: &str, body_limit: usize) -> PortResult<Value> {
        match self {
            Self::Json(value) => Ok(value),
            Self::Body(body) if body.len() > body_limit => Err(PortError::invalid(format!(
                "response body from {endpoint} too large: {} bytes exceed the limit of \
                 {body_limit} bytes",
                body.len()
            ))),
            Self::Body(body) => serde_json::from_str(&body).map_err(|e| {
                PortError::invalid(format!("response from {endpoint} is not JSON: {e}"))
            }),
            Self::Status(code, _) if (300..400).contains(&code) => Err(PortError::Other {
                message: format!("redirect not followed: HTTP status {code} from {endpoint}"),
                source: None,
            }),
            Self::Status(code, body) => {
                // Engine-supplied text: shortened and quoted so it cannot forge a log line.
                let mut excerpt: String = body.chars().take(200).collect();
                if excerpt.len() < body.len() {
                    excerpt.push('…');
                }
                Err(PortError::Other {
                    message: format!("HTTP status {code} from {endpoint}: {excerpt:?}"),
                    source: None,
                })
            }
            Self::Error(message) => Err(PortError::Other {
                message,
                source: None,
            }),
            Self::Refused => Err(PortError::Unavailable {
                message: format!("connection refused by {endpoint}"),
                source: None,
            }),
        }
    }
}

#[derive(Debug, Default)]
struct Endpoint {
    /// Answered in turn, cycling; never empty.
    answers: Vec<EngineAnswer>,
    next: usize,
    latency: Option<Duration>,
    probes: u64,
}

#[derive(Debug)]
struct State {
    endpoints: HashMap<String, Endpoint>,
    default_answer: Option<EngineAnswer>,
    default_latency: Duration,
    timeout: Option<Duration>,
    body_limit: usize,
}

/// An [`EnginePort`] whose engines are answers configured per endpoint.
///
/// Each endpoint answers its [`EngineAnswer`]s in turn, cycling (one answer: always that one;
/// [`MemoryEngine::set_flapping`]: success, failure, success, …), after its latency or the
/// default one. An endpoint never configured answers the default answer if one is set
/// ([`MemoryEngine::set_default_answer`], handy for fleets of thousands), else refuses the
/// connection. With a timeout ([`MemoryEngine::set_timeout`]), a latency longer than it gives a
/// [`PortError::Timeout`] once the timeout has passed, as an HTTP client would.
///
/// Latency is a `tokio::time::sleep`, so tests with paused time run instantly. The engine counts
/// probes, those in flight now and the most ever in flight at once
/// ([`MemoryEngine::max_in_flight`]), which is how a test sees the executor's bounded
/// concurrency.
#[derive(Debug)]
pub struct MemoryEngine {
    state: Mutex<State>,
    probes: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a probe as in flight until dropped, also when the caller gives up on it (a timeout
/// drops the future).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(in_flight: &'a AtomicUsize, max: &AtomicUsize) -> Self {
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(now, Ordering::SeqCst);
        Self(in_flight)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MemoryEngine {
    /// An engine fake with no endpoints, no latency, no timeout and the default body limit.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                endpoints: HashMap::new(),
                default_answer: None,
                default_latency: Duration::ZERO,
                timeout: None,
                body_limit: DEFAULT_BODY_LIMIT,
            }),
            probes: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Sets the answers of `endpoint`, answered in turn and cycling; an empty list means the
    /// connection is refused. Its latency is kept; its turn starts over.
    pub fn set_sequence(&self, endpoint: &str, answers: Vec<EngineAnswer>) {
        let answers = if answers.is_empty() {
            vec![EngineAnswer::Refused]
        } else {
            answers
        };
        let mut state = lock(&self.state);
        let entry = state.endpoints.entry(endpoint.to_owned()).or_default();
        entry.answers = answers;
        entry.next = 0;
    }

    /// `endpoint` always answers `answer`.
    pub fn set_answer(&self, endpoint: &str, answer: EngineAnswer) {
        self.set_sequence(endpoint, vec![answer]);
    }

    /// `endpoint` always answers this JSON.
    pub fn set_json(&self, endpoint: &str, value: Value) {
        self.set_answer(endpoint, EngineAnswer::Json(value));
    }

    /// `endpoint` always fails with exactly this message.
    pub fn set_error(&self, endpoint: &str, message: impl Into<String>) {
        self.set_answer(endpoint, EngineAnswer::Error(message.into()));
    }

    /// `endpoint` flaps: this JSON, then a failure with this message, then the JSON again, …
    pub fn set_flapping(&self, endpoint: &str, value: Value, message: impl Into<String>) {
        self.set_sequence(
            endpoint,
            vec![
                EngineAnswer::Json(value),
                EngineAnswer::Error(message.into()),
            ],
        );
    }

    /// Forgets `endpoint`: it answers the default answer again (or refuses).
    pub fn remove_endpoint(&self, endpoint: &str) {
        lock(&self.state).endpoints.remove(endpoint);
    }

    /// How long `endpoint` takes to answer, instead of the default latency.
    pub fn set_latency(&self, endpoint: &str, latency: Duration) {
        let mut state = lock(&self.state);
        let entry = state
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| Endpoint {
                answers: vec![EngineAnswer::Refused],
                ..Endpoint::default()
            });
        entry.latency = Some(latency);
    }

    /// How long every endpoint without a latency of its own takes to answer.
    pub fn set_default_latency(&self, latency: Duration) {
        lock(&self.state).default_latency = latency;
    }

    /// What endpoints never configured answer; `None` (the default): the connection is refused.
    pub fn set_default_answer(&self, answer: Option<EngineAnswer>) {
        lock(&self.state).default_answer = answer;
    }

    /// The longest a probe may take; a longer latency gives [`PortError::Timeout`] after this
    /// long. `None` (the default): no limit, as when the caller bounds the probe itself.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        lock(&self.state).timeout = timeout;
    }

    /// The largest [`EngineAnswer::Body`] accepted, in bytes.
    pub fn set_body_limit(&self, bytes: usize) {
        lock(&self.state).body_limit = bytes;
    }

    /// Probes made so far, over all endpoints.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::SeqCst)
    }

    /// Probes made so far of `endpoint` (0 for one never configured).
    pub fn probes_of(&self, endpoint: &str) -> u64 {
        lock(&self.state)
            .endpoints
            .get(endpoint)
            .map_or(0, |e| e.probes)
    }

    /// Probes in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most probes ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Sets the probe counter and the most-in-flight mark back to zero (probes in flight now
    /// stay counted as such).
    pub fn reset_counters(&self) {
        self.probes.store(0, Ordering::SeqCst);
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        for endpoint in lock(&self.state).endpoints.values_mut() {
            endpoint.probes = 0;
        }
    }

    /// The answer of the next probe of `endpoint` and everything needed to give it, taken under
    /// the lock so the probe itself can wait without holding it.
    fn next_answer(&self, endpoint: &str) -> (EngineAnswer, Duration, Option<Duration>, usize) {
        let mut state = lock(&self.state);
        let (timeout, body_limit, default_latency) =
            (state.timeout, state.body_limit, state.default_latency);
        let fallback = state.default_answer.clone();
        match state.endpoints.get_mut(endpoint) {
            Some(entry) => {
                entry.probes += 1;
                let answer = entry.answers[entry.next % entry.answers.len()].clone();
                entry.next = (entry.next + 1) % entry.answers.len();
                let latency = entry.latency.unwrap_or(default_latency);
                (answer, latency, timeout, body_limit)
            }
            None => (
                fallback.unwrap_or(EngineAnswer::Refused),
                default_latency,
                timeout,
                body_limit,
            ),
        }
    }
}

#[async_trait]
impl EnginePort for MemoryEngine {
    async fn status(&self, endpoint: &str) -> PortResult<Value> {
        let _in_flight = InFlight::enter(&self.in_flight, &self.max_in_flight);
        self.probes.fetch_add(1, Ordering::SeqCst);
        let (answer, latency, timeout, body_limit) = self.next_answer(endpoint);
        let wait = timeout.map_or(latency, |t| latency.min(t));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if let Some(timeout) = timeout
            && latency > timeout
        {
            return Err(PortError::timeout(format!("GET {endpoint}"), timeout));
        }
        answer.into_result(endpoint, body_limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use galaxy_runtime_ports::ErrorKind;
    use serde_json::json;
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn latency_runs_on_tokio_time_and_timeout_cuts_it() {
        let engine = MemoryEngine::new();
        engine.set_json("e", json!({"turn": 1}));
        engine.set_latency("e", Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(engine.status("e").await.unwrap(), json!({"turn": 1}));
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        engine.set_timeout(Some(Duration::from_secs(2)));
        let start = Instant::now();
        let err = engine.status("e").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.to_string(), "timeout after 2s: GET e");
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn flapping_alternates_and_counts() {
        let engine = MemoryEngine::new();
        engine.set_flapping("e", json!(1), "connection reset");
        assert_eq!(engine.status("e").await.unwrap(), json!(1));
        assert_eq!(
            engine.status("e").await.unwrap_err().to_string(),
            "connection reset"
        );
        assert_eq!(engine.status("e").await.unwrap(), json!(1));
        assert_eq!(engine.probes_of("e"), 3);
        assert_eq!(engine.probes(), 3);
        engine.reset_counters();
        assert_eq!((engine.probes(), engine.probes_of("e")), (0, 0));
    }

    #[tokio::test]
    async fn unknown_endpoints_refuse_or_answer_the_default() {
        let engine = MemoryEngine::new();
        let err = engine.status("http://nowhere:8080").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("refused"), "{err}");
        engine.set_default_answer(Some(EngineAnswer::Json(json!({"ok": true}))));
        assert_eq!(
            engine.status("http://anywhere:8080").await.unwrap(),
            json!({"ok": true})
        );
        engine.set_error("http://anywhere:8080", "boom");
        engine.remove_endpoint("http://anywhere:8080");
        assert!(engine.status("http://anywhere:8080").await.is_ok());
    }

    #[tokio::test]
    async fn http_like_answers() {
        let engine = MemoryEngine::new();
        engine.set_body_limit(16);
        let cases = [
            (EngineAnswer::Body(r#"{"a": 1}"#.into()), None, ""),
            (
                EngineAnswer::Body("<html>".into()),
                Some(ErrorKind::Invalid),
                "not json",
            ),
            (
                EngineAnswer::Body("[1,2,3,4,5,6,7,8,9]".into()),
                Some(ErrorKind::Invalid),
                "too large",
            ),
            (
                EngineAnswer::Status(500, "x\ny".into()),
                Some(ErrorKind::Other),
                "500",
            ),
            (
                EngineAnswer::Status(302, String::new()),
                Some(ErrorKind::Other),
                "redirect",
            ),
        ];
        for (answer, kind, words) in cases {
            engine.set_answer("e", answer.clone());
            match (engine.status("e").await, kind) {
                (Ok(value), None) => assert_eq!(value, json!({"a": 1})),
                (Err(err), Some(kind)) => {
                    assert_eq!(err.kind(), kind, "{answer:?}");
                    let message = err.to_string();
                    assert!(
                        message.to_lowercase().contains(words),
                        "{answer:?}: {message}"
                    );
                    assert!(!message.contains('\n'), "engine text is escaped: {message}");
                }
                (other, _) => panic!("{answer:?} gave {other:?}"),
            }
        }
        engine.set_sequence("e", Vec::new());
        assert_eq!(
            engine.status("e").await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_the_most_probes_in_flight() {
        let engine = Arc::new(MemoryEngine::new());
        engine.set_default_answer(Some(EngineAnswer::Json(json!({}))));
        engine.set_default_latency(Duration::from_millis(10));
        let semaphore = Arc::new(tokio::sync::Semaphore::new(3));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (engine, semaphore) = (engine.clone(), semaphore.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = semaphore.acquire().await.unwrap();
                engine.status(&format!("e{i}")).await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(engine.max_in_flight(), 3);
        assert_eq!(engine.in_flight(), 0);
        assert_eq!(engine.probes(), 10);

        // A probe given up on (dropped by a caller's timeout) leaves the in-flight count.
        engine.set_default_latency(Duration::from_secs(60));
        let gave_up = tokio::time::timeout(Duration::from_secs(1), engine.status("slow")).await;
        assert!(gave_up.is_err());
        assert_eq!(engine.in_flight(), 0);
    }
}
