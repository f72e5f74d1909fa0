//! A minimal host backend that embeds galaxy-runtime as a library.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  host backend (this example)
//!              ^
//!              +-- adapters: the in-memory ones here; Docker, HTTP and SQL ones in production
//! ```
//!
//! The host builds a [`Reconciler`] from the adapters it wants. Here every port but one is an
//! in-memory adapter of `galaxy-runtime-memory`, so the example needs no Docker and no
//! database; the lobby is the host's **own** [`LobbyPort`] implementation, which forwards job
//! results onto the host's event channel. Swapping adapters is a matter of handing other
//! `Arc<dyn Port>`s to the builder — in production:
//!
//! ```text
//! .docker(Arc::new(galaxy_runtime_docker::DockerAdapter::connect_from_env().await?))
//! .store(Arc::new(galaxy_runtime_store::Store::connect(&StoreConfig::from_env()?).await?))
//! .engine(Arc::new(galaxy_runtime_engine_http::HttpEngine::from_config(&config)))
//! ```
//!
//! It runs a dry run, one pass, then the loop woken by a trigger, checking at each step what
//! the reconciler did, and exits 0 when every check holds.
//!
//! Run it with `cargo run -p galaxy-runtime-example-embedded`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use async_trait::async_trait;
use galaxy_runtime_memory::{MemoryDocker, MemoryPorts};
use galaxy_runtime_model::{
    Config, ContainerState, EventId, GameId, GameProjection, JobResult, LobbyEvent, RuntimeStatus,
};
use galaxy_runtime_ports::{Cache, Component, LobbyPort, PortError, PortResult, StorePort};
use galaxy_runtime_reconciler::{Action, Reconciler};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the host's lobby puts on its event channel.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEvent {
    /// The event's id: the same on a redelivery, so the host can drop repeats.
    pub event_id: EventId,
    /// The game.
    pub game_id: GameId,
    /// What happened to its runtime.
    pub result: JobResult,
}

/// The host's own lobby: every job result becomes a [`RuntimeEvent`] on the host's channel,
/// where the rest of the backend (notifications, the game's page) picks it up.
///
/// This is all a [`LobbyPort`] needs: one method, safe to call again for the same event (the
/// relay delivers at least once; the event id tells a repeat).
#[derive(Debug, Clone)]
pub struct EventChannelLobby {
    events: mpsc::UnboundedSender<RuntimeEvent>,
}

impl EventChannelLobby {
    /// A lobby sending onto `events`.
    pub fn new(events: mpsc::UnboundedSender<RuntimeEvent>) -> Self {
        Self { events }
    }
}

#[async_trait]
impl LobbyPort for EventChannelLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        // A closed channel means the host is shutting down: say so with the port's error of
        // that meaning; the event stays in the outbox and is delivered later.
        self.events
            .send(RuntimeEvent {
                event_id: event.event_id,
                game_id: event.game_id,
                result: event.result.clone(),
            })
            .map_err(|e| {
                PortError::unavailable("the host's event channel is closed", e.to_string())
            })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // One failed probe is enough to call an engine unreachable here, so one pass shows it.
    let config = Config {
        failure_threshold: NonZeroU32::MIN,
        ..Config::default()
    };

    // The world, on the in-memory adapters: four games in four situations.
    let world = MemoryPorts::new();
    let healthy = world.add_running_game(&config, GameId::new_random());
    let vanished = world.add_running_game(&config, GameId::new_random());
    world.docker.remove(&vanished.current_container_id)?;
    let silent = world.add_running_game(&config, GameId::new_random());
    world
        .engine
        .set_error(&silent.engine_endpoint, "connection refused");
    let unrecorded = GameId::new_random();
    world.store.insert_game(GameProjection {
        game_id: unrecorded,
        turn_schedule: "0 12 * * *".to_owned(),
    });
    let unrecorded_container = MemoryDocker::new_container_id();
    world.docker.add(MemoryDocker::game_container(
        &config,
        unrecorded,
        &unrecorded_container,
        ContainerState::Running,
    ));
    println!("The world: 4 games");
    println!("  {}  healthy", healthy.game_id);
    println!("  {}  its container vanished", vanished.game_id);
    println!("  {}  its engine stopped answering", silent.game_id);
    println!("  {}  a container but no runtime record yet", unrecorded);

    // The reconciler, from the memory adapters and the host's own lobby.
    let (events, mut received) = mpsc::unbounded_channel();
    let reconciler = Reconciler::builder()
        .docker(world.docker.clone())
        .store(world.store.clone())
        .engine(world.engine.clone())
        .lobby(Arc::new(EventChannelLobby::new(events)))
        .outbox(world.store.clone())
        .cache(world.cache.clone())
        .scheduler(world.scheduler.clone())
        .config(config.clone())
        .build()
        .context("building the reconciler")?;

    // 1. A dry run: the plan is data, printable before anything changes.
    let (_scenario, plan) = reconciler.tick_dry_run().await?;
    println!("\n1. Dry run: the plan");
    for action in &plan.actions {
        println!("  {:<18} {}", action.kind(), action.game_id());
    }
    ensure!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Adopt(adoption) if adoption.game_id == unrecorded)),
        "the unrecorded game's container should be adopted"
    );
    ensure!(
        world.store.record(unrecorded).is_none(),
        "a dry run must write nothing"
    );

    // 2. One pass: observe, plan, apply.
    let report = reconciler.tick().await?;
    println!(
        "\n2. One pass applied {} changes ({} conflicts)",
        report.applied_total(),
        report.conflicts
    );
    let status = |game_id| world.store.record(game_id).map(|r| r.status);
    ensure!(status(healthy.game_id) == Some(RuntimeStatus::Running));
    ensure!(status(vanished.game_id) == Some(RuntimeStatus::Removed));
    ensure!(status(silent.game_id) == Some(RuntimeStatus::EngineUnreachable));
    ensure!(status(unrecorded) == Some(RuntimeStatus::Running));
    ensure!(
        world.scheduler.is_scheduled(unrecorded),
        "a game adopted as running is handed to the turn scheduler"
    );
    ensure!(
        world.store.snapshot(healthy.game_id).is_some(),
        "the healthy engine's status is published as a snapshot"
    );
    ensure!(
        world.cache.get_runtime(vanished.game_id).map(|r| r.status) == Some(RuntimeStatus::Removed),
        "the cache follows every store write"
    );
    // The removal's event was recorded with it; the relay delivers it (the loop runs it beside
    // the passes; a host driving passes itself asks for a round).
    let delivered = reconciler.deliver_events().await?;
    ensure!(
        delivered.delivered == 1,
        "one event delivered: {delivered:?}"
    );
    let event = received
        .try_recv()
        .context("the lobby heard of the removal")?;
    println!(
        "   lobby event: game {} {} ({})",
        event.game_id, event.result.status, event.result.message
    );
    ensure!(
        event.game_id == vanished.game_id && event.result == JobResult::container_disappeared()
    );

    // 3. The loop as a component of the host, woken early by a trigger (as the Docker event
    //    watcher does in production).
    let cancel = CancellationToken::new();
    let looping = tokio::spawn({
        let reconciler = reconciler.clone();
        let cancel = cancel.clone();
        async move { reconciler.run(cancel).await }
    });
    world.docker.remove(&healthy.current_container_id)?;
    reconciler.trigger();
    let event = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .context("the triggered pass should tell the lobby within 5s")?
        .context("the lobby channel closed")?;
    println!(
        "\n3. The loop, triggered: game {} {} ({})",
        event.game_id, event.result.status, event.result.message
    );
    ensure!(event.game_id == healthy.game_id);
    cancel.cancel();
    looping.await??;
    ensure!(
        !reconciler.is_running(),
        "the loop stopped after its pass in flight"
    );
    ensure!(
        world
            .store
            .get_record(healthy.game_id)
            .await?
            .map(|r| r.status)
            == Some(RuntimeStatus::Removed)
    );

    println!("\nEvery check passed.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's lobby keeps the contract of every lobby: the conformance suite of
    /// `galaxy-runtime-testkit`, the same one the project's own adapters run.
    #[tokio::test]
    async fn the_hosts_lobby_keeps_the_lobby_contract() {
        let (events, received) = mpsc::unbounded_channel();
        let lobby = EventChannelLobby::new(events);
        galaxy_runtime_testkit::lobby::run_all(&lobby).await;

        let received = std::sync::Mutex::new((received, Vec::new()));
        galaxy_runtime_testkit::lobby::delivers_in_order(&lobby, &|game_id| {
            let mut guard = received.lock().expect("not poisoned");
            let (channel, log) = &mut *guard;
            while let Ok(event) = channel.try_recv() {
                log.push(event);
            }
            log.iter()
                .filter(|e| e.game_id == game_id)
                .map(|e| e.result.clone())
                .collect()
        })
        .await;
    }

    #[tokio::test]
    async fn a_closed_channel_is_unavailable() {
        let (events, received) = mpsc::unbounded_channel();
        drop(received);
        let lobby = EventChannelLobby::new(events);
        let event = galaxy_runtime_testkit::lobby::event(
            GameId::new_random(),
            JobResult::container_disappeared(),
        );
        let error = lobby
            .on_runtime_job_result(&event)
            .await
            .expect_err("nobody listens");
        assert!(error.is_retryable(), "{error}");
    }

    #[test]
    fn the_example_runs_to_completion() {
        main().expect("every check of the example holds");
    }
}
