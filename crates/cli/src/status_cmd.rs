//! `galaxy-runtime status`: the runtime records as a table (or JSON).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use anyhow::{Context, anyhow};
use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Timestamp};
use galaxy_runtime_store::{Store, StoredRecord};
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

/// Reads every record and the time of each game's last snapshot, and prints them; with
/// `--watch`, again every `--interval` until Ctrl-C or SIGTERM.
pub async fn run(args: &StatusArgs, settings: Settings) -> anyhow::Result<()> {
    let store = connect::store(&settings).await?;
    let result = if args.watch {
        watch(args, &store).await
    } else {
        once(args, &store).await
    };
    store.close();
    result
}

/// What one read of the store gives.
type Read = (Vec<StoredRecord>, BTreeMap<GameId, Timestamp>);

/// Every record and the time of each game's last snapshot.
async fn read(store: &Store) -> anyhow::Result<Read> {
    let read = async {
        let records = store.list_stored_records().await?;
        let snapshots = store.snapshot_times().await?;
        Ok::<_, galaxy_runtime_ports::PortError>((records, snapshots))
    }
    .await;
    read.map_err(|e| anyhow!("cannot read the runtime records: {}", connect::describe(&e)))
}

async fn once(args: &StatusArgs, store: &Store) -> anyhow::Result<()> {
    let (records, snapshots) = read(store).await?;
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
            table(&mut out, &records, &snapshots, now, None, colour)
                .context("cannot write the status")?;
        }
    }
    out.flush().context("cannot write the status")
}

/// How a record differs from the last draw of `status --watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Not in the last draw.
    Added,
    /// In it, with other values (status, container, host, engine, probe failures, message);
    /// ages and snapshot times move on their own and do not count.
    Changed,
    /// As it was.
    Same,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Changed => "changed",
            Self::Same => "same",
        }
    }
}

/// What a draw compares: the record and its status message.
type Seen = BTreeMap<GameId, (RuntimeRecord, String)>;

/// The change of each record since `last` (every record is added on the first draw), and the
/// games whose record is gone since.
fn changes(last: Option<&Seen>, records: &[StoredRecord]) -> (Vec<Change>, Vec<GameId>, Seen) {
    let seen: Seen = records
        .iter()
        .map(|s| {
            (
                s.record.game_id,
                (s.record.clone(), s.status_message.clone()),
            )
        })
        .collect();
    let change = |stored: &StoredRecord| match last.and_then(|l| l.get(&stored.record.game_id)) {
        None => Change::Added,
        Some((record, message))
            if *record == stored.record && *message == stored.status_message =>
        {
            Change::Same
        }
        Some(_) => Change::Changed,
    };
    let marks = records.iter().map(change).collect();
    let gone = last
        .map(|l| {
            l.keys()
                .filter(|g| !seen.contains_key(g))
                .copied()
                .collect()
        })
        .unwrap_or_default();
    (marks, gone, seen)
}

/// `status --watch`: the table redrawn in place on a terminal with what changed since the last
/// draw marked (`+` added, `*` changed, the gone listed below), as `kubectl get -w` keeps a
/// listing live; off a terminal, the first table and then, at each change, the changed rows
/// under a time stamp; with `--format json`, one JSON object per added, changed or gone record
/// and line. A failed read after the first is reported and the watch goes on (a database blip
/// must not end it); the first failing is an error, as without `--watch`.
async fn watch(args: &StatusArgs, store: &Store) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let colour = terminal && std::env::var_os("NO_COLOR").is_none();
    let mut last: Option<Seen> = None;
    let stop = crate::run_cmd::next_signal();
    tokio::pin!(stop);
    loop {
        match read(store).await {
            Ok((records, snapshots)) => {
                let now = Timestamp::now();
                let (marks, gone, seen) = changes(last.as_ref(), &records);
                let first = last.is_none();
                let mut out = render::stdout();
                match args.format {
                    Format::Json => {
                        json_changes(&mut out, &records, &marks, &gone, &snapshots, now)
                    }
                    Format::Text if terminal => redraw(
                        &mut out, args, &records, &snapshots, now, &marks, &gone, colour,
                    ),
                    Format::Text => {
                        appended(&mut out, &records, &snapshots, now, &marks, &gone, first)
                    }
                }
                .and_then(|()| out.flush())
                .context("cannot write the status")?;
                last = Some(seen);
            }
            Err(error) if last.is_none() => return Err(error),
            Err(error) => log::warn!("{error} (watching on)"),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            () = tokio::time::sleep(args.interval) => {}
        }
    }
}

/// One JSON line per added, changed or gone record.
fn json_changes(
    out: &mut impl Write,
    records: &[StoredRecord],
    marks: &[Change],
    gone: &[GameId],
    snapshots: &BTreeMap<GameId, Timestamp>,
    now: Timestamp,
) -> std::io::Result<()> {
    for (stored, mark) in records.iter().zip(marks) {
        if *mark == Change::Same {
            continue;
        }
        let mut line = serde_json::to_value(row(stored, snapshots, now))?;
        line["change"] = mark.word().into();
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    for game_id in gone {
        let line = serde_json::json!({"game_id": game_id, "change": "gone"});
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The whole screen again: a heading, the table with its marks, what is gone.
#[allow(clippy::too_many_arguments)] // one draw's parts, passed as they are
fn redraw(
    out: &mut impl Write,
    args: &StatusArgs,
    records: &[StoredRecord],
    snapshots: &BTreeMap<GameId, Timestamp>,
    now: Timestamp,
    marks: &[Change],
    gone: &[GameId],
    colour: bool,
) -> std::io::Result<()> {
    // Home, clear the screen: the table replaces the last one instead of scrolling.
    write!(out, "\x1b[H\x1b[2J")?;
    writeln!(
        out,
        "Every {}: {}    (+ added, * changed since the last draw; Ctrl-C to stop)\n",
        galaxy_runtime_model::duration::format(args.interval),
        now
    )?;
    table(out, records, snapshots, now, Some(marks), colour)?;
    gone_line(out, gone)
}

/// Off a terminal: the whole table the first time, then only what changed, under a time stamp.
fn appended(
    out: &mut impl Write,
    records: &[StoredRecord],
    snapshots: &BTreeMap<GameId, Timestamp>,
    now: Timestamp,
    marks: &[Change],
    gone: &[GameId],
    first: bool,
) -> std::io::Result<()> {
    if first {
        return table(out, records, snapshots, now, None, false);
    }
    let (changed, changed_marks): (Vec<StoredRecord>, Vec<Change>) = records
        .iter()
        .zip(marks)
        .filter(|(_, mark)| **mark != Change::Same)
        .map(|(stored, mark)| (stored.clone(), *mark))
        .unzip();
    if changed.is_empty() && gone.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{now}:")?;
    if !changed.is_empty() {
        table(out, &changed, snapshots, now, Some(&changed_marks), false)?;
    }
    gone_line(out, gone)
}

fn gone_line(out: &mut impl Write, gone: &[GameId]) -> std::io::Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = gone.iter().map(ToString::to_string).collect();
    writeln!(out, "Gone since the last draw: {}.", ids.join(", "))
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
    marks: Option<&[Change]>,
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
        .enumerate()
        .map(|(i, stored)| {
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
            if let Some(marks) = marks {
                row.insert(
                    0,
                    match marks.get(i) {
                        Some(Change::Added) => Cell::coloured("+", Colour::Green),
                        Some(Change::Changed) => Cell::coloured("*", Colour::Yellow),
                        _ => Cell::plain(""),
                    },
                );
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
    if marks.is_some() {
        header.insert(0, "");
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
            table(&mut out, records, &BTreeMap::new(), changed, None, false).unwrap();
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

    fn stored(record: RuntimeRecord, message: &str) -> StoredRecord {
        StoredRecord {
            created_at: record.status_changed_at,
            updated_at: record.status_changed_at,
            record,
            status_message: message.to_owned(),
            version: 1,
        }
    }

    #[test]
    fn a_watch_marks_what_changed_since_the_last_draw() {
        let at: Timestamp = "2026-11-27T11:00:00Z".parse().unwrap();
        let (a, b, c) = (
            GameId::new_random(),
            GameId::new_random(),
            GameId::new_random(),
        );
        let first = [
            stored(RuntimeRecord::new(a, RuntimeStatus::Running, at), "ok"),
            stored(RuntimeRecord::new(b, RuntimeStatus::Running, at), "ok"),
        ];
        let (marks, gone, seen) = changes(None, &first);
        assert_eq!(marks, [Change::Added, Change::Added]);
        assert!(gone.is_empty());

        // a the same, b removed (status and message), c new; then b gone.
        let second = [
            stored(RuntimeRecord::new(a, RuntimeStatus::Running, at), "ok"),
            stored(
                RuntimeRecord::new(b, RuntimeStatus::Removed, at),
                "container disappeared",
            ),
            stored(RuntimeRecord::new(c, RuntimeStatus::Starting, at), ""),
        ];
        let (marks, gone, seen) = changes(Some(&seen), &second);
        assert_eq!(marks, [Change::Same, Change::Changed, Change::Added]);
        assert!(gone.is_empty());
        let mut message_only = second[0].clone();
        message_only.status_message = "engine reachable".to_owned();
        let (marks, gone, _) = changes(Some(&seen), &[message_only, second[2].clone()]);
        assert_eq!(marks, [Change::Changed, Change::Same]);
        assert_eq!(gone, [b]);

        // On a terminal: the marks in their own column, the gone listed.
        let mut out = Vec::new();
        let snapshots = BTreeMap::new();
        table(
            &mut out,
            &second,
            &snapshots,
            at,
            Some(&[Change::Same, Change::Changed, Change::Added]),
            false,
        )
        .unwrap();
        gone_line(&mut out, &[b]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line_of = |game: GameId| {
            text.lines()
                .find(|l| l.contains(&game.to_string()) && !l.starts_with("Gone"))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(line_of(b).starts_with('*'), "{text}");
        assert!(line_of(c).starts_with('+'), "{text}");
        assert!(line_of(a).starts_with(' '), "{text}");
        assert!(
            text.contains(&format!("Gone since the last draw: {b}.")),
            "{text}"
        );
    }

    #[test]
    fn a_piped_watch_appends_only_what_changed() {
        let at: Timestamp = "2026-11-27T11:00:00Z".parse().unwrap();
        let (a, b) = (GameId::new_random(), GameId::new_random());
        let records = [
            stored(RuntimeRecord::new(a, RuntimeStatus::Running, at), "ok"),
            stored(RuntimeRecord::new(b, RuntimeStatus::Removed, at), "gone"),
        ];
        let snapshots = BTreeMap::new();
        let draw = |marks: &[Change], gone: &[GameId], first: bool| {
            let mut out = Vec::new();
            appended(&mut out, &records, &snapshots, at, marks, gone, first).unwrap();
            String::from_utf8(out).unwrap()
        };
        let first = draw(&[Change::Added, Change::Added], &[], true);
        assert!(
            first.contains(&a.to_string()) && first.contains(&b.to_string()),
            "{first}"
        );
        assert!(draw(&[Change::Same, Change::Same], &[], false).is_empty());
        let later = draw(&[Change::Same, Change::Changed], &[], false);
        assert!(
            !later.contains(&a.to_string()) && later.contains(&b.to_string()),
            "{later}"
        );
        assert!(later.contains("2026-11-27T11:00:00Z:"), "{later}");

        let mut out = Vec::new();
        json_changes(
            &mut out,
            &records,
            &[Change::Same, Change::Changed],
            &[a],
            &snapshots,
            at,
        )
        .unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["game_id"], b.to_string());
        assert_eq!(lines[0]["change"], "changed");
        assert_eq!(lines[0]["status"], "removed");
        assert_eq!(lines[1]["game_id"], a.to_string());
        assert_eq!(lines[1]["change"], "gone");
    }
}
