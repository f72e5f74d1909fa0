//! Snapshots that cannot block others, on PostgreSQL (whose `jsonb` refuses a NUL character):
//! among 500 engines, one answering `{"s":"\u0000"}` is one failed probe and 499 snapshots are
//! published; and a batch the store refuses for one row is retried row by row, so that the row
//! fails alone.

mod common;

use std::sync::Arc;

use common::PgSchema;
use galaxy_runtime_memory::{
    EngineAnswer, MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby, MemoryScheduler,
};
use galaxy_runtime_model::{Config, ContainerState, GameId, ProbeOutcome, RuntimeStatus};
use galaxy_runtime_ports::StorePort;
use galaxy_runtime_reconciler::{Action, Reconciler};
use galaxy_runtime_store::Store;
use galaxy_runtime_testkit::store::sample_record;
use serde_json::json;

const GAMES: usize = 500;

/// `GAMES` running games on `store`, each with its running container and an engine answering
/// `{"turn": 1}`; the reconciler and the engine, and the games' ids.
async fn fleet(store: &Store) -> (Reconciler, Arc<MemoryEngine>, Vec<GameId>) {
    let config = Config::default();
    let docker = Arc::new(MemoryDocker::new());
    let engine = Arc::new(MemoryEngine::new());
    engine.set_default_answer(Some(EngineAnswer::Json(json!({"turn": 1}))));
    let mut games = Vec::new();
    for _ in 0..GAMES {
        let game_id = GameId::new_random();
        let record = store
            .create_record(sample_record(game_id, RuntimeStatus::Running))
            .await
            .expect("creating a record");
        docker.add(MemoryDocker::game_container(
            &config,
            game_id,
            &record.current_container_id,
            ContainerState::Running,
        ));
        games.push(game_id);
    }
    let reconciler = Reconciler::builder()
        .docker(docker)
        .store(Arc::new(store.clone()))
        .outbox(Arc::new(store.clone()))
        .engine(engine.clone())
        .lobby(Arc::new(MemoryLobby::new()))
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config)
        .build()
        .expect("every port given");
    (reconciler, engine, games)
}

async fn snapshots(store: &Store, games: &[GameId]) -> usize {
    let mut found = 0;
    for game in games {
        if store.get_snapshot(*game).await.expect("read").is_some() {
            found += 1;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_one_answer_among_500_is_one_failed_probe() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let (reconciler, engine, games) = fleet(&store).await;
    let bad = games[GAMES / 2];
    engine.set_json(
        &format!("http://galaxy-game-{bad}:8080"),
        json!({"s": "\u{0}"}),
    );

    let (scenario, _) = reconciler.tick_dry_run().await.expect("observe");
    match &scenario.probes[&bad] {
        ProbeOutcome::Error(reason) => {
            assert!(
                reason.contains("NUL character") && reason.contains("$.s"),
                "{reason}"
            )
        }
        other => panic!("the NUL answer is a failed probe, not {other:?}"),
    }

    let report = reconciler.tick().await.expect("the pass succeeds");
    assert_eq!(
        report.applied["publish_snapshot"],
        GAMES as u64 - 1,
        "{report:?}"
    );
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(snapshots(&store, &games).await, GAMES - 1);
    assert!(store.get_snapshot(bad).await.expect("read").is_none());
    let record = store.get_record(bad).await.expect("read").expect("kept");
    assert_eq!(record.probe_failures, 1, "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_for_one_row_fails_that_row_alone() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let (reconciler, _engine, games) = fleet(&store).await;

    // The plan of a healthy fleet, with one snapshot the store refuses: a NUL that did not come
    // through a probe (a host's own plan, an older planner).
    let (scenario, mut plan) = reconciler.tick_dry_run().await.expect("observe and plan");
    let mut bad = None;
    for action in &mut plan.actions {
        if let Action::PublishSnapshot { game_id, state } = action
            && bad.is_none()
        {
            *state = Arc::new(json!({"s": "\u{0}"}));
            bad = Some(*game_id);
        }
    }
    let bad = bad.expect("the plan publishes snapshots");

    let report = reconciler.apply(&scenario, &plan).await;
    let report = match report {
        Ok(report) => report,
        Err(e) => e.report().clone(),
    };
    assert_eq!(
        report.applied["publish_snapshot"],
        GAMES as u64 - 1,
        "{report:?}"
    );
    assert_eq!(report.failures, 1, "{report:?}");
    assert_eq!(snapshots(&store, &games).await, GAMES - 1);
    assert!(store.get_snapshot(bad).await.expect("read").is_none());
}
