//! [`GameCatalog`] on [`Store`]: the game projections, for setups without a lobby of their own.

use async_trait::async_trait;
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use galaxy_runtime_model::{GameId, GameProjection};
use galaxy_runtime_ports::{GameCatalog, PortError, PortResult};

use crate::rows::ProjectionRow;
use crate::schema::game_projections;
use crate::store::Store;
use crate::types::DbUuid;

#[async_trait]
impl GameCatalog for Store {
    async fn put_game(&self, game: GameProjection) -> PortResult<()> {
        use game_projections::dsl as g;

        let op = format!("put_game of {}", game.game_id);
        let row = ProjectionRow::from(game);
        with_write_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::insert_into(g::game_projections)
                .values(&row)
                .on_conflict(g::game_id)
                .do_update()
                .set(g::turn_schedule.eq(excluded(g::turn_schedule)))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(self.db(&op))
        })
    }

    async fn list_games(&self) -> PortResult<Vec<GameProjection>> {
        let op = "list_games";
        let rows: Vec<ProjectionRow> = with_conn!(self, op, |conn, _dialect, _Db| {
            game_projections::table
                .select(ProjectionRow::as_select())
                .order(game_projections::game_id)
                .load(conn)
                .await
                .map_err(self.db(op))
        })?;
        let mut games = rows
            .into_iter()
            .map(ProjectionRow::into_projection)
            .collect::<PortResult<Vec<_>>>()?;
        // Both backends order UUIDs as GameId does; sorting again costs little and makes the
        // contract independent of collations.
        games.sort();
        Ok(games)
    }

    async fn remove_game(&self, game_id: GameId) -> PortResult<()> {
        let op = format!("remove_game of {game_id}");
        let removed = with_write_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::delete(
                game_projections::table.filter(game_projections::game_id.eq(DbUuid::from(game_id))),
            )
            .execute(conn)
            .await
            .map_err(self.db(&op))
        })?;
        if removed == 0 {
            return Err(PortError::not_found(format!("game projection {game_id}")));
        }
        Ok(())
    }
}
