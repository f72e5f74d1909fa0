//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps game-engine containers and their runtime records in agreement.
#[derive(Debug, Parser)]
#[command(name = "galaxy-runtime", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan of a recorded or hand-written observation (a scenario), without touching
    /// anything.
    ///
    /// The scenario is the JSON that `galaxy-runtime observe` prints: `now`, `config`,
    /// `containers`, `records`, `games` and `probes`. Bad input exits with status 2 and a
    /// message naming the field and where it is.
    Plan(PlanArgs),
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The scenario file; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: one line per action, grouped by kind, counts at the end.
    Text,
    /// The plan JSON of the contract.
    Json,
}
