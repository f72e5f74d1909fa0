//! The two ways a statement reaches the database: [`with_conn!`] on a pooled connection (reads,
//! and the writes of an unfenced store), [`with_write_conn!`] for writes, which a fenced store
//! makes only while it holds the leader lock.

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store has,
/// `$dialect` to its [`Dialect`](crate::sql::Dialect) and the type `$db` to its diesel
/// backend. The body is compiled once per backend, which is how one piece of diesel code serves
/// both without `MultiConnection` (that derive does not work with diesel-async 0.9).
///
/// Getting the connection is bounded by `connect_timeout`, the body by `query_timeout`; a
/// connection whose call timed out or lost the server is dropped rather than returned to the
/// pool.
macro_rules! with_conn {
    ($store:expr, $op:expr, |$conn:ident, $dialect:ident, $db:ident| $body:expr) => {{
        let store: &$crate::store::Store = $store;
        let op: &str = $op;
        match store.pool() {
            #[cfg(feature = "postgres")]
            $crate::connect::DbPool::Postgres(pool) => {
                #[allow(dead_code)]
                type $db = diesel::pg::Pg;
                #[allow(unused_variables)]
                let $dialect = $crate::sql::Dialect::Postgres;
                let mut object = store.checkout(pool.get()).await?;
                let outcome = tokio::time::timeout(store.config().query_timeout, async {
                    let $conn: &mut diesel_async::AsyncPgConnection = &mut object;
                    $body
                })
                .await;
                store.finish(op, outcome, move || {
                    drop(diesel_async::pooled_connection::deadpool::Object::take(
                        object,
                    ));
                })
            }
            #[cfg(feature = "sqlite")]
            $crate::connect::DbPool::Sqlite(pool) => {
                #[allow(dead_code)]
                type $db = diesel::sqlite::Sqlite;
                #[allow(unused_variables)]
                let $dialect = $crate::sql::Dialect::Sqlite;
                let mut object = store.checkout(pool.get()).await?;
                let outcome = tokio::time::timeout(store.config().query_timeout, async {
                    let $conn: &mut $crate::connect::SqliteConn = &mut object;
                    $body
                })
                .await;
                store.finish(op, outcome, move || {
                    drop(diesel_async::pooled_connection::deadpool::Object::take(
                        object,
                    ));
                })
            }
        }
    }};
}

/// [`with_conn!`] for a write: on a store fenced by a leader lock, the write is made only while
/// the lock is held, and its check and its commit cannot be told apart by the lock.
///
/// - PostgreSQL: on the lock's own session. A session advisory lock lasts exactly as long as
///   its session, and a transaction of a session that ended never commits, so whatever commits
///   there was written by the leader. A session lost during the write drops the lock, and the
///   write is refused as [`PortError::Fenced`](galaxy_runtime_ports::PortError::Fenced).
/// - SQLite: on a pooled connection while holding the lock file's mutex, which a release waits
///   for.
///
/// Without the lock the body does not run at all.
macro_rules! with_write_conn {
    ($store:expr, $op:expr, |$conn:ident, $dialect:ident, $db:ident| $body:expr) => {{
        let store: &$crate::store::Store = $store;
        let op: &str = $op;
        match store.fence() {
            None => with_conn!(store, op, |$conn, $dialect, $db| $body),
            #[cfg(feature = "postgres")]
            Some($crate::leader::Fence::Session(session)) => {
                #[allow(dead_code)]
                type $db = diesel::pg::Pg;
                #[allow(unused_variables)]
                let $dialect = $crate::sql::Dialect::Postgres;
                let mut held = session.lock().await;
                match held.as_mut() {
                    None => Err($crate::leader::not_leader(op)),
                    Some(connection) => {
                        // The server's statement_timeout (query_timeout) cancels a slow
                        // statement first and keeps the session, and with it the lock; this
                        // bound only ends a session whose server stopped answering.
                        let bound = store.config().query_timeout + $crate::store::FENCED_MARGIN;
                        let outcome = tokio::time::timeout(bound, async {
                            let $conn: &mut diesel_async::AsyncPgConnection = connection;
                            $body
                        })
                        .await;
                        store.finish_fenced(op, outcome, &mut held)
                    }
                }
            }
            Some($crate::leader::Fence::File(file)) => {
                let held = file.lock().await;
                if held.is_none() {
                    Err($crate::leader::not_leader(op))
                } else {
                    let written = with_conn!(store, op, |$conn, $dialect, $db| $body);
                    drop(held);
                    written
                }
            }
        }
    }};
}
