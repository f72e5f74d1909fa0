//! A watcher of a full pass's probes as they happen, for a progress line on a terminal
//! (`galaxy-runtime reconcile --once` and `observe`) or a test. The probing round is the long
//! part of a pass at fleet scale (issue 12's 16 s for 100k engines), and a person running one
//! pass by hand should see it move.

/// Told about the probes of every full pass of a reconciler it is given to
/// ([`crate::ReconcilerBuilder::probe_progress`]).
///
/// The calls come from the pass's own task, between probes: an implementation must return
/// quickly (count, or hand the numbers to something that draws), never block on I/O.
pub trait ProbeProgress: Send + Sync {
    /// A pass starts probing `total` engines (never called with 0: a pass with nothing to
    /// probe, such as a quick pass, makes no call at all).
    fn started(&self, total: usize);
    /// One probe ended; `failed` when its outcome is a failure (no answer, a timeout, an
    /// answer that is not a JSON object, no endpoint).
    fn probed(&self, failed: bool);
    /// The pass's probing ended (after the last [`Self::probed`]).
    fn finished(&self);
}
