//! The planner over generated fleets of 1k, 10k and 100k games, plus the `plan` command's work
//! end to end (parse, plan, print) against `serde_json` parsing the same document alone.
//!
//! `cargo bench -p galaxy-runtime-reconciler --bench plan`

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use galaxy_runtime_model::Scenario;
use galaxy_runtime_reconciler::plan;
use galaxy_runtime_testkit::fleet;

fn plan_fleets(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    for games in [1_000, 10_000, 100_000] {
        let (observation, config) = fleet::fleet(games).into_parts();
        group.throughput(Throughput::Elements(games as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(games),
            &observation,
            |b, obs| b.iter(|| plan(obs, &config)),
        );
    }
    group.finish();
}

fn plan_command(c: &mut Criterion) {
    let text = serde_json::to_string(&fleet::fleet(100_000)).expect("serialisable");
    let mut group = c.benchmark_group("plan_command_100k");
    group.sample_size(10);
    group.bench_function("serde_json_parse_only", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON"))
    });
    group.bench_function("scenario_parse_only", |b| {
        b.iter(|| Scenario::from_json(&text).expect("valid"))
    });
    group.bench_function("parse_plan_print", |b| {
        b.iter(|| {
            let (observation, config) = Scenario::from_json(&text).expect("valid").into_parts();
            serde_json::to_string(&plan(&observation, &config)).expect("serialisable")
        })
    });
    group.finish();
}

criterion_group!(benches, plan_fleets, plan_command);
criterion_main!(benches);
