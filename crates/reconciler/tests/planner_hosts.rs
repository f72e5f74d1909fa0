//! Table tests of the planning rules with several Docker hosts (CONTRACT §6): R3, R4, R6′, R7,
//! R10 and R12 as they read across hosts, and the state `unknown` (§1).

use std::collections::BTreeMap;
use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, HostObservation, Observation,
    PassKind, ProbeOutcome, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_reconciler::{Action, Finding, Plan, Rebinding, plan};
use serde_json::json;

use RuntimeStatus::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn gid(n: u8) -> GameId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

/// A running managed container of game `game` with id `id`, listed on `host`.
fn on(host: &str, id: &str, game: u8) -> ContainerSummary {
    ContainerSummary {
        id: id.to_owned(),
        name: format!("/galaxy-game-{}", gid(game)),
        image_ref: "galaxy/engine:1.4".to_owned(),
        labels: BTreeMap::from([
            ("galaxy.managed".to_owned(), "true".to_owned()),
            ("galaxy.engine_version".to_owned(), "1.4.0".to_owned()),
        ]),
        state: ContainerState::Running,
        created: at("2026-11-27T11:00:00Z"),
        addresses: BTreeMap::new(),
        host: host.to_owned(),
        published_ports: BTreeMap::new(),
    }
}

/// A `running` record of game `game` on container `id` of `host` (`""`: the first host).
fn record(game: u8, host: &str, id: &str) -> RuntimeRecord {
    RuntimeRecord {
        current_container_id: id.to_owned(),
        docker_host: host.to_owned(),
        ..RuntimeRecord::new(gid(game), Running, at("2026-11-27T11:00:05Z"))
    }
}

fn observe(
    hosts: Vec<HostObservation>,
    containers: Vec<ContainerSummary>,
    records: Vec<RuntimeRecord>,
) -> Observation {
    Observation {
        pass: PassKind::Quick,
        hosts,
        now: at("2026-11-27T12:00:00Z"),
        containers: containers.into_iter().map(Arc::new).collect(),
        records: records.into_iter().map(Arc::new).collect(),
        games: Vec::new(),
        probes: BTreeMap::new(),
        projections_error: None,
    }
}

fn two_hosts() -> Vec<HostObservation> {
    vec![HostObservation::listed("a"), HostObservation::listed("b")]
}

fn run(obs: &Observation) -> Plan {
    plan(obs, &Config::default())
}

fn removed(game: u8) -> Action {
    Action::SetStatus {
        game_id: gid(game),
        from: Running,
        to: Removed,
        message: "container disappeared".to_owned(),
    }
}

fn rebind(game: u8, id: &str, host: &str) -> Action {
    Action::Rebind(Box::new(Rebinding {
        game_id: gid(game),
        container_id: id.to_owned(),
        image_ref: "galaxy/engine:1.4".to_owned(),
        engine_version: "1.4.0".to_owned(),
        docker_host: host.to_owned(),
    }))
}

fn unavailable(host: &str, error: &str, records: u64) -> Finding {
    Finding::HostUnavailable {
        host: host.to_owned(),
        error: error.to_owned(),
        records,
    }
}

// ---------------------------------------------------------------- R6′

#[test]
fn r6p_the_records_of_a_host_that_failed_are_unobserved_not_missing() {
    let obs = observe(
        vec![
            HostObservation::listed("a"),
            HostObservation::failed("b", "connection refused"),
        ],
        vec![],
        vec![
            record(1, "a", "c1"),
            record(2, "b", "c2"),
            record(3, "", "c3"),
        ],
    );
    let p = run(&obs);
    // Game 3's `""` is the first host, a, which listed fine: its container is missing.
    assert_eq!(p.actions, vec![removed(1), removed(3)]);
    assert_eq!(p.findings, vec![unavailable("b", "connection refused", 1)]);
}

#[test]
fn r6p_the_first_host_is_the_one_an_empty_docker_host_stands_for() {
    let obs = observe(
        vec![
            HostObservation::failed("b", "timeout after 5s"),
            HostObservation::listed("a"),
        ],
        vec![],
        vec![record(1, "", "c1"), record(2, "a", "c2")],
    );
    let p = run(&obs);
    assert_eq!(p.actions, vec![removed(2)]);
    assert_eq!(p.findings, vec![unavailable("b", "timeout after 5s", 1)]);
}

#[test]
fn r6p_a_host_that_is_not_configured_is_unavailable_and_a_failed_host_counts_zero() {
    let obs = observe(
        vec![
            HostObservation::listed("a"),
            HostObservation::failed("b", "refused"),
        ],
        vec![],
        vec![
            record(1, "gone", "c1"),
            record(2, "gone", "c2"),
            // A starting record inside its grace is unobserved too: no awaiting finding.
            RuntimeRecord {
                status: Starting,
                status_changed_at: at("2026-11-27T11:59:50Z"),
                ..record(3, "gone", "")
            },
        ],
    );
    let p = run(&obs);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.findings,
        vec![
            unavailable("b", "refused", 0),
            unavailable("gone", "not configured", 3)
        ]
    );
}

#[test]
fn r6p_without_hosts_a_record_naming_a_host_is_unobserved() {
    let obs = observe(
        vec![],
        vec![],
        vec![record(1, "a", "c1"), record(2, "", "c2")],
    );
    let p = run(&obs);
    assert_eq!(p.actions, vec![removed(2)]);
    assert_eq!(p.findings, vec![unavailable("a", "not configured", 1)]);
}

#[test]
fn r6p_a_record_of_a_failed_host_whose_game_shows_up_elsewhere_is_rebound() {
    let obs = observe(
        vec![
            HostObservation::listed("a"),
            HostObservation::failed("b", "refused"),
        ],
        vec![on("a", "c9", 1)],
        vec![record(1, "b", "c1")],
    );
    let p = run(&obs);
    assert_eq!(p.actions, vec![rebind(1, "c9", "a")]);
    assert_eq!(p.findings, vec![unavailable("b", "refused", 0)]);
}

// ---------------------------------------------------------------- R4, R7

#[test]
fn r4_container_ids_are_unique_within_a_host_only() {
    // Host b lists a container with game 1's recorded id, but it runs game 2.
    let obs = Observation {
        games: vec![GameProjection {
            game_id: gid(2),
            turn_schedule: String::new(),
        }],
        ..observe(
            two_hosts(),
            vec![on("b", "c1", 2)],
            vec![record(1, "a", "c1")],
        )
    };
    let p = run(&obs);
    assert_eq!(p.actions.len(), 2, "{:?}", p.actions);
    assert_eq!(p.actions[0], removed(1));
    assert!(
        matches!(&p.actions[1], Action::Adopt(a)
            if a.game_id == gid(2) && a.container_id == "c1" && a.docker_host == "b"),
        "{:?}",
        p.actions[1]
    );
}

#[test]
fn r7_a_container_with_the_same_id_on_another_host_is_a_move() {
    let obs = observe(
        two_hosts(),
        vec![on("b", "c1", 1)],
        vec![record(1, "a", "c1")],
    );
    assert_eq!(run(&obs).actions, vec![rebind(1, "c1", "b")]);
}

#[test]
fn r7_an_empty_docker_host_matches_on_the_first_host_without_a_rebind() {
    let obs = observe(
        two_hosts(),
        vec![on("a", "c1", 1), on("b", "c2", 2)],
        vec![record(1, "", "c1"), record(2, "", "c2")],
    );
    // Game 1 runs where its record says (the first host); game 2's container is on b.
    assert_eq!(run(&obs).actions, vec![rebind(2, "c2", "b")]);
}

// ---------------------------------------------------------------- R3

#[test]
fn r3_the_record_s_own_container_is_kept_on_its_host() {
    let obs = observe(
        two_hosts(),
        vec![on("a", "x", 1), on("b", "x", 1)],
        vec![record(1, "b", "x")],
    );
    let p = run(&obs);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.findings,
        vec![Finding::DuplicateContainer {
            game_id: gid(1),
            container_id: "x".into(),
            kept_container_id: "x".into(),
            host: "a".into(),
            kept_host: "b".into(),
        }]
    );
}

#[test]
fn r3_ties_go_to_the_smallest_host_then_id() {
    let obs = observe(
        vec![HostObservation::listed("b"), HostObservation::listed("a")],
        vec![on("b", "a1", 1), on("a", "z9", 1)],
        vec![],
    );
    let p = run(&obs);
    assert_eq!(
        p.findings,
        vec![
            Finding::DuplicateContainer {
                game_id: gid(1),
                container_id: "a1".into(),
                kept_container_id: "z9".into(),
                host: "b".into(),
                kept_host: "a".into(),
            },
            Finding::OrphanContainer {
                game_id: gid(1),
                container_id: "z9".into(),
            },
        ]
    );
}

// ---------------------------------------------------------------- R12

#[test]
fn r12_the_removal_guard_holds_per_host() {
    // Host a: 11 of 20 records lost their containers (over both limits); host b: 1 of 2.
    let mut containers = Vec::new();
    let mut records = Vec::new();
    for g in 0..20u8 {
        records.push(record(g, "a", &format!("a{g}")));
        if g >= 11 {
            containers.push(on("a", &format!("a{g}"), g));
        }
    }
    records.push(record(100, "b", "b100"));
    records.push(record(101, "b", "b101"));
    containers.push(on("b", "b101", 101));
    let p = run(&observe(two_hosts(), containers, records));
    assert_eq!(p.actions, vec![removed(100)]);
    assert_eq!(
        p.findings,
        vec![Finding::RemovalGuardTripped {
            host: "a".into(),
            would_remove: 11,
            live: 20,
        }]
    );
}

// ---------------------------------------------------------------- §1 unknown, JSON

#[test]
fn r9_an_unknown_container_exists_and_fails_its_probe_without_one() {
    let mut unknown = on("a", "c1", 1);
    unknown.state = ContainerState::Unknown;
    let mut obs = observe(two_hosts(), vec![unknown], vec![record(1, "a", "c1")]);
    obs.pass = PassKind::Full;
    obs.probes
        .insert(gid(1), ProbeOutcome::Ok(json!({"turn": 1}).into()));
    let config = Config {
        failure_threshold: 1.try_into().unwrap(),
        ..Config::default()
    };
    assert_eq!(
        plan(&obs, &config).actions,
        vec![
            Action::SetStatus {
                game_id: gid(1),
                from: Running,
                to: EngineUnreachable,
                message: "container unknown".into(),
            },
            Action::SetProbeFailures {
                game_id: gid(1),
                failures: 1,
            },
        ]
    );
}

#[test]
fn host_fields_are_omitted_from_json_when_empty_and_present_otherwise() {
    let json_of = |value: &Action| serde_json::to_value(value).unwrap();
    assert!(json_of(&rebind(1, "c1", "")).get("docker_host").is_none());
    assert_eq!(json_of(&rebind(1, "c1", "b"))["docker_host"], "b");
    let guard = Finding::RemovalGuardTripped {
        host: String::new(),
        would_remove: 12,
        live: 20,
    };
    assert_eq!(
        serde_json::to_value(&guard).unwrap(),
        json!({"kind": "removal_guard_tripped", "would_remove": 12, "live": 20})
    );
}
