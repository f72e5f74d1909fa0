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
    assert_eq!(again.list_records().await.expect("list"), vec![record]);
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
    assert_eq!(again.list_records().await.expect("list"), vec![record]);
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
