//! Step 1 of a pass (CONTRACT §3): read containers, records and projections, probe engines.
//! Reads only.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use galaxy_runtime_model::{Config, GameId, Observation, ProbeOutcome, duration};
use galaxy_runtime_ports::{EnginePort, LabelFilter, PortError};
use log::debug;
use tokio::time::Instant;

use crate::addressing::probe_endpoint;
use crate::context::Ports;
use crate::report::ObserveStep;
use crate::{ProbeTarget, observation_needs, telemetry};

/// What the observe step gathered.
pub(crate) struct Observed {
    /// The observation to plan on.
    pub observation: Observation,
    /// The unrecorded games whose projections could not be loaded, and why: the pass goes on
    /// without adopting them (as the seed goes on past a failed adoption).
    pub projections_failed: Option<(Vec<GameId>, PortError)>,
    /// Network probes made.
    pub probes_made: u64,
}

/// Lists containers, *then* records (so a record a start job wrote before creating its
/// container is always seen), loads the projections of unrecorded games in one call and probes
/// the engines R9 asks for.
///
/// Only the two listings end the pass: nothing has been decided yet, so nothing is written.
pub(crate) async fn observe(
    ports: &Ports,
    config: &Config,
) -> Result<Observed, (ObserveStep, PortError)> {
    let now = (ports.clock)();
    let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
    let containers = ports
        .docker
        .list_managed(&filter)
        .await
        .map_err(|e| (ObserveStep::ListContainers, e))?;
    let records = ports
        .store
        .list_records()
        .await
        .map_err(|e| (ObserveStep::ListRecords, e))?;

    let needs = observation_needs(&containers, &records, config);
    debug!(
        "observed {} managed containers and {} runtime records; {} unrecorded games, {} engines to probe",
        containers.len(),
        records.len(),
        needs.unrecorded_games.len(),
        needs.probes.len()
    );

    let (games, projections_failed) = if needs.unrecorded_games.is_empty() {
        (Vec::new(), None)
    } else {
        match ports
            .store
            .load_game_projections(&needs.unrecorded_games)
            .await
        {
            Ok(games) => (games, None),
            Err(e) => (Vec::new(), Some((needs.unrecorded_games.clone(), e))),
        }
    };

    let probes_made = needs.probes.len() as u64;
    let probes = probe_all(ports, config, &needs.probes).await;
    drop(needs);

    Ok(Observed {
        observation: Observation {
            now,
            containers,
            records,
            games,
            probes,
        },
        projections_failed,
        probes_made,
    })
}

/// Probes every target, at most `probe_concurrency` at once, each bounded by `probe_timeout`.
///
/// The probes run as futures of the pass's own task (no task is spawned), so a pass never
/// outlives its caller and a panicking engine port unwinds into the pass. A probe future is
/// made only when a slot is free, so memory stays bounded by the concurrency, not the fleet.
pub(crate) async fn probe_all(
    ports: &Ports,
    config: &Config,
    targets: &[ProbeTarget<'_>],
) -> BTreeMap<GameId, ProbeOutcome> {
    let limit = config.probe_concurrency.get();
    let engine = ports.engine.as_ref();
    let mut pending = targets.iter();
    let mut in_flight = FuturesUnordered::new();
    let mut outcomes = BTreeMap::new();
    loop {
        while in_flight.len() < limit {
            match pending.next() {
                Some(target) => in_flight.push(probe_one(engine, config, target)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some((game_id, outcome)) => {
                outcomes.insert(game_id, outcome);
            }
            None => return outcomes,
        }
    }
}

/// One probe, bounded by `probe_timeout`; every failure becomes the outcome's message.
async fn probe_one(
    engine: &dyn EnginePort,
    config: &Config,
    target: &ProbeTarget<'_>,
) -> (GameId, ProbeOutcome) {
    let outcome = match probe_endpoint(target, config) {
        Err(reason) => ProbeOutcome::Error(reason),
        Ok(endpoint) => {
            let timeout = config.probe_timeout;
            let started = Instant::now();
            let answer = tokio::time::timeout(timeout, engine.status(&endpoint)).await;
            telemetry::probe(started.elapsed().as_secs_f64());
            match answer {
                Ok(Ok(state)) => ProbeOutcome::Ok(state.into()),
                Ok(Err(error)) => ProbeOutcome::Error(error.to_string()),
                Err(_) => {
                    ProbeOutcome::Error(format!("timeout after {}", duration::format(timeout)))
                }
            }
        }
    };
    if let ProbeOutcome::Error(reason) = &outcome {
        debug!("probe of game {} failed: {reason:?}", target.game_id);
    }
    (target.game_id, outcome)
}
