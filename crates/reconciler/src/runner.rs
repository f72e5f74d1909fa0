//! The reconcile loop: a start-up pass, then one every `reconcile_interval`, plus passes woken
//! early by [`Reconciler::trigger`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_ports::{Component, PortError, PortResult};
use log::{debug, info};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::reconciler::Reconciler;
use crate::telemetry;

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
}

#[async_trait]
impl Component for Reconciler {
    /// Runs the loop: a start-up pass at once, then one every `reconcile_interval` (delayed,
    /// not bunched, when a pass overruns), each periodic one after a random delay of up to
    /// `reconcile_jitter`. A trigger wakes it early and restarts the interval. A pass error is
    /// logged and the loop goes on. When `cancel` fires (or [`Component::shutdown`] is
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

        let mut interval = tokio::time::interval(config.reconcile_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut jitter = Jitter::seeded();
        let mut first = true;
        loop {
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = inner.stop.cancelled() => break,
                _ = interval.tick() => Wake::Interval,
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
            if wake == Wake::Trigger {
                debug!("reconcile pass triggered");
            }
            // Not raced against cancellation: a pass in flight always finishes. Errors and
            // panics are logged and counted inside `tick`; the loop goes on.
            let _ = self.tick().await;
            if wake == Wake::Trigger {
                interval.reset();
            }
        }
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

/// A small xorshift generator for the jitter: no cryptographic quality needed, no dependency.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let here = &nanos as *const u64 as u64;
        Self((nanos ^ here.rotate_left(32)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A duration from zero to `max`, in whole milliseconds.
    fn up_to(&mut self, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        if max_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.next() % (max_ms.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut jitter = Jitter::seeded();
        let max = Duration::from_millis(250);
        let draws: Vec<Duration> = (0..1000).map(|_| jitter.up_to(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        assert!(
            draws.iter().any(|d| *d != draws[0]),
            "always the same delay"
        );
        assert_eq!(jitter.up_to(Duration::ZERO), Duration::ZERO);
    }
}
