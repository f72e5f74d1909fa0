//! Connecting to Docker and the database and building the reconciler, with errors that say
//! what to do.
//!
//! Docker is always reached first: when it is unreachable, the command stops before the
//! database is opened (and, for the SQLite default, before its file is created).

use std::sync::Arc;

use anyhow::anyhow;
use galaxy_runtime_docker::{ConnectedHost, DockerConfig};
use galaxy_runtime_engine_http::HttpEngine;
use galaxy_runtime_model::ContainerSummary;
use galaxy_runtime_ports::noop::{NoCache, NoScheduler};
use galaxy_runtime_ports::{DockerPort, LabelFilter, LeaderLock, PortError, PortResult};
use galaxy_runtime_reconciler::{ProbeProgress, Reconciler};
use galaxy_runtime_store::{Backend, SchemaPolicy, Store, StoreLeaderLock};
use log::warn;

use crate::BadInput;
use crate::settings::{Settings, one_line};

/// A port error and its causes as one line, without repeating a cause the message already
/// quotes.
pub fn describe(error: &PortError) -> String {
    one_line(&galaxy_runtime_ports::error_chain(error))
}

/// One Docker host of the command: its name (`""` for the one daemon without named hosts),
/// its port, and its adapter when it answered at start-up (for its event watcher).
pub struct Daemon {
    /// The host's name.
    pub name: String,
    /// What the reconciler lists and inspects through.
    pub port: Arc<dyn DockerPort>,
    /// The connected host (a daemon or a Swarm manager); `None` for a host that did not answer
    /// at start-up.
    pub adapter: Option<ConnectedHost>,
    /// The daemon as log lines name it.
    pub daemon: String,
}

/// A named Docker host that did not answer at start-up: each call first tries to connect
/// again, so the host rejoins the fleet as soon as its daemon answers, without a restart.
struct LateDaemon {
    config: DockerConfig,
    adapter: std::sync::Mutex<Option<Arc<dyn DockerPort>>>,
}

impl LateDaemon {
    async fn adapter(&self) -> PortResult<Arc<dyn DockerPort>> {
        let connected = self
            .adapter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(adapter) = connected {
            return Ok(adapter);
        }
        let adapter = ConnectedHost::connect(self.config.clone()).await?.port();
        *self
            .adapter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(adapter.clone());
        Ok(adapter)
    }
}

#[async_trait::async_trait]
impl DockerPort for LateDaemon {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        self.adapter().await?.list_managed(filter).await
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.adapter().await?.inspect(container_id).await
    }

    fn published_address(&self) -> Option<String> {
        // From the settings alone: the host need not answer to say where it publishes.
        self.config.published_address()
    }
}

/// The Docker daemons of the settings. The one daemon without named hosts is checked to
/// answer; named hosts (CONTRACT §6) are connected to at once, and one that does not answer
/// yet is used all the same (its listings fail and its records stay unobserved until it
/// answers), so that one host down never keeps the others from being reconciled.
pub async fn docker(settings: &Settings) -> anyhow::Result<Vec<Daemon>> {
    if settings.docker_hosts.is_empty() {
        let adapter = one_daemon(settings).await?;
        return Ok(vec![Daemon {
            name: String::new(),
            port: adapter.port(),
            daemon: adapter.daemon().to_owned(),
            adapter: Some(adapter),
        }]);
    }
    let connecting = settings.docker_hosts.iter().map(|host| async move {
        let config = host.docker_config(&settings.docker);
        let daemon = config.describe();
        match ConnectedHost::connect(config.clone()).await {
            Ok(adapter) => Ok(Daemon {
                name: host.name.clone(),
                port: adapter.port(),
                daemon,
                adapter: Some(adapter),
            }),
            Err(error @ PortError::Invalid { .. }) => Err(anyhow!(BadInput(format!(
                "cannot use Docker host {:?}: {}",
                host.name,
                describe(&error)
            )))),
            Err(error) => {
                // Not only a daemon that is down: a TLS handshake it refuses lands here too,
                // and a certificate put right mends it without a restart.
                warn!(
                    "Docker host {:?} cannot be used yet: {}; its records stay unobserved \
                     until it can",
                    host.name,
                    describe(&error)
                );
                Ok(Daemon {
                    name: host.name.clone(),
                    port: Arc::new(LateDaemon {
                        config,
                        adapter: std::sync::Mutex::new(None),
                    }),
                    daemon,
                    adapter: None,
                })
            }
        }
    });
    futures_util::future::join_all(connecting)
        .await
        .into_iter()
        .collect()
}

/// How the daemons are named in a log line: `socket /var/run/docker.sock (default)`, or
/// `a: socket /a.sock, b: tcp://10.0.0.2:2375`.
pub fn describe_daemons(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| {
            if d.name.is_empty() {
                d.daemon.clone()
            } else {
                format!("{}: {}", d.name, d.daemon)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one Docker daemon (or Swarm manager) of the settings, checked to answer.
async fn one_daemon(settings: &Settings) -> anyhow::Result<ConnectedHost> {
    ConnectedHost::connect(settings.docker.clone())
        .await
        .map_err(|error| match error {
            // The adapter's message names the host as `DockerConfig::describe` does.
            PortError::Invalid { .. } => {
                anyhow!(BadInput(format!("cannot use Docker: {}", describe(&error))))
            }
            // A refused TLS handshake names the file to check; starting a daemon would not help.
            _ if settings.docker.uses_tls() && describe(&error).contains(": TLS: ") => {
                anyhow!("cannot reach Docker: {}.", describe(&error))
            }
            _ => anyhow!(
                "cannot reach Docker: {}. Start the daemon, or set DOCKER_HOST (or \
                 --docker-host) to where it listens.",
                describe(&error)
            ),
        })
}

/// The database of the settings for a command that only reads: its schema is never changed
/// (not even a SQLite file created); a database without the schema this build knows, or with an
/// older one, is an error saying to run `galaxy-runtime migrate`. Every read-only command opens
/// the database through this one function.
pub async fn store(settings: &Settings) -> anyhow::Result<Store> {
    open(settings, SchemaPolicy::Require).await
}

/// The database of the settings for a command that writes: the embedded SQLite is migrated by
/// itself (so that the quick start needs no extra step); PostgreSQL only when
/// `migrate_postgres` (`run --migrate`), since a newer build pointed at production must not
/// change the schema under running replicas. Otherwise its schema must be up to date.
pub async fn store_for_writing(
    settings: &Settings,
    migrate_postgres: bool,
) -> anyhow::Result<Store> {
    let policy = match settings.store.backend() {
        Ok(Backend::Sqlite(_)) => SchemaPolicy::Migrate,
        _ if migrate_postgres => SchemaPolicy::Migrate,
        _ => SchemaPolicy::Require,
    };
    open(settings, policy).await
}

/// Opens the database as `policy` says, with an error that says what to do.
async fn open(settings: &Settings, policy: SchemaPolicy) -> anyhow::Result<Store> {
    Store::connect_with(&settings.store, policy)
        .await
        .map_err(|error| store_error(settings, &error))
}

/// A failure to open the database of the settings, as one line saying what to do.
pub fn store_error(settings: &Settings, error: &PortError) -> anyhow::Error {
    let hint = match (error, settings.store.backend()) {
        // The store's own message says what to do (migrate, or upgrade this build).
        (PortError::Invalid { .. }, _) => String::new(),
        _ if describe(error).contains("TLS handshake") => " Check the server's certificate \
              against the URL: sslmode, sslrootcert (its CA) and, for verify-full, the host \
              name the certificate was made for."
            .to_owned(),
        (_, Ok(Backend::Sqlite(path))) => format!(
            " Check that the directory of {} exists and is writable, or choose another file \
             with --database-url sqlite://PATH (or BACKEND_RUNTIME_DATABASE_URL).",
            path.display()
        ),
        _ => " Check that the server runs and accepts connections, and that --database-url \
              (or BACKEND_RUNTIME_DATABASE_URL) names it."
            .to_owned(),
    };
    anyhow!(
        "cannot open the database {}: {}.{hint}",
        settings.database(),
        describe(error)
    )
}

/// A reconciler on Docker, the store, the HTTP engine client and the lobby of the settings (a
/// webhook, or log lines), without a
/// record cache or a turn scheduler (the command line has neither); with the store's leader lock when `leader` is given, and then
/// with the store's writes fenced by it.
pub fn reconciler(
    settings: &Settings,
    docker: &[Daemon],
    store: &Store,
    leader: Option<Arc<StoreLeaderLock>>,
    progress: Option<Arc<dyn ProbeProgress>>,
) -> anyhow::Result<Reconciler> {
    let store = match &leader {
        Some(lock) => store.fenced(lock),
        None => store.clone(),
    };
    let store = Arc::new(store);
    let mut builder = Reconciler::builder();
    for daemon in docker {
        let port = Arc::clone(&daemon.port);
        builder = if daemon.name.is_empty() {
            builder.docker(port)
        } else {
            builder.docker_host(daemon.name.clone(), port)
        };
    }
    let mut builder = builder
        .store(store.clone())
        .outbox(store)
        .engine(Arc::new(HttpEngine::from_config(&settings.config)))
        .lobby(settings.lobby.port(&settings.config))
        .cache(Arc::new(NoCache))
        .scheduler(Arc::new(NoScheduler))
        .config(settings.config.clone());
    if let Some(leader) = leader {
        builder = builder.leader(leader as Arc<dyn LeaderLock>);
    }
    if let Some(progress) = progress {
        builder = builder.probe_progress(progress);
    }
    builder.build().map_err(|e| {
        anyhow!(BadInput(format!(
            "configuration: {}",
            one_line(&e.to_string())
        )))
    })
}
