//! The Docker and engine adapters on a fleet of real containers: one list call against one
//! inspect per container, and probing every engine at concurrency 64 against 1 (the seed's
//! sequential probing).
//!
//! ```sh
//! scripts/build-test-image.sh
//! cargo bench -p galaxy-runtime-docker --bench fleet
//! ```
//!
//! `GALAXY_RUNTIME_BENCH_CONTAINERS` changes the fleet size (default 200). Every container and
//! the network carry the tests' cleanup labels and are removed at the end, also when the
//! benchmark fails half-way.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Command, MANAGED_LABEL, Scope};
use futures_util::StreamExt;
use galaxy_runtime_engine_http::HttpEngine;
use galaxy_runtime_model::{Config, ContainerState, EngineAddressing};
use galaxy_runtime_ports::{DockerPort, EnginePort, LabelFilter};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const ROUNDS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Probes every endpoint with at most `concurrency` probes in flight; returns the time taken
/// and how many failed.
async fn probe_all(
    engine: &HttpEngine,
    endpoints: &[String],
    concurrency: usize,
) -> (Duration, usize) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut probes = JoinSet::new();
    for endpoint in endpoints {
        let engine = engine.clone();
        let endpoint = endpoint.clone();
        let permits = Arc::clone(&permits);
        probes.spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            engine.status(&endpoint).await.err()
        });
    }
    let mut failed = 0;
    while let Some(result) = probes.join_next().await {
        if !matches!(result, Ok(None)) {
            failed += 1;
        }
    }
    (start.elapsed(), failed)
}

#[tokio::main]
async fn main() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let size: usize = std::env::var("GALAXY_RUNTIME_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let config = Config {
        engine_addressing: EngineAddressing::ContainerIp,
        docker_network: network.clone(),
        ..Config::default()
    };
    let filter = LabelFilter::single(MANAGED_LABEL, &scope.managed_value);

    let start = Instant::now();
    let labels = scope.managed_labels();
    let ids: Vec<String> = futures_util::stream::iter(0..size)
        .map(|_| {
            let (labels, network, scope) = (&labels, &network, &scope);
            async move {
                let name = Scope::game_name();
                scope
                    .make(
                        &name,
                        labels,
                        Command::Engine,
                        Some(network),
                        ContainerState::Running,
                    )
                    .await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    println!(
        "started {size} containers of {} in {:.1} s",
        common::IMAGE,
        start.elapsed().as_secs_f64()
    );

    // One list call.
    let mut list_times = Vec::new();
    let mut listed = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        listed = adapter.list_managed(&filter).await.expect("list managed");
        list_times.push(start.elapsed());
    }
    assert_eq!(listed.len(), size, "every container listed");

    // One inspect per container, as a reconciler without a filtered list would do.
    let mut inspect_times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for id in &ids {
            adapter.inspect(id).await.expect("inspect");
        }
        inspect_times.push(start.elapsed());
    }

    let endpoints: Vec<String> = listed
        .iter()
        .filter_map(|c| c.url_on_network(&network, config.engine_port).ok())
        .collect();
    assert_eq!(endpoints.len(), size, "every container has an address");
    let engine = HttpEngine::from_config(&config);
    // Until every httpd answers.
    let ready_by = Instant::now() + Duration::from_secs(30);
    while probe_all(&engine, &endpoints, 64).await.1 > 0 {
        assert!(
            Instant::now() < ready_by,
            "engines still not answering after 30s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut rows = Vec::new();
    for concurrency in [64, 1] {
        let mut probe_times = Vec::new();
        let mut observe_times = Vec::new();
        let mut failures = 0;
        for _ in 0..ROUNDS {
            // One observe step as the executor does it: the list, then the probes.
            let start = Instant::now();
            let listed = adapter.list_managed(&filter).await.expect("list managed");
            let endpoints: Vec<String> = listed
                .iter()
                .filter_map(|c| c.url_on_network(&network, config.engine_port).ok())
                .collect();
            let (took, failed) = probe_all(&engine, &endpoints, concurrency).await;
            observe_times.push(start.elapsed());
            probe_times.push(took);
            failures += failed;
        }
        rows.push((
            concurrency,
            median(probe_times),
            median(observe_times),
            failures,
        ));
    }

    println!();
    println!("| {size} managed containers | median of {ROUNDS} |");
    println!("| --- | --- |");
    println!(
        "| one list call (`list_managed`) | {} |",
        ms(median(list_times))
    );
    println!(
        "| one inspect per container ({size} calls, one after another) | {} |",
        ms(median(inspect_times))
    );
    for (concurrency, probes, observe, failures) in rows {
        println!(
            "| probe all engines, concurrency {concurrency} | {} ({failures} failed probes) |",
            ms(probes)
        );
        println!(
            "| observe step (list + probes), concurrency {concurrency} | {} |",
            ms(observe)
        );
    }

    let start = Instant::now();
    drop(scope);
    println!();
    println!(
        "removed the containers and the network in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
