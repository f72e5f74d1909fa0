//! Bad input to every command: an unreachable daemon, a bad database URL, an unreachable
//! database, bad configuration values from each source. Each gives one clear line on standard
//! error, a non-zero exit, nothing on standard output and nothing written.
//!
//! Every command runs in a scratch directory, so that the default database
//! (`sqlite://galaxy-runtime.db`, relative to the working directory) would show up there if
//! anything were written.

mod common;

use std::process::{Command, Output};

use common::*;

const GAME: &str = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";

/// Every command but `plan` (which reads no configuration), as argument lists.
fn every_command() -> Vec<Vec<&'static str>> {
    vec![
        vec!["run"],
        vec!["reconcile", "--once"],
        vec!["reconcile", "--once", "--dry-run"],
        vec!["observe"],
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["games", "list"],
        vec!["games", "add", GAME],
        vec!["games", "remove", GAME],
        vec!["events"],
        vec!["events", "--pending", "--format", "json"],
        vec!["events", "redeliver", GAME],
    ]
}

/// The commands that talk to Docker.
fn docker_commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["run"],
        vec!["reconcile", "--once"],
        vec!["reconcile", "--once", "--dry-run"],
        vec!["observe"],
    ]
}

fn in_scratch(scratch: &Scratch, args: &[&str]) -> Command {
    let mut command = bin();
    command.current_dir(&scratch.path).args(args);
    command
}

/// Exit status `code`, one line on stderr containing every `expected`, nothing on stdout,
/// nothing written in the scratch directory but the files in `allowed`.
#[track_caller]
fn assert_refused(out: &Output, code: i32, expected: &[&str], scratch: &Scratch, allowed: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit status; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("galaxy-runtime: "), "{err}");
    for text in expected {
        assert!(err.contains(text), "{text:?} missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(out), "", "stdout of a refused command");
    let written: Vec<String> = scratch
        .files()
        .into_iter()
        .filter(|f| !allowed.contains(&f.as_str()))
        .collect();
    assert!(written.is_empty(), "a refused command wrote {written:?}");
}

#[test]
fn an_unreachable_docker_daemon_stops_before_the_database_is_opened() {
    for args in docker_commands() {
        let scratch = Scratch::new();
        let out =
            output(in_scratch(&scratch, &args).env("DOCKER_HOST", "unix:///nonexistent.sock"));
        assert_refused(
            &out,
            1,
            &["cannot reach Docker", "/nonexistent.sock", "DOCKER_HOST"],
            &scratch,
            &[],
        );

        let out = output(in_scratch(&scratch, &args).arg("--docker-host=unix:///nonexistent.sock"));
        assert_refused(
            &out,
            1,
            &["cannot reach Docker", "/nonexistent.sock"],
            &scratch,
            &[],
        );

        let out = output(in_scratch(&scratch, &args).env("DOCKER_HOST", "ssh://somewhere"));
        assert_refused(&out, 2, &["ssh://somewhere", "DOCKER_HOST"], &scratch, &[]);
    }
}

#[test]
fn a_bad_database_url_is_refused_from_every_source() {
    for args in every_command() {
        let scratch = Scratch::new();
        let out = output(in_scratch(&scratch, &args).arg("--database-url=mysql://u:secret@h/db"));
        assert_refused(
            &out,
            2,
            &[
                "flag --database-url=\"mysql://u:***@h/db\"",
                "unsupported scheme",
            ],
            &scratch,
            &[],
        );
        assert!(!stderr(&out).contains("secret"), "{}", stderr(&out));

        let out =
            output(in_scratch(&scratch, &args).env("BACKEND_RUNTIME_DATABASE_URL", "galaxy.db"));
        assert_refused(
            &out,
            2,
            &["environment: BACKEND_RUNTIME_DATABASE_URL=\"galaxy.db\""],
            &scratch,
            &[],
        );

        std::fs::write(
            scratch.path.join("bad.toml"),
            "[database]\nurl = \"sqlite://:memory:\"\n",
        )
        .expect("config file written");
        let out = output(in_scratch(&scratch, &args).arg("--config=bad.toml"));
        assert_refused(
            &out,
            2,
            &["config file bad.toml: database.url=\"sqlite://:memory:\""],
            &scratch,
            &["bad.toml"],
        );
    }
}

#[test]
fn an_unreachable_database_is_one_line_saying_what_to_check() {
    let mut commands = vec![
        vec!["status"],
        vec!["games", "list"],
        vec!["games", "add", GAME],
    ];
    // The other commands reach Docker first; with Docker unreachable they stop there (above).
    if docker_available() {
        commands.extend(docker_commands());
    }
    for args in commands {
        let scratch = Scratch::new();
        let out = output(
            in_scratch(&scratch, &args)
                .arg("--database-url=postgres://galaxy:pw@127.0.0.1:1/galaxy?connect_timeout=2"),
        );
        assert_refused(
            &out,
            1,
            &[
                "cannot open the database postgres://galaxy:***@127.0.0.1:1/galaxy",
                "Check that the server runs",
            ],
            &scratch,
            &[],
        );
        assert!(!stderr(&out).contains(":pw@"), "{}", stderr(&out));

        let out = output(
            in_scratch(&scratch, &args).arg("--database-url=sqlite:///nonexistent/dir/runtime.db"),
        );
        // A read-only command never creates the file, so it finds none; one that writes fails
        // to create it.
        let read_only = matches!(
            args.as_slice(),
            ["status"] | ["games", "list"] | ["observe"] | [_, _, "--dry-run"]
        );
        assert_refused(
            &out,
            1,
            &[
                "cannot open the database sqlite:///nonexistent/dir/runtime.db",
                if read_only {
                    "no database file at sqlite:///nonexistent/dir/runtime.db: create it with `galaxy-runtime migrate`"
                } else {
                    "exists and is writable"
                },
            ],
            &scratch,
            &[],
        );
    }
}

#[test]
fn bad_configuration_values_are_refused_from_each_source() {
    for args in docker_commands() {
        let scratch = Scratch::new();
        let out = output(in_scratch(&scratch, &args).arg("--failure-threshold=0"));
        assert_refused(&out, 2, &["flag --failure-threshold=\"0\""], &scratch, &[]);

        let out = output(in_scratch(&scratch, &args).arg("--engine-addressing=dns"));
        assert_refused(
            &out,
            2,
            &["flag --engine-addressing=\"dns\""],
            &scratch,
            &[],
        );

        let out = output(in_scratch(&scratch, &args).env("BACKEND_RUNTIME_PROBE_TIMEOUT", "soon"));
        assert_refused(
            &out,
            2,
            &["environment: BACKEND_RUNTIME_PROBE_TIMEOUT=\"soon\""],
            &scratch,
            &[],
        );

        std::fs::write(scratch.path.join("bad.toml"), "probe_concurrency = 0\n")
            .expect("config file written");
        let out = output(in_scratch(&scratch, &args).arg("--config=bad.toml"));
        assert_refused(
            &out,
            2,
            &["config file bad.toml: probe_concurrency=\"0\""],
            &scratch,
            &["bad.toml"],
        );

        std::fs::write(scratch.path.join("typo.toml"), "probe_concurency = 8\n")
            .expect("config file written");
        let out =
            output(in_scratch(&scratch, &args).env("BACKEND_RUNTIME_CONFIG_FILE", "typo.toml"));
        assert_refused(
            &out,
            2,
            &[
                "config file typo.toml: probe_concurency=\"8\"",
                "unknown configuration field",
            ],
            &scratch,
            &["bad.toml", "typo.toml"],
        );
    }
    for args in every_command() {
        let scratch = Scratch::new();
        let out = output(in_scratch(&scratch, &args).arg("--log-format=xml"));
        assert_refused(&out, 2, &["flag --log-format=\"xml\""], &scratch, &[]);

        let out = output(in_scratch(&scratch, &args).env("BACKEND_RUNTIME_LOG_LEVEL", "loud"));
        assert_refused(
            &out,
            2,
            &["environment: BACKEND_RUNTIME_LOG_LEVEL=\"loud\""],
            &scratch,
            &[],
        );

        std::fs::write(
            scratch.path.join("bad.toml"),
            "[database]\nmax_connections = 0\n",
        )
        .expect("config file written");
        let out = output(in_scratch(&scratch, &args).arg("--config=bad.toml"));
        assert_refused(
            &out,
            2,
            &["config file bad.toml: database.max_connections=\"0\""],
            &scratch,
            &["bad.toml"],
        );

        std::fs::write(scratch.path.join("broken.toml"), "[database\nurl = 1\n")
            .expect("config file written");
        let out = output(in_scratch(&scratch, &args).arg("--config=broken.toml"));
        assert_refused(
            &out,
            2,
            &["config file broken.toml: not valid TOML (line 1"],
            &scratch,
            &["bad.toml", "broken.toml"],
        );

        let out = output(in_scratch(&scratch, &args).arg("--config=missing.toml"));
        assert_refused(
            &out,
            2,
            &["cannot read config file missing.toml"],
            &scratch,
            &["bad.toml", "broken.toml"],
        );
    }
}

#[test]
fn a_metrics_address_in_use_is_refused_before_anything_else() {
    let scratch = Scratch::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = output(&mut in_scratch(&scratch, &["run", "--metrics-addr", &addr]));
    assert_refused(
        &out,
        1,
        &[&format!("cannot serve metrics on {addr}"), "--metrics-addr"],
        &scratch,
        &[],
    );

    let out =
        output(in_scratch(&scratch, &["run"]).env("BACKEND_RUNTIME_METRICS_ADDR", "localhost"));
    assert_refused(
        &out,
        2,
        &["environment: BACKEND_RUNTIME_METRICS_ADDR=\"localhost\""],
        &scratch,
        &[],
    );
}

#[test]
fn no_backtrace_unless_asked() {
    let scratch = Scratch::new();
    let out =
        output(in_scratch(&scratch, &["observe"]).env("DOCKER_HOST", "unix:///nonexistent.sock"));
    assert!(!stderr(&out).contains("backtrace"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);

    let out = output(
        in_scratch(&scratch, &["observe"])
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .env("RUST_BACKTRACE", "1"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).lines().count() > 1, "{}", stderr(&out));
}
