//! Peak memory of a whole 100k-game pass against the fleet's own data, counted by a global
//! allocator that tracks the bytes live and their high-water mark (exact, unlike the resident
//! set, which keeps pages the allocator does not hand back).
//!
//! The fleet's own data is what the memory adapters hold for it — containers, records,
//! projections, engine answers and, once a pass has published them, the snapshots — measured
//! just before each pass. Goal: a pass peaks at no more than 1.5 times that.
//!
//! Run with `cargo bench -p galaxy-runtime-reconciler --bench memory`
//! (`MEMORY_BENCH_GAMES=10000` for another size). It prints its figures; `docs/performance.md`
//! §7 records them. A separate binary from `--bench pass`, so that counting does not touch the
//! timings there.

// Counting needs a global allocator, and `GlobalAlloc` is an unsafe trait: this bench is the
// one place of the workspace that implements one.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use galaxy_runtime_memory::MemoryPorts;
use galaxy_runtime_model::{Config, GameId, Snapshot};
use galaxy_runtime_ports::{DockerPort, LabelFilter, StorePort};
use galaxy_runtime_reconciler::{Action, Reconciler, plan};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let games: usize = match std::env::var("MEMORY_BENCH_GAMES") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            eprintln!("MEMORY_BENCH_GAMES: {text:?} is not a number of games");
            std::process::exit(2)
        }),
        Err(_) => 100_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let baseline = LIVE.load(Ordering::Relaxed);
        let config = Config {
            probe_concurrency: NonZeroUsize::new(64).expect("64 is not zero"),
            ..Config::default()
        };
        let ports = MemoryPorts::new();
        for _ in 0..games {
            ports.add_running_game(&config, GameId::new_random());
        }
        ports.engine.set_default_latency(Duration::from_millis(1));
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
        println!(
            "peak memory of whole passes, {games} games on the memory adapters, concurrency 64, \
             engine latency 1 ms (bytes live, counted by the allocator)"
        );
        for pass in ["first", "second"] {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let fleet = before - baseline;
            let started = Instant::now();
            let report = reconciler.tick().await.expect("a healthy fleet passes");
            let took = started.elapsed();
            assert_eq!(report.applied["publish_snapshot"], games as u64);
            let peak = PEAK.load(Ordering::Relaxed) - baseline;
            println!(
                "{pass} pass: {:.1} s; the fleet's own data before it {:.1} MiB ({:.0} bytes a \
                 game), peak during it {:.1} MiB (+{:.1} MiB): {:.2}x the fleet's data (goal: at \
                 most 1.5x)",
                took.as_secs_f64(),
                mib(fleet),
                fleet as f64 / games as f64,
                mib(peak),
                mib(peak - fleet),
                peak as f64 / fleet as f64
            );
        }

        // Where a pass's memory goes: what it holds at its peak, each part measured alone on
        // the same fleet (bytes live after building it, minus before).
        println!("what a pass holds, each part measured alone:");
        let part = |name: &str, bytes: usize| {
            println!(
                "  {name}: {:.1} MiB ({:.0} bytes a game)",
                mib(bytes),
                bytes as f64 / games as f64
            );
        };
        let config = reconciler.config().clone();
        let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
        let start = LIVE.load(Ordering::Relaxed);
        let containers = ports.docker.list_managed(&filter).await.expect("listing");
        part(
            "the containers listed",
            LIVE.load(Ordering::Relaxed) - start,
        );
        drop(containers);
        let start = LIVE.load(Ordering::Relaxed);
        let records = ports.store.list_records().await.expect("listing");
        part("the records listed", LIVE.load(Ordering::Relaxed) - start);
        drop(records);
        let start = LIVE.load(Ordering::Relaxed);
        let scenario = reconciler.observe().await.expect("observing");
        let observed = LIVE.load(Ordering::Relaxed) - start;
        part(
            "the whole observation (containers, records, probe outcomes)",
            observed,
        );
        let start = LIVE.load(Ordering::Relaxed);
        let (observation, config) = scenario.into_parts();
        let planned = plan(&observation, &config);
        part("the plan", LIVE.load(Ordering::Relaxed) - start);
        let start = LIVE.load(Ordering::Relaxed);
        let snapshots: Vec<Snapshot> = planned
            .actions
            .iter()
            .filter_map(|action| match action {
                Action::PublishSnapshot { game_id, state } => Some(Snapshot {
                    game_id: *game_id,
                    state: std::sync::Arc::clone(state),
                    observed_at: observation.now,
                }),
                _ => None,
            })
            .collect();
        part(
            "the snapshot batch the executor hands the store (sharing the outcomes' JSON)",
            LIVE.load(Ordering::Relaxed) - start,
        );
        drop((snapshots, planned, observation));
    });
}
