//! End to end on the real daemon: a container of the test image, found through the Docker
//! adapter, addressed with `engine_addressing = container_ip`, probed by the engine HTTP
//! adapter.

mod common;

use std::time::Duration;

use common::{Command, MANAGED_LABEL, Scope};
use galaxy_runtime_engine_http::HttpEngine;
use galaxy_runtime_model::{Config, ContainerState};
use galaxy_runtime_ports::{DockerPort, EnginePort, ErrorKind, LabelFilter};
use serde_json::json;

#[tokio::test]
async fn the_engine_of_a_real_container_answers_on_its_container_ip() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let name = Scope::game_name();
    let id = scope
        .make(
            &name,
            &scope.managed_labels(),
            Command::Engine,
            Some(&network),
            ContainerState::Running,
        )
        .await;

    let mut config = Config::default();
    config
        .set("engine_addressing", "container_ip")
        .expect("valid addressing");
    config.docker_network = network.clone();
    let listed = adapter
        .list_managed(&LabelFilter::single(MANAGED_LABEL, &scope.managed_value))
        .await
        .expect("list");
    let container = listed.iter().find(|c| c.id == id).expect("listed");
    let record_endpoint = format!("http://{name}:{}", config.engine_port);
    let endpoint = container
        .url_on_network(&config.docker_network, config.engine_port)
        .expect("a running container has an address on its network");
    assert!(
        endpoint.starts_with("http://") && endpoint.ends_with(":8080"),
        "{endpoint}"
    );

    let engine = HttpEngine::from_config(&config);
    // httpd needs a moment after the container starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        match engine.status(&endpoint).await {
            Ok(status) => break status,
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("engine not answering yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the engine at {endpoint} never answered: {error}"),
        }
    };
    assert_eq!(status, json!({"turn": 1, "engine": "test"}));

    // Hostname addressing gives the record's endpoint; from the host the container name does
    // not resolve, which is a failed probe saying so, not a hang.
    let by_name = record_endpoint.clone();
    let error = engine
        .status(&by_name)
        .await
        .expect_err("no DNS for containers on the host");
    assert!(
        matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{error}"
    );

    // A stopped engine is a failed probe, within the timeout.
    scope.stop(&id).await.expect("kill");
    let started = tokio::time::Instant::now();
    let error = engine
        .status(&endpoint)
        .await
        .expect_err("the engine is gone");
    assert!(started.elapsed() <= config.probe_timeout + Duration::from_millis(500));
    assert!(
        matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{error}"
    );
    let stopped = adapter.inspect(&id).await.expect("inspect");
    assert_eq!(
        stopped.url_on_network(&network, 8080),
        Err(format!("container has no address on network {network}")),
        "an exited container has no address to probe"
    );
}
