//! Table tests of the planning rules R1–R13, one group per rule, with hand-written expectations.

use std::collections::BTreeMap;
use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, Observation, PassKind,
    ProbeOutcome, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_reconciler::{Action, Adoption, Finding, Plan, Rebinding, plan};
use serde_json::json;

use RuntimeStatus::*;

const NOW: &str = "2026-11-27T12:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn gid(n: u8) -> GameId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

fn container(id: &str, name: &str, state: ContainerState) -> ContainerSummary {
    ContainerSummary {
        id: id.to_owned(),
        name: name.to_owned(),
        image_ref: "galaxy/engine:1.4".to_owned(),
        labels: BTreeMap::from([
            ("galaxy.managed".to_owned(), "true".to_owned()),
            ("galaxy.engine_version".to_owned(), "1.4.0".to_owned()),
        ]),
        state,
        created: at("2026-11-27T11:00:00Z"),
        addresses: BTreeMap::new(),
        host: String::new(),
        published_ports: BTreeMap::new(),
    }
}

fn game_container(id: &str, game: u8) -> ContainerSummary {
    container(
        id,
        &format!("/galaxy-game-{}", gid(game)),
        ContainerState::Running,
    )
}

fn record(game: u8, status: RuntimeStatus, container_id: &str) -> RuntimeRecord {
    RuntimeRecord {
        current_container_id: container_id.to_owned(),
        current_image_ref: "galaxy/engine:1.4".to_owned(),
        current_engine_version: "1.4.0".to_owned(),
        engine_endpoint: format!("http://galaxy-game-{}:8080", gid(game)),
        docker_network: "galaxy".to_owned(),
        turn_schedule: "0 */6 * * *".to_owned(),
        ..RuntimeRecord::new(gid(game), status, at("2026-11-27T11:00:05Z"))
    }
}

fn observe(containers: Vec<ContainerSummary>, records: Vec<RuntimeRecord>) -> Observation {
    Observation {
        pass: PassKind::Full,
        now: at(NOW),
        containers: containers.into_iter().map(Arc::new).collect(),
        records: records.into_iter().map(Arc::new).collect(),
        games: Vec::new(),
        probes: BTreeMap::new(),
        projections_error: None,
        hosts: Vec::new(),
    }
}

fn ok_probe(obs: &mut Observation, game: u8) {
    obs.probes
        .insert(gid(game), ProbeOutcome::Ok(json!({"turn": game}).into()));
}

fn run(obs: &Observation) -> Plan {
    plan(obs, &Config::default())
}

fn removed(game: u8, from: RuntimeStatus) -> Action {
    Action::SetStatus {
        game_id: gid(game),
        from,
        to: Removed,
        message: "container disappeared".to_owned(),
    }
}

fn snapshot(game: u8) -> Action {
    Action::PublishSnapshot {
        game_id: gid(game),
        state: json!({"turn": game}).into(),
    }
}

// ---------------------------------------------------------------- R1

#[test]
fn r1_unmanaged_containers_are_ignored_entirely() {
    let mut other_owner = game_container("c2", 2);
    other_owner
        .labels
        .insert("galaxy.managed".into(), "instance-b".into());
    let mut unlabelled = container("c3", "/not-ours", ContainerState::Running);
    unlabelled.labels.clear();
    unlabelled
        .labels
        .insert("galaxy.engine_version".into(), "bad version!".into());
    let mut obs = observe(vec![other_owner, unlabelled], vec![]);
    obs.games.push(GameProjection {
        game_id: gid(2),
        turn_schedule: String::new(),
    });
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![],
        "no adoption of another owner's container"
    );
    assert_eq!(p.findings, vec![], "no finding about unmanaged containers");
}

#[test]
fn r1_managed_label_value_is_configurable() {
    let mut c = game_container("c1", 1);
    c.labels
        .insert("galaxy.managed".into(), "instance-b".into());
    let obs = observe(vec![c], vec![]);
    let config = Config {
        managed_label_value: "instance-b".into(),
        ..Config::default()
    };
    let p = plan(&obs, &config);
    assert_eq!(
        p.findings,
        vec![Finding::OrphanContainer {
            game_id: gid(1),
            container_id: "c1".into()
        }]
    );
}

// ---------------------------------------------------------------- R2

#[test]
fn r2_names_strip_one_slash_and_accept_either_case() {
    let upper = format!("/galaxy-game-{}", gid(1).to_string().to_uppercase());
    let obs = observe(
        vec![container("c1", &upper, ContainerState::Running)],
        vec![],
    );
    let p = run(&obs);
    assert_eq!(
        p.findings,
        vec![Finding::OrphanContainer {
            game_id: gid(1),
            container_id: "c1".into()
        }]
    );
}

#[test]
fn r2_other_names_are_unrecognized() {
    let names = [
        "/postgres",
        "//galaxy-game-00000000-0000-4000-8000-000000000001",
        "/galaxy-game-00000000000040008000000000000001",
        "/galaxy-game-not-a-uuid",
        "/xgalaxy-game-00000000-0000-4000-8000-000000000001",
    ];
    let containers = names
        .iter()
        .enumerate()
        .map(|(i, n)| container(&format!("c{i}"), n, ContainerState::Running))
        .collect();
    let p = run(&observe(containers, vec![]));
    let expected: Vec<Finding> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Finding::UnrecognizedContainer {
            container_id: format!("c{i}"),
            name: n[1..].to_owned(),
        })
        .collect();
    assert_eq!(p.findings, expected);
    assert!(p.actions.is_empty());
}

#[test]
fn r2_unrecognized_container_still_matches_by_id() {
    let mut obs = observe(
        vec![container("c1", "/hand-started", ContainerState::Running)],
        vec![record(1, Running, "c1")],
    );
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(p.actions, vec![snapshot(1)]);
    assert_eq!(
        p.findings,
        vec![Finding::UnrecognizedContainer {
            container_id: "c1".into(),
            name: "hand-started".into()
        }]
    );
}

#[test]
fn r2_prefix_is_configurable() {
    let obs = observe(
        vec![container(
            "c1",
            &format!("/eng-{}", gid(1)),
            ContainerState::Running,
        )],
        vec![],
    );
    let config = Config {
        container_name_prefix: "eng-".into(),
        ..Config::default()
    };
    assert_eq!(
        plan(&obs, &config).findings,
        vec![Finding::OrphanContainer {
            game_id: gid(1),
            container_id: "c1".into()
        }]
    );
}

// ---------------------------------------------------------------- R3

fn duplicate(game: u8, loser: &str, kept: &str) -> Finding {
    Finding::DuplicateContainer {
        game_id: gid(game),
        container_id: loser.into(),
        kept_container_id: kept.into(),
        host: String::new(),
        kept_host: String::new(),
    }
}

#[test]
fn r3_recorded_container_is_kept_first() {
    let mut newer = game_container("a-newer", 1);
    newer.created = at("2026-11-27T11:30:00Z");
    let mut recorded = game_container("z-recorded", 1);
    recorded.state = ContainerState::Exited;
    let obs = observe(
        vec![newer, recorded],
        vec![record(1, Stopped, "z-recorded")],
    );
    let p = run(&obs);
    assert_eq!(p.findings, vec![duplicate(1, "a-newer", "z-recorded")]);
    assert_eq!(p.actions, vec![], "stopped record keeps its container");
}

#[test]
fn r3_running_beats_not_running() {
    let mut exited = game_container("a", 1);
    exited.state = ContainerState::Exited;
    exited.created = at("2026-11-27T11:59:00Z");
    let running = game_container("b", 1);
    let p = run(&observe(vec![exited, running], vec![]));
    assert_eq!(
        p.findings,
        vec![
            duplicate(1, "a", "b"),
            Finding::OrphanContainer {
                game_id: gid(1),
                container_id: "b".into()
            },
        ]
    );
}

#[test]
fn r3_latest_created_then_smallest_id() {
    let mut older = game_container("a", 1);
    older.created = at("2026-11-27T10:00:00Z");
    let newer_big = game_container("c", 1);
    let newer_small = game_container("b", 1);
    let p = run(&observe(vec![older, newer_big, newer_small], vec![]));
    assert_eq!(
        p.findings,
        vec![
            duplicate(1, "a", "b"),
            duplicate(1, "c", "b"),
            Finding::OrphanContainer {
                game_id: gid(1),
                container_id: "b".into()
            },
        ]
    );
}

#[test]
fn r3_recorded_container_wins_among_many_even_for_a_terminal_record() {
    let mut best_by_rank = game_container("a", 1); // running, latest: first by the other rules
    best_by_rank.created = at("2026-11-27T11:50:00Z");
    let mut recorded = game_container("m", 1);
    recorded.state = ContainerState::Exited;
    recorded.created = at("2026-11-27T09:00:00Z");
    let mut third = game_container("z", 1);
    third.state = ContainerState::Dead;
    let p = run(&observe(
        vec![best_by_rank, recorded, third],
        vec![record(1, Removed, "m")],
    ));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.findings,
        vec![
            duplicate(1, "a", "m"),
            duplicate(1, "z", "m"),
            Finding::StaleContainer {
                game_id: gid(1),
                container_id: "m".into(),
                status: Removed
            },
        ]
    );
}

#[test]
fn r3_duplicates_take_no_further_part() {
    // The record points at the loser's id? No: the loser is not the recorded one, so the record
    // is matched to the kept container and nothing is done with the loser.
    let mut obs = observe(
        vec![game_container("a", 1), game_container("b", 1)],
        vec![record(1, Running, "a")],
    );
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(p.actions, vec![snapshot(1)]);
    assert_eq!(p.findings, vec![duplicate(1, "b", "a")]);
}

// ---------------------------------------------------------------- R4

#[test]
fn r4_match_by_container_id_before_game_id() {
    // The recorded container has another name; the game's own container is not used.
    let mut obs = observe(
        vec![
            container("c-old", "/renamed-by-hand", ContainerState::Running),
            game_container("c-new", 1),
        ],
        vec![record(1, Running, "c-old")],
    );
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(p.actions, vec![snapshot(1)], "no rebind: matched by id");
}

#[test]
fn r4_ids_alike_in_their_first_characters_are_told_apart() {
    // Ids of one length that differ only past their first eight characters: game 1's record
    // names its renamed container, game 3's a container that is gone. Neither is taken for
    // game 2's container.
    let mut obs = observe(
        vec![
            container(
                "container-0001",
                "/renamed-by-hand",
                ContainerState::Running,
            ),
            game_container("container-0002", 2),
        ],
        vec![
            record(1, Running, "container-0001"),
            record(2, Running, "container-0002"),
            record(3, Running, "container-0003"),
        ],
    );
    ok_probe(&mut obs, 1);
    ok_probe(&mut obs, 2);
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![snapshot(1), snapshot(2), removed(3, Running)],
        "game 1 on its own container by id, game 3 removed, no rebind"
    );
}

#[test]
fn r4_empty_container_id_matches_by_game_id() {
    let mut obs = observe(vec![game_container("c1", 1)], vec![record(1, Starting, "")]);
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![
            Action::Rebind(Box::new(Rebinding {
                game_id: gid(1),
                container_id: "c1".into(),
                image_ref: "galaxy/engine:1.4".into(),
                engine_version: "1.4.0".into(),
                docker_host: String::new(),
            })),
            Action::SetStatus {
                game_id: gid(1),
                from: Starting,
                to: Running,
                message: "engine reachable".into()
            },
            snapshot(1),
        ]
    );
}

// ---------------------------------------------------------------- R5

#[test]
fn r5_terminal_records_get_no_action_and_their_game_is_not_adopted() {
    let mut obs = observe(
        vec![game_container("c1", 1), game_container("c2", 2)],
        vec![record(1, Removed, "c1"), record(2, Failed, "old")],
    );
    obs.games = vec![
        GameProjection {
            game_id: gid(1),
            turn_schedule: String::new(),
        },
        GameProjection {
            game_id: gid(2),
            turn_schedule: String::new(),
        },
    ];
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.findings,
        vec![
            Finding::StaleContainer {
                game_id: gid(1),
                container_id: "c1".into(),
                status: Removed
            },
            Finding::StaleContainer {
                game_id: gid(2),
                container_id: "c2".into(),
                status: Failed
            },
        ]
    );
}

#[test]
fn r5_terminal_record_without_container_is_silent() {
    let p = run(&observe(vec![], vec![record(1, Removed, "c1")]));
    assert_eq!((p.actions.len(), p.findings.len()), (0, 0));
}

// ---------------------------------------------------------------- R6

#[test]
fn r6_missing_container_marks_removed() {
    let obs = observe(
        vec![],
        vec![
            record(1, Running, "c1"),
            record(2, Stopped, "c2"),
            record(3, EngineUnreachable, ""),
        ],
    );
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![
            removed(1, Running),
            removed(2, Stopped),
            removed(3, EngineUnreachable)
        ]
    );
}

#[test]
fn r6_starting_inside_grace_awaits_and_outside_is_removed() {
    let mut young = record(1, Starting, "");
    young.status_changed_at = at("2026-11-27T11:58:01Z"); // 1m59s ago, grace 2m
    let mut old = record(2, Starting, "");
    old.status_changed_at = at("2026-11-27T11:58:00Z"); // exactly 2m ago: grace is over
    let p = run(&observe(vec![], vec![young, old]));
    assert_eq!(p.actions, vec![removed(2, Starting)]);
    assert_eq!(
        p.findings,
        vec![Finding::AwaitingContainer { game_id: gid(1) }]
    );
}

#[test]
fn r6_a_status_changed_in_the_future_counts_as_inside_grace() {
    let mut r = record(1, Starting, "");
    r.status_changed_at = at("2026-11-27T12:05:00Z");
    let p = run(&observe(vec![], vec![r]));
    assert_eq!(
        p.findings,
        vec![Finding::AwaitingContainer { game_id: gid(1) }]
    );
}

// ---------------------------------------------------------------- R7 + R8

#[test]
fn r7_rebind_follows_the_running_container() {
    let mut c = game_container("c-new", 1);
    c.image_ref = "galaxy/engine:1.5".into();
    c.labels
        .insert("galaxy.engine_version".into(), "1.5.0".into());
    let mut obs = observe(vec![c], vec![record(1, Running, "c-gone")]);
    ok_probe(&mut obs, 1);
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![
            Action::Rebind(Box::new(Rebinding {
                game_id: gid(1),
                container_id: "c-new".into(),
                image_ref: "galaxy/engine:1.5".into(),
                engine_version: "1.5.0".into(),
                docker_host: String::new(),
            })),
            snapshot(1),
        ]
    );
}

#[test]
fn r8_stopped_record_gets_no_probe_only_rebind() {
    let mut obs = observe(
        vec![game_container("c-new", 1), game_container("c2", 2)],
        vec![record(1, Stopped, "c-old"), record(2, Stopped, "c2")],
    );
    obs.probes
        .insert(gid(2), ProbeOutcome::Error("refused".into()));
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![Action::Rebind(Box::new(Rebinding {
            game_id: gid(1),
            container_id: "c-new".into(),
            image_ref: "galaxy/engine:1.4".into(),
            engine_version: "1.4.0".into(),
            docker_host: String::new(),
        }))]
    );
}

// ---------------------------------------------------------------- R9

#[test]
fn r9_success_recovers_resets_and_publishes() {
    let mut healthy = record(1, Running, "c1");
    healthy.probe_failures = 0;
    let mut flaky = record(2, Running, "c2");
    flaky.probe_failures = 2;
    let mut unreachable = record(3, EngineUnreachable, "c3");
    unreachable.probe_failures = 5;
    let mut obs = observe(
        vec![
            game_container("c1", 1),
            game_container("c2", 2),
            game_container("c3", 3),
        ],
        vec![healthy, flaky, unreachable],
    );
    for g in 1..=3 {
        ok_probe(&mut obs, g);
    }
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![
            snapshot(1),
            Action::SetProbeFailures {
                game_id: gid(2),
                failures: 0
            },
            snapshot(2),
            Action::SetStatus {
                game_id: gid(3),
                from: EngineUnreachable,
                to: Running,
                message: "engine reachable".into()
            },
            Action::SetProbeFailures {
                game_id: gid(3),
                failures: 0
            },
            snapshot(3),
        ]
    );
}

#[test]
fn r9_snapshot_is_the_engine_json_as_is() {
    let mut obs = observe(
        vec![game_container("c1", 1)],
        vec![record(1, Running, "c1")],
    );
    let state = json!({"z": [1, {"b": null, "a": "x"}], "a": 1.5});
    obs.probes.insert(gid(1), ProbeOutcome::Ok(state.into()));
    let p = run(&obs);
    let json = serde_json::to_string(&p.actions[0]).unwrap();
    assert!(
        json.ends_with(r#""state":{"z":[1,{"b":null,"a":"x"}],"a":1.5}}"#),
        "{json}"
    );
}

#[test]
fn r9_failures_count_up_to_the_threshold() {
    let mut r0 = record(1, Running, "c1");
    r0.probe_failures = 0;
    let mut r1 = record(2, Running, "c2");
    r1.probe_failures = 1;
    let mut r2 = record(3, Running, "c3");
    r2.probe_failures = 2;
    let mut r9 = record(4, EngineUnreachable, "c4");
    r9.probe_failures = 9;
    let mut obs = observe(
        (1..=4)
            .map(|g| game_container(&format!("c{g}"), g))
            .collect(),
        vec![r0, r1, r2, r9],
    );
    for g in 1..=4 {
        obs.probes
            .insert(gid(g), ProbeOutcome::Error("timeout after 2s".into()));
    }
    let p = run(&obs);
    let failures = |g: u8, n: u32| Action::SetProbeFailures {
        game_id: gid(g),
        failures: n,
    };
    assert_eq!(
        p.actions,
        vec![
            failures(1, 1),
            failures(2, 2),
            Action::SetStatus {
                game_id: gid(3),
                from: Running,
                to: EngineUnreachable,
                message: "timeout after 2s".into()
            },
            failures(3, 3),
            failures(4, 10),
        ]
    );
}

#[test]
fn r9_container_not_running_is_a_failure_without_probe() {
    let mut c = game_container("c1", 1);
    c.state = ContainerState::Exited;
    let mut obs = observe(vec![c], vec![record(1, Running, "c1")]);
    ok_probe(&mut obs, 1); // ignored: the container is not running
    let config = Config {
        failure_threshold: 1.try_into().unwrap(),
        ..Config::default()
    };
    let p = plan(&obs, &config);
    assert_eq!(
        p.actions,
        vec![
            Action::SetStatus {
                game_id: gid(1),
                from: Running,
                to: EngineUnreachable,
                message: "container exited".into()
            },
            Action::SetProbeFailures {
                game_id: gid(1),
                failures: 1
            },
        ]
    );
}

#[test]
fn r9_missing_probe_result_is_a_failure() {
    let obs = observe(
        vec![game_container("c1", 1)],
        vec![record(1, Running, "c1")],
    );
    let config = Config {
        failure_threshold: 1.try_into().unwrap(),
        ..Config::default()
    };
    let p = plan(&obs, &config);
    assert!(
        p.actions.contains(&Action::SetStatus {
            game_id: gid(1),
            from: Running,
            to: EngineUnreachable,
            message: "no probe result".into()
        }),
        "{:?}",
        p.actions
    );
}

#[test]
fn r9_starting_inside_grace_tolerates_failure_then_counts() {
    let mut young = record(1, Starting, "c1");
    young.status_changed_at = at("2026-11-27T11:59:30Z");
    let mut old = record(2, Starting, "c2");
    old.status_changed_at = at("2026-11-27T11:50:00Z");
    let mut obs = observe(
        vec![game_container("c1", 1), game_container("c2", 2)],
        vec![young, old],
    );
    for g in 1..=2 {
        obs.probes
            .insert(gid(g), ProbeOutcome::Error("connection refused".into()));
    }
    let p = run(&obs);
    assert_eq!(
        p.actions,
        vec![Action::SetProbeFailures {
            game_id: gid(2),
            failures: 1
        }]
    );
}

// ---------------------------------------------------------------- R10

#[test]
fn r10_adopts_known_games_and_reports_orphans() {
    let mut stopped = game_container("c2", 2);
    stopped.state = ContainerState::Exited;
    let mut obs = observe(
        vec![game_container("c1", 1), stopped, game_container("c3", 3)],
        vec![],
    );
    obs.games = vec![
        GameProjection {
            game_id: gid(1),
            turn_schedule: "0 0 * * *".into(),
        },
        GameProjection {
            game_id: gid(2),
            turn_schedule: "".into(),
        },
    ];
    let config = Config {
        engine_port: 9000,
        docker_network: "games".into(),
        ..Config::default()
    };
    let p = plan(&obs, &config);
    assert_eq!(
        p.actions,
        vec![
            Action::Adopt(Box::new(Adoption {
                game_id: gid(1),
                container_id: "c1".into(),
                image_ref: "galaxy/engine:1.4".into(),
                engine_version: "1.4.0".into(),
                endpoint: format!("http://galaxy-game-{}:9000", gid(1)),
                docker_network: "games".into(),
                turn_schedule: "0 0 * * *".into(),
                status: Running,
                docker_host: String::new(),
            })),
            Action::Adopt(Box::new(Adoption {
                game_id: gid(2),
                container_id: "c2".into(),
                image_ref: "galaxy/engine:1.4".into(),
                engine_version: "1.4.0".into(),
                endpoint: format!("http://galaxy-game-{}:9000", gid(2)),
                docker_network: "games".into(),
                turn_schedule: "".into(),
                status: Stopped,
                docker_host: String::new(),
            })),
        ]
    );
    assert_eq!(
        p.findings,
        vec![Finding::OrphanContainer {
            game_id: gid(3),
            container_id: "c3".into()
        }]
    );
}

/// A failed projection load is not evidence that a game does not exist: the unrecorded games'
/// containers are neither adopted nor orphans, each is an `adoption_undecided` finding with the
/// error, and the rest of the plan is as usual.
#[test]
fn r10_without_projections_nothing_is_decided_about_unrecorded_games() {
    let mut obs = observe(
        vec![game_container("c1", 1), game_container("c3", 3)],
        vec![record(2, Running, "gone")],
    );
    obs.games = vec![GameProjection {
        game_id: gid(1),
        turn_schedule: "0 0 * * *".into(),
    }];
    obs.projections_error = Some("unavailable: postgres: connection refused".into());
    let p = plan(&obs, &Config::default());
    assert_eq!(p.actions, vec![removed(2, Running)]);
    assert_eq!(
        p.findings,
        vec![
            Finding::AdoptionUndecided {
                game_id: gid(1),
                container_id: "c1".into(),
                error: "unavailable: postgres: connection refused".into(),
            },
            Finding::AdoptionUndecided {
                game_id: gid(3),
                container_id: "c3".into(),
                error: "unavailable: postgres: connection refused".into(),
            },
        ]
    );
}

#[test]
fn r10_endpoint_is_built_from_the_normalised_game_id_not_the_name() {
    let upper = format!("/galaxy-game-{}", gid(10).to_string().to_uppercase());
    let mut obs = observe(
        vec![container("c1", &upper, ContainerState::Running)],
        vec![],
    );
    obs.games.push(GameProjection {
        game_id: gid(10),
        turn_schedule: String::new(),
    });
    let Action::Adopt(adoption) = &run(&obs).actions[0] else {
        panic!("expected an adoption");
    };
    assert_eq!(
        adoption.endpoint,
        "http://galaxy-game-00000000-0000-4000-8000-00000000000a:8080"
    );
}

// ---------------------------------------------------------------- R11

#[test]
fn r11_engine_version_label() {
    let long = "v".repeat(65);
    let cases: [(Option<&str>, &str, bool); 7] = [
        (Some("1.4.0"), "1.4.0", false),
        (Some("1.4.0+build_7-rc"), "1.4.0+build_7-rc", false),
        (Some(&"v".repeat(64)), &"v".repeat(64), false),
        (None, "", false),
        (Some(""), "", true),
        (Some(&long), "", true),
        (Some("1.4; DROP TABLE"), "", true),
    ];
    for (label, expected, finding) in cases {
        let mut c = game_container("c1", 1);
        c.labels.remove("galaxy.engine_version");
        if let Some(v) = label {
            c.labels.insert("galaxy.engine_version".into(), v.into());
        }
        let mut obs = observe(vec![c], vec![record(1, Running, "old")]);
        ok_probe(&mut obs, 1);
        let p = run(&obs);
        let Action::Rebind(rebinding) = &p.actions[0] else {
            panic!("expected a rebind, got {:?}", p.actions);
        };
        assert_eq!(rebinding.engine_version, expected, "label {label:?}");
        let invalid = Finding::InvalidLabel {
            container_id: "c1".into(),
            label: "galaxy.engine_version".into(),
        };
        assert_eq!(p.findings.contains(&invalid), finding, "label {label:?}");
    }
}

#[test]
fn r11_every_managed_container_is_checked_even_unrecognized_or_duplicate() {
    let mut a = container("a", "/odd-name", ContainerState::Running);
    a.labels
        .insert("galaxy.engine_version".into(), "bad value".into());
    let mut b = game_container("b", 1);
    b.created = at("2026-11-27T10:00:00Z");
    b.labels
        .insert("galaxy.engine_version".into(), "bad value".into());
    let c = game_container("c", 1);
    let p = run(&observe(vec![a, b, c], vec![]));
    let invalid = |id: &str| Finding::InvalidLabel {
        container_id: id.into(),
        label: "galaxy.engine_version".into(),
    };
    assert!(p.findings.contains(&invalid("a")) && p.findings.contains(&invalid("b")));
    assert!(!p.findings.contains(&invalid("c")));
}

// ---------------------------------------------------------------- R12

fn fleet_with_missing(live: u8, missing: u8) -> Observation {
    let containers = (missing..live)
        .map(|g| game_container(&format!("c{g}"), g))
        .collect();
    let records = (0..live)
        .map(|g| record(g, Running, &format!("c{g}")))
        .collect();
    let mut obs = observe(containers, records);
    for g in missing..live {
        ok_probe(&mut obs, g);
    }
    obs
}

#[test]
fn r12_guard_trips_above_both_limits() {
    // 11 of 20 missing: 11 > 10 and 11 > 0.5 × 20.
    let p = run(&fleet_with_missing(20, 11));
    assert!(p.actions.iter().all(|a| !a.is_removal()));
    assert_eq!(p.actions.len(), 9, "snapshots of the others still happen");
    assert_eq!(
        p.findings,
        vec![Finding::RemovalGuardTripped {
            host: String::new(),
            would_remove: 11,
            live: 20
        }]
    );
}

#[test]
fn r12_guard_holds_at_or_below_the_limits() {
    // 10 of 12 missing: not more than removal_guard_min.
    let p = run(&fleet_with_missing(12, 10));
    assert_eq!(p.actions.iter().filter(|a| a.is_removal()).count(), 10);
    // 11 of 22 missing: not more than half.
    let p = run(&fleet_with_missing(22, 11));
    assert_eq!(p.actions.iter().filter(|a| a.is_removal()).count(), 11);
    assert!(p.findings.is_empty());
}

#[test]
fn r12_terminal_records_are_not_live() {
    let mut obs = fleet_with_missing(20, 9);
    for g in 100..110 {
        obs.records.push(record(g, Removed, "").into());
    }
    obs.records.push(record(200, Running, "x").into());
    obs.records.push(record(201, Running, "y").into());
    // 11 removals of 22 live (terminal ones do not count) → holds.
    let p = run(&obs);
    assert_eq!(p.actions.iter().filter(|a| a.is_removal()).count(), 11);
    let config = Config {
        removal_guard_fraction: 0.4,
        ..Config::default()
    };
    assert_eq!(
        plan(&obs, &config).findings,
        vec![Finding::RemovalGuardTripped {
            host: String::new(),
            would_remove: 11,
            live: 22
        }]
    );
}

// ---------------------------------------------------------------- R13

#[test]
fn r13_actions_sorted_by_game_then_kind_and_summary_counts() {
    let mut obs = observe(
        vec![game_container("c2", 2), game_container("c1", 1)],
        vec![
            record(2, EngineUnreachable, "old"),
            record(3, Running, "c3"),
        ],
    );
    obs.games.push(GameProjection {
        game_id: gid(1),
        turn_schedule: String::new(),
    });
    ok_probe(&mut obs, 2);
    let p = run(&obs);
    let kinds: Vec<(GameId, &str)> = p.actions.iter().map(|a| (a.game_id(), a.kind())).collect();
    assert_eq!(
        kinds,
        vec![
            (gid(1), "adopt"),
            (gid(2), "rebind"),
            (gid(2), "set_status"),
            (gid(2), "publish_snapshot"),
            (gid(3), "set_status"),
        ]
    );
    assert_eq!(p.summary.actions["set_status"], 2);
    assert_eq!(p.summary.actions["set_probe_failures"], 0);
    assert_eq!(p.summary.findings["orphan_container"], 0);
}

#[test]
fn r13_plan_json_has_the_contract_shape() {
    let mut obs = observe(
        vec![game_container("c1", 1)],
        vec![record(2, Running, "c2")],
    );
    obs.games.push(GameProjection {
        game_id: gid(1),
        turn_schedule: "0 0 * * *".into(),
    });
    let json = serde_json::to_value(run(&obs)).unwrap();
    assert_eq!(
        json["actions"],
        json!([
            {"kind": "adopt", "game_id": gid(1).to_string(), "container_id": "c1",
             "image_ref": "galaxy/engine:1.4", "engine_version": "1.4.0",
             "endpoint": format!("http://galaxy-game-{}:8080", gid(1)),
             "docker_network": "galaxy", "turn_schedule": "0 0 * * *", "status": "running"},
            {"kind": "set_status", "game_id": gid(2).to_string(), "from": "running",
             "to": "removed", "message": "container disappeared"}
        ])
    );
    assert_eq!(json["findings"], json!([]));
}

// ---------------------------------------------------------------- quick passes

/// A quick pass applies every rule but R9: a vanished container is removed (R6), a moved one
/// rebound (R7), an unrecorded one adopted (R10); an engine that fails, answers or was never
/// probed changes nothing — no counter, no snapshot, no status.
#[test]
fn a_quick_pass_acts_on_containers_and_never_on_engine_health() {
    let mut moved = game_container("c2-new", 2);
    moved.state = ContainerState::Exited;
    let mut obs = observe(
        vec![moved, game_container("c3", 3), game_container("c4", 4)],
        vec![
            record(1, Running, "c1"),
            record(2, Running, "c2"),
            record(3, EngineUnreachable, "c3"),
            RuntimeRecord {
                probe_failures: 2,
                ..record(4, Running, "c4")
            },
        ],
    );
    obs.games = vec![GameProjection {
        game_id: gid(5),
        turn_schedule: String::new(),
    }];
    obs.pass = PassKind::Quick;
    let p = plan(&obs, &Config::default());
    assert_eq!(
        p.actions,
        vec![
            removed(1, Running),
            Action::Rebind(Box::new(Rebinding {
                game_id: gid(2),
                container_id: "c2-new".into(),
                image_ref: "galaxy/engine:1.4".into(),
                engine_version: "1.4.0".into(),
                docker_host: String::new(),
            })),
        ]
    );
    assert!(p.findings.is_empty(), "{:?}", p.findings);
}
