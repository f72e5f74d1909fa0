//! Connections: the pools of both backends and the session settings of every connection.

use std::time::Duration;

use diesel::ConnectionError;
#[cfg(feature = "sqlite")]
use diesel_async::AsyncConnection;
#[cfg(feature = "postgres")]
use diesel_async::AsyncPgConnection;
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use futures_util::FutureExt;
use galaxy_runtime_ports::PortError;

use crate::config::StoreConfig;
use crate::error::{from_connection, from_diesel};

/// A SQLite connection usable from async code (each call runs on tokio's blocking pool).
#[cfg(feature = "sqlite")]
pub(crate) type SqliteConn =
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;

/// The pool of whichever backend the URL named.
pub(crate) enum DbPool {
    /// PostgreSQL connections.
    #[cfg(feature = "postgres")]
    Postgres(Pool<AsyncPgConnection>),
    /// SQLite connections to one file.
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<SqliteConn>),
}

impl DbPool {
    pub(crate) fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close(),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.close(),
        }
    }
}

/// The statements every PostgreSQL session of the store starts with.
#[cfg(feature = "postgres")]
pub(crate) fn pg_session_sql(config: &StoreConfig) -> String {
    let mut sql = format!(
        "SET application_name = 'galaxy-runtime'; SET statement_timeout = {};",
        config.query_timeout.as_millis().max(1)
    );
    if let Some(schema) = &config.schema {
        // `schema` was checked to be a plain identifier, so quoting it is enough.
        sql.push_str(&format!(" SET search_path TO \"{schema}\";"));
    }
    sql
}

/// Opens one PostgreSQL connection with the store's session settings, within the connect
/// timeout. Used for the pool's checks, the migrations and the leader lock.
#[cfg(feature = "postgres")]
pub(crate) async fn establish_pg(config: &StoreConfig) -> Result<AsyncPgConnection, PortError> {
    establish_pg_with(config, None, &pg_session_sql(config)).await
}

/// How soon the leader lock's session notices that its peer is gone: the first keepalive
/// after this much silence …
#[cfg(feature = "postgres")]
pub(crate) const LEADER_KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// … then one every this long …
#[cfg(feature = "postgres")]
pub(crate) const LEADER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// … and the connection is dropped after this many unanswered ones (or once sent data stays
/// unacknowledged for [`LEADER_USER_TIMEOUT`]).
#[cfg(feature = "postgres")]
pub(crate) const LEADER_KEEPALIVE_RETRIES: u32 = 3;
/// The TCP user timeout of the leader lock's socket.
#[cfg(feature = "postgres")]
pub(crate) const LEADER_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// Opens the leader lock's own session: the store's settings, plus TCP keepalives and a user
/// timeout on both ends so that a half-open connection is noticed within seconds (not the
/// operating system's default of two hours), and no `idle_session_timeout` (a leader is idle
/// between passes).
#[cfg(feature = "postgres")]
pub(crate) async fn establish_pg_session(
    config: &StoreConfig,
) -> Result<AsyncPgConnection, PortError> {
    let session = format!(
        "{} SET application_name = 'galaxy-runtime leader'; SET tcp_keepalives_idle = {}; \
         SET tcp_keepalives_interval = {}; SET tcp_keepalives_count = {}; \
         SET idle_session_timeout = 0;",
        pg_session_sql(config),
        LEADER_KEEPALIVE_IDLE.as_secs(),
        LEADER_KEEPALIVE_INTERVAL.as_secs(),
        LEADER_KEEPALIVE_RETRIES,
    );
    let socket = |pg: &mut tokio_postgres::Config| {
        pg.keepalives(true)
            .keepalives_idle(LEADER_KEEPALIVE_IDLE)
            .keepalives_interval(LEADER_KEEPALIVE_INTERVAL)
            .keepalives_retries(LEADER_KEEPALIVE_RETRIES)
            .tcp_user_timeout(LEADER_USER_TIMEOUT);
    };
    establish_pg_with(config, Some(&socket), &session).await
}

/// How to connect to PostgreSQL: tokio-postgres's options and the TLS connector.
#[cfg(feature = "postgres")]
#[derive(Clone)]
pub(crate) struct PgTarget {
    pub pg: tokio_postgres::Config,
    pub tls: tokio_postgres_rustls::MakeRustlsConnect,
}

/// The connection options of `config`: its URL (TLS parameters taken out, see
/// [`crate::tls`]), with the password of its password file, and its TLS connector.
///
/// The parse error of tokio-postgres is not shown: it may quote a piece of the URL.
#[cfg(feature = "postgres")]
pub(crate) fn pg_config(config: &StoreConfig) -> Result<PgTarget, PortError> {
    let target = config.redacted_url();
    let invalid = |reason: String| PortError::invalid(format!("database URL {target}: {reason}"));
    let (url, tls) = crate::tls::split_url(&config.url).map_err(invalid)?;
    let mut pg: tokio_postgres::Config = url.parse().map_err(|_| {
        invalid(
            "not a PostgreSQL URL tokio-postgres accepts (postgres://USER@HOST:PORT/DB?PARAMETERS)"
                .to_owned(),
        )
    })?;
    if let Some(password) = config
        .password()
        .map_err(|e| PortError::invalid(format!("store configuration: {e}")))?
    {
        pg.password(password);
    }
    let tls = crate::tls::connector(&tls).map_err(invalid)?;
    Ok(PgTarget { pg, tls })
}

/// Connects to `target` and hands the connection to diesel.
#[cfg(feature = "postgres")]
pub(crate) async fn connect_pg(target: &PgTarget) -> Result<AsyncPgConnection, ConnectionError> {
    let (client, connection) = target
        .pg
        .connect(target.tls.clone())
        .await
        .map_err(|e| ConnectionError::BadConnection(crate::error::pg_error_text(&e)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// Connects to `config.url` (with `socket` adjusting the connection's options), runs `session`
/// on it, all within the connect timeout.
#[cfg(feature = "postgres")]
async fn establish_pg_with(
    config: &StoreConfig,
    socket: Option<&(dyn Fn(&mut tokio_postgres::Config) + Sync)>,
    session: &str,
) -> Result<AsyncPgConnection, PortError> {
    let target = config.redacted_url();
    let connect = async {
        let mut target_options = pg_config(config)?;
        if let Some(socket) = socket {
            socket(&mut target_options.pg);
        }
        let mut conn = connect_pg(&target_options)
            .await
            .map_err(|e| from_connection(&target, e))?;
        conn.batch_execute(session).await.map_err(|e| {
            from_diesel(
                &format!("setting up a session on {target}"),
                e,
                config.query_timeout,
            )
        })?;
        Ok(conn)
    };
    tokio::time::timeout(config.connect_timeout, connect)
        .await
        .unwrap_or_else(|_| {
            Err(PortError::timeout(
                format!("connecting to {target}"),
                config.connect_timeout,
            ))
        })
}

/// The pragmas every SQLite connection starts with.
///
/// WAL lets readers (a `status` command, the executor's reads) run while a pass writes; the busy
/// timeout makes a writer wait for another one's lock instead of failing at once;
/// `synchronous = NORMAL` is the durable-enough setting recommended with WAL (a power cut may
/// lose the last transactions, never corrupt the file).
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_session_sql(busy_timeout: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;",
        busy_timeout.as_millis().min(i32::MAX as u128)
    )
}

/// Builds the PostgreSQL pool. Connections are made lazily, each with the session settings.
#[cfg(feature = "postgres")]
pub(crate) fn pg_pool(config: &StoreConfig) -> Result<Pool<AsyncPgConnection>, PortError> {
    let session = pg_session_sql(config);
    let pg = pg_config(config)?;
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // Every connection is made from the parsed options (the password file's password, later the
    // TLS settings), never from the URL text.
    manager_config.custom_setup = Box::new(move |_url| {
        let session = session.clone();
        let pg = pg.clone();
        async move {
            let mut conn = connect_pg(&pg).await?;
            conn.batch_execute(&session)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    // The manager's URL is only passed to `custom_setup`, which does not read it: the redacted
    // form keeps the password out of the pool's `Debug`.
    let manager =
        AsyncDieselConnectionManager::new_with_config(config.redacted_url(), manager_config);
    Pool::builder(manager)
        .max_size(config.max_connections)
        .build()
        .map_err(|e| PortError::other("building the PostgreSQL connection pool", e))
}

/// Builds the SQLite pool on the file at `path`.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_pool(path: &str, config: &StoreConfig) -> Result<Pool<SqliteConn>, PortError> {
    let session = sqlite_session_sql(config.busy_timeout);
    let mut manager_config = ManagerConfig::<SqliteConn>::default();
    manager_config.custom_setup = Box::new(move |path| {
        let session = session.clone();
        let path = path.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&path).await?;
            conn.batch_execute(&session)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path.to_owned(), manager_config);
    Pool::builder(manager)
        .max_size(config.max_connections)
        .build()
        .map_err(|e| PortError::other("building the SQLite connection pool", e))
}

/// A failure to get a connection from the pool, for the store at `target`.
pub(crate) fn from_pool(target: &str, error: PoolError, query_timeout: Duration) -> PortError {
    match error {
        PoolError::Backend(diesel_async::pooled_connection::PoolError::ConnectionError(e)) => {
            from_connection(target, e)
        }
        PoolError::Backend(diesel_async::pooled_connection::PoolError::QueryError(e)) => {
            from_diesel(
                &format!("checking a connection to {target}"),
                e,
                query_timeout,
            )
        }
        PoolError::Closed => PortError::unavailable(
            format!("the connection pool of {target} is closed"),
            PoolError::Closed,
        ),
        other => PortError::unavailable(format!("no connection to {target}: {other}"), other),
    }
}
