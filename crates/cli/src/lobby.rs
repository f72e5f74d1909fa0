//! The lobby of the command line: there is no lobby service, so job results are logged.

use async_trait::async_trait;
use galaxy_runtime_model::{GameId, JobResult};
use galaxy_runtime_ports::{LobbyPort, PortResult};

/// A [`LobbyPort`] that writes every job result as one `info` log line, for setups without a
/// lobby service (`games` maintains the projections instead).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingLobby;

#[async_trait]
impl LobbyPort for LoggingLobby {
    async fn on_runtime_job_result(&self, game_id: GameId, result: JobResult) -> PortResult<()> {
        let op = serde_json::to_value(result.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        log::info!(
            "lobby job_result game_id={game_id} op={op} status={} message={:?}",
            result.status,
            result.message
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_lobby_contract() {
        galaxy_runtime_testkit::lobby::run_all(&LoggingLobby).await;
    }
}
