//! The reconcile loop: full passes at start-up and every `reconcile_interval`, quick passes on
//! [`Reconciler::trigger`], and the lobby's relay beside them.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::FutureExt;
use galaxy_runtime_model::duration;
use galaxy_runtime_ports::{Component, PortError, PortResult};
use log::{debug, info, warn};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::backoff::{Backoff, Jitter};
use crate::reconciler::Reconciler;
use crate::telemetry;

impl Reconciler {
    /// The full passes of the loop, until `cancel` fires or the reconciler is shut down: one at
    /// once (probing as fast as it may), then one every `reconcile_interval` (delayed, never
    /// stacked, when one overruns), each periodic one after up to `reconcile_jitter` and with
    /// its probes spread over `probe_spread` of the interval; a failed one worth retrying is
    /// tried again sooner, with jittered exponential backoff up to the interval.
    async fn full_passes(&self, cancel: &CancellationToken) {
        let inner = &*self.inner;
        let config = &inner.config;
        let mut interval = tokio::time::interval(config.reconcile_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut jitter = Jitter::seeded();
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
            if wake == Wake::Retry {
                debug!(
                    "reconcile pass retried after {} failed passes",
                    backoff.failures()
                );
            }
            // Not raced against cancellation: a pass in flight always finishes. Errors and
            // panics are logged and counted inside the pass; the loop goes on.
            let started = Instant::now();
            let result = if first {
                self.tick().await
            } else {
                self.tick_spread().await
            };
            first = false;
            let took = started.elapsed();
            if took > config.reconcile_interval {
                warn!(
                    "the full pass took {}, longer than reconcile_interval {}: the next one \
                     starts late (probing {} engines; see probe_concurrency, probe_timeout and \
                     probe_spread)",
                    duration::format(took),
                    duration::format(config.reconcile_interval),
                    result
                        .as_ref()
                        .map_or_else(|e| e.report().probes, |r| r.probes)
                );
                telemetry::overrun();
            }
            retry_at = match result {
                Ok(_) => {
                    backoff.reset();
                    None
                }
                Err(error) if error.is_retryable() => {
                    let delay = backoff.next_delay();
                    info!("retrying the failed pass in {}", duration::format(delay));
                    Some(Instant::now() + delay)
                }
                Err(_) => None,
            };
        }
    }

    /// The quick passes of the loop: one for every trigger (a Docker event, a caller's
    /// `trigger()`), never waiting for a full pass's probing. Triggers that arrive during a
    /// quick pass fold into one follow-up quick pass; quick passes start at least
    /// `quick_pass_min_gap` apart, so that an event storm cannot flood the store.
    async fn quick_passes(&self, cancel: &CancellationToken) {
        let inner = &*self.inner;
        let min_gap = inner.config.quick_pass_min_gap;
        let mut last: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = inner.stop.cancelled() => break,
                () = inner.wake.notified() => {}
            }
            if let Some(last) = last {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    () = inner.stop.cancelled() => break,
                    () = tokio::time::sleep_until(last + min_gap) => {}
                }
            }
            // Triggers that came while waiting are served by this very pass: a permit they
            // left is taken now, so that only triggers during the pass make a follow-up.
            let _ = inner.wake.notified().now_or_never();
            debug!("reconcile quick pass triggered");
            last = Some(Instant::now());
            // Errors are logged and counted inside the pass; the next full pass (or trigger)
            // decides again.
            let _ = self.tick_quick().await;
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

/// Asks a reconciler's loop for a quick pass, from anywhere (a Docker event watcher, an admin
/// endpoint).
///
/// Cheap to clone; holds nothing but the wake-up signal, so it never keeps the reconciler's
/// ports alive. Triggers that arrive while a quick pass runs fold into one follow-up pass.
#[derive(Debug, Clone)]
pub struct TriggerHandle {
    wake: Arc<Notify>,
}

impl TriggerHandle {
    /// Asks for a quick pass as soon as the quick pass in flight (if any) is done.
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    /// The handle as a plain closure, for APIs that take `Fn()`.
    pub fn into_fn(self) -> impl Fn() + Clone + Send + Sync + 'static {
        move || self.trigger()
    }
}

impl Reconciler {
    /// Asks the loop for a quick pass as soon as the quick pass in flight (if any) is done,
    /// whatever a full pass is doing. Cheap; never blocks. Several triggers during one quick
    /// pass give one follow-up quick pass.
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
    Retry,
}

#[async_trait]
impl Component for Reconciler {
    /// Runs the loop: a full pass at once, then one every `reconcile_interval` (delayed, never
    /// stacked, when one overruns), each periodic one after a random delay of up to
    /// `reconcile_jitter` and with its probes spread over `probe_spread` of the interval; and a
    /// quick pass on every trigger (Docker events), which never waits for a full pass's
    /// probing — both kinds may be in flight at once, and compare-and-set keeps them from
    /// undoing each other. The lobby's relay runs beside them. A pass error is logged and the
    /// loop goes on; when it is worth retrying
    /// ([`PassError::is_retryable`](crate::PassError::is_retryable)) the full pass is tried
    /// again after `retry_backoff`, doubling up to the interval, until one succeeds. When
    /// `cancel` fires (or [`Component::shutdown`] is called), the passes in flight finish and
    /// the loop returns.
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
        // The quick passes run on a task of their own: on one task with the full pass they took
        // turns with its probing, so that on a 100k fleet a quick pass planned beside a full
        // pass took half as long again as alone, however many cores were idle. The task is
        // aborted if this future is dropped, so no pass outlives the loop.
        let quick = AbortOnDropHandle::new(tokio::spawn({
            let this = self.clone();
            let cancel = cancel.clone();
            async move { this.quick_passes(&cancel).await }
        }));
        let passes = async {
            let ((), quick) = tokio::join!(self.full_passes(&cancel), quick);
            if let Err(e) = quick
                && e.is_panic()
            {
                // Not a pass's panic (those are caught and reported): the loop's own.
                std::panic::resume_unwind(e.into_panic());
            }
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
