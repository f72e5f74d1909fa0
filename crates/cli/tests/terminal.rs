//! Terminal hygiene: foreign text in bad input (a scenario file's keys and values, a
//! configuration file's keys, an environment variable's value) reaches standard error through
//! serde's and toml's messages, and none of it can act on the terminal there: no ESC, no BEL, no
//! bidi override.

mod common;

use std::process::{Command, Output};

use galaxy_runtime_model::GameId;

use common::*;

/// What a terminal would act on.
const FORBIDDEN: &[char] = &['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}', '\r'];

#[track_caller]
fn assert_clean(what: &str, out: &Output) {
    assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(out));
    let err = stderr(out);
    for c in FORBIDDEN {
        assert!(
            !err.contains(*c),
            "{what}: {c:?} reaches the terminal: {err:?}"
        );
    }
    assert!(
        err.contains("\\u{1b}") || err.contains("\\u{202e}"),
        "{what}: the escape is shown: {err:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{what}: one line: {err:?}"
    );
}

#[test]
fn bad_input_quoting_escape_sequences_is_escaped() {
    let scratch = Scratch::new();
    let evil = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\r\u{202e}";
    let scenario = |body: String| {
        let path = scratch.path.join("scenario.json");
        std::fs::write(&path, body).expect("scenario written");
        output(bin().args(["plan", "--scenario"]).arg(&path))
    };
    let key = serde_json::to_string(evil).expect("a JSON string");

    // An unknown field, as serde's message names it.
    let out = scenario(format!(
        r#"{{"now": "2026-11-27T12:00:00Z", {key}: 1, "containers": [], "records": []}}"#
    ));
    assert_clean("a scenario's unknown field", &out);

    // A map key that is not a game id.
    let out = scenario(format!(
        r#"{{"now": "2026-11-27T12:00:00Z", "containers": [], "records": [], "probes": {{{key}: {{"ok": {{}}}}}}}}"#
    ));
    assert_clean("a scenario's bad map key", &out);

    // A bad enum value.
    let out = scenario(format!(
        r#"{{"now": "2026-11-27T12:00:00Z", "containers": [], "records": [{{"status": {key}}}]}}"#
    ));
    assert_clean("a scenario's bad value", &out);

    // A configuration file's unknown key, and a bad value from the environment.
    let config = scratch.path.join("galaxy.toml");
    let toml_key = evil
        .replace('\u{1b}', "\\u001b")
        .replace('\u{7}', "\\u0007")
        .replace('\u{9b}', "\\u009b")
        .replace('\r', "\\r")
        .replace('\u{202e}', "\\u202e");
    std::fs::write(&config, format!("\"{toml_key}\" = 1\n")).expect("config written");
    let out = output(bin().args(["status", "--config"]).arg(&config));
    assert_clean("a configuration file's unknown key", &out);
    let out = output(
        bin()
            .args(["status", "--database-url", &scratch.sqlite_url()])
            .env("BACKEND_RUNTIME_LOG_FORMAT", evil),
    );
    assert_clean("an environment variable's value", &out);
}

/// `command` run on a real pseudo-terminal (util-linux `script`), standard output and error
/// both; the terminal's bytes.
fn on_a_terminal(command: &Command) -> Output {
    let quote =
        |text: &std::ffi::OsStr| format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(quote)
        .collect();
    let mut script = Command::new("script");
    script.args(["-q", "-f", "-e", "-c", &line.join(" "), "/dev/null"]);
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    let out = output(&mut script);
    assert!(
        out.status.success(),
        "{line:?} on a terminal: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

#[test]
fn on_a_terminal_a_pass_shows_its_probing_and_off_it_nothing() {
    let Some(fleet) = Fleet::new() else {
        return;
    };
    for _ in 0..2 {
        fleet.start_registered_game(GameId::new_random());
    }
    // The adopting pass probes the two engines, piped: no progress line anywhere.
    let piped = output(&mut fleet.command(&["reconcile", "--once"]));
    assert_success(&piped, "reconcile --once");
    for text in [stdout(&piped), stderr(&piped)] {
        assert!(!text.contains("probing engines"), "{text}");
    }

    for args in [&["reconcile", "--once"][..], &["observe"][..]] {
        let tty = on_a_terminal(&fleet.command(args));
        let screen = stdout(&tty);
        assert!(
            screen.contains("probing engines: 0/2 done, 0 failures"),
            "{args:?}: {screen}"
        );
    }
    // For machines, nothing but the document, even on a terminal.
    let tty = on_a_terminal(&fleet.command(&["reconcile", "--once", "--format=json"]));
    let screen = stdout(&tty);
    assert!(!screen.contains("probing engines"), "{screen}");
    assert!(screen.contains("\"plan\""), "{screen}");
}
