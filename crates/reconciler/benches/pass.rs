//! Whole reconcile passes on the in-memory adapters, with an engine fake that takes 10 ms to
//! answer: how close bounded concurrent probing comes to its ideal, how much faster it is than
//! the seed's one-probe-at-a-time pass, and how much memory a 100k-game pass needs.
//!
//! Run with `cargo bench -p galaxy-runtime-reconciler --bench pass`. It prints its figures;
//! `docs/performance.md` §2 records them.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use galaxy_runtime_memory::MemoryPorts;
use galaxy_runtime_model::{Config, GameId};
use galaxy_runtime_reconciler::Reconciler;

const LATENCY: Duration = Duration::from_millis(10);

/// A healthy fleet of `games` games on fresh memory adapters, probed `concurrency` at a time.
fn fleet(games: usize, concurrency: usize, latency: Duration) -> (Reconciler, MemoryPorts) {
    let config = Config {
        probe_concurrency: NonZeroUsize::new(concurrency).expect("concurrency above 0"),
        ..Config::default()
    };
    let ports = MemoryPorts::new();
    for _ in 0..games {
        ports.add_running_game(&config, GameId::new_random());
    }
    ports.engine.set_default_latency(latency);
    let reconciler = Reconciler::builder()
        .docker(ports.docker.clone())
        .store(ports.store.clone())
        .engine(ports.engine.clone())
        .lobby(ports.lobby.clone())
        .outbox(ports.store.clone())
        .cache(ports.cache.clone())
        .scheduler(ports.scheduler.clone())
        .config(config)
        .build()
        .expect("every port given");
    (reconciler, ports)
}

/// Runs `runs` passes and returns their wall-clock durations, checking each did its work.
async fn passes(
    reconciler: &Reconciler,
    ports: &MemoryPorts,
    games: usize,
    runs: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        ports.engine.reset_counters();
        let started = Instant::now();
        let report = reconciler.tick().await.expect("a healthy fleet passes");
        times.push(started.elapsed());
        let d = report.durations;
        eprintln!(
            "  observe {:.1} ms, plan {:.1} ms, apply {:.1} ms",
            ms(d.observe),
            ms(d.plan),
            ms(d.apply)
        );
        assert_eq!(report.applied["publish_snapshot"], games as u64);
        assert_eq!(ports.engine.probes(), games as u64);
        assert!(ports.engine.max_in_flight() <= reconciler.config().probe_concurrency.get());
    }
    times.sort();
    times
}

/// What one probe of the engine fake really takes on this machine (its sleep rounds up to the
/// timer's millisecond ticks): the mean of sequential probes made directly, without the
/// reconciler.
async fn engine_latency(ports: &MemoryPorts, probes: u32) -> Duration {
    use galaxy_runtime_ports::EnginePort;
    let endpoint = "http://calibration:8080";
    ports.engine.set_json(endpoint, serde_json::json!({}));
    let started = Instant::now();
    for _ in 0..probes {
        ports
            .engine
            .status(endpoint)
            .await
            .expect("calibration answer");
    }
    started.elapsed() / probes
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A line of `/proc/self/status` (`VmHWM`, `VmRSS`) in KiB; `None` off Linux.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak resident set size (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let runtime = if std::env::var_os("PASS_BENCH_CURRENT_THREAD").is_some() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_time()
    .build()
    .expect("tokio runtime");
    runtime.block_on(async {
        println!(
            "whole passes on the memory adapters, engine latency {} ms",
            ms(LATENCY)
        );
        println!();

        // 10k games at probe_concurrency 64 against the ideal ceil(10000/64) x 10 ms.
        let (games, concurrency) = (10_000, 64);
        let (reconciler, ports) = fleet(games, concurrency, LATENCY);
        let real_latency = engine_latency(&ports, 200).await;
        let times = passes(&reconciler, &ports, games, 5).await;
        let waves = games.div_ceil(concurrency) as u32;
        let ideal = LATENCY * waves;
        let real_ideal = real_latency * waves;
        let median = times[times.len() / 2];
        println!(
            "{games} games, concurrency {concurrency}: median {:.0} ms (min {:.0}, max {:.0}) \
             vs ideal {:.0} ms: {:+.1} % (goal: within 15 %)",
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            ms(ideal),
            (median.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0
        );
        println!(
            "  the engine fake's 10 ms sleep really takes {:.2} ms here; against \
             {waves} x {:.2} ms = {:.0} ms the pass is {:+.1} %",
            ms(real_latency),
            ms(real_latency),
            ms(real_ideal),
            (median.as_secs_f64() / real_ideal.as_secs_f64() - 1.0) * 100.0
        );
        drop((reconciler, ports));

        // 500 games, one probe at a time (the seed) against 64 at a time.
        let games = 500;
        let (reconciler, ports) = fleet(games, 1, LATENCY);
        let sequential = passes(&reconciler, &ports, games, 3).await;
        let (reconciler, ports) = fleet(games, 64, LATENCY);
        let concurrent = passes(&reconciler, &ports, games, 5).await;
        let (s, c) = (
            sequential[sequential.len() / 2],
            concurrent[concurrent.len() / 2],
        );
        println!(
            "{games} games: concurrency 1 median {:.0} ms, concurrency 64 median {:.1} ms: \
             {:.1}x faster (goal: at least 40x)",
            ms(s),
            ms(c),
            s.as_secs_f64() / c.as_secs_f64()
        );
        drop((reconciler, ports));

        // Peak memory of a 100k-game pass: the first (which also fills the store with 100k
        // snapshots) and a second one on the same fleet.
        let games = 100_000;
        let (reconciler, _ports) = fleet(games, 64, Duration::from_millis(1));
        for pass in ["first", "second"] {
            let before = proc_status_kib("VmRSS");
            let reset = reset_peak();
            let started = Instant::now();
            let report = reconciler.tick().await.expect("a healthy fleet passes");
            let took = started.elapsed();
            assert_eq!(report.applied["publish_snapshot"], games as u64);
            match (before, proc_status_kib("VmHWM")) {
                (Some(rss), Some(peak)) => println!(
                    "{games} games, concurrency 64, engine latency 1 ms, {pass} pass: {:.1} s; \
                     resident before {:.0} MiB, peak during the pass {:.0} MiB (+{:.0} MiB){}",
                    took.as_secs_f64(),
                    rss as f64 / 1024.0,
                    peak as f64 / 1024.0,
                    peak.saturating_sub(rss) as f64 / 1024.0,
                    if reset {
                        ""
                    } else {
                        " (peak not reset: it includes earlier runs)"
                    }
                ),
                _ => println!(
                    "{games} games, {pass} pass: {:.1} s; no /proc to read memory from",
                    took.as_secs_f64()
                ),
            }
        }
    });
}
