//! The embedding API: [`Reconciler`], built by [`Reconciler::builder`], runs passes on demand
//! ([`Reconciler::tick`]) or as a [`Component`](galaxy_runtime_ports::Component) loop.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use galaxy_runtime_model::{Config, ConfigError, PassKind, Scenario, Timestamp};
use galaxy_runtime_ports::{
    Cache, DockerPort, EnginePort, LeaderLock, LobbyPort, OutboxPort, PortError, Scheduler,
    StorePort,
};
use log::{debug, info, warn};
use tokio::sync::{Mutex, Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Jitter;
use crate::context::{Clock, DockerHost, Lobby, PlanBasis, Ports};
use crate::execute;
use crate::observe::{self, Observed, Observing};
use crate::planner::{self, Planned};
use crate::relay::{DeliveryReport, Relay};
use crate::report::{ActionFailure, ObserveStep, PassError, PassReport};
use crate::{Finding, Plan, plan, telemetry};

pub(crate) struct Inner {
    pub ports: Ports,
    pub config: Config,
    /// Held for the whole of a full pass: never two full passes at once, whoever asks.
    pub full_lock: Mutex<()>,
    /// Held for the whole of a quick pass: never two quick passes at once. A quick pass and a
    /// full one may run side by side: compare-and-set keeps them from undoing each other.
    pub quick_lock: Mutex<()>,
    /// Wakes the loop's quick passes; permits fold, so triggers during a quick pass make one
    /// follow-up quick pass.
    pub wake: Arc<Notify>,
    /// Cancelled by `shutdown()`.
    pub stop: CancellationToken,
    /// Whether the loop runs.
    pub running: watch::Sender<bool>,
    /// How the last passes ended.
    pub health: std::sync::Mutex<crate::health::Health>,
}

/// A pass observed and planned by [`Reconciler::plan_pass`], not yet applied.
#[derive(Debug, Clone)]
#[must_use = "a planned pass changes nothing until it is applied"]
pub struct PlannedPass {
    /// What the pass observed, with the configuration: its scenario JSON replays it.
    pub scenario: Scenario,
    /// What it will do.
    pub plan: Plan,
    report: PassReport,
}

impl PlannedPass {
    /// The report so far: what was observed and planned, and how long that took.
    pub fn report(&self) -> &PassReport {
        &self.report
    }
}

/// A plan to apply instead of observing, with the report of how it was made.
struct Given<'a> {
    scenario: &'a Scenario,
    plan: &'a Plan,
    report: PassReport,
}

/// The reconciler: observes, plans and applies passes through the ports it was built with.
///
/// Cheap to clone (clones share everything). Runs only on the host's tokio runtime: it spawns
/// no thread, and no task but the one its loop
/// ([`Component::run`](galaxy_runtime_ports::Component::run)) runs its quick passes on (ended
/// with the loop, aborted if the loop is dropped), and keeps no global state besides the
/// host's `metrics` recorder and `log` logger.
///
/// ```
/// use std::sync::Arc;
/// use galaxy_runtime_model::Config;
/// use galaxy_runtime_ports::{
///     MockCache, MockDockerPort, MockEnginePort, MockLobbyPort, MockOutboxPort, MockScheduler,
///     MockStorePort,
/// };
/// use galaxy_runtime_reconciler::Reconciler;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut docker = MockDockerPort::new();
/// docker.expect_list_managed().returning(|_| Ok(vec![]));
/// let mut store = MockStorePort::new();
/// store.expect_list_records().returning(|| Ok(vec![]));
///
/// let reconciler = Reconciler::builder()
///     .docker(Arc::new(docker))
///     .store(Arc::new(store))
///     .engine(Arc::new(MockEnginePort::new()))
///     .lobby(Arc::new(MockLobbyPort::new()))
///     .outbox(Arc::new(MockOutboxPort::new()))
///     .cache(Arc::new(MockCache::new()))
///     .scheduler(Arc::new(MockScheduler::new()))
///     .config(Config::default())
///     .build()
///     .expect("every port given");
/// let report = reconciler.tick().await.expect("nothing to do");
/// assert_eq!(report.applied_total(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct Reconciler {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("config", &self.inner.config)
            .field("lobby", &self.inner.ports.lobby.is_some())
            .field("leader_lock", &self.inner.ports.leader.is_some())
            .finish_non_exhaustive()
    }
}

/// A [`Reconciler`] that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required port was not given.
    #[error("the {port} port is missing: give it with .{port}(…) on the reconciler builder{hint}")]
    MissingPort {
        /// The builder method that gives it (`docker`, `store`, …).
        port: &'static str,
        /// More advice, possibly empty.
        hint: &'static str,
    },
    /// The configuration breaks an invariant.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// The Docker hosts cannot be told apart (CONTRACT §6).
    #[error("invalid Docker hosts: {0}")]
    Hosts(String),
}

/// Builds a [`Reconciler`] from ports given as `Arc<dyn Port>`s. See [`Reconciler::builder`].
#[derive(Default)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ReconcilerBuilder {
    docker: Option<Arc<dyn DockerPort>>,
    docker_hosts: Vec<DockerHost>,
    store: Option<Arc<dyn StorePort>>,
    engine: Option<Arc<dyn EnginePort>>,
    /// `Some(None)`: explicitly without a lobby.
    lobby: Option<Option<Arc<dyn LobbyPort>>>,
    outbox: Option<Arc<dyn OutboxPort>>,
    cache: Option<Arc<dyn Cache>>,
    scheduler: Option<Arc<dyn Scheduler>>,
    leader: Option<Arc<dyn LeaderLock>>,
    config: Option<Config>,
    clock: Option<Clock>,
    progress: Option<Arc<dyn crate::ProbeProgress>>,
}

impl fmt::Debug for ReconcilerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcilerBuilder")
            .field("docker", &self.docker.is_some())
            .field(
                "docker_hosts",
                &self
                    .docker_hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("store", &self.store.is_some())
            .field("engine", &self.engine.is_some())
            .field("lobby", &self.lobby.is_some())
            .field("outbox", &self.outbox.is_some())
            .field("cache", &self.cache.is_some())
            .field("scheduler", &self.scheduler.is_some())
            .field("leader", &self.leader.is_some())
            .field("config", &self.config)
            .field("probe_progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl ReconcilerBuilder {
    /// The container runtime: one Docker host, named `""` (required, unless
    /// [`Self::docker_host`] gives named hosts instead).
    pub fn docker(mut self, docker: Arc<dyn DockerPort>) -> Self {
        self.docker = Some(docker);
        self
    }

    /// One of several Docker hosts (CONTRACT §6), by its configured name (`[a-z0-9._-]`, 1 to
    /// 64 characters, unique). Their containers are listed concurrently, each under
    /// `docker_list_timeout`; a host that fails to list leaves its records unobserved, and only
    /// every host failing fails the pass. The first host given is the one a record's
    /// `docker_host` of `""` stands for. Not together with [`Self::docker`].
    pub fn docker_host(mut self, name: impl Into<String>, docker: Arc<dyn DockerPort>) -> Self {
        self.docker_hosts.push(DockerHost {
            name: name.into(),
            port: docker,
        });
        self
    }

    /// The store of runtime records, projections and snapshots (required).
    pub fn store(mut self, store: Arc<dyn StorePort>) -> Self {
        self.store = Some(store);
        self
    }

    /// The engines' status resource (required).
    pub fn engine(mut self, engine: Arc<dyn EnginePort>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The lobby, told of the status changes in `lobby_statuses` (every removal, by default)
    /// through the outbox (required, unless [`Self::without_lobby`]; needs [`Self::outbox`]).
    pub fn lobby(mut self, lobby: Arc<dyn LobbyPort>) -> Self {
        self.lobby = Some(Some(lobby));
        self
    }

    /// Where the lobby's events wait for delivery: usually the very store of
    /// [`Self::store`] (its status changes write their events there, in the same transaction),
    /// fenced alike (required with a lobby).
    pub fn outbox(mut self, outbox: Arc<dyn OutboxPort>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// No lobby at all: removals are made and nobody is told (the seed's nil lobby); no event
    /// is recorded.
    pub fn without_lobby(mut self) -> Self {
        self.lobby = Some(None);
        self
    }

    /// The record cache, updated after every store write (required).
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The turn scheduler, told about games adopted as running (required).
    pub fn scheduler(mut self, scheduler: Arc<dyn Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// A lock so that only one replica applies changes (optional; without it this process
    /// always acts as the leader).
    pub fn leader(mut self, leader: Arc<dyn LeaderLock>) -> Self {
        self.leader = Some(leader);
        self
    }

    /// The configuration (optional; the contract's defaults otherwise).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Where passes read the time (optional; the wall clock otherwise).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A watcher told about the probes of every full pass as they happen (optional): the CLI
    /// draws a progress line with it.
    pub fn probe_progress(mut self, progress: Arc<dyn crate::ProbeProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Checks that every required port is there and the configuration is valid.
    pub fn build(self) -> Result<Reconciler, BuildError> {
        fn required<T: ?Sized>(
            port: Option<Arc<T>>,
            name: &'static str,
        ) -> Result<Arc<T>, BuildError> {
            port.ok_or(BuildError::MissingPort {
                port: name,
                hint: "",
            })
        }
        let config = self.config.unwrap_or_default();
        config.validate()?;
        let ports = Ports {
            docker: docker_hosts(self.docker, self.docker_hosts)?,
            store: required(self.store, "store")?,
            engine: required(self.engine, "engine")?,
            lobby: match self.lobby {
                None => {
                    return Err(BuildError::MissingPort {
                        port: "lobby",
                        hint: ", or call .without_lobby()",
                    });
                }
                Some(None) => None,
                Some(Some(port)) => Some(Lobby {
                    port,
                    outbox: self.outbox.ok_or(BuildError::MissingPort {
                        port: "outbox",
                        hint: " (usually the store itself: its status changes record the \
                               lobby's events there)",
                    })?,
                    wake: Arc::new(Notify::new()),
                }),
            },
            cache: required(self.cache, "cache")?,
            scheduler: required(self.scheduler, "scheduler")?,
            leader: self.leader,
            clock: self.clock.unwrap_or_else(|| Arc::new(Timestamp::now)),
            progress: self.progress,
        };
        telemetry::register();
        Ok(Reconciler {
            inner: Arc::new(Inner {
                ports,
                config,
                full_lock: Mutex::new(()),
                quick_lock: Mutex::new(()),
                wake: Arc::new(Notify::new()),
                stop: CancellationToken::new(),
                running: watch::Sender::new(false),
                health: std::sync::Mutex::new(crate::health::Health::default()),
            }),
        })
    }
}

/// The Docker hosts of a reconciler: one port named `""`, or named hosts, checked.
fn docker_hosts(
    single: Option<Arc<dyn DockerPort>>,
    named: Vec<DockerHost>,
) -> Result<Vec<DockerHost>, BuildError> {
    match (single, named.is_empty()) {
        (Some(port), true) => Ok(vec![DockerHost {
            name: String::new(),
            port,
        }]),
        (None, true) => Err(BuildError::MissingPort {
            port: "docker",
            hint: ", or .docker_host(name, …) for each of several hosts",
        }),
        (Some(_), false) => Err(BuildError::Hosts(
            "both .docker(…) and .docker_host(…) were given: one Docker port, or named hosts"
                .to_owned(),
        )),
        (None, false) => {
            let mut seen = std::collections::HashSet::new();
            for host in &named {
                check_host_name(&host.name).map_err(BuildError::Hosts)?;
                if !seen.insert(host.name.as_str()) {
                    return Err(BuildError::Hosts(format!(
                        "two Docker hosts are named {:?}",
                        host.name
                    )));
                }
            }
            Ok(named)
        }
    }
}

/// Whether `name` can name a Docker host (CONTRACT §6): 1 to 64 of `a-z 0-9 . _ -`.
///
/// ```
/// use galaxy_runtime_reconciler::check_host_name;
///
/// assert!(check_host_name("eu-west-1.a").is_ok());
/// assert!(check_host_name("").is_err());
/// assert!(check_host_name("Host A").is_err());
/// ```
pub fn check_host_name(name: &str) -> Result<(), String> {
    let acceptable = (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if acceptable {
        Ok(())
    } else {
        Err(format!(
            "Docker host name {:?} is not 1 to 64 of a-z 0-9 . _ -",
            galaxy_runtime_model::text::escape_foreign(name, 80)
        ))
    }
}

impl Reconciler {
    /// How the last pass ended, and the last failure: what health checks and readiness probes
    /// read.
    pub fn health(&self) -> crate::health::Health {
        self.inner
            .health
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn record_health(&self, outcome: crate::health::PassOutcome) {
        let mut health = self
            .inner
            .health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !outcome.succeeded() {
            health.last_error = Some(outcome.clone());
        }
        health.last_pass = Some(outcome);
    }

    /// A builder; give it every port, then call [`ReconcilerBuilder::build`].
    pub fn builder() -> ReconcilerBuilder {
        ReconcilerBuilder::default()
    }

    /// The configuration the reconciler runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs one whole full pass now — observe (probes included), plan, apply — as the loop
    /// does (the seed's `Tick`), waiting for a full pass in flight to finish first.
    ///
    /// With a leader lock, the pass first tries to take it; a replica that is not the leader
    /// skips the pass (`Ok` with [`PassReport::skipped_not_leader`]). A panic inside a port is
    /// caught and returned as [`PassError::Panicked`].
    pub async fn tick(&self) -> Result<PassReport, PassError> {
        self.guarded(PassKind::Full, self.pass(Observing::full(), None))
            .await
    }

    /// Runs one quick pass now — list, load projections, plan without R9, apply; no probe —
    /// waiting only for a quick pass in flight (never for a full pass's probing). What the loop
    /// runs on every trigger and Docker event, so that a vanished or new container is acted on
    /// within moments whatever the size of the fleet.
    pub async fn tick_quick(&self) -> Result<PassReport, PassError> {
        self.guarded(PassKind::Quick, self.pass(Observing::quick(), None))
            .await
    }

    /// A periodic full pass of the loop, its probes spread over `probe_spread` of the interval.
    pub(crate) async fn tick_spread(&self) -> Result<PassReport, PassError> {
        let config = &self.inner.config;
        let how = Observing {
            spread: config.reconcile_interval.mul_f64(config.probe_spread),
            ..Observing::full()
        };
        self.guarded(PassKind::Full, self.pass(how, None)).await
    }

    /// Applies a plan made from `scenario` (by [`Reconciler::tick_dry_run`], say), exactly as a
    /// pass applies its own: for `reconcile --once`, which prints the plan it applies.
    ///
    /// The scenario's records are what compare-and-set writes expect; a record that changed
    /// since is skipped as a conflict.
    pub async fn apply(&self, scenario: &Scenario, plan: &Plan) -> Result<PassReport, PassError> {
        let mut report = PassReport {
            now: Some(scenario.now),
            containers: scenario.containers.len() as u64,
            records: scenario.records.len() as u64,
            ..PassReport::default()
        };
        report.set_plan(plan);
        let given = Given {
            scenario,
            plan,
            report,
        };
        let how = match scenario.pass {
            PassKind::Full => Observing::full(),
            PassKind::Quick => Observing::quick(),
        };
        self.guarded(scenario.pass, self.pass(how, Some(given)))
            .await
    }

    /// Observes and plans without writing anything (and without the leader lock). A failed
    /// projection load is an error here, as it makes the pass fail: a dry run shows what a
    /// pass would do, and that pass would not complete.
    pub async fn tick_dry_run(&self) -> Result<(Scenario, Plan), PassError> {
        let planned = self.plan_pass().await?;
        Ok((planned.scenario, planned.plan))
    }

    /// The first two steps of a pass — observe and plan — without writing anything, for a
    /// caller that shows the plan before applying exactly it with
    /// [`Reconciler::apply_planned`] (as `reconcile --once` does). Errors as
    /// [`Reconciler::tick_dry_run`].
    pub async fn plan_pass(&self) -> Result<PlannedPass, PassError> {
        let mut report = PassReport::default();
        let started = Instant::now();
        let observed = self.observe_only().await?;
        report.durations.observe = started.elapsed();
        if let Some(source) = observed.projections_failed {
            return Err(PassError::Observe {
                step: ObserveStep::LoadProjections,
                source,
                report: Box::new(report),
            });
        }
        let started = Instant::now();
        let plan = plan(&observed.observation, &self.inner.config);
        report.durations.plan = started.elapsed();
        report.probes = observed.probes_made;
        report.now = Some(observed.observation.now);
        report.containers = observed.observation.containers.len() as u64;
        report.records = observed.observation.records.len() as u64;
        report.set_plan(&plan);
        Ok(PlannedPass {
            scenario: Scenario::new(observed.observation, self.inner.config.clone()),
            plan,
            report,
        })
    }

    /// Applies a pass planned by [`Reconciler::plan_pass`], exactly as a pass applies its own;
    /// the report covers the whole pass (observation, planning and applying).
    pub async fn apply_planned(&self, planned: &PlannedPass) -> Result<PassReport, PassError> {
        let given = Given {
            scenario: &planned.scenario,
            plan: &planned.plan,
            report: planned.report.clone(),
        };
        self.guarded(PassKind::Full, self.pass(Observing::full(), Some(given)))
            .await
    }

    /// Delivers the lobby events that are due now, until none is: what the relay does beside
    /// the loop (see [`Component::run`](galaxy_runtime_ports::Component::run)), for a host that
    /// drives passes itself with [`Reconciler::tick`]. Without a lobby there is nothing to
    /// deliver. A replica that does not lead delivers nothing (its claims are refused).
    pub async fn deliver_events(&self) -> Result<DeliveryReport, PortError> {
        let Some(relay) = self.relay() else {
            return Ok(DeliveryReport::default());
        };
        relay.deliver_due(&mut Jitter::seeded()).await
    }

    /// The relay of this reconciler, when it has a lobby.
    pub(crate) fn relay(&self) -> Option<Relay<'_>> {
        let lobby = self.inner.ports.lobby.as_ref()?;
        Some(Relay {
            ports: &self.inner.ports,
            config: &self.inner.config,
            outbox: lobby.outbox.as_ref(),
            lobby: lobby.port.as_ref(),
        })
    }

    /// Observes (lists, loads, probes) and returns the scenario of the pass, which `plan`
    /// replays offline. Writes nothing. A failed projection load is part of the scenario
    /// (`projections_error`), so that the replay plans exactly what the pass would.
    pub async fn observe(&self) -> Result<Scenario, PassError> {
        let observed = self.observe_only().await?;
        Ok(Scenario::new(
            observed.observation,
            self.inner.config.clone(),
        ))
    }

    /// The observe step for the read-only entry points (a full pass's), panics caught.
    async fn observe_only(&self) -> Result<Observed, PassError> {
        let observed = AssertUnwindSafe(observe::observe(
            &self.inner.ports,
            &self.inner.config,
            Observing::full(),
        ))
        .catch_unwind()
        .await
        .map_err(|panic| PassError::Panicked {
            message: panic_message(panic.as_ref()),
            report: Box::default(),
        })?;
        observed.map_err(|(step, source)| PassError::Observe {
            step,
            source,
            report: Box::default(),
        })
    }

    /// Serialises passes of one kind, catches panics, logs and records metrics.
    async fn guarded(
        &self,
        kind: PassKind,
        pass: impl Future<Output = Result<PassReport, PassError>>,
    ) -> Result<PassReport, PassError> {
        let lock = match kind {
            PassKind::Full => &self.inner.full_lock,
            PassKind::Quick => &self.inner.quick_lock,
        };
        let _one_at_a_time = lock.lock().await;
        let started = Instant::now();
        let result = AssertUnwindSafe(pass)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(PassError::Panicked {
                    message: panic_message(panic.as_ref()),
                    report: Box::new(PassReport {
                        pass: kind,
                        ..PassReport::default()
                    }),
                })
            });
        let seconds = started.elapsed().as_secs_f64();
        let name = match kind {
            PassKind::Full => "reconcile pass",
            PassKind::Quick => "reconcile quick pass",
        };
        let now_unix = (self.inner.ports.clock)().unix_micros() as f64 / 1e6;
        let (outcome, error) = match &result {
            Ok(report) if report.skipped_not_leader => (telemetry::RESULT_NOT_LEADER, None),
            Ok(_) => (telemetry::RESULT_OK, None),
            Err(error) => (telemetry::RESULT_ERROR, Some(error.to_string())),
        };
        self.record_health(crate::health::PassOutcome {
            at: (self.inner.ports.clock)(),
            pass: kind,
            result: outcome,
            error,
        });
        match &result {
            Ok(report) if report.skipped_not_leader => {
                debug!("{name} skipped: another replica holds the leader lock");
                telemetry::pass(telemetry::RESULT_NOT_LEADER, report, seconds, now_unix);
            }
            Ok(report) => {
                info!(
                    "{name} done in {seconds:.3}s: {} applied, {} conflicts, {} \
                     removals skipped, {} findings",
                    report.applied_total(),
                    report.conflicts,
                    report.skipped_removals,
                    report.findings.values().sum::<u64>()
                );
                telemetry::pass(telemetry::RESULT_OK, report, seconds, now_unix);
            }
            Err(error) => {
                warn!("{name} failed: {error}");
                telemetry::pass(telemetry::RESULT_ERROR, error.report(), seconds, now_unix);
            }
        }
        result
    }

    /// One pass: the leader check, then either observe + plan + apply, or apply a given plan.
    async fn pass(
        &self,
        how: Observing,
        given: Option<Given<'_>>,
    ) -> Result<PassReport, PassError> {
        let inner = &*self.inner;
        let mut report = given
            .as_ref()
            .map(|given| given.report.clone())
            .unwrap_or_default();
        report.pass = how.pass;
        if let Some(leader) = &inner.ports.leader {
            match leader.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    report.skipped_not_leader = true;
                    return Ok(report);
                }
                Err(source) => {
                    return Err(PassError::LeaderLock {
                        source,
                        report: Box::new(report),
                    });
                }
            }
        }

        if let Some(Given { scenario, plan, .. }) = given {
            let basis = PlanBasis {
                now: scenario.now,
                records: &scenario.records,
                probes: &scenario.probes,
            };
            return self.apply_and_finish(basis, plan, report, Vec::new()).await;
        }

        let started = Instant::now();
        let observed = observe::observe(&inner.ports, &inner.config, how).await;
        report.durations.observe = started.elapsed();
        let observed = match observed {
            Ok(observed) => observed,
            Err((step, source)) => {
                return Err(PassError::Observe {
                    step,
                    source,
                    report: Box::new(report),
                });
            }
        };
        let observation = &observed.observation;
        report.now = Some(observation.now);
        report.containers = observation.containers.len() as u64;
        report.records = observation.records.len() as u64;
        report.probes = observed.probes_made;

        let started = Instant::now();
        // A quick pass planned while it observed: its planning time is the plan's, not the
        // observation's.
        let (Planned { plan, written }, planned_in) = match observed.planned {
            Some(planned) => planned,
            None => (
                planner::plan_with_written(&observed.observation, &inner.config),
                std::time::Duration::ZERO,
            ),
        };
        report.durations.observe = report.durations.observe.saturating_sub(planned_in);
        let observation = &observed.observation;
        // The plan decided nothing about the games whose projections could not be loaded
        // (`adoption_undecided`); the pass reports their adoptions as failed, with the load's
        // error, so that it counts as failed and is retried.
        let mut failures = Vec::new();
        if let Some(error) = observed.projections_failed {
            let shared = Arc::new(error);
            for finding in &plan.findings {
                if let Finding::AdoptionUndecided { game_id, .. } = finding {
                    let error = PortError::shared(&shared, "load game projections");
                    warn!("adopt of game {game_id} failed: {error}");
                    telemetry::failure("adopt");
                    report.failures += 1;
                    failures.push(ActionFailure {
                        game_id: *game_id,
                        action: "adopt",
                        error,
                    });
                }
            }
        }
        report.durations.plan = started.elapsed() + planned_in;
        report.set_plan(&plan);
        log_findings(&plan.findings);

        let basis = PlanBasis {
            now: observation.now,
            records: &written,
            probes: &observation.probes,
        };
        self.apply_and_finish(basis, &plan, report, failures).await
    }

    async fn apply_and_finish(
        &self,
        basis: PlanBasis<'_>,
        plan: &Plan,
        mut report: PassReport,
        mut failures: Vec<ActionFailure>,
    ) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let applied = execute::apply(
            &self.inner.ports,
            &self.inner.config,
            basis,
            plan,
            &mut report,
        )
        .await;
        report.durations.apply = started.elapsed();
        failures.extend(applied.failures);
        if let Some(reason) = applied.leadership_lost {
            return Err(PassError::LeadershipLost {
                reason,
                failures,
                report: Box::new(report),
            });
        }
        if failures.is_empty() {
            if report.applied_total() > 0 {
                info!(
                    "reconcile pass applied {} changes ({} conflicts, {} removals skipped)",
                    report.applied_total(),
                    report.conflicts,
                    report.skipped_removals
                );
            }
            Ok(report)
        } else {
            Err(PassError::Actions {
                failures,
                report: Box::new(report),
            })
        }
    }
}

/// One `warn` line per finding; `awaiting_container` is the normal state of a game whose start
/// job is still creating its container, so it is only `debug`.
fn log_findings(findings: &[Finding]) {
    for finding in findings {
        match finding {
            Finding::AwaitingContainer { game_id } => {
                debug!("awaiting_container game_id={game_id}: inside its start grace");
            }
            Finding::UnrecognizedContainer { container_id, name } => {
                warn!("unrecognized_container container_id={container_id:?} name={name:?}")
            }
            Finding::DuplicateContainer {
                game_id,
                container_id,
                kept_container_id,
                host,
                kept_host,
            } => warn!(
                "duplicate_container game_id={game_id} container_id={container_id:?} \
                 kept_container_id={kept_container_id:?}{}{}",
                host_field("host", host),
                host_field("kept_host", kept_host)
            ),
            Finding::StaleContainer {
                game_id,
                container_id,
                status,
            } => warn!(
                "stale_container game_id={game_id} container_id={container_id:?} status={status}"
            ),
            Finding::OrphanContainer {
                game_id,
                container_id,
            } => warn!(
                "orphan_container game_id={game_id} container_id={container_id:?}: no such game, \
                 nothing touched"
            ),
            Finding::AdoptionUndecided {
                game_id,
                container_id,
                error,
            } => warn!(
                "adoption_undecided game_id={game_id} container_id={container_id:?}: the game's \
                 projection could not be loaded ({error}); nothing touched"
            ),
            Finding::InvalidLabel {
                container_id,
                label,
            } => warn!("invalid_label container_id={container_id:?} label={label:?}"),
            Finding::RemovalGuardTripped {
                host,
                would_remove,
                live,
            } => warn!(
                "removal_guard_tripped{}: {would_remove} of {live} live records would be \
                 removed; none is",
                host_field("host", host)
            ),
            Finding::HostUnavailable {
                host,
                error,
                records,
            } => warn!(
                "host_unavailable host={host:?} records={records}: {error}; its records are \
                 unobserved and nothing is done to them"
            ),
        }
    }
}

/// ` host="a"` for a log line, or nothing for the host `""` (a fleet of one host).
fn host_field(name: &str, host: &str) -> String {
    if host.is_empty() {
        String::new()
    } else {
        format!(" {name}={host:?}")
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a port panicked".to_owned()
    }
}
