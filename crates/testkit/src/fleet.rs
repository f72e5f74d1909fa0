//! Generated fleets, for benchmarks, simulations and demos of the planner at scale (test data,
//! not part of any production API).
//!
//! The mix is what a large fleet looks like on a bad day: most games healthy, some containers
//! vanished, some unrecorded (adoptable or orphaned), some engines failing, a few duplicates,
//! starting games and terminal records. The generator is deterministic for a given size.

use std::collections::BTreeMap;

use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, Observation, ProbeOutcome,
    RuntimeRecord, RuntimeStatus, Scenario, Timestamp,
};
use serde_json::json;

/// A fleet of `games` games: as many records as containers, give or take the ones that are
/// missing, unrecorded or duplicated. Per 100 games: 80 healthy, 4 missing containers,
/// 4 unrecorded with a projection, 1 orphan, 6 failing engines, 2 starting, 2 duplicated, 1
/// terminal with a stale container.
pub fn fleet(games: usize) -> Scenario {
    let now: Timestamp = "2026-11-27T12:00:00Z".parse().expect("valid timestamp");
    let an_hour_ago: Timestamp = "2026-11-27T11:00:00Z".parse().expect("valid timestamp");
    let config = Config::default();
    let mut observation = Observation::empty(now);
    for i in 0..games {
        let game_id = GameId::from_uuid(uuid::Uuid::from_u128(
            0x6f1c_0000_0000_4000_8000_0000_0000_0000 | i as u128,
        ));
        let container_id = format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1);
        let container = ContainerSummary {
            id: container_id.clone(),
            name: format!("/{}{}", config.container_name_prefix, game_id),
            image_ref: "galaxy/engine:1.4".to_owned(),
            labels: BTreeMap::from([
                (
                    config.managed_label.clone(),
                    config.managed_label_value.clone(),
                ),
                (config.engine_version_label.clone(), "1.4.0".to_owned()),
            ]),
            state: ContainerState::Running,
            created: an_hour_ago,
            addresses: BTreeMap::new(),
            host: String::new(),
            published_ports: BTreeMap::new(),
        };
        let record = RuntimeRecord {
            current_container_id: container_id,
            current_image_ref: "galaxy/engine:1.4".to_owned(),
            current_engine_version: "1.4.0".to_owned(),
            engine_endpoint: format!("http://{}{}:8080", config.container_name_prefix, game_id),
            docker_network: config.docker_network.clone(),
            turn_schedule: "0 */6 * * *".to_owned(),
            ..RuntimeRecord::new(game_id, RuntimeStatus::Running, an_hour_ago)
        };
        let healthy =
            ProbeOutcome::Ok(json!({"turn": i % 500, "players": 8, "phase": "orders"}).into());
        match i % 100 {
            0..=3 => observation.records.push(record.into()),
            4..=7 => {
                observation.containers.push(container.into());
                observation.games.push(GameProjection {
                    game_id,
                    turn_schedule: "0 0 * * *".to_owned(),
                });
            }
            8 => observation.containers.push(container.into()),
            9..=14 => {
                observation
                    .probes
                    .insert(game_id, ProbeOutcome::Error("timeout after 2s".to_owned()));
                observation.containers.push(container.into());
                observation.records.push(
                    RuntimeRecord {
                        probe_failures: (i % 4) as u32,
                        ..record
                    }
                    .into(),
                );
            }
            15..=16 => {
                observation.probes.insert(game_id, healthy);
                observation.containers.push(container.into());
                observation.records.push(
                    RuntimeRecord {
                        status: RuntimeStatus::Starting,
                        status_changed_at: now,
                        ..record
                    }
                    .into(),
                );
            }
            17..=18 => {
                let mut twin = container.clone();
                twin.id = format!("{}-twin", container.id);
                twin.state = ContainerState::Exited;
                observation.probes.insert(game_id, healthy);
                observation.containers.push(container.into());
                observation.containers.push(twin.into());
                observation.records.push(record.into());
            }
            19 => {
                observation.containers.push(container.into());
                observation.records.push(
                    RuntimeRecord {
                        status: RuntimeStatus::Removed,
                        ..record
                    }
                    .into(),
                );
            }
            _ => {
                observation.probes.insert(game_id, healthy);
                observation.containers.push(container.into());
                observation.records.push(record.into());
            }
        }
    }
    Scenario::new(observation, config)
}
