//! `games add|list|remove` round trips on a SQLite file; no Docker needed.

mod common;

use common::*;
use galaxy_runtime_model::GameId;
use serde_json::json;

fn games(scratch: &Scratch, args: &[&str]) -> std::process::Output {
    let mut command = bin();
    command
        .arg("games")
        .args(args)
        .arg(format!("--database-url={}", scratch.sqlite_url()));
    output(&mut command)
}

#[test]
fn games_round_trip() {
    let scratch = Scratch::new();
    let (a, b) = (GameId::new_random(), GameId::new_random());

    let out = games(
        &scratch,
        &["add", &a.to_string(), "--turn-schedule", "0 */6 * * *"],
    );
    assert_success(&out, "games add");
    assert_eq!(stdout(&out), format!("game {a} added\n"));
    assert_success(&games(&scratch, &["add", &b.to_string()]), "games add");

    let listed = json(&games(&scratch, &["list", "--format", "json"]));
    let mut expected = vec![
        json!({"game_id": a.to_string(), "turn_schedule": "0 */6 * * *"}),
        json!({"game_id": b.to_string(), "turn_schedule": ""}),
    ];
    expected.sort_by_key(|g| g["game_id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(listed, json!(expected));

    // Adding again replaces the projection.
    assert_success(
        &games(
            &scratch,
            &["add", &a.to_string(), "--turn-schedule", "0 0 * * *"],
        ),
        "games add again",
    );
    let text = stdout(&games(&scratch, &["list"]));
    assert!(text.starts_with("GAME"), "{text}");
    assert!(text.contains(&format!("{a}  0 0 * * *")), "{text}");
    assert!(text.ends_with("2 games.\n"), "{text}");

    let out = games(&scratch, &["remove", &a.to_string()]);
    assert_success(&out, "games remove");
    assert_eq!(stdout(&out), format!("game {a} removed\n"));
    let listed = json(&games(&scratch, &["list", "--format", "json"]));
    assert_eq!(
        listed,
        json!([{"game_id": b.to_string(), "turn_schedule": ""}])
    );

    let out = games(&scratch, &["remove", &a.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("game {a} has no projection")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn game_ids_are_normalised_and_checked_before_the_database_is_opened() {
    let scratch = Scratch::new();
    let out = games(&scratch, &["add", "6F1C0E7A-3B8D-4F7C-9E2A-1B2C3D4E5F60"]);
    assert_success(&out, "games add in upper case");
    assert_eq!(
        stdout(&out),
        "game 6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60 added\n"
    );

    let empty = Scratch::new();
    for args in [["add", "not-a-uuid"], ["remove", "6f1c0e7a"]] {
        let out = games(&empty, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("galaxy-runtime: game id \""), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            empty.files().is_empty(),
            "bad input wrote {:?}",
            empty.files()
        );
    }
}
