//! The lobby of the command line without a lobby service: its events are logged (and so
//! delivered).

use async_trait::async_trait;
use galaxy_runtime_model::LobbyEvent;
use galaxy_runtime_ports::{LobbyPort, PortResult};

/// A [`LobbyPort`] that writes every event as one `info` log line and accepts it, for setups
/// without a lobby service (`games` maintains the projections instead).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingLobby;

#[async_trait]
impl LobbyPort for LoggingLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        let result = &event.result;
        let op = serde_json::to_value(result.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        log::info!(
            "lobby event event_id={} game_id={} op={op} status={} message={:?}",
            event.event_id,
            event.game_id,
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
