//! `galaxy-runtime observe`: the scenario JSON of one real observation, for `plan` to replay.

use std::io::Write;

use anyhow::{Context, anyhow};

use crate::connect;
use crate::settings::Settings;

/// Observes once (lists, loads, probes) and prints the scenario; writes nothing.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let docker = connect::docker(&settings).await?;
    let store = connect::store(&settings).await?;
    let reconciler = connect::reconciler(&settings, &docker, &store, None)?;
    let observed = reconciler.observe().await;
    store.close();
    let scenario = observed.map_err(|e| {
        anyhow!(
            "the observation failed: {}",
            crate::settings::one_line(&e.to_string())
        )
    })?;
    let mut out = crate::render::stdout();
    serde_json::to_writer_pretty(&mut out, &scenario).context("cannot write the scenario")?;
    writeln!(out).context("cannot write the scenario")?;
    out.flush().context("cannot write the scenario")
}
