//! The galaxy-runtime command-line tool.
fn main() {}
