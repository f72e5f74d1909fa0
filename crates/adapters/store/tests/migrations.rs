//! Migrations on each backend built in: from an empty database, run again, run by several
//! replicas at once, and refused when the database was migrated by a newer build.

mod common;

#[cfg(feature = "postgres")]
use common::PgSchema;
#[cfg(feature = "sqlite")]
use common::SqliteFile;
use diesel::QueryableByName;
#[cfg(feature = "sqlite")]
use diesel::RunQueryDsl;
#[cfg(feature = "sqlite")]
use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
#[cfg(feature = "postgres")]
use diesel_async::SimpleAsyncConnection;
use futures_util::future::join_all;
use galaxy_runtime_model::{GameId, RuntimeStatus};
use galaxy_runtime_ports::{PortError, StorePort};
use galaxy_runtime_store::Store;
#[cfg(feature = "postgres")]
use galaxy_runtime_store::migrate::POSTGRES_MIGRATIONS;
#[cfg(feature = "sqlite")]
use galaxy_runtime_store::migrate::SQLITE_MIGRATIONS;
use galaxy_runtime_store::migrate::known_versions;
use galaxy_runtime_testkit::store::sample_record;

/// A version no build knows yet.
const FUTURE_VERSION: &str = "29991231235959";

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[cfg(feature = "sqlite")]
fn sqlite_versions(db: &SqliteFile) -> Vec<String> {
    let mut versions: Vec<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load::<Version>(&mut db.raw())
            .expect("reading the applied migrations")
            .into_iter()
            .map(|v| v.version)
            .collect();
    versions.sort();
    versions
}

#[cfg(feature = "postgres")]
async fn postgres_versions(schema: &PgSchema) -> Vec<String> {
    let mut raw = schema.raw().await;
    let query =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version");
    diesel_async::RunQueryDsl::load::<Version>(query, &mut raw)
        .await
        .expect("reading the applied migrations")
        .into_iter()
        .map(|v| v.version)
        .collect()
}

fn expect_newer_schema_refused(result: Result<Store, PortError>) {
    match result {
        Err(PortError::Invalid { message, .. }) => {
            assert!(
                message.contains(FUTURE_VERSION),
                "names the version: {message}"
            );
            assert!(message.contains("newer"), "says why: {message}");
        }
        Err(other) => panic!("a newer schema must be Invalid, got {other:?}"),
        Ok(_) => panic!("a store connected to a database migrated by a newer build"),
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_migrates_from_empty_again_and_refuses_a_newer_schema() {
    let db = SqliteFile::new();
    assert!(!db.path.exists(), "starts without a database file");
    let store = db.store().await;
    let known: Vec<String> = known_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)
        .expect("embedded")
        .into_iter()
        .collect();
    assert!(!known.is_empty());
    assert_eq!(sqlite_versions(&db), known, "every migration applied, once");
    let record = sample_record(GameId::new_random(), RuntimeStatus::Running);
    store.create_record(record.clone()).await.expect("create");
    store.close();

    // Again: nothing to apply, the data kept.
    let again = db.store().await;
    assert_eq!(sqlite_versions(&db), known, "nothing applied twice");
    assert_eq!(
        again.list_records().await.expect("list"),
        vec![record.into()]
    );
    again.close();

    // WAL mode is on for the file.
    let mode: Vec<Version> =
        diesel::sql_query("SELECT journal_mode AS version FROM pragma_journal_mode")
            .load(&mut db.raw())
            .expect("journal mode");
    assert_eq!(mode[0].version, "wal");

    // A newer build applied a migration this one does not know.
    db.raw()
        .batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{FUTURE_VERSION}')"
        ))
        .expect("recording a future migration");
    expect_newer_schema_refused(Store::connect(&db.config()).await);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_migrates_from_empty_again_and_refuses_a_newer_schema() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let store = schema.store().await;
    let known: Vec<String> = known_versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)
        .expect("embedded")
        .into_iter()
        .collect();
    assert_eq!(
        postgres_versions(&schema).await,
        known,
        "every migration applied, once"
    );
    let record = sample_record(GameId::new_random(), RuntimeStatus::Running);
    store.create_record(record.clone()).await.expect("create");
    store.close();

    let again = schema.store().await;
    assert_eq!(
        postgres_versions(&schema).await,
        known,
        "nothing applied twice"
    );
    assert_eq!(
        again.list_records().await.expect("list"),
        vec![record.into()]
    );
    again.close();

    schema
        .raw()
        .await
        .batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{FUTURE_VERSION}')"
        ))
        .await
        .expect("recording a future migration");
    expect_newer_schema_refused(Store::connect(&schema.config()).await);
}

#[cfg(feature = "sqlite")]
/// Replicas that start together on an empty database all come up: one migrates, the others
/// wait for it and find nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sqlite_starts_migrate_once() {
    let db = SqliteFile::new();
    let config = db.config();
    let results = join_all((0..4).map(|_| Store::connect(&config))).await;
    for result in results {
        result.expect("every SQLite replica starts");
    }
    let known: Vec<String> = known_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)
        .expect("the embedded migrations")
        .into_iter()
        .collect();
    assert_eq!(sqlite_versions(&db), known, "every migration applied once");
}

#[cfg(feature = "postgres")]
/// As [`concurrent_sqlite_starts_migrate_once`], on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_postgres_starts_migrate_once() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let config = schema.config();
    let results = join_all((0..4).map(|_| Store::connect(&config))).await;
    for result in results {
        result.expect("every PostgreSQL replica starts");
    }
    let known: Vec<String> = known_versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)
        .expect("the embedded migrations")
        .into_iter()
        .collect();
    assert_eq!(
        postgres_versions(&schema).await,
        known,
        "every migration applied once"
    );
}

/// The message of a refused connection that changed nothing, which must say `words`.
#[track_caller]
fn expect_refused(result: Result<Store, PortError>, words: &str) {
    match result {
        Err(PortError::Invalid { message, .. }) => {
            assert!(message.contains(words), "says {words:?}: {message}");
            assert!(
                message.contains("galaxy-runtime migrate") || message.contains("newer"),
                "says what to do: {message}"
            );
        }
        Err(other) => panic!("a schema not up to date must be Invalid, got {other:?}"),
        Ok(_) => panic!("a store connected without the schema it needs"),
    }
}

#[cfg(feature = "sqlite")]
/// `SchemaPolicy::Require` changes nothing: no file is created, no table, and a database that
/// lacks a migration or has a newer one is refused; once migrated, it connects.
#[tokio::test]
async fn sqlite_require_never_changes_the_schema() {
    use galaxy_runtime_store::SchemaPolicy;
    let db = SqliteFile::new();
    expect_refused(
        Store::connect_with(&db.config(), SchemaPolicy::Require).await,
        "no database file",
    );
    assert!(!db.path.exists(), "no file was created");

    // An empty file (made by something else): still no schema, and still no table.
    std::fs::write(&db.path, b"").expect("empty file");
    expect_refused(
        Store::connect_with(&db.config(), SchemaPolicy::Require).await,
        "no galaxy-runtime schema",
    );
    let tables: Vec<Version> = diesel::sql_query("SELECT name AS version FROM sqlite_master")
        .load(&mut db.raw())
        .expect("listing tables");
    assert!(tables.is_empty(), "no table was created");

    let applied = Store::migrate(&db.config()).await.expect("migrate");
    assert!(!applied.is_empty());
    assert!(
        Store::migrate(&db.config())
            .await
            .expect("again")
            .is_empty()
    );
    let store = Store::connect_with(&db.config(), SchemaPolicy::Require)
        .await
        .expect("a migrated database connects");
    store.list_records().await.expect("list");
    store.close();

    let latest = sqlite_versions(&db).pop().expect("a version");
    db.raw()
        .batch_execute(&format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{latest}'"
        ))
        .expect("forgetting a migration");
    expect_refused(
        Store::connect_with(&db.config(), SchemaPolicy::Require).await,
        "older schema",
    );
    assert_eq!(
        sqlite_versions(&db).len(),
        known_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)
            .expect("embedded")
            .len()
            - 1,
        "nothing was applied"
    );
    db.raw()
        .batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{latest}'), \
             ('{FUTURE_VERSION}')"
        ))
        .expect("recording a future migration");
    expect_refused(
        Store::connect_with(&db.config(), SchemaPolicy::Require).await,
        "newer",
    );
}

#[cfg(feature = "postgres")]
/// `SchemaPolicy::Require` on PostgreSQL creates neither the schema nor a table, and connects
/// once the database is migrated.
#[tokio::test]
async fn postgres_require_never_changes_the_schema() {
    use diesel::sql_types::BigInt;
    use galaxy_runtime_store::SchemaPolicy;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let Some(schema) = PgSchema::new() else {
        return;
    };
    expect_refused(
        Store::connect_with(&schema.config(), SchemaPolicy::Require).await,
        "no galaxy-runtime schema",
    );
    let mut raw = schema.raw().await;
    let query = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM information_schema.schemata WHERE schema_name = '{}'",
        schema.name
    ));
    let count: Vec<Count> = diesel_async::RunQueryDsl::load(query, &mut raw)
        .await
        .expect("counting schemas");
    assert_eq!(count[0].n, 0, "the schema was not created");

    Store::migrate(&schema.config()).await.expect("migrate");
    let store = Store::connect_with(&schema.config(), SchemaPolicy::Require)
        .await
        .expect("a migrated database connects");
    store.list_records().await.expect("list");
    store.close();
}
