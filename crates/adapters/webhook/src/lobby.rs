use std::fmt::{self, Write as _};
use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use galaxy_runtime_model::LobbyEvent;
use galaxy_runtime_model::text::{PROBE_FAILURE_CHARS, escape_foreign, escape_foreign_bytes};
use galaxy_runtime_ports::{LobbyPort, PortError, PortResult, error_chain, io_error_in_chain};
use hmac::{KeyInit, Mac};
use http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{WebhookConfig, WebhookSecret};

/// The header carrying the event id, by which the lobby deduplicates.
pub const EVENT_ID_HEADER: &str = "x-galaxy-event-id";
/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`, when a secret is set.
pub const SIGNATURE_HEADER: &str = "x-galaxy-signature-256";

/// The most of an answer's body read before its connection is given up.
const MAX_DRAINED_BYTES: usize = 64 * 1024;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `sha256=<lowercase hex HMAC-SHA256 of body keyed with secret>`: the value of
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &WebhookSecret, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; the expect documents it.
    let mut mac = HmacSha256::new_from_slice(secret.bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(7 + 2 * digest.len());
    text.push_str("sha256=");
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The [`LobbyPort`] of a lobby reached over HTTP: each event is `POST`ed as its JSON
/// (CONTRACT §7) to one URL.
///
/// Headers: `Content-Type: application/json`, `X-Galaxy-Event-Id: <event_id>` and, with a
/// secret, `X-Galaxy-Signature-256: sha256=<hex HMAC-SHA256 of the exact body>`. A 2xx answer
/// accepts the event. Everything else is a failure worth retrying (the relay retries with
/// backoff for as long as it takes), each saying what happened:
///
/// | what happened | error |
/// | --- | --- |
/// | a non-2xx answer | `Unavailable`: `lobby answered HTTP 503 Service Unavailable to POST <url> (event <id>)` |
/// | a 3xx answer | `Unavailable`: `lobby redirect to <location> not followed: HTTP 302 to POST <url> (event <id>)` |
/// | no answer in time | `Timeout`: `timeout after 5s: POST <url> (event <id>)` |
/// | nothing listens | `Unavailable`: `connection refused by lobby <url>` |
/// | another connection failure | `Unavailable`: `cannot reach lobby <url>: <cause>` |
///
/// The secret appears in no message and in no `Debug` output. One instance holds one
/// connection pool; clones share it.
#[derive(Clone)]
pub struct WebhookLobby {
    client: Client<HttpConnector, Full<Bytes>>,
    config: WebhookConfig,
    shown_url: String,
}

impl fmt::Debug for WebhookLobby {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug hides the secret itself; the pool says nothing useful.
        f.debug_struct("WebhookLobby")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WebhookLobby {
    /// A lobby with these settings and an empty connection pool. Building it does no I/O;
    /// deliveries must run inside a tokio runtime.
    pub fn new(config: WebhookConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.idle_timeout)
            .build(connector);
        let shown_url = escape_foreign(&config.url.to_string(), PROBE_FAILURE_CHARS);
        Self {
            client,
            config,
            shown_url,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// The request of one event: its body is exactly the bytes signed.
    fn request(&self, event: &LobbyEvent) -> PortResult<Request<Full<Bytes>>> {
        let body = Bytes::from(serde_json::to_vec(event).map_err(|e| {
            PortError::invalid(format!(
                "cannot write event {} as JSON: {e}",
                event.event_id
            ))
        })?);
        let mut request = Request::post(self.config.url.clone())
            .header(
                USER_AGENT,
                concat!("galaxy-runtime/", env!("CARGO_PKG_VERSION")),
            )
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, event.event_id.to_string());
        if let Some(secret) = &self.config.secret {
            let value = HeaderValue::from_str(&signature(secret, &body))
                .expect("a hex signature is a valid header value");
            request = request.header(SIGNATURE_HEADER, value);
        }
        request
            .body(Full::new(body))
            .map_err(|e| PortError::invalid(format!("cannot build POST {}: {e}", self.shown_url)))
    }

    async fn post(&self, event: &LobbyEvent) -> PortResult<()> {
        let request = self.request(event)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| self.request_error(e))?;
        let status = response.status();
        let error = (!status.is_success())
            .then(|| self.status_error(status, response.headers().get(LOCATION), event));
        drain(response.into_body()).await;
        error.map_or(Ok(()), Err)
    }

    fn status_error(
        &self,
        status: StatusCode,
        location: Option<&HeaderValue>,
        event: &LobbyEvent,
    ) -> PortError {
        let url = &self.shown_url;
        let id = event.event_id;
        let message = if status.is_redirection() {
            let location = location.map_or_else(
                || "(no Location header)".to_owned(),
                |v| escape_foreign_bytes(v.as_bytes(), PROBE_FAILURE_CHARS),
            );
            format!(
                "lobby redirect to {location} not followed: HTTP {} to POST {url} (event {id})",
                status.as_u16()
            )
        } else {
            format!(
                "lobby answered HTTP {} {} to POST {url} (event {id})",
                status.as_u16(),
                status.canonical_reason().unwrap_or("(unknown status)")
            )
        };
        // Any refusal, a 4xx included, is retried: the event must reach the lobby eventually,
        // and a lobby that misroutes or rejects is one an operator will fix.
        PortError::Unavailable {
            message,
            source: None,
        }
    }

    fn request_error(&self, error: hyper_util::client::legacy::Error) -> PortError {
        let url = &self.shown_url;
        let refused =
            io_error_in_chain(&error).is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
        let message = if refused {
            format!("connection refused by lobby {url}")
        } else {
            format!(
                "cannot reach lobby {url}: {}",
                escape_foreign(&error_chain(&error), PROBE_FAILURE_CHARS)
            )
        };
        PortError::unavailable(message, error)
    }
}

/// Reads an answer's body to its end, so that its connection goes back to the pool, but no
/// more than [`MAX_DRAINED_BYTES`]: the body means nothing to us, and a lobby that sends a
/// large one only loses the connection.
async fn drain(mut body: Incoming) {
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            read += data.len();
            if read > MAX_DRAINED_BYTES {
                return;
            }
        }
    }
}

#[async_trait]
impl LobbyPort for WebhookLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        match tokio::time::timeout(self.config.timeout, self.post(event)).await {
            Ok(result) => result,
            Err(_) => Err(PortError::timeout(
                format!("POST {} (event {})", self.shown_url, event.event_id),
                self.config.timeout,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_prefixed_lowercase_hex() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = WebhookSecret::new("Jefe").unwrap();
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
