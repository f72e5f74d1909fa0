//! The simulation's seeds as tests: a range of seeds and the regression seeds hold on the
//! real memory store; a store with a known flaw fails within a bounded number of seeds; a seed
//! replays exactly.

use galaxy_runtime_simulation::{Flaw, Options, Outcome, replay_command, run};

/// Seeds that once failed, or that expose a flaw (see `the_flawed_stores_fail_on_their_seeds`):
/// each must hold on the real store, for ever.
const REGRESSION_SEEDS: &[u64] = &[
    // The status-only compare-and-set marks a moved record removed (issue 9's race), before and
    // after the planner took several hosts (which changed every run's course).
    1, 3, 7, 8, 14, 17, 29, 30, 190,
    // The removal guard trips in the first pass after the faults, and the adoptions of that
    // pass let the second pass's removals through: convergence takes one pass more.
    213, 232, 293,
];

/// Seeds on which the status-only compare-and-set marks a running game removed.
const STATUS_ONLY_SEEDS: &[u64] = &[1, 3, 7, 8, 17, 30];

/// Seeds on which, with three hosts, a down host answering as an empty daemon would have its
/// running games marked removed (invariant 10): each must still catch that flaw, and hold
/// without it.
const DOWN_HOST_SEEDS: &[u64] = &[2, 3, 5, 7, 8];

fn options() -> Options {
    Options::default()
}

fn assert_holds(outcome: &Outcome, options: &Options) {
    assert!(
        outcome.holds(),
        "seed {} fails at {}; replay: {}",
        outcome.seed,
        outcome
            .violation
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        replay_command(outcome.seed, options)
    );
}

#[test]
fn the_regression_seeds_hold() {
    let options = options();
    for &seed in REGRESSION_SEEDS {
        assert_holds(&run(seed, &options), &options);
    }
}

#[test]
fn a_range_of_seeds_holds() {
    let options = options();
    let mut passes = 0;
    for seed in 10_000..10_024 {
        let outcome = run(seed, &options);
        assert_holds(&outcome, &options);
        passes += outcome.stats.passes;
    }
    // The runs did something: passes ran and ended.
    assert!(passes > 24 * 20, "only {passes} passes ended in 24 seeds");
}

#[test]
fn a_status_only_compare_fails_within_sixty_seeds() {
    let options = Options {
        flaw: Some(Flaw::StatusOnlyCompare),
        ..options()
    };
    let failing: Vec<u64> = (0..60)
        .filter(|&seed| !run(seed, &options).holds())
        .collect();
    assert!(
        !failing.is_empty(),
        "no seed of 0..60 caught the status-only compare-and-set"
    );
}

#[test]
fn the_flawed_stores_fail_on_their_seeds() {
    let flawed = Options {
        flaw: Some(Flaw::StatusOnlyCompare),
        ..options()
    };
    for &seed in STATUS_ONLY_SEEDS {
        let violation = run(seed, &flawed)
            .violation
            .unwrap_or_else(|| panic!("seed {seed} no longer catches the status-only compare"));
        assert_eq!(
            violation.invariant, "no removal of a game whose container exists",
            "seed {seed}: {violation}"
        );
    }
}

#[test]
fn a_store_that_does_not_fence_fails_within_ten_seeds() {
    let options = Options {
        flaw: Some(Flaw::NoFence),
        ..options()
    };
    let violations: Vec<_> = (0..10)
        .filter_map(|seed| run(seed, &options).violation)
        .collect();
    assert!(
        !violations.is_empty(),
        "no seed of 0..10 caught the unfenced store"
    );
    for violation in violations {
        assert_eq!(
            violation.invariant, "no write without the lock",
            "{violation}"
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    let options = Options {
        trace: true,
        ..options()
    };
    let first = run(42, &options);
    let again = run(42, &options);
    assert!(
        first.trace.len() > 2_000,
        "{} trace lines",
        first.trace.len()
    );
    assert_eq!(first.trace, again.trace);
    assert_eq!(first.stats, again.stats);
    let other = run(43, &options);
    assert_ne!(first.trace, other.trace, "two seeds, one run");
}

#[test]
fn the_replay_command_names_the_seed_and_the_options() {
    assert_eq!(
        replay_command(7, &Options::default()),
        "scripts/simulate --seed 7 --trace"
    );
    let options = Options {
        steps: 300,
        flaw: Some(Flaw::NoFence),
        trace: false,
        hosts: 3,
    };
    assert_eq!(
        replay_command(7, &options),
        "scripts/simulate --seed 7 --trace --steps 300 --hosts 3 --flaw no-fence"
    );
}

/// Three Docker hosts (CONTRACT §6): host outages, games moving between hosts, duplicates
/// across hosts, records of a host that is not configured.
fn three_hosts() -> Options {
    Options {
        hosts: 3,
        ..options()
    }
}

#[test]
fn a_range_of_seeds_holds_on_three_hosts() {
    let options = three_hosts();
    let (mut outages, mut unobserved) = (0, 0);
    for seed in 20_000..20_016 {
        let outcome = run(seed, &options);
        assert_holds(&outcome, &options);
        outages += outcome.stats.host_outages;
        unobserved += outcome.stats.hosts_unavailable;
    }
    // The runs had hosts go down, and passes that left their records unobserved.
    assert!(
        outages > 0 && unobserved > 0,
        "{outages} outages, {unobserved} findings"
    );
}

#[test]
fn a_seed_on_three_hosts_replays_exactly() {
    let traced = |options: Options| Options {
        trace: true,
        ..options
    };
    let first = run(42, &traced(three_hosts()));
    let again = run(42, &traced(three_hosts()));
    assert_eq!(first.trace, again.trace);
    assert!(
        first.trace.iter().any(|line| line.contains(" @h1")),
        "the calls name their host"
    );
    assert_ne!(first.trace, run(42, &traced(options())).trace);
}

#[test]
fn a_down_host_answering_as_an_empty_daemon_fails_within_ten_seeds() {
    let options = Options {
        flaw: Some(Flaw::DownHostListsEmpty),
        ..three_hosts()
    };
    let violations: Vec<_> = (0..10)
        .filter_map(|seed| run(seed, &options).violation)
        .collect();
    assert!(
        !violations.is_empty(),
        "no seed of 0..10 caught a down host listing nothing"
    );
    for violation in violations {
        assert_eq!(
            violation.invariant, "no record of an unobserved host is ever removed",
            "{violation}"
        );
    }
}

#[test]
fn the_down_host_seeds_catch_an_empty_answer_and_hold_on_real_hosts() {
    let flawed = Options {
        flaw: Some(Flaw::DownHostListsEmpty),
        ..three_hosts()
    };
    for &seed in DOWN_HOST_SEEDS {
        let violation = run(seed, &flawed)
            .violation
            .unwrap_or_else(|| panic!("seed {seed} no longer catches a down host listing nothing"));
        assert_eq!(
            violation.invariant, "no record of an unobserved host is ever removed",
            "seed {seed}: {violation}"
        );
        assert_holds(&run(seed, &three_hosts()), &three_hosts());
    }
}
