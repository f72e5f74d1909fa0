//! `galaxy-runtime run`: the reconcile loop, woken early by Docker events, until Ctrl-C or
//! SIGTERM.

use std::sync::Arc;

use anyhow::anyhow;
use galaxy_runtime_docker::EventsConfig;
use galaxy_runtime_model::duration;
use galaxy_runtime_ports::{Component, LabelFilter, LeaderLock};
use galaxy_runtime_store::Backend;
use log::{info, warn};
use tokio_util::sync::CancellationToken;

use crate::connect;
use crate::settings::Settings;

/// Runs the loop until a signal asks it to stop; the pass in flight always finishes.
pub async fn run(settings: Settings, migrate: bool) -> anyhow::Result<()> {
    // The recorder must be in place before the reconciler is built: building it registers
    // every series at zero, so that dashboards see them from the start.
    let listener = match settings.metrics_addr {
        Some(addr) => Some((crate::http::bind(addr)?, crate::http::install_recorder()?)),
        None => None,
    };
    let docker = connect::docker(&settings).await?;
    let store = connect::store_for_writing(&settings, migrate).await?;
    let leader = Arc::new(store.leader_lock());
    let reconciler =
        connect::reconciler(&settings, &docker, &store, Some(Arc::clone(&leader)), None)?;
    let config = reconciler.config();

    let lock = match store.backend() {
        Backend::Postgres => "PostgreSQL advisory lock".to_owned(),
        Backend::Sqlite(path) => format!("lock file {}.leader", path.display()),
    };
    info!(
        "galaxy-runtime run: Docker at {}, database {}, managed containers {}={}, a pass every \
         {}, leader lock: {lock}, lobby: {}{}. Ctrl-C stops after the pass in flight.",
        connect::describe_daemons(&docker),
        settings.database(),
        config.managed_label,
        config.managed_label_value,
        duration::format(config.reconcile_interval),
        settings.lobby.describe(),
        settings
            .metrics_addr
            .map(|a| format!(
                ", metrics, health and readiness on http://{a}/metrics, /healthz, /readyz"
            ))
            .unwrap_or_default(),
    );

    let cancel = CancellationToken::new();
    let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
    // One watcher per host, each reconnecting on its own; events from any host wake the loop.
    // A host that did not answer at start-up has no watcher: the periodic full passes see it
    // once it answers.
    let watchers: Vec<_> = docker
        .iter()
        .filter_map(|daemon| daemon.adapter.as_ref())
        .map(|host| {
            host.events(
                filter.clone(),
                EventsConfig::from_config(config),
                reconciler.trigger_handle().into_fn(),
            )
            .spawn(cancel.child_token())
        })
        .collect();
    let signals = tokio::spawn(stop_on_signal(cancel.clone()));
    let http = listener.map(|(listener, metrics)| {
        tokio::spawn(crate::http::serve(
            listener,
            metrics,
            reconciler.clone(),
            cancel.child_token(),
        ))
    });

    let looped = reconciler.run(cancel.clone()).await;
    cancel.cancel();
    signals.abort();
    // The watcher returns as soon as its token fires; a join error means it panicked, which
    // its log lines have said already.
    for watcher in watchers {
        let _ = watcher.await;
    }
    if let Some(http) = http {
        let _ = http.await;
    }
    if let Err(error) = leader.release().await {
        warn!(
            "releasing the leader lock failed: {}",
            connect::describe(&error)
        );
    }
    store.close();
    looped.map_err(|e| {
        anyhow!(
            "the reconcile loop could not run: {}",
            connect::describe(&e)
        )
    })?;
    info!("galaxy-runtime run: stopped");
    Ok(())
}

/// Cancels `cancel` on the first Ctrl-C or SIGTERM; exits the process at once on a second one.
async fn stop_on_signal(cancel: CancellationToken) {
    let mut first = true;
    loop {
        let signal = next_signal().await;
        if first {
            info!("{signal}: stopping after the pass in flight (again to exit at once)");
            cancel.cancel();
            first = false;
        } else {
            warn!("{signal} again: exiting without waiting for the pass in flight");
            std::process::exit(130);
        }
    }
}

/// Waits for SIGINT or SIGTERM and names it.
#[cfg(unix)]
pub(crate) async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        _ => {
            // Without signal handlers only Ctrl-C through tokio's portable path is left.
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Waits for Ctrl-C.
#[cfg(not(unix))]
pub(crate) async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
