//! Migrations on purpose: read-only commands never change the schema, commands that write
//! refuse a PostgreSQL schema that is not up to date, and `migrate [--check]` applies or checks
//! it. Against PostgreSQL (`DATABASE_URL`) and SQLite.

mod common;

use common::pg::{Schema, database_url};
use common::*;
use galaxy_runtime_model::GameId;

#[test]
fn postgres_schema_changes_only_through_migrate() {
    let Some(server) = database_url() else { return };
    let schema = Schema::new(
        &server,
        &GameId::new_random().as_uuid().simple().to_string()[..12],
    );
    let command = |args: &[&str]| {
        let mut command = bin();
        command
            .args(args)
            .arg(format!("--database-url={server}"))
            .env("BACKEND_RUNTIME_DATABASE_SCHEMA", &schema.name);
        output(&mut command)
    };

    for args in [
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["games", "list"],
        vec!["games", "add", &GameId::new_random().to_string()],
        vec!["migrate", "--check"],
    ] {
        let out = command(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("no galaxy-runtime schema yet") && err.contains("galaxy-runtime migrate"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(schema.tables(), 0, "{args:?} changed the schema");
    }

    let out = command(&["migrate"]);
    assert_success(&out, "migrate");
    assert!(
        stdout(&out).contains("applied migration(s)"),
        "{}",
        stdout(&out)
    );
    assert!(schema.tables() > 0);
    let out = command(&["migrate"]);
    assert_success(&out, "migrate again");
    assert!(stdout(&out).contains("nothing applied"), "{}", stdout(&out));
    let out = command(&["migrate", "--check"]);
    assert_success(&out, "migrate --check");
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
    assert_success(&command(&["status"]), "status on a migrated database");
    assert_success(
        &command(&["games", "add", &GameId::new_random().to_string()]),
        "games add on a migrated database",
    );

    // An older schema: the latest migration forgotten. Read-only commands refuse it and leave
    // it as it is.
    let latest = common::pg::psql(
        &server,
        &format!(
            "DELETE FROM {}.__diesel_schema_migrations WHERE version = \
             (SELECT max(version) FROM {}.__diesel_schema_migrations) RETURNING version",
            schema.name, schema.name
        ),
    );
    let out = command(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("older schema") && stderr(&out).contains(&latest),
        "{}",
        stderr(&out)
    );
    let count = common::pg::psql(
        &server,
        &format!(
            "SELECT count(*) FROM {}.__diesel_schema_migrations WHERE version = '{latest}'",
            schema.name
        ),
    );
    assert_eq!(count, "0", "status applied a migration");
}

#[test]
fn sqlite_read_only_commands_create_no_file_and_writes_migrate_it() {
    let scratch = Scratch::new();
    let url = format!("--database-url={}", scratch.sqlite_url());
    for args in [
        vec!["status"],
        vec!["games", "list"],
        vec!["migrate", "--check"],
    ] {
        let out = output(bin().args(&args).arg(&url));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no database file")
                && stderr(&out).contains("galaxy-runtime migrate"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            scratch.files().is_empty(),
            "{args:?} made {:?}",
            scratch.files()
        );
    }
    // A command that writes migrates the embedded database by itself.
    let out = output(
        bin()
            .args(["games", "add", &GameId::new_random().to_string()])
            .arg(&url),
    );
    assert_success(&out, "games add");
    assert_success(&output(bin().arg("status").arg(&url)), "status");
    assert_success(
        &output(bin().args(["migrate", "--check"]).arg(&url)),
        "migrate --check",
    );
}
