//! Ten Docker hosts of 1 000 containers each on the in-memory adapters (CONTRACT §6), each
//! taking 50 ms to list, one of them 1 s: a quick pass (no probing, so listing is what it
//! waits for) against the same listings made one host after another in the same process, and
//! against the ideal (the slowest host, or `docker_list_timeout` when that is shorter).
//!
//! Run with `cargo bench -p galaxy-runtime-reconciler --bench hosts`. It prints its figures;
//! `docs/performance.md` records them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryEngine, MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortResult};
use galaxy_runtime_reconciler::Reconciler;

const HOSTS: usize = 10;
const PER_HOST: usize = 1_000;
const LISTING: Duration = Duration::from_millis(50);
const SLOW: Duration = Duration::from_secs(1);

/// A daemon that lists like `inner`, after `delay`.
struct Slow {
    inner: MemoryDocker,
    delay: Duration,
}

#[async_trait]
impl DockerPort for Slow {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_managed(filter).await
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.inner.inspect(container_id).await
    }
}

/// The hosts, each with its games' containers, and the store with their records.
fn fleet(config: &Config, slow_host: bool) -> (Vec<(String, Arc<Slow>)>, MemoryStore) {
    let store = MemoryStore::new();
    let changed: Timestamp = "2026-11-27T11:00:00Z".parse().expect("a timestamp");
    let hosts = (0..HOSTS)
        .map(|h| {
            let name = format!("host-{h}");
            let docker = MemoryDocker::new();
            for _ in 0..PER_HOST {
                let game_id = GameId::new_random();
                let id = MemoryDocker::new_container_id();
                docker.add(MemoryDocker::game_container(
                    config,
                    game_id,
                    &id,
                    ContainerState::Running,
                ));
                store.insert_record(RuntimeRecord {
                    current_container_id: id,
                    docker_host: name.clone(),
                    ..RuntimeRecord::new(game_id, RuntimeStatus::Running, changed)
                });
            }
            let delay = if slow_host && h == HOSTS - 1 {
                SLOW
            } else {
                LISTING
            };
            (
                name,
                Arc::new(Slow {
                    inner: docker,
                    delay,
                }),
            )
        })
        .collect();
    (hosts, store)
}

fn reconciler(config: Config, hosts: &[(String, Arc<Slow>)], store: &MemoryStore) -> Reconciler {
    let mut builder = Reconciler::builder();
    for (name, port) in hosts {
        builder = builder.docker_host(name.clone(), port.clone());
    }
    builder
        .store(Arc::new(store.clone()))
        .engine(Arc::new(MemoryEngine::new()))
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .without_lobby()
        .config(config)
        .build()
        .expect("every port given")
}

/// The best of `runs` quick passes, and the best of `runs` sequential listings of every host.
async fn measure(config: Config, slow_host: bool, runs: usize) -> (Duration, Duration) {
    let (hosts, store) = fleet(&config, slow_host);
    let reconciler = reconciler(config.clone(), &hosts, &store);
    let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
    let mut pass = Duration::MAX;
    let mut sequential = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        let report = reconciler.tick_quick().await.expect("a quick pass");
        pass = pass.min(started.elapsed());
        assert_eq!(
            report.applied_total(),
            0,
            "a fleet in agreement: {report:?}"
        );

        let started = Instant::now();
        for (_, port) in &hosts {
            port.list_managed(&filter).await.expect("a listing");
        }
        sequential = sequential.min(started.elapsed());
    }
    (pass, sequential)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let runs = 5;
    println!(
        "{HOSTS} hosts x {PER_HOST} containers, each host listing in {} ms; best of {runs}",
        LISTING.as_millis()
    );
    println!(
        "{:<44} {:>10} {:>14} {:>10} {:>10} {:>10}",
        "case", "pass ms", "sequential ms", "ideal ms", "vs seq", "vs ideal"
    );
    let cases = [
        ("all hosts 50 ms", false, Duration::from_secs(10), LISTING),
        (
            "one host 1 s, docker_list_timeout 10s",
            true,
            Duration::from_secs(10),
            SLOW,
        ),
        (
            "one host 1 s, docker_list_timeout 300ms",
            true,
            Duration::from_millis(300),
            Duration::from_millis(300),
        ),
    ];
    for (name, slow_host, timeout, ideal) in cases {
        let config = Config {
            docker_list_timeout: timeout,
            ..Config::default()
        };
        let (pass, sequential) = measure(config, slow_host, runs).await;
        println!(
            "{name:<44} {:>10.1} {:>14.1} {:>10.1} {:>9.2}x {:>9.2}x",
            ms(pass),
            ms(sequential),
            ms(ideal),
            sequential.as_secs_f64() / pass.as_secs_f64(),
            pass.as_secs_f64() / ideal.as_secs_f64(),
        );
    }
}
