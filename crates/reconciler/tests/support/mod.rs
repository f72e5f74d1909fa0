//! Fixtures shared by the executor and loop tests: fleets of containers and records, mocks
//! wired into a reconciler, a slow engine, a metrics recorder.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{
    EnginePort, MockCache, MockDockerPort, MockEnginePort, MockLobbyPort, MockOutboxPort,
    MockScheduler, MockStorePort, PortError, PortResult,
};
use galaxy_runtime_reconciler::{Reconciler, ReconcilerBuilder};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// The time every mocked pass runs at.
pub const NOW: &str = "2026-11-27T12:00:00Z";

/// A fixed timestamp.
pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp")
}

/// A deterministic game id; ids sort as their numbers do.
pub fn gid(n: u32) -> GameId {
    format!("6f1c0e7a-3b8d-4f7c-9e2a-{n:012}")
        .parse()
        .expect("valid game id")
}

/// A managed container `galaxy-game-<game>` created an hour before [`NOW`].
pub fn container(id: &str, game: GameId, state: ContainerState) -> ContainerSummary {
    ContainerSummary {
        id: id.to_owned(),
        name: format!("/galaxy-game-{game}"),
        image_ref: "galaxy/engine:1.4".to_owned(),
        labels: BTreeMap::from([
            ("galaxy.managed".to_owned(), "true".to_owned()),
            ("galaxy.engine_version".to_owned(), "1.4.0".to_owned()),
        ]),
        state,
        created: ts("2026-11-27T11:00:00Z"),
        addresses: BTreeMap::from([("galaxy".to_owned(), "172.18.0.5".to_owned())]),
        host: String::new(),
        published_ports: BTreeMap::new(),
    }
}

/// A record whose status changed an hour before [`NOW`] (outside any start grace).
pub fn record(game: GameId, status: RuntimeStatus, container_id: &str) -> RuntimeRecord {
    RuntimeRecord {
        game_id: game,
        status,
        current_container_id: container_id.to_owned(),
        current_image_ref: "galaxy/engine:1.4".to_owned(),
        current_engine_version: "1.4.0".to_owned(),
        engine_endpoint: format!("http://galaxy-game-{game}:8080"),
        docker_network: "galaxy".to_owned(),
        turn_schedule: "0 */6 * * *".to_owned(),
        probe_failures: 0,
        status_changed_at: ts("2026-11-27T11:00:00Z"),
        docker_host: String::new(),
    }
}

/// Every port as a mock, with no expectation set: any call not expected panics (and the pass
/// reports the panic), so a test states exactly which calls it allows.
pub struct Mocks {
    pub docker: MockDockerPort,
    pub store: MockStorePort,
    pub engine: MockEnginePort,
    pub lobby: MockLobbyPort,
    pub outbox: MockOutboxPort,
    pub cache: MockCache,
    pub scheduler: MockScheduler,
}

impl Default for Mocks {
    fn default() -> Self {
        Self::new()
    }
}

impl Mocks {
    /// Mocks without expectations.
    pub fn new() -> Self {
        Self {
            docker: MockDockerPort::new(),
            store: MockStorePort::new(),
            engine: MockEnginePort::new(),
            lobby: MockLobbyPort::new(),
            outbox: MockOutboxPort::new(),
            cache: MockCache::new(),
            scheduler: MockScheduler::new(),
        }
    }

    /// Docker lists `containers`; the store lists `records`.
    pub fn listing(
        mut self,
        containers: Vec<ContainerSummary>,
        records: Vec<RuntimeRecord>,
    ) -> Self {
        let containers: Vec<_> = containers.into_iter().map(Arc::new).collect();
        let records: Vec<_> = records.into_iter().map(Arc::new).collect();
        self.docker
            .expect_list_managed()
            .times(1)
            .returning(move |_| Ok(containers.clone()));
        self.store
            .expect_list_records()
            .times(1)
            .returning(move || Ok(records.clone()));
        self
    }

    /// The cache accepts any number of records.
    pub fn any_cache(mut self) -> Self {
        self.cache.expect_put_runtime().returning(|_| ());
        self
    }

    /// A builder with every mock and a clock fixed at [`NOW`].
    pub fn builder(self) -> ReconcilerBuilder {
        Reconciler::builder()
            .docker(Arc::new(self.docker))
            .store(Arc::new(self.store))
            .engine(Arc::new(self.engine))
            .lobby(Arc::new(self.lobby))
            .outbox(Arc::new(self.outbox))
            .cache(Arc::new(self.cache))
            .scheduler(Arc::new(self.scheduler))
            .clock(Arc::new(|| ts(NOW)))
    }

    /// The reconciler, with `config`.
    pub fn build(self, config: Config) -> Reconciler {
        self.builder()
            .config(config)
            .build()
            .expect("every port given")
    }
}

/// An engine that answers `{"turn": 1}` after `latency` (tokio time, so paused clocks apply),
/// counting calls and the most probes ever in flight at once.
#[derive(Default)]
pub struct SlowEngine {
    pub latency: Duration,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub calls: AtomicUsize,
    pub endpoints: Mutex<Vec<String>>,
}

impl SlowEngine {
    /// An engine answering after `latency`.
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }
}

#[async_trait]
impl EnginePort for SlowEngine {
    async fn status(&self, endpoint: &str) -> PortResult<serde_json::Value> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.endpoints.lock().unwrap().push(endpoint.to_owned());
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(serde_json::json!({"turn": 1}))
    }
}

/// A port error of the kind a daemon that went away gives.
pub fn unavailable(what: &str) -> PortError {
    PortError::unavailable(what, std::io::Error::other("connection refused"))
}

/// A metrics recorder that keeps every series in memory, for assertions.
#[derive(Default)]
pub struct TestRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
    described: Mutex<Vec<String>>,
}

/// The samples of one histogram.
#[derive(Default)]
pub struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// `name{k=v,…}` with labels sorted.
fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl TestRecorder {
    /// A counter's value; `None` when never registered.
    pub fn counter(&self, series: &str) -> Option<u64> {
        self.counters
            .lock()
            .unwrap()
            .get(series)
            .map(|c| c.load(Ordering::SeqCst))
    }

    /// A gauge's value; `None` when never registered.
    pub fn gauge(&self, series: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(series)
            .map(|g| f64::from_bits(g.load(Ordering::SeqCst)))
    }

    /// A histogram's samples; `None` when never registered.
    pub fn histogram(&self, series: &str) -> Option<Vec<f64>> {
        self.histograms
            .lock()
            .unwrap()
            .get(series)
            .map(|h| h.0.lock().unwrap().clone())
    }

    /// Whether a metric was described.
    pub fn described(&self, name: &str) -> bool {
        self.described.lock().unwrap().iter().any(|n| n == name)
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = Arc::clone(
            self.counters
                .lock()
                .unwrap()
                .entry(series(key))
                .or_default(),
        );
        Counter::from_arc::<AtomicU64>(c)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let g = Arc::clone(self.gauges.lock().unwrap().entry(series(key)).or_default());
        Gauge::from_arc::<AtomicU64>(g)
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = Arc::clone(
            self.histograms
                .lock()
                .unwrap()
                .entry(series(key))
                .or_default(),
        );
        Histogram::from_arc(h)
    }
}

// The std atomics implement the metric traits; these assertions keep the recorder honest if
// that ever changes.
const _: fn() = || {
    fn counter<T: CounterFn>() {}
    fn gauge<T: GaugeFn>() {}
    counter::<AtomicU64>();
    gauge::<AtomicU64>();
};
