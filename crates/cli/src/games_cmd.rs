//! `galaxy-runtime games add|list|remove`: the game projections, for setups without a lobby.

use std::io::Write;

use anyhow::{Context, anyhow};
use galaxy_runtime_model::{GameId, GameProjection};
use galaxy_runtime_ports::GameCatalog;

use crate::cli::{Format, GamesAction, GamesArgs};
use crate::settings::Settings;
use crate::{BadInput, connect, render};

/// Carries out one `games` subcommand against the store's catalogue.
pub async fn run(args: &GamesArgs, settings: Settings) -> anyhow::Result<()> {
    // The game id is checked before the database is opened: bad input writes nothing.
    let game_id = match &args.action {
        GamesAction::Add { game_id, .. } | GamesAction::Remove { game_id } => {
            Some(parse_game_id(game_id)?)
        }
        GamesAction::List { .. } => None,
    };
    let store = match game_id {
        None => connect::store(&settings).await?,
        Some(_) => connect::store_for_writing(&settings, false).await?,
    };
    let result = match (&args.action, game_id) {
        (GamesAction::Add { turn_schedule, .. }, Some(game_id)) => store
            .put_game(GameProjection {
                game_id,
                turn_schedule: turn_schedule.clone(),
            })
            .await
            .map(|()| println!("game {game_id} added")),
        (GamesAction::Remove { .. }, Some(game_id)) => match store.remove_game(game_id).await {
            Ok(()) => {
                println!("game {game_id} removed");
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                store.close();
                return Err(anyhow!(
                    "game {game_id} has no projection; `galaxy-runtime games list` shows the \
                     games there are"
                ));
            }
            Err(e) => Err(e),
        },
        (GamesAction::List { format }, _) => match store.list_games().await {
            Ok(games) => {
                print_games(&games, *format)?;
                Ok(())
            }
            Err(e) => Err(e),
        },
        // Add and remove always carry a parsed id.
        (_, None) => Ok(()),
    };
    store.close();
    result.map_err(|e| anyhow!("the games catalogue failed: {}", connect::describe(&e)))
}

fn parse_game_id(text: &str) -> Result<GameId, BadInput> {
    text.parse()
        .map_err(|e| BadInput(format!("game id {text:?}: {e}")))
}

fn print_games(games: &[GameProjection], format: Format) -> anyhow::Result<()> {
    let mut out = render::stdout();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, games).context("cannot write the games")?;
            writeln!(out).context("cannot write the games")?;
        }
        Format::Text => {
            let rows: Vec<Vec<render::Cell>> = games
                .iter()
                .map(|g| {
                    vec![
                        render::Cell::plain(g.game_id.to_string()),
                        render::Cell::plain(render::escape(&g.turn_schedule)),
                    ]
                })
                .collect();
            render::table(&mut out, &["GAME", "TURN SCHEDULE"], &rows, false)
                .context("cannot write the games")?;
            writeln!(
                out,
                "{} game{}.",
                games.len(),
                if games.len() == 1 { "" } else { "s" }
            )
            .context("cannot write the games")?;
        }
    }
    out.flush().context("cannot write the games")
}
