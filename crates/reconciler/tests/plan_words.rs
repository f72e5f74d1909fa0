//! The kind words of the plan are written in several places in `plan.rs`: the serde tags,
//! `kind()`, `rank()` and the `KINDS` lists. These tests tie them together, one value of every
//! variant at a time, so that any of them may be rewritten with the others as the guard.

use std::sync::Arc;

use galaxy_runtime_model::{GameId, RuntimeStatus};
use galaxy_runtime_reconciler::{Action, Adoption, Finding, Plan, Rebinding};

fn game(n: u8) -> GameId {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
        .parse()
        .expect("a valid game id")
}

/// One action of every variant, in declaration order, all for `game_id`.
fn every_action(game_id: GameId) -> Vec<Action> {
    let actions = vec![
        Action::Adopt(Box::new(Adoption {
            game_id,
            container_id: "c1".to_owned(),
            image_ref: "galaxy/engine:1.4".to_owned(),
            engine_version: "1.4.0".to_owned(),
            endpoint: format!("http://galaxy-game-{game_id}:8080"),
            docker_network: "galaxy".to_owned(),
            turn_schedule: "0 */6 * * *".to_owned(),
            status: RuntimeStatus::Running,
            docker_host: "a".to_owned(),
        })),
        Action::Rebind(Box::new(Rebinding {
            game_id,
            container_id: "c2".to_owned(),
            image_ref: "galaxy/engine:1.5".to_owned(),
            engine_version: "1.5.0".to_owned(),
            docker_host: "b".to_owned(),
        })),
        Action::SetStatus {
            game_id,
            from: RuntimeStatus::Running,
            to: RuntimeStatus::EngineUnreachable,
            message: "timeout after 2s".to_owned(),
        },
        Action::SetProbeFailures {
            game_id,
            failures: 3,
        },
        Action::PublishSnapshot {
            game_id,
            state: Arc::new(serde_json::json!({ "turn": 12 })),
        },
    ];
    // A new variant must be added above: this match stops compiling until it is named here.
    for action in &actions {
        match action {
            Action::Adopt(_)
            | Action::Rebind(_)
            | Action::SetStatus { .. }
            | Action::SetProbeFailures { .. }
            | Action::PublishSnapshot { .. } => {}
        }
    }
    actions
}

/// One finding of every variant, in declaration order.
fn every_finding() -> Vec<Finding> {
    let findings = vec![
        Finding::UnrecognizedContainer {
            container_id: "c1".to_owned(),
            name: "someone-else".to_owned(),
        },
        Finding::DuplicateContainer {
            game_id: game(1),
            container_id: "c2".to_owned(),
            kept_container_id: "c1".to_owned(),
            host: "b".to_owned(),
            kept_host: "a".to_owned(),
        },
        Finding::StaleContainer {
            game_id: game(2),
            container_id: "c3".to_owned(),
            status: RuntimeStatus::Removed,
        },
        Finding::AwaitingContainer { game_id: game(3) },
        Finding::OrphanContainer {
            game_id: game(4),
            container_id: "c4".to_owned(),
        },
        Finding::AdoptionUndecided {
            game_id: game(5),
            container_id: "c6".to_owned(),
            error: "unavailable: postgres".to_owned(),
        },
        Finding::InvalidLabel {
            container_id: "c5".to_owned(),
            label: "galaxy.engine_version".to_owned(),
        },
        Finding::RemovalGuardTripped {
            host: "a".to_owned(),
            would_remove: 12,
            live: 20,
        },
        Finding::HostUnavailable {
            host: "b".to_owned(),
            error: "connection refused".to_owned(),
            records: 3,
        },
    ];
    for finding in &findings {
        match finding {
            Finding::UnrecognizedContainer { .. }
            | Finding::DuplicateContainer { .. }
            | Finding::StaleContainer { .. }
            | Finding::AwaitingContainer { .. }
            | Finding::OrphanContainer { .. }
            | Finding::AdoptionUndecided { .. }
            | Finding::InvalidLabel { .. }
            | Finding::RemovalGuardTripped { .. }
            | Finding::HostUnavailable { .. } => {}
        }
    }
    findings
}

/// The `kind` tag of a value's JSON.
fn tag(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_value(value).expect("plans serialise");
    json["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind tag in {json}"))
        .to_owned()
}

#[test]
fn every_action_kind_is_its_serde_tag() {
    for action in every_action(game(1)) {
        assert_eq!(action.kind(), tag(&action), "{action:?}");
    }
}

#[test]
fn every_finding_kind_is_its_serde_tag() {
    for finding in every_finding() {
        assert_eq!(finding.kind(), tag(&finding), "{finding:?}");
    }
}

#[test]
fn action_kinds_list_every_variant_in_the_order_of_r13() {
    let declared: Vec<&str> = every_action(game(1)).iter().map(Action::kind).collect();
    assert_eq!(
        Action::KINDS[..],
        declared[..],
        "KINDS is the declaration order"
    );

    // The plan sorts the actions of one game by kind (R13), whatever order they come in.
    let mut reversed = every_action(game(1));
    reversed.reverse();
    let plan = Plan::new(reversed, Vec::new());
    let sorted: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
    assert_eq!(sorted, Action::KINDS, "R13: adopt, rebind, set_status, …");
}

#[test]
fn finding_kinds_list_every_variant_in_declaration_order() {
    let declared: Vec<&str> = every_finding().iter().map(Finding::kind).collect();
    assert_eq!(Finding::KINDS[..], declared[..]);

    let mut reversed = every_finding();
    reversed.reverse();
    let plan = Plan::new(Vec::new(), reversed);
    let sorted: Vec<&str> = plan.findings.iter().map(Finding::kind).collect();
    assert_eq!(sorted, Finding::KINDS, "findings sort by kind first");
}

/// The summary counts by position in `KINDS`: with `i + 1` values of the `i`-th kind, a rank
/// out of step with `KINDS` shows as a count under the wrong word.
#[test]
fn the_summary_counts_each_kind_under_its_own_word() {
    let mut actions = Vec::new();
    for (i, _) in Action::KINDS.iter().enumerate() {
        for copy in 0..=i {
            let game_id = game(u8::try_from(10 * i + copy).expect("few games"));
            actions.push(every_action(game_id).swap_remove(i));
        }
    }
    let mut findings = Vec::new();
    for (i, _) in Finding::KINDS.iter().enumerate() {
        for _ in 0..=i {
            findings.push(every_finding().swap_remove(i));
        }
    }
    let plan = Plan::new(actions, findings);
    for (i, kind) in Action::KINDS.iter().enumerate() {
        assert_eq!(
            plan.summary.actions.get(*kind),
            Some(&(i as u64 + 1)),
            "{kind}"
        );
    }
    for (i, kind) in Finding::KINDS.iter().enumerate() {
        assert_eq!(
            plan.summary.findings.get(*kind),
            Some(&(i as u64 + 1)),
            "{kind}"
        );
    }
    assert_eq!(plan.summary.actions.len(), Action::KINDS.len());
    assert_eq!(plan.summary.findings.len(), Finding::KINDS.len());
}

/// Every action is one flat JSON object, its fields beside `kind` (CONTRACT §5) — the boxed
/// kinds too, whose fields live in a struct of their own — and reads back as itself.
#[test]
fn every_action_is_one_flat_object_that_reads_back() {
    for action in every_action(game(1)) {
        let json = serde_json::to_value(&action).expect("plans serialise");
        let object = json.as_object().expect("an action is an object");
        assert!(object.contains_key("game_id"), "{json}");
        let nested: Vec<&String> = object
            .iter()
            .filter(|(key, value)| value.is_object() && *key != "state")
            .map(|(key, _)| key)
            .collect();
        assert!(
            nested.is_empty(),
            "fields nested under {nested:?} in {json}"
        );
        let back: Action = serde_json::from_value(json.clone()).expect("an action reads back");
        assert_eq!(back, action, "{json}");
    }
}

/// A field an action kind does not have is refused, naming it, for every kind.
#[test]
fn an_unknown_field_of_any_action_is_refused_naming_it() {
    for action in every_action(game(1)) {
        let mut json = serde_json::to_value(&action).expect("plans serialise");
        json["colour"] = serde_json::json!("blue");
        let error = serde_json::from_value::<Action>(json)
            .expect_err(&format!("{} took an unknown field", action.kind()))
            .to_string();
        assert!(error.contains("colour"), "{}: {error}", action.kind());
    }
}
