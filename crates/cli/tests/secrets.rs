//! No secret in any output: a database password holding `/`, `?`, `#` and `:` goes through
//! every command (against PostgreSQL, `DATABASE_URL`, and the real Docker engine), their errors,
//! their log lines at the debug level in both formats, and the metrics of a real `run`; none of
//! it shows the password or a piece of it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::pg::{Schema, database_url};
use common::*;
use galaxy_runtime_model::GameId;

/// The password: the characters that end a URL's parts, around pieces a grep can find.
const PASSWORD: &str = "Zq7/Xw9?Kp3#Vr5:Lm2";
/// Pieces of the password; none may appear anywhere.
const PIECES: &[&str] = &["Zq7", "Xw9", "Kp3", "Vr5", "Lm2"];

/// `url` (`postgres://user@host…`) with the password in its user info.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("DATABASE_URL names a user");
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    format!("{scheme}://{user}:{password}@{host}")
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for piece in PIECES {
        assert!(
            !text.contains(piece),
            "{what} shows a piece of the password ({piece}):\n{text}"
        );
    }
}

#[track_caller]
fn check(what: &str, out: &Output) {
    assert_no_secret(&format!("{what} (stdout)"), &stdout(out));
    assert_no_secret(&format!("{what} (stderr)"), &stderr(out));
}

/// The body of `GET path` on `addr`.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("the listener accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer read");
    answer
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn no_output_shows_the_database_password() {
    let Some(server) = database_url() else { return };
    let Some(fleet) = Fleet::new() else { return };
    let url = with_password(&server, PASSWORD);
    let fleet = fleet.with_database(url.clone());
    let schema = Schema::new(&server, &fleet.id);
    let env = |mut command: Command| {
        command
            .env("BACKEND_RUNTIME_DATABASE_SCHEMA", &schema.name)
            .env("BACKEND_RUNTIME_LOG_LEVEL", "debug");
        command
    };

    let out = output(&mut env(fleet.db_command(&["migrate"])));
    assert_success(&out, "migrate");
    check("migrate", &out);
    let game = GameId::new_random();
    let out = output(&mut env(fleet.db_command(&[
        "games",
        "add",
        &game.to_string(),
    ])));
    assert_success(&out, "games add");
    check("games add", &out);
    let container = fleet.start_engine(game);
    fleet.wait_engine(&container);

    for (what, args) in [
        ("reconcile --once", vec!["reconcile", "--once"]),
        (
            "reconcile --once --format json --log-format json",
            vec![
                "reconcile",
                "--once",
                "--format",
                "json",
                "--log-format",
                "json",
            ],
        ),
        ("observe", vec!["observe"]),
    ] {
        let out = output(&mut env(fleet.command(&args)));
        assert_success(&out, what);
        check(what, &out);
    }
    for (what, args) in [
        ("status", vec!["status"]),
        ("status --format json", vec!["status", "--format", "json"]),
        ("games list", vec!["games", "list"]),
    ] {
        let out = output(&mut env(fleet.db_command(&args)));
        assert_success(&out, what);
        check(what, &out);
    }

    // Errors: a server that does not answer, a URL tokio-postgres refuses, a URL the store
    // refuses, and a password given twice.
    let port = free_port();
    let unreachable = format!("postgres://runtime:{PASSWORD}@127.0.0.1:{port}/galaxy");
    let unparsable = format!("postgres://runtime:{PASSWORD}@127.0.0.1:notaport/galaxy");
    let unsupported = format!("mysql://runtime:{PASSWORD}@127.0.0.1/galaxy");
    for (what, url, code) in [
        ("an unreachable server", &unreachable, 1),
        ("an unparsable URL", &unparsable, 1),
        ("an unsupported URL", &unsupported, 2),
    ] {
        for args in [
            vec!["status"],
            vec!["games", "list", "--log-format", "json"],
        ] {
            let mut command = bin();
            command.args(&args).arg(format!("--database-url={url}"));
            let out = output(&mut env(command));
            assert_eq!(out.status.code(), Some(code), "{what}: {}", stderr(&out));
            check(what, &out);
        }
    }

    // The password from a file others may read: a warning naming the file, never its content.
    let password_file = fleet.scratch.path.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file written");
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644))
        .expect("mode set");
    let mut command = bin();
    command
        .args(["status", "--database-url", &server])
        .arg(format!(
            "--database-password-file={}",
            password_file.display()
        ));
    let out = output(&mut env(command));
    assert_success(&out, "status with a password file");
    check("status with a password file", &out);
    assert!(
        stderr(&out).contains("may be read by other users (mode 644)"),
        "{}",
        stderr(&out)
    );
    let mut command = bin();
    command
        .args(["status", "--database-url", &url])
        .arg(format!(
            "--database-password-file={}",
            password_file.display()
        ));
    let out = output(&mut env(command));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("one place"), "{}", stderr(&out));
    check("a password in the URL and in a file", &out);

    // A real run, its log lines and its metrics.
    let metrics = format!("127.0.0.1:{}", free_port());
    let log = fleet.scratch.path.join("run.log");
    let child = env(fleet.command(&["run", "--metrics-addr", &metrics]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run starts");
    let mut run = Running(child);
    let mut exposition = String::new();
    wait_until(
        "run serves metrics after a pass",
        Duration::from_secs(30),
        || {
            exposition = std::net::TcpStream::connect(&metrics)
                .map(|_| http_get(&metrics, "/metrics"))
                .unwrap_or_default();
            exposition.contains("galaxy_runtime_passes_total")
                && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("reconcile pass done"))
        },
    );
    assert_no_secret("/metrics", &exposition);
    let kill = Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = wait_exit(&mut run.0, Duration::from_secs(30));
    let log = std::fs::read_to_string(&log).expect("log read");
    assert!(status.success(), "run exited with {status}:\n{log}");
    assert!(
        log.contains(":***@"),
        "the start-up line names the database:\n{log}"
    );
    assert_no_secret("the log of run", &log);
}
