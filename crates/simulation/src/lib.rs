//! A deterministic simulation of galaxy-runtime, in the manner of FoundationDB's simulator and
//! TigerBeetle's VOPR: one `u64` seed drives a fleet on the in-memory adapters and tokio's
//! paused clock over thousands of steps, and after every step the invariants of
//! `docs/reliability.md` are checked.
//!
//! Each step is one decision, drawn from the seed:
//!
//! - a waiting port call of a replica goes through, fails, goes through with its answer lost,
//!   or (a Docker listing) lists nothing or only some containers;
//! - the clock advances (probes and lobby calls time out, start graces end, leases expire);
//! - a backend job moves on a stage (start, stop, restart, a start job that dies leaving a
//!   container without a record), or dies;
//! - a container dies, runs again, vanishes, is duplicated, renamed or paused; an engine fails,
//!   flaps or heals;
//! - a replica begins a full pass, a quick pass or a relay round beside what it already runs;
//! - a replica crashes (its futures dropped wherever they wait) and restarts with a new lock
//!   session, or the server ends the leader's session mid-pass;
//! - the store, the Docker daemon or the lobby goes down, hangs or slows for a while;
//! - with several Docker hosts (`--hosts`), one host's daemon goes down while its containers
//!   run on, games move between hosts, containers are duplicated across them, and some records
//!   name a host that is not configured.
//!
//! Every port call of the two replicas waits at a gate until the simulation
//! decides it, and the simulation polls the replicas' futures itself until each waits again, so
//! the order of everything comes from the seed alone: a seed replays exactly
//! (`scripts/simulate --seed S --trace`).
//!
//! ```
//! use galaxy_runtime_simulation::{Options, run};
//!
//! let outcome = run(7, &Options { steps: 200, ..Options::default() });
//! assert!(outcome.holds(), "{:?}", outcome.violation);
//! ```

mod gate;
mod rng;
mod sim;

pub use gate::Flaw;
pub use sim::{DEFAULT_STEPS, MAX_HOSTS, Options, Outcome, Stats, Violation, run};

/// The command that replays `seed` step by step, as a failing seed's report prints it.
pub fn replay_command(seed: u64, options: &Options) -> String {
    let mut command = format!("scripts/simulate --seed {seed} --trace");
    if options.steps != DEFAULT_STEPS {
        command.push_str(&format!(" --steps {}", options.steps));
    }
    if options.hosts > 1 {
        command.push_str(&format!(" --hosts {}", options.hosts));
    }
    if let Some(flaw) = options.flaw {
        command.push_str(&format!(" --flaw {}", flaw.name()));
    }
    command
}
