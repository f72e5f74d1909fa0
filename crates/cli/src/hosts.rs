//! Several Docker hosts on the command line (CONTRACT §6): repeated `--docker-host NAME=URL`,
//! `BACKEND_RUNTIME_DOCKER_HOSTS` (`a=unix:///…,b=tcp://…`) or `[[docker.hosts]]` in the file.
//! A single `--docker-host URL` (or `DOCKER_HOST`) keeps meaning one host named `""`.
//!
//! A host is a Swarm manager when its URL carries the mark `swarm+`
//! (`eu=swarm+unix:///var/run/docker.sock`), the one way to say so where only a URL is given,
//! or, in the file, with `kind = "swarm"`.

use galaxy_runtime_docker::HostKind;
use galaxy_runtime_model::text::{escape_foreign, is_host_address};
use galaxy_runtime_reconciler::check_host_name;

/// The variable of the list of named hosts.
pub const DOCKER_HOSTS_VAR: &str = "BACKEND_RUNTIME_DOCKER_HOSTS";

/// One named Docker host: its name and its daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedHost {
    /// The configured name (`[a-z0-9._-]{1,64}`).
    pub name: String,
    /// The daemon's address, as `DOCKER_HOST` writes it (without the `swarm+` mark).
    pub url: String,
    /// A daemon, or a Swarm manager.
    pub kind: HostKind,
    /// Where its published ports are reached (`""`: the host of `url`).
    pub address: String,
}

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
        address: String::new(),
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
/// (`daemon`, the default, or `swarm`) and `address` if wanted.
pub fn parse_tables(value: &toml::Value) -> Result<Vec<NamedHost>, String> {
    let toml::Value::Array(entries) = value else {
        return Err("expected [[docker.hosts]] tables with name and url".to_owned());
    };
    let mut hosts = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let toml::Value::Table(table) = entry else {
            return Err(format!("entry {index}: expected a table with name and url"));
        };
        let optional = |key: &str| match table.get(key) {
            Some(toml::Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("entry {index}: {key} must be a string")),
            None => Ok(None),
        };
        let text =
            |key: &str| optional(key)?.ok_or_else(|| format!("entry {index}: {key} is missing"));
        if let Some(unknown) = table
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "url" | "kind" | "address"))
        {
            return Err(format!(
                "entry {index}: unknown field {:?} (a host has name, url, kind and address)",
                escape_foreign(unknown, 64)
            ));
        }
        let name = text("name")?;
        check_host_name(&name).map_err(|e| format!("entry {index}: {e}"))?;
        let url = text("url")?;
        let (marked, url) = HostKind::split_url(&url);
        if url.is_empty() {
            return Err(format!("entry {index}: Docker host {name:?} has no URL"));
        }
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
        hosts.push(NamedHost {
            name,
            url: url.to_owned(),
            kind,
            address,
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
            kind: HostKind::Daemon,
            address: String::new(),
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

        let tables = |text: &str| {
            let file: toml::Table = toml::from_str(text).unwrap();
            parse_tables(&file["docker"]["hosts"])
        };
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
