//! Docker adapter of galaxy-runtime on bollard: list, inspect and events of managed containers.
