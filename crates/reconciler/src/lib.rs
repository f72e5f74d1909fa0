//! The galaxy-runtime reconciler: the pure planner, the executor and the reconcile loop.

pub mod plan;

pub use plan::{Action, Finding, Plan, Summary};
