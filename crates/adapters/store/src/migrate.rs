//! The embedded migrations of both backends, run when the store connects.
//!
//! Running them is idempotent: applied migrations are skipped. A database that has an applied
//! migration this build does not know was migrated by a newer build; the store refuses it
//! rather than run against a schema it does not understand (there is no automatic downgrade).

use std::collections::BTreeSet;

use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use galaxy_runtime_ports::PortError;

use crate::config::StoreConfig;

/// The PostgreSQL migrations (`migrations/postgres`).
#[cfg(feature = "postgres")]
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The SQLite migrations (`migrations/sqlite`).
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The versions of the embedded migrations, such as `20261127000000`.
pub fn known_versions<DB: Backend>(
    source: &EmbeddedMigrations,
) -> Result<BTreeSet<String>, PortError>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let migrations = MigrationSource::<DB>::migrations(source).map_err(|e| PortError::Other {
        message: "reading the embedded migrations".to_owned(),
        source: Some(e),
    })?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Refuses a database migrated by a newer build, then applies the pending migrations; returns
/// the versions applied now.
fn migrate<DB, C>(
    conn: &mut C,
    source: EmbeddedMigrations,
    target: &str,
) -> Result<Vec<String>, PortError>
where
    DB: Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let failed = |what: &str| {
        let message = format!("{what} on {target}");
        move |source| PortError::Other {
            message,
            source: Some(source),
        }
    };
    let known = known_versions::<DB>(&source)?;
    let applied = conn
        .applied_migrations()
        .map_err(failed("reading the applied migrations"))?;
    let unknown: Vec<String> = applied
        .iter()
        .map(|v| v.to_string())
        .filter(|v| !known.contains(v))
        .collect();
    if !unknown.is_empty() {
        return Err(PortError::invalid(format!(
            "the database at {target} has schema version(s) {} that this build does not know \
             (it knows {}): it was migrated by a newer galaxy-runtime; refusing to use it rather \
             than run on a schema this build does not understand (upgrade this build, or restore \
             a backup for a downgrade)",
            unknown.join(", "),
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let done = conn
        .run_pending_migrations(source)
        .map_err(failed("applying the migrations"))?;
    Ok(done.iter().map(|v| v.to_string()).collect())
}

/// Compares the versions a database has applied with those this build knows: an error saying
/// what to do when the database has none (no schema yet), lacks some (an older schema) or has
/// one this build does not know (a newer schema).
fn compare(applied: &[String], known: &BTreeSet<String>, target: &str) -> Result<(), PortError> {
    let unknown: Vec<&str> = applied
        .iter()
        .filter(|v| !known.contains(*v))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(PortError::invalid(format!(
            "the database at {target} has schema version(s) {} that this build does not know: \
             it was migrated by a newer galaxy-runtime (upgrade this build)",
            unknown.join(", ")
        )));
    }
    let pending: Vec<&str> = known
        .iter()
        .filter(|v| !applied.contains(v))
        .map(String::as_str)
        .collect();
    if applied.is_empty() {
        return Err(PortError::invalid(format!(
            "the database at {target} has no galaxy-runtime schema yet: create it with \
             `galaxy-runtime migrate` (Store::migrate)"
        )));
    }
    if !pending.is_empty() {
        return Err(PortError::invalid(format!(
            "the database at {target} has an older schema (missing migration(s) {}): upgrade \
             it with `galaxy-runtime migrate` (Store::migrate)",
            pending.join(", ")
        )));
    }
    Ok(())
}

/// One applied migration's version, as diesel records it.
#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Whether diesel's bookkeeping table is there.
#[derive(diesel::QueryableByName)]
struct Present {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    present: bool,
}

/// The versions applied to a database, read without creating diesel's bookkeeping table (as
/// `MigrationHarness::applied_migrations` would): `exists_sql` selects `present`, whether it is
/// there.
fn applied_read_only<C>(
    conn: &mut C,
    exists_sql: &str,
    target: &str,
    timeout: std::time::Duration,
) -> Result<Vec<String>, PortError>
where
    C: diesel::Connection,
    for<'a> diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'a, C, Present>
        + diesel::query_dsl::LoadQuery<'a, C, AppliedVersion>,
{
    use diesel::RunQueryDsl;
    let db = |what: &str, e| crate::error::from_diesel(&format!("{what} on {target}"), e, timeout);
    let present: Present = diesel::sql_query(exists_sql)
        .get_result(conn)
        .map_err(|e| db("looking for the schema", e))?;
    if !present.present {
        return Ok(Vec::new());
    }
    let rows: Vec<AppliedVersion> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(conn)
            .map_err(|e| db("reading the applied migrations", e))?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Checks, changing nothing, that a PostgreSQL database (in `config.schema`) has exactly the
/// schema this build knows.
#[cfg(feature = "postgres")]
pub(crate) async fn check_postgres(config: &StoreConfig) -> Result<(), PortError> {
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let target = config.redacted_url();
    let conn = crate::connect::establish_pg(config).await?;
    let timeout = config.query_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        // The session's search_path is the configured schema: a schema that does not exist
        // finds no table.
        let applied = applied_read_only(
            &mut conn,
            "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS present",
            &target,
            timeout,
        )?;
        compare(
            &applied,
            &known_versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)?,
            &target,
        )
    });
    task.await
        .map_err(|e| PortError::other("the schema check failed", e))?
}

/// Checks, changing nothing (not even creating the file), that a SQLite database file has
/// exactly the schema this build knows.
#[cfg(feature = "sqlite")]
pub(crate) async fn check_sqlite(path: &str, config: &StoreConfig) -> Result<(), PortError> {
    use diesel::{Connection, SqliteConnection};

    let target = config.redacted_url();
    if !std::path::Path::new(path).exists() {
        return Err(PortError::invalid(format!(
            "there is no database file at {target}: create it with `galaxy-runtime migrate` \
             (Store::migrate)"
        )));
    }
    let path = path.to_owned();
    let timeout = config.query_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = SqliteConnection::establish(&path)
            .map_err(|e| crate::error::from_connection(&target, e))?;
        let applied = applied_read_only(
            &mut conn,
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '__diesel_schema_migrations') AS present",
            &target,
            timeout,
        )?;
        compare(
            &applied,
            &known_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
            &target,
        )
    });
    task.await
        .map_err(|e| PortError::other("the schema check failed", e))?
}

/// A stable 63-bit key for a PostgreSQL advisory lock, from a name (FNV-1a).
#[cfg(feature = "postgres")]
pub(crate) fn advisory_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Non-negative, so that pg_locks' (classid, objid) pair reads back without sign games.
    i64::try_from(hash >> 1).unwrap_or(i64::MAX)
}

/// Migrates a PostgreSQL database (in `config.schema`, created if missing), holding an
/// advisory lock so that replicas starting together migrate one after the other.
#[cfg(feature = "postgres")]
pub(crate) async fn migrate_postgres(config: &StoreConfig) -> Result<Vec<String>, PortError> {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let target = config.redacted_url();
    let conn = crate::connect::establish_pg(config).await?;
    let schema = config.schema.clone();
    let key = advisory_key(&format!(
        "galaxy-runtime:migrate:{}",
        schema.as_deref().unwrap_or("")
    ));
    let timeout = config.query_timeout;
    // diesel_migrations is synchronous: it runs on a blocking thread, through a wrapper that
    // drives the async connection (AsyncMigrationHarness would panic on a current-thread runtime).
    let task = tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        let db =
            |what: &str, e| crate::error::from_diesel(&format!("{what} on {target}"), e, timeout);
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(key)
            .execute(&mut conn)
            .map_err(|e| db("waiting for the migration lock", e))?;
        let result = (|| {
            if let Some(schema) = &schema {
                conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .map_err(|e| db("creating the schema", e))?;
            }
            migrate::<diesel::pg::Pg, _>(&mut conn, POSTGRES_MIGRATIONS, &target)
        })();
        // The session ends right after, which releases the lock anyway; unlocking early lets a
        // waiting replica go on at once.
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(key)
            .execute(&mut conn);
        result
    });
    task.await
        .map_err(|e| PortError::other("the migration task failed", e))?
}

/// Migrates a SQLite database file inside one immediate transaction, so that processes
/// starting together on the same file migrate one after the other.
#[cfg(feature = "sqlite")]
pub(crate) async fn migrate_sqlite(
    path: &str,
    config: &StoreConfig,
) -> Result<Vec<String>, PortError> {
    use diesel::{Connection, SqliteConnection};

    let target = config.redacted_url();
    let path = path.to_owned();
    let session = crate::connect::sqlite_session_sql(config.busy_timeout);
    let busy_timeout = config.busy_timeout;
    let timeout = config.query_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = SqliteConnection::establish(&path)
            .map_err(|e| crate::error::from_connection(&target, e))?;
        set_up_sqlite_session(&mut conn, &session, busy_timeout)
            .map_err(|e| crate::error::from_diesel(&format!("setting up {target}"), e, timeout))?;
        let mut outcome = Ok(Vec::new());
        let transaction = conn.immediate_transaction(|conn| {
            outcome = migrate::<diesel::sqlite::Sqlite, _>(conn, SQLITE_MIGRATIONS, &target);
            match &outcome {
                Ok(_) => Ok(()),
                Err(_) => Err(diesel::result::Error::RollbackTransaction),
            }
        });
        match (transaction, outcome) {
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(crate::error::from_diesel(
                &format!("migrating {target}"),
                e,
                timeout,
            )),
            (Ok(()), Ok(done)) => Ok(done),
        }
    });
    task.await
        .map_err(|e| PortError::other("the migration task failed", e))?
}

/// Runs the session's settings on a migrating connection, again while SQLite answers "database
/// is locked", for up to `busy_timeout`.
///
/// The first process on a new file switches it to WAL, which takes the file's exclusive lock;
/// a process setting up at the same moment gets "database is locked" at once, without its busy
/// handler, wherever SQLite judges that waiting could deadlock. Replicas starting together on a
/// new file failed so in about one start in four (four at once, `concurrent_sqlite_starts_
/// migrate_once`); the settings are idempotent, so trying again is safe.
#[cfg(feature = "sqlite")]
fn set_up_sqlite_session(
    conn: &mut diesel::SqliteConnection,
    session: &str,
    busy_timeout: std::time::Duration,
) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    use diesel::result::Error as DieselError;

    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        match conn.batch_execute(session) {
            Err(DieselError::DatabaseError(_, ref info))
                if info.message().contains("database is locked")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_non_negative() {
        assert_eq!(advisory_key("a"), advisory_key("a"));
        assert_ne!(advisory_key("a"), advisory_key("b"));
        for name in ["", "galaxy-runtime:leader:", "x".repeat(1000).as_str()] {
            assert!(advisory_key(name) >= 0);
        }
    }

    #[cfg(all(feature = "postgres", feature = "sqlite"))]
    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let pg = known_versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS).unwrap();
        let sqlite = known_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS).unwrap();
        assert!(!pg.is_empty());
        assert_eq!(
            pg, sqlite,
            "each schema change needs a migration for both backends"
        );
    }
}
