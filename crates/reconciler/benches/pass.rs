//! Whole-pass benchmark (being written).
fn main() {}
