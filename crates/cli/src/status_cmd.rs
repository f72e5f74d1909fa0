//! `galaxy-runtime status`: the runtime records as a table (or JSON).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use anyhow::{Context, anyhow};
use galaxy_runtime_model::{GameId, RuntimeStatus, Timestamp};
use galaxy_runtime_store::StoredRecord;
use serde::Serialize;

use crate::cli::{Format, StatusArgs};
use crate::connect;
use crate::render::{self, Cell, Colour};
use crate::settings::Settings;

/// One row of `status --format json`.
#[derive(Debug, Serialize)]
struct Row<'a> {
    game_id: GameId,
    status: RuntimeStatus,
    status_message: &'a str,
    status_changed_at: Timestamp,
    container_id: &'a str,
    image_ref: &'a str,
    engine_version: &'a str,
    engine_endpoint: &'a str,
    probe_failures: u32,
    last_snapshot_at: Option<Timestamp>,
    last_snapshot_age_seconds: Option<u64>,
}

/// Reads every record and the time of each game's last snapshot, and prints them.
pub async fn run(args: &StatusArgs, settings: Settings) -> anyhow::Result<()> {
    let store = connect::store(&settings).await?;
    let read = async {
        let records = store.list_stored_records().await?;
        let snapshots = store.snapshot_times().await?;
        Ok::<_, galaxy_runtime_ports::PortError>((records, snapshots))
    }
    .await;
    store.close();
    let (records, snapshots) =
        read.map_err(|e| anyhow!("cannot read the runtime records: {}", connect::describe(&e)))?;
    let now = Timestamp::now();
    let mut out = render::stdout();
    match args.format {
        Format::Json => {
            let rows: Vec<Row<'_>> = records
                .iter()
                .map(|stored| row(stored, &snapshots, now))
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows).context("cannot write the status")?;
            writeln!(out).context("cannot write the status")?;
        }
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            table(&mut out, &records, &snapshots, now, colour)
                .context("cannot write the status")?;
        }
    }
    out.flush().context("cannot write the status")
}

fn row<'a>(
    stored: &'a StoredRecord,
    snapshots: &BTreeMap<GameId, Timestamp>,
    now: Timestamp,
) -> Row<'a> {
    let r = &stored.record;
    let last = snapshots.get(&r.game_id).copied();
    Row {
        game_id: r.game_id,
        status: r.status,
        status_message: &stored.status_message,
        status_changed_at: r.status_changed_at,
        container_id: &r.current_container_id,
        image_ref: &r.current_image_ref,
        engine_version: &r.current_engine_version,
        engine_endpoint: &r.engine_endpoint,
        probe_failures: r.probe_failures,
        last_snapshot_at: last,
        last_snapshot_age_seconds: last.map(|at| now.saturating_since(at).as_secs()),
    }
}

fn status_colour(status: RuntimeStatus) -> Colour {
    match status {
        RuntimeStatus::Running => Colour::Green,
        RuntimeStatus::Starting | RuntimeStatus::Stopped => Colour::Cyan,
        RuntimeStatus::EngineUnreachable => Colour::Yellow,
        RuntimeStatus::Failed => Colour::Red,
        RuntimeStatus::Removed => Colour::Dim,
    }
}

fn table(
    out: &mut impl Write,
    records: &[StoredRecord],
    snapshots: &BTreeMap<GameId, Timestamp>,
    now: Timestamp,
    colour: bool,
) -> std::io::Result<()> {
    if records.is_empty() {
        return writeln!(
            out,
            "No runtime records. `galaxy-runtime games add GAME_ID` registers a game whose \
             container the next pass adopts."
        );
    }
    let rows: Vec<Vec<Cell>> = records
        .iter()
        .map(|stored| {
            let r = &stored.record;
            let failures = if r.probe_failures == 0 {
                Cell::plain("0")
            } else {
                Cell::coloured(r.probe_failures.to_string(), Colour::Yellow)
            };
            vec![
                Cell::plain(r.game_id.to_string()),
                Cell::coloured(r.status.to_string(), status_colour(r.status)),
                Cell::plain(if r.current_container_id.is_empty() {
                    "-".to_owned()
                } else {
                    render::short(&r.current_container_id)
                }),
                Cell::plain(if r.current_engine_version.is_empty() {
                    "-".to_owned()
                } else {
                    render::escape(&r.current_engine_version)
                }),
                failures,
                Cell::plain(snapshots.get(&r.game_id).map_or_else(
                    || "-".to_owned(),
                    |at| render::age(now.saturating_since(*at)),
                )),
                Cell::plain(render::age(now.saturating_since(r.status_changed_at))),
            ]
        })
        .collect();
    render::table(
        out,
        &[
            "GAME",
            "STATUS",
            "CONTAINER",
            "ENGINE",
            "PROBE FAILURES",
            "SNAPSHOT AGE",
            "STATUS AGE",
        ],
        &rows,
        colour,
    )?;
    let mut counts: BTreeMap<RuntimeStatus, usize> = BTreeMap::new();
    for stored in records {
        *counts.entry(stored.record.status).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    writeln!(
        out,
        "{} record{}: {}.",
        records.len(),
        if records.len() == 1 { "" } else { "s" },
        counts.join(", ")
    )
}
