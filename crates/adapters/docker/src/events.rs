//! Container events of managed containers, turned into debounced wake-ups of the reconciler.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_ports::{Component, LabelFilter, PortResult};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adapter::DockerAdapter;
use crate::config::EventsConfig;
use crate::error::port_error;
use crate::swarm::SwarmAdapter;

/// The container actions that may change what a pass would see: a container appeared, started,
/// stopped (or crashed), vanished, or got another name.
pub const WATCHED_ACTIONS: [&str; 5] = ["create", "start", "die", "destroy", "rename"];

/// The actions of Swarm services and nodes that may change what a pass on a Swarm manager
/// would see: a service made, changed (scaled, updated) or removed; a node joining, changing
/// state (down, ready) or leaving.
pub const WATCHED_SWARM_ACTIONS: [&str; 3] = ["create", "update", "remove"];

/// The label Docker puts on a Swarm task's container, naming its service.
const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";

/// Watches Docker's event stream for [`WATCHED_ACTIONS`] of containers carrying the managed
/// labels, and calls a wake callback — in the CLI, `move || reconciler.trigger()` — debounced.
///
/// - **Debounce.** The first event opens a window of [`EventsConfig::debounce`]; every event in
///   the window is absorbed, and the callback runs once when it closes. A burst (a `docker rm -f`
///   gives `die` then `destroy`) is one wake-up, and a steady stream of events still wakes the
///   reconciler at least once per window.
/// - **Reconnection.** When the daemon goes away (stream error or end), a window that was open
///   fires at once, then the watcher pings the daemon with exponential backoff (from
///   [`EventsConfig::backoff_initial`], doubling, up to [`EventsConfig::backoff_max`]). Once the
///   daemon answers again it subscribes anew and wakes the reconciler once (debounced like an
///   event): events of the outage were missed, and a pass finds out what changed.
/// - **Stopping.** [`ContainerEvents::run`] returns as soon as its cancellation token fires;
///   a pending wake-up is dropped (the process is stopping).
///
/// Events only hasten passes: the periodic passes remain the source of truth, so a lost event
/// delays noticing a change until the next tick and nothing worse.
///
/// **On a Swarm manager** ([`ContainerEvents::for_swarm`]) the watcher also takes the
/// manager's service events of game services (a service whose name begins with
/// [`EventsConfig::name_prefix`]: service events carry no labels) and every node event, and
/// container events of game tasks on the manager's own node (managed by label, or a task of a
/// game service). Docker gives no event when a task is replaced on another node (its
/// containers' events stay on that node), so such a change waits for the next periodic pass.
pub struct ContainerEvents {
    adapter: DockerAdapter,
    filter: LabelFilter,
    config: EventsConfig,
    swarm: bool,
    wake: Arc<dyn Fn() + Send + Sync>,
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ContainerEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerEvents")
            .field("daemon", &self.adapter.daemon())
            .field("filter", &self.filter)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ContainerEvents {
    /// A watcher of the containers matching `filter` (the managed label and value) on the
    /// adapter's daemon, calling `wake` debounced.
    pub fn new(
        adapter: &DockerAdapter,
        filter: LabelFilter,
        config: EventsConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            adapter: adapter.clone(),
            filter,
            config,
            swarm: false,
            wake: Arc::new(wake),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// A watcher of a Swarm manager: the events of [`ContainerEvents::new`], and those of game
    /// services and of nodes (see the type's docs).
    pub fn for_swarm(
        adapter: &SwarmAdapter,
        filter: LabelFilter,
        config: EventsConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            swarm: true,
            ..Self::new(adapter.daemon_adapter(), filter, config, wake)
        }
    }

    /// Runs the watcher on its own task until `cancel` fires.
    pub fn spawn(self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run(cancel).await })
    }

    /// Watches until `cancel` fires, reconnecting whenever the daemon goes away. Never fails:
    /// an unreachable daemon is retried with backoff (and logged), not returned.
    pub async fn run(&self, cancel: CancellationToken) {
        let _running = self.running.lock().await;
        let mut backoff = self.config.backoff_initial;
        // Whether events may have been missed since the last subscription (an outage).
        let mut missed = false;
        let mut pending: Option<Instant> = None;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if let Err(error) = self.adapter.ping().await {
                if missed {
                    log::debug!("Docker events: still no daemon: {error}");
                } else {
                    log::warn!("Docker events: cannot subscribe, retrying with backoff: {error}");
                }
                missed = true;
                if !sleep_or_cancel(backoff, &cancel).await {
                    return;
                }
                backoff = (backoff * 2).min(self.config.backoff_max);
                continue;
            }
            if missed {
                log::info!(
                    "Docker events: subscribed again to {}; waking the reconciler for what the \
                     outage hid",
                    self.adapter.daemon()
                );
                pending.get_or_insert(Instant::now() + self.config.debounce);
            }

            let subscribed_at = Instant::now();
            let mut stream = self.adapter.docker().events(Some(self.options()));
            let lost = loop {
                let deadline = pending;
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    () = sleep_until_some(deadline) => {
                        pending = None;
                        (self.wake)();
                    }
                    item = stream.next() => match item {
                        Some(Ok(event)) => {
                            if self.is_watched(&event) {
                                log::debug!(
                                    "Docker events: {} of {} {}",
                                    escape_foreign(event.action.as_deref().unwrap_or(""), MESSAGE_CHARS),
                                    event.typ.map_or_else(String::new, |t| t.to_string()),
                                    escape_foreign(
                                        event.actor.as_ref().and_then(|a| a.id.as_deref()).unwrap_or("")
                                    , MESSAGE_CHARS)
                                );
                                pending.get_or_insert(Instant::now() + self.config.debounce);
                            }
                        }
                        Some(Err(error)) => {
                            break port_error(
                                error,
                                "watch events",
                                self.adapter.daemon(),
                                self.adapter.config(),
                            )
                            .to_string();
                        }
                        None => break "the daemon closed the event stream".to_owned(),
                    },
                }
            };
            log::warn!("Docker events: stream lost, reconnecting: {lost}");
            missed = true;
            if pending.take().is_some() {
                (self.wake)();
            }
            // A stream that lived long was a healthy connection: start backing off afresh. One
            // that broke at once (a daemon refusing the subscription) keeps growing the wait,
            // so the watcher never spins.
            if subscribed_at.elapsed() >= self.config.backoff_max {
                backoff = self.config.backoff_initial;
            }
            if !sleep_or_cancel(backoff, &cancel).await {
                return;
            }
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    fn options(&self) -> bollard::query_parameters::EventsOptions {
        let labels: Vec<String> = self
            .filter
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let words = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let mut filters: HashMap<&str, Vec<String>> = if self.swarm {
            // Docker ands the filters: a label filter would drop every service and node
            // event (they carry no labels), so containers are told apart here instead.
            let mut actions = words(&WATCHED_ACTIONS);
            actions.extend(words(&WATCHED_SWARM_ACTIONS));
            actions.sort();
            actions.dedup();
            HashMap::from([
                ("type", words(&["container", "service", "node"])),
                ("event", actions),
            ])
        } else {
            HashMap::from([
                ("type", words(&["container"])),
                ("event", words(&WATCHED_ACTIONS)),
            ])
        };
        if !labels.is_empty() && !self.swarm {
            filters.insert("label", labels);
        }
        EventsOptionsBuilder::new().filters(&filters).build()
    }

    /// The daemon filters already; this checks again, so a daemon that ignores a filter cannot
    /// make every event in the host wake the reconciler.
    fn is_watched(&self, event: &EventMessage) -> bool {
        let action = event.action.as_deref().unwrap_or("");
        let attributes = event.actor.as_ref().and_then(|a| a.attributes.as_ref());
        let attribute = |key: &str| attributes.and_then(|a| a.get(key));
        let is_game =
            |name: Option<&String>| name.is_some_and(|n| n.starts_with(&self.config.name_prefix));
        match event.typ {
            Some(EventMessageTypeEnum::CONTAINER) => {
                let labelled = self
                    .filter
                    .labels
                    .iter()
                    .all(|(key, value)| attribute(key) == Some(value));
                let game_task = self.swarm && is_game(attribute(SERVICE_NAME_LABEL));
                WATCHED_ACTIONS.contains(&action) && (labelled || game_task)
            }
            Some(EventMessageTypeEnum::SERVICE) => {
                self.swarm && WATCHED_SWARM_ACTIONS.contains(&action) && is_game(attribute("name"))
            }
            Some(EventMessageTypeEnum::NODE) => {
                self.swarm && WATCHED_SWARM_ACTIONS.contains(&action)
            }
            _ => false,
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sleeps `duration`; `false` when `cancel` fired first.
async fn sleep_or_cancel(duration: std::time::Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

#[async_trait]
impl Component for ContainerEvents {
    async fn run(&self, cancel: CancellationToken) -> PortResult<()> {
        ContainerEvents::run(self, cancel).await;
        Ok(())
    }

    async fn shutdown(&self) -> PortResult<()> {
        // `run` holds the lock while it works: taking it waits for a cancelled run to finish.
        let _finished = self.running.lock().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;
    use crate::config::DockerConfig;

    fn watcher(swarm: bool) -> ContainerEvents {
        let adapter = DockerAdapter::unconnected(DockerConfig::with_host("tcp://127.0.0.1:1"));
        ContainerEvents {
            swarm,
            ..ContainerEvents::new(
                &adapter,
                LabelFilter::single("galaxy.managed", "true"),
                EventsConfig::default(),
                || {},
            )
        }
    }

    fn event(typ: EventMessageTypeEnum, action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("x".to_owned()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    const GAME: &str = "galaxy-game-6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";

    #[test]
    fn a_swarm_watcher_wakes_on_game_services_nodes_and_game_tasks() {
        use EventMessageTypeEnum::{CONTAINER, NETWORK, NODE, SERVICE};
        let (daemon, swarm) = (watcher(false), watcher(true));
        let managed = event(CONTAINER, "die", &[("galaxy.managed", "true")]);
        let game_task = event(CONTAINER, "die", &[(SERVICE_NAME_LABEL, GAME)]);
        let other_task = event(CONTAINER, "die", &[(SERVICE_NAME_LABEL, "web")]);
        let removed = event(SERVICE, "remove", &[("name", GAME)]);
        let scaled = event(SERVICE, "update", &[("name", GAME)]);
        let other_service = event(SERVICE, "remove", &[("name", "web")]);
        let node_down = event(NODE, "update", &[("state.new", "down")]);
        let network = event(NETWORK, "connect", &[("name", GAME)]);

        assert!(daemon.is_watched(&managed));
        assert!(swarm.is_watched(&managed));
        assert!(
            !daemon.is_watched(&game_task),
            "a daemon goes by labels alone"
        );
        assert!(swarm.is_watched(&game_task));
        assert!(!swarm.is_watched(&other_task));
        for e in [&removed, &scaled, &node_down] {
            assert!(swarm.is_watched(e), "{e:?}");
            assert!(!daemon.is_watched(e), "{e:?}");
        }
        assert!(!swarm.is_watched(&other_service));
        assert!(!swarm.is_watched(&network));
        assert!(!swarm.is_watched(&event(
            CONTAINER,
            "exec_start",
            &[("galaxy.managed", "true")]
        )));
    }
}
