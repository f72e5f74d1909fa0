//! `galaxy-runtime events [--pending] [--game ID] [--format json]` and `events redeliver ID`:
//! the outbox of lobby events, with the delivery state of each.

use std::io::{IsTerminal, Write};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use galaxy_runtime_model::{EventId, GameId, OutboxEntry, Timestamp};
use galaxy_runtime_ports::{EventFilter, OutboxPort};
use serde::Serialize;

use crate::cli::{CommonFlags, Format};
use crate::render::{self, Cell, Colour};
use crate::settings::Settings;
use crate::{BadInput, connect};

/// Arguments of `events`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EventsArgs {
    /// Redeliver an event instead of listing them.
    #[command(subcommand)]
    pub action: Option<EventsAction>,
    /// Only the events the lobby has not accepted yet.
    #[arg(long)]
    pub pending: bool,
    /// Only the events of this game (a UUID).
    #[arg(long, value_name = "ID")]
    pub game: Option<String>,
    /// At most this many, the most recent ones.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
    /// A table, or a JSON array (each event with its delivery state).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// The `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsAction {
    /// Queue an event for delivery again now (delivered or not), keeping its event id, so the
    /// lobby can tell it is the same one.
    Redeliver {
        /// The event id (a UUID).
        event_id: String,
    },
}

/// One event of `events --format json`: the event as the lobby receives it, then its delivery
/// state.
#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    entry: &'a OutboxEntry,
    state: &'static str,
}

/// `pending` (waiting for its next attempt), `in_flight` (claimed by a relay) or `delivered`.
fn state(entry: &OutboxEntry, now: Timestamp) -> &'static str {
    if entry.delivered_at.is_some() {
        "delivered"
    } else if entry.claimed_until.is_some_and(|until| until > now) {
        "in_flight"
    } else {
        "pending"
    }
}

/// Lists the events, or queues one again.
pub async fn run(args: &EventsArgs, settings: Settings) -> anyhow::Result<()> {
    // Ids are checked before the database is opened: bad input touches nothing.
    let game_id = args
        .game
        .as_deref()
        .map(|text| {
            text.parse::<GameId>()
                .map_err(|e| BadInput(format!("--game {text:?}: {e}")))
        })
        .transpose()?;
    let redeliver = match &args.action {
        Some(EventsAction::Redeliver { event_id }) => Some(
            event_id
                .parse::<EventId>()
                .map_err(|e| BadInput(format!("event id: {e}")))?,
        ),
        None => None,
    };
    if args.limit == 0 {
        return Err(BadInput("--limit 0: must be at least 1".to_owned()).into());
    }
    let store = connect::store(&settings).await?;
    let result = match redeliver {
        Some(event_id) => redeliver_one(&store, event_id).await,
        None => {
            let filter = EventFilter {
                pending_only: args.pending,
                game_id,
                limit: args.limit,
            };
            match store.list_events(&filter).await {
                Ok(events) => print_events(&events, args.format),
                Err(e) => Err(anyhow!(
                    "cannot read the lobby events: {}",
                    connect::describe(&e)
                )),
            }
        }
    };
    store.close();
    result
}

async fn redeliver_one(store: &dyn OutboxPort, event_id: EventId) -> anyhow::Result<()> {
    match store.redeliver(event_id, Timestamp::now()).await {
        Ok(entry) => {
            println!(
                "event {event_id} (game {}, {}) queued for delivery; a running `galaxy-runtime \
                 run` sends it within its outbox sweep",
                entry.event.game_id, entry.event.result.status
            );
            Ok(())
        }
        Err(e) if e.is_not_found() => Err(anyhow!(
            "no lobby event {event_id}; `galaxy-runtime events` lists them (delivered events \
             are pruned after outbox_retention)"
        )),
        Err(e) => Err(anyhow!(
            "cannot redeliver event {event_id}: {}",
            connect::describe(&e)
        )),
    }
}

fn print_events(events: &[OutboxEntry], format: Format) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let mut out = render::stdout();
    match format {
        Format::Json => {
            let rows: Vec<Row<'_>> = events
                .iter()
                .map(|entry| Row {
                    entry,
                    state: state(entry, now),
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows).context("cannot write the events")?;
            writeln!(out).context("cannot write the events")?;
        }
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            table(&mut out, events, now, colour).context("cannot write the events")?;
        }
    }
    out.flush().context("cannot write the events")
}

fn table(
    out: &mut impl Write,
    events: &[OutboxEntry],
    now: Timestamp,
    colour: bool,
) -> std::io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "No lobby events.");
    }
    let rows: Vec<Vec<Cell>> = events
        .iter()
        .map(|entry| {
            let event = &entry.event;
            let state = state(entry, now);
            let state_cell = match state {
                "delivered" => Cell::coloured(state, Colour::Green),
                _ if entry.attempts > 0 => Cell::coloured(state, Colour::Yellow),
                _ => Cell::coloured(state, Colour::Cyan),
            };
            let when = match entry.delivered_at {
                Some(at) => format!("delivered {} ago", render::age(now.saturating_since(at))),
                None if entry.next_attempt_at > now => format!(
                    "next in {}",
                    render::age(entry.next_attempt_at.saturating_since(now))
                ),
                None => "due now".to_owned(),
            };
            vec![
                Cell::plain(event.event_id.to_string()),
                Cell::plain(event.game_id.to_string()),
                Cell::plain(event.result.status.to_string()),
                Cell::plain(render::age(now.saturating_since(event.at))),
                state_cell,
                Cell::plain(entry.attempts.to_string()),
                Cell::plain(when),
                Cell::plain(
                    entry
                        .last_error
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), render::escape),
                ),
            ]
        })
        .collect();
    render::table(
        out,
        &[
            "EVENT",
            "GAME",
            "STATUS",
            "AGE",
            "STATE",
            "ATTEMPTS",
            "DELIVERY",
            "LAST ERROR",
        ],
        &rows,
        colour,
    )?;
    let pending = events.iter().filter(|e| e.is_pending()).count();
    writeln!(
        out,
        "{} event{}, {pending} pending.",
        events.len(),
        if events.len() == 1 { "" } else { "s" }
    )
}
