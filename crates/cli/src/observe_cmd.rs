//! `galaxy-runtime observe`: the scenario JSON of one real observation, for `plan` to replay.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use galaxy_runtime_reconciler::ProbeProgress;

use crate::connect;
use crate::progress::ProgressLine;
use crate::settings::{LogFormat, Settings};

/// Observes once (lists, loads, probes) and prints the scenario; writes nothing.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let docker = connect::docker(&settings).await?;
    let store = connect::store(&settings).await?;
    // The scenario goes to standard output; the progress line to the terminal, if any.
    let progress = ProgressLine::on_terminal(settings.log_format == LogFormat::Text)
        .map(|line| line as Arc<dyn ProbeProgress>);
    let reconciler = connect::reconciler(&settings, &docker, &store, None, progress)?;
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
