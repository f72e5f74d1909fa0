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

/// The container actions that may change what a pass would see: a container appeared, started,
/// stopped (or crashed), vanished, or got another name.
pub const WATCHED_ACTIONS: [&str; 5] = ["create", "start", "die", "destroy", "rename"];

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
pub struct ContainerEvents {
    adapter: DockerAdapter,
    filter: LabelFilter,
    config: EventsConfig,
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
            wake: Arc::new(wake),
            running: tokio::sync::Mutex::new(()),
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
                                    "Docker events: {} of container {}",
                                    escape_foreign(event.action.as_deref().unwrap_or(""), MESSAGE_CHARS),
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
        let mut filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_owned()]),
            (
                "event",
                WATCHED_ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
            ),
        ]);
        if !labels.is_empty() {
            filters.insert("label", labels);
        }
        EventsOptionsBuilder::new().filters(&filters).build()
    }

    /// The daemon filters already; this checks again, so a daemon that ignores a filter cannot
    /// make every event in the host wake the reconciler.
    fn is_watched(&self, event: &EventMessage) -> bool {
        let container = event.typ == Some(EventMessageTypeEnum::CONTAINER);
        let action = event
            .action
            .as_deref()
            .is_some_and(|a| WATCHED_ACTIONS.contains(&a));
        let attributes = event.actor.as_ref().and_then(|a| a.attributes.as_ref());
        let labelled = self
            .filter
            .labels
            .iter()
            .all(|(key, value)| attributes.and_then(|a| a.get(key)) == Some(value));
        container && action && labelled
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
