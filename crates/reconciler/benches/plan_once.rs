//! The planner on one generated fleet, timed without criterion's machinery: for profilers and
//! simulators that count instructions or cache misses (`valgrind --tool=callgrind
//! --cache-sim=yes --toggle-collect='*planner::plan*'`), whose counts do not depend on what else
//! the machine runs, where criterion's times do.
//!
//! `PLAN_GAMES=100000 PLAN_ROUNDS=5 cargo bench -p galaxy-runtime-reconciler --bench plan_once`
//!
//! With `PLAN_JSON=<file>` the last round's plan is written there as JSON, so that a change of
//! the planner's layout can be checked to plan exactly as the build before it.

use std::time::Instant;

use galaxy_runtime_reconciler::plan;
use galaxy_runtime_testkit::fleet;

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let games = number("PLAN_GAMES", 100_000);
    let rounds = number("PLAN_ROUNDS", 5).max(1);
    let (observation, config) = fleet::fleet(games).into_parts();
    let mut times = Vec::with_capacity(rounds);
    let mut actions = 0;
    for _ in 0..rounds {
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
    println!(
        "plan of {games} games ({actions} actions), {rounds} rounds: min {:.2?}, median {:.2?}",
        times[0],
        times[times.len() / 2]
    );
}
