use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_model::{GameId, JobResult, LobbyEvent};
use galaxy_runtime_ports::{LobbyPort, PortError, PortResult};

use crate::lock;

#[derive(Debug, Default)]
struct State {
    received: Vec<LobbyEvent>,
    calls: u64,
    failing: bool,
    latency: Duration,
}

/// A [`LobbyPort`] that records every event it accepts, in order (repeats included, as a lobby
/// that does not deduplicate would see them), can be told to fail, and to answer slowly.
#[derive(Debug, Default)]
pub struct MemoryLobby {
    state: Mutex<State>,
}

impl MemoryLobby {
    /// A lobby that accepts everything at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call fails with [`PortError::Unavailable`] and nothing is recorded.
    pub fn set_failing(&self, failing: bool) {
        lock(&self.state).failing = failing;
    }

    /// Every call takes this long before it answers (tokio time, so paused clocks apply); a
    /// long one plays a lobby that hangs.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Every accepted event, oldest first.
    pub fn events(&self) -> Vec<LobbyEvent> {
        lock(&self.state).received.clone()
    }

    /// Every accepted result with its game, oldest first.
    pub fn results(&self) -> Vec<(GameId, JobResult)> {
        lock(&self.state)
            .received
            .iter()
            .map(|e| (e.game_id, e.result.clone()))
            .collect()
    }

    /// The accepted results of one game, oldest first.
    pub fn results_for(&self, game_id: GameId) -> Vec<JobResult> {
        lock(&self.state)
            .received
            .iter()
            .filter(|e| e.game_id == game_id)
            .map(|e| e.result.clone())
            .collect()
    }

    /// Calls so far, failed ones included.
    pub fn calls(&self) -> u64 {
        lock(&self.state).calls
    }

    /// Forgets the recorded events and the call count.
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        state.received.clear();
        state.calls = 0;
    }
}

#[async_trait]
impl LobbyPort for MemoryLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        let latency = {
            let mut state = lock(&self.state);
            state.calls += 1;
            state.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = lock(&self.state);
        if state.failing {
            return Err(PortError::Unavailable {
                message: format!(
                    "memory lobby is set failing (event {} of game {})",
                    event.event_id, event.game_id
                ),
                source: None,
            });
        }
        state.received.push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::{EventId, Timestamp};

    use super::*;

    #[tokio::test]
    async fn failing_records_nothing_but_counts() {
        let lobby = MemoryLobby::new();
        let event = LobbyEvent {
            event_id: EventId::new_random(),
            game_id: GameId::new_random(),
            result: JobResult::container_disappeared(),
            at: Timestamp::now(),
        };
        lobby.set_failing(true);
        let err = lobby.on_runtime_job_result(&event).await.unwrap_err();
        assert!(err.is_retryable());
        assert!(lobby.results().is_empty());
        lobby.set_failing(false);
        lobby.on_runtime_job_result(&event).await.unwrap();
        assert_eq!(
            lobby.results(),
            vec![(event.game_id, JobResult::container_disappeared())]
        );
        assert_eq!(lobby.events(), vec![event]);
        assert_eq!(lobby.calls(), 2);
        lobby.clear();
        assert_eq!((lobby.calls(), lobby.results().len()), (0, 0));
    }
}
