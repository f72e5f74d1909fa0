//! The writes a pass makes, against real SQLite and PostgreSQL, through the reconciler's own
//! executor, with the world changing under it: a restart job that moves a game to a new
//! container between observe and apply, and a leader whose lock session the server ends while
//! its pass is between two groups of writes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::{PgSchema, SqliteFile};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;
use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby, MemoryScheduler,
};
use galaxy_runtime_model::{Config, ContainerState, GameId, RuntimeRecord, RuntimeStatus};
use galaxy_runtime_ports::{Expected, LeaderLock, PortResult, StatusChange, StorePort};
use galaxy_runtime_reconciler::{PassError, Reconciler};
use galaxy_runtime_store::{PgLeaderLock, Store, StoreLeaderLock};
use galaxy_runtime_testkit::now_micros;
use galaxy_runtime_testkit::store::{restart_onto, sample_record};
use serde_json::json;

/// The in-memory rest of the world of one reconciler on `store`.
struct World {
    docker: Arc<MemoryDocker>,
    engine: Arc<MemoryEngine>,
    lobby: Arc<MemoryLobby>,
}

impl World {
    fn new() -> Self {
        Self {
            docker: Arc::new(MemoryDocker::new()),
            engine: Arc::new(MemoryEngine::new()),
            lobby: Arc::new(MemoryLobby::new()),
        }
    }

    fn reconciler(&self, store: Store, leader: Option<Arc<dyn LeaderLock>>) -> Reconciler {
        let outbox = Arc::new(store.clone());
        let builder = Reconciler::builder()
            .docker(self.docker.clone())
            .store(Arc::new(store))
            .engine(self.engine.clone())
            .lobby(self.lobby.clone())
            .outbox(outbox)
            .cache(Arc::new(MemoryCache::new()))
            .scheduler(Arc::new(MemoryScheduler::new()))
            .config(Config::default());
        match leader {
            Some(leader) => builder.leader(leader),
            None => builder,
        }
        .build()
        .expect("every port given")
    }
}

/// A pass observes a running game whose container is gone and plans its removal; before it
/// applies, a restart job starts a new container and points the record at it (the status stays
/// `running`). The removal must not happen: the record is still running on the new container,
/// the pass counts a conflict, and the lobby hears nothing.
async fn restart_between_observe_and_apply(store: Store) {
    let world = World::new();
    let config = Config::default();
    let game_id = GameId::new_random();
    let old = MemoryDocker::new_container_id();
    let mut record = sample_record(game_id, RuntimeStatus::Running);
    record.current_container_id = old.clone();
    let record = store
        .create_record(record)
        .await
        .expect("creating the record");
    let reconciler = world.reconciler(store.clone(), None);

    let (scenario, plan) = reconciler.tick_dry_run().await.expect("observe and plan");
    assert!(
        plan.actions.iter().any(|a| a.is_removal()),
        "the pass plans the removal of the game whose container vanished: {plan:?}"
    );

    // The restart job: a new container, and the record moved to it, status unchanged.
    let new = MemoryDocker::new_container_id();
    world.docker.add(MemoryDocker::game_container(
        &config,
        game_id,
        &new,
        ContainerState::Running,
    ));
    let moved = store
        .rebind(restart_onto(&record, &new))
        .await
        .expect("the restart job moves the record");

    let report = reconciler
        .apply(&scenario, &plan)
        .await
        .expect("a conflict is not an error");
    assert_eq!(report.conflicts, 1, "{report:?}");
    assert_eq!(report.applied["set_status"], 0, "{report:?}");
    let now = store
        .get_record(game_id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        now, moved,
        "the record is still running on the new container"
    );
    assert_eq!(now.status, RuntimeStatus::Running);
    assert_eq!(now.current_container_id, new);
    assert!(
        world.lobby.results().is_empty(),
        "nothing is sent to the lobby"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_record_moved_to_a_new_container_meanwhile_is_not_removed() {
    let db = SqliteFile::new();
    restart_between_observe_and_apply(db.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_record_moved_to_a_new_container_meanwhile_is_not_removed() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    restart_between_observe_and_apply(schema.store().await).await;
}

/// A leader lock that runs `hook` once, right after its `n`th `is_held` answered `true`: the
/// moment between the executor's leadership check and its next write.
struct AfterCheck {
    inner: Arc<StoreLeaderLock>,
    checks: AtomicUsize,
    n: usize,
    hook: tokio::sync::Mutex<Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

#[async_trait]
impl LeaderLock for AfterCheck {
    async fn try_acquire(&self) -> PortResult<bool> {
        self.inner.try_acquire().await
    }

    async fn is_held(&self) -> PortResult<bool> {
        let held = self.inner.is_held().await?;
        if held
            && self.checks.fetch_add(1, Ordering::SeqCst) + 1 == self.n
            && let Some(hook) = self.hook.lock().await.take()
        {
            hook.await;
        }
        Ok(held)
    }

    async fn release(&self) -> PortResult<()> {
        self.inner.release().await
    }
}

#[derive(QueryableByName)]
struct Terminated {
    #[diesel(sql_type = Bool)]
    terminated: bool,
}

/// Replica A leads and its pass removes one game, then — between that group of writes and the
/// next — the server ends A's lock session (`pg_terminate_backend`, as an
/// `idle_session_timeout` or a failover would) and replica B takes the lock. A's next write (a
/// snapshot) is refused, not committed, and the pass reports leadership lost; B leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_whose_session_ended_cannot_write() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let world = World::new();
    let config = Config::default();
    let store = schema.store().await;

    // One game to remove (its container is gone), one to probe (a snapshot to publish).
    let gone = store
        .create_record(sample_record(GameId::new_random(), RuntimeStatus::Running))
        .await
        .expect("creating");
    let live_id = GameId::new_random();
    let container = MemoryDocker::new_container_id();
    let mut live = sample_record(live_id, RuntimeStatus::Running);
    live.current_container_id = container.clone();
    let live = store.create_record(live).await.expect("creating");
    world.docker.add(MemoryDocker::game_container(
        &config,
        live_id,
        &container,
        ContainerState::Running,
    ));
    world
        .engine
        .set_json(&live.engine_endpoint, json!({"turn": 7}));

    let lock_a = Arc::new(store.leader_lock());
    let replica_b = Arc::new(PgLeaderLock::new(&schema.config()));
    let key = PgLeaderLock::key(Some(&schema.name));
    let kill = {
        let mut raw = schema.raw().await;
        let replica_b = Arc::clone(&replica_b);
        Box::pin(async move {
            let ended: Terminated = diesel::sql_query(
                "SELECT bool_or(pg_terminate_backend(pid)) AS terminated FROM pg_catalog.pg_locks \
                 WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
                 AND classid::bigint * 4294967296 + objid::bigint = $1",
            )
            .bind::<BigInt, _>(key)
            .get_result(&mut raw)
            .await
            .expect("terminating the leader's session");
            assert!(ended.terminated, "the leader's session was found and ended");
            // The server releases the lock once the backend is gone; B takes it.
            let mut tries = 0;
            while !replica_b.try_acquire().await.expect("replica B asks") {
                tries += 1;
                assert!(tries < 100, "replica B never got the lock");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    };
    let leader = Arc::new(AfterCheck {
        inner: Arc::clone(&lock_a),
        checks: AtomicUsize::new(0),
        // The first check comes before the removals, the second before the snapshots.
        n: 2,
        hook: tokio::sync::Mutex::new(Some(kill)),
    });
    let fenced = store.fenced(&lock_a);
    let reconciler = world.reconciler(fenced, Some(leader));

    let err = reconciler
        .tick()
        .await
        .expect_err("leadership is lost mid-pass");
    assert!(
        matches!(err, PassError::LeadershipLost { .. }),
        "the pass says leadership was lost: {err:?}"
    );
    let report = err.report();
    assert_eq!(
        report.applied["set_status"], 1,
        "the removal before committed"
    );
    assert_eq!(report.applied["publish_snapshot"], 0, "{report:?}");
    assert_eq!(
        store
            .get_record(gone.game_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        RuntimeStatus::Removed
    );
    assert_eq!(
        store.get_snapshot(live_id).await.expect("read"),
        None,
        "the write in flight after the session ended did not commit"
    );
    assert!(replica_b.is_held().await.expect("ask"), "replica B leads");
    assert!(
        !lock_a.is_held().await.expect("ask"),
        "replica A knows it lost"
    );

    // Every later write of A is refused before it reaches the database.
    let refused = store
        .fenced(&lock_a)
        .transition_status(StatusChange {
            game_id: live_id,
            expected: Expected::of(&live),
            to: RuntimeStatus::Stopped,
            message: "late".to_owned(),
            at: now_micros(),
            event: None,
        })
        .await
        .expect_err("refused");
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(
        store.get_record(live_id).await.unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    replica_b.release().await.expect("release");
}

/// On SQLite the lock is a file lock of this process: a fenced handle writes only while it is
/// held, and a release waits for a write in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_fenced_store_writes_only_while_the_lock_is_held() {
    let db = SqliteFile::new();
    let store = db.store().await;
    let record = store
        .create_record(sample_record(GameId::new_random(), RuntimeStatus::Running))
        .await
        .expect("creating");
    let lock = store.leader_lock();
    let fenced = store.fenced(&lock);
    let change = |record: &RuntimeRecord, to| StatusChange {
        game_id: record.game_id,
        expected: Expected::of(record),
        to,
        message: "fenced".to_owned(),
        at: now_micros(),
        event: None,
    };

    let refused = fenced
        .transition_status(change(&record, RuntimeStatus::Stopped))
        .await
        .expect_err("not acquired yet");
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(
        store.get_record(record.game_id).await.unwrap().unwrap(),
        record
    );

    assert!(lock.try_acquire().await.expect("acquire"));
    let stopped = fenced
        .transition_status(change(&record, RuntimeStatus::Stopped))
        .await
        .expect("held: written");
    assert_eq!(stopped.status, RuntimeStatus::Stopped);

    // Another process's replica cannot take the lock meanwhile, and its fenced writes fail.
    let other = db.store().await;
    let other_lock = other.leader_lock();
    assert!(!other_lock.try_acquire().await.expect("ask"));
    let refused = other
        .fenced(&other_lock)
        .transition_status(change(&stopped, RuntimeStatus::Running))
        .await
        .expect_err("the other replica does not lead");
    assert!(refused.is_fenced(), "{refused}");

    lock.release().await.expect("release");
    let refused = fenced
        .transition_status(change(&stopped, RuntimeStatus::Running))
        .await
        .expect_err("released");
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(
        store
            .get_record(record.game_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        RuntimeStatus::Stopped
    );
}
