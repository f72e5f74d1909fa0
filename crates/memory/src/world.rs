use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerState, GameId, GameProjection, RuntimeRecord, RuntimeStatus, Timestamp,
};

use crate::{
    AlwaysLeader, MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby, MemoryScheduler,
    MemoryStore,
};

/// One of each in-memory adapter, shared through `Arc`s: the whole world of a simulation.
///
/// Hand the fields to whatever takes ports (`Arc<MemoryStore>` coerces to
/// `Arc<dyn StorePort>`), and keep the bundle to change the world and look at it.
#[derive(Debug, Clone, Default)]
pub struct MemoryPorts {
    /// The containers.
    pub docker: Arc<MemoryDocker>,
    /// Records, game projections and snapshots.
    pub store: Arc<MemoryStore>,
    /// The engines.
    pub engine: Arc<MemoryEngine>,
    /// What the lobby is told.
    pub lobby: Arc<MemoryLobby>,
    /// The record cache.
    pub cache: Arc<MemoryCache>,
    /// The turn scheduler.
    pub scheduler: Arc<MemoryScheduler>,
    /// The leader lock.
    pub leader: Arc<AlwaysLeader>,
}

impl MemoryPorts {
    /// Fresh, empty adapters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a game that runs as it should under `config`: a running container made by
    /// [`MemoryDocker::game_container`] with a fresh id, a `running` record bound to it, the
    /// game's projection, and an engine at the record's endpoint answering `{"turn": 0}`.
    /// Returns the record.
    pub fn add_running_game(&self, config: &Config, game_id: GameId) -> RuntimeRecord {
        let container_id = MemoryDocker::new_container_id();
        let container =
            MemoryDocker::game_container(config, game_id, &container_id, ContainerState::Running);
        let turn_schedule = "0 */6 * * *".to_owned();
        let record = RuntimeRecord {
            game_id,
            status: RuntimeStatus::Running,
            current_container_id: container_id,
            current_image_ref: container.image_ref.clone(),
            current_engine_version: container
                .labels
                .get(&config.engine_version_label)
                .cloned()
                .unwrap_or_default(),
            engine_endpoint: format!(
                "http://{}{game_id}:{}",
                config.container_name_prefix, config.engine_port
            ),
            docker_network: config.docker_network.clone(),
            turn_schedule: turn_schedule.clone(),
            probe_failures: 0,
            status_changed_at: Timestamp::now(),
            docker_host: String::new(),
        };
        self.docker.add(container);
        self.store.insert_record(record.clone());
        self.store.insert_game(GameProjection {
            game_id,
            turn_schedule,
        });
        self.engine
            .set_json(&record.engine_endpoint, serde_json::json!({ "turn": 0 }));
        record
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_ports::{DockerPort, EnginePort, LabelFilter, StorePort};

    use super::*;

    #[tokio::test]
    async fn a_running_game_is_consistent_across_the_ports() {
        let config = Config::default();
        let world = MemoryPorts::new();
        let game_id = GameId::new_random();
        let record = world.add_running_game(&config, game_id);

        let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
        let listed = world.docker.list_managed(&filter).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, record.current_container_id);
        assert_eq!(listed[0].bare_name(), format!("galaxy-game-{game_id}"));
        assert_eq!(record.current_engine_version, "1.4.0");
        assert_eq!(
            record.engine_endpoint,
            format!("http://galaxy-game-{game_id}:8080")
        );
        assert_eq!(
            world.store.get_record(game_id).await.unwrap(),
            Some(record.clone())
        );
        assert_eq!(
            world
                .store
                .load_game_projections(&[game_id])
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(world.engine.status(&record.engine_endpoint).await.is_ok());

        let shared = world.clone();
        assert!(
            Arc::ptr_eq(&shared.store, &world.store),
            "clones share the adapters"
        );
    }
}
