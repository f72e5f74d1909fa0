//! The mock-based unit test shown in docs/embedding.md, kept compiling and passing here.

use std::sync::Arc;

use galaxy_runtime_ports::{
    MockCache, MockDockerPort, MockEnginePort, MockLobbyPort, MockOutboxPort, MockScheduler,
    MockStorePort, PortError,
};
use galaxy_runtime_reconciler::{PassError, Reconciler};

#[tokio::test]
async fn an_unreachable_daemon_fails_the_pass_and_writes_nothing() {
    let mut docker = MockDockerPort::new();
    docker.expect_list_managed().returning(|_| {
        Err(PortError::unavailable(
            "docker",
            std::io::Error::other("refused"),
        ))
    });
    let store = MockStorePort::new(); // any call to it would fail the test
    let reconciler = Reconciler::builder()
        .docker(Arc::new(docker))
        .store(Arc::new(store))
        .engine(Arc::new(MockEnginePort::new()))
        .lobby(Arc::new(MockLobbyPort::new()))
        .outbox(Arc::new(MockOutboxPort::new()))
        .cache(Arc::new(MockCache::new()))
        .scheduler(Arc::new(MockScheduler::new()))
        .build()
        .unwrap();
    let error = reconciler.tick().await.unwrap_err();
    assert!(matches!(error, PassError::Observe { .. }), "{error}");
    assert_eq!(error.report().applied_total(), 0);
}
