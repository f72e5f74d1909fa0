//! The reconcile loop: a start-up pass, then one every `reconcile_interval`, plus passes woken
//! early by [`Reconciler::trigger`].

use std::sync::Arc;

use async_trait::async_trait;
use galaxy_runtime_ports::{Component, PortError, PortResult};
use log::{debug, info};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, Jitter};
use crate::reconciler::Reconciler;
use crate::telemetry;

impl Reconciler {
    /// The passes of the loop, until `cancel` fires or the reconciler is shut down.
    async fn passes(&self, cancel: &CancellationToken) {
        let inner = &*self.inner;
        let config = &inner.config;
        let mut interval = tokio::time::interval(config.reconcile_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut jitter = Jitter::seeded();
        // The error policy: a pass that failed for a reason worth retrying is tried again
        // sooner than the next interval, with jittered exponential backoff up to the interval.
        let mut backoff = Backoff::new(config.retry_backoff, config.reconcile_interval);
        let mut retry_at: Option<Instant> = None;
        let mut first = true;
        loop {
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = inner.stop.cancelled() => break,
                _ = interval.tick() => Wake::Interval,
                () = sleep_until_or_never(retry_at) => Wake::Retry,
                () = inner.wake.notified() => Wake::Trigger,
            };
            if wake == Wake::Interval && !first && !config.reconcile_jitter.is_zero() {
                let delay = jitter.up_to(config.reconcile_jitter);
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    () = inner.stop.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            first = false;
            match wake {
                Wake::Trigger => debug!("reconcile pass triggered"),
                Wake::Retry => debug!(
                    "reconcile pass retried after {} failed passes",
                    backoff.failures()
                ),
                Wake::Interval => {}
            }
            // Not raced against cancellation: a pass in flight always finishes. Errors and
            // panics are logged and counted inside `tick`; the loop goes on.
            retry_at = match self.tick().await {
                Ok(_) => {
                    backoff.reset();
                    None
                }
                Err(error) if error.is_retryable() => {
                    let delay = backoff.next_delay();
                    info!(
                        "retrying the failed pass in {}",
                        galaxy_runtime_model::duration::format(delay)
                    );
                    Some(Instant::now() + delay)
                }
                Err(_) => None,
            };
            if wake != Wake::Interval {
                interval.reset();
            }
        }
    }
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Wakes a reconciler's loop early, from anywhere (a Docker event watcher, an admin endpoint).
///
/// Cheap to clone; holds nothing but the wake-up signal, so it never keeps the reconciler's
/// ports alive. Triggers that arrive while a pass runs fold into one follow-up pass.
#[derive(Debug, Clone)]
pub struct TriggerHandle {
    wake: Arc<Notify>,
}

impl TriggerHandle {
    /// Asks for a pass as soon as the one in flight (if any) is done.
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    /// The handle as a plain closure, for APIs that take `Fn()`.
    pub fn into_fn(self) -> impl Fn() + Clone + Send + Sync + 'static {
        move || self.trigger()
    }
}

impl Reconciler {
    /// Asks the loop for a pass as soon as the one in flight (if any) is done. Cheap; never
    /// blocks. Several triggers during one pass give one follow-up pass.
    pub fn trigger(&self) {
        self.inner.wake.notify_one();
    }

    /// A handle that triggers this reconciler (see [`TriggerHandle`]).
    pub fn trigger_handle(&self) -> TriggerHandle {
        TriggerHandle {
            wake: Arc::clone(&self.inner.wake),
        }
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        *self.inner.running.borrow()
    }
}

/// Clears the running flag however `run` ends (return, error, or its future being dropped).
struct RunningFlag<'a>(&'a tokio::sync::watch::Sender<bool>);

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    Interval,
    Trigger,
    Retry,
}

#[async_trait]
impl Component for Reconciler {
    /// Runs the loop: a start-up pass at once, then one every `reconcile_interval` (delayed,
    /// not bunched, when a pass overruns), each periodic one after a random delay of up to
    /// `reconcile_jitter`. A trigger wakes it early and restarts the interval. A pass error is
    /// logged and the loop goes on; when it is worth retrying ([`PassError::is_retryable`](crate::PassError::is_retryable))
    /// the pass is tried again after `retry_backoff`, doubling up to the interval, until one
    /// succeeds. When `cancel` fires (or [`Component::shutdown`] is
    /// called), the pass in flight finishes and the loop returns.
    ///
    /// Errors: [`PortError::Conflict`] when the loop already runs.
    async fn run(&self, cancel: CancellationToken) -> PortResult<()> {
        let inner = &*self.inner;
        if inner.running.send_replace(true) {
            return Err(PortError::conflict("the reconcile loop is already running"));
        }
        let _running = RunningFlag(&inner.running);
        telemetry::register();
        let config = &inner.config;
        info!(
            "reconcile loop started: a pass every {}",
            galaxy_runtime_model::duration::format(config.reconcile_interval)
        );

        // The relay runs beside the passes, on this same task, and stops with them (after
        // its round in flight): a lobby outage never slows or fails a pass.
        let relay_stop = CancellationToken::new();
        let relay = async {
            if let (Some(relay), Some(lobby)) = (self.relay(), &inner.ports.lobby) {
                relay.run(&lobby.wake, &relay_stop).await;
            }
        };
        let passes = async {
            self.passes(&cancel).await;
            relay_stop.cancel();
        };
        tokio::join!(passes, relay);
        info!("reconcile loop stopped");
        Ok(())
    }

    /// Stops the loop after the pass in flight and waits until it has returned. A loop stopped
    /// this way does not start again: `run` returns at once afterwards.
    async fn shutdown(&self) -> PortResult<()> {
        self.inner.stop.cancel();
        let mut running = self.inner.running.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = running.wait_for(|running| !*running).await;
        Ok(())
    }
}
