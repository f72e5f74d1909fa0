//! The `plan_once` bench with mimalloc as the process's allocator, tuned as the command-line
//! tool has it: how much of the figures is the system allocator's layout of the fleet
//! (`docs/performance.md` §10).

#[path = "../../cli/src/allocator.rs"]
mod allocator;

#[path = "plan_once.rs"]
mod bench;

fn main() {
    allocator::keep_freed_pages();
    bench::main();
}
