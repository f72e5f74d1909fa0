use std::sync::Mutex;

use async_trait::async_trait;
use galaxy_runtime_model::{GameId, JobResult};
use galaxy_runtime_ports::{LobbyPort, PortError, PortResult};

use crate::lock;

#[derive(Debug, Default)]
struct State {
    received: Vec<(GameId, JobResult)>,
    calls: u64,
    failing: bool,
}

/// A [`LobbyPort`] that records every job result it accepts, in order, and can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryLobby {
    state: Mutex<State>,
}

impl MemoryLobby {
    /// A lobby that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call fails with [`PortError::Unavailable`] and nothing is recorded.
    pub fn set_failing(&self, failing: bool) {
        lock(&self.state).failing = failing;
    }

    /// Every accepted result with its game, oldest first.
    pub fn results(&self) -> Vec<(GameId, JobResult)> {
        lock(&self.state).received.clone()
    }

    /// The accepted results of one game, oldest first.
    pub fn results_for(&self, game_id: GameId) -> Vec<JobResult> {
        lock(&self.state)
            .received
            .iter()
            .filter(|(id, _)| *id == game_id)
            .map(|(_, result)| result.clone())
            .collect()
    }

    /// Calls so far, failed ones included.
    pub fn calls(&self) -> u64 {
        lock(&self.state).calls
    }

    /// Forgets the recorded results and the call count.
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        state.received.clear();
        state.calls = 0;
    }
}

#[async_trait]
impl LobbyPort for MemoryLobby {
    async fn on_runtime_job_result(&self, game_id: GameId, result: JobResult) -> PortResult<()> {
        let mut state = lock(&self.state);
        state.calls += 1;
        if state.failing {
            return Err(PortError::Unavailable {
                message: format!("memory lobby is set failing (result for game {game_id})"),
                source: None,
            });
        }
        state.received.push((game_id, result));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_records_nothing_but_counts() {
        let lobby = MemoryLobby::new();
        let game_id = GameId::new_random();
        lobby.set_failing(true);
        let err = lobby
            .on_runtime_job_result(game_id, JobResult::container_disappeared())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(lobby.results().is_empty());
        lobby.set_failing(false);
        lobby
            .on_runtime_job_result(game_id, JobResult::container_disappeared())
            .await
            .unwrap();
        assert_eq!(
            lobby.results(),
            vec![(game_id, JobResult::container_disappeared())]
        );
        assert_eq!(lobby.calls(), 2);
        lobby.clear();
        assert_eq!((lobby.calls(), lobby.results().len()), (0, 0));
    }
}
