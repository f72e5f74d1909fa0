use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{GameId, JobResult, RuntimeStatus, Timestamp};

/// The identity of one lobby event: unique per event and the same on every redelivery, so that
/// the lobby can deduplicate (CONTRACT §7). Written lowercase and hyphenated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// A fresh random (v4) event id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id whose UUID is the integer `n` (for stores that number their events, and for
    /// deterministic tests).
    pub const fn from_u128(n: u128) -> Self {
        Self(Uuid::from_u128(n))
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for EventId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| format!("invalid event id {s:?}: expected a UUID"))
    }
}

/// What the lobby is told when a status change it wants to hear of commits: the job result of
/// the change, with its event id and commit time. Its JSON is the event of CONTRACT §7:
///
/// ```
/// use galaxy_runtime_model::{EventId, GameId, JobResult, LobbyEvent};
///
/// let event = LobbyEvent {
///     event_id: "0b5e9d2c-7a41-4e3b-8f6d-2c1a0e9b8d70".parse().unwrap(),
///     game_id: "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60".parse().unwrap(),
///     result: JobResult::container_disappeared(),
///     at: "2026-12-01T12:00:00Z".parse().unwrap(),
/// };
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"event_id":"0b5e9d2c-7a41-4e3b-8f6d-2c1a0e9b8d70","game_id":"6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60","op":"reconcile","status":"removed","message":"container disappeared","at":"2026-12-01T12:00:00Z"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyEvent {
    /// Unique per event, the same on every redelivery.
    pub event_id: EventId,
    /// The game.
    pub game_id: GameId,
    /// What happened: op, status and message.
    #[serde(flatten)]
    pub result: JobResult,
    /// When the status change committed.
    pub at: Timestamp,
}

/// One event of the outbox, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The event, as the lobby receives it.
    #[serde(flatten)]
    pub event: LobbyEvent,
    /// Its place in commit order (unique, increasing; per game the delivery order).
    pub seq: u64,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (for a pending event).
    pub next_attempt_at: Timestamp,
    /// While a relay attempts it: until when its claim holds.
    pub claimed_until: Option<Timestamp>,
    /// When the lobby accepted it; `None` while pending.
    pub delivered_at: Option<Timestamp>,
}

impl OutboxEntry {
    /// Whether the lobby has not accepted it yet.
    pub fn is_pending(&self) -> bool {
        self.delivered_at.is_none()
    }
}

/// The statuses whose changes the lobby may be told of (`lobby_statuses`): the ones a lobby acts
/// on. `starting` is the backend's own start jobs' word, and `failed` is theirs to report.
pub const LOBBY_STATUS_CHOICES: [RuntimeStatus; 4] = [
    RuntimeStatus::Removed,
    RuntimeStatus::EngineUnreachable,
    RuntimeStatus::Running,
    RuntimeStatus::Stopped,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_lowercase() {
        let id: EventId = "0B5E9D2C-7A41-4E3B-8F6D-2C1A0E9B8D70".parse().unwrap();
        assert_eq!(id.to_string(), "0b5e9d2c-7a41-4e3b-8f6d-2c1a0e9b8d70");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
        assert!("not-an-id".parse::<EventId>().is_err());
    }

    #[test]
    fn events_parse_back() {
        let event = LobbyEvent {
            event_id: EventId::new_random(),
            game_id: GameId::new_random(),
            result: JobResult::container_disappeared(),
            at: Timestamp::from_unix_seconds(1_700_000_000).unwrap(),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<LobbyEvent>(&json).unwrap(), event);
    }
}
