//! Any bytes given to `galaxy-runtime plan`: parsing either refuses them with an error or gives
//! a scenario whose plan is made and printed, both formats, without a panic; and planning the
//! same scenario twice gives the same JSON.

#![no_main]

use galaxy_runtime_model::Scenario;
use galaxy_runtime_reconciler::plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = Scenario::from_json(text) else {
        return;
    };
    let (observation, config) = scenario.into_parts();
    let first = plan(&observation, &config);
    let again = plan(&observation, &config);
    let json = serde_json::to_string(&first).expect("a plan always serialises");
    assert_eq!(
        json,
        serde_json::to_string(&again).expect("a plan always serialises")
    );
});
