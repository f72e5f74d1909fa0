//! The commands end to end, against the real Docker engine and a SQLite file: `run`,
//! `reconcile --once [--dry-run]`, `observe | plan`, `status` and `games`.
//!
//! Each test makes its own containers, network, label value and database, so the tests run in
//! parallel with each other and with other test binaries.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use galaxy_runtime_model::GameId;
use serde_json::Value;

#[test]
fn run_adopts_a_registered_games_container_marks_a_removed_one_and_stops_on_sigint() {
    let Some(fleet) = Fleet::new() else { return };
    let (kept, removed) = (GameId::new_random(), GameId::new_random());
    for game in [kept, removed] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    fleet.start_engine(kept);
    let removed_container = fleet.start_engine(removed);

    let log = fleet.scratch.path.join("run.log");
    // A periodic pass only every hour: after the start-up pass, only Docker events wake the
    // loop, so noticing the removal below proves the event wake-up.
    let child = fleet
        .command(&["run", "--reconcile-interval=1h", "--event-debounce=100ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run starts");
    let mut run = Running(child);

    wait_until(
        "both games are adopted as running",
        Duration::from_secs(30),
        || {
            status_of(&fleet, kept).as_deref() == Some("running")
                && status_of(&fleet, removed).as_deref() == Some("running")
        },
    );
    fleet.remove(&removed_container);
    wait_until(
        "the game whose container was removed is marked removed",
        Duration::from_secs(30),
        || status_of(&fleet, removed).as_deref() == Some("removed"),
    );
    assert_eq!(status_of(&fleet, kept).as_deref(), Some("running"));

    let pid = run.0.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let exit = wait_exit(&mut run.0, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        exit.success(),
        "run exited with {exit} after SIGINT:\n{text}"
    );

    for expected in [
        format!("adopt game_id={kept}"),
        format!("adopt game_id={removed}"),
        format!("set_status game_id={removed} from=running to=removed"),
        "lobby event event_id=".to_owned(),
        format!("game_id={removed} op=reconcile status=removed"),
        "reconcile pass done in".to_owned(),
        "SIGINT: stopping after the pass in flight".to_owned(),
        "galaxy-runtime run: stopped".to_owned(),
    ] {
        assert!(
            text.contains(&expected),
            "the log lacks {expected:?}:\n{text}"
        );
    }
}

#[test]
fn run_writes_json_log_lines_when_asked() {
    let Some(fleet) = Fleet::new() else { return };
    let game = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
        "games add",
    );
    fleet.start_engine(game);
    let log = fleet.scratch.path.join("run.jsonl");
    let child = fleet
        .command(&["run", "--log-format=json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run starts");
    let mut run = Running(child);
    wait_until("the game is adopted", Duration::from_secs(30), || {
        status_of(&fleet, game).as_deref() == Some("running")
    });
    let pid = run.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let exit = wait_exit(&mut run.0, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        exit.success(),
        "run exited with {exit} after SIGTERM:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().all(|l| l["ts"].is_string()
            && l["level"].is_string()
            && l["target"].is_string()
            && l["message"].is_string()),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("adopt game_id={game}")))),
        "{text}"
    );
}

#[test]
fn reconcile_dry_run_changes_nothing() {
    let Some(fleet) = Fleet::new() else { return };
    let (registered, orphan) = (GameId::new_random(), GameId::new_random());
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &registered.to_string()])),
        "games add",
    );
    fleet.start_engine(registered);
    fleet.start_engine(orphan);

    let out = output(&mut fleet.command(&["reconcile", "--once", "--dry-run"]));
    assert_success(&out, "reconcile --once --dry-run");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("+ {registered}  adopt container")),
        "{text}"
    );
    assert!(text.contains("orphan_container"), "{text}");
    assert!(text.contains("Dry run: nothing was written."), "{text}");

    let out = output(&mut fleet.command(&["reconcile", "--once", "--dry-run", "--format=json"]));
    assert_success(&out, "reconcile --once --dry-run --format json");
    let document = json(&out);
    assert_eq!(document["dry_run"], true);
    assert_eq!(document["report"], Value::Null);
    assert_eq!(document["plan"]["actions"][0]["kind"], "adopt");

    assert!(status(&fleet).is_empty(), "a dry run wrote records");
    assert!(
        !fleet.scratch.files().iter().any(|f| f.ends_with(".leader")),
        "a dry run took the leader lock"
    );
}

/// The plan of `observe | plan --scenario -` is the plan `reconcile --once` then prints and
/// applies.
#[test]
fn observe_piped_into_plan_gives_the_plan_that_reconcile_applies() {
    let Some(fleet) = Fleet::new() else { return };
    let (kept, vanishing, orphan) = (
        GameId::new_random(),
        GameId::new_random(),
        GameId::new_random(),
    );
    for game in [kept, vanishing] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    let kept_container = fleet.start_engine(kept);
    let vanishing_container = fleet.start_engine(vanishing);
    fleet.wait_engine(&kept_container);
    fleet.wait_engine(&vanishing_container);
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "first reconcile",
    );
    fleet.remove(&vanishing_container);
    let orphan_container = fleet.start_engine(orphan);
    fleet.wait_engine(&orphan_container);

    let observed = output(&mut fleet.command(&["observe"]));
    assert_success(&observed, "observe");
    let scenario = json(&observed);
    assert_eq!(scenario["containers"].as_array().map(Vec::len), Some(2));
    assert_eq!(scenario["records"].as_array().map(Vec::len), Some(2));

    let mut plan = bin()
        .args(["plan", "--scenario", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plan starts");
    plan.stdin
        .take()
        .expect("stdin is piped")
        .write_all(&observed.stdout)
        .expect("plan reads the scenario");
    let planned = plan.wait_with_output().expect("plan finishes");
    assert_success(&planned, "plan --scenario -");
    let replayed = json(&planned);

    let applied = output(&mut fleet.command(&["reconcile", "--once", "--format", "json"]));
    assert_success(&applied, "reconcile --once --format json");
    let document = json(&applied);
    assert_eq!(document["plan"]["actions"], replayed["actions"]);
    assert_eq!(document["plan"]["findings"], replayed["findings"]);

    // The plan: the vanished container's record is removed, the live one gets its snapshot,
    // the orphan is reported and left alone.
    let kinds: Vec<(String, String)> = replayed["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or_default().to_owned(),
                a["game_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("set_status".to_owned(), vanishing.to_string())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("publish_snapshot".to_owned(), kept.to_string())),
        "{kinds:?}"
    );
    assert_eq!(replayed["findings"][0]["kind"], "orphan_container");

    let report = &document["report"];
    assert_eq!(document["error"], Value::Null);
    assert_eq!(report["applied"]["set_status"], 1);
    assert_eq!(report["applied"]["publish_snapshot"], 1);
    assert_eq!(status_of(&fleet, vanishing).as_deref(), Some("removed"));
    assert_eq!(status_of(&fleet, kept).as_deref(), Some("running"));
    assert_eq!(status_of(&fleet, orphan), None, "an orphan was adopted");
}

#[test]
fn status_prints_a_table_when_piped_and_json_when_asked() {
    let Some(fleet) = Fleet::new() else { return };
    let game = GameId::new_random();
    let container = fleet.start_registered_game(game);
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "adoption pass",
    );
    // The second pass probes the adopted engine and publishes its snapshot.
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "probe pass",
    );

    let out = output(&mut fleet.db_command(&["status"]));
    assert_success(&out, "status");
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    for column in [
        "GAME",
        "STATUS",
        "CONTAINER",
        "ENGINE",
        "PROBE FAILURES",
        "SNAPSHOT AGE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with(&game.to_string()), "{text}");
    assert!(row.contains("running"), "{text}");
    assert!(row.contains(&container[..12]), "{text}");
    assert!(row.contains("1.0.0"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in piped output: {text:?}"
    );
    assert!(text.contains("1 record: 1 running."), "{text}");

    let records = status(&fleet);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["game_id"], game.to_string());
    assert_eq!(record["status"], "running");
    assert_eq!(record["current_container_id"], container);
    assert_eq!(record["current_engine_version"], "1.0.0");
    assert_eq!(record["probe_failures"], 0);
    assert!(record["last_snapshot_at"].is_string(), "{record}");
    assert!(record["last_snapshot_age_seconds"].is_u64(), "{record}");
}

#[test]
fn reconcile_respects_the_leader_lock_of_a_running_loop() {
    let Some(fleet) = Fleet::new() else { return };
    let game = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
        "games add",
    );
    fleet.start_engine(game);
    let child = fleet
        .command(&["run", "--reconcile-interval=1h"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run starts");
    let mut run = Running(child);
    wait_until("the game is adopted", Duration::from_secs(30), || {
        status_of(&fleet, game).as_deref() == Some("running")
    });
    let out = output(&mut fleet.command(&["reconcile", "--once"]));
    assert_success(&out, "reconcile --once beside run");
    assert!(
        stdout(&out).contains("Skipped: another replica holds the leader lock"),
        "{}",
        stdout(&out)
    );
    let pid = run.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(wait_exit(&mut run.0, Duration::from_secs(30)).success());
}

#[test]
fn status_watch_streams_what_changes_until_sigterm() {
    let Some(fleet) = Fleet::new() else { return };
    let game = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
        "games add",
    );
    // `reconcile --once` makes the schema of the fleet's SQLite file on the way.
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "the first pass",
    );
    let child = fleet
        .db_command(&["status", "--watch", "--interval=200ms", "--format=json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("status --watch starts");
    let mut watch = Running(child);
    let (lines, received) = std::sync::mpsc::channel::<Value>();
    let stdout = watch.0.stdout.take().expect("piped");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if lines.send(value).is_err() {
                return;
            }
        }
    });
    let next = || {
        received
            .recv_timeout(Duration::from_secs(30))
            .expect("a line of status --watch")
    };

    let container = fleet.start_engine(game);
    fleet.wait_engine(&container);
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "the adopting pass",
    );
    let added = next();
    assert_eq!(
        (added["game_id"].as_str(), added["change"].as_str()),
        (Some(game.to_string().as_str()), Some("added")),
        "{added}"
    );
    assert_eq!(added["status"], "running", "{added}");

    fleet.remove(&container);
    assert_success(
        &output(&mut fleet.command(&["reconcile", "--once"])),
        "the removing pass",
    );
    let changed = next();
    assert_eq!(changed["change"], "changed", "{changed}");
    assert_eq!(changed["status"], "removed", "{changed}");
    // Nothing changes after that: no line, however many draws.
    assert!(
        received.recv_timeout(Duration::from_millis(800)).is_err(),
        "a draw without a change prints nothing"
    );

    let pid = watch.0.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = wait_exit(&mut watch.0, Duration::from_secs(10));
    assert!(
        status.success(),
        "status --watch stops cleanly on SIGTERM: {status:?}"
    );
}
