//! The webhook lobby against a real hyper server on 127.0.0.1: the lobby conformance suite,
//! the request of CONTRACT §7 (method, headers, exact body, a signature checked here with the
//! hmac crate independently of the adapter), and every kind of refusal.

use std::time::{Duration, Instant};

use galaxy_runtime_model::{Config, GameId, JobResult, LobbyEvent};
use galaxy_runtime_ports::{LobbyPort, PortError, error_chain};
use galaxy_runtime_testkit::lobby as suite;
use galaxy_runtime_webhook::test_server::{Answer, WebhookServer};
use galaxy_runtime_webhook::{WebhookConfig, WebhookLobby, WebhookSecret};
use hmac::{KeyInit, Mac};

const SECRET: &str = "correct horse battery staple";

fn lobby(url: &str, secret: Option<&str>, timeout: Duration) -> WebhookLobby {
    let config = Config {
        lobby_timeout: timeout,
        ..Config::default()
    };
    let mut config = WebhookConfig::new(url, &config).expect("a valid test URL");
    if let Some(secret) = secret {
        config = config.with_secret(WebhookSecret::new(secret).expect("a non-empty secret"));
    }
    WebhookLobby::new(config)
}

fn removal() -> LobbyEvent {
    suite::event(GameId::new_random(), JobResult::container_disappeared())
}

fn decode_hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Whether `header` is `sha256=<hex>` of an HMAC-SHA256 of `body` under `secret`, checked with
/// the hmac crate's constant-time comparison.
fn signature_verifies(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&decode_hex(hex)).is_ok()
}

#[tokio::test]
async fn keeps_the_lobby_contract() {
    let server = WebhookServer::start(Answer::Status(204)).await;
    let lobby = lobby(&server.url, Some(SECRET), Duration::from_secs(5));
    suite::run_all(&lobby).await;
    let received = |game_id: GameId| {
        server
            .accepted_events()
            .into_iter()
            .filter(|e| e.game_id == game_id)
            .map(|e| e.result)
            .collect()
    };
    suite::delivers_in_order(&lobby, &received).await;
}

#[tokio::test]
async fn posts_the_event_json_with_its_id_and_a_signature_that_verifies() {
    let server = WebhookServer::start(Answer::Status(200)).await;
    let lobby = lobby(&server.url, Some(SECRET), Duration::from_secs(5));
    let event = removal();
    lobby
        .on_runtime_job_result(&event)
        .await
        .expect("a 200 accepts the event");

    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/galaxy/events");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.event_id.as_deref(),
        Some(event.event_id.to_string().as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("a JSON body");
    assert_eq!(
        body,
        serde_json::json!({
            "event_id": event.event_id.to_string(),
            "game_id": event.game_id.to_string(),
            "op": "reconcile",
            "status": "removed",
            "message": "container disappeared",
            "at": event.at.to_string(),
        })
    );
    let signature = request.signature.as_deref().expect("a signature header");
    assert!(
        signature_verifies(SECRET, &request.body, signature),
        "{signature}"
    );
    assert!(
        !signature_verifies("another secret", &request.body, signature),
        "the signature must depend on the secret"
    );
    let mut tampered = request.body.to_vec();
    tampered.push(b' ');
    assert!(
        !signature_verifies(SECRET, &tampered, signature),
        "the signature must cover the exact body"
    );
}

#[tokio::test]
async fn without_a_secret_no_signature_is_sent() {
    let server = WebhookServer::start(Answer::Status(202)).await;
    let lobby = lobby(&server.url, None, Duration::from_secs(5));
    lobby.on_runtime_job_result(&removal()).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].signature, None);
    assert!(received[0].event_id.is_some());
}

#[tokio::test]
async fn any_other_answer_is_a_retryable_error_naming_the_status() {
    let server = WebhookServer::start(Answer::Status(500)).await;
    let lobby = lobby(&server.url, Some(SECRET), Duration::from_secs(5));
    for (status, words) in [
        (500, "HTTP 500 Internal Server Error"),
        (503, "HTTP 503 Service Unavailable"),
        (404, "HTTP 404 Not Found"),
        (400, "HTTP 400 Bad Request"),
        (101, "HTTP 101"),
    ] {
        server.set_answer(Answer::Status(status));
        let event = removal();
        let error = lobby.on_runtime_job_result(&event).await.unwrap_err();
        assert!(error.is_retryable(), "{status}: {error}");
        let text = error_chain(&error);
        assert!(text.contains(words), "{status}: {text}");
        assert!(text.contains(&server.url), "{status}: {text}");
        assert!(text.contains(&event.event_id.to_string()), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = WebhookServer::start(Answer::Status(200)).await;
    let server = WebhookServer::start(Answer::RedirectTo(elsewhere.url.clone())).await;
    let lobby = lobby(&server.url, Some(SECRET), Duration::from_secs(5));
    let error = lobby.on_runtime_job_result(&removal()).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("redirect to {} not followed", elsewhere.url)),
        "{text}"
    );
    assert!(text.contains("HTTP 302"), "{text}");
    assert_eq!(server.received().len(), 1);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect's target must not be called"
    );
}

#[tokio::test]
async fn a_lobby_that_hangs_times_out() {
    let server = WebhookServer::start(Answer::Hang).await;
    let timeout = Duration::from_millis(300);
    let lobby = lobby(&server.url, Some(SECRET), timeout);
    let started = Instant::now();
    let error = lobby.on_runtime_job_result(&removal()).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, PortError::Timeout { .. }), "{error}");
    assert!(error.is_retryable());
    assert!(
        error
            .to_string()
            .starts_with(&format!("timeout after 300ms: POST {}", server.url)),
        "{error}"
    );
    assert!(took >= timeout, "gave up after {took:?}");
    assert_eq!(server.received().len(), 1, "the request reached the server");

    // Once the lobby answers again, the same event goes through.
    server.set_answer(Answer::Status(200));
    let event = removal();
    lobby.on_runtime_job_result(&event).await.unwrap();
    assert_eq!(server.accepted_events(), vec![event]);
}

#[tokio::test]
async fn nothing_listening_is_a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let lobby = lobby(&url, Some(SECRET), Duration::from_secs(5));
    let error = lobby.on_runtime_job_result(&removal()).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(
        error.to_string(),
        format!("unavailable: connection refused by lobby {url}")
    );
}

#[tokio::test]
async fn the_secret_is_in_no_debug_output_and_no_error() {
    let server = WebhookServer::start(Answer::Status(401)).await;
    let lobby = lobby(&server.url, Some(SECRET), Duration::from_millis(300));
    let shown = format!("{lobby:?} {lobby:#?} {:?}", lobby.config());
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let error = lobby.on_runtime_job_result(&removal()).await.unwrap_err();
    for text in [error.to_string(), error_chain(&error), format!("{error:?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
    server.set_answer(Answer::Hang);
    let error = lobby.on_runtime_job_result(&removal()).await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
}
