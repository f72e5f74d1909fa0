//! The shared conformance suites of `galaxy-runtime-testkit`, run against SQLite and PostgreSQL.

mod common;

#[cfg(feature = "postgres")]
use common::PgSchema;
#[cfg(feature = "sqlite")]
use common::SqliteFile;
#[cfg(feature = "postgres")]
use galaxy_runtime_store::PgLeaderLock;
use galaxy_runtime_testkit::{leader, outbox, store};

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let db = SqliteFile::new();
    store::run_all(&db.store().await).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outbox_conforms() {
    let db = SqliteFile::new();
    outbox::run_all(&db.store().await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    store::run_all(&schema.store().await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_conforms() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    outbox::run_all(&schema.store().await).await;
}

#[cfg(feature = "sqlite")]
/// The suites must not depend on the runtime flavour: the reconciler's tests use a
/// current-thread runtime.
#[tokio::test(flavor = "current_thread")]
async fn sqlite_store_conforms_on_a_current_thread_runtime() {
    let db = SqliteFile::new();
    let s = db.store().await;
    store::list_get_create(&s).await;
    store::set_probe_failures_large_batch(&s).await;
    store::concurrent_transitions_one_winner(&s).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "current_thread")]
async fn postgres_store_conforms_on_a_current_thread_runtime() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let s = schema.store().await;
    store::list_get_create(&s).await;
    store::publish_snapshots_large_batch(&s).await;
    store::concurrent_rebinds_one_winner(&s).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_leader_lock_conforms() {
    let db = SqliteFile::new();
    let s = db.store().await;
    leader::run_all(&s.leader_lock()).await;
    // Two replicas on one SQLite file.
    let other = db.store().await;
    leader::exclusive(&s.leader_lock(), &other.leader_lock()).await;
    let lock = s.leader_lock();
    leader::fenced_writes_need_the_lock(&s.fenced(&lock), &s, &lock).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_leader_lock_conforms() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let s = schema.store().await;
    leader::run_all(&s.leader_lock()).await;
    leader::exclusive(
        &PgLeaderLock::new(&schema.config()),
        &PgLeaderLock::new(&schema.config()),
    )
    .await;
    let lock = s.leader_lock();
    leader::fenced_writes_need_the_lock(&s.fenced(&lock), &s, &lock).await;
}
