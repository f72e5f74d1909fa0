//! In-memory implementations of every galaxy-runtime port, for tests, examples and simulations.
