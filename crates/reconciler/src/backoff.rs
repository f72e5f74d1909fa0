//! Jittered exponential backoff: how long to wait before trying again, for the loop after a
//! failed pass.

use std::time::Duration;

/// Waits that double from `initial` up to `cap`, each drawn uniformly from its upper half
/// ("equal jitter"), so that replicas that failed together do not retry together. Reset by a
/// success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    cap: Duration,
    failures: u32,
    jitter: Jitter,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap: cap.max(initial),
            failures: 0,
            jitter: Jitter::seeded(),
        }
    }

    /// The wait before the next try, after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = backoff_delay(self.initial, self.cap, self.failures, &mut self.jitter);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success: the next failure waits `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The wait after `failures` earlier failures (0 for the first retry): `initial` doubled that
/// many times, at most `cap`, drawn uniformly from the upper half of that ceiling.
pub(crate) fn backoff_delay(
    initial: Duration,
    cap: Duration,
    failures: u32,
    jitter: &mut Jitter,
) -> Duration {
    let doubling = 2u32.saturating_pow(failures.min(31));
    let ceiling = initial.saturating_mul(doubling).min(cap.max(initial));
    let half = ceiling / 2;
    half + jitter.up_to(ceiling - half)
}

/// A small xorshift generator for jitter: no cryptographic quality needed, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn seeded() -> Self {
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
    pub(crate) fn up_to(&mut self, max: Duration) -> Duration {
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

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let ceilings = [1, 2, 4, 8, 16, 30, 30];
        for ceiling in ceilings {
            let ceiling = Duration::from_secs(ceiling);
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} not within the upper half of {ceiling:?}"
            );
        }
        assert_eq!(backoff.failures(), 7);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
