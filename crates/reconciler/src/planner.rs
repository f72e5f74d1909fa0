//! The planning rules R1–R13 of the contract: a pure function from an observation to a plan.
//!
//! Nothing here reads a clock, does I/O or draws a random number; `now` is part of the
//! observation. The work is linear in the fleet (hash maps, one pass over containers, one over
//! records) apart from the final sort of the plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, HostObservation, Observation,
    PassKind, ProbeOutcome, RuntimeRecord, RuntimeStatus,
};

use crate::plan::{Action, Adoption, Finding, Plan, Rebinding};

/// The message of a `set_status … to: removed` (R6) and of the lobby's job result.
pub const CONTAINER_DISAPPEARED: &str = "container disappeared";
/// The message of a `set_status … to: running` after a successful probe (R9).
pub const ENGINE_REACHABLE: &str = "engine reachable";
/// The failure of a running matched container without a probe outcome (R9, §5).
pub const NO_PROBE_RESULT: &str = "no probe result";
/// The error of `host_unavailable` for a host that records name but the observation lacks (§6).
pub const HOST_NOT_CONFIGURED: &str = "not configured";

/// An engine the pass must probe (R9): the matched record and container, borrowed from what
/// the observe step listed (a large fleet is not copied to be probed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeTarget<'a> {
    /// The game.
    pub game_id: GameId,
    /// Its record (for the endpoint and the network the container was started on).
    pub record: &'a RuntimeRecord,
    /// The matched container (for its addresses, when engines are addressed by container IP).
    pub container: &'a ContainerSummary,
}

/// What the observe step must load after listing containers and records: the projections of
/// unrecorded games (R10) and the engines to probe (R9). Decided by the same rules as the plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationNeeds<'a> {
    /// Game ids that have a kept container but no record at all, sorted.
    pub unrecorded_games: Vec<GameId>,
    /// Engines to probe, sorted by game id.
    pub probes: Vec<ProbeTarget<'a>>,
}

/// Decides, from the hosts, containers and records alone, which projections to load and which
/// engines to probe (none in a quick pass, which does not apply R9).
pub fn observation_needs<'a>(
    hosts: &'a [HostObservation],
    containers: &'a [Arc<ContainerSummary>],
    records: &'a [Arc<RuntimeRecord>],
    config: &Config,
    pass: PassKind,
) -> ObservationNeeds<'a> {
    if !pass.is_full() {
        // Nothing to probe: the unrecorded games alone, without matching a record to anything.
        return ObservationNeeds {
            unrecorded_games: unrecorded_games(containers, records, config),
            probes: Vec::new(),
        };
    }
    // No outcome yet: these are the needs of the observation that will hold them.
    static NO_PROBES: BTreeMap<GameId, ProbeOutcome> = BTreeMap::new();
    let (fleet, matched) = Fleet::new(Hosts::new(hosts), containers, records, &NO_PROBES, config);
    let mut probes: Vec<ProbeTarget> = records
        .iter()
        .zip(matched)
        .filter(|(r, _)| needs_probe(r.status))
        .filter_map(|(record, matched)| {
            let container = matched.container?;
            container.is_running().then_some(ProbeTarget {
                game_id: record.game_id,
                record,
                container,
            })
        })
        .collect();
    probes.sort_by_key(|p| p.game_id);
    ObservationNeeds {
        unrecorded_games: fleet.unrecorded_games(),
        probes,
    }
}

/// The games of the managed, recognised containers (R1, R2) that have no record at all, sorted:
/// the games R10 asks projections for. The keys of [`Fleet::kept`] without a record, found
/// without R3 or matching, which only a full pass needs.
fn unrecorded_games(
    containers: &[Arc<ContainerSummary>],
    records: &[Arc<RuntimeRecord>],
    config: &Config,
) -> Vec<GameId> {
    let mut recorded: IdSet<GameId> = IdSet::default();
    recorded.reserve(records.len());
    recorded.extend(records.iter().map(|r| r.game_id));
    let mut games: Vec<GameId> = containers
        .iter()
        .filter(|c| our_labels(c, config).0 == Some(config.managed_label_value.as_str()))
        .filter_map(|c| game_id_of(c.bare_name(), &config.container_name_prefix))
        .filter(|game_id| !recorded.contains(game_id))
        .collect();
    games.sort_unstable();
    games.dedup();
    games
}

/// Turns an observation into a plan by the rules R1–R13 of the contract.
///
/// The same observation and configuration always give the same plan, whatever the order of
/// the containers, records and games in the observation (container ids are unique, as Docker
/// guarantees).
pub fn plan(observation: &Observation, config: &Config) -> Plan {
    plan_with_written(observation, config).plan
}

/// [`plan`], with the records the plan writes.
pub(crate) fn plan_with_written(observation: &Observation, config: &Config) -> Planned {
    Planning::new(observation, config)
        .finish_with_written(&observation.games, observation.projections_error.as_deref())
}

/// A plan, and the records of the games whose record it writes, as the planner met them.
#[derive(Debug)]
pub(crate) struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The records of the games with a record write (rebind, status change, counter; see
    /// [`Action::writes_record`]), in the observation's order; possibly a few more, of games
    /// whose removal R12's guard withheld. Each write is compare-and-set on what the plan saw
    /// of its record, and the planner hands these over so that applying a plan of a few writes
    /// does not look through every record again: reaching each of 100 000 records was
    /// 11–15 ms of a quick pass that removed one game.
    pub written: Vec<Arc<RuntimeRecord>>,
}

/// A plan made in two steps, for a pass that loads projections after it lists: R1–R4 (the
/// fleet, and each record's match) from the containers and records, which also tell which
/// games R10 needs projections of; then the rest of the rules once they are loaded.
///
/// A quick pass plans so, and so works the fleet out once: finding the unrecorded games apart
/// from the plan read every container a second time, which was a third of a quick pass at 100k
/// games. `Planning::new(o, c).finish(&o.games, o.projections_error.as_deref())` is exactly
/// [`plan`]`(o, c)`; the observation's own `games` and `projections_error` are not read by
/// [`Planning::new`], so it may be made before they are known.
pub struct Planning<'a> {
    observation: &'a Observation,
    config: &'a Config,
    fleet: Fleet<'a, 'a>,
    /// What planning each record (in the observation's order) starts from.
    matched: Vec<Matched<'a>>,
}

impl<'a> Planning<'a> {
    /// R1–R4 for the observation's hosts, containers, records and probe outcomes.
    pub fn new(observation: &'a Observation, config: &'a Config) -> Self {
        let (fleet, matched) = Fleet::new(
            Hosts::new(&observation.hosts),
            &observation.containers,
            &observation.records,
            &observation.probes,
            config,
        );
        Self {
            observation,
            config,
            fleet,
            matched,
        }
    }

    /// The games that have a kept container but no record at all, sorted: the games whose
    /// projections R10 needs (those of [`observation_needs`]).
    pub fn unrecorded_games(&self) -> Vec<GameId> {
        self.fleet.unrecorded_games()
    }

    /// The plan, with the projections of the unrecorded games, or the error that their load
    /// failed with (then nothing is decided about those games: R10).
    pub fn finish(self, games: &[GameProjection], projections_error: Option<&str>) -> Plan {
        self.finish_with_written(games, projections_error).plan
    }

    /// [`Planning::finish`], with the records the plan writes.
    pub(crate) fn finish_with_written(
        self,
        games: &[GameProjection],
        projections_error: Option<&str>,
    ) -> Planned {
        let Self {
            observation,
            config,
            fleet,
            matched,
        } = self;
        let mut actions = Vec::new();
        let mut findings = fleet.findings.clone();
        let mut tally = HostTally::default();
        let mut written = Vec::new();

        for (record, matched) in observation.records.iter().zip(matched) {
            let before = actions.len();
            plan_record(
                record,
                matched,
                &fleet,
                observation,
                config,
                &mut tally,
                &mut actions,
                &mut findings,
            );
            if actions[before..].iter().any(Action::writes_record) {
                written.push(Arc::clone(record));
            }
        }
        tally.close_run();
        tally.unavailable_hosts(&observation.hosts, &mut findings);

        // R10: kept containers of games without any record. Without the projections (their
        // load failed) nothing is known about those games: neither adopted nor orphans.
        let mut projections: IdMap<GameId, &GameProjection> = id_map(games.len());
        projections.extend(games.iter().map(|g| (g.game_id, g)));
        for (&game_id, kept) in &fleet.kept {
            if kept.recorded {
                continue;
            }
            let container = kept.container;
            if let Some(error) = projections_error {
                findings.push(Finding::AdoptionUndecided {
                    game_id,
                    container_id: container.id.clone(),
                    error: error.to_owned(),
                });
                continue;
            }
            match projections.get(&game_id) {
                Some(game) => actions.push(Action::Adopt(Box::new(Adoption {
                    game_id,
                    container_id: container.id.clone(),
                    image_ref: container.image_ref.clone(),
                    engine_version: kept.engine_version.to_owned(),
                    endpoint: format!(
                        "http://{}{}:{}",
                        config.container_name_prefix, game_id, config.engine_port
                    ),
                    docker_network: config.docker_network.clone(),
                    turn_schedule: game.turn_schedule.clone(),
                    status: if container.is_running() {
                        RuntimeStatus::Running
                    } else {
                        RuntimeStatus::Stopped
                    },
                    docker_host: container.host.clone(),
                }))),
                None => findings.push(Finding::OrphanContainer {
                    game_id,
                    container_id: container.id.clone(),
                }),
            }
        }

        tally.apply_removal_guard(config, &mut actions, &mut findings);
        Planned {
            plan: Plan::new(actions, findings),
            written,
        }
    }
}

/// R5–R9 (and R6′) for one record, with its game's kept container (R3) and its own (R4).
#[allow(clippy::too_many_arguments)] // the record, what it is planned from, what it adds to
fn plan_record<'a>(
    record: &'a RuntimeRecord,
    matched: Matched<'a>,
    fleet: &Fleet<'a, '_>,
    observation: &Observation,
    config: &Config,
    tally: &mut HostTally<'a>,
    actions: &mut Vec<Action>,
    findings: &mut Vec<Finding>,
) {
    let game_id = record.game_id;
    let kept = matched.kept;
    if record.is_terminal() {
        // R5: never acted on; a container still around is worth a look.
        if let Some(kept) = kept {
            findings.push(Finding::StaleContainer {
                game_id,
                container_id: kept.container.id.clone(),
                status: record.status,
            });
        }
        return;
    }
    let in_start_grace = record.status == RuntimeStatus::Starting
        && observation.now.saturating_since(record.status_changed_at) < config.start_grace;
    let host = fleet.hosts.of(record);
    tally.live(host);

    // R4 / R6′ / R6
    let Some(container) = matched.container else {
        if !fleet.hosts.observed(host) {
            tally.unobserved(host);
        } else if in_start_grace {
            findings.push(Finding::AwaitingContainer { game_id });
        } else {
            tally.removal(game_id, host);
            actions.push(Action::SetStatus {
                game_id,
                from: record.status,
                to: RuntimeStatus::Removed,
                message: CONTAINER_DISAPPEARED.to_owned(),
            });
        }
        return;
    };

    // R7: across hosts too.
    if !matched.own {
        actions.push(Action::Rebind(Box::new(Rebinding {
            game_id,
            container_id: container.id.clone(),
            image_ref: container.image_ref.clone(),
            engine_version: fleet.engine_version(container).to_owned(),
            docker_host: container.host.clone(),
        })));
    }

    // R8; and a quick pass does not apply R9 at all.
    if !needs_probe(record.status) || !observation.pass.is_full() {
        return;
    }

    // R9
    let failure = if container.state != ContainerState::Running {
        Err(format!("container {}", container.state))
    } else {
        // The game's outcome, found with its kept container; looked up only for a record
        // whose game has none (its record names another game's container).
        let probe = match kept {
            Some(kept) => kept.probe,
            None => observation.probes.get(&game_id),
        };
        match probe {
            Some(ProbeOutcome::Ok(state)) => Ok(state),
            Some(ProbeOutcome::Error(message)) => Err(message.clone()),
            None => Err(NO_PROBE_RESULT.to_owned()),
        }
    };
    match failure {
        Ok(state) => {
            if record.status != RuntimeStatus::Running {
                actions.push(Action::SetStatus {
                    game_id,
                    from: record.status,
                    to: RuntimeStatus::Running,
                    message: ENGINE_REACHABLE.to_owned(),
                });
            }
            if record.probe_failures > 0 {
                actions.push(Action::SetProbeFailures {
                    game_id,
                    failures: 0,
                });
            }
            actions.push(Action::PublishSnapshot {
                game_id,
                state: state.clone(),
            });
        }
        Err(_) if in_start_grace => {} // the engine is still booting
        Err(message) => {
            let failures = record.probe_failures.saturating_add(1);
            // Pushed in the plan's order (a status change before a counter), so that the
            // actions of records listed by game id form one run for the plan's sort.
            if failures >= config.failure_threshold.get()
                && record.status != RuntimeStatus::EngineUnreachable
            {
                actions.push(Action::SetStatus {
                    game_id,
                    from: record.status,
                    to: RuntimeStatus::EngineUnreachable,
                    message,
                });
            }
            actions.push(Action::SetProbeFailures { game_id, failures });
        }
    }
}

/// R8/R9: which statuses have their engine probed.
fn needs_probe(status: RuntimeStatus) -> bool {
    matches!(
        status,
        RuntimeStatus::Starting | RuntimeStatus::Running | RuntimeStatus::EngineUnreachable
    )
}

/// The hosts of an observation (§6): which is first, which listed and which failed.
struct Hosts<'a> {
    /// The host a record's `docker_host` of `""` stands for.
    first: &'a str,
    /// Every host of the observation, with its error if it failed to list; empty for the one
    /// host `""` that listed fine.
    all: IdMap<&'a str, Option<&'a str>>,
}

impl<'a> Hosts<'a> {
    fn new(hosts: &'a [HostObservation]) -> Self {
        let mut all = id_map(hosts.len());
        all.extend(hosts.iter().map(|h| (h.name.as_str(), h.error.as_deref())));
        Self {
            first: hosts.first().map_or("", |h| h.name.as_str()),
            all,
        }
    }

    /// A record's effective host: its `docker_host`, or the first host for `""`.
    fn of<'r>(&self, record: &'r RuntimeRecord) -> &'r str
    where
        'a: 'r,
    {
        if record.docker_host.is_empty() {
            self.first
        } else {
            &record.docker_host
        }
    }

    /// Whether the host is among the hosts and listed fine.
    fn observed(&self, host: &str) -> bool {
        if self.all.is_empty() {
            host.is_empty()
        } else {
            matches!(self.all.get(host), Some(None))
        }
    }
}

/// What R6′ and R12 count per host while the records are planned.
#[derive(Default)]
struct HostTally<'a> {
    /// Non-terminal records by host.
    live: IdMap<&'a str, u64>,
    /// The host last counted as live and its count not yet added to `live`: records come
    /// mostly grouped by host (all on `""` without several hosts), so counting them needs no
    /// hashing but at a change of host.
    run: Option<(&'a str, u64)>,
    /// Unobserved records by host.
    unobserved: IdMap<&'a str, u64>,
    /// The host of each game the plan removes.
    removals: IdMap<GameId, &'a str>,
}

impl<'a> HostTally<'a> {
    fn live(&mut self, host: &'a str) {
        match &mut self.run {
            Some((current, count)) if same_str(current, host) => *count += 1,
            run => {
                if let Some((current, count)) = run.replace((host, 1)) {
                    *self.live.entry(current).or_default() += count;
                }
            }
        }
    }

    /// Adds the last run of live records to their host's count.
    fn close_run(&mut self) {
        if let Some((host, count)) = self.run.take() {
            *self.live.entry(host).or_default() += count;
        }
    }

    fn unobserved(&mut self, host: &'a str) {
        *self.unobserved.entry(host).or_default() += 1;
    }

    fn removal(&mut self, game_id: GameId, host: &'a str) {
        self.removals.insert(game_id, host);
    }

    /// R6′: one `host_unavailable` per host that failed to list, and per host that records
    /// name but the observation does not have.
    fn unavailable_hosts(&self, hosts: &[HostObservation], findings: &mut Vec<Finding>) {
        let count = |host: &str| self.unobserved.get(host).copied().unwrap_or(0);
        for host in hosts {
            if let Some(error) = &host.error {
                findings.push(Finding::HostUnavailable {
                    host: host.name.clone(),
                    error: error.clone(),
                    records: count(&host.name),
                });
            }
        }
        let known = |name: &str| {
            if hosts.is_empty() {
                name.is_empty()
            } else {
                hosts.iter().any(|h| h.name == name)
            }
        };
        for (&host, &records) in &self.unobserved {
            if !known(host) {
                findings.push(Finding::HostUnavailable {
                    host: host.to_owned(),
                    error: HOST_NOT_CONFIGURED.to_owned(),
                    records,
                });
            }
        }
    }

    /// R12, per host: a host whose pass would remove too much of its fleet loses its removals.
    fn apply_removal_guard(
        &self,
        config: &Config,
        actions: &mut Vec<Action>,
        findings: &mut Vec<Finding>,
    ) {
        let mut would_remove: IdMap<&str, u64> = id_map(self.live.len());
        for host in self.removals.values() {
            *would_remove.entry(host).or_default() += 1;
        }
        let tripped: Vec<&str> = would_remove
            .iter()
            .filter(|&(host, &k)| {
                let live = self.live.get(host).copied().unwrap_or(0);
                k > u64::from(config.removal_guard_min)
                    && k as f64 > config.removal_guard_fraction * live as f64
            })
            .map(|(host, _)| *host)
            .collect();
        if tripped.is_empty() {
            return;
        }
        actions.retain(|a| {
            !(a.is_removal()
                && self
                    .removals
                    .get(&a.game_id())
                    .is_some_and(|host| tripped.contains(host)))
        });
        for host in tripped {
            findings.push(Finding::RemovalGuardTripped {
                host: host.to_owned(),
                would_remove: would_remove[host],
                live: self.live.get(host).copied().unwrap_or(0),
            });
        }
    }
}

/// The hasher of the planner's maps: a multiply and shift per 8 bytes, then a full avalanche.
///
/// The keys are Docker's container ids and game ids read from container names. Only someone
/// who can create containers on the Docker host can choose them, and that already means full
/// control of the host, so the flooding resistance of the standard hasher buys nothing here,
/// while hashing every 64-character container id with it was a tenth of planning a large fleet.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        // Multiplication carries upwards only; folding the high half back down after each word
        // lets every input bit reach the low bits that pick a bucket.
        let h = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    fn finish(&self) -> u64 {
        // The finaliser of MurmurHash3.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

fn id_map<K, V>(capacity: usize) -> IdMap<K, V> {
    IdMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// The kept container of a game (R3) with its accepted engine version (R11).
#[derive(Clone, Copy)]
struct Kept<'a> {
    container: &'a ContainerSummary,
    engine_version: &'a str,
    /// Whether the game has a record, terminal ones included (R5, R10).
    recorded: bool,
    /// The game's probe outcome, if any: found here while the game's entry is at hand, so that
    /// planning a record needs no lookup in the outcomes' tree.
    probe: Option<&'a ProbeOutcome>,
}

/// What planning a record starts from: its game's kept container (R3) and its own (R4).
#[derive(Clone, Copy)]
struct Matched<'a> {
    /// The game's kept container, if the game has a recognised one.
    kept: Option<Kept<'a>>,
    /// R4, for a non-terminal record: the container with its container id on its (effective)
    /// host, else its game's kept one on any host.
    container: Option<&'a ContainerSummary>,
    /// Whether `container` is the record's own: its container id on its host (no R7).
    own: bool,
}

/// Where a record's R4 match stands once its game's kept container is final.
#[derive(Clone, Copy)]
enum Pending<'a> {
    /// Decided.
    Matched(Matched<'a>),
    /// The kept container (if any) is not the record's own: look its own up by id.
    ById(Option<Kept<'a>>),
}

/// R1–R4: the managed containers, indexed, with the findings they give.
struct Fleet<'a, 'c> {
    config: &'c Config,
    /// The hosts of the observation.
    hosts: Hosts<'a>,
    /// Every managed container (R1), in the observation's order.
    managed: Vec<&'a ContainerSummary>,
    /// The duplicates (R3), by host and id: they take no part in matching (R4).
    losers: IdSet<(&'a str, &'a str)>,
    /// The kept container of each recognised game id.
    kept: IdMap<GameId, Kept<'a>>,
    /// R2, R3 and R11 findings.
    findings: Vec<Finding>,
}

impl<'a, 'c> Fleet<'a, 'c> {
    /// The fleet, and for each record (in order) what planning it starts from.
    ///
    /// A record is usually matched to its game's kept container (same id, same host): then no
    /// id lookup is needed. The few that are not are looked up together, in one scan of the
    /// containers, rather than by an index of every container by id (hashing every
    /// 64-character id was a fifth of planning 100k games with a few vanished containers).
    fn new(
        hosts: Hosts<'a>,
        containers: &'a [Arc<ContainerSummary>],
        records: &'a [Arc<RuntimeRecord>],
        probes: &'a BTreeMap<GameId, ProbeOutcome>,
        config: &'c Config,
    ) -> (Self, Vec<Matched<'a>>) {
        let mut fleet = Self {
            config,
            hosts,
            managed: Vec::with_capacity(containers.len()),
            losers: IdSet::default(),
            kept: id_map(containers.len()),
            findings: Vec::new(),
        };
        // R3: the other recognised containers of games that have more than one. The record's
        // own container wins over all of them, but the records are read after the containers,
        // so the containers are first ranked without it.
        let mut contenders: IdMap<GameId, Vec<Kept<'a>>> = id_map(0);

        for container in containers {
            let (managed, version_label) = our_labels(container, config);
            // R1
            if managed != Some(config.managed_label_value.as_str()) {
                continue;
            }
            // R11
            let engine_version = version_label
                .filter(|v| is_acceptable_version(v))
                .unwrap_or("");
            if engine_version.is_empty() && version_label.is_some() {
                fleet.findings.push(Finding::InvalidLabel {
                    container_id: container.id.clone(),
                    label: config.engine_version_label.clone(),
                });
            }
            fleet.managed.push(container);
            // R2
            let Some(game_id) = game_id_of(container.bare_name(), &config.container_name_prefix)
            else {
                fleet.findings.push(Finding::UnrecognizedContainer {
                    container_id: container.id.clone(),
                    name: container.bare_name().to_owned(),
                });
                continue;
            };
            // R3
            let candidate = Kept {
                container,
                engine_version,
                recorded: false,
                probe: None,
            };
            match fleet.kept.get_mut(&game_id) {
                None => {
                    fleet.kept.insert(game_id, candidate);
                }
                Some(current) => {
                    let loser = if outranks(candidate.container, current.container) {
                        std::mem::replace(current, candidate)
                    } else {
                        candidate
                    };
                    contenders.entry(game_id).or_default().push(loser);
                }
            }
        }

        for (game_id, outcome) in probes {
            if let Some(kept) = fleet.kept.get_mut(game_id) {
                kept.probe = Some(outcome);
            }
        }

        // One pass over the records: mark the games that have one, and let a record's own
        // container be kept when it is among its game's contenders (R3, first criterion).
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let kept = fleet.kept.get_mut(&record.game_id);
            let Some(list) = contenders.get_mut(&record.game_id) else {
                let kept = kept.map(|kept| {
                    kept.recorded = true;
                    *kept
                });
                // The game has a single candidate container, so R3 has nothing to decide and
                // no other record can change its kept container.
                pending.push(Some(fleet.match_kept(record, kept)));
                continue;
            };
            // The game has several candidates, and a record's own container wins among them
            // (R3): it is matched once every record has had its say.
            pending.push(None);
            // A game with contenders has a kept container.
            let Some(kept) = kept else { continue };
            kept.recorded = true;
            let host = fleet.hosts.of(record);
            let is_own =
                |c: &ContainerSummary| c.id == record.current_container_id && c.host == host;
            if is_own(kept.container) {
                continue;
            }
            if let Some(own) = list.iter_mut().find(|c| is_own(c.container)) {
                std::mem::swap(&mut kept.container, &mut own.container);
                std::mem::swap(&mut kept.engine_version, &mut own.engine_version);
            }
        }

        for (game_id, losers) in contenders {
            let kept = fleet.kept[&game_id].container;
            for loser in losers {
                let loser = loser.container;
                fleet
                    .losers
                    .insert((loser.host.as_str(), loser.id.as_str()));
                fleet.findings.push(Finding::DuplicateContainer {
                    game_id,
                    container_id: loser.id.clone(),
                    kept_container_id: kept.id.clone(),
                    host: loser.host.clone(),
                    kept_host: kept.host.clone(),
                });
            }
        }

        let mut matched = Vec::with_capacity(records.len());
        let mut by_id = Vec::new();
        for (index, (record, pending)) in records.iter().zip(pending).enumerate() {
            let pending = pending.unwrap_or_else(|| {
                let kept = fleet.kept.get(&record.game_id).copied();
                fleet.match_kept(record, kept)
            });
            matched.push(match pending {
                Pending::Matched(decided) => decided,
                Pending::ById(kept) => {
                    by_id.push(index);
                    Matched {
                        kept,
                        container: kept.map(|k| k.container),
                        own: false,
                    }
                }
            });
        }
        fleet.match_by_id(records, &by_id, &mut matched);
        (fleet, matched)
    }

    /// R4 where the record's own container is its game's kept one, or it has none: decided
    /// without a lookup. Otherwise the lookup by id is left to [`Self::match_by_id`].
    fn match_kept(&self, record: &RuntimeRecord, kept: Option<Kept<'a>>) -> Pending<'a> {
        let decided = |container: Option<&'a ContainerSummary>, own| {
            Pending::Matched(Matched {
                kept,
                container,
                own,
            })
        };
        if record.is_terminal() {
            return decided(None, false);
        }
        let host = self.hosts.of(record);
        let recorded = record.current_container_id.as_str();
        let kept_container = kept.map(|k| k.container);
        match kept_container {
            Some(c) if c.id == recorded && c.host == host => decided(kept_container, true),
            // No container id to look up: the kept container, if any (R4's fallback).
            _ if recorded.is_empty() => decided(kept_container, false),
            _ => Pending::ById(kept),
        }
    }

    /// R4 for the records at `indices`, whose own container is not their game's kept one: the
    /// container with the record's id on its host (duplicates left aside), else the kept one.
    ///
    /// One scan of the managed containers, each checked against the few wanted ids by a
    /// fingerprint of its id's first bytes (its whole id is read only when that matches),
    /// instead of hashing every container's id into an index.
    fn match_by_id(
        &self,
        records: &'a [Arc<RuntimeRecord>],
        indices: &[usize],
        matched: &mut [Matched<'a>],
    ) {
        if indices.is_empty() {
            return;
        }
        let mut fingerprints: IdSet<u64> = IdSet::default();
        let mut wanted: IdMap<(&str, &str), Option<&'a ContainerSummary>> = id_map(indices.len());
        for &index in indices {
            let record = &records[index];
            fingerprints.insert(fingerprint(&record.current_container_id));
            wanted.insert(
                (self.hosts.of(record), record.current_container_id.as_str()),
                None,
            );
        }
        for &container in &self.managed {
            if !fingerprints.contains(&fingerprint(&container.id)) {
                continue;
            }
            let key = (container.host.as_str(), container.id.as_str());
            if let Some(found) = wanted.get_mut(&key)
                && !self.losers.contains(&key)
            {
                // Container ids are unique per host; should two be alike, the later one wins.
                *found = Some(container);
            }
        }
        for &index in indices {
            let record = &records[index];
            let host = self.hosts.of(record);
            let matched = &mut matched[index];
            if let Some(own) = wanted[&(host, record.current_container_id.as_str())] {
                matched.container = Some(own);
                matched.own = true;
            } else if let Some(kept) = matched.container {
                matched.own = kept.id == record.current_container_id && kept.host == host;
            }
        }
    }

    /// The games of kept containers without any record, sorted (R10).
    fn unrecorded_games(&self) -> Vec<GameId> {
        let mut games: Vec<GameId> = self
            .kept
            .iter()
            .filter(|(_, kept)| !kept.recorded)
            .map(|(id, _)| *id)
            .collect();
        games.sort_unstable();
        games
    }

    /// R11: the engine version label when acceptable, else `""`.
    fn engine_version(&self, container: &'a ContainerSummary) -> &'a str {
        our_labels(container, self.config)
            .1
            .filter(|v| is_acceptable_version(v))
            .unwrap_or("")
    }
}

/// The values of the managed label and of the engine version label, if present.
///
/// One scan comparing keys for equality, which looks at a key's bytes only when its length
/// matches: the map lookups it replaces compare every visited key's bytes, and the keys live in
/// allocations of their own, so on a large fleet that was one cache miss per key per lookup.
fn our_labels<'a>(
    container: &'a ContainerSummary,
    config: &Config,
) -> (Option<&'a str>, Option<&'a str>) {
    let (mut managed, mut version) = (None, None);
    for (key, value) in &container.labels {
        if *key == config.managed_label {
            managed = Some(value.as_str());
        } else if *key == config.engine_version_label {
            version = Some(value.as_str());
        }
    }
    (managed, version)
}

/// Whether two strings are alike, at once when they are the same string.
fn same_str(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// The first eight bytes of a container id and its length, as one word: container ids are
/// random hexadecimal (or, in scenarios, distinct within their first bytes often enough), so
/// this tells most ids apart without reading their whole text.
fn fingerprint(id: &str) -> u64 {
    let bytes = id.as_bytes();
    let mut word = [0u8; 8];
    let head = &bytes[..bytes.len().min(8)];
    word[..head.len()].copy_from_slice(head);
    u64::from_le_bytes(word) ^ (bytes.len() as u64).rotate_left(56)
}

/// R3 after its first criterion: whether `candidate` should be kept over `current` — running
/// over not running, then the latest created, then the smallest `(host, id)`.
fn outranks(candidate: &ContainerSummary, current: &ContainerSummary) -> bool {
    let first =
        (candidate.is_running(), candidate.created).cmp(&(current.is_running(), current.created));
    // Equal so far: the smallest (host, id) wins.
    first
        .then_with(|| (&current.host, &current.id).cmp(&(&candidate.host, &candidate.id)))
        .is_gt()
}

/// R2: the game id of a container name (without its leading `/`).
pub fn game_id_of(bare_name: &str, prefix: &str) -> Option<GameId> {
    bare_name.strip_prefix(prefix)?.parse().ok()
}

/// R11: 1 to 64 characters of `A-Z a-z 0-9 . _ + -`.
pub fn is_acceptable_version(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use galaxy_runtime_testkit::fleet;

    use super::*;

    /// The records handed over with a plan are those of every game whose record it writes, the
    /// observation's own and in its order (each write expects what the plan saw of its record,
    /// so a missing one would fail the write), and the plan is `plan`'s. More only where R12's
    /// guard withheld removals.
    #[test]
    fn a_plan_hands_over_the_records_of_every_game_it_writes() {
        for games in [0, 1, 100, 2_000] {
            let (observation, config) = fleet::fleet(games).into_parts();
            let guarded = Config {
                removal_guard_min: 0,
                removal_guard_fraction: 0.0,
                ..config.clone()
            };
            for config in [config, guarded] {
                let Planned {
                    plan: made,
                    written,
                } = plan_with_written(&observation, &config);
                assert_eq!(made, plan(&observation, &config), "{games} games");
                let writes: BTreeSet<GameId> = made
                    .actions
                    .iter()
                    .filter(|a| a.writes_record())
                    .map(Action::game_id)
                    .collect();
                let handed: BTreeSet<GameId> = written.iter().map(|r| r.game_id).collect();
                assert_eq!(
                    handed.len(),
                    written.len(),
                    "{games} games: one record per game"
                );
                assert!(
                    writes.is_subset(&handed),
                    "{games} games: records not handed over: {:?}",
                    writes.difference(&handed).collect::<Vec<_>>()
                );
                let guard_tripped = made
                    .findings
                    .iter()
                    .any(|f| matches!(f, Finding::RemovalGuardTripped { .. }));
                assert!(
                    guard_tripped || handed == writes,
                    "{games} games: records handed over that the plan does not write: {:?}",
                    handed.difference(&writes).collect::<Vec<_>>()
                );
                let positions: Vec<usize> = written
                    .iter()
                    .map(|r| {
                        observation
                            .records
                            .iter()
                            .position(|o| Arc::ptr_eq(o, r))
                            .expect("a record of the observation")
                    })
                    .collect();
                assert!(
                    positions.is_sorted(),
                    "{games} games: in the observation's order"
                );
            }
        }
        // The generated fleet has removals, which a guard at zero withholds.
        let (observation, config) = fleet::fleet(100).into_parts();
        assert!(
            plan(&observation, &config)
                .actions
                .iter()
                .any(Action::is_removal)
        );
        let guarded = Config {
            removal_guard_min: 0,
            removal_guard_fraction: 0.0,
            ..config
        };
        assert!(
            plan(&observation, &guarded)
                .findings
                .iter()
                .any(|f| matches!(f, Finding::RemovalGuardTripped { .. }))
        );
    }
}
