//! Any bytes given to `galaxy-runtime plan`: parsing either refuses them with an error or gives
//! a scenario whose plan is made and printed in both formats of the command — the plan JSON and
//! the text rendering — without a panic; and the scenario's JSON, as `observe` would print it,
//! reads back as the same scenario and plans to the same JSON, byte for byte.

#![no_main]

use galaxy_runtime_model::Scenario;
use galaxy_runtime_reconciler::plan;
use libfuzzer_sys::fuzz_target;

/// The command's own text rendering, which lives in the CLI binary: the file is compiled here
/// as it is there (it needs only the model and the reconciler), so its string slicing and
/// escaping meet every plan the fuzzer finds.
#[path = "../../crates/cli/src/render.rs"]
#[allow(dead_code)]
mod render;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = Scenario::from_json(text) else {
        return;
    };
    let printed = serde_json::to_string(&scenario).expect("a scenario always serialises");
    let (observation, config) = scenario.into_parts();
    let planned = plan(&observation, &config);
    let json = serde_json::to_string(&planned).expect("a plan always serialises");
    let mut shown = Vec::new();
    render::plan_text(&mut shown, &planned, Some(observation.now))
        .expect("writing to memory does not fail");

    let replayed = Scenario::from_json(&printed)
        .unwrap_or_else(|e| panic!("a printed scenario is refused: {e}\n{printed}"));
    let (observation, config) = replayed.into_parts();
    assert_eq!(
        json,
        serde_json::to_string(&plan(&observation, &config)).expect("a plan always serialises"),
        "the replayed scenario plans differently: {printed}"
    );
});
