//! Conformance suites for the galaxy-runtime ports, shared by every adapter.
