//! `galaxy-runtime-simulate`: runs seeds of the deterministic simulation (through
//! `scripts/simulate`, which builds it with `--release`).
//!
//! ```text
//! galaxy-runtime-simulate --seeds N [--from S] [--steps K] [--hosts H] [--threads T] [--flaw F]
//! galaxy-runtime-simulate --seed S [--trace] [--steps K] [--hosts H] [--flaw F]
//! ```
//!
//! With `--seeds`, the last line is `N/N seeds hold`, or the failing seeds with the command that
//! replays each, and the exit status 1. Bad arguments exit 2 naming what is wrong.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use galaxy_runtime_simulation::{
    DEFAULT_STEPS, Flaw, MAX_HOSTS, Options, Outcome, Stats, replay_command, run,
};

/// Seeds between two progress lines of a long run.
const PROGRESS_EVERY: u64 = 10_000;

const USAGE: &str = "usage: galaxy-runtime-simulate --seeds N [--from S] [--steps K] [--hosts H] [--threads T] [--flaw F]\n       galaxy-runtime-simulate --seed S [--trace] [--steps K] [--hosts H] [--flaw F]\n(H: Docker hosts, 1 to 8, default 1; F: status-only-compare, no-fence or down-host-lists-empty)";

#[derive(Debug, Default)]
struct Args {
    seeds: Option<u64>,
    from: u64,
    seed: Option<u64>,
    trace: bool,
    steps: Option<u32>,
    threads: Option<usize>,
    hosts: Option<usize>,
    flaw: Option<Flaw>,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag} takes a non-negative whole number, not {value:?}"))
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--seeds" => args.seeds = Some(number("--seeds", words.next())?),
            "--from" => args.from = number("--from", words.next())?,
            "--seed" => args.seed = Some(number("--seed", words.next())?),
            "--steps" => args.steps = Some(number("--steps", words.next())?),
            "--threads" => {
                let threads: usize = number("--threads", words.next())?;
                if threads == 0 {
                    return Err("--threads must be at least 1".to_owned());
                }
                args.threads = Some(threads);
            }
            "--hosts" => {
                let hosts: usize = number("--hosts", words.next())?;
                if !(1..=MAX_HOSTS).contains(&hosts) {
                    return Err(format!("--hosts takes 1 to {MAX_HOSTS}, not {hosts}"));
                }
                args.hosts = Some(hosts);
            }
            "--trace" => args.trace = true,
            "--flaw" => {
                let value = words.next().ok_or("--flaw needs a value")?;
                args.flaw = Some(Flaw::parse(&value).ok_or_else(|| {
                    format!(
                        "unknown flaw {value:?}: choose status-only-compare, no-fence or \
                         down-host-lists-empty"
                    )
                })?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (args.seeds, args.seed) {
        (Some(_), Some(_)) => Err("give --seeds N or --seed S, not both".to_owned()),
        (None, None) => Err("give --seeds N (a range) or --seed S (one seed)".to_owned()),
        (Some(_), None) if args.trace => {
            Err("--trace replays one seed: use it with --seed S".to_owned())
        }
        _ if args.flaw == Some(Flaw::DownHostListsEmpty) && args.hosts.unwrap_or(1) < 2 => {
            Err("--flaw down-host-lists-empty needs --hosts 2 or more".to_owned())
        }
        (Some(n), None) if args.from.checked_add(n).is_none() => Err(format!(
            "--from {} with --seeds {n} runs past the last seed",
            args.from
        )),
        _ => Ok(args),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("galaxy-runtime-simulate: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        steps: args.steps.unwrap_or(DEFAULT_STEPS),
        flaw: args.flaw,
        trace: args.trace,
        hosts: args.hosts.unwrap_or(1),
    };
    match args.seed {
        Some(seed) => one(seed, &options),
        None => many(&args, &options),
    }
}

fn one(seed: u64, options: &Options) -> ExitCode {
    let outcome = run(seed, options);
    for line in &outcome.trace {
        println!("{line}");
    }
    println!("{}", summary(&outcome.stats));
    match &outcome.violation {
        None => {
            println!("seed {seed} holds");
            ExitCode::SUCCESS
        }
        Some(violation) => {
            println!("seed {seed} fails at {violation}");
            ExitCode::FAILURE
        }
    }
}

fn summary(stats: &Stats) -> String {
    format!(
        "{} passes ({} failed, {} lost the lock), {} conflicts, {} removals ({} beside another running container of the game), \
         {} removals skipped, \
         {} crashes, {} sessions ended, {} host outages, {} host_unavailable findings, {} jobs, \
         {} calls decided, {} lobby deliveries",
        stats.passes,
        stats.failed_passes,
        stats.leadership_lost,
        stats.conflicts,
        stats.removals,
        stats.removed_beside_running,
        stats.skipped_removals,
        stats.crashes,
        stats.sessions_ended,
        stats.host_outages,
        stats.hosts_unavailable,
        stats.jobs,
        stats.calls,
        stats.deliveries
    )
}

fn many(args: &Args, options: &Options) -> ExitCode {
    let total = args.seeds.unwrap_or(0);
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let next = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let totals: Arc<Mutex<Stats>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, failures, totals) = (next.clone(), failures.clone(), totals.clone());
            let finished = finished.clone();
            let options = options.clone();
            let from = args.from;
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return;
                    }
                    let seed = from + i;
                    let outcome = std::panic::catch_unwind(|| run(seed, &options))
                        .unwrap_or_else(|panic| panicked(seed, panic.as_ref()));
                    add(
                        &mut totals.lock().unwrap_or_else(|e| e.into_inner()),
                        &outcome.stats,
                    );
                    // A long soak says how far it got, so that stopping it still gives figures.
                    let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
                    if done.is_multiple_of(PROGRESS_EVERY) {
                        let failed = failures.lock().unwrap_or_else(|e| e.into_inner()).len();
                        let minutes = started.elapsed().as_secs_f64() / 60.0;
                        eprintln!(
                            "{done} seeds run, {failed} failing, {minutes:.1} minutes, {:.0} seeds \
                             per minute",
                            done as f64 / minutes.max(1e-9)
                        );
                    }
                    if !outcome.holds() {
                        eprintln!(
                            "seed {seed} fails at {}",
                            outcome
                                .violation
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default()
                        );
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(outcome);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed();
    let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    failures.sort_by_key(|o| o.seed);
    let totals = *totals.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "{total} seeds of {} steps in {:.1}s on {threads} threads ({:.0} seeds per minute): {}",
        options.steps,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9) * 60.0,
        summary(&totals)
    );
    for outcome in &failures {
        println!(
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
    let held = total - failures.len() as u64;
    println!("{held}/{total} seeds hold");
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A seed whose run panicked (outside a pass, which reports its own panics) fails.
fn panicked(seed: u64, panic: &(dyn std::any::Any + Send)) -> Outcome {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".to_owned());
    Outcome {
        seed,
        violation: Some(galaxy_runtime_simulation::Violation {
            step: 0,
            invariant: "the simulation runs",
            detail: format!("it panicked: {message}"),
        }),
        stats: Stats::default(),
        trace: Vec::new(),
    }
}

fn add(totals: &mut Stats, stats: &Stats) {
    totals.passes += stats.passes;
    totals.failed_passes += stats.failed_passes;
    totals.leadership_lost += stats.leadership_lost;
    totals.conflicts += stats.conflicts;
    totals.skipped_removals += stats.skipped_removals;
    totals.removals += stats.removals;
    totals.removed_beside_running += stats.removed_beside_running;
    totals.deliveries += stats.deliveries;
    totals.crashes += stats.crashes;
    totals.sessions_ended += stats.sessions_ended;
    totals.host_outages += stats.host_outages;
    totals.hosts_unavailable += stats.hosts_unavailable;
    totals.jobs += stats.jobs;
    totals.calls += stats.calls;
}
