//! `galaxy-runtime plan`: scenario in, plan out.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use galaxy_runtime_model::Scenario;
use galaxy_runtime_reconciler::plan;

use crate::BadInput;
use crate::cli::{Format, PlanArgs};
use crate::render;

/// Runs the command.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let scenario = read_scenario(&args.scenario)?;
    let (observation, config) = scenario.into_parts();
    let plan = plan(&observation, &config);
    let mut out = render::stdout();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &plan).context("cannot write the plan")?;
            writeln!(out).context("cannot write the plan")?;
        }
        Format::Text => render::plan_text(&mut out, &plan, Some(observation.now))
            .context("cannot write the plan")?,
    }
    out.flush().context("cannot write the plan")
}

/// Reads and checks a scenario from a file, or from standard input for `-`.
pub fn read_scenario(path: &Path) -> anyhow::Result<Scenario> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| BadInput(format!("cannot read the scenario from standard input: {e}")))?;
        ("standard input".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("cannot read scenario file {}: {e}", path.display())))?;
        (path.display().to_string(), text)
    };
    Scenario::from_json(&text).map_err(|e| BadInput(format!("scenario {name}: {e}")).into())
}
