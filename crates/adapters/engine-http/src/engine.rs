use std::fmt;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use galaxy_runtime_model::Config;
use galaxy_runtime_model::text::{PROBE_FAILURE_CHARS, escape_foreign, escape_foreign_bytes};
use galaxy_runtime_ports::{EnginePort, PortError, PortResult, error_chain};
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, LOCATION, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;

use crate::config::EngineHttpConfig;
use crate::pool::{Pools, Route};
use galaxy_runtime_ports::io_error_in_chain;

/// How many characters of a body that is not JSON are shown in the failure message.
const BODY_EXCERPT_CHARS: usize = 40;

/// The [`EnginePort`] over plain HTTP/1.1: `GET {endpoint}{status_path}`, the JSON body being
/// the engine's snapshot.
///
/// One instance holds one connection pool: create it once and share it (it is cheap to clone,
/// clones share the pool), so the periodic passes reuse the connections of earlier probes. The
/// pool is bounded: at most `max_idle_per_engine` idle connections per engine, and at most
/// `max_idle` in all, whatever the number of engines. The first engines probed take the places
/// (an engine unprobed for `idle_timeout` gives its place up); the others are probed with
/// `Connection: close`, their socket closing with the answer. So the client holds at most
/// `max_idle` sockets between probes, plus one per probe in flight. Every probe, connect to last
/// body byte, is bounded by the configured timeout; redirects are never followed; the body is
/// read up to the configured cap and no further.
///
/// Failures, each a [`PortError`] whose message says which (text that comes from the engine or
/// the endpoint is escaped):
///
/// | what happened | error |
/// | --- | --- |
/// | nothing listens at the endpoint | `Unavailable`: `connection refused by engine endpoint <endpoint>` |
/// | the host cannot be reached or resolved | `Unavailable`: `cannot connect to engine endpoint <endpoint>: <cause>` |
/// | the connection broke mid-request | `Unavailable`: `connection to engine endpoint <endpoint> failed: <cause>` |
/// | the whole request took longer than the timeout | `Timeout`: `timeout after 2s: GET <url>` |
/// | a 5xx answer | `Unavailable`: `HTTP 500 Internal Server Error from GET <url>` |
/// | another non-2xx answer | `Invalid`: `HTTP 404 Not Found from GET <url>` |
/// | a 3xx answer | `Invalid`: `redirect to <location> not followed: HTTP 302 from GET <url>` |
/// | a body over the cap | `Invalid`: `too large: …` |
/// | a body that is not JSON | `Invalid`: `not JSON: …` |
/// | an endpoint that is not `http://host[:port]` | `Invalid`: `invalid engine endpoint …` |
#[derive(Clone)]
pub struct HttpEngine {
    pools: Arc<Pools>,
    config: EngineHttpConfig,
}

impl fmt::Debug for HttpEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpEngine {
    /// An engine client with these settings and an empty connection pool.
    ///
    /// Building it does no I/O; probes must run inside a tokio runtime.
    pub fn new(config: EngineHttpConfig) -> Self {
        Self {
            pools: Arc::new(Pools::new(&config)),
            config,
        }
    }

    /// An engine client with the settings of the reconciler's configuration.
    pub fn from_config(config: &Config) -> Self {
        Self::new(EngineHttpConfig::from_config(config))
    }

    /// The settings in use.
    pub fn config(&self) -> &EngineHttpConfig {
        &self.config
    }

    /// How many engines hold a place in the pool now (at most
    /// [`EngineHttpConfig::pooled_engines`]).
    pub fn pooled_engines(&self) -> usize {
        self.pools.pooled_engines()
    }

    /// The URL probed for `endpoint`: the endpoint without trailing `/`, then the status path.
    ///
    /// [`PortError::Invalid`] when the result is not an absolute `http://` URL with a host.
    pub fn status_url(&self, endpoint: &str) -> PortResult<Uri> {
        let invalid = |why: &str| {
            PortError::invalid(format!(
                "invalid engine endpoint {}: {why}",
                escape_foreign(endpoint, PROBE_FAILURE_CHARS)
            ))
        };
        if endpoint.contains(['?', '#']) {
            return Err(invalid("a query or fragment is not allowed"));
        }
        let text = format!(
            "{}{}",
            endpoint.trim_end_matches('/'),
            self.config.status_path
        );
        let uri: Uri = text
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported, engines are probed over plain http",
                ));
            }
            _ => return Err(invalid("expected http://host:port")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        Ok(uri)
    }

    async fn get_json(
        &self,
        uri: Uri,
        endpoint: &str,
        shown_url: &str,
    ) -> PortResult<serde_json::Value> {
        let authority = uri.authority().map_or("", |a| a.as_str());
        let route = self.pools.route(authority);
        let mut request = Request::get(uri)
            .header(
                USER_AGENT,
                concat!("galaxy-runtime/", env!("CARGO_PKG_VERSION")),
            )
            .header(ACCEPT, "application/json");
        let client = match route {
            Route::Pooled(client) => client,
            Route::Closing(client) => {
                // Tells the engine too, so that it does not keep its end open waiting.
                request = request.header(CONNECTION, "close");
                client
            }
        };
        let request = request
            .body(Empty::new())
            .map_err(|e| PortError::invalid(format!("cannot build GET {shown_url}: {e}")))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| request_error(e, endpoint))?;

        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get(LOCATION).map_or_else(
                || "(no Location header)".to_owned(),
                |v| escape_foreign_bytes(v.as_bytes(), PROBE_FAILURE_CHARS),
            );
            return Err(PortError::invalid(format!(
                "redirect to {location} not followed: HTTP {} from GET {shown_url}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(status_error(status, shown_url));
        }

        let max = self.config.max_body_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(declared) = declared.filter(|&n| n > max) {
            return Err(PortError::invalid(format!(
                "too large: GET {shown_url} announces a body of {declared} bytes, over the limit of {max} bytes"
            )));
        }
        let body = read_capped(response.into_body(), max, endpoint, shown_url).await?;
        serde_json::from_slice(&body).map_err(|e| {
            let excerpt: String = String::from_utf8_lossy(&body)
                .chars()
                .take(BODY_EXCERPT_CHARS)
                .collect();
            PortError::invalid(format!(
                "not JSON: body of GET {shown_url} does not parse ({e}); it starts with \"{}\"",
                escape_foreign(&excerpt, PROBE_FAILURE_CHARS)
            ))
        })
    }
}

/// Reads the body frame by frame and stops at the first byte over `max`, so that an engine
/// cannot make the prober buffer more than the cap.
async fn read_capped(
    mut body: Incoming,
    max: u64,
    endpoint: &str,
    shown_url: &str,
) -> PortResult<Bytes> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            PortError::unavailable(
                format!(
                    "connection to engine endpoint {} failed while reading the body of GET {shown_url}: {}",
                    escape_foreign(endpoint, PROBE_FAILURE_CHARS),
                    escape_foreign(&e.to_string(), PROBE_FAILURE_CHARS)
                ),
                e,
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() as u64 + data.len() as u64 > max {
                return Err(PortError::invalid(format!(
                    "too large: body of GET {shown_url} is over the limit of {max} bytes"
                )));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

fn status_error(status: StatusCode, shown_url: &str) -> PortError {
    let message = format!(
        "HTTP {} {} from GET {shown_url}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("(unknown status)")
    );
    if status.is_server_error() {
        // A 5xx is the engine refusing to serve right now: worth another probe later.
        PortError::Unavailable {
            message,
            source: None,
        }
    } else {
        PortError::invalid(message)
    }
}

fn request_error(error: hyper_util::client::legacy::Error, endpoint: &str) -> PortError {
    let endpoint = escape_foreign(endpoint, PROBE_FAILURE_CHARS);
    let refused =
        io_error_in_chain(&error).is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
    let message = if refused {
        format!("connection refused by engine endpoint {endpoint}")
    } else if error.is_connect() {
        format!(
            "cannot connect to engine endpoint {endpoint}: {}",
            escape_foreign(&error_chain(&error), PROBE_FAILURE_CHARS)
        )
    } else {
        format!(
            "connection to engine endpoint {endpoint} failed: {}",
            escape_foreign(&error_chain(&error), PROBE_FAILURE_CHARS)
        )
    };
    PortError::unavailable(message, error)
}

#[async_trait]
impl EnginePort for HttpEngine {
    async fn status(&self, endpoint: &str) -> PortResult<serde_json::Value> {
        let uri = self.status_url(endpoint)?;
        let shown_url = escape_foreign(&uri.to_string(), PROBE_FAILURE_CHARS);
        match tokio::time::timeout(
            self.config.timeout,
            self.get_json(uri, endpoint, &shown_url),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(PortError::timeout(
                format!("GET {shown_url}"),
                self.config.timeout,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> HttpEngine {
        HttpEngine::new(EngineHttpConfig::default())
    }

    #[test]
    fn status_url_joins_endpoint_and_path() {
        let e = engine();
        assert_eq!(
            e.status_url("http://galaxy-game-x:8080")
                .unwrap()
                .to_string(),
            "http://galaxy-game-x:8080/status"
        );
        assert_eq!(
            e.status_url("http://10.0.0.1:8080/").unwrap().to_string(),
            "http://10.0.0.1:8080/status"
        );
        assert_eq!(
            e.status_url("http://[fd00::1]:8080").unwrap().to_string(),
            "http://[fd00::1]:8080/status"
        );
    }

    #[test]
    fn bad_endpoints_are_invalid_and_escaped() {
        let e = engine();
        for bad in [
            "",
            "galaxy-game-x:8080",
            "https://x:8080",
            "ftp://x",
            "http://x:8080/?a",
            "http://bad host\n:1",
        ] {
            let err = e.status_url(bad).unwrap_err();
            assert!(matches!(err, PortError::Invalid { .. }), "{bad:?}: {err}");
            let text = err.to_string();
            assert!(text.contains("invalid engine endpoint"), "{text}");
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    #[test]
    fn status_errors_by_class() {
        let e = status_error(StatusCode::INTERNAL_SERVER_ERROR, "http://x/status");
        assert_eq!(
            e.to_string(),
            "unavailable: HTTP 500 Internal Server Error from GET http://x/status"
        );
        assert!(e.is_retryable());
        let e = status_error(StatusCode::NOT_FOUND, "http://x/status");
        assert_eq!(
            e.to_string(),
            "invalid: HTTP 404 Not Found from GET http://x/status"
        );
    }
}
