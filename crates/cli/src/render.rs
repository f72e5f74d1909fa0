//! Text rendering of plans for people.

use std::io::{self, Write};

use galaxy_runtime_model::Timestamp;
use galaxy_runtime_reconciler::{Action, Finding, Plan};

/// Container-supplied text (names, image references, engine messages) is escaped before it
/// reaches a terminal, so that it cannot move the cursor or forge lines.
pub fn escape(text: &str) -> String {
    text.chars()
        .flat_map(char::escape_default)
        .collect::<String>()
        .replace("\\'", "'")
        .replace("\\\"", "\"")
}

fn action_line(action: &Action) -> (char, String) {
    match action {
        Action::Adopt {
            container_id,
            image_ref,
            engine_version,
            status,
            endpoint,
            ..
        } => (
            '+',
            format!(
                "adopt container {} ({}{}) as {status}, endpoint {}",
                short(container_id),
                escape(image_ref),
                if engine_version.is_empty() {
                    String::new()
                } else {
                    format!(", engine {engine_version}")
                },
                escape(endpoint)
            ),
        ),
        Action::Rebind {
            container_id,
            image_ref,
            ..
        } => (
            '~',
            format!(
                "rebind to container {} ({})",
                short(container_id),
                escape(image_ref)
            ),
        ),
        Action::SetStatus {
            from, to, message, ..
        } => (
            if to.is_terminal() { '-' } else { '~' },
            format!("status {from} -> {to}: {}", escape(message)),
        ),
        Action::SetProbeFailures { failures, .. } => ('~', format!("probe failures -> {failures}")),
        Action::PublishSnapshot { state, .. } => {
            let json = state.to_string();
            let shown: String = json.chars().take(60).collect();
            let ellipsis = if shown.len() < json.len() { "…" } else { "" };
            (
                '=',
                format!("publish snapshot {}{ellipsis}", escape(&shown)),
            )
        }
    }
}

fn finding_line(finding: &Finding) -> String {
    match finding {
        Finding::UnrecognizedContainer { container_id, name } => format!(
            "container {} named \"{}\" does not follow <prefix><game id>; matched by id only",
            short(container_id),
            escape(name)
        ),
        Finding::DuplicateContainer {
            game_id,
            container_id,
            kept_container_id,
        } => format!(
            "game {game_id}: container {} duplicates kept container {}; left alone",
            short(container_id),
            short(kept_container_id)
        ),
        Finding::StaleContainer {
            game_id,
            container_id,
            status,
        } => format!(
            "game {game_id} is {status} but container {} still exists",
            short(container_id)
        ),
        Finding::AwaitingContainer { game_id } => {
            format!("game {game_id} is starting; its container is not there yet (start grace)")
        }
        Finding::OrphanContainer {
            game_id,
            container_id,
        } => format!(
            "container {} is for game {game_id}, which the store does not know; left alone",
            short(container_id)
        ),
        Finding::InvalidLabel {
            container_id,
            label,
        } => format!(
            "container {} has an unacceptable {} label; engine version taken as empty",
            short(container_id),
            escape(label)
        ),
        Finding::RemovalGuardTripped { would_remove, live } => format!(
            "removal guard tripped: {would_remove} of {live} live records would be removed; no removal planned"
        ),
    }
}

/// Docker ids are 64 hex digits; 12 are enough for people, as `docker ps` shows.
fn short(container_id: &str) -> String {
    let is_docker_id =
        container_id.len() == 64 && container_id.bytes().all(|b| b.is_ascii_hexdigit());
    if is_docker_id {
        container_id[..12].to_owned()
    } else {
        escape(container_id)
    }
}

/// Writes a plan as text: actions grouped by kind, one line each, findings, then counts.
pub fn plan_text(out: &mut impl Write, plan: &Plan, now: Option<Timestamp>) -> io::Result<()> {
    if let Some(now) = now {
        writeln!(out, "Plan for the observation of {now}")?;
    }
    if plan.actions.is_empty() && plan.findings.is_empty() {
        writeln!(out, "\nNo changes. Containers and records agree.")?;
    }
    for kind in Action::KINDS {
        let group: Vec<&Action> = plan.actions.iter().filter(|a| a.kind() == kind).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(out, "\n{kind} ({}):", group.len())?;
        for action in group {
            let (sign, text) = action_line(action);
            writeln!(out, "  {sign} {}  {text}", action.game_id())?;
        }
    }
    if !plan.findings.is_empty() {
        writeln!(out, "\nfindings ({}):", plan.findings.len())?;
        for finding in &plan.findings {
            writeln!(out, "  ! {:<22}  {}", finding.kind(), finding_line(finding))?;
        }
    }
    let counts: Vec<String> = Action::KINDS
        .iter()
        .filter_map(|kind| match plan.summary.actions.get(*kind) {
            Some(&n) if n > 0 => Some(format!("{n} {kind}")),
            _ => None,
        })
        .collect();
    writeln!(
        out,
        "\nPlan: {} action{} ({}), {} finding{}.",
        plan.actions.len(),
        if plan.actions.len() == 1 { "" } else { "s" },
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        },
        plan.findings.len(),
        if plan.findings.len() == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_control_characters() {
        assert_eq!(escape("plain name-1.2"), "plain name-1.2");
        assert_eq!(escape("evil\n\u{1b}[2Jname"), "evil\\n\\u{1b}[2Jname");
    }

    #[test]
    fn short_ids() {
        assert_eq!(short(&"ab".repeat(32)), "abababababab");
        assert_eq!(short("c1"), "c1");
    }
}
