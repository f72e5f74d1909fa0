//! Step 1 of a pass (CONTRACT §3): read containers, records and projections, probe engines.
//! Reads only.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::time::Duration;

use galaxy_runtime_model::{
    Config, ContainerSummary, EngineAddressing, GameId, GameProjection, HostObservation,
    Observation, PassKind, ProbeOutcome, duration,
};
use galaxy_runtime_ports::{EnginePort, LabelFilter, PortError, error_chain};
use log::{debug, warn};
use tokio::time::Instant;

use crate::addressing::probe_endpoint;
use crate::context::Ports;
use crate::planner::Planned;
use crate::report::ObserveStep;
use crate::{Planning, ProbeTarget, observation_needs, telemetry};

/// What the observe step gathered.
pub(crate) struct Observed {
    /// The observation to plan on. A failed projection load is part of it
    /// (`projections_error`): the planner decides what it means.
    pub observation: Observation,
    /// The error of a failed projection load, with its meaning and causes, for the pass's
    /// report (the observation holds its text).
    pub projections_failed: Option<PortError>,
    /// Network probes made.
    pub probes_made: u64,
    /// A quick pass's plan, made while it observed, and how long planning took: R1–R4 tell
    /// which projections to load, so the pass works them out once ([`Planning`]).
    pub planned: Option<(Planned, Duration)>,
}

/// How a pass observes: its kind, and over how long a full pass spreads its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observing {
    /// Full (probes) or quick (no probe at all).
    pub pass: PassKind,
    /// The probes start evenly over this long (zero: as fast as `probe_concurrency` allows).
    pub spread: Duration,
}

impl Observing {
    /// A pass that probes as fast as it may (a start-up pass, one asked for by a caller).
    pub(crate) const fn full() -> Self {
        Self {
            pass: PassKind::Full,
            spread: Duration::ZERO,
        }
    }

    /// A pass that probes nothing.
    pub(crate) const fn quick() -> Self {
        Self {
            pass: PassKind::Quick,
            spread: Duration::ZERO,
        }
    }
}

/// Lists containers, *then* records (so a record a start job wrote before creating its
/// container is always seen), loads the projections of unrecorded games in one call and, in a
/// full pass, probes the engines R9 asks for.
///
/// Only the two listings end the pass: nothing has been decided yet, so nothing is written.
pub(crate) async fn observe(
    ports: &Ports,
    config: &Config,
    how: Observing,
) -> Result<Observed, (ObserveStep, PortError)> {
    let now = (ports.clock)();
    let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
    let (hosts, containers) = list_hosts(ports, config, &filter)
        .await
        .map_err(|e| (ObserveStep::ListContainers, e))?;
    let records = ports
        .store
        .list_records()
        .await
        .map_err(|e| (ObserveStep::ListRecords, e))?;
    if !how.pass.is_full() {
        let observation = Observation {
            pass: how.pass,
            now,
            containers,
            records,
            games: Vec::new(),
            probes: BTreeMap::new(),
            projections_error: None,
            hosts,
        };
        return Ok(observe_and_plan_quick(ports, config, observation).await);
    }

    let needs = observation_needs(&hosts, &containers, &records, config, how.pass);
    debug!(
        "observed {} managed containers and {} runtime records; {} unrecorded games, {} engines to probe",
        containers.len(),
        records.len(),
        needs.unrecorded_games.len(),
        needs.probes.len()
    );

    let (games, projections_failed) = load_projections(ports, &needs.unrecorded_games).await;

    let probes_made = needs.probes.len() as u64;
    let probes = probe_all(ports, config, &needs.probes, how.spread).await;
    drop(needs);

    Ok(Observed {
        observation: Observation {
            pass: how.pass,
            now,
            containers,
            records,
            games,
            probes,
            projections_error: projections_failed.as_ref().map(|e| error_chain(e)),
            hosts,
        },
        projections_failed,
        probes_made,
        planned: None,
    })
}

/// The rest of a quick pass's observe step, and its plan: the projections of the unrecorded
/// games that the plan's R1–R4 find, then the plan's other rules with them.
async fn observe_and_plan_quick(
    ports: &Ports,
    config: &Config,
    mut observation: Observation,
) -> Observed {
    let started = Instant::now();
    let planning = Planning::new(&observation, config);
    let unrecorded = planning.unrecorded_games();
    let mut planned_in = started.elapsed();
    debug!(
        "observed {} managed containers and {} runtime records; {} unrecorded games, no engine \
         to probe in a quick pass",
        observation.containers.len(),
        observation.records.len(),
        unrecorded.len()
    );
    let (games, projections_failed) = load_projections(ports, &unrecorded).await;
    let projections_error = projections_failed.as_ref().map(|e| error_chain(e));
    let started = Instant::now();
    let planned = planning.finish_with_written(&games, projections_error.as_deref());
    planned_in += started.elapsed();
    observation.games = games;
    observation.projections_error = projections_error;
    Observed {
        observation,
        projections_failed,
        probes_made: 0,
        planned: Some((planned, planned_in)),
    }
}

/// The projections of `games` in one call (none for no game), or the error of that call.
async fn load_projections(
    ports: &Ports,
    games: &[GameId],
) -> (Vec<GameProjection>, Option<PortError>) {
    if games.is_empty() {
        return (Vec::new(), None);
    }
    match ports.store.load_game_projections(games).await {
        Ok(games) => (games, None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// Lists the managed containers of every Docker host at once, each under
/// `docker_list_timeout`, so that the pass waits for its slowest host at most that long, never
/// for the sum of the hosts.
///
/// With one port (the host `""`), its failure fails the pass, as before hosts existed. With
/// named hosts (CONTRACT §6) each container is stamped with its host's name, a host that fails
/// is reported in the observation's `hosts` with its error — its records are then unobserved,
/// not missing — and only every host failing fails the pass.
async fn list_hosts(
    ports: &Ports,
    config: &Config,
    filter: &LabelFilter,
) -> Result<(Vec<HostObservation>, Vec<Arc<ContainerSummary>>), PortError> {
    let timeout = config.docker_list_timeout;
    let listings = futures_util::future::join_all(ports.docker.iter().map(|host| async move {
        let listed = match tokio::time::timeout(timeout, host.port.list_managed(filter)).await {
            Ok(listed) => listed,
            Err(_) => Err(PortError::timeout(
                format!("listing the containers of Docker host {:?}", host.name),
                timeout,
            )),
        };
        (host, listed)
    }))
    .await;
    if !ports.has_named_hosts() {
        let mut containers = Vec::new();
        for (_, listed) in listings {
            containers.append(&mut listed?);
        }
        return Ok((Vec::new(), containers));
    }
    let mut hosts = Vec::with_capacity(listings.len());
    let mut containers = Vec::new();
    let mut last_error = None;
    for (host, listed) in listings {
        match listed {
            Ok(mut listed) => {
                for container in &mut listed {
                    // An adapter that already names its host is not copied.
                    if container.host != host.name {
                        Arc::make_mut(container).host.clone_from(&host.name);
                    }
                }
                containers.append(&mut listed);
                hosts.push(HostObservation::listed(&host.name));
            }
            Err(e) => {
                let error = error_chain(&e);
                warn!(
                    "Docker host {:?} failed to list its containers: {error}; its records are \
                     unobserved this pass",
                    host.name
                );
                hosts.push(HostObservation::failed(&host.name, error));
                last_error = Some((&host.name, e));
            }
        }
    }
    match last_error {
        // The pass's error names a host, as the warn lines above do: with one named host (a
        // TLS host refusing its certificates, say) it is the only line an operator may read.
        Some((name, e)) if hosts.iter().all(|h| h.error.is_some()) => Err(PortError::shared(
            &Arc::new(e),
            &format!("every Docker host failed to list; Docker host {name:?}"),
        )),
        _ => Ok((hosts, containers)),
    }
}

/// Probes every target, at most `probe_concurrency` at once, each bounded by `probe_timeout`,
/// the `i`th of `n` starting no earlier than `i / n` of `spread` after the first: the engines
/// see a steady rate rather than a burst of `probe_concurrency` every interval.
///
/// The probes run as futures of the pass's own task (no task is spawned), so a pass never
/// outlives its caller and a panicking engine port unwinds into the pass. A probe future is
/// made only when a slot is free, so memory stays bounded by the concurrency, not the fleet.
pub(crate) async fn probe_all(
    ports: &Ports,
    config: &Config,
    targets: &[ProbeTarget<'_>],
    spread: Duration,
) -> BTreeMap<GameId, ProbeOutcome> {
    let limit = config.probe_concurrency.get();
    let engine = ports.engine.as_ref();
    let started = Instant::now();
    let step = if targets.is_empty() {
        Duration::ZERO
    } else {
        spread / u32::try_from(targets.len()).unwrap_or(u32::MAX)
    };
    let progress = ports.progress.as_deref().filter(|_| !targets.is_empty());
    if let Some(progress) = progress {
        progress.started(targets.len());
    }
    let record = |outcomes: &mut BTreeMap<GameId, ProbeOutcome>,
                  (game_id, outcome): (GameId, ProbeOutcome)| {
        if let Some(progress) = progress {
            progress.probed(!outcome.is_ok());
        }
        outcomes.insert(game_id, outcome);
    };
    let mut pending = targets.iter().enumerate().peekable();
    let mut in_flight = FuturesUnordered::new();
    let mut outcomes = BTreeMap::new();
    loop {
        while in_flight.len() < limit {
            let Some((i, _)) = pending.peek() else {
                break;
            };
            let due = started + step * u32::try_from(*i).unwrap_or(u32::MAX);
            if due > Instant::now() {
                // Not yet this probe's time: wait for it, or for a probe in flight to end.
                if in_flight.is_empty() {
                    tokio::time::sleep_until(due).await;
                } else {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        done = in_flight.next() => {
                            if let Some(done) = done {
                                record(&mut outcomes, done);
                            }
                            continue;
                        }
                    }
                }
            }
            if let Some((_, target)) = pending.next() {
                in_flight.push(probe_one(
                    engine,
                    config,
                    target,
                    host_address(ports, config, target),
                ));
            }
        }
        match in_flight.next().await {
            Some(done) => record(&mut outcomes, done),
            None => {
                if let Some(progress) = progress {
                    progress.finished();
                }
                return outcomes;
            }
        }
    }
}

/// Where the Docker host of `target`'s container publishes ports, when engines are reached
/// through published ports (the host is asked only then).
fn host_address(ports: &Ports, config: &Config, target: &ProbeTarget<'_>) -> Option<String> {
    if config.engine_addressing != EngineAddressing::PublishedPort {
        return None;
    }
    ports
        .docker_of(&target.container.host)
        .and_then(|docker| docker.published_address())
}

/// One probe, bounded by `probe_timeout`; every failure becomes the outcome's message.
async fn probe_one(
    engine: &dyn EnginePort,
    config: &Config,
    target: &ProbeTarget<'_>,
    host_address: Option<String>,
) -> (GameId, ProbeOutcome) {
    let outcome = match probe_endpoint(target, host_address.as_deref(), config) {
        Err(reason) => ProbeOutcome::Error(reason),
        Ok(endpoint) => {
            let timeout = config.probe_timeout;
            let started = Instant::now();
            let answer = tokio::time::timeout(timeout, engine.status(&endpoint)).await;
            telemetry::probe(started.elapsed().as_secs_f64());
            match answer {
                Ok(Ok(state)) => ProbeOutcome::of_answer(state),
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
