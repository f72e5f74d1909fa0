//! The Docker adapter against the real daemon: the conformance suite, states, creation times,
//! addresses, filtering, inspect, and what a missing or dead socket gives.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Command, KitFixture, MANAGED_LABEL, Scope, SocketProxy, TempDir};
use galaxy_runtime_docker::{DockerAdapter, DockerConfig};
use galaxy_runtime_model::{ContainerState, Timestamp};
use galaxy_runtime_ports::{DockerPort, ErrorKind, LabelFilter};

#[tokio::test]
async fn conformance() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    galaxy_runtime_testkit::docker::run_all(&adapter, &KitFixture { scope: &scope }).await;
}

#[tokio::test]
async fn list_reports_states_creation_times_and_addresses() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let mut labels = scope.managed_labels();
    labels.insert("galaxy.engine_version".to_owned(), "1.4.0".to_owned());

    let before = Timestamp::now();
    let mut made = BTreeMap::new();
    for state in [
        ContainerState::Running,
        ContainerState::Exited,
        ContainerState::Created,
        ContainerState::Paused,
    ] {
        let name = Scope::game_name();
        let id = scope
            .make(&name, &labels, Command::Idle, Some(&network), state)
            .await;
        made.insert(id, (name, state));
    }
    let after = Timestamp::now();

    let filter = LabelFilter::single(MANAGED_LABEL, &scope.managed_value);
    let listed = adapter.list_managed(&filter).await.expect("list managed");
    let ids: BTreeSet<_> = listed.iter().map(|c| c.id.clone()).collect();
    assert_eq!(
        ids,
        made.keys().cloned().collect(),
        "exactly the managed containers"
    );

    // Docker lists creation times in whole seconds.
    let earliest =
        Timestamp::from_unix_seconds(before.as_datetime().timestamp()).expect("a valid time");
    for container in &listed {
        let (name, state) = &made[&container.id];
        assert_eq!(
            &container.name,
            &format!("/{name}"),
            "the name as Docker gives it"
        );
        assert_eq!(container.image_ref, common::IMAGE);
        assert_eq!(container.state, *state, "state of {name}");
        assert_eq!(container.labels[MANAGED_LABEL], scope.managed_value);
        assert_eq!(container.labels["galaxy.engine_version"], "1.4.0");
        assert!(
            container.created >= earliest && container.created <= after,
            "created {} outside [{earliest}, {after}]",
            container.created
        );
        let raw = scope.raw_address(&container.id, &network).await;
        match state {
            ContainerState::Running | ContainerState::Paused => {
                let address = container
                    .addresses
                    .get(&network)
                    .unwrap_or_else(|| panic!("{state} container has an address on {network}"));
                assert!(address.parse::<std::net::Ipv4Addr>().is_ok(), "{address}");
                assert_eq!(Some(address), raw.as_ref(), "the address Docker keeps");
            }
            _ => assert!(
                !container.addresses.contains_key(&network),
                "a {state} container has no address: {:?}",
                container.addresses
            ),
        }
    }
}

#[tokio::test]
async fn unmanaged_and_other_owners_containers_never_appear() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let ours = scope
        .make(
            &Scope::game_name(),
            &scope.managed_labels(),
            Command::Idle,
            None,
            ContainerState::Running,
        )
        .await;
    let other_value = format!("{}-other-owner", scope.managed_value);
    let other_labels = BTreeMap::from([(MANAGED_LABEL.to_owned(), other_value.clone())]);
    let other = scope
        .make(
            &Scope::game_name(),
            &other_labels,
            Command::Idle,
            None,
            ContainerState::Running,
        )
        .await;
    // Named like a game's, but without the managed label.
    scope
        .make(
            &Scope::game_name(),
            &BTreeMap::new(),
            Command::Idle,
            None,
            ContainerState::Running,
        )
        .await;

    let listed = adapter
        .list_managed(&LabelFilter::single(MANAGED_LABEL, &scope.managed_value))
        .await
        .expect("list managed");
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [ours.as_str()]
    );

    let listed = adapter
        .list_managed(&LabelFilter::single(MANAGED_LABEL, &other_value))
        .await
        .expect("list the other owner's");
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [other.as_str()]
    );

    // Both labels of a filter must match.
    let mut filter = LabelFilter::single(MANAGED_LABEL, &scope.managed_value);
    filter.labels.insert(
        common::TEST_SCOPE_LABEL.to_owned(),
        "another-scope".to_owned(),
    );
    assert!(
        adapter
            .list_managed(&filter)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn inspect_finds_any_container_and_not_found_is_not_found() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let name = Scope::game_name();
    let id = scope
        .make(
            &name,
            &BTreeMap::new(),
            Command::Idle,
            None,
            ContainerState::Exited,
        )
        .await;

    let inspected = adapter.inspect(&id).await.expect("inspect by id");
    assert_eq!(inspected.id, id);
    assert_eq!(inspected.name, format!("/{name}"));
    assert_eq!(inspected.state, ContainerState::Exited);
    assert_eq!(inspected.image_ref, common::IMAGE);
    let by_name = adapter.inspect(&name).await.expect("inspect by name");
    assert_eq!(by_name.id, id);

    let unknown = "0".repeat(64);
    let error = adapter.inspect(&unknown).await.expect_err("unknown id");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(error.to_string(), format!("not found: container {unknown}"));

    scope.remove(&id).await.expect("remove");
    let error = adapter.inspect(&id).await.expect_err("removed container");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");

    // An id that would change the request path is refused before any request, never NotFound
    // (which would let the executor treat some container as gone).
    let error = adapter
        .inspect("../../images/json")
        .await
        .expect_err("bad id");
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
}

#[tokio::test]
async fn a_missing_socket_is_unavailable_naming_the_path() {
    // Needs no daemon: it checks what happens when there is none.
    let config = DockerConfig::from_lookup(|name| {
        (name == "DOCKER_HOST").then(|| "unix:///nonexistent/galaxy-runtime/docker.sock".into())
    })
    .expect("a valid environment");
    let error = DockerAdapter::connect(config)
        .await
        .expect_err("no socket there");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("/nonexistent/galaxy-runtime/docker.sock"),
        "{text}"
    );
    assert!(text.contains("DOCKER_HOST"), "{text}");
    assert!(text.contains("is the Docker daemon running?"), "{text}");
}

#[tokio::test]
async fn a_dead_socket_is_unavailable_naming_the_path() {
    let dir = TempDir::new();
    let path = dir.0.join("dead.sock");
    // A socket file nobody listens on, as a crashed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    let started = tokio::time::Instant::now();
    let error = common::adapter_at(&path).await.expect_err("nobody answers");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_call_fails_clearly_once_the_daemon_is_gone() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let dir = TempDir::new();
    let path = dir.0.join("docker.sock");
    let proxy = SocketProxy::start(&path, &common::daemon_socket(&adapter));
    let through_proxy = common::adapter_at(&path)
        .await
        .expect("connect through the proxy");
    let filter = LabelFilter::single(MANAGED_LABEL, "nobody-uses-this-value");
    assert!(
        through_proxy
            .list_managed(&filter)
            .await
            .expect("list")
            .is_empty()
    );

    proxy.stop().await;
    for _ in 0..2 {
        let error = through_proxy
            .list_managed(&filter)
            .await
            .expect_err("daemon gone");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        let error = through_proxy.inspect("abc").await.expect_err("daemon gone");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    }
    std::fs::remove_file(&path).expect("remove the socket file");
    let error = through_proxy
        .list_managed(&filter)
        .await
        .expect_err("socket gone");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn the_daemon_api_version_is_negotiated() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    // Docker 20.10 refuses bollard's default (1.53): connecting must have settled on a version
    // the daemon accepts, which the calls above and this ping prove.
    adapter.ping().await.expect("ping");
    let version = adapter.docker().client_version();
    let server = adapter.docker().version().await.expect("version");
    let server_api = server
        .api_version
        .expect("the daemon names its API version");
    let (major, minor) = server_api.split_once('.').expect("major.minor");
    let server_version: (usize, usize) = (major.parse().unwrap(), minor.parse().unwrap());
    let default = bollard::API_DEFAULT_VERSION;
    let expected = server_version.min((default.major_version, default.minor_version));
    assert_eq!(
        (version.major_version, version.minor_version),
        expected,
        "the client speaks the daemon's version, or bollard's own when the daemon is newer"
    );
}

#[tokio::test]
async fn a_plain_daemon_on_another_machine_is_refused_unless_insecure() {
    // Needs no daemon: the refusal comes before any connection. 0.0.0.0 is no loopback
    // address, so it stands for another machine's, while the one connection tried below (said
    // insecure) stays on this machine (Linux sends it to the local host, where nothing listens
    // on port 9) instead of going out to a network the tests do not own.
    let remote = DockerConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..DockerConfig::with_host("tcp://0.0.0.0:9")
    };
    let error = DockerAdapter::connect(remote.clone())
        .await
        .expect_err("a plain remote daemon");
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    let text = error.to_string();
    assert!(text.contains("tcp://0.0.0.0:9"), "{text}");
    assert!(text.contains("insecure"), "{text}");

    // Said insecure, it is tried (and, nothing listening there, unavailable or a timeout).
    let error = DockerAdapter::connect(DockerConfig {
        insecure: true,
        ..remote
    })
    .await
    .expect_err("nothing listens there");
    assert_ne!(error.kind(), ErrorKind::Invalid, "{error}");

    // Loopback needs no such word.
    let local = DockerAdapter::connect(DockerConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..DockerConfig::with_host("tcp://127.0.0.1:9")
    })
    .await
    .expect_err("nothing listens on port 9");
    assert_ne!(local.kind(), ErrorKind::Invalid, "{local}");
}
