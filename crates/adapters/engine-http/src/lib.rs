//! HTTP engine adapter of galaxy-runtime: probes a game engine's status resource.
