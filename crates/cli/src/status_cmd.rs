//! `galaxy-runtime status`: the runtime records as a table (or JSON).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use anyhow::{Context, anyhow};
use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Timestamp};
use galaxy_runtime_store::StoredRecord;
use serde::Serialize;

use crate::cli::{Format, StatusArgs};
use crate::connect;
use crate::render::{self, Cell, Colour};
use crate::settings::Settings;

/// One row of `status --format json`: the record in its own JSON, with the contract's field
/// names, followed by what the store adds.
#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    record: &'a RuntimeRecord,
    status_message: &'a str,
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
        record: r,
        status_message: &stored.status_message,
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
    // The HOST column only for a fleet of several hosts (CONTRACT §6).
    let hosts = records.iter().any(|s| !s.record.docker_host.is_empty());
    let rows: Vec<Vec<Cell>> = records
        .iter()
        .map(|stored| {
            let r = &stored.record;
            let failures = if r.probe_failures == 0 {
                Cell::plain("0")
            } else {
                Cell::coloured(r.probe_failures.to_string(), Colour::Yellow)
            };
            let mut row = vec![
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
            ];
            if hosts {
                let host = if r.docker_host.is_empty() {
                    "-".to_owned()
                } else {
                    render::escape(&r.docker_host)
                };
                row.insert(2, Cell::plain(host));
            }
            row
        })
        .collect();
    let mut header = vec![
        "GAME",
        "STATUS",
        "CONTAINER",
        "ENGINE",
        "PROBE FAILURES",
        "SNAPSHOT AGE",
        "STATUS AGE",
    ];
    if hosts {
        header.insert(2, "HOST");
    }
    render::table(out, &header, &rows, colour)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_use_the_record_s_own_field_names() {
        let game_id = GameId::new_random();
        let changed: Timestamp = "2026-11-27T11:00:00Z".parse().unwrap();
        let stored = StoredRecord {
            record: RuntimeRecord {
                current_container_id: "c1".to_owned(),
                current_image_ref: "galaxy/engine:1.4".to_owned(),
                current_engine_version: "1.4.0".to_owned(),
                ..RuntimeRecord::new(game_id, RuntimeStatus::Running, changed)
            },
            status_message: "engine reachable".to_owned(),
            created_at: changed,
            updated_at: changed,
            version: 2,
        };
        let snapshot: Timestamp = "2026-11-27T11:59:00Z".parse().unwrap();
        let snapshots = BTreeMap::from([(game_id, snapshot)]);
        let now: Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        let json = serde_json::to_value(row(&stored, &snapshots, now)).unwrap();

        let record = serde_json::to_value(&stored.record).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        let record_keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys[..record_keys.len()], record_keys[..], "{json}");
        assert_eq!(json["current_container_id"], "c1");
        assert_eq!(json["current_image_ref"], "galaxy/engine:1.4");
        assert_eq!(json["current_engine_version"], "1.4.0");
        assert_eq!(json["status_message"], "engine reachable");
        assert_eq!(json["last_snapshot_at"], "2026-11-27T11:59:00Z");
        assert_eq!(json["last_snapshot_age_seconds"], 60);
    }

    #[test]
    fn the_host_column_shows_only_for_several_hosts() {
        let changed: Timestamp = "2026-11-27T11:00:00Z".parse().unwrap();
        let stored = |host: &str| StoredRecord {
            record: RuntimeRecord {
                docker_host: host.to_owned(),
                ..RuntimeRecord::new(GameId::new_random(), RuntimeStatus::Running, changed)
            },
            status_message: String::new(),
            created_at: changed,
            updated_at: changed,
            version: 1,
        };
        let text = |records: &[StoredRecord]| {
            let mut out = Vec::new();
            table(&mut out, records, &BTreeMap::new(), changed, false).unwrap();
            String::from_utf8(out).unwrap()
        };
        let one = text(&[stored("")]);
        assert!(!one.contains("HOST"), "{one}");
        let several = text(&[stored("eu-1"), stored("")]);
        let header = several.lines().next().unwrap();
        assert!(
            header.contains("STATUS") && header.contains("HOST"),
            "{several}"
        );
        assert!(several.contains("eu-1"), "{several}");
        let json = serde_json::to_value(row(&stored("eu-1"), &BTreeMap::new(), changed)).unwrap();
        assert_eq!(json["docker_host"], "eu-1");
    }
}
