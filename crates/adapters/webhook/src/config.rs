use std::fmt;
use std::path::Path;
use std::time::Duration;

use galaxy_runtime_model::Config;
use galaxy_runtime_model::text::{PROBE_FAILURE_CHARS, escape_foreign};
use galaxy_runtime_ports::{PortError, PortResult};
use http::Uri;

/// The key that signs every body (`X-Galaxy-Signature-256`).
///
/// Its bytes never leave this crate except into the HMAC: `Debug` shows only that a secret is
/// set, and no error or log line quotes it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A secret of these bytes. [`PortError::Invalid`] when it is empty: an empty key signs
    /// nothing a lobby could trust, and is more likely an empty file or variable by mistake.
    pub fn new(bytes: impl Into<Vec<u8>>) -> PortResult<Self> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(PortError::invalid("the lobby secret is empty"));
        }
        Ok(Self(bytes))
    }

    /// The secret held in a file, without its trailing newline (`echo secret > file` is how
    /// people write one). [`PortError::Invalid`] naming the file when it cannot be read or
    /// holds nothing.
    pub fn from_file(path: &Path) -> PortResult<Self> {
        let mut bytes = std::fs::read(path).map_err(|e| {
            PortError::invalid(format!(
                "cannot read the lobby secret file {}: {e}",
                path.display()
            ))
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Self::new(bytes).map_err(|_| {
            PortError::invalid(format!("the lobby secret file {} is empty", path.display()))
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Where and how the webhook lobby posts: the URL, the signing secret and the time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The absolute `http://` URL every event is posted to.
    pub url: Uri,
    /// The key of the body's signature; without one, no signature header is sent.
    pub secret: Option<WebhookSecret>,
    /// The longest one delivery may take, connect to last byte of the answer's head.
    pub timeout: Duration,
    /// How long an idle connection is kept for the next delivery.
    pub idle_timeout: Duration,
}

impl WebhookConfig {
    /// The configuration of a lobby at `url`, with the reconciler's `lobby_timeout` and no
    /// secret. [`PortError::Invalid`] naming the URL when it is not an absolute
    /// `http://host[:port][/path]` URL.
    pub fn new(url: &str, config: &Config) -> PortResult<Self> {
        Ok(Self {
            url: parse_url(url)?,
            secret: None,
            timeout: config.lobby_timeout,
            idle_timeout: Duration::from_secs(90),
        })
    }

    /// The same configuration, signing with `secret`.
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secret = Some(secret);
        self
    }
}

/// An absolute `http://` URL with a host, or why not.
///
/// `https://` is refused by name: this adapter speaks plain HTTP/1.1 (the project carries no
/// TLS stack), so a lobby behind TLS is reached through a local proxy.
pub fn parse_url(url: &str) -> PortResult<Uri> {
    let invalid = |why: &str| {
        PortError::invalid(format!(
            "invalid lobby URL {}: {why}",
            escape_foreign(url, PROBE_FAILURE_CHARS)
        ))
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https is not supported; expected http://host[:port]/path (put a TLS proxy on \
                 localhost in front of an https lobby)",
            ));
        }
        _ => return Err(invalid("expected http://host[:port]/path")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if uri.to_string().contains('#') {
        return Err(invalid("a fragment is not allowed"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        for good in [
            "http://127.0.0.1:8080/events",
            "http://lobby/hooks/runtime?v=1",
        ] {
            assert!(parse_url(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("ftp://lobby/x", "expected http://"),
            ("lobby:8080", "expected http://"),
            ("https://lobby/x", "https is not supported"),
            ("http://", "invalid lobby URL"),
            ("", "invalid lobby URL"),
        ] {
            let error = parse_url(bad).unwrap_err();
            assert!(matches!(error, PortError::Invalid { .. }), "{bad}: {error}");
            let text = error.to_string();
            assert!(text.contains(why), "{bad}: {text}");
            assert!(text.contains("invalid lobby URL"), "{bad}: {text}");
        }
    }

    #[test]
    fn the_secret_is_never_shown() {
        let secret = WebhookSecret::new("hunter2-very-secret").unwrap();
        let config = WebhookConfig::new("http://lobby/x", &Config::default())
            .unwrap()
            .with_secret(secret);
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("WebhookSecret(<redacted>)"), "{shown}");
    }

    #[test]
    fn secret_files_lose_their_newline_and_must_hold_something() {
        let dir = std::env::temp_dir().join(format!(
            "galaxy-runtime-webhook-{}",
            galaxy_runtime_model::GameId::new_random()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        assert_eq!(WebhookSecret::from_file(&file).unwrap().bytes(), b"s3cr3t");
        std::fs::write(&file, "\n").unwrap();
        let error = WebhookSecret::from_file(&file).unwrap_err().to_string();
        assert!(
            error.contains("is empty") && error.contains("secret"),
            "{error}"
        );
        let missing = dir.join("missing");
        let error = WebhookSecret::from_file(&missing).unwrap_err().to_string();
        assert!(
            error.contains("cannot read the lobby secret file") && error.contains("missing"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
