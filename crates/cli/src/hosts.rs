//! Several Docker hosts on the command line (CONTRACT §6): repeated `--docker-host NAME=URL`,
//! `BACKEND_RUNTIME_DOCKER_HOSTS` (`a=unix:///…,b=tcp://…`) or `[[docker.hosts]]` in the file.
//! A single `--docker-host URL` (or `DOCKER_HOST`) keeps meaning one host named `""`.

use galaxy_runtime_model::text::escape_foreign;
use galaxy_runtime_reconciler::check_host_name;

/// The variable of the list of named hosts.
pub const DOCKER_HOSTS_VAR: &str = "BACKEND_RUNTIME_DOCKER_HOSTS";

/// One named Docker host: its name and its daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedHost {
    /// The configured name (`[a-z0-9._-]{1,64}`).
    pub name: String,
    /// The daemon's address, as `DOCKER_HOST` writes it.
    pub url: String,
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
    if url.is_empty() {
        return Err(format!("Docker host {name:?} has no URL"));
    }
    Ok(NamedHost {
        name: name.to_owned(),
        url: url.to_owned(),
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

/// `[[docker.hosts]]` of the configuration file: tables of `name` and `url`.
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
        if let Some(unknown) = table.keys().find(|k| !matches!(k.as_str(), "name" | "url")) {
            return Err(format!(
                "entry {index}: unknown field {:?} (a host has name and url)",
                escape_foreign(unknown, 64)
            ));
        }
        let name = text("name")?;
        check_host_name(&name).map_err(|e| format!("entry {index}: {e}"))?;
        let url = text("url")?;
        if url.is_empty() {
            return Err(format!("entry {index}: Docker host {name:?} has no URL"));
        }
        hosts.push(NamedHost { name, url });
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
}
