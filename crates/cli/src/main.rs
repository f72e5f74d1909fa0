//! `galaxy-runtime`: the command-line tool of galaxy-runtime, the outermost layer.
//!
//! It reads scenarios and prints plans (`plan`); later commands run the reconciler against
//! Docker and a database. Exit status: 0 on success, 1 when the work failed, 2 for bad input
//! (arguments, configuration, scenario documents).

mod cli;
mod plan_cmd;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// An error the user caused: bad arguments, a bad scenario, a bad configuration value.
#[derive(Debug)]
pub(crate) struct BadInput(pub(crate) String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("galaxy-runtime: {error:#}");
            if error.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
