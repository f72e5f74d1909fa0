//! The planner on one generated fleet, timed without criterion's machinery: for profilers and
//! simulators that count instructions or cache misses (`valgrind --tool=callgrind
//! --cache-sim=yes --toggle-collect='*planner::plan*'`), whose counts do not depend on what else
//! the machine runs, where criterion's times do.
//!
//! `PLAN_GAMES=100000 PLAN_ROUNDS=5 cargo bench -p galaxy-runtime-reconciler --bench plan_once`
//! (`--bench plan_once_mimalloc`: the same with mimalloc as the process's allocator, as the
//! command-line tool has; `docs/performance.md` §10).
//!
//! With `PLAN_JSON=<file>` the last round's plan is written there as JSON, so that a change of
//! the planner's layout can be checked to plan exactly as the build before it.
//!
//! Each round also times reading, in the observation's order, every field of every container
//! and record that the rules read (ids, names, labels, states, times, statuses): the floor of
//! what reaching the observation's memory costs, against which the planner's own work shows.

use std::time::Instant;

use galaxy_runtime_model::Observation;
use galaxy_runtime_reconciler::plan;
use galaxy_runtime_testkit::fleet;

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads one byte or word of every field the rules read, so that none can be skipped.
fn touch(observation: &Observation) -> usize {
    let first = |text: &str| usize::from(text.as_bytes().first().copied().unwrap_or(0));
    let mut sum = 0usize;
    for c in &observation.containers {
        sum = sum.wrapping_add(first(&c.id) + first(&c.name) + c.name.len() + first(&c.host));
        for (key, value) in &c.labels {
            sum = sum.wrapping_add(first(key) + first(value) + value.len());
        }
        sum = sum.wrapping_add(c.state as usize + c.created.unix_micros() as usize);
    }
    for r in &observation.records {
        sum = sum.wrapping_add(first(&r.current_container_id) + first(&r.docker_host));
        sum = sum.wrapping_add(r.status as usize + r.probe_failures as usize);
        sum = sum.wrapping_add(r.game_id.as_uuid().as_u128() as usize);
    }
    sum
}

/// Runs the bench; `pub` for `plan_once_mimalloc`, which runs it with another allocator.
pub fn main() {
    let games = number("PLAN_GAMES", 100_000);
    let rounds = number("PLAN_ROUNDS", 5).max(1);
    let (observation, config) = fleet::fleet(games).into_parts();
    let mut times = Vec::with_capacity(rounds);
    let mut floors = Vec::with_capacity(rounds);
    let mut actions = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(touch(std::hint::black_box(&observation)));
        floors.push(started.elapsed());
        let started = Instant::now();
        let planned = plan(&observation, &config);
        times.push(started.elapsed());
        actions = planned.actions.len();
        if let Some(path) = std::env::var_os("PLAN_JSON") {
            let json = serde_json::to_vec_pretty(&planned).expect("a plan is JSON");
            std::fs::write(&path, json).expect("the plan file can be written");
        }
        drop(planned);
    }
    times.sort();
    floors.sort();
    println!(
        "plan of {games} games ({actions} actions), {rounds} rounds: min {:.2?}, median {:.2?}; \
         reading what the rules read alone: min {:.2?}, median {:.2?}",
        times[0],
        times[times.len() / 2],
        floors[0],
        floors[floors.len() / 2]
    );
}
