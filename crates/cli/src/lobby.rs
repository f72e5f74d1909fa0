//! The lobby of the command line: a webhook when a URL is configured, otherwise a log line
//! per event (and the event counts as delivered).
//!
//! The URL comes from `--lobby-url`, `BACKEND_RUNTIME_LOBBY_URL` or `[lobby] url`; the signing
//! secret from `--lobby-secret-file`, `BACKEND_RUNTIME_LOBBY_SECRET` (the secret itself),
//! `BACKEND_RUNTIME_LOBBY_SECRET_FILE` or `[lobby] secret_file`, never from a plain flag, so
//! that it shows in no process list. Both are checked, and the file read, with the rest of the
//! settings, before anything is connected to.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use clap::Args;
use galaxy_runtime_model::{Config, ConfigError, LobbyEvent, env};
use galaxy_runtime_ports::{LobbyPort, PortError, PortResult};
use galaxy_runtime_webhook::{WebhookConfig, WebhookLobby, WebhookSecret, parse_url};

/// The variable of the lobby's URL.
pub const LOBBY_URL_VAR: &str = "BACKEND_RUNTIME_LOBBY_URL";
/// The variable holding the signing secret itself.
pub const LOBBY_SECRET_VAR: &str = "BACKEND_RUNTIME_LOBBY_SECRET";
/// The variable naming a file that holds the signing secret.
pub const LOBBY_SECRET_FILE_VAR: &str = "BACKEND_RUNTIME_LOBBY_SECRET_FILE";

/// The webhook lobby's flags, for `run`.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Lobby webhook")]
pub struct LobbyFlags {
    /// POST every lobby event to this http:// URL (CONTRACT §7)
    /// [env: BACKEND_RUNTIME_LOBBY_URL; file: [lobby] url; default: events are only logged].
    #[arg(long, value_name = "URL")]
    pub lobby_url: Option<String>,
    /// Sign every body with the secret in this file (X-Galaxy-Signature-256); the secret
    /// itself may instead be in BACKEND_RUNTIME_LOBBY_SECRET, never on the command line
    /// [env: BACKEND_RUNTIME_LOBBY_SECRET_FILE; file: [lobby] secret_file; default: unsigned].
    #[arg(long, value_name = "PATH")]
    pub lobby_secret_file: Option<PathBuf>,
}

/// Where the lobby is, if anywhere, and how its events are signed.
#[derive(Debug, Clone, Default)]
pub struct LobbySettings {
    /// The webhook's URL, checked to be `http://host…`; `None` logs the events instead.
    pub url: Option<String>,
    /// The signing secret (its `Debug` hides it).
    pub secret: Option<WebhookSecret>,
}

fn refused(name: &str, value: &str, error: &PortError) -> ConfigError {
    let reason = match error {
        PortError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

impl LobbySettings {
    /// One field of the file's `[lobby]` section (`url`, `secret_file`); `name` is how
    /// messages call it.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        match field {
            "url" => self.set_url("url", value),
            "secret_file" => self.set_secret_file("secret_file", Path::new(value)),
            other => Err(ConfigError {
                name: other.to_owned(),
                value: value.to_owned(),
                reason: format!("unknown field {other:?} of the [lobby] section"),
            }),
        }
    }

    /// The URL, checked; an empty one means "no webhook".
    pub fn set_url(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            self.url = None;
            return Ok(());
        }
        parse_url(value).map_err(|e| refused(name, value, &e))?;
        self.url = Some(value.to_owned());
        Ok(())
    }

    /// The secret held in `path`, read now.
    pub fn set_secret_file(&mut self, name: &str, path: &Path) -> Result<(), ConfigError> {
        let secret = WebhookSecret::from_file(path)
            .map_err(|e| refused(name, &path.display().to_string(), &e))?;
        self.secret = Some(secret);
        Ok(())
    }

    /// `BACKEND_RUNTIME_LOBBY_URL`, `BACKEND_RUNTIME_LOBBY_SECRET_FILE` and
    /// `BACKEND_RUNTIME_LOBBY_SECRET` (which wins over the file variable).
    pub fn apply_env(
        &mut self,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<(), ConfigError> {
        if let Some(url) = env::var_text(lookup, LOBBY_URL_VAR)? {
            self.set_url(LOBBY_URL_VAR, &url)?;
        }
        if let Some(path) = lookup(LOBBY_SECRET_FILE_VAR).filter(|p| !p.is_empty()) {
            self.set_secret_file(LOBBY_SECRET_FILE_VAR, Path::new(&path))?;
        }
        if let Some(secret) = lookup(LOBBY_SECRET_VAR).filter(|s| !s.is_empty()) {
            // The secret's bytes as they are, UTF-8 or not, and never quoted in a message.
            self.secret = Some(
                WebhookSecret::new(secret.into_encoded_bytes()).map_err(|e| ConfigError {
                    name: LOBBY_SECRET_VAR.to_owned(),
                    value: "(hidden)".to_owned(),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(())
    }

    /// `--lobby-url` and `--lobby-secret-file`.
    pub fn apply_flags(&mut self, flags: &LobbyFlags) -> Result<(), ConfigError> {
        if let Some(url) = &flags.lobby_url {
            self.set_url("lobby_url", url)?;
        }
        if let Some(path) = &flags.lobby_secret_file {
            self.set_secret_file("lobby_secret_file", path)?;
        }
        Ok(())
    }

    /// The lobby these settings describe, with `lobby_timeout` from `config`.
    pub fn port(&self, config: &Config) -> Arc<dyn LobbyPort> {
        let Some(url) = &self.url else {
            return Arc::new(LoggingLobby);
        };
        // The URL was checked when it was set, so this cannot fail; logging stays the answer
        // to a URL that somehow does not parse rather than a panic.
        match WebhookConfig::new(url, config) {
            Ok(webhook) => {
                let webhook = match &self.secret {
                    Some(secret) => webhook.with_secret(secret.clone()),
                    None => webhook,
                };
                Arc::new(WebhookLobby::new(webhook))
            }
            Err(error) => {
                log::error!("lobby webhook not used: {error}");
                Arc::new(LoggingLobby)
            }
        }
    }

    /// How the start-up line describes the lobby.
    pub fn describe(&self) -> String {
        match (&self.url, &self.secret) {
            (None, _) => "events logged (no --lobby-url)".to_owned(),
            (Some(url), Some(_)) => format!("webhook {url}, signed"),
            (Some(url), None) => format!("webhook {url}, unsigned"),
        }
    }
}

/// A [`LobbyPort`] that writes every event as one `info` log line and accepts it, for setups
/// without a lobby service (`games` maintains the projections instead).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingLobby;

#[async_trait]
impl LobbyPort for LoggingLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        let result = &event.result;
        let op = serde_json::to_value(result.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        log::info!(
            "lobby event event_id={} game_id={} op={op} status={} message={:?}",
            event.event_id,
            event.game_id,
            result.status,
            result.message
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_lobby_contract() {
        galaxy_runtime_testkit::lobby::run_all(&LoggingLobby).await;
    }

    #[test]
    fn the_secret_comes_from_the_environment_and_is_never_shown() {
        let mut lobby = LobbySettings::default();
        let lookup = env::lookup_from(&[
            (LOBBY_URL_VAR, "http://127.0.0.1:9000/hook"),
            (LOBBY_SECRET_VAR, "top-secret-value"),
        ]);
        lobby.apply_env(&lookup).unwrap();
        assert_eq!(lobby.url.as_deref(), Some("http://127.0.0.1:9000/hook"));
        assert!(lobby.secret.is_some());
        let shown = format!("{lobby:?} {}", lobby.describe());
        assert!(!shown.contains("top-secret-value"), "{shown}");
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        use crate::cli::{CommonFlags, ReconcilerFlags};
        use crate::settings::{Flags, Settings};

        let dir = std::env::temp_dir().join(format!(
            "galaxy-runtime-lobby-{}",
            galaxy_runtime_model::GameId::new_random()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("galaxy.toml");
        let secret = dir.join("secret");
        std::fs::write(&secret, "from-file\n").unwrap();
        std::fs::write(
            &file,
            format!(
                "[lobby]\nurl = \"http://file/hook\"\nsecret_file = \"{}\"\n",
                secret.display()
            ),
        )
        .unwrap();
        let common = CommonFlags {
            config: Some(file),
            ..CommonFlags::default()
        };
        let load = |lobby: &LobbyFlags, pairs: &[(&str, &str)]| {
            Settings::load(
                Flags {
                    common: &common,
                    reconciler: Some(&ReconcilerFlags::default()),
                    metrics_addr: None,
                    lobby: Some(lobby),
                },
                &env::lookup_from(pairs),
            )
            .unwrap()
            .lobby
        };
        let from_file = load(&LobbyFlags::default(), &[]);
        assert_eq!(from_file.url.as_deref(), Some("http://file/hook"));
        assert_eq!(
            from_file.secret,
            Some(WebhookSecret::new("from-file").unwrap())
        );
        let from_env = load(
            &LobbyFlags::default(),
            &[
                (LOBBY_URL_VAR, "http://env/hook"),
                (LOBBY_SECRET_VAR, "from-env"),
            ],
        );
        assert_eq!(from_env.url.as_deref(), Some("http://env/hook"));
        assert_eq!(
            from_env.secret,
            Some(WebhookSecret::new("from-env").unwrap())
        );
        let flag_secret = dir.join("flag-secret");
        std::fs::write(&flag_secret, "from-flag").unwrap();
        let from_flags = load(
            &LobbyFlags {
                lobby_url: Some("http://flag/hook".to_owned()),
                lobby_secret_file: Some(flag_secret),
            },
            &[(LOBBY_URL_VAR, "http://env/hook")],
        );
        assert_eq!(from_flags.url.as_deref(), Some("http://flag/hook"));
        assert_eq!(
            from_flags.secret,
            Some(WebhookSecret::new("from-flag").unwrap())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_urls_and_files_are_named() {
        let mut lobby = LobbySettings::default();
        let error = lobby.set_url("lobby_url", "ftp://lobby/x").unwrap_err();
        assert_eq!(error.name, "lobby_url");
        assert!(
            error.reason.contains("invalid lobby URL"),
            "{}",
            error.reason
        );
        let error = lobby
            .set_secret_file("lobby_secret_file", Path::new("/nonexistent/secret"))
            .unwrap_err();
        assert!(
            error.reason.contains("/nonexistent/secret"),
            "{}",
            error.reason
        );
        let error = lobby.set("port", "1").unwrap_err();
        assert!(error.reason.contains("[lobby] section"), "{}", error.reason);
    }
}
