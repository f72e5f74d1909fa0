//! Two real Docker daemons (CONTRACT §6): the machine's own, and a second `dockerd` this test
//! starts beside it (its own bridge, address pool, data and socket; `live-restore`, so its
//! containers outlive a stop of the daemon) and stops by pid. Games on both; the second daemon
//! stopped → its games untouched and `host_unavailable` reported while the first host's
//! removal goes ahead; started again → nothing changed that should not have; a game's
//! container moved from one host to the other → rebound with its new host.
//!
//! It needs root (a bridge is made with `ip`) and `dockerd`, as CI has; without Docker at all
//! it fails saying how to start it, unless GALAXY_RUNTIME_SKIP_DOCKER=1.

mod common;

use common::daemon::{Network, SecondDaemon};
use common::*;
use galaxy_runtime_model::GameId;
use serde_json::Value;

/// The second daemon's bridge, its own, so the machine's `docker0` is never touched; its
/// addresses (10.213.0.0/24, and the pool 10.214.0.0/16 for its networks) lie outside Docker's
/// default pools, and apart from those of the other tests' second daemons.
const NETWORK: Network = Network {
    bridge: "br-grt2",
    address: "10.213.0.1/24",
    pool: "10.214.0.0/16",
};

#[test]
fn games_on_two_daemons_survive_one_daemon_stopping_and_follow_a_move() {
    let Some(fleet) = Fleet::new() else { return };
    let mut second = SecondDaemon::start(NETWORK);
    second.load_image();
    second.docker_ok(&["network", "create", &fleet.network]);
    let (real, second_url) = (real_daemon(), second.url());
    let hosts = [("one", real.as_str()), ("two", second_url.as_str())];

    let (on_one, vanishing, on_two) = (
        GameId::new_random(),
        GameId::new_random(),
        GameId::new_random(),
    );
    for game in [on_one, vanishing, on_two] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    fleet.start_engine(on_one);
    let vanishing_container = fleet.start_engine(vanishing);
    let two_container = second.start_engine(&fleet, on_two);

    reconcile_on_hosts(&fleet, &hosts);
    assert_eq!(record_of(&fleet, on_one)["docker_host"], "one");
    assert_eq!(record_of(&fleet, vanishing)["docker_host"], "one");
    let adopted = record_of(&fleet, on_two);
    assert_eq!(adopted["docker_host"], "two");
    assert_eq!(adopted["current_container_id"], two_container);

    // The second daemon stops; a container of the first host vanishes.
    second.stop();
    fleet.remove(&vanishing_container);
    let document = reconcile_on_hosts(&fleet, &hosts);
    assert_eq!(record_of(&fleet, vanishing)["status"], "removed");
    let untouched = record_of(&fleet, on_two);
    assert_eq!(untouched["status"], adopted["status"], "{document:#}");
    assert_eq!(untouched["current_container_id"], two_container);
    let unavailable: Vec<&Value> = document["plan"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "host_unavailable")
        .collect();
    assert_eq!(unavailable.len(), 1, "{document:#}");
    assert_eq!(unavailable[0]["host"], "two");
    assert_eq!(unavailable[0]["records"], 1, "its one record is unobserved");

    // Back again: its game is where it was, nothing to rebind or remove.
    second.run();
    let document = reconcile_on_hosts(&fleet, &hosts);
    let back = record_of(&fleet, on_two);
    assert_eq!(back["docker_host"], "two");
    assert_eq!(back["current_container_id"], two_container);
    assert_ne!(back["status"], "removed");
    assert!(
        document["plan"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "rebind" && a["to"] != "removed"),
        "{document:#}"
    );

    // The game moves to the first daemon: rebound there, with its new container.
    second.docker_ok(&["rm", "-f", &two_container]);
    let moved_container = fleet.start_engine(on_two);
    reconcile_on_hosts(&fleet, &hosts);
    let moved = record_of(&fleet, on_two);
    assert_eq!(moved["docker_host"], "one");
    assert_eq!(moved["current_container_id"], moved_container);
    assert_ne!(moved["status"], "removed");
}
