//! How soon a vanished container's record is marked `removed` while a full pass probes the
//! fleet: the loop as it is (a quick pass on the Docker event) against the behaviour before
//! quick passes (every event a full pass, which waits for the full pass in flight and then
//! probes the whole fleet again before it applies anything), measured in the same run.
//!
//! Fleets of 1k, 10k and 100k games on the memory adapters, engines answering in 10 ms,
//! `probe_concurrency` 64. Once a third of the fleet is probed, one game's container is
//! removed; the Docker event is played by calling `trigger()` `event_debounce` later, as the
//! event watcher does after its debounce window. The figure is the time from the removal to the
//! record being `removed` in the store (polled every millisecond). Goal: under `event_debounce`
//! + 100 ms at every size.
//!
//! Run with `cargo bench -p galaxy-runtime-reconciler --bench reaction`
//! (`REACTION_BENCH_SIZES=1000,10000` for fewer sizes). It prints its figures;
//! `docs/performance.md` §6 records them.
//!
//! `--bench reaction_mimalloc` is the same bench with mimalloc as the process's allocator, as
//! the command-line tool has (`docs/performance.md` §10).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use galaxy_runtime_memory::MemoryPorts;
use galaxy_runtime_model::{Config, GameId, RuntimeRecord, RuntimeStatus};
use galaxy_runtime_ports::Component;
use galaxy_runtime_reconciler::Reconciler;
use tokio_util::sync::CancellationToken;

const LATENCY: Duration = Duration::from_millis(10);
const CONCURRENCY: usize = 64;

/// How a Docker event is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// The loop as it is: a quick pass on the trigger, beside the full pass.
    QuickPass,
    /// Before quick passes: the event asks for a full pass, which waits for the one in flight.
    FullPass,
}

/// A healthy fleet on fresh memory adapters, and the record of the game whose container the
/// run removes.
fn fleet(games: usize) -> (Reconciler, MemoryPorts, RuntimeRecord) {
    let config = Config {
        probe_concurrency: NonZeroUsize::new(CONCURRENCY).expect("concurrency above 0"),
        // No periodic pass during a run: only the start-up full pass probes.
        reconcile_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    let ports = MemoryPorts::new();
    let mut victim = None;
    for _ in 0..games {
        victim = Some(ports.add_running_game(&config, GameId::new_random()));
    }
    ports.engine.set_default_latency(LATENCY);
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
    (reconciler, ports, victim.expect("at least one game"))
}

/// What one run measured.
struct Reaction {
    /// From the removal to the record being `removed`.
    took: Duration,
    /// Probes of the full pass made when the record was seen `removed`.
    probes_then: u64,
}

/// One run: a full pass starts, a container vanishes once a third of the fleet is probed, the
/// event arrives `event_debounce` later.
async fn run(games: usize, behaviour: Behaviour) -> Reaction {
    let (reconciler, ports, victim) = fleet(games);
    let debounce = reconciler.config().event_debounce;
    let cancel = CancellationToken::new();
    let full_pass = {
        let reconciler = reconciler.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            match behaviour {
                // The loop's own start-up full pass.
                Behaviour::QuickPass => reconciler.run(cancel).await.map(|_| ()),
                Behaviour::FullPass => reconciler.tick().await.map(|_| ()).map_err(|e| {
                    galaxy_runtime_ports::PortError::invalid(format!("full pass failed: {e}"))
                }),
            }
        })
    };
    while ports.engine.probes() < games as u64 / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ports
        .docker
        .remove(&victim.current_container_id)
        .expect("the victim's container exists");
    let removed_at = Instant::now();
    let watch = {
        let ports = ports.clone();
        tokio::spawn(async move {
            loop {
                let status = ports.store.record(victim.game_id).map(|r| r.status);
                if status == Some(RuntimeStatus::Removed) {
                    return (removed_at.elapsed(), ports.engine.probes());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(debounce).await;
    let event = match behaviour {
        Behaviour::QuickPass => {
            reconciler.trigger();
            None
        }
        Behaviour::FullPass => {
            let reconciler = reconciler.clone();
            Some(tokio::spawn(async move { reconciler.tick().await }))
        }
    };
    let (took, probes_then) = watch.await.expect("the watcher does not panic");
    cancel.cancel();
    // The passes in flight are not waited for: the figure is taken, and a 100k full pass
    // takes seconds to finish.
    full_pass.abort();
    if let Some(event) = event {
        event.abort();
    }
    Reaction { took, probes_then }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the bench; `pub` for `reaction_mimalloc`, which runs it with another allocator.
pub fn main() {
    let sizes: Vec<usize> = std::env::var("REACTION_BENCH_SIZES")
        .ok()
        .map(|text| {
            text.split(',')
                .map(|n| {
                    n.trim().parse().unwrap_or_else(|_| {
                        eprintln!("REACTION_BENCH_SIZES: {n:?} is not a number of games");
                        std::process::exit(2)
                    })
                })
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let debounce = Config::default().event_debounce;
    println!(
        "reaction to a removed container during a full pass: memory adapters, engines at {} ms, \
         probe_concurrency {CONCURRENCY}, event_debounce {} ms; goal: under {} ms",
        ms(LATENCY),
        ms(debounce),
        ms(debounce + Duration::from_millis(100))
    );
    runtime.block_on(async {
        for games in sizes {
            // The full-pass behaviour takes a whole probing round per run: fewer runs at 100k.
            let (quick_runs, full_runs) = if games >= 100_000 { (3, 1) } else { (5, 3) };
            // What a quick pass costs alone, on the same fleet with nothing else running.
            let (reconciler, _ports, _) = fleet(games);
            let mut alone = Vec::new();
            for _ in 0..3 {
                let report = reconciler.tick_quick().await.expect("a healthy fleet passes");
                let d = report.durations;
                alone.push((d.observe + d.plan + d.apply, d));
            }
            alone.sort_by_key(|(total, _)| *total);
            let (total, d) = alone[1];
            println!(
                "{games:>7} games: a quick pass alone takes {:.1} ms (observe {:.1}, plan {:.1}, \
                 apply {:.1}; median of 3)",
                ms(total),
                ms(d.observe),
                ms(d.plan),
                ms(d.apply)
            );
            drop((reconciler, _ports));
            let mut quick = Vec::new();
            let mut during_probing = 0;
            for _ in 0..quick_runs {
                let reaction = run(games, Behaviour::QuickPass).await;
                // A small fleet is probed within the debounce: then the full pass is over
                // before the event arrives.
                if reaction.probes_then < games as u64 {
                    during_probing += 1;
                }
                quick.push(reaction.took);
            }
            let mut full = Vec::new();
            for _ in 0..full_runs {
                let reaction = run(games, Behaviour::FullPass).await;
                assert!(
                    reaction.probes_then >= 2 * games as u64 - 1,
                    "the full-pass behaviour removes only after a second whole probing round"
                );
                full.push(reaction.took);
            }
            quick.sort();
            full.sort();
            let (q, f) = (quick[quick.len() / 2], full[full.len() / 2]);
            println!(
                "{games:>7} games: quick pass on the event {:.0} ms (min {:.0}, max {:.0}; {} runs), \
                 of which {:.0} ms debounce, {during_probing} of them while the full pass still \
                 probed; a full pass per event {:.0} ms (min {:.0}, max {:.0}; \
                 {} runs): {:.1}x sooner; goal {}",
                ms(q),
                ms(quick[0]),
                ms(quick[quick.len() - 1]),
                quick.len(),
                ms(debounce),
                ms(f),
                ms(full[0]),
                ms(full[full.len() - 1]),
                full.len(),
                f.as_secs_f64() / q.as_secs_f64(),
                if quick[quick.len() - 1] < debounce + Duration::from_millis(100) {
                    "met"
                } else {
                    "not met"
                }
            );
        }
    });
}
