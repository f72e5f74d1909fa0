//! Several Docker hosts on the command line (CONTRACT §6): repeated `--docker-host NAME=URL`,
//! `BACKEND_RUNTIME_DOCKER_HOSTS` (`a=unix:///…,b=tcp://…`) or `[[docker.hosts]]` in the file.
//! A single `--docker-host URL` (or `DOCKER_HOST`) keeps meaning one host named `""`.
//!
//! A table may also give its host's TLS files (`tls_ca`, `tls_cert`, `tls_key`) and
//! `insecure`; a host without its own takes those of the `[docker]` settings (and of
//! `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`), so that hosts named on the command line or in
//! the environment can share one set of TLS files.
//!
//! A host is a Swarm manager when its URL carries the mark `swarm+`
//! (`eu=swarm+unix:///var/run/docker.sock`), the one way to say so where only a URL is given,
//! or, in the file, with `kind = "swarm"`; a table may also give the `address` at which its
//! host's published ports are reached.

use std::path::PathBuf;

use galaxy_runtime_docker::{DockerConfig, HostKind};
use galaxy_runtime_model::text::{escape_foreign, is_host_address};
use galaxy_runtime_reconciler::check_host_name;

/// The variable of the list of named hosts.
pub const DOCKER_HOSTS_VAR: &str = "BACKEND_RUNTIME_DOCKER_HOSTS";

/// One named Docker host: its name and its daemon's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedHost {
    /// The configured name (`[a-z0-9._-]{1,64}`).
    pub name: String,
    /// The daemon's address, as `DOCKER_HOST` writes it (without the `swarm+` mark).
    pub url: String,
    /// A daemon, or a Swarm manager.
    pub kind: HostKind,
    /// Where its published ports are reached (`""`: the host of `url`).
    pub address: String,
    /// Its own TLS files (CA, client certificate, key); all `None` takes the shared ones.
    pub tls: TlsFiles,
    /// Its own `insecure`; `None` takes the shared one.
    pub insecure: Option<bool>,
}

/// The TLS files of one host, as `[[docker.hosts]]` gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `tls_ca`: the CA that signed the daemon's certificate.
    pub ca: Option<PathBuf>,
    /// `tls_cert`: the client certificate.
    pub cert: Option<PathBuf>,
    /// `tls_key`: the client certificate's key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

impl NamedHost {
    /// The Docker settings of this host: the shared ones (request timeout, `insecure`, TLS
    /// files) with its address, kind and published-port address, and its own TLS files and
    /// `insecure` where it has them. Its own TLS files replace the shared ones as a set; shared
    /// ones are never mixed in.
    pub fn docker_config(&self, shared: &DockerConfig) -> DockerConfig {
        let mut config = DockerConfig {
            host: self.url.clone(),
            host_from_env: false,
            kind: self.kind,
            address: self.address.clone(),
            insecure: self.insecure.unwrap_or(shared.insecure),
            ..shared.clone()
        };
        if !self.tls.is_empty() {
            config.tls_ca = self.tls.ca.clone();
            config.tls_cert = self.tls.cert.clone();
            config.tls_key = self.tls.key.clone();
        }
        config
    }
}

/// The fields of a `[[docker.hosts]]` table.
const TABLE_FIELDS: &str = "name, url, kind, address, tls_ca, tls_cert, tls_key and insecure";

/// What `--docker-host` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostsFlag {
    /// One URL: the one host `""`.
    Single(String),
    /// `NAME=URL` for each of several hosts.
    Named(Vec<NamedHost>),
}

/// `NAME=URL` when the text reads so: a name before the first `=`, with no `:` or `/` in it (a
/// URL's own `=` comes after its scheme).
fn split_named(text: &str) -> Option<(&str, &str)> {
    let (name, url) = text.split_once('=')?;
    (!name.contains([':', '/'])).then_some((name, url))
}

/// A named host from `NAME=URL`, checked.
fn named(text: &str) -> Result<NamedHost, String> {
    let (name, url) = split_named(text).ok_or_else(|| {
        format!(
            "{:?} is not NAME=URL (several hosts each need a name)",
            escape_foreign(text, 120)
        )
    })?;
    check_host_name(name)?;
    let (kind, url) = HostKind::split_url(url);
    if url.is_empty() {
        return Err(format!("Docker host {name:?} has no URL"));
    }
    Ok(NamedHost {
        name: name.to_owned(),
        url: url.to_owned(),
        kind,
        ..NamedHost::default()
    })
}

/// Refuses two hosts with one name.
pub fn check_unique(hosts: &[NamedHost]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    match hosts.iter().find(|h| !seen.insert(h.name.as_str())) {
        Some(twice) => Err(format!("two Docker hosts are named {:?}", twice.name)),
        None => Ok(()),
    }
}

/// The values of repeated `--docker-host` flags: one URL (`unix:///var/run/docker.sock`), or
/// `NAME=URL` each (`a=unix:///a.sock`, `b=tcp://10.0.0.2:2376`).
pub fn parse_flags(values: &[String]) -> Result<Option<HostsFlag>, String> {
    match values {
        [] => Ok(None),
        [one] if split_named(one).is_none() => {
            if one.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(Some(HostsFlag::Single(one.clone())))
            }
        }
        many => {
            let hosts = many
                .iter()
                .map(|v| named(v))
                .collect::<Result<Vec<_>, _>>()?;
            check_unique(&hosts)?;
            Ok(Some(HostsFlag::Named(hosts)))
        }
    }
}

/// `BACKEND_RUNTIME_DOCKER_HOSTS`: `NAME=URL` entries separated by commas.
pub fn parse_list(text: &str) -> Result<Vec<NamedHost>, String> {
    let hosts = text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(named)
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err("lists no host (expected NAME=URL,NAME=URL)".to_owned());
    }
    check_unique(&hosts)?;
    Ok(hosts)
}

/// `[[docker.hosts]]` of the configuration file: tables of `name` and `url`, with `kind`
/// (`daemon`, the default, or `swarm`), `address`, TLS files and `insecure` if wanted.
pub fn parse_tables(value: &toml::Value) -> Result<Vec<NamedHost>, String> {
    let toml::Value::Array(entries) = value else {
        return Err("expected [[docker.hosts]] tables with name and url".to_owned());
    };
    let mut hosts = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let toml::Value::Table(table) = entry else {
            return Err(format!("entry {index}: expected a table with name and url"));
        };
        let text = |key: &str| match table.get(key) {
            Some(toml::Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(format!("entry {index}: {key} must be a string")),
            None => Err(format!("entry {index}: {key} is missing")),
        };
        if let Some(unknown) = table.keys().find(|k| {
            !matches!(
                k.as_str(),
                "name"
                    | "url"
                    | "kind"
                    | "address"
                    | "tls_ca"
                    | "tls_cert"
                    | "tls_key"
                    | "insecure"
            )
        }) {
            return Err(format!(
                "entry {index}: unknown field {:?} (a host has {TABLE_FIELDS})",
                escape_foreign(unknown, 64)
            ));
        }
        let name = text("name")?;
        check_host_name(&name).map_err(|e| format!("entry {index}: {e}"))?;
        let url = text("url")?;
        let (marked, url) = HostKind::split_url(&url);
        let url = url.to_owned();
        if url.is_empty() {
            return Err(format!("entry {index}: Docker host {name:?} has no URL"));
        }
        let optional = |key: &str| match table.get(key) {
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("entry {index}: {key} must be a string")),
            None => Ok(None),
        };
        let kind = match optional("kind")?.as_deref() {
            None => marked,
            Some("daemon") if marked == HostKind::Swarm => {
                return Err(format!(
                    "entry {index}: Docker host {name:?} has kind \"daemon\" but a swarm+ URL"
                ));
            }
            Some("daemon") => HostKind::Daemon,
            Some("swarm") => HostKind::Swarm,
            Some(other) => {
                return Err(format!(
                    "entry {index}: Docker host {name:?}: kind {:?} is neither \"daemon\" nor \
                     \"swarm\"",
                    escape_foreign(other, 64)
                ));
            }
        };
        let address = optional("address")?.unwrap_or_default();
        if !address.is_empty() && !is_host_address(&address) {
            return Err(format!(
                "entry {index}: Docker host {name:?}: address {:?} is not a host name or an IP \
                 address (no scheme, port or path)",
                escape_foreign(&address, 64)
            ));
        }
        let file = |key: &str| match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(path)) if !path.is_empty() => Ok(Some(PathBuf::from(path))),
            Some(_) => Err(format!(
                "entry {index}: Docker host {name:?}: {key} must be the path of a PEM file"
            )),
        };
        let tls = TlsFiles {
            ca: file("tls_ca")?,
            cert: file("tls_cert")?,
            key: file("tls_key")?,
        };
        let reached_over_tls = url.starts_with("tcp://") || url.starts_with("https://");
        if !tls.is_empty() && !reached_over_tls {
            return Err(format!(
                "entry {index}: Docker host {name:?} has TLS files, but {:?} is not a tcp:// or \
                 https:// address (unix:// and http:// are never reached over TLS)",
                escape_foreign(&url, 120)
            ));
        }
        let insecure = match table.get("insecure") {
            None => None,
            Some(toml::Value::Boolean(insecure)) => Some(*insecure),
            Some(_) => {
                return Err(format!(
                    "entry {index}: Docker host {name:?}: insecure must be true or false"
                ));
            }
        };
        hosts.push(NamedHost {
            name,
            url,
            kind,
            address,
            tls,
            insecure,
        });
    }
    check_unique(&hosts)?;
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, url: &str) -> NamedHost {
        NamedHost {
            name: name.to_owned(),
            url: url.to_owned(),
            ..NamedHost::default()
        }
    }

    fn swarm(name: &str, url: &str) -> NamedHost {
        NamedHost {
            kind: HostKind::Swarm,
            ..host(name, url)
        }
    }

    #[test]
    fn one_url_is_the_one_host_and_names_make_several() {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_flags(&[]), Ok(None));
        assert_eq!(
            parse_flags(&values(&["tcp://10.0.0.1:2375"])),
            Ok(Some(HostsFlag::Single("tcp://10.0.0.1:2375".to_owned())))
        );
        assert_eq!(
            parse_flags(&values(&["a=unix:///a.sock", "b=tcp://h:2375/?x=1"])),
            Ok(Some(HostsFlag::Named(vec![
                host("a", "unix:///a.sock"),
                host("b", "tcp://h:2375/?x=1")
            ])))
        );
        // One named host is a list of one.
        assert_eq!(
            parse_flags(&values(&["eu.1=unix:///a.sock"])),
            Ok(Some(HostsFlag::Named(vec![host("eu.1", "unix:///a.sock")])))
        );
    }

    #[test]
    fn bad_hosts_are_refused_naming_them() {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let refused = |v: &[&str]| parse_flags(&values(v)).unwrap_err();
        assert!(
            refused(&["a=unix:///a", "a=unix:///b"]).contains("two Docker hosts are named \"a\"")
        );
        assert!(refused(&["unix:///a", "unix:///b"]).contains("is not NAME=URL"));
        assert!(refused(&["Big=unix:///a"]).contains("a-z 0-9"));
        assert!(refused(&["a="]).contains("has no URL"));
        assert!(refused(&[""]).contains("empty"));
    }

    #[test]
    fn the_list_and_the_tables_read_alike() {
        assert_eq!(
            parse_list("a=unix:///a.sock, b=tcp://h:2375"),
            Ok(vec![host("a", "unix:///a.sock"), host("b", "tcp://h:2375")])
        );
        assert!(parse_list(" , ").unwrap_err().contains("lists no host"));
        let file: toml::Table = toml::from_str(
            "[[docker.hosts]]\nname = \"a\"\nurl = \"unix:///a.sock\"\n\
             [[docker.hosts]]\nname = \"b\"\nurl = \"tcp://h:2375\"\n",
        )
        .unwrap();
        let hosts = &file["docker"]["hosts"];
        assert_eq!(
            parse_tables(hosts),
            Ok(vec![host("a", "unix:///a.sock"), host("b", "tcp://h:2375")])
        );
        let file: toml::Table =
            toml::from_str("[[docker.hosts]]\nname = \"a\"\nurl = \"u://x\"\ntls = 1\n").unwrap();
        assert!(
            parse_tables(&file["docker"]["hosts"])
                .unwrap_err()
                .contains("unknown field \"tls\"")
        );
    }

    fn tables(text: &str) -> Result<Vec<NamedHost>, String> {
        let file: toml::Table = toml::from_str(text).unwrap();
        parse_tables(&file["docker"]["hosts"])
    }

    #[test]
    fn a_table_gives_its_host_tls_files_and_insecure() {
        let hosts = tables(
            "[[docker.hosts]]\nname = \"eu-2\"\nurl = \"tcp://10.0.0.2:2376\"\n\
             tls_ca = \"/etc/galaxy/eu-2/ca.pem\"\ntls_cert = \"/etc/galaxy/eu-2/cert.pem\"\n\
             tls_key = \"/etc/galaxy/eu-2/key.pem\"\n\
             [[docker.hosts]]\nname = \"lab\"\nurl = \"tcp://10.0.0.9:2375\"\ninsecure = true\n",
        )
        .unwrap();
        assert_eq!(
            hosts[0].tls,
            TlsFiles {
                ca: Some("/etc/galaxy/eu-2/ca.pem".into()),
                cert: Some("/etc/galaxy/eu-2/cert.pem".into()),
                key: Some("/etc/galaxy/eu-2/key.pem".into()),
            }
        );
        assert_eq!(hosts[0].insecure, None);
        assert_eq!(hosts[1].insecure, Some(true));
        assert_eq!(hosts[1].tls, TlsFiles::default());
    }

    #[test]
    fn bad_tls_entries_are_refused_naming_the_host() {
        let refused = |extra: &str, url: &str| {
            tables(&format!(
                "[[docker.hosts]]\nname = \"b\"\nurl = \"{url}\"\n{extra}\n"
            ))
            .unwrap_err()
        };
        let e = refused("tls_ca = \"/ca.pem\"", "unix:///b.sock");
        assert!(e.contains("Docker host \"b\" has TLS files"), "{e}");
        assert!(e.contains("unix:///b.sock"), "{e}");
        let e = refused("tls_ca = \"/ca.pem\"", "http://10.0.0.2:2375");
        assert!(e.contains("not a tcp:// or https:// address"), "{e}");
        let e = refused("tls_key = 3", "tcp://h:2376");
        assert!(e.contains("tls_key must be the path of a PEM file"), "{e}");
        let e = refused("tls_cert = \"\"", "tcp://h:2376");
        assert!(e.contains("tls_cert must be the path"), "{e}");
        let e = refused("insecure = \"yes\"", "tcp://h:2375");
        assert!(e.contains("insecure must be true or false"), "{e}");
        let e = refused("tls = true", "tcp://h:2376");
        assert!(
            e.contains("kind, address, tls_ca, tls_cert, tls_key and insecure"),
            "{e}"
        );
    }

    #[test]
    fn a_host_takes_the_shared_settings_unless_it_has_its_own() {
        let shared = DockerConfig {
            insecure: true,
            tls_ca: Some("/shared/ca.pem".into()),
            tls_cert: Some("/shared/cert.pem".into()),
            tls_key: Some("/shared/key.pem".into()),
            ..DockerConfig::with_host("unix:///var/run/docker.sock")
        };
        let plain = host("a", "tcp://10.0.0.2:2376");
        let config = plain.docker_config(&shared);
        assert_eq!(config.host, "tcp://10.0.0.2:2376");
        assert!(config.insecure);
        assert_eq!(config.tls_ca, shared.tls_ca);
        assert!(config.uses_tls());

        let own = NamedHost {
            tls: TlsFiles {
                ca: Some("/b/ca.pem".into()),
                ..TlsFiles::default()
            },
            insecure: Some(false),
            ..host("b", "tcp://10.0.0.3:2376")
        };
        let config = own.docker_config(&shared);
        assert!(!config.insecure);
        assert_eq!(config.tls_ca, Some("/b/ca.pem".into()));
        assert_eq!(
            config.tls_cert, None,
            "own files replace the shared ones as a set"
        );
    }

    #[test]
    fn a_swarm_manager_is_marked_in_its_url_or_given_a_kind() {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_flags(&values(&["a=unix:///a.sock", "s=swarm+tcp://m:2376"])),
            Ok(Some(HostsFlag::Named(vec![
                host("a", "unix:///a.sock"),
                swarm("s", "tcp://m:2376")
            ])))
        );
        assert_eq!(
            parse_list("s=swarm+unix:///m.sock"),
            Ok(vec![swarm("s", "unix:///m.sock")])
        );
        assert!(parse_list("s=swarm+").unwrap_err().contains("has no URL"));

        assert_eq!(
            tables(
                "[[docker.hosts]]\nname = \"s\"\nurl = \"tcp://m:2376\"\nkind = \"swarm\"\n\
                 address = \"m.games.example\"\n\
                 [[docker.hosts]]\nname = \"t\"\nurl = \"swarm+unix:///t.sock\"\n\
                 [[docker.hosts]]\nname = \"d\"\nurl = \"unix:///d.sock\"\nkind = \"daemon\"\n"
            ),
            Ok(vec![
                NamedHost {
                    address: "m.games.example".to_owned(),
                    ..swarm("s", "tcp://m:2376")
                },
                swarm("t", "unix:///t.sock"),
                host("d", "unix:///d.sock"),
            ])
        );
        let config = NamedHost {
            address: "m.games.example".to_owned(),
            ..swarm("s", "tcp://m:2376")
        }
        .docker_config(&DockerConfig::default());
        assert_eq!(config.kind, HostKind::Swarm);
        assert_eq!(config.host, "tcp://m:2376");
        assert_eq!(
            config.published_address().as_deref(),
            Some("m.games.example")
        );

        let refused = |text: &str| tables(text).unwrap_err();
        assert!(
            refused("[[docker.hosts]]\nname = \"s\"\nurl = \"u://x\"\nkind = \"cluster\"\n")
                .contains("kind \"cluster\" is neither")
        );
        assert!(
            refused("[[docker.hosts]]\nname = \"s\"\nurl = \"swarm+u://x\"\nkind = \"daemon\"\n")
                .contains("kind \"daemon\" but a swarm+ URL")
        );
        assert!(
            refused("[[docker.hosts]]\nname = \"s\"\nurl = \"u://x\"\nkind = 1\n")
                .contains("kind must be a string")
        );
        let message =
            refused("[[docker.hosts]]\nname = \"s\"\nurl = \"u://x\"\naddress = \"http://m:80\"\n");
        assert!(
            message.contains("\"s\": address \"http://m:80\" is not a host name"),
            "{message}"
        );
    }
}
