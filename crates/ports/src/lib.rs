//! The ports of galaxy-runtime: the traits through which the reconciler sees and changes the
//! world. The second layer of the architecture.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store, memory)
//! ```
//!
//! Each trait documents its contract — what happens when something is not found, whether a call
//! may be repeated safely, what is atomic — and the conformance suites of
//! `galaxy-runtime-testkit` check every implementation against it. All failures are one
//! [`PortError`], classified by meaning.
//!
//! With the `mocks` feature every trait has a mockall mock (`MockDockerPort`, `MockStorePort`,
//! …) for unit tests in other crates and in host backends.
//!
//! ```
//! use std::sync::Arc;
//! use galaxy_runtime_model::{GameId, RuntimeRecord};
//! use galaxy_runtime_ports::Cache;
//!
//! /// A cache that remembers the last record only: a port implementation takes a few lines.
//! #[derive(Default)]
//! struct LastOne(std::sync::Mutex<Option<RuntimeRecord>>);
//!
//! impl Cache for LastOne {
//!     fn put_runtime(&self, record: RuntimeRecord) {
//!         *self.0.lock().unwrap() = Some(record);
//!     }
//!     fn get_runtime(&self, game_id: GameId) -> Option<RuntimeRecord> {
//!         self.0.lock().unwrap().clone().filter(|r| r.game_id == game_id)
//!     }
//! }
//!
//! let cache: Arc<dyn Cache> = Arc::new(LastOne::default());
//! assert!(cache.get_runtime(GameId::new_random()).is_none());
//! ```

mod error;
pub mod noop;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use std::time::Duration;

use galaxy_runtime_model::{
    ContainerSummary, EventId, GameId, GameProjection, JobResult, LobbyEvent, OutboxEntry,
    RuntimeRecord, RuntimeStatus, Snapshot, Timestamp,
};
use tokio_util::sync::CancellationToken;

pub use error::{BoxError, ErrorKind, PortError, error_chain, io_error_in_chain};

/// The result type of every port call.
pub type PortResult<T> = Result<T, PortError>;

/// Which containers a [`DockerPort::list_managed`] call returns: those carrying every one of
/// these labels with exactly these values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelFilter {
    /// Label key to required value.
    pub labels: BTreeMap<String, String>,
}

impl LabelFilter {
    /// A filter on one label.
    pub fn single(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            labels: BTreeMap::from([(key.into(), value.into())]),
        }
    }

    /// Whether a container's labels satisfy the filter.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// The container runtime: what game containers exist.
///
/// Both calls only read. They may be repeated freely.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DockerPort: Send + Sync + 'static {
    /// Every container, in any state (running or not), that carries all labels of `filter`,
    /// in **one** call to the runtime. A container the runtime describes incompletely is
    /// returned with what is known, never dropped silently.
    ///
    /// Each container comes in an [`Arc`], so that an adapter that keeps containers in memory
    /// hands out what it holds instead of a copy of the fleet; a listing is still a snapshot,
    /// which later changes do not alter.
    ///
    /// Errors: [`PortError::Unavailable`] when the runtime cannot be reached.
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>>;

    /// One container by id, whatever its labels.
    ///
    /// Errors: [`PortError::NotFound`] when no such container exists. Docker resolves the
    /// argument as an id, then as a name, then as an id prefix, so the answer may describe
    /// another container: callers compare its `id` (the executor treats a container as gone
    /// only on `NotFound` or an answer with another id).
    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary>;

    /// The address (a host name or an IP address, IPv6 without brackets) at which the ports
    /// this runtime publishes (a container's `published_ports`) are reached, for
    /// `published_port` engine addressing; `None` when the runtime cannot tell, which makes
    /// every such probe a failure saying so. Cheap and without I/O: it comes from
    /// configuration, not from the runtime.
    fn published_address(&self) -> Option<String> {
        None
    }
}

/// What a caller saw of a runtime record when it decided to write it: the condition of every
/// compare-and-set write of the [`StorePort`].
///
/// A write applies only if the row still has this status, this `current_container_id` *and*
/// this `docker_host`. The status alone is not enough: a restart job that moves a game to a new
/// container leaves its status `running`, and a pass that planned on the old container must
/// not act on the new one; container ids are unique within a host only (CONTRACT §6), so the
/// host is part of what names the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expected {
    /// The status the caller saw.
    pub status: RuntimeStatus,
    /// The container id the caller saw on the record (possibly empty).
    pub current_container_id: String,
    /// The `docker_host` the caller saw on the record, as stored (`""` included).
    pub docker_host: String,
}

impl Expected {
    /// What `record` holds now.
    pub fn of(record: &RuntimeRecord) -> Self {
        Self {
            status: record.status,
            current_container_id: record.current_container_id.clone(),
            docker_host: record.docker_host.clone(),
        }
    }

    /// Whether `record` still holds what was seen.
    pub fn matches(&self, record: &RuntimeRecord) -> bool {
        record.status == self.status
            && record.current_container_id == self.current_container_id
            && record.docker_host == self.docker_host
    }

    /// What changed since, for the message of a [`PortError::Conflict`]: `record is now
    /// stopped, not running`, `record now on container 5f2c…, not 0a1b…`, or both; `None`
    /// when the record still matches.
    ///
    /// ```
    /// use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Timestamp};
    /// use galaxy_runtime_ports::Expected;
    ///
    /// let mut record = RuntimeRecord::new(GameId::new_random(), RuntimeStatus::Running, Timestamp::now());
    /// record.current_container_id = "0a1b2c3d4e5f60718293a4b5".into();
    /// let seen = Expected::of(&record);
    /// record.current_container_id = "5f2c3d4e5f60718293a4b5c6".into();
    /// assert_eq!(
    ///     seen.mismatch(&record).as_deref(),
    ///     Some("record now on container 5f2c3d4e5f60…, not 0a1b2c3d4e5f…")
    /// );
    /// ```
    pub fn mismatch(&self, record: &RuntimeRecord) -> Option<String> {
        let status = (record.status != self.status)
            .then(|| format!("record is now {}, not {}", record.status, self.status));
        let container = (record.current_container_id != self.current_container_id).then(|| {
            let now = container_words(&record.current_container_id);
            if self.current_container_id.is_empty() {
                format!("record now on {now}, where it had none")
            } else {
                format!(
                    "record now on {now}, not {}",
                    short_id(&self.current_container_id)
                )
            }
        });
        let host = (record.docker_host != self.docker_host).then(|| {
            format!(
                "record now on host {}, not {}",
                host_words(&record.docker_host),
                host_words(&self.docker_host)
            )
        });
        let parts: Vec<String> = [status, container, host].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl Expected {
    /// The message of a [`PortError::Conflict`] for a write that expected no record (an
    /// adoption) and found `record`: `a record appeared meanwhile (starting, on no container)`.
    pub fn unexpected_record(record: &RuntimeRecord) -> String {
        format!(
            "a record appeared meanwhile ({}, on {})",
            record.status,
            container_words(&record.current_container_id)
        )
    }
}

/// `container 0a1b2c3d4e5f…` (Docker's short form of an id) or `no container`, escaped.
fn container_words(id: &str) -> String {
    if id.is_empty() {
        "no container".to_owned()
    } else {
        format!("container {}", short_id(id))
    }
}

/// A host name, quoted and escaped (`""` for the first host).
fn host_words(host: &str) -> String {
    format!(
        "\"{}\"",
        galaxy_runtime_model::text::escape_foreign(host, 64)
    )
}

/// Docker's short form of an id (12 characters), escaped.
fn short_id(id: &str) -> String {
    galaxy_runtime_model::text::escape_foreign(id, 12)
}

/// The values an adoption inserts when the game has no record yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptInsert {
    /// The full new record.
    pub record: RuntimeRecord,
}

/// The values an adoption overwrites when a record exists after all (the seed's
/// `runtimeRecordUpdate`): status, container, image, engine version and endpoint. Docker
/// network, turn schedule and probe failures of the existing row are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptUpdate {
    /// What the caller saw of the record: the update applies only to a record that still holds
    /// it. `None` when the caller saw no record (as a pass that plans an adoption): then a record
    /// that appeared meanwhile (a start job's) is a conflict and stays as it is.
    pub expected: Option<Expected>,
    /// New status.
    pub status: RuntimeStatus,
    /// New container id.
    pub current_container_id: String,
    /// New image reference.
    pub current_image_ref: String,
    /// New engine version.
    pub current_engine_version: String,
    /// New engine endpoint.
    pub engine_endpoint: String,
    /// New Docker host (CONTRACT §6; `""` without several hosts).
    pub docker_host: String,
}

/// A compare-and-set status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The game.
    pub game_id: GameId,
    /// What the caller saw; the change applies only if the row still holds it.
    pub expected: Expected,
    /// The new status.
    pub to: RuntimeStatus,
    /// Why (kept for logs; stores may record it).
    pub message: String,
    /// The new `status_changed_at`, which is also the commit time of its event.
    pub at: Timestamp,
    /// The job result to tell the lobby of, when the lobby wants to hear of this status
    /// (`lobby_statuses`): the store records it in its outbox ([`OutboxPort`]) in the same
    /// transaction as the change, so that no change commits without its event, nor an event
    /// without its change.
    pub event: Option<JobResult>,
}

/// A compare-and-set move of a record to another container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebind {
    /// The game.
    pub game_id: GameId,
    /// What the caller saw; the move applies only if the row still holds it.
    pub expected: Expected,
    /// The container that really runs the game.
    pub container_id: String,
    /// Its image.
    pub image_ref: String,
    /// Its engine version.
    pub engine_version: String,
    /// The host it runs on (CONTRACT §6; `""` without several hosts).
    pub docker_host: String,
}

/// One compare-and-set probe-failure counter update of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailuresUpdate {
    /// The game.
    pub game_id: GameId,
    /// What the caller saw; rows that no longer hold it are skipped.
    pub expected: Expected,
    /// The new count.
    pub failures: u32,
}

/// Where the backend keeps `runtime_records`, game projections and snapshots.
///
/// Every write is atomic for its row: it happens whole or not at all. Every write the
/// reconciler makes is compare-and-set on what the caller saw of the row ([`Expected`]: its
/// status *and* its `current_container_id`): it returns [`PortError::Conflict`], saying what
/// changed ([`Expected::mismatch`]), when the row no longer holds it, and never moves a record
/// out of a terminal status (the forward-only rule), whatever the caller asks.
///
/// A store may fence its writes by leadership (the SQL store's `Store::fenced`): then a write
/// made while the leader lock is not held is refused with [`PortError::Fenced`] and does not
/// commit, including one already in flight when the lock was lost.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StorePort: Send + Sync + 'static {
    /// Every runtime record, in one call. A row that cannot be read (unknown status, malformed
    /// value) is an [`PortError::Invalid`] naming its game id and the value. Shared, as
    /// [`DockerPort::list_managed`]'s containers are.
    async fn list_records(&self) -> PortResult<Vec<Arc<RuntimeRecord>>>;

    /// One record; `Ok(None)` when the game has none.
    async fn get_record(&self, game_id: GameId) -> PortResult<Option<RuntimeRecord>>;

    /// Inserts a new record, as a start job does. [`PortError::Conflict`] if the game already
    /// has one.
    async fn create_record(&self, record: RuntimeRecord) -> PortResult<RuntimeRecord>;

    /// The projections of the given games, in one call; games without one are simply absent
    /// from the answer (not an error). Order is unspecified.
    async fn load_game_projections(&self, game_ids: &[GameId]) -> PortResult<Vec<GameProjection>>;

    /// Changes a record's status if it still holds `change.expected`, resetting
    /// `probe_failures` to 0 when the new status is `running` or terminal, and returns the
    /// updated record.
    ///
    /// [`PortError::NotFound`] if there is no record; [`PortError::Conflict`] if the record no
    /// longer holds `expected` or the change would leave a terminal status. Repeating a call
    /// that succeeded gives `Conflict` (the status is no longer the expected one) and changes
    /// nothing.
    async fn transition_status(&self, change: StatusChange) -> PortResult<RuntimeRecord>;

    /// Moves a non-terminal record to another container if it still holds `rebind.expected`;
    /// returns the updated record. Errors as [`StorePort::transition_status`].
    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord>;

    /// Inserts `insert` if the game has no record; otherwise overwrites the existing record
    /// with `update` (the seed's upsert) if it still holds `update.expected`. A record that does
    /// not (or any record when `expected` is `None`), or a terminal one, is a
    /// [`PortError::Conflict`] and stays as it is. Returns the record as stored.
    async fn upsert_adopted(
        &self,
        insert: AdoptInsert,
        update: AdoptUpdate,
    ) -> PortResult<RuntimeRecord>;

    /// Sets probe-failure counters in a batch, of any size (the store splits it into statements
    /// as it needs). Each row is updated only if it exists and still holds its `expected`; the
    /// answer holds the rows that were updated (the others were skipped as conflicts). The
    /// batch is one transaction. Repeating it is harmless.
    async fn set_probe_failures(
        &self,
        updates: &[ProbeFailuresUpdate],
    ) -> PortResult<Vec<RuntimeRecord>>;

    /// Publishes engine snapshots in a batch of any size, replacing each game's previous
    /// snapshot. Repeating it is harmless.
    async fn publish_snapshots(&self, snapshots: &[Snapshot]) -> PortResult<()>;

    /// The latest snapshot of a game; `Ok(None)` when there is none.
    async fn get_snapshot(&self, game_id: GameId) -> PortResult<Option<Snapshot>>;
}

/// What became of one attempt to deliver a lobby event (see [`OutboxPort::record_deliveries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The lobby accepted the event.
    Delivered {
        /// The event.
        event_id: EventId,
        /// When it was accepted.
        at: Timestamp,
    },
    /// The attempt failed; the event is due again at `next_attempt_at`.
    Failed {
        /// The event.
        event_id: EventId,
        /// Why, in one line.
        error: String,
        /// When to try again.
        next_attempt_at: Timestamp,
    },
}

/// How many events wait for delivery, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Events not yet delivered.
    pub pending: u64,
    /// When the oldest of them committed.
    pub oldest_pending_at: Option<Timestamp>,
    /// The earliest time one of them can be claimed ([`OutboxPort::claim_due`]): of each game's
    /// oldest pending event, the later of its next attempt and its claim's end. Past for an
    /// event due now.
    pub next_attempt_at: Option<Timestamp>,
}

/// Which events [`OutboxPort::list_events`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only the events not yet delivered.
    pub pending_only: bool,
    /// Only the events of this game.
    pub game_id: Option<GameId>,
    /// At most this many, the most recent ones.
    pub limit: usize,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            pending_only: false,
            game_id: None,
            limit: 1_000,
        }
    }
}

/// The outbox of lobby events: written by [`StorePort::transition_status`] in the same
/// transaction as the status change it tells of ([`StatusChange::event`]), read and marked by
/// the reconciler's relay (CONTRACT §3, §7).
///
/// Events of one game are delivered in the order they committed (their `seq`), the next only
/// after the previous was accepted; other games are not held up. Every write here is a write of
/// the store, fenced like the others: a replica that does not lead can neither claim nor mark.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxPort: Send + Sync + 'static {
    /// Claims, until `now + lease`, the events due at `now`: of each game the oldest event not
    /// yet delivered, if its next attempt is due and no unexpired claim holds it. At most
    /// `limit`, in commit order. A claim keeps two relays from sending one event at once; a
    /// claim that expires (a relay that died) makes the event due again.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> PortResult<Vec<OutboxEntry>>;

    /// Records what became of claimed events: delivered (never delivered again unless
    /// [`OutboxPort::redeliver`] says so), or failed (an attempt counted, the error kept, due
    /// again at its time). An outcome for an event already delivered changes nothing; an
    /// unknown event id is ignored (pruned meanwhile). Repeating it is harmless.
    async fn record_deliveries(&self, outcomes: &[DeliveryOutcome]) -> PortResult<()>;

    /// How many events are pending, and the commit time of the oldest.
    async fn outbox_stats(&self) -> PortResult<OutboxStats>;

    /// Deletes the events delivered before `before`; returns how many.
    async fn prune_delivered(&self, before: Timestamp) -> PortResult<u64>;

    /// Events with their delivery state, in commit order (the latest `filter.limit` of them).
    async fn list_events(&self, filter: &EventFilter) -> PortResult<Vec<OutboxEntry>>;

    /// Makes an event due again at `now` (delivered or not), keeping its id, attempts and last
    /// error; returns it. [`PortError::NotFound`] for an unknown id.
    async fn redeliver(&self, event_id: EventId, now: Timestamp) -> PortResult<OutboxEntry>;
}

/// Where game projections are maintained, for stores that own them (the `games` command,
/// demos, tests). A host whose lobby owns the games table does not need it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait GameCatalog: Send + Sync + 'static {
    /// Inserts or replaces a game's projection. Repeating it is harmless.
    async fn put_game(&self, game: GameProjection) -> PortResult<()>;

    /// Every projection, sorted by game id.
    async fn list_games(&self) -> PortResult<Vec<GameProjection>>;

    /// Removes a game's projection; [`PortError::NotFound`] if there is none.
    async fn remove_game(&self, game_id: GameId) -> PortResult<()>;
}

/// A game engine's status resource.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EnginePort: Send + Sync + 'static {
    /// The engine's status JSON at `endpoint` (such as `http://galaxy-game-<id>:8080`).
    ///
    /// Only reads; may be repeated. Any failure to get a JSON answer is an error whose message
    /// says what happened (refused, timeout, non-2xx status, not JSON, too large).
    async fn status(&self, endpoint: &str) -> PortResult<serde_json::Value>;
}

/// The lobby, which owns games and wants to hear about their runtimes.
///
/// The reconciler's relay calls it with the events of the outbox (CONTRACT §7): at least once
/// each — the same event again, with the same `event_id`, after a failure, a timeout, a crash
/// or a change of leader — so **the lobby deduplicates by `event_id`**. Events of one game come
/// in the order they committed, the next only once the previous was accepted. Each call is
/// bounded by `lobby_timeout`; an `Err` (of any kind) or no answer in time means "not
/// accepted": the event is retried with backoff, for as long as it takes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LobbyPort: Send + Sync + 'static {
    /// Tells the lobby what happened to a game's runtime; `Ok` accepts the event for good.
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()>;
}

/// A read-through cache of runtime records, updated after every store write.
///
/// Calls are synchronous and must be cheap: they run on the pass's task.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Cache: Send + Sync + 'static {
    /// Remembers the record as the store returned it (replacing any older one).
    fn put_runtime(&self, record: RuntimeRecord);

    /// The remembered record of a game, if any.
    fn get_runtime(&self, game_id: GameId) -> Option<RuntimeRecord>;
}

/// The turn scheduler, which must learn of games whose runtime was adopted as running.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Scheduler: Send + Sync + 'static {
    /// Starts (or keeps) scheduling turns for the game. Called again for a game already
    /// scheduled, it must do nothing.
    fn start_game(&self, record: &RuntimeRecord);
}

/// A lock that makes one process among replicas the only one applying changes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LeaderLock: Send + Sync + 'static {
    /// Tries to take the lock without waiting; `Ok(true)` when this process holds it (also when
    /// it already did). Repeating it is harmless.
    async fn try_acquire(&self) -> PortResult<bool>;

    /// Whether this process still holds the lock (a lost connection means it does not).
    async fn is_held(&self) -> PortResult<bool>;

    /// Gives the lock up, if held.
    async fn release(&self) -> PortResult<()>;
}

/// A long-running part of a host process (the seed's `internal/app.Component`).
#[async_trait]
pub trait Component: Send + Sync {
    /// Runs until `cancel` fires, then returns once the work in flight is finished.
    async fn run(&self, cancel: CancellationToken) -> PortResult<()>;

    /// Waits until a `run` that was cancelled has finished its work in flight.
    async fn shutdown(&self) -> PortResult<()>;
}

#[async_trait]
impl<T: DockerPort + ?Sized> DockerPort for Arc<T> {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        (**self).list_managed(filter).await
    }
    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        (**self).inspect(container_id).await
    }
    fn published_address(&self) -> Option<String> {
        (**self).published_address()
    }
}

#[async_trait]
impl<T: EnginePort + ?Sized> EnginePort for Arc<T> {
    async fn status(&self, endpoint: &str) -> PortResult<serde_json::Value> {
        (**self).status(endpoint).await
    }
}

#[async_trait]
impl<T: LobbyPort + ?Sized> LobbyPort for Arc<T> {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        (**self).on_runtime_job_result(event).await
    }
}

impl<T: Cache + ?Sized> Cache for Arc<T> {
    fn put_runtime(&self, record: RuntimeRecord) {
        (**self).put_runtime(record)
    }
    fn get_runtime(&self, game_id: GameId) -> Option<RuntimeRecord> {
        (**self).get_runtime(game_id)
    }
}

impl<T: Scheduler + ?Sized> Scheduler for Arc<T> {
    fn start_game(&self, record: &RuntimeRecord) {
        (**self).start_game(record)
    }
}
