//! The executor with mocked ports: every branch of the seed's tick and of CONTRACT §3, with the
//! exact calls each one makes.

mod support;

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use galaxy_runtime_model::{
    Config, ContainerState, EngineAddressing, GameProjection, JobResult, Op, ProbeOutcome,
    RuntimeRecord, RuntimeStatus,
};
use galaxy_runtime_ports::{MockLeaderLock, PortError};
use galaxy_runtime_reconciler::{
    Action, BuildError, ObserveStep, PassError, Reconciler, telemetry,
};
use mockall::Sequence;
use mockall::predicate::eq;
use support::*;

fn config() -> Config {
    Config::default()
}

// ----- observe: a failed listing writes nothing -----

#[tokio::test]
async fn list_containers_fails_no_store_calls_at_all() {
    let mut m = Mocks::new();
    m.docker
        .expect_list_managed()
        .times(1)
        .returning(|_| Err(unavailable("docker at /var/run/docker.sock")));
    // The store, engine, lobby, cache and scheduler have no expectation: any call would panic
    // and turn the error into `Panicked`.
    let err = m
        .build(config())
        .tick()
        .await
        .expect_err("the pass must fail");
    match &err {
        PassError::Observe { step, source, .. } => {
            assert_eq!(*step, ObserveStep::ListContainers);
            assert!(source.is_retryable());
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("list managed containers: unavailable"),
        "{err}"
    );
    assert_eq!(err.report().applied_total(), 0);
}

#[tokio::test]
async fn list_containers_filters_on_the_managed_label() {
    let mut m = Mocks::new();
    m.docker
        .expect_list_managed()
        .withf(|filter| {
            filter.labels
                == BTreeMap::from([("galaxy.managed".to_owned(), "instance-2".to_owned())])
        })
        .times(1)
        .returning(|_| Ok(vec![]));
    m.store
        .expect_list_records()
        .times(1)
        .returning(|| Ok(vec![]));
    let cfg = Config {
        managed_label_value: "instance-2".to_owned(),
        ..config()
    };
    let report = m.build(cfg).tick().await.expect("empty fleet");
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn list_records_fails_no_writes_and_containers_listed_first() {
    let mut m = Mocks::new();
    let mut seq = Sequence::new();
    m.docker
        .expect_list_managed()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(vec![
                container("c1", gid(1), ContainerState::Running).into(),
            ])
        });
    m.store
        .expect_list_records()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| {
            Err(PortError::invalid(
                "runtime record 1: unknown status \"runing\"",
            ))
        });
    let err = m
        .build(config())
        .tick()
        .await
        .expect_err("the pass must fail");
    assert!(
        matches!(
            err,
            PassError::Observe {
                step: ObserveStep::ListRecords,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("list runtime records: invalid"),
        "{err}"
    );
    assert!(err.is_observe());
}

// ----- removals (R6) -----

#[tokio::test]
async fn missing_container_is_removed_cached_and_its_lobby_event_recorded_with_it() {
    let game = gid(1);
    let mut m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "c1")]);
    m.docker
        .expect_inspect()
        .with(eq("c1"))
        .times(1)
        .returning(|id| Err(PortError::not_found(format!("container {id}"))));
    m.store
        .expect_transition_status()
        .withf(move |c| {
            c.game_id == game
                && c.expected.status == RuntimeStatus::Running
                && c.to == RuntimeStatus::Removed
                && c.message == "container disappeared"
                && c.at == ts(NOW)
                && c.event
                    == Some(JobResult {
                        op: Op::Reconcile,
                        status: RuntimeStatus::Removed,
                        message: "container disappeared".to_owned(),
                    })
        })
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    m.cache
        .expect_put_runtime()
        .withf(move |r| r.game_id == game && r.status == RuntimeStatus::Removed)
        .times(1)
        .returning(|_| ());
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(report.actions["set_status"], 1);
    assert_eq!(report.events, 1, "the event is written with the change");
}

#[tokio::test]
async fn one_write_fails_the_others_are_applied_and_the_error_names_the_game() {
    let (a, b, c) = (gid(1), gid(2), gid(3));
    let records = vec![
        record(a, RuntimeStatus::Running, ""),
        record(b, RuntimeStatus::Stopped, ""),
        record(c, RuntimeStatus::EngineUnreachable, ""),
    ];
    let mut m = Mocks::new().listing(vec![], records);
    // An empty container id cannot be inspected: nothing to confirm.
    m.store
        .expect_transition_status()
        .times(3)
        .returning(move |change| {
            if change.game_id == b {
                Err(unavailable("postgres pool exhausted"))
            } else {
                Ok(record(change.game_id, change.to, ""))
            }
        });
    m.cache
        .expect_put_runtime()
        .withf(move |r| r.game_id != b)
        .times(2)
        .returning(|_| ());
    let err = m
        .build(config())
        .tick()
        .await
        .expect_err("one write failed");
    let failures = err.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].game_id, b);
    assert_eq!(failures[0].action, "set_status");
    assert!(failures[0].error.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains(&format!("set_status {b}: unavailable")),
        "{text}"
    );
    assert_eq!(err.report().applied["set_status"], 2);
    assert_eq!(err.report().failures, 1);
}

#[tokio::test]
async fn every_failure_is_listed_like_errors_join() {
    let (a, b) = (gid(1), gid(2));
    let mut m = Mocks::new().listing(
        vec![],
        vec![
            record(a, RuntimeStatus::Running, ""),
            record(b, RuntimeStatus::Running, ""),
        ],
    );
    m.store.expect_transition_status().times(2).returning(|c| {
        Err(PortError::invalid(format!(
            "row {} is malformed",
            c.game_id
        )))
    });
    let err = m.build(config()).tick().await.expect_err("both failed");
    let lines: Vec<_> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("set_status {a}: invalid")));
    assert!(lines[1].starts_with(&format!("set_status {b}: invalid")));
}

/// A pass never calls the lobby: the events of its status changes are recorded with them, and
/// the relay delivers them beside the loop, so a lobby outage never slows or fails a pass. Only
/// the statuses of `lobby_statuses` have events.
#[tokio::test]
async fn a_pass_never_calls_the_lobby_and_only_lobby_statuses_have_events() {
    let (gone, failing) = (gid(1), gid(2));
    let mut m = Mocks::new()
        .listing(
            vec![container("c2", failing, ContainerState::Exited)],
            vec![
                record(gone, RuntimeStatus::Running, ""),
                RuntimeRecord {
                    probe_failures: 2,
                    ..record(failing, RuntimeStatus::Running, "c2")
                },
            ],
        )
        .any_cache();
    m.store
        .expect_transition_status()
        .withf(move |c| c.game_id == gone && c.event.is_some())
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "")));
    m.store
        .expect_transition_status()
        .withf(move |c| {
            c.game_id == failing && c.to == RuntimeStatus::EngineUnreachable && c.event.is_none()
        })
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c2")));
    m.store.expect_set_probe_failures().returning(|u| {
        Ok(vec![record(
            u[0].game_id,
            RuntimeStatus::EngineUnreachable,
            "c2",
        )])
    });
    m.lobby.expect_on_runtime_job_result().never();
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["set_status"], 2);
    assert_eq!(
        report.events, 1,
        "engine_unreachable is not in the default lobby_statuses"
    );
}

#[tokio::test]
async fn without_lobby_removals_still_happen() {
    let game = gid(1);
    let m = {
        let mut m = Mocks::new()
            .listing(vec![], vec![record(game, RuntimeStatus::Running, "")])
            .any_cache();
        m.store
            .expect_transition_status()
            .times(1)
            .returning(|c| Ok(record(c.game_id, c.to, "")));
        m
    };
    let reconciler = Reconciler::builder()
        .docker(Arc::new(m.docker))
        .store(Arc::new(m.store))
        .engine(Arc::new(m.engine))
        .without_lobby()
        .cache(Arc::new(m.cache))
        .scheduler(Arc::new(m.scheduler))
        .build()
        .expect("built");
    let report = reconciler.tick().await.expect("pass ok");
    assert_eq!(report.applied["set_status"], 1);
}

#[tokio::test]
async fn compare_and_set_conflict_is_skipped_and_counted() {
    let game = gid(1);
    let mut m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "")]);
    m.store
        .expect_transition_status()
        .times(1)
        .returning(|_| Err(PortError::conflict("status is stopped, not running")));
    // No cache write, no lobby call.
    let report = m
        .build(config())
        .tick()
        .await
        .expect("a conflict is not an error");
    assert_eq!(report.conflicts, 1);
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn inspect_finds_a_container_the_list_missed_so_it_is_not_removed() {
    let game = gid(1);
    let mut m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "c1")]);
    m.docker
        .expect_inspect()
        .with(eq("c1"))
        .times(1)
        .returning(move |id| Ok(container(id, game, ContainerState::Running)));
    // No transition_status expectation: a removal attempt would panic the pass.
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.skipped_removals, 1);
    assert_eq!(report.applied_total(), 0);
}

/// Docker resolves an inspect by id, then by name, then by id prefix: a container *named* like
/// the gone container's id answers, with another id, and must not block the removal for ever.
#[tokio::test]
async fn an_inspect_answer_with_another_id_confirms_the_removal() {
    let game = gid(1);
    let mut m = Mocks::new()
        .listing(vec![], vec![record(game, RuntimeStatus::Running, "c1")])
        .any_cache();
    m.docker
        .expect_inspect()
        .with(eq("c1"))
        .times(1)
        .returning(move |_| {
            let mut squatter = container("f00dcafe", gid(7), ContainerState::Running);
            squatter.name = "/c1".to_owned();
            Ok(squatter)
        });
    m.store
        .expect_transition_status()
        .withf(|c| c.to == RuntimeStatus::Removed && c.expected.current_container_id == "c1")
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.skipped_removals, 0);
    assert_eq!(report.applied["set_status"], 1);
}

/// A record holding Docker's short form of an id: an answer whose id extends it is the same
/// container, still there.
#[tokio::test]
async fn an_inspect_answer_extending_a_short_recorded_id_is_the_same_container() {
    let game = gid(1);
    let mut m = Mocks::new().listing(
        vec![],
        vec![record(game, RuntimeStatus::Running, "5289b564e935")],
    );
    m.docker.expect_inspect().times(1).returning(move |_| {
        Ok(container(
            "5289b564e935c0ffee0000000000000000000000000000000000000000000000",
            game,
            ContainerState::Running,
        ))
    });
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.skipped_removals, 1);
    assert_eq!(report.applied_total(), 0);
}

/// Every record write expects the status *and* the container the plan saw; after this pass's
/// own rebind, the game's status change expects the container the rebind left.
#[tokio::test]
async fn writes_expect_the_observed_status_and_container_then_their_own() {
    let game = gid(1);
    let mut rec = record(game, RuntimeStatus::Running, "old");
    rec.probe_failures = 2;
    let mut m = Mocks::new()
        .listing(
            vec![container("new", game, ContainerState::Exited)],
            vec![rec],
        )
        .any_cache();
    let mut seq = Sequence::new();
    m.store
        .expect_rebind()
        .withf(|r| {
            r.expected.status == RuntimeStatus::Running
                && r.expected.current_container_id == "old"
                && r.container_id == "new"
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|r| Ok(record(r.game_id, RuntimeStatus::Running, &r.container_id)));
    m.store
        .expect_transition_status()
        .withf(|c| {
            c.expected.status == RuntimeStatus::Running
                && c.expected.current_container_id == "new"
                && c.to == RuntimeStatus::EngineUnreachable
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(record(c.game_id, c.to, "new")));
    m.store
        .expect_set_probe_failures()
        .withf(|u| {
            u[0].failures == 3
                && u[0].expected.status == RuntimeStatus::EngineUnreachable
                && u[0].expected.current_container_id == "new"
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|u| {
            Ok(vec![record(
                u[0].game_id,
                RuntimeStatus::EngineUnreachable,
                "new",
            )])
        });
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["rebind"], 1);
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(report.applied["set_probe_failures"], 1);
    assert_eq!(report.conflicts, 0);
}

/// A fenced store refuses a write because this replica no longer leads: nothing more is
/// written, the pass says leadership was lost, and the refusal is not an action failure.
#[tokio::test]
async fn a_fenced_write_stops_the_pass_as_leadership_lost() {
    let (a, b) = (gid(1), gid(2));
    let mut m = Mocks::new().listing(
        vec![],
        vec![
            record(a, RuntimeStatus::Running, ""),
            record(b, RuntimeStatus::Running, ""),
        ],
    );
    m.store.expect_transition_status().times(1).returning(|_| {
        Err(PortError::fenced(
            "this replica does not hold the leader lock; the write is refused",
        ))
    });
    // No lobby call, no cache write, no second transition.
    let err = m.build(config()).tick().await.expect_err("fenced");
    assert!(matches!(err, PassError::LeadershipLost { .. }), "{err:?}");
    assert!(err.failures().is_empty(), "{err}");
    assert_eq!(
        err.report().not_applied,
        1,
        "the second removal is not tried"
    );
    assert_eq!(err.report().applied_total(), 0);
}

#[tokio::test]
async fn inspect_error_means_doubt_and_no_removal() {
    let game = gid(1);
    let mut m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "c1")]);
    m.docker
        .expect_inspect()
        .times(1)
        .returning(|_| Err(unavailable("docker")));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.skipped_removals, 1);
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn start_grace_keeps_a_starting_record_without_container() {
    let game = gid(1);
    let mut starting = record(game, RuntimeStatus::Starting, "");
    starting.status_changed_at = ts("2026-11-27T11:59:30Z");
    let m = Mocks::new().listing(vec![], vec![starting]);
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.findings["awaiting_container"], 1);
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn terminal_records_are_never_touched() {
    let (a, b) = (gid(1), gid(2));
    let m = Mocks::new().listing(
        vec![container("c2", b, ContainerState::Running)],
        vec![
            record(a, RuntimeStatus::Removed, "c1"),
            record(b, RuntimeStatus::Failed, "c2"),
        ],
    );
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.findings["stale_container"], 1);
    assert_eq!(report.applied_total(), 0);
}

// ----- adoption (R10) -----

#[tokio::test]
async fn adoption_upserts_caches_and_starts_the_game() {
    let game = gid(7);
    let mut m = Mocks::new().listing(vec![container("c7", game, ContainerState::Running)], vec![]);
    m.store
        .expect_load_game_projections()
        .withf(move |ids| ids == [game])
        .times(1)
        .returning(move |_| {
            Ok(vec![GameProjection {
                game_id: game,
                turn_schedule: "0 0 * * *".to_owned(),
            }])
        });
    let mut seq = Sequence::new();
    m.store
        .expect_upsert_adopted()
        .withf(move |insert, update| {
            let r = &insert.record;
            r.game_id == game
                && r.status == RuntimeStatus::Running
                && r.current_container_id == "c7"
                && r.current_image_ref == "galaxy/engine:1.4"
                && r.current_engine_version == "1.4.0"
                && r.engine_endpoint == format!("http://galaxy-game-{game}:8080")
                && r.docker_network == "galaxy"
                && r.turn_schedule == "0 0 * * *"
                && r.probe_failures == 0
                && update.status == RuntimeStatus::Running
                && update.current_container_id == "c7"
                && update.engine_endpoint == r.engine_endpoint
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|insert, _| Ok(insert.record));
    m.cache
        .expect_put_runtime()
        .withf(move |r| r.game_id == game && r.current_container_id == "c7")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| ());
    m.scheduler
        .expect_start_game()
        .withf(move |r| r.game_id == game && r.status == RuntimeStatus::Running)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| ());
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["adopt"], 1);
}

/// The store committed the adoption but its answer was lost (a timeout): no later pass adopts
/// again, so the pass reads the row, finds its adoption there, and hands the running game to
/// the scheduler all the same.
#[tokio::test]
async fn an_adoption_whose_answer_was_lost_still_starts_the_game() {
    let game = gid(3);
    let mut m = Mocks::new()
        .listing(vec![container("c3", game, ContainerState::Running)], vec![])
        .any_cache();
    m.store.expect_load_game_projections().returning(move |_| {
        Ok(vec![GameProjection {
            game_id: game,
            turn_schedule: String::new(),
        }])
    });
    m.store.expect_upsert_adopted().times(1).returning(|_, _| {
        Err(PortError::timeout(
            "INSERT runtime_records",
            std::time::Duration::from_secs(5),
        ))
    });
    m.store
        .expect_get_record()
        .times(1)
        .returning(move |g| Ok(Some(record(g, RuntimeStatus::Running, "c3"))));
    m.scheduler
        .expect_start_game()
        .withf(move |r| r.game_id == game)
        .times(1)
        .returning(|_| ());
    let report = m.build(config()).tick().await.expect("the adoption stands");
    assert_eq!(report.applied["adopt"], 1);
}

/// … and when the row does not hold it, the adoption failed, with the store's error.
#[tokio::test]
async fn an_adoption_that_did_not_commit_fails_with_the_stores_error() {
    let game = gid(3);
    let mut m = Mocks::new().listing(vec![container("c3", game, ContainerState::Running)], vec![]);
    m.store.expect_load_game_projections().returning(move |_| {
        Ok(vec![GameProjection {
            game_id: game,
            turn_schedule: String::new(),
        }])
    });
    m.store
        .expect_upsert_adopted()
        .returning(|_, _| Err(unavailable("postgres")));
    m.store.expect_get_record().returning(|_| Ok(None));
    m.scheduler.expect_start_game().never();
    let err = m.build(config()).tick().await.expect_err("not adopted");
    assert_eq!(err.failures()[0].action, "adopt");
    assert!(err.failures()[0].error.is_retryable());
}

#[tokio::test]
async fn adoption_of_a_stopped_container_does_not_start_the_game() {
    let game = gid(7);
    let mut m = Mocks::new()
        .listing(vec![container("c7", game, ContainerState::Exited)], vec![])
        .any_cache();
    m.store
        .expect_load_game_projections()
        .times(1)
        .returning(move |_| {
            Ok(vec![GameProjection {
                game_id: game,
                turn_schedule: String::new(),
            }])
        });
    m.store
        .expect_upsert_adopted()
        .withf(|insert, _| insert.record.status == RuntimeStatus::Stopped)
        .times(1)
        .returning(|insert, _| Ok(insert.record));
    // No scheduler expectation: start_game would panic the pass.
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["adopt"], 1);
}

#[tokio::test]
async fn orphan_container_writes_nothing() {
    let game = gid(9);
    let mut m = Mocks::new().listing(vec![container("c9", game, ContainerState::Running)], vec![]);
    m.store
        .expect_load_game_projections()
        .times(1)
        .returning(|_| Ok(vec![]));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.findings["orphan_container"], 1);
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn no_projection_call_when_every_game_has_a_record() {
    let game = gid(1);
    let mut m = Mocks::new().listing(
        vec![container("c1", game, ContainerState::Exited)],
        vec![record(game, RuntimeStatus::Stopped, "c1")],
    );
    // A stopped record with its container: no probe, no action, no projection load.
    m.engine.expect_status().never();
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn projection_load_failure_fails_only_the_adoptions() {
    let (adoptee, gone) = (gid(1), gid(2));
    let mut m = Mocks::new()
        .listing(
            vec![container("c1", adoptee, ContainerState::Running)],
            vec![record(gone, RuntimeStatus::Running, "")],
        )
        .any_cache();
    m.store
        .expect_load_game_projections()
        .times(1)
        .returning(|_| Err(unavailable("postgres")));
    m.store
        .expect_transition_status()
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "")));
    let reconciler = m.build(config());
    let err = reconciler
        .tick()
        .await
        .expect_err("the adoption could not be decided");
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].game_id, adoptee);
    assert_eq!(err.failures()[0].action, "adopt");
    assert!(err.failures()[0].error.is_retryable(), "meaning kept");
    assert!(err.to_string().contains("load game projections"), "{err}");
    assert_eq!(
        err.report().findings["orphan_container"],
        0,
        "not evidence of an orphan"
    );
    assert_eq!(
        err.report().applied["set_status"],
        1,
        "the rest of the pass went on"
    );
}

// ----- rebind (R7) -----

#[tokio::test]
async fn rebind_expects_the_observed_container_and_conflicts_are_counted() {
    let (a, b) = (gid(1), gid(2));
    let mut m = Mocks::new()
        .listing(
            vec![
                container("new-a", a, ContainerState::Exited),
                container("new-b", b, ContainerState::Exited),
            ],
            vec![
                record(a, RuntimeStatus::Stopped, "old-a"),
                record(b, RuntimeStatus::Stopped, "old-b"),
            ],
        )
        .any_cache();
    m.store
        .expect_rebind()
        .withf(move |r| {
            r.game_id == a
                && r.expected.current_container_id == "old-a"
                && r.container_id == "new-a"
        })
        .times(1)
        .returning(|r| {
            let mut rec = record(r.game_id, RuntimeStatus::Stopped, &r.container_id);
            rec.current_image_ref = r.image_ref;
            Ok(rec)
        });
    m.store
        .expect_rebind()
        .withf(move |r| r.game_id == b && r.expected.current_container_id == "old-b")
        .times(1)
        .returning(|_| Err(PortError::conflict("container is no longer old-b")));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["rebind"], 1);
    assert_eq!(report.conflicts, 1);
}

// ----- probes (R9) and batches -----

#[tokio::test]
async fn engine_back_sets_running_then_resets_failures_with_the_new_status_and_publishes() {
    let game = gid(1);
    let mut rec = record(game, RuntimeStatus::EngineUnreachable, "c1");
    rec.probe_failures = 4;
    let mut m = Mocks::new()
        .listing(
            vec![container("c1", game, ContainerState::Running)],
            vec![rec],
        )
        .any_cache();
    m.engine
        .expect_status()
        .with(eq(format!("http://galaxy-game-{game}:8080")))
        .times(1)
        .returning(|_| Ok(serde_json::json!({"turn": 12})));
    let mut seq = Sequence::new();
    m.store
        .expect_transition_status()
        .withf(|c| {
            c.expected.status == RuntimeStatus::EngineUnreachable && c.to == RuntimeStatus::Running
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    m.store
        .expect_set_probe_failures()
        .withf(move |u| {
            u.len() == 1
                && u[0].game_id == game
                && u[0].failures == 0
                && u[0].expected.status == RuntimeStatus::Running
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|u| Ok(vec![record(u[0].game_id, RuntimeStatus::Running, "c1")]));
    m.store
        .expect_publish_snapshots()
        .withf(move |s| {
            s.len() == 1
                && s[0].game_id == game
                && *s[0].state == serde_json::json!({"turn": 12})
                && s[0].observed_at == ts(NOW)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(report.applied["set_probe_failures"], 1);
    assert_eq!(report.applied["publish_snapshot"], 1);
    assert_eq!(report.probes, 1);
}

#[tokio::test]
async fn failures_reaching_the_threshold_mark_unreachable_and_count_with_that_status() {
    let game = gid(1);
    let mut rec = record(game, RuntimeStatus::Running, "c1");
    rec.probe_failures = 2;
    let mut m = Mocks::new()
        .listing(
            vec![container("c1", game, ContainerState::Running)],
            vec![rec],
        )
        .any_cache();
    m.engine.expect_status().times(1).returning(|_| {
        Err(PortError::unavailable(
            "GET /status",
            std::io::Error::other("refused"),
        ))
    });
    m.store
        .expect_transition_status()
        .withf(|c| {
            c.to == RuntimeStatus::EngineUnreachable && c.message == "unavailable: GET /status"
        })
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    m.store
        .expect_set_probe_failures()
        .withf(|u| u[0].failures == 3 && u[0].expected.status == RuntimeStatus::EngineUnreachable)
        .times(1)
        .returning(|_| Ok(vec![]));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["set_status"], 1);
    // The counter row was skipped by the store: a conflict, not an error.
    assert_eq!(report.conflicts, 1);
}

#[tokio::test]
async fn after_a_status_conflict_the_same_games_counter_is_not_written() {
    let game = gid(1);
    let mut rec = record(game, RuntimeStatus::Running, "c1");
    rec.probe_failures = 2;
    let mut m = Mocks::new().listing(
        vec![container("c1", game, ContainerState::Exited)],
        vec![rec],
    );
    m.store
        .expect_transition_status()
        .withf(|c| c.message == "container exited")
        .times(1)
        .returning(|_| Err(PortError::conflict("status is stopped")));
    // No set_probe_failures expectation: the counter write is skipped.
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.conflicts, 2);
    assert_eq!(report.applied_total(), 0);
}

#[tokio::test]
async fn a_failed_batch_fails_each_of_its_games_with_the_same_meaning() {
    let (a, b) = (gid(1), gid(2));
    let mut m = Mocks::new().listing(
        vec![
            container("ca", a, ContainerState::Running),
            container("cb", b, ContainerState::Running),
        ],
        vec![
            record(a, RuntimeStatus::Running, "ca"),
            record(b, RuntimeStatus::Running, "cb"),
        ],
    );
    m.engine
        .expect_status()
        .times(2)
        .returning(|_| Ok(serde_json::json!({})));
    m.store.expect_publish_snapshots().times(1).returning(|_| {
        Err(PortError::unavailable(
            "snapshots",
            std::io::Error::other("reset"),
        ))
    });
    let err = m
        .build(config())
        .tick()
        .await
        .expect_err("the batch failed");
    let games: Vec<_> = err
        .failures()
        .iter()
        .map(|f| (f.game_id, f.action))
        .collect();
    assert_eq!(games, [(a, "publish_snapshot"), (b, "publish_snapshot")]);
    assert!(err.failures().iter().all(|f| f.error.is_retryable()));
    let source = std::error::Error::source(&err.failures()[0].error).expect("shared source");
    assert!(source.to_string().contains("snapshots"), "{source}");
}

/// The batch size is the store's business (a SQL store splits a batch into statements of its
/// own size): the executor hands over every snapshot of the pass in one call, however many.
#[tokio::test]
async fn batches_go_to_the_store_whole() {
    let n = 1_503u32;
    let containers = (0..n)
        .map(|i| container(&format!("c{i}"), gid(i), ContainerState::Running))
        .collect();
    let records = (0..n)
        .map(|i| record(gid(i), RuntimeStatus::Running, &format!("c{i}")))
        .collect();
    let mut m = Mocks::new().listing(containers, records);
    m.engine
        .expect_status()
        .times(n as usize)
        .returning(|_| Ok(serde_json::json!({})));
    m.store
        .expect_publish_snapshots()
        .withf(move |s| s.len() == n as usize)
        .times(1)
        .returning(|_| Ok(()));
    let report = m.build(config()).tick().await.expect("pass ok");
    assert_eq!(report.applied["publish_snapshot"], u64::from(n));
}

#[tokio::test(start_paused = true)]
async fn probes_are_bounded_by_probe_concurrency() {
    let n = 200u32;
    let containers: Vec<_> = (0..n)
        .map(|i| Arc::new(container(&format!("c{i}"), gid(i), ContainerState::Running)))
        .collect();
    let records: Vec<_> = (0..n)
        .map(|i| Arc::new(record(gid(i), RuntimeStatus::Running, &format!("c{i}"))))
        .collect();
    let mut m = Mocks::new();
    m.docker
        .expect_list_managed()
        .returning(move |_| Ok(containers.clone()));
    m.store
        .expect_list_records()
        .returning(move || Ok(records.clone()));
    let engine = Arc::new(SlowEngine::new(Duration::from_millis(10)));
    let reconciler = m
        .builder()
        .engine(engine.clone())
        .config(Config {
            probe_concurrency: NonZeroUsize::new(8).unwrap(),
            ..config()
        })
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let scenario = reconciler.observe().await.expect("observed");
    let elapsed = started.elapsed();
    assert_eq!(engine.calls.load(Ordering::SeqCst), n as usize);
    assert_eq!(engine.max_in_flight.load(Ordering::SeqCst), 8);
    assert_eq!(scenario.probes.len(), n as usize);
    assert!(scenario.probes.values().all(ProbeOutcome::is_ok));
    // ceil(200 / 8) rounds of 10 ms each.
    assert_eq!(elapsed, Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_overruns_is_a_timeout_failure() {
    let game = gid(1);
    let mut m = Mocks::new()
        .listing(
            vec![container("c1", game, ContainerState::Running)],
            vec![record(game, RuntimeStatus::Running, "c1")],
        )
        .any_cache();
    m.store
        .expect_transition_status()
        .withf(|c| c.to == RuntimeStatus::EngineUnreachable && c.message == "timeout after 2s")
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    m.store
        .expect_set_probe_failures()
        .withf(|u| u[0].failures == 1)
        .times(1)
        .returning(|u| {
            Ok(vec![record(
                u[0].game_id,
                RuntimeStatus::EngineUnreachable,
                "c1",
            )])
        });
    let engine = Arc::new(SlowEngine::new(Duration::from_secs(60)));
    let reconciler = m
        .builder()
        .engine(engine)
        .config(Config {
            failure_threshold: NonZeroU32::new(1).unwrap(),
            ..config()
        })
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let report = reconciler.tick().await.expect("pass ok");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(report.applied["set_status"], 1);
}

#[tokio::test]
async fn container_ip_addressing_probes_the_address_on_the_records_network() {
    let (a, b, c) = (gid(1), gid(2), gid(3));
    let mut without_address = container("cb", b, ContainerState::Running);
    without_address.addresses.clear();
    let mut on_old_network = container("cc", c, ContainerState::Running);
    on_old_network.addresses = BTreeMap::from([("galaxy-old".to_owned(), "172.19.0.9".to_owned())]);
    let mut started_on_old_network = record(c, RuntimeStatus::Running, "cc");
    started_on_old_network.docker_network = "galaxy-old".to_owned();
    let mut m = Mocks::new().listing(
        vec![
            container("ca", a, ContainerState::Running),
            without_address,
            on_old_network,
        ],
        vec![
            record(a, RuntimeStatus::Running, "ca"),
            record(b, RuntimeStatus::Running, "cb"),
            started_on_old_network,
        ],
    );
    m.engine
        .expect_status()
        .with(eq("http://172.18.0.5:8080"))
        .times(1)
        .returning(|_| Ok(serde_json::json!({"turn": 1})));
    m.engine
        .expect_status()
        .with(eq("http://172.19.0.9:8080"))
        .times(1)
        .returning(|_| Ok(serde_json::json!({"turn": 2})));
    let reconciler = m.build(Config {
        engine_addressing: EngineAddressing::ContainerIp,
        ..config()
    });
    let scenario = reconciler.observe().await.expect("observed");
    assert!(scenario.probes[&a].is_ok());
    assert_eq!(
        scenario.probes[&b],
        ProbeOutcome::Error("container has no address on network galaxy".to_owned())
    );
    assert_eq!(
        scenario.probes[&c],
        ProbeOutcome::Ok(serde_json::json!({"turn": 2}).into())
    );
}

// ----- dry run, observe, apply -----

#[tokio::test]
async fn dry_run_plans_and_writes_nothing() {
    let game = gid(1);
    let m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "c1")]);
    // No inspect, no write expectation at all.
    let (scenario, plan) = m.build(config()).tick_dry_run().await.expect("dry run");
    assert_eq!(scenario.records.len(), 1);
    assert_eq!(scenario.now, ts(NOW));
    assert_eq!(scenario.config, config());
    assert!(matches!(
        plan.actions.as_slice(),
        [Action::SetStatus {
            to: RuntimeStatus::Removed,
            ..
        }]
    ));
    // The scenario replays to the same plan.
    let replayed =
        galaxy_runtime_model::Scenario::from_json(&serde_json::to_string(&scenario).unwrap())
            .expect("scenario JSON round-trips");
    let (observation, cfg) = replayed.into_parts();
    assert_eq!(galaxy_runtime_reconciler::plan(&observation, &cfg), plan);
}

#[tokio::test]
async fn dry_run_with_failed_projections_is_an_error() {
    let mut m = Mocks::new().listing(
        vec![container("c1", gid(1), ContainerState::Running)],
        vec![],
    );
    m.store
        .expect_load_game_projections()
        .returning(|_| Err(unavailable("postgres")));
    let err = m
        .build(config())
        .tick_dry_run()
        .await
        .expect_err("cannot plan adoptions");
    assert!(
        matches!(
            err,
            PassError::Observe {
                step: ObserveStep::LoadProjections,
                ..
            }
        ),
        "{err:?}"
    );
}

/// The scenario of a pass whose projection load failed says so, and its replay plans what the
/// pass did: the unrecorded game is undecided, neither adopted nor an orphan.
#[tokio::test]
async fn observe_records_a_failed_projection_load_and_the_replay_decides_alike() {
    let game = gid(1);
    let mut m = Mocks::new().listing(vec![container("c1", game, ContainerState::Running)], vec![]);
    m.store
        .expect_load_game_projections()
        .times(1)
        .returning(|_| Err(unavailable("postgres")));
    let scenario = m.build(config()).observe().await.expect("observed");
    let error = scenario
        .projections_error
        .clone()
        .expect("the failure is recorded");
    assert!(error.contains("postgres"), "{error}");
    let replayed =
        galaxy_runtime_model::Scenario::from_json(&serde_json::to_string(&scenario).unwrap())
            .expect("scenario JSON round-trips");
    let (observation, cfg) = replayed.into_parts();
    let plan = galaxy_runtime_reconciler::plan(&observation, &cfg);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.summary.findings["adoption_undecided"], 1);
    assert_eq!(plan.summary.findings["orphan_container"], 0);
}

#[tokio::test]
async fn apply_carries_out_a_given_plan() {
    let game = gid(1);
    let mut m = Mocks::new()
        .listing(vec![], vec![record(game, RuntimeStatus::Running, "")])
        .any_cache();
    m.store
        .expect_transition_status()
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "")));
    let reconciler = m.build(config());
    let (scenario, plan) = reconciler.tick_dry_run().await.expect("dry run");
    let report = reconciler.apply(&scenario, &plan).await.expect("applied");
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(report.actions["set_status"], 1);
}

// ----- leader lock -----

fn with_leader(m: Mocks, leader: MockLeaderLock) -> Reconciler {
    m.builder().leader(Arc::new(leader)).build().unwrap()
}

#[tokio::test]
async fn not_leader_skips_the_pass_without_any_call() {
    let mut leader = MockLeaderLock::new();
    leader.expect_try_acquire().times(1).returning(|| Ok(false));
    let report = with_leader(Mocks::new(), leader)
        .tick()
        .await
        .expect("skipped");
    assert!(report.skipped_not_leader);
    assert_eq!(report.records, 0);
}

#[tokio::test]
async fn leader_lock_error_is_a_pass_error_without_any_call() {
    let mut leader = MockLeaderLock::new();
    leader
        .expect_try_acquire()
        .times(1)
        .returning(|| Err(unavailable("postgres")));
    let err = with_leader(Mocks::new(), leader)
        .tick()
        .await
        .expect_err("unknown leadership");
    assert!(matches!(err, PassError::LeaderLock { .. }), "{err:?}");
}

#[tokio::test]
async fn leadership_lost_before_applying_writes_nothing() {
    let game = gid(1);
    let m = Mocks::new().listing(vec![], vec![record(game, RuntimeStatus::Running, "")]);
    let mut leader = MockLeaderLock::new();
    leader.expect_try_acquire().returning(|| Ok(true));
    leader.expect_is_held().times(1).returning(|| Ok(false));
    let err = with_leader(m, leader).tick().await.expect_err("lost");
    match &err {
        PassError::LeadershipLost { report, .. } => assert_eq!(report.not_applied, 1),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().starts_with("leadership lost"), "{err}");
}

#[tokio::test]
async fn leadership_lost_between_groups_stops_at_once() {
    let game = gid(1);
    let mut rec = record(game, RuntimeStatus::EngineUnreachable, "c1");
    rec.probe_failures = 1;
    let mut m = Mocks::new()
        .listing(
            vec![container("c1", game, ContainerState::Running)],
            vec![rec],
        )
        .any_cache();
    m.engine
        .expect_status()
        .returning(|_| Ok(serde_json::json!({})));
    m.store
        .expect_transition_status()
        .times(1)
        .returning(|c| Ok(record(c.game_id, c.to, "c1")));
    let mut leader = MockLeaderLock::new();
    leader.expect_try_acquire().returning(|| Ok(true));
    let mut seq = Sequence::new();
    leader
        .expect_is_held()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| Ok(true));
    leader
        .expect_is_held()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| Err(unavailable("connection lost")));
    let err = with_leader(m, leader).tick().await.expect_err("lost");
    let report = err.report();
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(report.not_applied, 2, "counter and snapshot not written");
    assert!(err.to_string().contains("cannot be confirmed"), "{err}");
}

// ----- panics, builder, metrics -----

#[tokio::test]
async fn a_panicking_port_is_the_pass_error() {
    let mut m = Mocks::new();
    m.docker
        .expect_list_managed()
        .returning(|_| panic!("docker client bug"));
    let err = m.build(config()).tick().await.expect_err("panic caught");
    match err {
        PassError::Panicked { message, .. } => assert_eq!(message, "docker client bug"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_missing_port_is_named() {
    let m = Mocks::new();
    let err = Reconciler::builder()
        .docker(Arc::new(m.docker))
        .engine(Arc::new(m.engine))
        .lobby(Arc::new(m.lobby))
        .cache(Arc::new(m.cache))
        .scheduler(Arc::new(m.scheduler))
        .build()
        .expect_err("no store");
    assert!(
        matches!(err, BuildError::MissingPort { port: "store", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(".store(…)"), "{err}");

    let m = Mocks::new();
    let err = Reconciler::builder()
        .docker(Arc::new(m.docker))
        .store(Arc::new(m.store))
        .engine(Arc::new(m.engine))
        .cache(Arc::new(m.cache))
        .scheduler(Arc::new(m.scheduler))
        .build()
        .expect_err("no lobby");
    assert!(err.to_string().contains("without_lobby"), "{err}");
}

#[test]
fn an_invalid_config_is_refused() {
    let err = Mocks::new()
        .builder()
        .config(Config {
            removal_guard_fraction: 2.0,
            ..config()
        })
        .build()
        .expect_err("fraction above 1");
    assert!(matches!(err, BuildError::InvalidConfig(_)), "{err:?}");
    assert!(err.to_string().contains("fraction"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn metrics_are_registered_at_zero_and_count_the_pass() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let game = gid(1);
    let mut m = Mocks::new()
        .listing(
            vec![
                container("c1", game, ContainerState::Running),
                container("c9", gid(9), ContainerState::Running),
            ],
            vec![record(game, RuntimeStatus::Running, "c1")],
        )
        .any_cache();
    m.store
        .expect_load_game_projections()
        .returning(|_| Ok(vec![]));
    m.engine
        .expect_status()
        .returning(|_| Ok(serde_json::json!({})));
    m.store.expect_publish_snapshots().returning(|_| Ok(()));
    let reconciler = m.build(config());

    for name in [
        telemetry::PASS_DURATION,
        telemetry::PASSES,
        telemetry::PASS_OVERRUNS,
        telemetry::APPLIED_ACTIONS,
        telemetry::FINDINGS,
        telemetry::CONFLICTS,
        telemetry::FAILURES,
        telemetry::LOBBY_DELIVERIES,
        telemetry::LOBBY_ATTEMPTS,
        telemetry::OUTBOX_PENDING,
        telemetry::OUTBOX_OLDEST_AGE,
        telemetry::PROBE_DURATION,
        telemetry::LAST_SUCCESS,
    ] {
        assert!(recorder.described(name), "{name} not described");
    }
    for pass in telemetry::PASS_KINDS {
        for result in telemetry::PASS_RESULTS {
            assert_eq!(
                recorder.counter(&format!(
                    "{}{{pass={pass},result={result}}}",
                    telemetry::PASSES
                )),
                Some(0)
            );
        }
        assert_eq!(
            recorder.histogram(&format!("{}{{pass={pass}}}", telemetry::PASS_DURATION)),
            Some(vec![])
        );
    }
    assert_eq!(recorder.counter(telemetry::PASS_OVERRUNS), Some(0));
    for kind in Action::KINDS {
        assert_eq!(
            recorder.counter(&format!("{}{{kind={kind}}}", telemetry::APPLIED_ACTIONS)),
            Some(0)
        );
        assert_eq!(
            recorder.counter(&format!("{}{{kind={kind}}}", telemetry::FAILURES)),
            Some(0)
        );
    }
    assert_eq!(recorder.counter(telemetry::CONFLICTS), Some(0));
    for result in telemetry::DELIVERY_RESULTS {
        assert_eq!(
            recorder.counter(&format!(
                "{}{{result={result}}}",
                telemetry::LOBBY_DELIVERIES
            )),
            Some(0)
        );
    }
    assert_eq!(recorder.gauge(telemetry::OUTBOX_PENDING), Some(0.0));
    assert_eq!(recorder.gauge(telemetry::LAST_SUCCESS), Some(0.0));

    reconciler.tick().await.expect("pass ok");
    assert_eq!(
        recorder.counter(&format!("{}{{pass=full,result=ok}}", telemetry::PASSES)),
        Some(1)
    );
    assert_eq!(
        recorder.counter(&format!(
            "{}{{kind=publish_snapshot}}",
            telemetry::APPLIED_ACTIONS
        )),
        Some(1)
    );
    assert_eq!(
        recorder.counter(&format!("{}{{kind=orphan_container}}", telemetry::FINDINGS)),
        Some(1)
    );
    assert_eq!(
        recorder
            .histogram(&format!("{}{{pass=full}}", telemetry::PASS_DURATION))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        recorder.histogram(telemetry::PROBE_DURATION).unwrap().len(),
        1
    );
    assert_eq!(
        recorder.gauge(telemetry::LAST_SUCCESS),
        Some(ts(NOW).unix_micros() as f64 / 1e6)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn metrics_count_errors_and_failures() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let mut m = Mocks::new().listing(vec![], vec![record(gid(1), RuntimeStatus::Running, "")]);
    m.store
        .expect_transition_status()
        .returning(|_| Err(PortError::invalid("bad row")));
    m.build(config()).tick().await.expect_err("failed");
    assert_eq!(
        recorder.counter(&format!("{}{{pass=full,result=error}}", telemetry::PASSES)),
        Some(1)
    );
    assert_eq!(
        recorder.counter(&format!("{}{{kind=set_status}}", telemetry::FAILURES)),
        Some(1)
    );
    assert_eq!(
        recorder.gauge(telemetry::LAST_SUCCESS),
        Some(0.0),
        "no success yet"
    );
}

// ----- log lines -----

/// Keeps every log record with the thread that made it: each test reads only its own (a
/// current-thread runtime runs the whole pass on the test's thread).
struct CapturingLogger(std::sync::Mutex<Vec<(std::thread::ThreadId, log::Level, String)>>);

impl log::Log for CapturingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            std::thread::current().id(),
            record.level(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn captured_lines() -> Vec<(log::Level, String)> {
    static LOGGER: std::sync::OnceLock<&'static CapturingLogger> = std::sync::OnceLock::new();
    let logger = LOGGER.get_or_init(|| {
        let logger: &'static CapturingLogger =
            Box::leak(Box::new(CapturingLogger(std::sync::Mutex::new(Vec::new()))));
        // Another test binary's logger cannot be here: each test file is its own process.
        let _ = log::set_logger(logger);
        log::set_max_level(log::LevelFilter::Trace);
        logger
    });
    let me = std::thread::current().id();
    logger
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _, _)| *thread == me)
        .map(|(_, level, line)| (*level, line.clone()))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn one_info_line_per_change_and_container_text_is_escaped() {
    captured_lines();
    let (gone, adoptee) = (gid(1), gid(2));
    let mut forged = container("c\nINFO forged", gid(3), ContainerState::Running);
    forged.name = "/evil\nWARN forged line".to_owned();
    let mut adopted = container("c2", adoptee, ContainerState::Running);
    adopted.image_ref = "img\u{1b}[31m".to_owned();
    let mut m = Mocks::new()
        .listing(
            vec![forged, adopted],
            vec![record(gone, RuntimeStatus::Running, "")],
        )
        .any_cache();
    m.store.expect_load_game_projections().returning(move |_| {
        Ok(vec![GameProjection {
            game_id: adoptee,
            turn_schedule: String::new(),
        }])
    });
    m.store
        .expect_upsert_adopted()
        .returning(|insert, _| Ok(insert.record));
    m.scheduler.expect_start_game().returning(|_| ());
    m.store
        .expect_transition_status()
        .returning(|c| Ok(record(c.game_id, c.to, "")));
    m.build(config()).tick().await.expect("pass ok");

    let lines = captured_lines();
    assert!(
        lines
            .iter()
            .all(|(_, line)| !line.contains('\n') && !line.contains('\u{1b}')),
        "{lines:?}"
    );
    let info: Vec<&String> = lines
        .iter()
        .filter(|(level, _)| *level == log::Level::Info)
        .map(|(_, l)| l)
        .collect();
    let removal = format!(
        "set_status game_id={gone} from=running to=removed message=\"container disappeared\""
    );
    assert_eq!(
        info.iter().filter(|l| ***l == removal).count(),
        1,
        "{info:?}"
    );
    assert_eq!(
        info.iter()
            .filter(|l| l.starts_with(&format!("adopt game_id={adoptee} ")))
            .count(),
        1,
        "{info:?}"
    );
    assert!(
        lines.iter().any(|(level, line)| *level == log::Level::Warn
            && line.starts_with("unrecognized_container")
            && line.contains(r#"name="evil\nWARN forged line""#)),
        "{lines:?}"
    );
}
