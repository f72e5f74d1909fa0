//! `galaxy-runtime reconcile --once [--dry-run]`: one pass, its plan and its report.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use galaxy_runtime_ports::LeaderLock;
use galaxy_runtime_reconciler::{PassError, PassReport, ProbeProgress};

use crate::cli::{Format, ReconcileArgs};
use crate::progress::ProgressLine;
use crate::settings::{LogFormat, Settings, one_line};
use crate::{connect, render};

/// Observes and plans, prints the plan, then (unless `--dry-run`) applies exactly that plan and
/// prints what was applied. A failed pass is an error (exit status 1) after its report.
pub async fn run(args: &ReconcileArgs, settings: Settings) -> anyhow::Result<()> {
    let docker = connect::docker(&settings).await?;
    let store = if args.dry_run {
        connect::store(&settings).await?
    } else {
        connect::store_for_writing(&settings, false).await?
    };
    // A dry run writes nothing, so it needs no lock; a real pass respects a `run` that holds it.
    let leader = (!args.dry_run).then(|| Arc::new(store.leader_lock()));
    let progress = ProgressLine::on_terminal(
        args.format == Format::Text && settings.log_format == LogFormat::Text,
    );
    let reconciler = connect::reconciler(
        &settings,
        &docker,
        &store,
        leader.clone(),
        progress.map(|line| line as Arc<dyn ProbeProgress>),
    )?;

    let planned = match reconciler.plan_pass().await {
        Ok(planned) => planned,
        Err(error) => {
            store.close();
            return Err(anyhow!(
                "the pass failed, nothing was written: {}",
                pass_error(&error)
            ));
        }
    };
    let applied = if args.dry_run {
        None
    } else {
        Some(reconciler.apply_planned(&planned).await)
    };
    let (scenario, plan) = (&planned.scenario, &planned.plan);
    if let Some(leader) = &leader
        && let Err(error) = leader.release().await
    {
        log::warn!(
            "releasing the leader lock failed: {}",
            connect::describe(&error)
        );
    }
    store.close();

    let report: Option<&PassReport> = match &applied {
        None => None,
        Some(Ok(report)) => Some(report),
        Some(Err(error)) => Some(error.report()),
    };
    let error = match &applied {
        Some(Err(error)) => Some(pass_error(error)),
        _ => None,
    };
    let mut out = render::stdout();
    match args.format {
        Format::Json => {
            let document = serde_json::json!({
                "now": scenario.now,
                "dry_run": args.dry_run,
                "plan": plan,
                "report": report,
                "error": error,
            });
            serde_json::to_writer_pretty(&mut out, &document).context("cannot write the plan")?;
            writeln!(out).context("cannot write the plan")?;
        }
        Format::Text => {
            render::plan_text(&mut out, plan, Some(scenario.now))
                .context("cannot write the plan")?;
            match report {
                None => writeln!(out, "\nDry run: nothing was written."),
                Some(report) => writeln!(out).and_then(|()| render::report_text(&mut out, report)),
            }
            .context("cannot write the report")?;
        }
    }
    out.flush().context("cannot write the report")?;
    match error {
        Some(error) => Err(anyhow!("the pass failed: {error}")),
        None => Ok(()),
    }
}

/// A pass error and its causes on one line.
fn pass_error(error: &PassError) -> String {
    one_line(&galaxy_runtime_ports::error_chain(error))
}
