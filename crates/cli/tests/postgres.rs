//! `reconcile --once` against PostgreSQL (`DATABASE_URL`) and the real Docker engine, in a
//! schema of its own so that it runs beside every other test on the same server.

mod common;

use std::process::{Command, Stdio};

use common::*;
use galaxy_runtime_model::GameId;

/// The server's URL, or `None` (after saying so) when the PostgreSQL tests are skipped; a
/// panic saying how to start a server otherwise.
fn database_url() -> Option<String> {
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

/// Drops the test's schema, whatever happens to the test.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        // psql comes with the PostgreSQL binaries; without it the schema stays, harmless.
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

#[test]
fn reconcile_once_against_postgres() {
    let Some(url) = database_url() else { return };
    let Some(fleet) = Fleet::new() else { return };
    let fleet = fleet.with_database(url.clone());
    let schema = Schema {
        url,
        name: format!("cli_test_{}", fleet.id),
    };
    let with_schema = |mut command: Command| {
        command.env("BACKEND_RUNTIME_DATABASE_SCHEMA", &schema.name);
        command
    };

    // PostgreSQL's schema changes only on purpose.
    assert_success(
        &output(&mut with_schema(fleet.db_command(&["migrate"]))),
        "migrate",
    );
    let (adopted, orphan) = (GameId::new_random(), GameId::new_random());
    assert_success(
        &output(&mut with_schema(fleet.db_command(&[
            "games",
            "add",
            &adopted.to_string(),
        ]))),
        "games add",
    );
    let container = fleet.start_engine(adopted);
    fleet.wait_engine(&container);
    fleet.start_engine(orphan);

    let dry = output(&mut with_schema(fleet.command(&[
        "reconcile",
        "--once",
        "--dry-run",
        "--format",
        "json",
    ])));
    assert_success(&dry, "reconcile --once --dry-run on PostgreSQL");
    let planned = json(&dry);

    let out = output(&mut with_schema(fleet.command(&[
        "reconcile",
        "--once",
        "--format",
        "json",
    ])));
    assert_success(&out, "reconcile --once on PostgreSQL");
    let document = json(&out);
    assert_eq!(document["plan"]["actions"], planned["plan"]["actions"]);
    assert_eq!(document["plan"]["actions"][0]["kind"], "adopt");
    assert_eq!(
        document["plan"]["actions"][0]["game_id"],
        adopted.to_string()
    );
    assert_eq!(document["plan"]["findings"][0]["kind"], "orphan_container");
    assert_eq!(document["report"]["applied"]["adopt"], 1);
    assert_eq!(document["report"]["skipped_not_leader"], false);
    assert_eq!(document["error"], serde_json::Value::Null);

    // The next pass probes the adopted engine and publishes its snapshot.
    let out = output(&mut with_schema(fleet.command(&["reconcile", "--once"])));
    assert_success(&out, "second reconcile --once on PostgreSQL");
    assert!(
        stdout(&out).contains("publish_snapshot (1)"),
        "{}",
        stdout(&out)
    );

    let out = output(&mut with_schema(
        fleet.db_command(&["status", "--format", "json"]),
    ));
    assert_success(&out, "status on PostgreSQL");
    let records = json(&out);
    assert_eq!(records.as_array().map(Vec::len), Some(1), "{records}");
    assert_eq!(records[0]["game_id"], adopted.to_string());
    assert_eq!(records[0]["status"], "running");
    assert_eq!(records[0]["current_container_id"], container);
    assert!(records[0]["last_snapshot_at"].is_string(), "{records}");
}
