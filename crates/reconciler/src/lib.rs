//! The galaxy-runtime reconciler: the pure planner, the executor and the reconcile loop.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//! ```
//!
//! One pass observes (lists containers, then records, loads projections, probes engines),
//! [`plan()`]s (a pure function of the observation, rules R1–R13 of the contract) and applies the
//! plan through the ports.
//!
//! ```
//! use galaxy_runtime_model::{Config, Observation};
//! use galaxy_runtime_reconciler::plan;
//!
//! let now = "2026-11-27T12:00:00Z".parse().unwrap();
//! let plan = plan(&Observation::empty(now), &Config::default());
//! assert!(plan.actions.is_empty() && plan.findings.is_empty());
//! ```

pub mod plan;
mod planner;

mod addressing;
mod backoff;
mod context;
mod execute;
mod health;
mod observe;
mod progress;
mod reconciler;
mod relay;
mod report;
mod runner;
pub mod telemetry;

pub use plan::{Action, Adoption, Finding, Plan, Rebinding, Summary};
pub use planner::{
    CONTAINER_DISAPPEARED, ENGINE_REACHABLE, NO_PROBE_RESULT, ObservationNeeds, Planning,
    ProbeTarget, game_id_of, is_acceptable_version, observation_needs, plan,
};

pub use addressing::probe_endpoint;
pub use context::Clock;
pub use health::{Health, PassOutcome};
pub use progress::ProbeProgress;
pub use reconciler::{BuildError, PlannedPass, Reconciler, ReconcilerBuilder, check_host_name};
pub use relay::DeliveryReport;
pub use report::{ActionFailure, ObserveStep, PassDurations, PassError, PassReport};
pub use runner::TriggerHandle;
