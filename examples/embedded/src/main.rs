//! A galaxy-runtime example (being written).

fn main() {}
