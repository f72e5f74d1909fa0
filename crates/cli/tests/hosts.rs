//! Several Docker hosts from the command line (CONTRACT §6), against the real Docker engine
//! and a SQLite file: repeated `--docker-host NAME=URL`, a host whose daemon does not answer
//! (its records unobserved, never removed), a game seen on another host (rebound with its
//! host), and `status` showing each record's host.

mod common;

use common::*;
use galaxy_runtime_model::GameId;
use serde_json::Value;

fn findings(document: &Value, kind: &str) -> Vec<Value> {
    document["plan"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .cloned()
        .collect()
}

#[test]
fn a_host_that_does_not_answer_keeps_its_records_and_a_moved_game_is_rebound() {
    let Some(fleet) = Fleet::new() else { return };
    let real = real_daemon();
    let missing = format!(
        "unix://{}",
        fleet.scratch.path.join("no-daemon.sock").display()
    );
    let (vanishing, moving) = (GameId::new_random(), GameId::new_random());
    for game in [vanishing, moving] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    let vanishing_container = fleet.start_engine(vanishing);
    fleet.start_engine(moving);

    // Host a is the real daemon: both games are adopted on it.
    reconcile_on_hosts(&fleet, &[("a", &real)]);
    assert_eq!(record_of(&fleet, vanishing)["docker_host"], "a");
    assert_eq!(record_of(&fleet, moving)["docker_host"], "a");

    // The real daemon is now host b, and host a does not answer: the vanished container's
    // record (on a) is unobserved, not removed; the other game, seen on b, moves there.
    fleet.remove(&vanishing_container);
    let document = reconcile_on_hosts(&fleet, &[("b", &real), ("a", &missing)]);
    assert_eq!(record_of(&fleet, vanishing)["status"], "running");
    assert_eq!(record_of(&fleet, moving)["docker_host"], "b");
    let unavailable = findings(&document, "host_unavailable");
    assert_eq!(unavailable.len(), 1, "{document:#}");
    assert_eq!(unavailable[0]["host"], "a");
    assert_eq!(unavailable[0]["records"], 1);
    assert!(
        document["plan"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["to"] != "removed"),
        "{document:#}"
    );

    // Host a answers again (the real daemon): the vanished game is removed now.
    reconcile_on_hosts(&fleet, &[("a", &real), ("b", &missing)]);
    assert_eq!(record_of(&fleet, vanishing)["status"], "removed");

    // The table shows the hosts.
    let out = output(&mut fleet.db_command(&["status"]));
    assert_success(&out, "status");
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("HOST"), "{text}");
}

#[test]
fn hosts_that_cannot_be_told_apart_are_bad_input() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--docker-host=a=unix:///a.sock",
                "--docker-host=a=unix:///b.sock",
            ],
            "two Docker hosts are named \"a\"",
        ),
        (&["--docker-host=A=unix:///a.sock"], "a-z 0-9"),
        (
            &[
                "--docker-host=unix:///a.sock",
                "--docker-host=unix:///b.sock",
            ],
            "is not NAME=URL",
        ),
    ];
    for (flags, needle) in cases {
        let out = output(bin().args(["reconcile", "--once", "--dry-run"]).args(flags));
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{flags:?}: {}", stderr(&out));
    }
    let out = output(bin().args(["reconcile", "--once", "--dry-run"]).env(
        "BACKEND_RUNTIME_DOCKER_HOSTS",
        "a=unix:///a.sock,a=unix:///b.sock",
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("BACKEND_RUNTIME_DOCKER_HOSTS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_kind_or_address_of_a_host_is_bad_input_naming_it() {
    let scratch = Scratch::new();
    let cases = [
        (
            "[[docker.hosts]]\nname = \"eu\"\nurl = \"unix:///a.sock\"\nkind = \"cluster\"\n",
            "kind \"cluster\" is neither \"daemon\" nor \"swarm\"",
        ),
        (
            "[[docker.hosts]]\nname = \"eu\"\nurl = \"swarm+unix:///a.sock\"\nkind = \"daemon\"\n",
            "kind \"daemon\" but a swarm+ URL",
        ),
        (
            "[[docker.hosts]]\nname = \"eu\"\nurl = \"unix:///a.sock\"\naddress = \"tcp://10.0.0.2\"\n",
            "address \"tcp://10.0.0.2\" is not a host name or an IP address",
        ),
        ("[docker]\naddress = \"10.0.0.2:2375\"\n", "docker.address"),
        ("[docker]\nkind = \"cluster\"\n", "docker.kind"),
    ];
    for (text, needle) in cases {
        std::fs::write(scratch.path.join("hosts.toml"), text).expect("config file written");
        let out = output(bin().current_dir(&scratch.path).args([
            "reconcile",
            "--once",
            "--dry-run",
            "--config=hosts.toml",
        ]));
        assert_eq!(out.status.code(), Some(2), "{text}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("hosts.toml"),
            "{text}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(needle), "{text}: {}", stderr(&out));
    }
    let out = output(
        bin()
            .args(["reconcile", "--once", "--dry-run"])
            .env("BACKEND_RUNTIME_DOCKER_KIND", "cluster"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("BACKEND_RUNTIME_DOCKER_KIND"),
        "{}",
        stderr(&out)
    );
    let out = output(bin().args([
        "reconcile",
        "--once",
        "--dry-run",
        "--engine-addressing=published",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("published"), "{}", stderr(&out));
}
