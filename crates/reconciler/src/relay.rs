//! The relay: delivers the outbox's pending lobby events to the [`LobbyPort`], at least once,
//! in commit order per game, beside the loop and never inside a pass (CONTRACT §3, §7).
//!
//! Each round claims the due events — the oldest undelivered event of each game, once its
//! retry time has come — for a lease, sends them concurrently (one per game, each under
//! `lobby_timeout`), and records what happened: delivered, or failed with the next attempt
//! after a jittered exponential backoff. Claims and records are writes of the (fenced) store,
//! so a replica that does not lead delivers nothing; the lease keeps two relays from sending
//! one event at once even so. After a crash or a change of leader, whatever was not recorded as
//! delivered is due again: an event may be sent twice, never lost, and keeps its event id.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use galaxy_runtime_model::{Config, OutboxEntry, Timestamp, duration};
use galaxy_runtime_ports::{DeliveryOutcome, LobbyPort, OutboxPort, PortError, error_chain};
use log::{debug, info, warn};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Jitter, backoff_delay};
use crate::context::Ports;
use crate::telemetry;

/// Events claimed per round.
pub(crate) const CLAIM_LIMIT: usize = 512;
/// Events in flight to the lobby at once (of as many games).
pub(crate) const LOBBY_CONCURRENCY: usize = 64;
/// The shortest pause between two rounds, so that a due time that turns out not quite due
/// (clocks of two replicas) does not spin.
const MIN_PAUSE: Duration = Duration::from_millis(50);
/// How often delivered events older than `outbox_retention` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What one round of deliveries did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Events the lobby accepted.
    pub delivered: u64,
    /// Events whose attempt failed; each is due again after its backoff.
    pub failed: u64,
    /// The earliest next attempt of the events that failed, if any did.
    pub next_retry_at: Option<Timestamp>,
}

/// The relay of one reconciler: its ports, its configuration and its wake-up signal.
pub(crate) struct Relay<'a> {
    pub ports: &'a Ports,
    pub config: &'a Config,
    pub outbox: &'a dyn OutboxPort,
    pub lobby: &'a dyn LobbyPort,
}

impl Relay<'_> {
    /// Runs until `cancel` fires: a round at once, then one whenever a pass committed an event
    /// (`wake`) or `outbox_sweep` passed, delivering until nothing is due. The round in flight
    /// finishes first (each attempt is bounded by `lobby_timeout`).
    pub(crate) async fn run(&self, wake: &Notify, cancel: &CancellationToken) {
        let mut jitter = Jitter::seeded();
        let mut last_prune: Option<Instant> = None;
        loop {
            let mut pause = self.config.outbox_sweep;
            if self.leads().await {
                if let Err(error) = self.deliver_due(&mut jitter).await {
                    warn!("lobby relay: {}", error_chain(&error));
                }
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    self.prune().await;
                    last_prune = Some(Instant::now());
                }
                // Wake for the earliest retry due (of this relay's failures or another's), if
                // it comes before the sweep.
                if let Some(at) = self.record_stats().await {
                    let now = (self.ports.clock)();
                    pause = pause.min(at.saturating_since(now).max(MIN_PAUSE));
                }
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Whether this replica leads (always, without a leader lock). A lock that cannot be asked
    /// counts as not held: the claims would be refused anyway.
    async fn leads(&self) -> bool {
        match &self.ports.leader {
            None => true,
            Some(leader) => leader.is_held().await.unwrap_or(false),
        }
    }

    /// Rounds of claim, send, record, until nothing is due.
    pub(crate) async fn deliver_due(
        &self,
        jitter: &mut Jitter,
    ) -> Result<DeliveryReport, PortError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = (self.ports.clock)();
            let lease = self.config.lobby_timeout.saturating_mul(2) + Duration::from_secs(1);
            let claimed = self.outbox.claim_due(now, lease, CLAIM_LIMIT).await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let outcomes = self.send(&claimed, jitter).await;
            for outcome in &outcomes {
                match outcome {
                    DeliveryOutcome::Delivered { .. } => report.delivered += 1,
                    DeliveryOutcome::Failed {
                        next_attempt_at, ..
                    } => {
                        report.failed += 1;
                        report.next_retry_at = Some(
                            report
                                .next_retry_at
                                .map_or(*next_attempt_at, |at| at.min(*next_attempt_at)),
                        );
                    }
                }
            }
            self.outbox.record_deliveries(&outcomes).await?;
            // Only failures left: they wait for their backoff, not for another round now.
            if outcomes
                .iter()
                .all(|o| matches!(o, DeliveryOutcome::Failed { .. }))
            {
                return Ok(report);
            }
        }
    }

    /// Sends each claimed event, at most [`LOBBY_CONCURRENCY`] at once.
    async fn send(&self, claimed: &[OutboxEntry], jitter: &mut Jitter) -> Vec<DeliveryOutcome> {
        let mut pending = claimed.iter();
        let mut in_flight = FuturesUnordered::new();
        let mut outcomes = Vec::with_capacity(claimed.len());
        loop {
            while in_flight.len() < LOBBY_CONCURRENCY {
                match pending.next() {
                    Some(entry) => in_flight.push(self.attempt(entry)),
                    None => break,
                }
            }
            match in_flight.next().await {
                Some((entry, Ok(()))) => {
                    telemetry::delivery(telemetry::DELIVERED, entry.attempts + 1);
                    debug!(
                        "lobby event {} delivered: game_id={} status={} after {} attempts",
                        entry.event.event_id,
                        entry.event.game_id,
                        entry.event.result.status,
                        entry.attempts + 1
                    );
                    outcomes.push(DeliveryOutcome::Delivered {
                        event_id: entry.event.event_id,
                        at: (self.ports.clock)(),
                    });
                }
                Some((entry, Err(error))) => {
                    telemetry::delivery(telemetry::FAILED, entry.attempts + 1);
                    let delay = backoff_delay(
                        self.config.retry_backoff,
                        self.config.lobby_retry_max,
                        entry.attempts,
                        jitter,
                    );
                    let error = error_chain(&error);
                    warn!(
                        "lobby event {} for game {} not delivered (attempt {}): {error}; next \
                         attempt in {}",
                        entry.event.event_id,
                        entry.event.game_id,
                        entry.attempts + 1,
                        duration::format(delay)
                    );
                    outcomes.push(DeliveryOutcome::Failed {
                        event_id: entry.event.event_id,
                        error,
                        next_attempt_at: (self.ports.clock)().saturating_add(delay),
                    });
                }
                None => return outcomes,
            }
        }
    }

    /// One attempt, bounded by `lobby_timeout`.
    async fn attempt<'e>(
        &self,
        entry: &'e OutboxEntry,
    ) -> (&'e OutboxEntry, Result<(), PortError>) {
        let timeout = self.config.lobby_timeout;
        let answer = tokio::time::timeout(timeout, self.lobby.on_runtime_job_result(&entry.event))
            .await
            .unwrap_or_else(|_| {
                Err(PortError::timeout(
                    format!("telling the lobby event {}", entry.event.event_id),
                    timeout,
                ))
            });
        (entry, answer)
    }

    async fn prune(&self) {
        let before = (self.ports.clock)().saturating_sub(self.config.outbox_retention);
        match self.outbox.prune_delivered(before).await {
            Ok(0) => {}
            Ok(pruned) => {
                info!("lobby relay: pruned {pruned} delivered events older than {before}")
            }
            Err(error) => warn!(
                "lobby relay: pruning delivered events failed: {}",
                error_chain(&error)
            ),
        }
    }

    /// Records the backlog's metrics; returns when the next pending event is due.
    async fn record_stats(&self) -> Option<Timestamp> {
        match self.outbox.outbox_stats().await {
            Ok(stats) => {
                let age = stats.oldest_pending_at.map_or(0.0, |at| {
                    (self.ports.clock)().saturating_since(at).as_secs_f64()
                });
                telemetry::outbox(stats.pending, age);
                stats.next_attempt_at
            }
            Err(error) => {
                debug!("lobby relay: outbox stats: {}", error_chain(&error));
                None
            }
        }
    }
}
