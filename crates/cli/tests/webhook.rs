//! The lobby webhook of `galaxy-runtime run`, end to end: the real binary, the real Docker
//! engine, SQLite (PostgreSQL for the replicas) and a real hyper webhook on 127.0.0.1 — and the
//! faults it must survive: a SIGKILL while the lobby refuses, a lobby that hangs, a lobby that
//! fails for a while, two replicas on one database. Plus the bad input of the lobby settings.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use galaxy_runtime_model::{GameId, LobbyEvent, RuntimeStatus};
use galaxy_runtime_webhook::test_server::{Answer, BackgroundWebhookServer, Received};
use hmac::{KeyInit, Mac};
use serde_json::Value;

const SECRET: &str = "a lobby secret for the tests";

/// Whether `header` is `sha256=<hex HMAC-SHA256 of body under SECRET>`, checked with the hmac
/// crate, independently of the adapter's signing code.
fn signature_verifies(body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 {
        return false;
    }
    let Ok(expected) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `events --format json` of the fleet's database.
fn events(fleet: &Fleet, extra: &[&str], configure: &dyn Fn(&mut Command)) -> Vec<Value> {
    let mut args = vec!["events", "--format", "json"];
    args.extend_from_slice(extra);
    let mut command = fleet.db_command(&args);
    configure(&mut command);
    let out = output(&mut command);
    assert_success(&out, "events --format json");
    json(&out).as_array().cloned().unwrap_or_default()
}

fn no_env(_: &mut Command) {}

/// Registers `games` and starts their engines; returns their containers.
fn start_games(fleet: &Fleet, games: &[GameId], configure: &dyn Fn(&mut Command)) -> Vec<String> {
    games
        .iter()
        .map(|game| {
            let mut add = fleet.db_command(&["games", "add", &game.to_string()]);
            configure(&mut add);
            assert_success(&output(&mut add), "games add");
            fleet.start_engine(*game)
        })
        .collect()
}

/// `run` with the webhook at `url`, signed with the secret file in the fleet's scratch
/// directory, its log in `log_name`; quick retries, and a periodic pass only every hour unless
/// `extra` says otherwise (Docker events wake the loop for removals).
fn spawn_run(
    fleet: &Fleet,
    url: &str,
    log_name: &str,
    extra: &[&str],
    configure: &dyn Fn(&mut Command),
) -> Running {
    let secret_file = fleet.scratch.path.join("lobby.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file written");
    let log = fleet.scratch.path.join(log_name);
    let mut command = fleet.command(&[
        "run",
        "--event-debounce=100ms",
        "--retry-backoff=200ms",
        "--lobby-retry-max=2s",
        "--outbox-sweep=500ms",
    ]);
    command
        .arg(format!("--lobby-url={url}"))
        .arg(format!("--lobby-secret-file={}", secret_file.display()))
        .args(extra)
        .args(
            (!extra.iter().any(|a| a.starts_with("--reconcile-interval")))
                .then_some("--reconcile-interval=1h"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    configure(&mut command);
    Running(command.spawn().expect("run starts"))
}

fn log(fleet: &Fleet, name: &str) -> String {
    std::fs::read_to_string(fleet.scratch.path.join(name)).unwrap_or_default()
}

fn stop(run: &mut Running, fleet: &Fleet, log_name: &str) {
    let pid = run.0.id().to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let exit = wait_exit(&mut run.0, Duration::from_secs(30));
    assert!(
        exit.success(),
        "run exited with {exit}:\n{}",
        log(fleet, log_name)
    );
}

/// The requests for one game, in arrival order.
fn of_game(received: &[Received], game: GameId) -> Vec<Received> {
    received
        .iter()
        .filter(|r| r.event().game_id == game)
        .cloned()
        .collect()
}

#[test]
fn a_sigkilled_run_delivers_after_restart_with_the_same_event_id_and_a_valid_signature() {
    let Some(fleet) = Fleet::new() else { return };
    let webhook = BackgroundWebhookServer::start(Answer::Status(503));
    let game = GameId::new_random();
    let containers = start_games(&fleet, &[game], &no_env);

    let mut first = spawn_run(&fleet, &webhook.url, "first.log", &[], &no_env);
    wait_until("the game is adopted", Duration::from_secs(30), || {
        status_of(&fleet, game).as_deref() == Some("running")
    });
    fleet.remove(&containers[0]);
    wait_until(
        "the removal commits and the lobby refuses it",
        Duration::from_secs(30),
        || !webhook.received().is_empty(),
    );
    // SIGKILL: no shutdown, no chance to deliver or to record anything more.
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();
    assert_eq!(status_of(&fleet, game).as_deref(), Some("removed"));

    let refused = webhook.received();
    assert!(
        refused.iter().all(|r| r.answered == Some(503)),
        "{refused:?}"
    );
    let event_id = refused[0].event_id.clone().expect("an event id header");
    assert!(
        refused
            .iter()
            .all(|r| r.event_id.as_deref() == Some(&*event_id)),
        "one event, always the same id: {refused:?}"
    );
    // The kill may have come before the relay recorded the refusal: the event is pending,
    // perhaps still under the dead relay's claim, which expires.
    let pending = events(&fleet, &["--pending"], &no_env);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["event_id"], Value::from(event_id.clone()));
    assert!(
        pending[0]["state"] == "pending" || pending[0]["state"] == "in_flight",
        "{pending:?}"
    );

    webhook.set_answer(Answer::Status(200));
    let mut second = spawn_run(&fleet, &webhook.url, "second.log", &[], &no_env);
    wait_until(
        "the restarted run delivers the event",
        Duration::from_secs(30),
        || webhook.received().iter().any(Received::accepted),
    );
    let accepted: Vec<Received> = webhook
        .received()
        .into_iter()
        .filter(Received::accepted)
        .collect();
    let delivered = &accepted[0];
    assert_eq!(delivered.event_id.as_deref(), Some(&*event_id));
    let event: LobbyEvent = delivered.event();
    assert_eq!(event.event_id.to_string(), event_id);
    assert_eq!(event.game_id, game);
    assert_eq!(event.result.status, RuntimeStatus::Removed);
    assert_eq!(event.result.message, "container disappeared");
    assert_eq!(delivered.content_type.as_deref(), Some("application/json"));
    let signature = delivered.signature.as_deref().expect("signed");
    assert!(
        signature_verifies(&delivered.body, signature),
        "{signature}"
    );
    assert!(
        refused
            .iter()
            .all(|r| r.body == delivered.body && r.signature == delivered.signature),
        "every attempt sends the same bytes"
    );
    wait_until(
        "the outbox records the delivery",
        Duration::from_secs(10),
        || {
            events(&fleet, &[], &no_env)
                .iter()
                .all(|e| e["state"] == "delivered")
        },
    );
    stop(&mut second, &fleet, "second.log");
    let text = log(&fleet, "second.log");
    assert!(
        text.contains(&format!("lobby: webhook {}, signed", webhook.url)),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !log(&fleet, "first.log").contains(SECRET));
}

#[test]
fn a_hanging_lobby_never_slows_a_pass_and_gets_the_event_once_it_answers() {
    let Some(fleet) = Fleet::new() else { return };
    let webhook = BackgroundWebhookServer::start(Answer::Hang);
    let game = GameId::new_random();
    let containers = start_games(&fleet, &[game], &no_env);
    let mut run = spawn_run(
        &fleet,
        &webhook.url,
        "run.log",
        &["--lobby-timeout=3s"],
        &no_env,
    );
    wait_until("the game is adopted", Duration::from_secs(30), || {
        status_of(&fleet, game).as_deref() == Some("running")
    });
    fleet.remove(&containers[0]);
    wait_until(
        "the removal commits while the lobby hangs",
        Duration::from_secs(30),
        || status_of(&fleet, game).as_deref() == Some("removed") && !webhook.received().is_empty(),
    );
    assert!(webhook.received().iter().all(|r| r.answered.is_none()));

    // The pass that made the removal finished without waiting on the lobby: it reports a
    // time well under the lobby's timeout, which the hung delivery is still waiting out.
    let text = log(&fleet, "run.log");
    // The last pass that changed something is the removal's (the adoption's came before).
    let line = text
        .lines()
        .rfind(|l| l.contains("pass done in") && l.contains(": 1 applied"))
        .unwrap_or_default();
    let seconds: f64 = line
        .split("done in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pass line for the removal:\n{text}"));
    assert!(seconds < 3.0, "the removal's pass took {seconds}s:\n{text}");

    webhook.set_answer(Answer::Status(200));
    wait_until(
        "the event is delivered once the lobby answers",
        Duration::from_secs(30),
        || webhook.received().iter().any(Received::accepted),
    );
    let accepted: Vec<LobbyEvent> = webhook.accepted_events();
    assert_eq!(accepted[0].game_id, game);
    let hung = webhook.received()[0].event_id.clone();
    assert_eq!(
        Some(accepted[0].event_id.to_string()),
        hung,
        "the same event"
    );
    stop(&mut run, &fleet, "run.log");
    assert!(
        log(&fleet, "run.log").contains("timeout after 3s: POST"),
        "{}",
        log(&fleet, "run.log")
    );
}

#[test]
fn a_lobby_failing_for_a_while_gets_every_event_in_order_after_growing_delays() {
    let Some(fleet) = Fleet::new() else { return };
    let webhook = BackgroundWebhookServer::start(Answer::Status(500));
    let games = [GameId::new_random(), GameId::new_random()];
    let containers = start_games(&fleet, &games, &no_env);
    let failing_since = Instant::now();
    let mut run = spawn_run(
        &fleet,
        &webhook.url,
        "run.log",
        &[
            "--lobby-statuses=engine_unreachable,removed",
            "--failure-threshold=1",
            // Full passes probe: a stopped container becomes engine_unreachable in one.
            "--reconcile-interval=1s",
        ],
        &no_env,
    );
    wait_until("the games are adopted", Duration::from_secs(30), || {
        games
            .iter()
            .all(|g| status_of(&fleet, *g).as_deref() == Some("running"))
    });
    // Each game: its container stops (engine_unreachable, one event), then goes (removed, a
    // second one).
    for container in &containers {
        let out = Command::new("docker")
            .args(["stop", "-t", "0", container])
            .stdin(Stdio::null())
            .output()
            .expect("docker stop runs");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    wait_until(
        "both stopped containers are seen",
        Duration::from_secs(30),
        || {
            games
                .iter()
                .all(|g| status_of(&fleet, *g).as_deref() == Some("engine_unreachable"))
        },
    );
    for container in &containers {
        fleet.remove(container);
    }
    wait_until("both removals commit", Duration::from_secs(30), || {
        games
            .iter()
            .all(|g| status_of(&fleet, *g).as_deref() == Some("removed"))
    });
    // Fail for a while longer, so the first events see several retries.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(failing_since.elapsed()));
    wait_until(
        "at least four refused attempts of a game's first event",
        Duration::from_secs(30),
        || {
            let received = webhook.received();
            games.iter().all(|g| of_game(&received, *g).len() >= 4)
        },
    );
    // What the operator sees meanwhile: pending events, their attempts and the last error.
    let pending = events(&fleet, &["--pending"], &no_env);
    assert!(!pending.is_empty());
    assert!(
        pending
            .iter()
            .any(|e| e["attempts"].as_u64().unwrap_or(0) >= 1
                && e["last_error"]
                    .as_str()
                    .is_some_and(|t| t.contains("HTTP 500 Internal Server Error"))),
        "{pending:?}"
    );
    let mut table = fleet.db_command(&["events", "--pending"]);
    let table = output(&mut table);
    assert_success(&table, "events --pending");
    assert!(stdout(&table).contains("LAST ERROR"), "{}", stdout(&table));
    webhook.set_answer(Answer::Status(200));
    wait_until("every event is delivered", Duration::from_secs(60), || {
        events(&fleet, &["--pending"], &no_env).is_empty()
    });
    stop(&mut run, &fleet, "run.log");

    let received = webhook.received();
    let listed = events(&fleet, &[], &no_env);
    for game in games {
        let committed: Vec<String> = listed
            .iter()
            .filter(|e| e["game_id"] == game.to_string())
            .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(committed.len(), 2, "two events of game {game}: {listed:?}");
        let requests = of_game(&received, game);
        // None lost, in commit order: the accepted ids of the game are its committed ids.
        let mut accepted: Vec<String> = Vec::new();
        for r in requests.iter().filter(|r| r.accepted()) {
            let id = r.event_id.clone().unwrap_or_default();
            if accepted.last() != Some(&id) {
                accepted.push(id);
            }
        }
        assert_eq!(accepted, committed, "game {game}: {requests:?}");
        // The second event was never sent before the first was accepted.
        let first_accepted = requests
            .iter()
            .position(|r| r.accepted() && r.event_id.as_deref() == Some(&*committed[0]))
            .expect("first accepted");
        assert!(
            requests[..first_accepted]
                .iter()
                .all(|r| r.event_id.as_deref() == Some(&*committed[0])),
            "game {game}: {requests:?}"
        );
        // Retries of the first event came at growing delays: each at least the lower half of
        // its doubling ceiling (200ms, 400ms, 800ms, …, at most 2s).
        let tries: Vec<Instant> = requests[..=first_accepted]
            .iter()
            .map(|r| r.started)
            .collect();
        let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 3, "game {game}: {gaps:?}");
        for (i, gap) in gaps.iter().take(3).enumerate() {
            let ceiling = Duration::from_millis(200 << i).min(Duration::from_secs(2));
            assert!(
                *gap >= ceiling / 2 - Duration::from_millis(20),
                "retry {i} of game {game} after {gap:?}, under half of {ceiling:?}: {gaps:?}"
            );
        }
        assert!(gaps[2] > gaps[0], "the delays grow: game {game}: {gaps:?}");
    }
}

#[test]
fn lobby_settings_that_are_wrong_exit_2_naming_them() {
    let scratch = Scratch::new();
    let refused = |configure: &dyn Fn(&mut Command), expected: &[&str]| {
        let mut command = bin();
        command.current_dir(&scratch.path).arg("run");
        configure(&mut command);
        let out = output(&mut command);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        for text in expected {
            assert!(err.contains(text), "{text:?} missing from: {err}");
        }
        assert!(!err.contains(SECRET), "{err}");
        assert_eq!(stdout(&out), "");
    };
    refused(
        &|c| {
            c.arg("--lobby-url=ftp://lobby/hook");
        },
        &["flag --lobby-url=\"ftp://lobby/hook\"", "invalid lobby URL"],
    );
    refused(
        &|c| {
            c.env("BACKEND_RUNTIME_LOBBY_URL", "lobby:9000")
                .env("BACKEND_RUNTIME_LOBBY_SECRET", SECRET);
        },
        &["environment: BACKEND_RUNTIME_LOBBY_URL=\"lobby:9000\""],
    );
    refused(
        &|c| {
            c.arg("--lobby-url=https://lobby/hook");
        },
        &["https is not supported"],
    );
    std::fs::write(
        scratch.path.join("lobby.toml"),
        "[lobby]\nurl = \"gopher://lobby\"\n",
    )
    .expect("config file written");
    refused(
        &|c| {
            c.arg("--config=lobby.toml");
        },
        &["config file lobby.toml: lobby.url=\"gopher://lobby\""],
    );
    refused(
        &|c| {
            c.arg("--lobby-url=http://127.0.0.1:1/hook")
                .arg("--lobby-secret-file=/nonexistent/lobby.secret");
        },
        &[
            "flag --lobby-secret-file=\"/nonexistent/lobby.secret\"",
            "cannot read the lobby secret file",
        ],
    );
    refused(
        &|c| {
            c.arg("--lobby-statuses=removed,vanished");
        },
        &["flag --lobby-statuses=\"removed,vanished\"", "vanished"],
    );
    refused(
        &|c| {
            c.env("BACKEND_RUNTIME_LOBBY_STATUSES", "starting");
        },
        &["BACKEND_RUNTIME_LOBBY_STATUSES=\"starting\""],
    );
    // The secret is never a plain flag.
    let out = output(
        bin()
            .current_dir(&scratch.path)
            .args(["run", "--lobby-secret", SECRET]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--lobby-secret"), "{}", stderr(&out));
    assert_eq!(
        scratch.files(),
        vec!["lobby.toml".to_owned()],
        "nothing written"
    );
}

#[test]
fn events_refuses_bad_ids() {
    let scratch = Scratch::new();
    let url = scratch.sqlite_url();
    for (args, expected) in [
        (vec!["events", "--game", "nope"], "--game \"nope\""),
        (
            vec!["events", "redeliver", "nope"],
            "invalid event id \"nope\"",
        ),
    ] {
        let out = output(bin().args(&args).arg(format!("--database-url={url}")));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
    assert!(scratch.files().is_empty(), "bad input opens no database");
}

#[test]
fn two_replicas_on_postgres_deliver_each_event_never_twice_at_once() {
    let Some(url) = common::pg::database_url() else {
        return;
    };
    let Some(fleet) = Fleet::new() else { return };
    let fleet = fleet.with_database(url.clone());
    let schema = common::pg::Schema::new(&url, &fleet.id);
    let with_schema = |c: &mut Command| {
        c.env("BACKEND_RUNTIME_DATABASE_SCHEMA", &schema.name);
    };
    let webhook = BackgroundWebhookServer::start(Answer::Status(200));
    // Slow answers make two deliveries of one event overlap, were they ever sent at once.
    webhook.set_delay(Duration::from_millis(300));
    // A PostgreSQL database is migrated on purpose, before anything writes to it.
    let mut migrate = fleet.db_command(&["migrate"]);
    with_schema(&mut migrate);
    assert_success(&output(&mut migrate), "migrate");
    let games: Vec<GameId> = (0..3).map(|_| GameId::new_random()).collect();
    let containers = start_games(&fleet, &games, &with_schema);
    let mut a = spawn_run(&fleet, &webhook.url, "a.log", &[], &with_schema);
    let mut b = spawn_run(&fleet, &webhook.url, "b.log", &[], &with_schema);
    wait_until("the games are adopted", Duration::from_secs(30), || {
        let mut status = fleet.db_command(&["status", "--format", "json"]);
        with_schema(&mut status);
        let out = output(&mut status);
        let records = json(&out).as_array().cloned().unwrap_or_default();
        records.len() == games.len() && records.iter().all(|r| r["status"] == "running")
    });
    for container in &containers {
        fleet.remove(container);
    }
    wait_until(
        "every removal's event is delivered",
        Duration::from_secs(60),
        || {
            let listed = events(&fleet, &[], &with_schema);
            listed.len() == games.len() && listed.iter().all(|e| e["state"] == "delivered")
        },
    );
    stop(&mut a, &fleet, "a.log");
    stop(&mut b, &fleet, "b.log");

    let received = webhook.received();
    let mut by_event: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &received {
        by_event
            .entry(r.event_id.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    assert_eq!(by_event.len(), games.len(), "{received:?}");
    for (id, requests) in &by_event {
        assert!(requests.iter().any(|r| r.accepted()), "{id}: {requests:?}");
        for (i, x) in requests.iter().enumerate() {
            for y in &requests[i + 1..] {
                let apart = x.finished <= y.started || y.finished <= x.started;
                assert!(
                    apart,
                    "event {id} was in flight twice at once: {requests:?}"
                );
            }
        }
    }
    let delivered_games: Vec<GameId> = webhook
        .accepted_events()
        .iter()
        .map(|e| e.game_id)
        .collect();
    for game in &games {
        assert!(delivered_games.contains(game), "{delivered_games:?}");
    }
}
