//! PostgreSQL for the command-line tests: the server of `DATABASE_URL`, and a schema of the
//! test's own on it that is dropped whatever happens to the test.

use std::process::{Command, Stdio};

use super::SKIP_POSTGRES;

/// The server's URL, or `None` (after saying so) when the PostgreSQL tests are skipped; a
/// panic saying how to start a server otherwise.
pub fn database_url() -> Option<String> {
    if std::env::var(SKIP_POSTGRES).as_deref() == Ok("1") {
        eprintln!("skipped: {SKIP_POSTGRES}=1, this test needs PostgreSQL");
        return None;
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "this test needs a PostgreSQL server named by DATABASE_URL; run the tests with \
             `scripts/with-postgres.sh cargo test -p galaxy-runtime-cli` (it starts a throwaway \
             server), or `scripts/test`. To skip the tests that need PostgreSQL, set \
             {SKIP_POSTGRES}=1."
        ),
    }
}

/// Runs SQL on the server with psql (which comes with the PostgreSQL binaries) and returns its
/// unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("psql runs (it comes with the PostgreSQL binaries)");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A schema of the test's own, dropped on drop.
pub struct Schema {
    /// The server.
    pub url: String,
    /// The schema's name.
    pub name: String,
}

impl Schema {
    /// A schema name unique to `id` (not created: the commands create it, or do not).
    pub fn new(url: &str, id: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("cli_test_{id}"),
        }
    }

    /// The number of tables in the schema.
    pub fn tables(&self) -> usize {
        psql(
            &self.url,
            &format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}'",
                self.name
            ),
        )
        .parse()
        .expect("a count")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.url)
            .args([
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
