//! The container image of `scripts/build-image.sh`, built from this build's binary, run against
//! the real Docker engine (its socket mounted) and a SQLite file: it adopts a game, and on
//! SIGTERM (`docker stop`) finishes the pass in flight and exits 0.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use galaxy_runtime_model::GameId;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker command runs")
}

/// Removes the image whatever happens to the test.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

#[test]
fn the_image_adopts_a_game_and_stops_on_sigterm() {
    let Some(fleet) = Fleet::new() else { return };
    let tag = format!("galaxy-runtime-image-test:{}", fleet.id);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-image.sh");
    let built = Command::new(&script)
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_galaxy-runtime"),
            "--tag",
            &tag,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the script runs");
    let _image = Image(tag.clone());
    assert!(
        built.status.success(),
        "build-image.sh failed: {}",
        stderr(&built)
    );
    assert_eq!(stdout(&built).trim(), tag);

    let game = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
        "games add",
    );
    fleet.start_engine(game);

    let name = format!("galaxy-runtime-image-test-{}", fleet.id);
    let data = format!("{}:/data", fleet.scratch.path.display());
    let scope = format!("{SCOPE_LABEL}={}", fleet.id);
    let started = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &scope,
        "--network",
        &fleet.network,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &data,
        &tag,
        "run",
        "--database-url",
        "sqlite:///data/runtime.db",
        &format!("--managed-label-value={}", fleet.label_value),
        &format!("--docker-network={}", fleet.network),
        "--reconcile-interval=1s",
    ]);
    assert!(started.status.success(), "docker run: {}", stderr(&started));
    let logs = || stdout(&docker(&["logs", &name])) + &stderr(&docker(&["logs", &name]));

    let mut adopted = false;
    for _ in 0..150 {
        if status_of(&fleet, game).as_deref() == Some("running") {
            adopted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        adopted,
        "the image's run never adopted the game:\n{}",
        logs()
    );

    let stopped = docker(&["stop", "-t", "60", &name]);
    assert!(
        stopped.status.success(),
        "docker stop: {}",
        stderr(&stopped)
    );
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let logs = logs();
    assert_eq!(
        stdout(&code).trim(),
        "0",
        "exit code after SIGTERM:\n{logs}"
    );
    assert!(
        logs.contains("SIGTERM: stopping after the pass in flight")
            && logs.contains("galaxy-runtime run: stopped"),
        "{logs}"
    );
}
