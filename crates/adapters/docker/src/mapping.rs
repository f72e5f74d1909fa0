//! Docker's descriptions of containers turned into the model's [`ContainerSummary`].
//!
//! Docker may describe a container incompletely (a field missing, a state word this code does
//! not know). Such a container is still reported — dropping it would make the reconciler
//! believe it is gone — with a stated fallback for each missing part, and the caller logs a
//! warning naming the container and the parts. Only a container without an id cannot be
//! reported, since nothing could be done with it: that is an `Invalid` error.
//!
//! | missing or unusable | reported as |
//! | --- | --- |
//! | id | the whole call fails with `PortError::Invalid` |
//! | name | `""` (the planner reports it as `unrecognized_container`) |
//! | image | `""` |
//! | labels | no labels |
//! | state (absent, empty or unknown word) | `dead`: not running, so no probe is made and the record is not marked running |
//! | creation time | `1970-01-01T00:00:00Z`, so it loses every duplicate tie-break on recency |
//! | an address that is empty | that network is left out of `addresses` |
//! | a port binding without a usable host port (not TCP, not a number, 0) | that binding is left out of `published_ports` |
//!
//! `published_ports` maps each TCP port of the container that Docker published to the host
//! port it is bound to. When one container port is bound several times (IPv4 and IPv6, or
//! several `-p`), a binding on every address (`0.0.0.0`, `::`) comes first, then the lowest
//! host port, so the list and the inspect answers agree.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary as DockerSummary,
    ContainerSummaryStateEnum, EndpointSettings, PortMap, PortSummary, PortSummaryTypeEnum,
};
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_model::{ContainerState, ContainerSummary, Timestamp};
use galaxy_runtime_ports::PortError;

/// A container as reported, with the parts Docker did not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapped {
    /// What is reported.
    pub summary: ContainerSummary,
    /// The parts replaced by a fallback (`name`, `image`, `labels`, `state`, `created`).
    pub gaps: Vec<String>,
}

impl Mapped {
    /// Logs a warning naming the container and its gaps, if it has any.
    pub fn warn_if_incomplete(&self, daemon: &str) {
        if !self.gaps.is_empty() {
            log::warn!(
                "Docker daemon at {daemon} described container {} (name {:?}) incompletely: {}; \
                 reported with fallbacks (see the Docker adapter's docs)",
                escape_foreign(&self.summary.id, MESSAGE_CHARS),
                escape_foreign(&self.summary.name, MESSAGE_CHARS),
                self.gaps.join(", ")
            );
        }
    }
}

/// The state reported when Docker gives none that this code knows.
const FALLBACK_STATE: ContainerState = ContainerState::Dead;

fn epoch() -> Timestamp {
    Timestamp::from_unix_seconds(0).unwrap_or_else(Timestamp::now)
}

fn required_id(id: Option<String>, name: &str) -> Result<String, PortError> {
    match id {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(PortError::invalid(format!(
            "Docker described a container without an id (name {:?}); it cannot be reported",
            escape_foreign(name, MESSAGE_CHARS)
        ))),
    }
}

/// The container's own name among those Docker lists: the one with no `/` after the leading
/// one (legacy links add names such as `/other/alias`).
fn primary_name(names: Option<Vec<String>>) -> Option<String> {
    let names = names.unwrap_or_default();
    names
        .iter()
        .find(|n| n.starts_with('/') && !n[1..].contains('/'))
        .or_else(|| names.first())
        .cloned()
        .filter(|n| !n.is_empty())
}

/// A network's address of the container: IPv4 if it has one, else its global IPv6 address.
fn address(endpoint: &EndpointSettings) -> Option<String> {
    [&endpoint.ip_address, &endpoint.global_ipv6_address]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty())
        .cloned()
}

fn addresses(networks: Option<HashMap<String, EndpointSettings>>) -> BTreeMap<String, String> {
    networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(network, endpoint)| address(&endpoint).map(|a| (network, a)))
        .collect()
}

/// One published binding: the container port, the host address it is bound on, the host port.
type Binding<'a> = (u16, &'a str, u16);

/// The host port each container port is published on, picked from `bindings` as the module's
/// docs say.
fn published_ports<'a>(bindings: impl IntoIterator<Item = Binding<'a>>) -> BTreeMap<u16, u16> {
    let mut picked: BTreeMap<u16, (bool, u16)> = BTreeMap::new();
    for (container_port, host_ip, host_port) in bindings {
        if host_port == 0 {
            continue;
        }
        // `false` sorts first: a binding on every address beats one on a single address.
        let rank = (!matches!(host_ip, "" | "0.0.0.0" | "::"), host_port);
        picked
            .entry(container_port)
            .and_modify(|best| *best = (*best).min(rank))
            .or_insert(rank);
    }
    picked
        .into_iter()
        .map(|(container_port, (_, host_port))| (container_port, host_port))
        .collect()
}

/// The published TCP ports of a list entry.
fn listed_ports(ports: Option<&[PortSummary]>) -> BTreeMap<u16, u16> {
    published_ports(
        ports
            .unwrap_or_default()
            .iter()
            .filter(|p| matches!(p.typ, Some(PortSummaryTypeEnum::TCP) | None))
            .filter_map(|p| {
                Some((
                    p.private_port,
                    p.ip.as_deref().unwrap_or(""),
                    p.public_port?,
                ))
            }),
    )
}

/// The published TCP ports of an inspect answer (`"8080/tcp": [{"HostIp": …, "HostPort": …}]`).
fn inspected_ports(ports: Option<&PortMap>) -> BTreeMap<u16, u16> {
    let bindings = ports.into_iter().flatten().filter_map(|(key, bindings)| {
        let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
        let port = port.parse::<u16>().ok().filter(|_| protocol == "tcp")?;
        Some(bindings.iter().flatten().filter_map(move |b| {
            let host_port = b.host_port.as_deref()?.parse::<u16>().ok()?;
            Some((port, b.host_ip.as_deref().unwrap_or(""), host_port))
        }))
    });
    published_ports(bindings.flatten())
}

/// Docker's state word as the model's state; `stopping` (newer daemons) is still running.
fn state_from_word(word: &str) -> Option<ContainerState> {
    match word {
        "stopping" => Some(ContainerState::Running),
        other => ContainerState::from_docker(other),
    }
}

/// The parts of a description replaced by a fallback.
struct Gaps(Vec<String>);

impl Gaps {
    fn or<T>(&mut self, value: Option<T>, part: &str, fallback: impl FnOnce() -> T) -> T {
        value.unwrap_or_else(|| {
            self.0.push(part.to_owned());
            fallback()
        })
    }
}

/// What Docker's state says: a state this code knows, a word it does not, or nothing.
enum StateSeen {
    Known(ContainerState),
    Unknown(String),
    Missing,
}

impl StateSeen {
    fn of_word(word: &str) -> Self {
        match state_from_word(word) {
            Some(state) => Self::Known(state),
            None => Self::Unknown(word.to_owned()),
        }
    }
}

/// What one of Docker's descriptions gives of a container, before any fallback: the list and
/// inspect answers differ in shape, not in what is reported for a missing part.
struct Described {
    id: Option<String>,
    name: Option<String>,
    image_ref: Option<String>,
    labels: Option<HashMap<String, String>>,
    state: StateSeen,
    created: Option<Timestamp>,
    networks: Option<HashMap<String, EndpointSettings>>,
    published_ports: BTreeMap<u16, u16>,
}

impl Described {
    /// The summary, with the fallback of the module's table for every part that is missing or
    /// unusable, and those parts named.
    fn into_mapped(self) -> Result<Mapped, PortError> {
        let name = self.name.filter(|n| !n.is_empty());
        let id = required_id(self.id, name.as_deref().unwrap_or(""))?;
        let mut gaps = Gaps(Vec::new());
        let name = gaps.or(name, "no name", String::new);
        let image_ref = gaps.or(
            self.image_ref.filter(|i| !i.is_empty()),
            "no image",
            String::new,
        );
        let labels = gaps.or(self.labels, "no labels", HashMap::new);
        let state = match self.state {
            StateSeen::Known(state) => state,
            StateSeen::Unknown(word) => gaps.or(
                None,
                &format!(
                    "unknown state {:?} (reported as dead)",
                    escape_foreign(&word, MESSAGE_CHARS)
                ),
                || FALLBACK_STATE,
            ),
            StateSeen::Missing => gaps.or(None, "no state (reported as dead)", || FALLBACK_STATE),
        };
        let created = gaps.or(
            self.created,
            "no creation time (reported as 1970-01-01T00:00:00Z)",
            epoch,
        );
        Ok(Mapped {
            summary: ContainerSummary {
                id,
                name,
                image_ref,
                labels: labels.into_iter().collect(),
                state,
                created,
                addresses: addresses(self.networks),
                host: String::new(),
                published_ports: self.published_ports,
            },
            gaps: gaps.0,
        })
    }
}

/// One entry of `GET /containers/json`.
pub(crate) fn from_list(container: DockerSummary) -> Result<Mapped, PortError> {
    Described {
        name: primary_name(container.names),
        id: container.id,
        image_ref: container.image,
        labels: container.labels,
        state: match container.state {
            Some(ContainerSummaryStateEnum::EMPTY) | None => StateSeen::Missing,
            Some(word) => StateSeen::of_word(word.as_ref()),
        },
        created: container.created.and_then(Timestamp::from_unix_seconds),
        networks: container.network_settings.and_then(|n| n.networks),
        published_ports: listed_ports(container.ports.as_deref()),
    }
    .into_mapped()
}

/// The answer of `GET /containers/{id}/json`.
///
/// The creation time is cut to whole seconds, as the list gives it, so that both calls describe
/// a container identically.
pub(crate) fn from_inspect(container: ContainerInspectResponse) -> Result<Mapped, PortError> {
    let (image_ref, labels) = container
        .config
        .map(|c| (c.image, c.labels))
        .unwrap_or_default();
    let state = match container.state {
        None => StateSeen::Missing,
        Some(s) => match s.status.filter(|w| *w != ContainerStateStatusEnum::EMPTY) {
            Some(word) => StateSeen::of_word(word.as_ref()),
            // Older daemons may leave the word out but keep the flags.
            None => [
                (s.restarting, ContainerState::Restarting),
                (s.paused, ContainerState::Paused),
                (s.running, ContainerState::Running),
                (s.dead, ContainerState::Dead),
            ]
            .into_iter()
            .find_map(|(flag, state)| (flag == Some(true)).then_some(state))
            .map_or(StateSeen::Missing, StateSeen::Known),
        },
    };
    Described {
        id: container.id,
        name: container.name,
        image_ref,
        labels,
        state,
        created: container
            .created
            .and_then(|text| text.parse::<Timestamp>().ok())
            .and_then(|t| Timestamp::from_unix_seconds(t.as_datetime().timestamp())),
        published_ports: inspected_ports(
            container
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.as_ref()),
        ),
        networks: container.network_settings.and_then(|n| n.networks),
    }
    .into_mapped()
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        ContainerConfig, ContainerState as DockerState, ContainerSummaryNetworkSettings,
        NetworkSettings,
    };

    use super::*;

    fn network(ip: &str) -> EndpointSettings {
        EndpointSettings {
            ip_address: Some(ip.to_owned()),
            ..Default::default()
        }
    }

    fn full_list_entry() -> DockerSummary {
        DockerSummary {
            id: Some("abc123".into()),
            names: Some(vec!["/other/link".into(), "/galaxy-game-1".into()]),
            image: Some("galaxy/engine:1.4".into()),
            labels: Some(HashMap::from([("galaxy.managed".into(), "true".into())])),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            created: Some(1_795_000_000),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(HashMap::from([
                    ("galaxy".into(), network("172.18.0.5")),
                    ("none".into(), network("")),
                ])),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_list_entry_maps_every_field() {
        let mapped = from_list(full_list_entry()).unwrap();
        assert!(mapped.gaps.is_empty(), "{:?}", mapped.gaps);
        let c = mapped.summary;
        assert_eq!(c.id, "abc123");
        assert_eq!(
            c.name, "/galaxy-game-1",
            "the container's own name, not a link alias"
        );
        assert_eq!(c.image_ref, "galaxy/engine:1.4");
        assert_eq!(c.labels["galaxy.managed"], "true");
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(
            c.created,
            Timestamp::from_unix_seconds(1_795_000_000).unwrap()
        );
        assert_eq!(
            c.addresses,
            BTreeMap::from([("galaxy".to_owned(), "172.18.0.5".to_owned())])
        );
    }

    #[test]
    fn every_docker_state_word_maps() {
        for (word, state) in [
            (ContainerSummaryStateEnum::CREATED, ContainerState::Created),
            (ContainerSummaryStateEnum::RUNNING, ContainerState::Running),
            (ContainerSummaryStateEnum::PAUSED, ContainerState::Paused),
            (
                ContainerSummaryStateEnum::RESTARTING,
                ContainerState::Restarting,
            ),
            (
                ContainerSummaryStateEnum::REMOVING,
                ContainerState::Removing,
            ),
            (ContainerSummaryStateEnum::EXITED, ContainerState::Exited),
            (ContainerSummaryStateEnum::DEAD, ContainerState::Dead),
            (ContainerSummaryStateEnum::STOPPING, ContainerState::Running),
        ] {
            let entry = DockerSummary {
                state: Some(word),
                ..full_list_entry()
            };
            assert_eq!(from_list(entry).unwrap().summary.state, state, "{word}");
        }
    }

    #[test]
    fn an_incomplete_list_entry_is_reported_with_fallbacks() {
        let entry = DockerSummary {
            id: Some("abc123".into()),
            ..Default::default()
        };
        let mapped = from_list(entry).unwrap();
        let c = &mapped.summary;
        assert_eq!(c.id, "abc123");
        assert_eq!(c.name, "");
        assert_eq!(c.image_ref, "");
        assert!(c.labels.is_empty());
        assert_eq!(c.state, ContainerState::Dead);
        assert_eq!(c.created.to_string(), "1970-01-01T00:00:00Z");
        assert!(c.addresses.is_empty());
        assert_eq!(mapped.gaps.len(), 5, "{:?}", mapped.gaps);

        let entry = DockerSummary {
            state: Some(ContainerSummaryStateEnum::EMPTY),
            created: Some(i64::MAX),
            ..full_list_entry()
        };
        let mapped = from_list(entry).unwrap();
        assert_eq!(mapped.summary.state, ContainerState::Dead);
        assert_eq!(mapped.summary.created.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(mapped.gaps.len(), 2, "{:?}", mapped.gaps);
    }

    #[test]
    fn a_container_without_id_is_an_error_naming_it() {
        for id in [None, Some(String::new())] {
            let entry = DockerSummary {
                id,
                ..full_list_entry()
            };
            let error = from_list(entry).unwrap_err();
            assert!(matches!(error, PortError::Invalid { .. }), "{error}");
            assert!(error.to_string().contains("galaxy-game-1"), "{error}");
        }
    }

    fn full_inspect() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc123".into()),
            name: Some("/galaxy-game-1".into()),
            created: Some("2026-11-27T01:02:03.987654321Z".into()),
            image: Some("sha256:feed".into()),
            state: Some(DockerState {
                status: Some(ContainerStateStatusEnum::PAUSED),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some("galaxy/engine:1.4".into()),
                labels: Some(HashMap::from([("k".into(), "v".into())])),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    "galaxy".into(),
                    EndpointSettings {
                        global_ipv6_address: Some("fd00::5".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_maps_like_the_list() {
        let mapped = from_inspect(full_inspect()).unwrap();
        assert!(mapped.gaps.is_empty(), "{:?}", mapped.gaps);
        let c = mapped.summary;
        assert_eq!(c.name, "/galaxy-game-1");
        assert_eq!(
            c.image_ref, "galaxy/engine:1.4",
            "the reference, not the image id"
        );
        assert_eq!(c.state, ContainerState::Paused);
        assert_eq!(
            c.created.to_string(),
            "2026-11-27T01:02:03Z",
            "cut to seconds like the list"
        );
        assert_eq!(c.addresses["galaxy"], "fd00::5");
    }

    #[test]
    fn inspect_without_state_word_uses_the_flags() {
        let mut inspect = full_inspect();
        inspect.state = Some(DockerState {
            running: Some(true),
            paused: Some(false),
            ..Default::default()
        });
        assert_eq!(
            from_inspect(inspect).unwrap().summary.state,
            ContainerState::Running
        );

        let mut inspect = full_inspect();
        inspect.state = None;
        inspect.created = Some("yesterday".into());
        inspect.config = None;
        let mapped = from_inspect(inspect).unwrap();
        assert_eq!(mapped.summary.state, ContainerState::Dead);
        assert_eq!(mapped.gaps.len(), 4, "{:?}", mapped.gaps);
    }

    #[test]
    fn published_ports_are_read_from_the_list_and_from_inspect_alike() {
        let port = |private_port, ip: &str, public_port, typ| PortSummary {
            ip: Some(ip.to_owned()),
            private_port,
            public_port,
            typ: Some(typ),
        };
        let entry = DockerSummary {
            ports: Some(vec![
                port(8080, "::", Some(32768), PortSummaryTypeEnum::TCP),
                port(8080, "0.0.0.0", Some(32768), PortSummaryTypeEnum::TCP),
                port(8080, "127.0.0.1", Some(18080), PortSummaryTypeEnum::TCP),
                port(9090, "127.0.0.1", Some(19090), PortSummaryTypeEnum::TCP),
                port(5353, "0.0.0.0", Some(5353), PortSummaryTypeEnum::UDP),
                port(7070, "", None, PortSummaryTypeEnum::TCP),
            ]),
            ..full_list_entry()
        };
        let want = BTreeMap::from([(8080, 32768), (9090, 19090)]);
        assert_eq!(from_list(entry).unwrap().summary.published_ports, want);

        let binding = |ip: &str, port: &str| bollard::models::PortBinding {
            host_ip: Some(ip.to_owned()),
            host_port: Some(port.to_owned()),
        };
        let mut inspect = full_inspect();
        inspect.network_settings.as_mut().unwrap().ports = Some(HashMap::from([
            (
                "8080/tcp".to_owned(),
                Some(vec![
                    binding("127.0.0.1", "18080"),
                    binding("0.0.0.0", "32768"),
                    binding("::", "32768"),
                ]),
            ),
            (
                "9090/tcp".to_owned(),
                Some(vec![binding("127.0.0.1", "19090")]),
            ),
            (
                "5353/udp".to_owned(),
                Some(vec![binding("0.0.0.0", "5353")]),
            ),
            ("7070/tcp".to_owned(), None),
            ("6060/tcp".to_owned(), Some(vec![binding("", "soon")])),
        ]));
        assert_eq!(from_inspect(inspect).unwrap().summary.published_ports, want);
        assert!(
            from_inspect(full_inspect())
                .unwrap()
                .summary
                .published_ports
                .is_empty()
        );
    }
}
