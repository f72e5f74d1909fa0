//! Properties of the planner over generated observations (proptest).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, HostObservation, Observation,
    PassKind, ProbeOutcome, RuntimeRecord, RuntimeStatus, Scenario, Timestamp,
};
use galaxy_runtime_reconciler::{Action, Finding, Planning, observation_needs, plan};
use proptest::prelude::*;
use proptest::sample::Index;

fn gid(n: u8) -> GameId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

fn ts(minute: u8) -> Timestamp {
    format!("2026-11-27T11:{:02}:00Z", minute % 60)
        .parse()
        .unwrap()
}

fn status() -> impl Strategy<Value = RuntimeStatus> {
    proptest::sample::select(RuntimeStatus::ALL.to_vec())
}

fn state() -> impl Strategy<Value = ContainerState> {
    proptest::sample::select(ContainerState::ALL.to_vec())
}

fn container() -> impl Strategy<Value = ContainerSummary> {
    (0u8..12, 0u8..10, state(), 0u8..60, any::<bool>(), 0u8..4).prop_map(
        |(id, game, state, minute, managed, name_kind)| ContainerSummary {
            id: format!("c{id}"),
            name: match name_kind {
                0 => "/someone-else".to_owned(),
                1 => format!("/galaxy-game-{}", gid(game).to_string().to_uppercase()),
                _ => format!("/galaxy-game-{}", gid(game)),
            },
            image_ref: "img".to_owned(),
            labels: BTreeMap::from([
                (
                    "galaxy.managed".to_owned(),
                    if managed { "true" } else { "other" }.to_owned(),
                ),
                (
                    "galaxy.engine_version".to_owned(),
                    if minute % 7 == 0 { "bad label" } else { "1.0" }.to_owned(),
                ),
            ]),
            state,
            created: ts(minute),
            addresses: BTreeMap::new(),
            host: String::new(),
            published_ports: BTreeMap::new(),
        },
    )
}

fn record() -> impl Strategy<Value = RuntimeRecord> {
    (
        0u8..10,
        status(),
        prop::option::of(0u8..12),
        0u32..5,
        0u8..60,
    )
        .prop_map(
            |(game, status, container, probe_failures, minute)| RuntimeRecord {
                current_container_id: container.map(|c| format!("c{c}")).unwrap_or_default(),
                probe_failures,
                ..RuntimeRecord::new(gid(game), status, ts(minute))
            },
        )
}

fn probe() -> impl Strategy<Value = ProbeOutcome> {
    prop_oneof![
        (0u32..100).prop_map(|t| ProbeOutcome::Ok(serde_json::json!({ "turn": t }).into())),
        Just(ProbeOutcome::Error("timeout after 2s".to_owned())),
    ]
}

prop_compose! {
    fn observation()(
        containers in prop::collection::vec(container(), 0..14),
        records in prop::collection::vec(record(), 0..12),
        games in prop::collection::btree_set(0u8..10, 0..10),
        probes in prop::collection::btree_map(0u8..10, probe(), 0..10),
        quick in any::<bool>(),
        hosts_kind in 0u8..4,
        host_picks in prop::collection::vec(0usize..4, 26),
    ) -> Observation {
        // CONTRACT §6: no hosts (one host ""), two hosts that listed, two of which one failed,
        // or no hosts and records naming a host that is not configured.
        let hosts = match hosts_kind {
            1 => vec![HostObservation::listed("a"), HostObservation::listed("b")],
            2 => vec![HostObservation::listed("a"), HostObservation::failed("b", "connection refused")],
            _ => Vec::new(),
        };
        let mut containers: Vec<ContainerSummary> = containers;
        let mut records: Vec<RuntimeRecord> = records;
        if !hosts.is_empty() {
            for (c, pick) in containers.iter_mut().zip(&host_picks) {
                c.host = hosts[pick % hosts.len()].name.clone();
            }
        }
        if hosts_kind > 0 {
            for (r, pick) in records.iter_mut().zip(&host_picks[14..]) {
                r.docker_host = ["", "a", "b", "c"][*pick].to_owned();
            }
        }
        // Docker never lists two containers with one id on a host; a store never holds two
        // records of a game.
        let mut ids = HashSet::new();
        let containers = containers.into_iter().filter(|c| ids.insert((c.host.clone(), c.id.clone()))).map(Arc::new).collect();
        let mut games_seen = HashSet::new();
        let records = records.into_iter().filter(|r| games_seen.insert(r.game_id)).map(Arc::new).collect();
        Observation {
            pass: if quick { PassKind::Quick } else { PassKind::Full },
            now: "2026-11-27T12:00:00Z".parse().unwrap(),
            containers,
            records,
            games: games.into_iter().map(|g| GameProjection { game_id: gid(g), turn_schedule: String::new() }).collect(),
            probes: probes.into_iter().map(|(g, p)| (gid(g), p)).collect(),
            projections_error: None,
            hosts,
        }
    }
}

/// A record's host as §6 reads it: its `docker_host`, or the first host for `""`.
fn host_of<'a>(obs: &'a Observation, record: &'a RuntimeRecord) -> &'a str {
    if record.docker_host.is_empty() {
        obs.hosts.first().map_or("", |h| h.name.as_str())
    } else {
        &record.docker_host
    }
}

/// Whether the host listed fine in the observation (§6).
fn observed(obs: &Observation, host: &str) -> bool {
    if obs.hosts.is_empty() {
        host.is_empty()
    } else {
        obs.hosts
            .iter()
            .any(|h| h.name == host && h.error.is_none())
    }
}

fn config() -> impl Strategy<Value = Config> {
    (1u32..4, 0u32..4, 0u8..=10, 0u64..180).prop_map(|(threshold, min, tenths, grace)| Config {
        failure_threshold: threshold.try_into().unwrap(),
        removal_guard_min: min,
        removal_guard_fraction: f64::from(tenths) / 10.0,
        start_grace: std::time::Duration::from_secs(grace * 60),
        ..Config::default()
    })
}

fn shuffle<T>(items: &mut [T], picks: &[Index]) {
    for (i, pick) in (1..items.len()).rev().zip(picks) {
        items.swap(i, pick.index(i + 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// What `observe` prints and `plan` reads back is the same observation: replaying a pass
    /// offline gives the plan the pass made, byte for byte.
    #[test]
    fn the_scenario_json_round_trip_gives_byte_identical_json(
        obs in observation(),
        config in config(),
    ) {
        let direct = serde_json::to_string(&plan(&obs, &config)).unwrap();
        let scenario = serde_json::to_string(&Scenario::new(obs, config)).unwrap();
        let (replayed, replayed_config) = Scenario::from_json(&scenario)
            .unwrap_or_else(|e| panic!("a printed scenario is refused: {e}\n{scenario}"))
            .into_parts();
        let again = serde_json::to_string(&plan(&replayed, &replayed_config)).unwrap();
        prop_assert_eq!(direct, again);
    }

    /// A quick pass applies no R9 at all — no probe counter, no snapshot, no status change from
    /// engine health — and every other rule exactly as a full pass does: its plan is the full
    /// pass's plan without R9's actions.
    #[test]
    fn a_quick_pass_is_the_full_pass_without_r9(obs in observation(), config in config()) {
        let full = plan(&Observation { pass: PassKind::Full, ..obs.clone() }, &config);
        let quick = plan(&Observation { pass: PassKind::Quick, ..obs }, &config);
        let r9 = |a: &Action| match a {
            Action::SetProbeFailures { .. } | Action::PublishSnapshot { .. } => true,
            Action::SetStatus { to, .. } => *to != RuntimeStatus::Removed,
            _ => false,
        };
        prop_assert!(quick.actions.iter().all(|a| !r9(a)), "{:?}", quick.actions);
        let without: Vec<&Action> = full.actions.iter().filter(|a| !r9(a)).collect();
        let quick_actions: Vec<&Action> = quick.actions.iter().collect();
        prop_assert_eq!(quick_actions, without);
        prop_assert_eq!(quick.findings, full.findings);
    }

    /// A quick pass's observe step loads the projections of the same unrecorded games as a
    /// full pass's (found without matching records), and probes nothing.
    #[test]
    fn a_quick_pass_needs_the_full_pass_s_projections_and_no_probe(
        obs in observation(),
        config in config(),
    ) {
        let needs = |pass| {
            observation_needs(&obs.hosts, &obs.containers, &obs.records, &config, pass)
        };
        let (full, quick) = (needs(PassKind::Full), needs(PassKind::Quick));
        prop_assert_eq!(&quick.unrecorded_games, &full.unrecorded_games);
        prop_assert!(quick.probes.is_empty());
    }

    /// A quick pass plans in two steps, R1–R4 before its projections are loaded: the games
    /// whose projections it then loads are those of the observe step's needs, and the plan is
    /// the one-step plan's, whatever the outcome of the load.
    #[test]
    fn planning_in_two_steps_loads_the_same_projections_and_plans_the_same(
        obs in observation(),
        config in config(),
        quick in any::<bool>(),
        load_failed in any::<bool>(),
    ) {
        let obs = Observation {
            pass: if quick { PassKind::Quick } else { PassKind::Full },
            projections_error: load_failed.then(|| "store unavailable".to_owned()),
            ..obs
        };
        let listed = Observation {
            games: Vec::new(),
            projections_error: None,
            ..obs.clone()
        };
        let planning = Planning::new(&listed, &config);
        let needs = observation_needs(&obs.hosts, &obs.containers, &obs.records, &config, PassKind::Full);
        prop_assert_eq!(planning.unrecorded_games(), needs.unrecorded_games);
        let two_steps = planning.finish(&obs.games, obs.projections_error.as_deref());
        prop_assert_eq!(
            serde_json::to_string(&two_steps).unwrap(),
            serde_json::to_string(&plan(&obs, &config)).unwrap()
        );
    }

    #[test]
    fn input_order_does_not_change_the_plan(
        obs in observation(),
        config in config(),
        picks in prop::collection::vec(any::<Index>(), 40),
    ) {
        let mut shuffled = obs.clone();
        shuffle(&mut shuffled.containers, &picks);
        shuffle(&mut shuffled.records, &picks[10..]);
        shuffle(&mut shuffled.games, &picks[25..]);
        let a = serde_json::to_string(&plan(&obs, &config)).unwrap();
        let b = serde_json::to_string(&plan(&shuffled, &config)).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn no_record_gets_two_status_changes(obs in observation(), config in config()) {
        let mut seen = HashSet::new();
        for action in plan(&obs, &config).actions {
            if let Action::SetStatus { game_id, .. } = action {
                prop_assert!(seen.insert(game_id), "two set_status for {}", game_id);
            }
        }
    }

    #[test]
    fn terminal_records_never_get_an_action(obs in observation(), config in config()) {
        let terminal: HashSet<GameId> =
            obs.records.iter().filter(|r| r.is_terminal()).map(|r| r.game_id).collect();
        for action in plan(&obs, &config).actions {
            prop_assert!(!terminal.contains(&action.game_id()), "{:?}", action);
        }
    }

    #[test]
    fn games_with_a_record_are_never_adopted(obs in observation(), config in config()) {
        let recorded: HashSet<GameId> = obs.records.iter().map(|r| r.game_id).collect();
        for action in plan(&obs, &config).actions {
            if let Action::Adopt(adoption) = action {
                prop_assert!(!recorded.contains(&adoption.game_id));
            }
        }
    }

    #[test]
    fn a_tripped_guard_leaves_no_removal_on_its_host(obs in observation(), config in config()) {
        let p = plan(&obs, &config);
        let hosts: HashMap<GameId, &str> =
            obs.records.iter().map(|r| (r.game_id, host_of(&obs, r))).collect();
        for finding in &p.findings {
            if let Finding::RemovalGuardTripped { host, .. } = finding {
                prop_assert!(p
                    .actions
                    .iter()
                    .all(|a| !a.is_removal() || hosts[&a.game_id()] != host.as_str()));
            }
        }
    }

    /// §6: a record whose host failed to list, or is not configured, is never removed, and each
    /// such host is reported once.
    #[test]
    fn an_unobserved_host_never_yields_a_removal_of_its_records(
        obs in observation(),
        config in config(),
    ) {
        let p = plan(&obs, &config);
        for action in &p.actions {
            if action.is_removal() {
                let record = obs.records.iter().find(|r| r.game_id == action.game_id()).unwrap();
                prop_assert!(observed(&obs, host_of(&obs, record)), "{:?} of {:?}", action, record);
            }
        }
        let mut reported = HashSet::new();
        for finding in &p.findings {
            if let Finding::HostUnavailable { host, .. } = finding {
                prop_assert!(!observed(&obs, host), "{} listed fine", host);
                prop_assert!(reported.insert(host.clone()), "{} reported twice", host);
            }
        }
        for host in obs.hosts.iter().filter(|h| h.error.is_some()) {
            prop_assert!(reported.contains(&host.name), "{} failed unreported", host.name);
        }
    }

    /// §6: adoptions and rebinds name a container that was listed on the host they write.
    #[test]
    fn adoptions_and_rebinds_name_a_listed_container_of_their_host(
        obs in observation(),
        config in config(),
    ) {
        let listed: HashSet<(&str, &str)> =
            obs.containers.iter().map(|c| (c.host.as_str(), c.id.as_str())).collect();
        for action in plan(&obs, &config).actions {
            let listed_as = match &action {
                Action::Adopt(a) => Some((&a.container_id, &a.docker_host)),
                Action::Rebind(r) => Some((&r.container_id, &r.docker_host)),
                _ => None,
            };
            if let Some((container_id, docker_host)) = listed_as {
                prop_assert!(listed.contains(&(docker_host.as_str(), container_id.as_str())), "{:?}", action);
            }
        }
    }

    #[test]
    fn status_changes_start_from_what_was_observed(obs in observation(), config in config()) {
        let statuses: HashMap<GameId, RuntimeStatus> =
            obs.records.iter().map(|r| (r.game_id, r.status)).collect();
        for action in plan(&obs, &config).actions {
            if let Action::SetStatus { game_id, from, to, .. } = action {
                prop_assert_eq!(Some(&from), statuses.get(&game_id));
                prop_assert_ne!(from, to);
            }
        }
    }
}
