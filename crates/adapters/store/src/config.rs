//! How to reach the database: [`StoreConfig`], with a `Debug` and `Display` that never show the
//! password of the URL.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use galaxy_runtime_model::{ConfigError, duration, env};
use serde::{Deserialize, Serialize};

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://galaxy-runtime.db";

/// Where the store keeps its tables and how it talks to the database.
///
/// Every field has a default and can be set from JSON/TOML (by its name) or from the
/// environment as `BACKEND_RUNTIME_DATABASE_<FIELD IN UPPER CASE>` ([`StoreConfig::from_env`]);
/// `url` is `BACKEND_RUNTIME_DATABASE_URL`. Text values go through the model's one mechanism,
/// [`galaxy_runtime_model::env`], then [`StoreConfig::validate`].
///
/// `Debug` and `Display` show the URL with its password replaced by `***`:
///
/// ```
/// use galaxy_runtime_store::StoreConfig;
///
/// let config = StoreConfig::new("postgres://runtime:s3cret@db:5432/galaxy");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert_eq!(config.to_string(), "postgres://runtime:***@db:5432/galaxy");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database` (`postgresql://` too; tokio-postgres
    /// parameters such as `?connect_timeout=5` or `?sslmode=disable` are passed on) or
    /// `sqlite://path` (`sqlite://galaxy-runtime.db` is relative to the working directory,
    /// `sqlite:///var/lib/galaxy/runtime.db` is absolute).
    pub url: String,
    /// The most connections the pool opens (at least 1).
    pub max_connections: usize,
    /// The longest wait for a connection, established or from the pool.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// The longest one store call may take once it has a connection; PostgreSQL also gets it as
    /// `statement_timeout`.
    #[serde(with = "duration")]
    pub query_timeout: Duration,
    /// SQLite only: how long a writer waits for another one's lock before failing.
    #[serde(with = "duration")]
    pub busy_timeout: Duration,
    /// PostgreSQL only: the schema holding the tables (created if missing); `None` uses the
    /// server's `search_path` (normally `public`). A plain identifier: letters, digits and `_`.
    pub schema: Option<String>,
    /// PostgreSQL only: a file holding the password (its first line; a trailing newline is
    /// not part of it), so that the password never stands in a URL, on a command line or in a
    /// process's environment. Refused together with a URL that holds a password.
    pub password_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
            schema: None,
            password_file: None,
        }
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL at the URL.
    Postgres,
    /// A SQLite file at this path.
    Sqlite(PathBuf),
}

impl Backend {
    /// `postgres` or `sqlite`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

impl StoreConfig {
    /// The defaults with another URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The prefix of the store's environment variables.
    pub const ENV_PREFIX: &str = "BACKEND_RUNTIME_DATABASE_";

    /// The environment variable of a field: `url` → `BACKEND_RUNTIME_DATABASE_URL`.
    pub fn env_var(field: &str) -> String {
        env::var_name(Self::ENV_PREFIX, field)
    }

    /// The defaults, overridden by every `BACKEND_RUNTIME_DATABASE_<FIELD>` of the process
    /// environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.apply_env(|name| std::env::var_os(name))?;
        Ok(config)
    }

    /// Overrides fields from an environment given as a lookup function. A bad value is an
    /// error naming the variable and the value (a URL's password redacted), and changes
    /// nothing.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<(), ConfigError> {
        let mut updated = self.clone();
        env::apply_env(&mut updated, |field| Some(Self::env_var(field)), lookup)
            .map_err(redacted)?;
        // `validate` names the field; its variable is what was set.
        updated.validate().map_err(|e| ConfigError {
            name: Self::env_var(&e.name),
            ..e
        })?;
        *self = updated;
        Ok(())
    }

    /// Sets one field from its text form (`"30s"`, `"8"`, a URL; `""` clears `schema`).
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        let mut updated = self.clone();
        env::set_field(&mut updated, field, value, field).map_err(redacted)?;
        updated.validate().map_err(|e| ConfigError {
            name: field.to_owned(),
            ..e
        })?;
        *self = updated;
        Ok(())
    }

    /// Checks the URL, the schema name and the limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |name: &str, value: String, reason: &str| ConfigError {
            name: name.to_owned(),
            value,
            reason: reason.to_owned(),
        };
        self.backend()
            .map_err(|reason| error("url", self.redacted_url(), &reason))?;
        if self.max_connections == 0 {
            return Err(error(
                "max_connections",
                "0".to_owned(),
                "must be at least 1",
            ));
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("query_timeout", self.query_timeout),
        ] {
            if value.is_zero() {
                return Err(error(
                    name,
                    duration::format(value),
                    "must be longer than 0s",
                ));
            }
        }
        if let Some(schema) = &self.schema
            && !is_identifier(schema)
        {
            return Err(error(
                "schema",
                schema.clone(),
                "must be 1 to 63 letters, digits or _, not starting with a digit",
            ));
        }
        if let Some(path) = &self.password_file {
            let shown = path.display().to_string();
            if path.as_os_str().is_empty() {
                return Err(error("password_file", shown, "must not be empty"));
            }
            if !matches!(self.backend(), Ok(Backend::Postgres)) {
                return Err(error(
                    "password_file",
                    shown,
                    "is for PostgreSQL; the URL names another database",
                ));
            }
            if redact_url(&self.url) != self.url {
                return Err(error(
                    "password_file",
                    shown,
                    "the URL holds a password too: give it in one place only",
                ));
            }
        }
        Ok(())
    }

    /// The password of [`password_file`](Self::password_file), `None` without one.
    ///
    /// The file is read on every call (a rotated password is picked up by the next
    /// connection). The error names the file, never its content.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let refuse = |reason: String| ConfigError {
            name: "password_file".to_owned(),
            value: path.display().to_string(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(refuse(
                "is empty: its first line is the password".to_owned(),
            ));
        }
        Ok(Some(password.to_owned()))
    }

    /// Which database the URL names, or why it names none.
    pub fn backend(&self) -> Result<Backend, String> {
        let url = self.url.trim();
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| "expected postgres://… or sqlite://path".to_owned())?;
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split(['?', '#']).next().unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Err(
                        "SQLite needs a file (sqlite://path): every connection of the \
                                pool would see its own in-memory database"
                            .to_owned(),
                    );
                }
                Ok(Backend::Sqlite(PathBuf::from(path)))
            }
            other => Err(format!(
                "unsupported scheme {other:?}: expected postgres://… or sqlite://path"
            )),
        }
    }

    /// The URL with its password replaced by `***`: the only form that may be logged.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("busy_timeout", &self.busy_timeout)
            .field("schema", &self.schema)
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

/// `error` with a URL's password in its value hidden.
fn redacted(error: ConfigError) -> ConfigError {
    ConfigError {
        value: redact_url(&error.value),
        ..error
    }
}

/// A PostgreSQL identifier we can quote without escaping.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// `url` with the password of its user info and any `password=` parameter replaced by `***`.
///
/// The user info is everything between `://` and the *last* `@`: tokio-postgres reads the
/// credentials up to the first `@` and a password may hold `/`, `?`, `#`, `:` and (unescaped)
/// `@`, so stopping at any of those, or at the first `@`, could print part of a password. A URL
/// with an `@` in its query (and no credentials) loses the text up to it too: more hidden than
/// needed, never less. Works on any text: something that is not a URL comes back unchanged,
/// except that a `password=` parameter is still hidden.
pub fn redact_url(url: &str) -> String {
    let redacted = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => {
                let (userinfo, host) = rest.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***{host}"),
                    None => url.to_owned(),
                }
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    let Some((head, query)) = redacted.split_once('?') else {
        return redacted;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_model::env::lookup_from;

    use super::*;

    #[test]
    fn redacts_passwords_everywhere() {
        for (url, want) in [
            ("postgres://u:p@h:5432/db", "postgres://u:***@h:5432/db"),
            (
                "postgres://u:p%40ss@h/db?sslmode=disable",
                "postgres://u:***@h/db?sslmode=disable",
            ),
            ("postgresql://u:a:b@c@h", "postgresql://u:***@h"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=p&x=1",
                "postgres://h/db?user=u&password=***&x=1",
            ),
            ("postgres://h/db?PASSWORD=p", "postgres://h/db?PASSWORD=***"),
            // A password holding what ends an authority elsewhere: all of it is hidden.
            ("postgres://u:a/b@h/db", "postgres://u:***@h/db"),
            ("postgres://u:a?b=c@h/db?x=1", "postgres://u:***@h/db?x=1"),
            ("postgres://u:a#b@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u:a:b@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:%2F%3F%23%40%3A@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:/?#@:&password=x@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            ("sqlite://galaxy-runtime.db", "sqlite://galaxy-runtime.db"),
            ("nonsense", "nonsense"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    /// Every password holding the characters that end a URL's parts: the redacted URL holds no
    /// piece of it (of three characters with a letter or digit), nor do `Debug` and `Display`.
    #[test]
    fn no_piece_of_a_password_survives_redaction() {
        for password in [
            "s3/cr?t#x@y:z",
            "abc/def",
            "abc?def",
            "abc#def",
            "abc@def",
            "abc:def",
            "ab%2Fcd%3F",
            "/??##@@::",
        ] {
            let url =
                format!("postgres://runtime:{password}@db.example:5432/galaxy?sslmode=disable");
            let redacted = redact_url(&url);
            assert!(
                redacted.starts_with("postgres://runtime:***@"),
                "{redacted}"
            );
            let chars: Vec<char> = password.chars().collect();
            for piece in chars.windows(3) {
                let piece: String = piece.iter().collect();
                if piece.chars().any(char::is_alphanumeric) {
                    assert!(!redacted.contains(&piece), "{url} -> {redacted}");
                }
            }
            let config = StoreConfig::new(url.clone());
            for text in [format!("{config:?}"), config.to_string()] {
                assert!(!text.contains(password), "{text}");
            }
        }
    }

    #[test]
    fn the_password_file() {
        let dir = std::env::temp_dir().join(format!(
            "galaxy-runtime-store-config-{}",
            galaxy_runtime_model::GameId::new_random()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("password");
        std::fs::write(&path, "a/b?c#d@e:f\n").unwrap();
        let mut config = StoreConfig::new("postgres://runtime@db/galaxy");
        config
            .apply_env(lookup_from(&[(
                "BACKEND_RUNTIME_DATABASE_PASSWORD_FILE",
                path.to_str().unwrap(),
            )]))
            .unwrap();
        assert_eq!(config.password_file.as_deref(), Some(path.as_path()));
        assert_eq!(config.password().unwrap().as_deref(), Some("a/b?c#d@e:f"));
        assert!(!format!("{config:?}").contains("a/b"));

        std::fs::write(&path, "\n").unwrap();
        let err = config.password().unwrap_err();
        assert!(err.reason.contains("empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        let err = config.password().unwrap_err();
        assert_eq!(err.name, "password_file");
        assert!(err.reason.contains("cannot be read"), "{err}");

        let with = |url: &str| StoreConfig {
            password_file: Some(path.clone()),
            ..StoreConfig::new(url)
        };
        let err = with("postgres://u:p@db/galaxy").validate().unwrap_err();
        assert!(err.reason.contains("one place"), "{err}");
        let err = with("sqlite://x.db").validate().unwrap_err();
        assert!(err.reason.contains("PostgreSQL"), "{err}");
        assert!(with("postgres://u@db/galaxy").validate().is_ok());
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let config = StoreConfig::new("postgres://runtime:hunter2@db/galaxy?password=hunter3");
        for text in [
            format!("{config:?}"),
            config.to_string(),
            format!("{config:#?}"),
        ] {
            assert!(!text.contains("hunter"), "{text}");
        }
    }

    #[test]
    fn backends_from_urls() {
        let backend = |url: &str| StoreConfig::new(url).backend();
        assert_eq!(backend("postgres://h/db"), Ok(Backend::Postgres));
        assert_eq!(backend("postgresql://h/db"), Ok(Backend::Postgres));
        assert_eq!(
            backend("sqlite://galaxy-runtime.db"),
            Ok(Backend::Sqlite(PathBuf::from("galaxy-runtime.db")))
        );
        assert_eq!(
            backend("sqlite:///var/lib/x.db"),
            Ok(Backend::Sqlite(PathBuf::from("/var/lib/x.db")))
        );
        assert_eq!(
            backend("sqlite:x.db"),
            Ok(Backend::Sqlite(PathBuf::from("x.db")))
        );
        assert!(backend("sqlite://:memory:").unwrap_err().contains("file"));
        assert!(backend("sqlite://").is_err());
        assert!(backend("mysql://h/db").unwrap_err().contains("mysql"));
        assert!(backend("galaxy.db").is_err());
        assert_eq!(StoreConfig::default().url, DEFAULT_URL);
        assert!(StoreConfig::default().validate().is_ok());
    }

    #[test]
    fn reads_the_environment() {
        let mut config = StoreConfig::default();
        config
            .apply_env(lookup_from(&[
                ("BACKEND_RUNTIME_DATABASE_URL", "postgres://u:p@h/db"),
                ("BACKEND_RUNTIME_DATABASE_MAX_CONNECTIONS", "3"),
                ("BACKEND_RUNTIME_DATABASE_QUERY_TIMEOUT", "1500ms"),
                ("BACKEND_RUNTIME_DATABASE_SCHEMA", "runtime"),
            ]))
            .unwrap();
        assert_eq!(config.url, "postgres://u:p@h/db");
        assert_eq!(config.max_connections, 3);
        assert_eq!(config.query_timeout, Duration::from_millis(1500));
        assert_eq!(config.schema.as_deref(), Some("runtime"));
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_passwords() {
        let mut config = StoreConfig::default();
        let err = config
            .apply_env(lookup_from(&[(
                "BACKEND_RUNTIME_DATABASE_URL",
                "mysql://u:secret@h/db",
            )]))
            .unwrap_err();
        assert_eq!(err.name, "BACKEND_RUNTIME_DATABASE_URL");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("mysql"), "{err}");

        let err = config
            .apply_env(lookup_from(&[(
                "BACKEND_RUNTIME_DATABASE_MAX_CONNECTIONS",
                "0",
            )]))
            .unwrap_err();
        assert_eq!(err.name, "BACKEND_RUNTIME_DATABASE_MAX_CONNECTIONS");
        let err = config
            .apply_env(lookup_from(&[(
                "BACKEND_RUNTIME_DATABASE_SCHEMA",
                "a; DROP TABLE x",
            )]))
            .unwrap_err();
        assert_eq!(err.value, "a; DROP TABLE x");
        let err = config.set("connect_timeout", "soon").unwrap_err();
        assert_eq!(err.name, "connect_timeout");
        assert_eq!(
            config,
            StoreConfig::default(),
            "a refused value changed the config"
        );
    }

    #[test]
    fn deserializes_with_defaults() {
        let config: StoreConfig =
            serde_json::from_str(r#"{"url": "sqlite://x.db", "query_timeout": "2s"}"#).unwrap();
        assert_eq!(config.query_timeout, Duration::from_secs(2));
        assert_eq!(config.max_connections, 8);
        assert!(serde_json::from_str::<StoreConfig>(r#"{"uri": "x"}"#).is_err());
    }
}
