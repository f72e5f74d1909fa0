//! The `plan` command, run as a binary on good and bad scenario files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const GAME: &str = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_galaxy-runtime"))
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios")
}

fn plan_stdin(input: &str, format: &str) -> Output {
    let mut child = bin()
        .args(["plan", "--scenario", "-", "--format", format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("stdin accepts the scenario");
    child.wait_with_output().expect("the binary finishes")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn example_scenarios_give_their_expected_plans() {
    let mut checked = 0;
    for entry in std::fs::read_dir(scenarios_dir()).expect("examples/scenarios exists") {
        let path = entry.expect("readable entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".plan.json") {
            continue;
        }
        let expected_path = path.with_extension("plan.json");
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
        let output = bin()
            .args(["plan", "--format", "json", "--scenario"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let actual: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(actual["actions"], expected["actions"], "{name}: actions");
        assert_eq!(actual["findings"], expected["findings"], "{name}: findings");
        checked += 1;
    }
    assert_eq!(checked, 4, "every example scenario has an expected plan");
}

#[test]
fn json_plan_has_summary_and_reads_standard_input() {
    let scenario =
        std::fs::read_to_string(scenarios_dir().join("vanished-container.json")).unwrap();
    let output = plan_stdin(&scenario, "json");
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["summary"]["actions"]["set_status"], json!(1));
    assert_eq!(plan["summary"]["findings"]["awaiting_container"], json!(1));
    assert_eq!(plan["summary"]["actions"]["adopt"], json!(0));
}

#[test]
fn text_plan_groups_actions_and_counts_them() {
    let output = bin()
        .args(["plan", "--scenario"])
        .arg(scenarios_dir().join("healthy-fleet.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("publish_snapshot (2):"), "{text}");
    assert!(
        text.contains(&format!("= {GAME}  publish snapshot")),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("Plan: 3 actions (1 set_probe_failures, 2 publish_snapshot), 0 findings."),
        "{text}"
    );
}

#[test]
fn text_plan_escapes_container_supplied_text() {
    let scenario = json!({
        "now": "2026-11-27T12:00:00Z",
        "containers": [{
            "id": "c1", "name": "/evil\u{1b}[2J\nname", "image_ref": "x",
            "labels": {"galaxy.managed": "true"}, "state": "running",
            "created": "2026-11-27T11:00:00Z"
        }]
    });
    let output = plan_stdin(&scenario.to_string(), "text");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "raw escape reached the terminal: {text:?}"
    );
    assert!(text.contains("evil\\u{1b}[2J\\u{a}name"), "{text}");
}

/// Each bad document exits with 2 and names the offending field (or value) on stderr.
#[test]
fn bad_scenarios_exit_2_naming_the_field() {
    let record = |status: &str| json!({"game_id": GAME, "status": status, "status_changed_at": "2026-11-27T11:00:00Z"});
    let container = |state: &str| json!({"id": "c1", "name": "/x", "state": state, "created": "2026-11-27T11:00:00Z"});
    let now = "2026-11-27T12:00:00Z";
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "unknown top-level field",
            json!({"now": now, "extra": 1}),
            &["unknown field `extra`"],
        ),
        (
            "unknown record field",
            json!({"now": now, "records": [{"game_id": GAME, "status": "running", "status_changed_at": now, "colour": "red"}]}),
            &["records[0]", "unknown field `colour`"],
        ),
        (
            "bad record uuid",
            json!({"now": now, "records": [{"game_id": "not-a-uuid", "status": "running", "status_changed_at": now}]}),
            &["records[0].game_id", "not-a-uuid"],
        ),
        (
            "bad game uuid",
            json!({"now": now, "games": [{"game_id": "1234"}]}),
            &["games[0].game_id", "1234"],
        ),
        (
            "bad probe key",
            json!({"now": now, "probes": {"zzz": {"ok": 1}}}),
            &["probes", "zzz"],
        ),
        ("bad now", json!({"now": "noon"}), &["now", "noon"]),
        (
            "bad status_changed_at",
            json!({"now": now, "records": [{"game_id": GAME, "status": "running", "status_changed_at": "2026-11-27"}]}),
            &["records[0].status_changed_at"],
        ),
        (
            "missing now",
            json!({"records": []}),
            &["missing field `now`"],
        ),
        (
            "unknown status",
            json!({"now": now, "records": [record("zombie")]}),
            &["records[0].status", "zombie"],
        ),
        (
            "unknown container state",
            json!({"now": now, "containers": [container("sleeping")]}),
            &["containers[0].state", "sleeping"],
        ),
        (
            "bad duration",
            json!({"now": now, "config": {"start_grace": "2 minutes"}}),
            &["config.start_grace", "2 minutes"],
        ),
        (
            "failure_threshold 0",
            json!({"now": now, "config": {"failure_threshold": 0}}),
            &["config.failure_threshold"],
        ),
        (
            "negative count",
            json!({"now": now, "records": [{"game_id": GAME, "status": "running", "status_changed_at": now, "probe_failures": -1}]}),
            &["records[0].probe_failures", "-1"],
        ),
        (
            "negative config count",
            json!({"now": now, "config": {"removal_guard_min": -3}}),
            &["config.removal_guard_min", "-3"],
        ),
        (
            "probe neither ok nor error",
            json!({"now": now, "probes": {GAME: {"maybe": 1}}}),
            &["probes", "maybe"],
        ),
        (
            "duplicate records",
            json!({"now": now, "records": [record("running"), record("stopped")]}),
            &["records[1].game_id", "duplicate game id"],
        ),
        (
            "duplicate games",
            json!({"now": now, "games": [{"game_id": GAME}, {"game_id": GAME.to_uppercase()}]}),
            &["games[1].game_id", "duplicate game id"],
        ),
    ];
    for (what, scenario, expected) in cases {
        let output = plan_stdin(&scenario.to_string(), "json");
        let err = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: exit status; stderr: {err}"
        );
        assert!(output.stdout.is_empty(), "{what}: printed a plan anyway");
        for needle in expected {
            assert!(
                err.contains(needle),
                "{what}: stderr lacks {needle:?}: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn malformed_documents_exit_2_without_panicking() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (what, input) in [
        ("empty", String::new()),
        ("not JSON", "plan please".to_owned()),
        (
            "truncated",
            r#"{"now": "2026-11-27T12:00:00Z", "records": ["#.to_owned(),
        ),
        ("wrong type", "[]".to_owned()),
        ("deep nesting", deep),
        ("invalid UTF-8 escape", r#"{"now": "\ud800"}"#.to_owned()),
    ] {
        let output = plan_stdin(&input, "text");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("scenario standard input"), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn unreadable_file_names_its_path() {
    let output = bin()
        .args(["plan", "--scenario", "/nonexistent/scenario.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/scenario.json"), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    let output = bin()
        .args(["plan", "--scenario", "-", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("yaml"));
}
