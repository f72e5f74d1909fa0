use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_runtime_model::{
    EventId, GameId, GameProjection, JobResult, LobbyEvent, OutboxEntry, RuntimeRecord,
    RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, DeliveryOutcome, EventFilter, Expected, GameCatalog, LeaderLock,
    OutboxPort, OutboxStats, PortError, PortResult, ProbeFailuresUpdate, Rebind, StatusChange,
    StorePort,
};

use crate::lock;
use crate::table::Table;

/// A method of [`MemoryStore`], to aim an injected failure at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StoreMethod {
    /// [`StorePort::list_records`].
    ListRecords,
    /// [`StorePort::get_record`].
    GetRecord,
    /// [`StorePort::create_record`].
    CreateRecord,
    /// [`StorePort::load_game_projections`].
    LoadGameProjections,
    /// [`StorePort::transition_status`].
    TransitionStatus,
    /// [`StorePort::rebind`].
    Rebind,
    /// [`StorePort::upsert_adopted`].
    UpsertAdopted,
    /// [`StorePort::set_probe_failures`].
    SetProbeFailures,
    /// [`StorePort::publish_snapshots`].
    PublishSnapshots,
    /// [`StorePort::get_snapshot`].
    GetSnapshot,
    /// [`GameCatalog::put_game`].
    PutGame,
    /// [`GameCatalog::list_games`].
    ListGames,
    /// [`GameCatalog::remove_game`].
    RemoveGame,
    /// [`LeaderLock::try_acquire`] and [`LeaderLock::is_held`] of a [`MemoryLeaderLock`] (the
    /// lock's session talks to the same "database").
    LeaderLock,
    /// [`OutboxPort::claim_due`].
    ClaimDue,
    /// [`OutboxPort::record_deliveries`].
    RecordDeliveries,
    /// [`OutboxPort::prune_delivered`].
    PruneDelivered,
    /// [`OutboxPort::list_events`] and [`OutboxPort::outbox_stats`].
    ListEvents,
    /// [`OutboxPort::redeliver`].
    Redeliver,
}

/// How many times each method of a [`MemoryStore`] was called (failed calls included), and how
/// many rows the batch methods were given in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCalls {
    /// Calls of [`StorePort::list_records`].
    pub list_records: u64,
    /// Calls of [`StorePort::get_record`].
    pub get_record: u64,
    /// Calls of [`StorePort::create_record`].
    pub create_record: u64,
    /// Calls of [`StorePort::load_game_projections`].
    pub load_game_projections: u64,
    /// Calls of [`StorePort::transition_status`].
    pub transition_status: u64,
    /// Calls of [`StorePort::rebind`].
    pub rebind: u64,
    /// Calls of [`StorePort::upsert_adopted`].
    pub upsert_adopted: u64,
    /// Calls of [`StorePort::set_probe_failures`].
    pub set_probe_failures: u64,
    /// Calls of [`StorePort::publish_snapshots`].
    pub publish_snapshots: u64,
    /// Calls of [`StorePort::get_snapshot`].
    pub get_snapshot: u64,
    /// Calls of [`GameCatalog::put_game`].
    pub put_game: u64,
    /// Calls of [`GameCatalog::list_games`].
    pub list_games: u64,
    /// Calls of [`GameCatalog::remove_game`].
    pub remove_game: u64,
    /// Calls of [`LeaderLock::try_acquire`] and [`LeaderLock::is_held`] of its leader locks.
    pub leader_lock: u64,
    /// Calls of the [`OutboxPort`] methods.
    pub outbox: u64,
    /// Game ids asked of [`StorePort::load_game_projections`], over all calls.
    pub projections_asked: u64,
    /// Updates given to [`StorePort::set_probe_failures`], over all calls.
    pub probe_failure_updates: u64,
    /// Snapshots given to [`StorePort::publish_snapshots`], over all calls.
    pub snapshots_published: u64,
}

impl StoreCalls {
    /// Calls of the methods that write (everything but the reads).
    pub fn writes(&self) -> u64 {
        self.create_record
            + self.transition_status
            + self.rebind
            + self.upsert_adopted
            + self.set_probe_failures
            + self.publish_snapshots
            + self.put_game
            + self.remove_game
    }

    /// Calls of every method.
    pub fn total(&self) -> u64 {
        self.writes()
            + self.list_records
            + self.get_record
            + self.load_game_projections
            + self.get_snapshot
            + self.list_games
            + self.leader_lock
            + self.outbox
    }

    fn count(&mut self, method: StoreMethod) {
        let counter = match method {
            StoreMethod::ListRecords => &mut self.list_records,
            StoreMethod::GetRecord => &mut self.get_record,
            StoreMethod::CreateRecord => &mut self.create_record,
            StoreMethod::LoadGameProjections => &mut self.load_game_projections,
            StoreMethod::TransitionStatus => &mut self.transition_status,
            StoreMethod::Rebind => &mut self.rebind,
            StoreMethod::UpsertAdopted => &mut self.upsert_adopted,
            StoreMethod::SetProbeFailures => &mut self.set_probe_failures,
            StoreMethod::PublishSnapshots => &mut self.publish_snapshots,
            StoreMethod::GetSnapshot => &mut self.get_snapshot,
            StoreMethod::PutGame => &mut self.put_game,
            StoreMethod::ListGames => &mut self.list_games,
            StoreMethod::RemoveGame => &mut self.remove_game,
            StoreMethod::LeaderLock => &mut self.leader_lock,
            StoreMethod::ClaimDue
            | StoreMethod::RecordDeliveries
            | StoreMethod::PruneDelivered
            | StoreMethod::ListEvents
            | StoreMethod::Redeliver => &mut self.outbox,
        };
        *counter += 1;
    }
}

#[derive(Default)]
struct State {
    /// By game id, listed in the order they were added, shared with the listings handed out.
    records: Table<GameId, RuntimeRecord>,
    games: BTreeMap<GameId, GameProjection>,
    snapshots: BTreeMap<GameId, Snapshot>,
    calls: StoreCalls,
    failures: HashMap<StoreMethod, VecDeque<PortError>>,
    /// Errors answered by writes that were applied all the same (a lost answer).
    lost_answers: HashMap<StoreMethod, VecDeque<PortError>>,
    unavailable: bool,
    /// The session holding the leader lock, as the database of an advisory lock knows it.
    leader: Option<u64>,
    /// The last session id handed out.
    sessions: u64,
    /// Writes that reached the rows from a handle of a session that did not hold the lock
    /// (only an unenforced handle can make one).
    writes_without_lock: u64,
    /// The lobby events, written with their status changes.
    outbox: Outbox,
}

/// One event of the memory outbox, with its delivery state and its claim.
#[derive(Debug, Clone)]
struct EventRow {
    entry: OutboxEntry,
}

/// The outbox table: events by commit sequence.
#[derive(Debug, Default)]
struct Outbox {
    rows: BTreeMap<u64, EventRow>,
    by_id: HashMap<EventId, u64>,
    last_seq: u64,
}

impl Outbox {
    /// Records the event of a status change that is committing now.
    fn append(&mut self, game_id: GameId, result: JobResult, at: Timestamp) {
        self.last_seq += 1;
        let seq = self.last_seq;
        // Unique per store, and the same for a seed of a simulation.
        let event_id =
            EventId::from_u128(0x6576_656e_7400_4000_8000_0000_0000_0000 | u128::from(seq));
        self.by_id.insert(event_id, seq);
        self.rows.insert(
            seq,
            EventRow {
                entry: OutboxEntry {
                    event: LobbyEvent {
                        event_id,
                        game_id,
                        result,
                        at,
                    },
                    seq,
                    attempts: 0,
                    last_error: None,
                    next_attempt_at: at,
                    claimed_until: None,
                    delivered_at: None,
                },
            },
        );
    }
}

/// Whose writes a handle makes, and whether the lock is enforced.
#[derive(Debug, Clone, Copy)]
struct Fence {
    session: u64,
    enforce: bool,
}

/// The state during one write: whether its answer is lost is decided when it begins.
struct Write<'a> {
    state: MutexGuard<'a, State>,
    lost: Option<PortError>,
}

impl std::ops::Deref for Write<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Write<'_> {
    /// The answer of a write that was applied: `value`, or the error of a lost answer.
    fn answer<T>(self, value: T) -> PortResult<T> {
        match self.lost {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// A [`StorePort`] and [`GameCatalog`] in memory.
///
/// One lock guards everything, so every call is atomic as a whole (batches included), and
/// compare-and-set writes race exactly as on a database row. Records are listed sorted by game
/// id, which keeps simulations deterministic.
///
/// Besides the ports, it offers direct access for tests — seeding rows
/// ([`MemoryStore::insert_record`]), reading them without counting calls
/// ([`MemoryStore::record`]), call counters ([`MemoryStore::calls`]) and injected failures
/// ([`MemoryStore::fail_next`], [`MemoryStore::lose_next_answer`],
/// [`MemoryStore::set_unavailable`]).
///
/// It also keeps a leader lock as a database keeps an advisory lock
/// ([`MemoryStore::leader_lock`]), and hands out handles fenced by it
/// ([`MemoryStore::fenced`]): a fenced handle's write is refused with
/// [`PortError::Fenced`] unless its lock holds the leadership at that very moment (checked
/// under the same lock as the write). Handles share the data: a clone, or a fenced handle, sees
/// and changes the same rows.
#[derive(Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    fence: Option<Fence>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MemoryStore")
            .field("fence", &self.fence)
            .field("records", &state.records.len())
            .field("games", &state.games.len())
            .field("snapshots", &state.snapshots.len())
            .field("unavailable", &state.unavailable)
            .finish_non_exhaustive()
    }
}

fn not_found(game_id: GameId) -> PortError {
    PortError::not_found(format!("runtime record {game_id}"))
}

fn terminal(record: &RuntimeRecord) -> PortError {
    PortError::conflict(format!("record is {}, a terminal status", record.status))
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A leader lock kept in this store, as an advisory lock of a database session: one session
    /// of its own, which holds the lock from `try_acquire` to `release` or until the session is
    /// ended ([`MemoryStore::end_leader_session`]).
    pub fn leader_lock(&self) -> MemoryLeaderLock {
        let mut state = lock(&self.state);
        state.sessions += 1;
        MemoryLeaderLock {
            store: MemoryStore {
                state: Arc::clone(&self.state),
                fence: None,
            },
            session: state.sessions,
        }
    }

    /// A handle on the same rows whose writes are fenced by `lock`: refused with
    /// [`PortError::Fenced`] (and not applied) unless `lock` holds the leadership.
    pub fn fenced(&self, lock: &MemoryLeaderLock) -> MemoryStore {
        MemoryStore {
            state: Arc::clone(&self.state),
            fence: Some(Fence {
                session: lock.session,
                enforce: true,
            }),
        }
    }

    /// A handle on the same rows whose writes are attributed to `lock`'s session but not
    /// fenced: a write made without the lock is applied and counted
    /// ([`MemoryStore::writes_without_lock`]). For showing that a check catches a store that
    /// does not fence.
    pub fn attributed(&self, lock: &MemoryLeaderLock) -> MemoryStore {
        MemoryStore {
            state: Arc::clone(&self.state),
            fence: Some(Fence {
                session: lock.session,
                enforce: false,
            }),
        }
    }

    /// Ends the session holding the leader lock, as a server that terminates it
    /// (`pg_terminate_backend`, `idle_session_timeout`, a failover): nobody leads until the next
    /// `try_acquire`. Returns whether a session held it.
    pub fn end_leader_session(&self) -> bool {
        lock(&self.state).leader.take().is_some()
    }

    /// Writes applied from a session that did not hold the leader lock (only unenforced handles
    /// of [`MemoryStore::attributed`] can make them).
    pub fn writes_without_lock(&self) -> u64 {
        lock(&self.state).writes_without_lock
    }

    /// Makes the next call of `method` apply as usual and then answer `error` (a timeout after
    /// the commit, a connection lost with the answer). Several queue up.
    pub fn lose_next_answer(&self, method: StoreMethod, error: PortError) {
        lock(&self.state)
            .lost_answers
            .entry(method)
            .or_default()
            .push_back(error);
    }

    /// [`MemoryStore::begin`] for a write: a fenced handle without the lock is refused, and a
    /// lost answer, if one is due, is taken.
    fn begin_write(&self, method: StoreMethod) -> PortResult<Write<'_>> {
        let mut state = self.begin(method)?;
        if let Some(fence) = self.fence
            && state.leader != Some(fence.session)
        {
            if fence.enforce {
                return Err(PortError::fenced(format!(
                    "memory store: session {} does not hold the leader lock; the write is refused",
                    fence.session
                )));
            }
            state.writes_without_lock += 1;
        }
        let lost = state
            .lost_answers
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        Ok(Write { state, lost })
    }

    /// Counts a call of `method` and hands over the state, unless a failure is due.
    fn begin(&self, method: StoreMethod) -> PortResult<MutexGuard<'_, State>> {
        let mut state = lock(&self.state);
        state.calls.count(method);
        if let Some(error) = state
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            return Err(error);
        }
        if state.unavailable {
            return Err(PortError::Unavailable {
                message: "memory store is set unavailable".to_owned(),
                source: None,
            });
        }
        Ok(state)
    }

    /// Puts a record in as is, replacing any record of its game, without any check: for
    /// seeding a test or a simulation (and for making states the ports refuse to make).
    pub fn insert_record(&self, record: RuntimeRecord) {
        lock(&self.state).records.insert(record.game_id, record);
    }

    /// [`MemoryStore::insert_record`] for many records.
    pub fn insert_records(&self, records: impl IntoIterator<Item = RuntimeRecord>) {
        let mut state = lock(&self.state);
        for record in records {
            state.records.insert(record.game_id, record);
        }
    }

    /// Deletes a game's record, as an operator cleaning the table would; returns it.
    pub fn delete_record(&self, game_id: GameId) -> Option<RuntimeRecord> {
        lock(&self.state).records.remove(&game_id)
    }

    /// Puts a game projection in, replacing any of the same game.
    pub fn insert_game(&self, game: GameProjection) {
        lock(&self.state).games.insert(game.game_id, game);
    }

    /// A game's record, without counting a call or failing.
    pub fn record(&self, game_id: GameId) -> Option<RuntimeRecord> {
        lock(&self.state)
            .records
            .get(&game_id)
            .map(|r| RuntimeRecord::clone(r))
    }

    /// Every record, sorted by game id, without counting a call or failing.
    pub fn records(&self) -> Vec<RuntimeRecord> {
        let mut records: Vec<_> = lock(&self.state)
            .records
            .values()
            .map(|r| RuntimeRecord::clone(r))
            .collect();
        records.sort_by_key(|r| r.game_id);
        records
    }

    /// Every game projection, sorted by game id, without counting a call or failing.
    pub fn games(&self) -> Vec<GameProjection> {
        lock(&self.state).games.values().cloned().collect()
    }

    /// A game's latest snapshot, without counting a call or failing.
    pub fn snapshot(&self, game_id: GameId) -> Option<Snapshot> {
        lock(&self.state).snapshots.get(&game_id).cloned()
    }

    /// Every lobby event with its delivery state, in commit order, without counting a call or
    /// failing.
    pub fn events(&self) -> Vec<OutboxEntry> {
        lock(&self.state)
            .outbox
            .rows
            .values()
            .map(|r| r.entry.clone())
            .collect()
    }

    /// Every latest snapshot, sorted by game id, without counting a call or failing.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        lock(&self.state).snapshots.values().cloned().collect()
    }

    /// How many times each method was called so far.
    pub fn calls(&self) -> StoreCalls {
        lock(&self.state).calls
    }

    /// Sets every call counter back to zero.
    pub fn reset_calls(&self) {
        lock(&self.state).calls = StoreCalls::default();
    }

    /// Makes the next call of `method` fail with `error` (after counting it), changing nothing.
    /// Several failures queue up and are used one call each.
    pub fn fail_next(&self, method: StoreMethod, error: PortError) {
        lock(&self.state)
            .failures
            .entry(method)
            .or_default()
            .push_back(error);
    }

    /// While `true`, every call fails with [`PortError::Unavailable`] and changes nothing, as
    /// when the database is down.
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.state).unavailable = unavailable;
    }
}

#[async_trait]
impl StorePort for MemoryStore {
    async fn list_records(&self) -> PortResult<Vec<Arc<RuntimeRecord>>> {
        let state = self.begin(StoreMethod::ListRecords)?;
        Ok(state.records.values().cloned().collect())
    }

    async fn get_record(&self, game_id: GameId) -> PortResult<Option<RuntimeRecord>> {
        let state = self.begin(StoreMethod::GetRecord)?;
        Ok(state.records.get(&game_id).map(|r| RuntimeRecord::clone(r)))
    }

    async fn create_record(&self, record: RuntimeRecord) -> PortResult<RuntimeRecord> {
        let mut write = self.begin_write(StoreMethod::CreateRecord)?;
        if write.records.contains_key(&record.game_id) {
            return Err(PortError::conflict(format!(
                "runtime record {} already exists",
                record.game_id
            )));
        }
        write.records.insert(record.game_id, record.clone());
        write.answer(record)
    }

    async fn load_game_projections(&self, game_ids: &[GameId]) -> PortResult<Vec<GameProjection>> {
        let mut state = self.begin(StoreMethod::LoadGameProjections)?;
        state.calls.projections_asked += game_ids.len() as u64;
        let wanted: BTreeSet<_> = game_ids.iter().collect();
        Ok(wanted
            .into_iter()
            .filter_map(|id| state.games.get(id).cloned())
            .collect())
    }

    async fn transition_status(&self, change: StatusChange) -> PortResult<RuntimeRecord> {
        let mut write = self.begin_write(StoreMethod::TransitionStatus)?;
        let record = write
            .records
            .get_mut(&change.game_id)
            .ok_or_else(|| not_found(change.game_id))?;
        if let Some(changed) = change.expected.mismatch(record) {
            return Err(PortError::conflict(changed));
        }
        record
            .status
            .check_transition(change.to)
            .map_err(|e| PortError::conflict(e.to_string()))?;
        record.status = change.to;
        record.status_changed_at = change.at;
        if change.to == RuntimeStatus::Running || change.to.is_terminal() {
            record.probe_failures = 0;
        }
        let stored = record.clone();
        // Under the same lock as the change: both are written, or neither.
        if let Some(result) = change.event {
            write.outbox.append(change.game_id, result, change.at);
        }
        write.answer(stored)
    }

    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord> {
        let mut write = self.begin_write(StoreMethod::Rebind)?;
        let record = write
            .records
            .get_mut(&rebind.game_id)
            .ok_or_else(|| not_found(rebind.game_id))?;
        if record.is_terminal() {
            return Err(terminal(record));
        }
        if let Some(changed) = rebind.expected.mismatch(record) {
            return Err(PortError::conflict(changed));
        }
        record.current_container_id = rebind.container_id;
        record.docker_host = rebind.docker_host;
        record.current_image_ref = rebind.image_ref;
        record.current_engine_version = rebind.engine_version;
        let stored = record.clone();
        write.answer(stored)
    }

    /// On the update path, `status_changed_at` becomes `insert.record.status_changed_at` (the
    /// adoption's time) when the status changes, and is kept otherwise.
    async fn upsert_adopted(
        &self,
        insert: AdoptInsert,
        update: AdoptUpdate,
    ) -> PortResult<RuntimeRecord> {
        let mut write = self.begin_write(StoreMethod::UpsertAdopted)?;
        let game_id = insert.record.game_id;
        let Some(record) = write.records.get_mut(&game_id) else {
            write.records.insert(game_id, insert.record.clone());
            return write.answer(insert.record);
        };
        if record.is_terminal() {
            return Err(terminal(record));
        }
        let Some(expected) = &update.expected else {
            return Err(PortError::conflict(Expected::unexpected_record(record)));
        };
        if let Some(changed) = expected.mismatch(record) {
            return Err(PortError::conflict(changed));
        }
        if record.status != update.status {
            record.status_changed_at = insert.record.status_changed_at;
        }
        record.status = update.status;
        record.current_container_id = update.current_container_id;
        record.current_image_ref = update.current_image_ref;
        record.current_engine_version = update.current_engine_version;
        record.engine_endpoint = update.engine_endpoint;
        record.docker_host = update.docker_host;
        let stored = record.clone();
        write.answer(stored)
    }

    async fn set_probe_failures(
        &self,
        updates: &[ProbeFailuresUpdate],
    ) -> PortResult<Vec<RuntimeRecord>> {
        let mut write = self.begin_write(StoreMethod::SetProbeFailures)?;
        write.calls.probe_failure_updates += updates.len() as u64;
        // A game named twice is answered once, with its final row.
        let mut updated = BTreeSet::new();
        for update in updates {
            if write
                .records
                .get(&update.game_id)
                .is_some_and(|record| update.expected.matches(record))
                && let Some(record) = write.records.get_mut(&update.game_id)
            {
                record.probe_failures = update.failures;
                updated.insert(update.game_id);
            }
        }
        let rows = updated
            .into_iter()
            .filter_map(|id| write.records.get(&id).map(|r| RuntimeRecord::clone(r)))
            .collect();
        write.answer(rows)
    }

    async fn publish_snapshots(&self, snapshots: &[Snapshot]) -> PortResult<()> {
        let mut write = self.begin_write(StoreMethod::PublishSnapshots)?;
        write.calls.snapshots_published += snapshots.len() as u64;
        for snapshot in snapshots {
            write.snapshots.insert(snapshot.game_id, snapshot.clone());
        }
        write.answer(())
    }

    async fn get_snapshot(&self, game_id: GameId) -> PortResult<Option<Snapshot>> {
        let state = self.begin(StoreMethod::GetSnapshot)?;
        Ok(state.snapshots.get(&game_id).cloned())
    }
}

#[async_trait]
impl GameCatalog for MemoryStore {
    async fn put_game(&self, game: GameProjection) -> PortResult<()> {
        let mut write = self.begin_write(StoreMethod::PutGame)?;
        write.games.insert(game.game_id, game);
        write.answer(())
    }

    async fn list_games(&self) -> PortResult<Vec<GameProjection>> {
        let state = self.begin(StoreMethod::ListGames)?;
        Ok(state.games.values().cloned().collect())
    }

    async fn remove_game(&self, game_id: GameId) -> PortResult<()> {
        let mut write = self.begin_write(StoreMethod::RemoveGame)?;
        match write.games.remove(&game_id) {
            Some(_) => write.answer(()),
            None => Err(PortError::not_found(format!("game projection {game_id}"))),
        }
    }
}

#[async_trait]
impl OutboxPort for MemoryStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: usize,
    ) -> PortResult<Vec<OutboxEntry>> {
        let mut write = self.begin_write(StoreMethod::ClaimDue)?;
        let until = now.saturating_add(lease);
        let mut seen_games = BTreeSet::new();
        let mut claimed = Vec::new();
        for row in write.outbox.rows.values_mut() {
            if claimed.len() == limit {
                break;
            }
            if !row.entry.is_pending() || !seen_games.insert(row.entry.event.game_id) {
                // Delivered, or a later event of a game whose earlier one is still pending.
                continue;
            }
            let due = row.entry.next_attempt_at <= now;
            let free = row.entry.claimed_until.is_none_or(|until| until <= now);
            if due && free {
                row.entry.claimed_until = Some(until);
                claimed.push(row.entry.clone());
            }
        }
        write.answer(claimed)
    }

    async fn record_deliveries(&self, outcomes: &[DeliveryOutcome]) -> PortResult<()> {
        let mut write = self.begin_write(StoreMethod::RecordDeliveries)?;
        let outbox = &mut write.outbox;
        for outcome in outcomes {
            let event_id = match outcome {
                DeliveryOutcome::Delivered { event_id, .. }
                | DeliveryOutcome::Failed { event_id, .. } => *event_id,
            };
            let Some(row) = outbox
                .by_id
                .get(&event_id)
                .and_then(|seq| outbox.rows.get_mut(seq))
            else {
                continue;
            };
            if !row.entry.is_pending() {
                continue;
            }
            row.entry.claimed_until = None;
            row.entry.attempts = row.entry.attempts.saturating_add(1);
            match outcome {
                DeliveryOutcome::Delivered { at, .. } => row.entry.delivered_at = Some(*at),
                DeliveryOutcome::Failed {
                    error,
                    next_attempt_at,
                    ..
                } => {
                    row.entry.last_error = Some(error.clone());
                    row.entry.next_attempt_at = *next_attempt_at;
                }
            }
        }
        write.answer(())
    }

    async fn outbox_stats(&self) -> PortResult<OutboxStats> {
        let state = self.begin(StoreMethod::ListEvents)?;
        let mut stats = OutboxStats::default();
        let mut seen_games = BTreeSet::new();
        for row in state.outbox.rows.values().filter(|r| r.entry.is_pending()) {
            stats.pending += 1;
            let at = row.entry.event.at;
            stats.oldest_pending_at = Some(stats.oldest_pending_at.map_or(at, |o| o.min(at)));
            // Only a game's oldest pending event can be claimed, once its time has come and
            // any claim on it has expired.
            if seen_games.insert(row.entry.event.game_id) {
                let next = row
                    .entry
                    .claimed_until
                    .map_or(row.entry.next_attempt_at, |until| {
                        until.max(row.entry.next_attempt_at)
                    });
                stats.next_attempt_at = Some(stats.next_attempt_at.map_or(next, |n| n.min(next)));
            }
        }
        Ok(stats)
    }

    async fn prune_delivered(&self, before: Timestamp) -> PortResult<u64> {
        let mut write = self.begin_write(StoreMethod::PruneDelivered)?;
        let outbox = &mut write.outbox;
        let old: Vec<(u64, EventId)> = outbox
            .rows
            .iter()
            .filter(|(_, r)| r.entry.delivered_at.is_some_and(|at| at < before))
            .map(|(seq, r)| (*seq, r.entry.event.event_id))
            .collect();
        for (seq, event_id) in &old {
            outbox.rows.remove(seq);
            outbox.by_id.remove(event_id);
        }
        write.answer(old.len() as u64)
    }

    async fn list_events(&self, filter: &EventFilter) -> PortResult<Vec<OutboxEntry>> {
        let state = self.begin(StoreMethod::ListEvents)?;
        let mut events: Vec<OutboxEntry> = state
            .outbox
            .rows
            .values()
            .rev()
            .map(|r| &r.entry)
            .filter(|e| !filter.pending_only || e.is_pending())
            .filter(|e| filter.game_id.is_none_or(|g| g == e.event.game_id))
            .take(filter.limit)
            .cloned()
            .collect();
        events.reverse();
        Ok(events)
    }

    async fn redeliver(&self, event_id: EventId, now: Timestamp) -> PortResult<OutboxEntry> {
        let mut write = self.begin_write(StoreMethod::Redeliver)?;
        let outbox = &mut write.outbox;
        let Some(row) = outbox
            .by_id
            .get(&event_id)
            .and_then(|seq| outbox.rows.get_mut(seq))
        else {
            return Err(PortError::not_found(format!("lobby event {event_id}")));
        };
        row.entry.delivered_at = None;
        row.entry.next_attempt_at = now;
        row.entry.claimed_until = None;
        let entry = row.entry.clone();
        write.answer(entry)
    }
}

/// A [`LeaderLock`] kept in a [`MemoryStore`] (see [`MemoryStore::leader_lock`]): one session
/// of the store's "database". Several locks of one store contend, as replicas do.
#[derive(Debug, Clone)]
pub struct MemoryLeaderLock {
    store: MemoryStore,
    session: u64,
}

impl MemoryLeaderLock {
    /// This lock's session id in its store.
    pub fn session(&self) -> u64 {
        self.session
    }
}

#[async_trait]
impl LeaderLock for MemoryLeaderLock {
    async fn try_acquire(&self) -> PortResult<bool> {
        let mut state = self.store.begin(StoreMethod::LeaderLock)?;
        match state.leader {
            None => {
                state.leader = Some(self.session);
                Ok(true)
            }
            Some(holder) => Ok(holder == self.session),
        }
    }

    async fn is_held(&self) -> PortResult<bool> {
        let state = self.store.begin(StoreMethod::LeaderLock)?;
        Ok(state.leader == Some(self.session))
    }

    async fn release(&self) -> PortResult<()> {
        let mut state = lock(&self.store.state);
        if state.leader == Some(self.session) {
            state.leader = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::Timestamp;
    use galaxy_runtime_ports::ErrorKind;

    use super::*;

    fn record(status: RuntimeStatus) -> RuntimeRecord {
        let mut record = RuntimeRecord::new(GameId::new_random(), status, Timestamp::now());
        record.current_container_id = "c1".to_owned();
        record
    }

    /// A stop of `r`'s game, as a job would ask it, expecting `r`.
    fn stop(r: &RuntimeRecord) -> StatusChange {
        StatusChange {
            game_id: r.game_id,
            expected: Expected::of(r),
            to: RuntimeStatus::Stopped,
            message: "stop".to_owned(),
            at: Timestamp::now(),
            event: None,
        }
    }

    #[tokio::test]
    async fn a_listing_shares_the_records_and_stays_a_snapshot() {
        let store = MemoryStore::new();
        let r = record(RuntimeStatus::Running);
        store.insert_record(r.clone());
        let first = store.list_records().await.unwrap();
        let second = store.list_records().await.unwrap();
        assert!(
            Arc::ptr_eq(&first[0], &second[0]),
            "two listings hand out the same row, not copies of it"
        );

        let change = stop(&r);
        store.transition_status(change).await.unwrap();
        assert_eq!(
            first[0].status,
            RuntimeStatus::Running,
            "a listing is a snapshot"
        );
        let after = store.list_records().await.unwrap();
        assert_eq!(after[0].status, RuntimeStatus::Stopped);
    }

    #[tokio::test]
    async fn records_are_listed_in_the_order_they_were_added() {
        let store = MemoryStore::new();
        let mut added: Vec<GameId> = (0..20).map(|_| GameId::new_random()).collect();
        for &game_id in &added {
            store.insert_record(RuntimeRecord::new(
                game_id,
                RuntimeStatus::Running,
                Timestamp::now(),
            ));
        }
        let listed: Vec<GameId> = store
            .list_records()
            .await
            .unwrap()
            .iter()
            .map(|r| r.game_id)
            .collect();
        assert_eq!(listed, added);
        added.sort();
        let sorted: Vec<GameId> = store.records().iter().map(|r| r.game_id).collect();
        assert_eq!(sorted, added, "records() is sorted by game id");
    }

    #[tokio::test]
    async fn fail_next_fails_once_then_works_and_changes_nothing() {
        let store = MemoryStore::new();
        let r = record(RuntimeStatus::Running);
        store.insert_record(r.clone());
        store.fail_next(
            StoreMethod::TransitionStatus,
            PortError::timeout("UPDATE runtime_records", std::time::Duration::from_secs(1)),
        );
        let change = stop(&r);
        let err = store.transition_status(change.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(
            store.record(r.game_id),
            Some(r.clone()),
            "a failed call changes nothing"
        );
        let updated = store.transition_status(change).await.unwrap();
        assert_eq!(updated.status, RuntimeStatus::Stopped);
        assert_eq!(
            store.calls().transition_status,
            2,
            "failed calls are counted too"
        );
    }

    #[tokio::test]
    async fn unavailable_fails_every_call_until_cleared() {
        let store = MemoryStore::new();
        store.set_unavailable(true);
        let err = store.list_records().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
        assert!(
            store
                .put_game(GameProjection {
                    game_id: GameId::new_random(),
                    turn_schedule: String::new(),
                })
                .await
                .is_err()
        );
        assert!(
            store.games().is_empty(),
            "nothing written while unavailable"
        );
        store.set_unavailable(false);
        assert!(store.list_records().await.unwrap().is_empty());
        assert_eq!(store.calls().list_records, 2);
        assert_eq!(store.calls().put_game, 1);
    }

    #[tokio::test]
    async fn counts_calls_and_batch_rows() {
        let store = MemoryStore::new();
        let snapshots: Vec<_> = (0..5)
            .map(|turn| Snapshot {
                game_id: GameId::new_random(),
                state: serde_json::json!({ "turn": turn }).into(),
                observed_at: Timestamp::now(),
            })
            .collect();
        store.publish_snapshots(&snapshots[..3]).await.unwrap();
        store.publish_snapshots(&snapshots[3..]).await.unwrap();
        store
            .load_game_projections(&[GameId::new_random()])
            .await
            .unwrap();
        let calls = store.calls();
        assert_eq!(calls.publish_snapshots, 2);
        assert_eq!(calls.snapshots_published, 5);
        assert_eq!(calls.load_game_projections, 1);
        assert_eq!(calls.projections_asked, 1);
        assert_eq!(calls.writes(), 2);
        assert_eq!(calls.total(), 3);
        assert_eq!(store.snapshots().len(), 5);
        store.reset_calls();
        assert_eq!(store.calls(), StoreCalls::default());
    }

    #[tokio::test]
    async fn adoption_over_a_live_record_dates_a_status_change() {
        let store = MemoryStore::new();
        let existing = record(RuntimeStatus::Starting);
        store.insert_record(existing.clone());
        let at = existing
            .status_changed_at
            .saturating_add(std::time::Duration::from_secs(60));
        let mut adopted = existing.clone();
        adopted.status = RuntimeStatus::Running;
        adopted.status_changed_at = at;
        let update = AdoptUpdate {
            expected: Some(Expected::of(&existing)),
            status: RuntimeStatus::Running,
            current_container_id: "c2".to_owned(),
            current_image_ref: "img".to_owned(),
            current_engine_version: "1.0".to_owned(),
            engine_endpoint: "http://e:8080".to_owned(),
            docker_host: String::new(),
        };
        let stored = store
            .upsert_adopted(AdoptInsert { record: adopted }, update)
            .await
            .unwrap();
        assert_eq!(stored.status_changed_at, at);
        assert_eq!(stored.current_container_id, "c2");
    }

    #[tokio::test]
    async fn a_fenced_handle_writes_only_while_its_lock_leads() {
        let store = MemoryStore::new();
        let r = record(RuntimeStatus::Running);
        store.insert_record(r.clone());
        let (a, b) = (store.leader_lock(), store.leader_lock());
        let change = |r: &RuntimeRecord, to| StatusChange {
            game_id: r.game_id,
            expected: Expected::of(r),
            to,
            message: "fenced".to_owned(),
            at: Timestamp::now(),
            event: None,
        };
        let fenced_a = store.fenced(&a);
        let refused = fenced_a
            .transition_status(change(&r, RuntimeStatus::Stopped))
            .await
            .unwrap_err();
        assert!(refused.is_fenced(), "{refused}");
        assert!(a.try_acquire().await.unwrap());
        assert!(!b.try_acquire().await.unwrap(), "one leader at a time");
        let stopped = fenced_a
            .transition_status(change(&r, RuntimeStatus::Stopped))
            .await
            .unwrap();
        // The server ends A's session; B takes over; A's writes are refused.
        assert!(store.end_leader_session());
        assert!(!a.is_held().await.unwrap());
        assert!(b.try_acquire().await.unwrap());
        let refused = fenced_a
            .transition_status(change(&stopped, RuntimeStatus::Running))
            .await
            .unwrap_err();
        assert!(refused.is_fenced(), "{refused}");
        assert_eq!(
            store.record(r.game_id).unwrap().status,
            RuntimeStatus::Stopped
        );
        assert_eq!(store.writes_without_lock(), 0);

        // An unenforced handle of A's session writes anyway, and is counted.
        store
            .attributed(&a)
            .transition_status(change(&stopped, RuntimeStatus::Running))
            .await
            .unwrap();
        assert_eq!(store.writes_without_lock(), 1);
    }

    #[tokio::test]
    async fn a_lost_answer_is_an_error_after_the_write_applied() {
        let store = MemoryStore::new();
        let r = record(RuntimeStatus::Running);
        store.insert_record(r.clone());
        store.lose_next_answer(
            StoreMethod::TransitionStatus,
            PortError::timeout("UPDATE runtime_records", std::time::Duration::from_secs(1)),
        );
        let change = stop(&r);
        let err = store.transition_status(change).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(
            store.record(r.game_id).unwrap().status,
            RuntimeStatus::Stopped
        );
    }

    #[tokio::test]
    async fn delete_record_makes_the_game_unknown() {
        let store = MemoryStore::new();
        let r = record(RuntimeStatus::Removed);
        store.insert_records([r.clone()]);
        assert_eq!(store.delete_record(r.game_id), Some(r.clone()));
        assert_eq!(store.get_record(r.game_id).await.unwrap(), None);
    }
}
