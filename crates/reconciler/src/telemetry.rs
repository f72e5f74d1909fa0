//! The metrics the reconciler records through the [`metrics`] facade, by name.
//!
//! The host installs whatever recorder it likes (Prometheus, StatsD, …); without one, recording
//! costs next to nothing. Every metric is described and registered at zero when a reconciler is
//! built and when its loop starts, so dashboards see every series from the start.
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `galaxy_runtime_pass_duration_seconds` | histogram | `pass`: `full`, `quick` |
//! | `galaxy_runtime_passes_total` | counter | `pass`; `result`: `ok`, `error`, `not_leader` |
//! | `galaxy_runtime_pass_overruns_total` | counter | (full passes longer than the interval) |
//! | `galaxy_runtime_applied_actions_total` | counter | `kind`: each action kind (applied actions) |
//! | `galaxy_runtime_findings_total` | counter | `kind`: each finding kind |
//! | `galaxy_runtime_conflicts_total` | counter | |
//! | `galaxy_runtime_action_failures_total` | counter | `kind`: each action kind |
//! | `galaxy_runtime_lobby_deliveries_total` | counter | `result`: `delivered`, `failed` (attempts) |
//! | `galaxy_runtime_lobby_delivery_attempts` | histogram | (attempts an event took to be delivered) |
//! | `galaxy_runtime_outbox_pending` | gauge | |
//! | `galaxy_runtime_outbox_oldest_pending_age_seconds` | gauge | |
//! | `galaxy_runtime_skipped_removals_total` | counter | |
//! | `galaxy_runtime_probe_duration_seconds` | histogram | |
//! | `galaxy_runtime_last_success_timestamp_seconds` | gauge | |

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::report::PassReport;
use crate::{Action, Finding};

/// Duration of whole passes (histogram, seconds).
pub const PASS_DURATION: &str = "galaxy_runtime_pass_duration_seconds";
/// Passes by `pass` and `result` (counter).
pub const PASSES: &str = "galaxy_runtime_passes_total";
/// Full passes of the loop that took longer than `reconcile_interval` (counter): the next one
/// starts late rather than stacking.
pub const PASS_OVERRUNS: &str = "galaxy_runtime_pass_overruns_total";
/// The values of the `pass` label of [`PASSES`] and [`PASS_DURATION`].
pub const PASS_KINDS: [&str; 2] = ["full", "quick"];
/// Applied actions by `kind` (counter).
pub const APPLIED_ACTIONS: &str = "galaxy_runtime_applied_actions_total";
/// Findings by `kind` (counter).
pub const FINDINGS: &str = "galaxy_runtime_findings_total";
/// Actions skipped on a compare-and-set conflict (counter).
pub const CONFLICTS: &str = "galaxy_runtime_conflicts_total";
/// Failed actions by `kind` (counter).
pub const FAILURES: &str = "galaxy_runtime_action_failures_total";
/// Attempts to deliver lobby events, by `result` (counter).
pub const LOBBY_DELIVERIES: &str = "galaxy_runtime_lobby_deliveries_total";
/// How many attempts each delivered event took (histogram).
pub const LOBBY_ATTEMPTS: &str = "galaxy_runtime_lobby_delivery_attempts";
/// Lobby events not yet delivered (gauge).
pub const OUTBOX_PENDING: &str = "galaxy_runtime_outbox_pending";
/// Age of the oldest lobby event not yet delivered (gauge, seconds; 0 when none is).
pub const OUTBOX_OLDEST_AGE: &str = "galaxy_runtime_outbox_oldest_pending_age_seconds";

/// The values of the `result` label of [`LOBBY_DELIVERIES`].
pub const DELIVERY_RESULTS: [&str; 2] = [DELIVERED, FAILED];
pub(crate) const DELIVERED: &str = "delivered";
pub(crate) const FAILED: &str = "failed";
/// Removals not applied because the container could not be confirmed gone (counter).
pub const SKIPPED_REMOVALS: &str = "galaxy_runtime_skipped_removals_total";
/// Duration of engine probes (histogram, seconds).
pub const PROBE_DURATION: &str = "galaxy_runtime_probe_duration_seconds";
/// Unix time of the last pass that ended without error (gauge, seconds).
pub const LAST_SUCCESS: &str = "galaxy_runtime_last_success_timestamp_seconds";

/// The values of the `result` label of [`PASSES`].
pub const PASS_RESULTS: [&str; 3] = [RESULT_OK, RESULT_ERROR, RESULT_NOT_LEADER];
pub(crate) const RESULT_OK: &str = "ok";
pub(crate) const RESULT_ERROR: &str = "error";
pub(crate) const RESULT_NOT_LEADER: &str = "not_leader";

/// Describes every metric and registers every series at zero, without changing any value a
/// series already has.
pub(crate) fn register() {
    describe_histogram!(
        PASS_DURATION,
        Unit::Seconds,
        "Duration of reconcile passes."
    );
    describe_counter!(PASSES, "Reconcile passes by kind and result.");
    describe_counter!(
        PASS_OVERRUNS,
        "Full passes of the loop that took longer than the reconcile interval."
    );
    describe_counter!(APPLIED_ACTIONS, "Actions applied, by kind.");
    describe_counter!(FINDINGS, "Findings of reconcile passes, by kind.");
    describe_counter!(
        CONFLICTS,
        "Actions skipped because the record changed meanwhile."
    );
    describe_counter!(FAILURES, "Actions that failed, by kind.");
    describe_counter!(
        LOBBY_DELIVERIES,
        "Attempts to deliver lobby events, by result."
    );
    describe_histogram!(
        LOBBY_ATTEMPTS,
        "Attempts each delivered lobby event took, the successful one included."
    );
    describe_gauge!(OUTBOX_PENDING, "Lobby events not yet delivered.");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest lobby event not yet delivered (0 when none is)."
    );
    describe_counter!(
        SKIPPED_REMOVALS,
        "Removals skipped because the container could not be confirmed gone."
    );
    describe_histogram!(PROBE_DURATION, Unit::Seconds, "Duration of engine probes.");
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last reconcile pass without error."
    );

    let _ = histogram!(PROBE_DURATION);
    for pass in PASS_KINDS {
        let _ = histogram!(PASS_DURATION, "pass" => pass);
        for result in PASS_RESULTS {
            counter!(PASSES, "pass" => pass, "result" => result).increment(0);
        }
    }
    counter!(PASS_OVERRUNS).increment(0);
    for kind in Action::KINDS {
        counter!(APPLIED_ACTIONS, "kind" => kind).increment(0);
        counter!(FAILURES, "kind" => kind).increment(0);
    }
    for kind in Finding::KINDS {
        counter!(FINDINGS, "kind" => kind).increment(0);
    }
    counter!(CONFLICTS).increment(0);
    for result in DELIVERY_RESULTS {
        counter!(LOBBY_DELIVERIES, "result" => result).increment(0);
    }
    let _ = histogram!(LOBBY_ATTEMPTS);
    gauge!(OUTBOX_PENDING).increment(0.0);
    gauge!(OUTBOX_OLDEST_AGE).increment(0.0);
    counter!(SKIPPED_REMOVALS).increment(0);
    gauge!(LAST_SUCCESS).increment(0.0);
}

/// Records one probe's duration.
pub(crate) fn probe(seconds: f64) {
    histogram!(PROBE_DURATION).record(seconds);
}

/// Records the outcome of one pass.
pub(crate) fn pass(result: &'static str, report: &PassReport, seconds: f64, now_unix: f64) {
    let kind = report.pass.as_str();
    histogram!(PASS_DURATION, "pass" => kind).record(seconds);
    counter!(PASSES, "pass" => kind, "result" => result).increment(1);
    for (kind, n) in &report.applied {
        if *n > 0 {
            counter!(APPLIED_ACTIONS, "kind" => kind.clone()).increment(*n);
        }
    }
    for (kind, n) in &report.findings {
        if *n > 0 {
            counter!(FINDINGS, "kind" => kind.clone()).increment(*n);
        }
    }
    counter!(CONFLICTS).increment(report.conflicts);
    counter!(SKIPPED_REMOVALS).increment(report.skipped_removals);
    if result == RESULT_OK {
        gauge!(LAST_SUCCESS).set(now_unix);
    }
}

/// Records one delivery attempt (`attempt` counts from 1).
pub(crate) fn delivery(result: &'static str, attempt: u32) {
    counter!(LOBBY_DELIVERIES, "result" => result).increment(1);
    if result == DELIVERED {
        histogram!(LOBBY_ATTEMPTS).record(f64::from(attempt));
    }
}

/// Records the outbox's backlog.
pub(crate) fn outbox(pending: u64, oldest_age_seconds: f64) {
    gauge!(OUTBOX_PENDING).set(pending as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(oldest_age_seconds);
}

/// Records a full pass of the loop that overran the interval.
pub(crate) fn overrun() {
    counter!(PASS_OVERRUNS).increment(1);
}

/// Records one failed action.
pub(crate) fn failure(kind: &'static str) {
    counter!(FAILURES, "kind" => kind).increment(1);
}
