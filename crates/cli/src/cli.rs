//! The command line, as clap sees it.
//!
//! Configuration values given as flags are kept as text here and checked by
//! [`crate::settings`], exactly as values from the environment and the configuration file are,
//! so that a bad value gives the same one-line message whatever its source.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The version and the commit the binary was built from: `0.1.0 (commit 4974314a1b2c)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GALAXY_RUNTIME_COMMIT"),
    ")"
);

/// Keeps game-engine containers and their runtime records in agreement.
///
/// Configuration comes from flags, then `BACKEND_RUNTIME_*` environment variables, then an
/// optional TOML file (`--config`), then the defaults. `docs/operations.md` describes every
/// field, log line, metric and finding.
#[derive(Debug, Parser)]
#[command(name = "galaxy-runtime", version = VERSION, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reconcile loop until Ctrl-C or SIGTERM: the main job.
    ///
    /// A pass at start-up, then one every `reconcile_interval`, and one soon after every Docker
    /// event of a managed container (create, start, die, destroy, rename). Each change is one
    /// log line and each pass one summary line. On Ctrl-C or SIGTERM the pass in flight
    /// finishes, then the process exits 0; a second Ctrl-C exits at once.
    ///
    /// The SQLite database (default `sqlite://galaxy-runtime.db`) is created and migrated on
    /// first use; a PostgreSQL one only with `--migrate` (otherwise run `galaxy-runtime migrate`
    /// first). With a PostgreSQL database, only the replica holding the leader lock applies
    /// changes; the others observe and wait.
    Run(RunArgs),
    /// Run one pass now and print its plan and its report.
    ///
    /// Observes, plans, prints the plan (as `plan` does) and applies exactly that plan, then
    /// prints what was applied. Exits 1 when the pass failed (an unreachable service, an action
    /// that failed), 0 otherwise. With `--dry-run` nothing is written.
    Reconcile(ReconcileArgs),
    /// Observe once and print the scenario JSON of the observation, writing nothing.
    ///
    /// The scenario holds the managed containers, the runtime records, the projections of
    /// unrecorded games, the probe outcomes, the time and the configuration, so that
    /// `galaxy-runtime observe | galaxy-runtime plan --scenario -` replays the pass offline.
    Observe(ObserveArgs),
    /// Print the plan of a recorded or hand-written observation (a scenario), without touching
    /// anything.
    ///
    /// The scenario is the JSON that `galaxy-runtime observe` prints: `now`, `config`,
    /// `containers`, `records`, `games` and `probes`. Bad input exits with status 2 and a
    /// message naming the field and where it is.
    Plan(PlanArgs),
    /// Print the runtime records as a table: game, status, container, engine version, probe
    /// failures and age of the last snapshot.
    ///
    /// Colours on a terminal, plain text when piped; `--format json` for scripts.
    Status(StatusArgs),
    /// Maintain the game projections (`game_projections`) for setups without a lobby: demos,
    /// tests, small deployments.
    ///
    /// A container whose game has a projection but no runtime record is adopted by the next
    /// pass; one whose game has none is only reported (`orphan_container`).
    Games(GamesArgs),
    /// List the lobby events of the outbox with their delivery state, attempts and last
    /// error; `events redeliver ID` queues one again.
    ///
    /// Each event is delivered at least once, in commit order per game, with the same event id
    /// every time; `--pending` shows the ones the lobby has not accepted yet.
    Events(crate::events_cmd::EventsArgs),
    /// Create or upgrade the database's schema (`--check`: only say whether it is up to date).
    ///
    /// The only command that changes a PostgreSQL schema, but for `run --migrate`: read-only
    /// commands never do, and the others refuse a schema that is not up to date. Exits 1 when
    /// `--check` finds the schema missing, older or newer than this build's.
    Migrate(crate::migrate_cmd::MigrateArgs),
    /// Print a shell completion script: `galaxy-runtime completions bash >
    /// /etc/bash_completion.d/galaxy-runtime`.
    Completions(crate::package_cmd::CompletionsArgs),
    /// Print the manual page (roff): `galaxy-runtime man > galaxy-runtime.1`.
    Man,
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

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
    /// The reconciler's configuration.
    #[command(flatten)]
    pub reconciler: ReconcilerFlags,
    /// Serve Prometheus metrics, health and readiness at http://ADDR/metrics, /healthz and
    /// /readyz, such as `127.0.0.1:9464` (loopback unless the metrics must be scraped from
    /// elsewhere) [env: BACKEND_RUNTIME_METRICS_ADDR; file: [metrics] addr; default: not
    /// served].
    #[arg(
        long = "http-addr",
        visible_alias = "metrics-addr",
        value_name = "ADDR",
        help_heading = "Logging and metrics"
    )]
    pub metrics_addr: Option<String>,
    /// Where the lobby's events go.
    #[command(flatten)]
    pub lobby: crate::lobby::LobbyFlags,
    /// Apply the pending migrations of a PostgreSQL database before starting (SQLite is
    /// migrated anyway).
    #[arg(long)]
    pub migrate: bool,
}

/// Arguments of `reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Run exactly one pass (the only mode; the flag says so in scripts).
    #[arg(long, required = true)]
    pub once: bool,
    /// Observe and plan, print the plan, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How to print the plan and the report: text for people, or one JSON object
    /// `{"now", "dry_run", "plan", "report", "error"}`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
    /// The reconciler's configuration.
    #[command(flatten)]
    pub reconciler: ReconcilerFlags,
}

/// Arguments of `observe`.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
    /// The reconciler's configuration.
    #[command(flatten)]
    pub reconciler: ReconcilerFlags,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How to print the records: a table, or a JSON array (with `--watch`: one JSON object per
    /// added, changed or gone record and line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Read the records again every `--interval` until Ctrl-C, marking what changed since the
    /// last draw: on a terminal the table is redrawn in place (`+` added, `*` changed, gone
    /// records listed below it); piped, the changed rows are appended under a time stamp.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// How often `--watch` reads the records.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = watch_interval, requires = "watch")]
    pub interval: std::time::Duration,
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Arguments of `games`.
#[derive(Debug, Args)]
pub struct GamesArgs {
    /// What to do with the projections.
    #[command(subcommand)]
    pub action: GamesAction,
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// The `games` subcommands.
#[derive(Debug, Subcommand)]
pub enum GamesAction {
    /// Add a game's projection, or replace it.
    Add {
        /// The game id (a UUID).
        game_id: String,
        /// The game's turn schedule (a cron expression); copied into the record on adoption.
        #[arg(long, value_name = "SCHEDULE", default_value = "")]
        turn_schedule: String,
    },
    /// List every projection.
    List {
        /// A table, or a JSON array.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Remove a game's projection (its runtime record, if any, stays).
    Remove {
        /// The game id (a UUID).
        game_id: String,
    },
}

/// Where the database is, the configuration file and logging: shared by every command but
/// `plan`.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Database, configuration file and logging")]
pub struct CommonFlags {
    /// A TOML configuration file: reconciler fields at the top level, then the sections
    /// `[database]`, `[docker]`, `[log]`, `[metrics]` and `[lobby]` (see docs/operations.md)
    /// [env: BACKEND_RUNTIME_CONFIG_FILE].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The database: `sqlite://PATH` (created and migrated on first use) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// [env: BACKEND_RUNTIME_DATABASE_URL; file: [database] url; default:
    /// sqlite://galaxy-runtime.db].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// A file whose first line is the PostgreSQL password, so that it stands neither in the
    /// URL nor on the command line (a warning when other users may read it)
    /// [env: BACKEND_RUNTIME_DATABASE_PASSWORD_FILE; file: [database] password_file].
    #[arg(long, value_name = "FILE", global = true)]
    pub database_password_file: Option<PathBuf>,
    /// Log lines for people (`text`) or one JSON object per line (`json`)
    /// [env: BACKEND_RUNTIME_LOG_FORMAT; file: [log] format; default: text].
    #[arg(
        long,
        value_name = "FORMAT",
        help_heading = "Logging and metrics",
        global = true
    )]
    pub log_format: Option<String>,
    /// The most detailed log lines shown: `error`, `warn`, `info`, `debug` or `trace`
    /// [env: BACKEND_RUNTIME_LOG_LEVEL; file: [log] level; default: info for run, warn
    /// otherwise].
    #[arg(
        long,
        value_name = "LEVEL",
        help_heading = "Logging and metrics",
        global = true
    )]
    pub log_level: Option<String>,
}

/// The reconciler's configuration fields, one flag each, plus the Docker daemon.
///
/// Each flag overrides `BACKEND_RUNTIME_<FIELD>` and the field of the configuration file.
/// Durations are written `500ms`, `30s`, `2m`, `1h`.
#[derive(Debug, Default, Args)]
#[command(
    next_help_heading = "Reconciler configuration (overrides BACKEND_RUNTIME_<FIELD> and the file)"
)]
pub struct ReconcilerFlags {
    /// The Docker daemon: `unix:///var/run/docker.sock`, `tcp://HOST:2375`; or, repeated,
    /// `NAME=URL` for each of several hosts. `swarm+URL` is a Docker Swarm manager
    /// (`eu=swarm+unix:///var/run/docker.sock`) [env: DOCKER_HOST, or
    /// BACKEND_RUNTIME_DOCKER_HOSTS for several; file: [docker] host, or [[docker.hosts]];
    /// default: the local socket].
    #[arg(long, value_name = "HOST")]
    pub docker_host: Vec<String>,
    /// Time between periodic passes [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub reconcile_interval: Option<String>,
    /// Up to this much random delay added to each periodic pass [default: 0s].
    #[arg(long, value_name = "DURATION")]
    pub reconcile_jitter: Option<String>,
    /// Game containers are named this prefix followed by the game id [default: galaxy-game-].
    #[arg(long, value_name = "PREFIX")]
    pub container_name_prefix: Option<String>,
    /// The label that marks containers as managed [default: galaxy.managed].
    #[arg(long, value_name = "LABEL")]
    pub managed_label: Option<String>,
    /// The value of the managed label that marks containers as ours [default: true].
    #[arg(long, value_name = "VALUE")]
    pub managed_label_value: Option<String>,
    /// The label carrying the engine version [default: galaxy.engine_version].
    #[arg(long, value_name = "LABEL")]
    pub engine_version_label: Option<String>,
    /// The port engines serve HTTP on [default: 8080].
    #[arg(long, value_name = "PORT")]
    pub engine_port: Option<String>,
    /// The Docker network of game containers [default: galaxy].
    #[arg(long, value_name = "NETWORK")]
    pub docker_network: Option<String>,
    /// Consecutive failed probes before a record becomes engine_unreachable, at least 1
    /// [default: 3].
    #[arg(long, value_name = "N")]
    pub failure_threshold: Option<String>,
    /// How long a starting game may lack a container or an answering engine [default: 2m].
    #[arg(long, value_name = "DURATION")]
    pub start_grace: Option<String>,
    /// The removal guard trips only above this many removals in one pass [default: 10].
    #[arg(long, value_name = "N")]
    pub removal_guard_min: Option<String>,
    /// … and only when they exceed this fraction (0 to 1) of the live records [default: 0.5].
    #[arg(long, value_name = "FRACTION")]
    pub removal_guard_fraction: Option<String>,
    /// The longest listing of one Docker host's containers may take; a slower host counts as
    /// failed to list [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub docker_list_timeout: Option<String>,
    /// The longest one engine probe may take [default: 2s].
    #[arg(long, value_name = "DURATION")]
    pub probe_timeout: Option<String>,
    /// At most this many engine probes at once, at least 1 [default: 64].
    #[arg(long, value_name = "N")]
    pub probe_concurrency: Option<String>,
    /// The probes of periodic full passes start evenly over this fraction (0 to less than 1) of
    /// the interval [default: 0.5].
    #[arg(long, value_name = "FRACTION")]
    pub probe_spread: Option<String>,
    /// The path of the engine's status resource [default: /status].
    #[arg(long, value_name = "PATH")]
    pub engine_status_path: Option<String>,
    /// How engines are reached: `hostname` (the record's endpoint, for a process inside the
    /// Docker network), `container_ip` (the container's address on docker_network, for a
    /// process on the Docker host) or `published_port` (the host's address and the port Docker
    /// published engine_port on, for a process on none of the hosts' networks) [default:
    /// hostname].
    #[arg(long, value_name = "HOW")]
    pub engine_addressing: Option<String>,
    /// Larger engine status bodies are a failed probe [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub engine_max_body_bytes: Option<String>,
    /// At most this many idle engine connections kept open in all; 0 keeps none [default: 256].
    #[arg(long, value_name = "N")]
    pub engine_pool_max_idle: Option<String>,
    /// At most this many idle connections kept per engine; 0 keeps none [default: 1].
    #[arg(long, value_name = "N")]
    pub engine_pool_max_idle_per_engine: Option<String>,
    /// Docker events closer together than this wake the loop once [default: 500ms].
    #[arg(long, value_name = "DURATION")]
    pub event_debounce: Option<String>,
    /// Quick passes (on Docker events) start at least this long after each other
    /// [default: 200ms].
    #[arg(long, value_name = "DURATION")]
    pub quick_pass_min_gap: Option<String>,
    /// After a failed pass worth retrying, try again after about this long, doubling up to the
    /// interval [default: 1s].
    #[arg(long, value_name = "DURATION")]
    pub retry_backoff: Option<String>,
    /// The statuses the lobby is told of, comma-separated, among removed, engine_unreachable,
    /// running, stopped [default: removed].
    #[arg(long, value_name = "STATUSES")]
    pub lobby_statuses: Option<String>,
    /// The longest one delivery of a lobby event may take [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub lobby_timeout: Option<String>,
    /// Failed deliveries are retried with a backoff growing up to this [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub lobby_retry_max: Option<String>,
    /// How often the relay looks for due lobby events when nothing woke it [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub outbox_sweep: Option<String>,
    /// How long delivered lobby events are kept before they are pruned [default: 168h].
    #[arg(long, value_name = "DURATION")]
    pub outbox_retention: Option<String>,
}

impl ReconcilerFlags {
    /// Every configuration field given as a flag, as `(field, value)`, in declaration order.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let all: [(&'static str, &Option<String>); 29] = [
            ("reconcile_interval", &self.reconcile_interval),
            ("reconcile_jitter", &self.reconcile_jitter),
            ("container_name_prefix", &self.container_name_prefix),
            ("managed_label", &self.managed_label),
            ("managed_label_value", &self.managed_label_value),
            ("engine_version_label", &self.engine_version_label),
            ("engine_port", &self.engine_port),
            ("docker_network", &self.docker_network),
            ("docker_list_timeout", &self.docker_list_timeout),
            ("failure_threshold", &self.failure_threshold),
            ("start_grace", &self.start_grace),
            ("removal_guard_min", &self.removal_guard_min),
            ("removal_guard_fraction", &self.removal_guard_fraction),
            ("probe_timeout", &self.probe_timeout),
            ("probe_concurrency", &self.probe_concurrency),
            ("probe_spread", &self.probe_spread),
            ("engine_status_path", &self.engine_status_path),
            ("engine_addressing", &self.engine_addressing),
            ("engine_max_body_bytes", &self.engine_max_body_bytes),
            ("engine_pool_max_idle", &self.engine_pool_max_idle),
            (
                "engine_pool_max_idle_per_engine",
                &self.engine_pool_max_idle_per_engine,
            ),
            ("event_debounce", &self.event_debounce),
            ("quick_pass_min_gap", &self.quick_pass_min_gap),
            ("retry_backoff", &self.retry_backoff),
            ("lobby_statuses", &self.lobby_statuses),
            ("lobby_timeout", &self.lobby_timeout),
            ("lobby_retry_max", &self.lobby_retry_max),
            ("outbox_sweep", &self.outbox_sweep),
            ("outbox_retention", &self.outbox_retention),
        ];
        all.into_iter()
            .filter_map(|(field, value)| value.as_deref().map(|v| (field, v)))
            .collect()
    }

    /// The names of every configuration field that has a flag.
    #[cfg(test)]
    pub fn field_names() -> Vec<&'static str> {
        let every = Self {
            docker_host: Vec::new(),
            reconcile_interval: Some(String::new()),
            reconcile_jitter: Some(String::new()),
            container_name_prefix: Some(String::new()),
            managed_label: Some(String::new()),
            managed_label_value: Some(String::new()),
            engine_version_label: Some(String::new()),
            engine_port: Some(String::new()),
            docker_network: Some(String::new()),
            docker_list_timeout: Some(String::new()),
            failure_threshold: Some(String::new()),
            start_grace: Some(String::new()),
            removal_guard_min: Some(String::new()),
            removal_guard_fraction: Some(String::new()),
            probe_timeout: Some(String::new()),
            probe_concurrency: Some(String::new()),
            probe_spread: Some(String::new()),
            engine_status_path: Some(String::new()),
            engine_addressing: Some(String::new()),
            engine_max_body_bytes: Some(String::new()),
            engine_pool_max_idle: Some(String::new()),
            engine_pool_max_idle_per_engine: Some(String::new()),
            event_debounce: Some(String::new()),
            quick_pass_min_gap: Some(String::new()),
            retry_backoff: Some(String::new()),
            lobby_statuses: Some(String::new()),
            lobby_timeout: Some(String::new()),
            lobby_retry_max: Some(String::new()),
            outbox_sweep: Some(String::new()),
            outbox_retention: Some(String::new()),
        };
        every.fields().into_iter().map(|(f, _)| f).collect()
    }
}

/// `--interval`: a duration (`2s`, `500ms`) above zero.
fn watch_interval(text: &str) -> Result<std::time::Duration, String> {
    match galaxy_runtime_model::duration::parse(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_configuration_field_has_a_flag() {
        let fields = galaxy_runtime_model::Config::field_names();
        assert_eq!(ReconcilerFlags::field_names(), fields);
    }

    #[test]
    fn flags_reach_the_fields() {
        let cli = Cli::try_parse_from([
            "galaxy-runtime",
            "reconcile",
            "--once",
            "--probe-concurrency",
            "1",
            "--engine-addressing=container_ip",
        ])
        .unwrap();
        let Command::Reconcile(args) = cli.command else {
            panic!("reconcile expected");
        };
        assert_eq!(
            args.reconciler.fields(),
            vec![
                ("probe_concurrency", "1"),
                ("engine_addressing", "container_ip")
            ]
        );
    }
}
