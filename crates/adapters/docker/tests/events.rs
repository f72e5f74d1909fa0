//! The container events watcher against the real daemon: kills and removals wake the
//! reconciler within a second, bursts are debounced into one wake-up, other containers'
//! events are ignored, and the watcher survives the daemon going away.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Command, MANAGED_LABEL, Scope, SocketProxy, TempDir};
use galaxy_runtime_docker::{ContainerEvents, DockerAdapter, EventsConfig};
use galaxy_runtime_model::ContainerState;
use galaxy_runtime_ports::{Component, LabelFilter};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Counts wake-ups and lets a test wait for the next one.
#[derive(Default)]
struct Wakes {
    count: AtomicUsize,
    notify: Notify,
}

impl Wakes {
    fn callback(self: &Arc<Self>) -> impl Fn() + Send + Sync + 'static {
        let wakes = Arc::clone(self);
        move || {
            wakes.count.fetch_add(1, Ordering::SeqCst);
            wakes.notify.notify_waiters();
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until the count exceeds `seen`; how long that took, or `None` after `limit`.
    async fn after(&self, seen: usize, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let deadline = start + limit;
        loop {
            let notified = self.notify.notified();
            if self.count() > seen {
                return Some(start.elapsed());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return (self.count() > seen).then(|| start.elapsed());
            }
        }
    }
}

/// A watcher of the scope's managed containers, running until the returned token is cancelled.
fn watch(
    adapter: &DockerAdapter,
    scope: &Scope,
    config: EventsConfig,
) -> (Arc<Wakes>, CancellationToken, tokio::task::JoinHandle<()>) {
    let wakes = Arc::new(Wakes::default());
    let filter = LabelFilter::single(MANAGED_LABEL, &scope.managed_value);
    let events = ContainerEvents::new(adapter, filter, config, wakes.callback());
    let cancel = CancellationToken::new();
    let handle = events.spawn(cancel.clone());
    (wakes, cancel, handle)
}

/// Makes managed containers until one wakes the watcher: proof that it is subscribed (there is
/// no other way to know when Docker starts sending). Returns the last container's id.
async fn until_subscribed(scope: &Scope, wakes: &Wakes) -> String {
    for _ in 0..10 {
        let seen = wakes.count();
        let id = scope
            .make(
                &Scope::game_name(),
                &scope.managed_labels(),
                Command::Idle,
                None,
                ContainerState::Running,
            )
            .await;
        if wakes.after(seen, Duration::from_secs(3)).await.is_some() {
            // Let the window of this burst close before the test measures its own.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return id;
        }
    }
    panic!("the events watcher never woke for a managed container's create and start");
}

fn default_debounce() -> EventsConfig {
    EventsConfig::default()
}

#[tokio::test]
async fn kill_and_removal_wake_within_a_second() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    assert_eq!(default_debounce().debounce, Duration::from_millis(500));
    let (wakes, cancel, handle) = watch(&adapter, &scope, default_debounce());
    let id = until_subscribed(&scope, &wakes).await;

    let seen = wakes.count();
    scope.stop(&id).await.expect("kill");
    let took = wakes.after(seen, Duration::from_secs(1)).await;
    assert!(
        took.is_some(),
        "no wake-up within a second of the kill (die event)"
    );

    let seen = wakes.count();
    scope.remove(&id).await.expect("remove");
    let took = wakes.after(seen, Duration::from_secs(1)).await;
    assert!(
        took.is_some(),
        "no wake-up within a second of the removal (destroy event)"
    );

    // `docker rm -f` of a running container: die and destroy, one wake-up.
    let id = scope
        .make(
            &Scope::game_name(),
            &scope.managed_labels(),
            Command::Idle,
            None,
            ContainerState::Running,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let seen = wakes.count();
    scope.remove(&id).await.expect("remove -f");
    let took = wakes.after(seen, Duration::from_secs(1)).await;
    assert!(took.is_some(), "no wake-up within a second of rm -f");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        wakes.count(),
        seen + 1,
        "die and destroy of one rm -f wake once"
    );

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), handle)
        .await
        .expect("the watcher stops when cancelled")
        .expect("the watcher task ends cleanly");
}

#[tokio::test]
async fn a_burst_of_events_wakes_once_at_the_end_of_the_window() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let debounce = Duration::from_secs(2);
    let config = EventsConfig {
        debounce,
        ..EventsConfig::default()
    };
    let (wakes, cancel, _handle) = watch(&adapter, &scope, config);
    let first = until_subscribed(&scope, &wakes).await;
    // Let the window opened by the subscription check close.
    tokio::time::sleep(debounce).await;

    let seen = wakes.count();
    let start = Instant::now();
    let mut burst = vec![first];
    for _ in 0..3 {
        let name = Scope::game_name();
        burst.push(
            scope
                .make(
                    &name,
                    &scope.managed_labels(),
                    Command::Idle,
                    None,
                    ContainerState::Created,
                )
                .await,
        );
    }
    let burst_took = start.elapsed();
    assert!(
        burst_took < debounce,
        "the burst must fit in one window, took {burst_took:?}"
    );
    let took = wakes
        .after(seen, debounce * 2)
        .await
        .expect("the burst wakes the reconciler");
    assert!(
        took + Duration::from_millis(100) >= debounce - burst_took,
        "the wake-up comes when the window closes, not at the first event ({took:?})"
    );
    tokio::time::sleep(debounce + Duration::from_millis(500)).await;
    assert_eq!(wakes.count(), seen + 1, "one wake-up for the whole burst");
    cancel.cancel();
}

#[tokio::test]
async fn other_containers_events_do_not_wake() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let config = EventsConfig {
        debounce: Duration::from_millis(200),
        ..EventsConfig::default()
    };
    let (wakes, cancel, _handle) = watch(&adapter, &scope, config);
    until_subscribed(&scope, &wakes).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let seen = wakes.count();
    let other = BTreeMap::from([(
        MANAGED_LABEL.to_owned(),
        format!("{}-other", scope.managed_value),
    )]);
    for labels in [other, BTreeMap::new()] {
        let id = scope
            .make(
                &Scope::game_name(),
                &labels,
                Command::Idle,
                None,
                ContainerState::Running,
            )
            .await;
        scope.stop(&id).await.expect("kill");
        scope.remove(&id).await.expect("remove");
    }
    assert_eq!(
        wakes.after(seen, Duration::from_millis(1000)).await,
        None,
        "events of unmanaged and other owners' containers must not wake the reconciler"
    );
    cancel.cancel();
}

#[tokio::test]
async fn the_watcher_reconnects_when_the_daemon_comes_back() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let dir = TempDir::new();
    let path = dir.0.join("docker.sock");
    let daemon = common::daemon_socket(&adapter);
    let proxy = SocketProxy::start(&path, &daemon);
    let through_proxy = common::adapter_at(&path)
        .await
        .expect("connect through the proxy");
    let config = EventsConfig {
        debounce: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..EventsConfig::default()
    };
    let (wakes, cancel, handle) = watch(&through_proxy, &scope, config);
    until_subscribed(&scope, &wakes).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The daemon goes away (for this watcher), and stays away a while.
    proxy.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = wakes.count();

    // It comes back: the watcher subscribes again and wakes the reconciler once for what it
    // may have missed.
    let proxy = SocketProxy::start(&path, &daemon);
    let took = wakes.after(seen, Duration::from_secs(3)).await;
    assert!(took.is_some(), "no wake-up after the daemon came back");

    // And events flow again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    until_subscribed(&scope, &wakes).await;

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), handle)
        .await
        .expect("the watcher stops when cancelled")
        .expect("the watcher task ends cleanly");
    proxy.stop().await;
}

#[tokio::test]
async fn cancellation_stops_a_watcher_that_cannot_connect() {
    // The watcher is retrying against a dead socket when it is cancelled.
    let Some(adapter) = common::docker().await else {
        return;
    };
    let dir = TempDir::new();
    let path = dir.0.join("docker.sock");
    let proxy = SocketProxy::start(&path, &common::daemon_socket(&adapter));
    let through_proxy = common::adapter_at(&path)
        .await
        .expect("connect through the proxy");
    proxy.stop().await;

    let events = Arc::new(ContainerEvents::new(
        &through_proxy,
        LabelFilter::single(MANAGED_LABEL, "unused"),
        EventsConfig::default(),
        || {},
    ));
    let cancel = CancellationToken::new();
    let running = {
        let events = Arc::clone(&events);
        let cancel = cancel.clone();
        tokio::spawn(async move { Component::run(&*events, cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), events.shutdown())
        .await
        .expect("shutdown returns once the cancelled run has finished")
        .expect("shutdown");
    let ran = tokio::time::timeout(Duration::from_millis(100), running)
        .await
        .expect("run has returned")
        .expect("task");
    assert!(ran.is_ok());
}
