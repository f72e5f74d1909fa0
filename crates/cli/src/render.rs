//! Text rendering for people: plans (shared by `plan` and `reconcile`), pass reports and
//! tables.

use std::io::{self, Write};
use std::time::Duration;

use galaxy_runtime_model::Timestamp;
use galaxy_runtime_reconciler::{Action, Finding, PassReport, Plan};

/// Standard output, buffered: plans and scenarios of large fleets are millions of short lines,
/// and a locked stdout writes each one with its own system call.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// Container-supplied text (names, image references, engine messages) is escaped before it
/// reaches a terminal, so that it cannot move the cursor or forge lines.
pub fn escape(text: &str) -> String {
    galaxy_runtime_model::text::escape_foreign(text, galaxy_runtime_model::text::MESSAGE_CHARS)
}

fn action_line(action: &Action) -> (char, String) {
    match action {
        Action::Adopt(adoption) => (
            '+',
            format!(
                "adopt container {}{} ({}{}) as {}, endpoint {}",
                short(&adoption.container_id),
                on_host(&adoption.docker_host),
                escape(&adoption.image_ref),
                if adoption.engine_version.is_empty() {
                    String::new()
                } else {
                    format!(", engine {}", adoption.engine_version)
                },
                adoption.status,
                escape(&adoption.endpoint)
            ),
        ),
        Action::Rebind(rebinding) => (
            '~',
            format!(
                "rebind to container {}{} ({})",
                short(&rebinding.container_id),
                on_host(&rebinding.docker_host),
                escape(&rebinding.image_ref)
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
            host,
            kept_host,
        } => format!(
            "game {game_id}: container {}{} duplicates kept container {}{}; left alone",
            short(container_id),
            on_host(host),
            short(kept_container_id),
            on_host(kept_host)
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
        Finding::AdoptionUndecided {
            game_id,
            container_id,
            error,
        } => format!(
            "container {} is for game {game_id}, whose projection could not be loaded ({}); \
             left alone this pass",
            short(container_id),
            escape(error)
        ),
        Finding::InvalidLabel {
            container_id,
            label,
        } => format!(
            "container {} has an unacceptable {} label; engine version taken as empty",
            short(container_id),
            escape(label)
        ),
        Finding::RemovalGuardTripped {
            host,
            would_remove,
            live,
        } => format!(
            "removal guard tripped{}: {would_remove} of {live} live records would be removed; \
             no removal planned",
            on_host(host)
        ),
        Finding::HostUnavailable {
            host,
            error,
            records,
        } => format!(
            "host \"{}\" is unavailable ({}); its {records} unmatched records are unobserved, \
             not removed",
            escape(host),
            escape(error)
        ),
    }
}

/// ` on host "a"`, or nothing for the host `""` of a fleet of one host.
fn on_host(host: &str) -> String {
    if host.is_empty() {
        String::new()
    } else {
        format!(" on host \"{}\"", escape(host))
    }
}

/// Docker ids are 64 hex digits; 12 are enough for people, as `docker ps` shows.
pub fn short(container_id: &str) -> String {
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

/// `kind` counts of a report map that are not zero, as `1 adopt, 2 set_status`.
fn nonzero(counts: &std::collections::BTreeMap<String, u64>, order: &[&str]) -> String {
    let parts: Vec<String> = order
        .iter()
        .filter_map(|kind| match counts.get(*kind) {
            Some(&n) if n > 0 => Some(format!("{n} {kind}")),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Writes what a pass did: what was applied, what was skipped or failed, what it observed.
pub fn report_text(out: &mut impl Write, report: &PassReport) -> io::Result<()> {
    if report.skipped_not_leader {
        return writeln!(
            out,
            "Skipped: another replica holds the leader lock; nothing was applied."
        );
    }
    let planned: u64 = report.actions.values().sum();
    writeln!(
        out,
        "Applied {} of {planned} planned action{} ({}); {} conflict{}, {} removal{} skipped, {} \
         failed, {} lobby event{} recorded{}.",
        report.applied_total(),
        if planned == 1 { "" } else { "s" },
        nonzero(&report.applied, &Action::KINDS),
        report.conflicts,
        if report.conflicts == 1 { "" } else { "s" },
        report.skipped_removals,
        if report.skipped_removals == 1 {
            ""
        } else {
            "s"
        },
        report.failures,
        report.events,
        if report.events == 1 { "" } else { "s" },
        if report.not_applied > 0 {
            format!(", {} not applied (leadership lost)", report.not_applied)
        } else {
            String::new()
        },
    )?;
    writeln!(
        out,
        "Observed {} container{}, {} record{}, {} probe{} in {}; applied in {}.",
        report.containers,
        if report.containers == 1 { "" } else { "s" },
        report.records,
        if report.records == 1 { "" } else { "s" },
        report.probes,
        if report.probes == 1 { "" } else { "s" },
        seconds(report.durations.observe),
        seconds(report.durations.apply),
    )
}

fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// An age for people: `42s`, `5m`, `3h`, `2d`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Terminal colours of table cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Healthy.
    Green,
    /// In between.
    Cyan,
    /// Needs a look.
    Yellow,
    /// Broken.
    Red,
    /// Over.
    Dim,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Self::Green => "\x1b[32m",
            Self::Cyan => "\x1b[36m",
            Self::Yellow => "\x1b[33m",
            Self::Red => "\x1b[31m",
            Self::Dim => "\x1b[2m",
        }
    }
}

/// One table cell: text (already escaped) and an optional colour.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    colour: Option<Colour>,
}

impl Cell {
    /// A cell without colour.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            colour: None,
        }
    }

    /// A cell coloured on a terminal.
    pub fn coloured(text: impl Into<String>, colour: Colour) -> Self {
        Self {
            text: text.into(),
            colour: Some(colour),
        }
    }
}

/// Writes a table with left-aligned columns two spaces apart; colours only when `colour`.
pub fn table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<Cell>],
    colour: bool,
) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
    }
    let line = |cells: Vec<(String, Option<Colour>)>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, paint)) in cells.into_iter().enumerate() {
            // Padding is computed on the bare text, so colour codes do not shift columns.
            let pad = if i == last {
                0
            } else {
                widths[i].saturating_sub(cell.chars().count()) + 2
            };
            match paint {
                Some(c) if colour => text.push_str(&format!("{}{cell}\x1b[0m", c.code())),
                _ => text.push_str(&cell),
            }
            text.push_str(&" ".repeat(pad));
        }
        text
    };
    let header = line(headers.iter().map(|h| (h.to_string(), None)).collect());
    if colour {
        writeln!(out, "\x1b[1m{header}\x1b[0m")?;
    } else {
        writeln!(out, "{header}")?;
    }
    for row in rows {
        writeln!(
            out,
            "{}",
            line(row.iter().map(|c| (c.text.clone(), c.colour)).collect())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_control_characters() {
        assert_eq!(escape("plain name-1.2"), "plain name-1.2");
        assert_eq!(escape("evil\n\u{1b}[2Jname"), "evil\\u{a}\\u{1b}[2Jname");
    }

    #[test]
    fn tables_align_and_colour_only_when_asked() {
        let rows = vec![
            vec![Cell::plain("a"), Cell::coloured("running", Colour::Green)],
            vec![Cell::plain("longer"), Cell::plain("x")],
        ];
        let mut plain = Vec::new();
        table(&mut plain, &["K", "STATUS"], &rows, false).unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "K       STATUS\na       running\nlonger  x\n"
        );
        let mut painted = Vec::new();
        table(&mut painted, &["K", "STATUS"], &rows, true).unwrap();
        let painted = String::from_utf8(painted).unwrap();
        assert!(painted.contains("\x1b[32mrunning\x1b[0m"), "{painted:?}");
    }

    #[test]
    fn ages() {
        assert_eq!(age(Duration::from_secs(42)), "42s");
        assert_eq!(age(Duration::from_secs(300)), "5m");
        assert_eq!(age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(age(Duration::from_secs(5 * 86_400)), "5d");
    }

    #[test]
    fn reports_say_what_was_applied() {
        let mut report = PassReport::default();
        report.actions.insert("adopt".into(), 1);
        report.applied.insert("adopt".into(), 1);
        report.containers = 2;
        report.records = 1;
        report.probes = 1;
        let mut out = Vec::new();
        report_text(&mut out, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("Applied 1 of 1 planned action (1 adopt); 0 conflicts"),
            "{text}"
        );
        assert!(
            text.contains("Observed 2 containers, 1 record, 1 probe in "),
            "{text}"
        );
    }

    #[test]
    fn short_ids() {
        assert_eq!(short(&"ab".repeat(32)), "abababababab");
        assert_eq!(short("c1"), "c1");
    }
}
