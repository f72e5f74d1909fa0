//! `galaxy-runtime`: the command-line tool of galaxy-runtime, the outermost layer.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli (this crate) / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store, memory)
//! ```
//!
//! `run` is the main job: the reconcile loop against the local Docker engine and a database
//! (SQLite by default, PostgreSQL in production), woken early by Docker events, with its lobby
//! events delivered to a webhook (`--lobby-url`) or logged. `reconcile --once`, `observe` and
//! `plan` run, record and replay single passes; `status` and `games` show the records and
//! maintain the game projections; `events` lists the lobby events and redelivers one.
//!
//! Exit status: 0 on success, 1 when the work failed (a service unreachable, a pass that
//! failed), 2 for bad input (arguments, configuration, scenario documents). Every error is one
//! line on standard error saying what to do; a backtrace follows only when `RUST_BACKTRACE`
//! asks for one.

// The argument structs' doc comments are clap's help text, where `[env: …; file: [section] key]`
// is plain text for people, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

mod allocator;
mod cli;
mod connect;
mod events_cmd;
mod games_cmd;
mod hosts;
mod http;
mod lobby;
mod logger;
mod migrate_cmd;
mod observe_cmd;
mod package_cmd;
mod plan_cmd;
mod progress;
mod reconcile_cmd;
mod render;
mod run_cmd;
mod secrets;
mod settings;
mod status_cmd;

use std::process::ExitCode;

use clap::Parser;
use log::LevelFilter;

use crate::cli::{Cli, Command, CommonFlags, ReconcilerFlags};
use crate::logger::Logger;
use crate::settings::{Flags, Settings};

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
    allocator::keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan_cmd::run(&args),
        Command::Completions(args) => package_cmd::completions(&args),
        Command::Man => package_cmd::man(),
        command => with_runtime(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Errors quote foreign text (a parser's message quotes its input): nothing in
            // them may act on the terminal.
            eprintln!(
                "galaxy-runtime: {}",
                galaxy_runtime_model::text::escape_controls(&format!("{error:#}"))
            );
            let bad_input = error.downcast_ref::<BadInput>().is_some();
            // Bad input is not a bug: where it happened in the code helps nobody.
            let wants_backtrace =
                std::env::var_os("RUST_BACKTRACE").is_some_and(|v| !v.is_empty() && v != "0");
            if wants_backtrace && !bad_input {
                eprintln!("{}", error.backtrace());
            }
            if bad_input {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The commands that talk to Docker or a database: settings first (nothing is touched when
/// they are bad), then the logger, then the command on a tokio runtime.
fn with_runtime(command: Command) -> anyhow::Result<()> {
    let no_reconciler_flags = CommonFlags::default();
    let lobby = match &command {
        Command::Run(a) => Some(&a.lobby),
        _ => None,
    };
    let (common, reconciler, metrics_addr, default_level): (
        &CommonFlags,
        Option<&ReconcilerFlags>,
        Option<&str>,
        LevelFilter,
    ) = match &command {
        Command::Run(a) => (
            &a.common,
            Some(&a.reconciler),
            a.metrics_addr.as_deref(),
            LevelFilter::Info,
        ),
        Command::Reconcile(a) => (&a.common, Some(&a.reconciler), None, LevelFilter::Warn),
        Command::Observe(a) => (&a.common, Some(&a.reconciler), None, LevelFilter::Warn),
        Command::Status(a) => (&a.common, None, None, LevelFilter::Warn),
        Command::Games(a) => (&a.common, None, None, LevelFilter::Warn),
        Command::Events(a) => (&a.common, None, None, LevelFilter::Warn),
        Command::Migrate(a) => (&a.common, None, None, LevelFilter::Info),
        Command::Plan(_) | Command::Completions(_) | Command::Man => {
            (&no_reconciler_flags, None, None, LevelFilter::Warn)
        }
    };
    let settings = Settings::load(
        Flags {
            common,
            reconciler,
            metrics_addr,
            lobby,
        },
        &|name| std::env::var_os(name),
    )?;
    Logger::install(
        settings.log_format,
        settings.log_level.unwrap_or(default_level),
    );
    for warning in &settings.warnings {
        log::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        match &command {
            Command::Run(args) => run_cmd::run(settings, args.migrate).await,
            Command::Reconcile(args) => reconcile_cmd::run(args, settings).await,
            Command::Observe(_) => observe_cmd::run(settings).await,
            Command::Status(args) => status_cmd::run(args, settings).await,
            Command::Games(args) => games_cmd::run(args, settings).await,
            Command::Events(args) => events_cmd::run(args, settings).await,
            Command::Migrate(args) => migrate_cmd::run(args, settings).await,
            Command::Plan(args) => plan_cmd::run(args),
            Command::Completions(args) => package_cmd::completions(args),
            Command::Man => package_cmd::man(),
        }
    })
}
