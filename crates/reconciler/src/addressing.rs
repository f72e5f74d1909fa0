//! Where a probe reaches an engine: the one place that turns a [`ProbeTarget`] and the
//! configured [`EngineAddressing`] into an endpoint.

use std::net::{IpAddr, SocketAddr};

use galaxy_runtime_model::text::{escape_foreign, is_host_address};
use galaxy_runtime_model::{Config, EngineAddressing};

use crate::ProbeTarget;

/// The endpoint to probe for `target`, or why there is none (the text becomes the failed
/// probe's message).
///
/// - [`EngineAddressing::Hostname`]: the record's `engine_endpoint`, as the seed does.
/// - [`EngineAddressing::ContainerIp`]: `http://<address on the network>:<engine_port>`;
///   IPv6 addresses are bracketed. The network is `record_network`, the one the record says the
///   container was started on, or the configured `docker_network` when the record names none.
/// - [`EngineAddressing::PublishedPort`]: `http://<host address>:<published port>`, where the
///   published port is the host port Docker published `engine_port` on (the container's
///   `published_ports`) and `host_address` is where the container's Docker host publishes
///   ports ([`DockerPort::published_address`]). A container that publishes no port for
///   `engine_port`, or a host without an address, is a failed probe naming the reason, never a
///   guess.
///
/// Container-supplied text never becomes part of an endpoint unchecked: an address that is not
/// an IP address is refused, so a container cannot point the probe elsewhere; a host address
/// comes from configuration and is still checked to be a host name or an IP address.
///
/// [`DockerPort::published_address`]: galaxy_runtime_ports::DockerPort::published_address
pub fn probe_endpoint(
    target: &ProbeTarget<'_>,
    host_address: Option<&str>,
    config: &Config,
) -> Result<String, String> {
    match config.engine_addressing {
        EngineAddressing::Hostname => {
            if target.record.engine_endpoint.is_empty() {
                Err("record has no engine endpoint".to_owned())
            } else {
                Ok(target.record.engine_endpoint.clone())
            }
        }
        EngineAddressing::ContainerIp => {
            let record_network = &target.record.docker_network;
            let network = if record_network.is_empty() {
                &config.docker_network
            } else {
                record_network
            };
            target.container.url_on_network(network, config.engine_port)
        }
        EngineAddressing::PublishedPort => {
            let port = config.engine_port;
            let published = target
                .container
                .published_ports
                .get(&port)
                .copied()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    format!("container publishes no host port for engine port {port}")
                })?;
            let address = host_address.filter(|a| !a.is_empty()).ok_or_else(|| {
                let host = &target.container.host;
                if host.is_empty() {
                    "the Docker host has no address for its published ports".to_owned()
                } else {
                    format!("Docker host {host:?} has no address for its published ports")
                }
            })?;
            url_at(address, published)
        }
    }
}

/// `http://<address>:<port>` for a host name or an IP address (IPv6 bracketed, with or without
/// brackets given), or why `address` is neither.
fn url_at(address: &str, port: u16) -> Result<String, String> {
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        // SocketAddr writes IPv6 in brackets, as a URL needs.
        return Ok(format!("http://{}", SocketAddr::new(ip, port)));
    }
    if is_host_address(address) {
        return Ok(format!("http://{address}:{port}"));
    }
    Err(format!(
        "Docker host address {:?} is not a host name or an IP address",
        escape_foreign(address, 64)
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use galaxy_runtime_model::{ContainerState, ContainerSummary, GameId, RuntimeRecord};

    use super::*;

    struct Target {
        endpoint: String,
        container: ContainerSummary,
        host_address: Option<String>,
    }

    impl Target {
        /// `probe_endpoint` for a record whose container was started on `record_network`.
        fn probe(&self, record_network: &str, config: &Config) -> Result<String, String> {
            let game_id = GameId::new_random();
            let record = RuntimeRecord {
                engine_endpoint: self.endpoint.clone(),
                docker_network: record_network.to_owned(),
                ..RuntimeRecord::new(
                    game_id,
                    galaxy_runtime_model::RuntimeStatus::Running,
                    "2026-11-27T11:00:00Z".parse().unwrap(),
                )
            };
            let target = ProbeTarget {
                game_id,
                record: &record,
                container: &self.container,
            };
            probe_endpoint(&target, self.host_address.as_deref(), config)
        }
    }

    fn target(endpoint: &str, addresses: &[(&str, &str)]) -> Target {
        Target {
            endpoint: endpoint.to_owned(),
            container: ContainerSummary {
                id: "c1".to_owned(),
                name: "/galaxy-game-x".to_owned(),
                image_ref: String::new(),
                labels: BTreeMap::new(),
                state: ContainerState::Running,
                created: "2026-11-27T11:00:00Z".parse().unwrap(),
                addresses: addresses
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                host: String::new(),
                published_ports: BTreeMap::new(),
            },
            host_address: None,
        }
    }

    /// A target whose container Docker published on `ports` (container port, host port) of a
    /// host `host` reached at `address`.
    fn published(host: &str, address: Option<&str>, ports: &[(u16, u16)]) -> Target {
        let mut t = target("http://galaxy-game-1:8080", &[("galaxy", "172.18.0.5")]);
        t.container.host = host.to_owned();
        t.container.published_ports = ports.iter().copied().collect();
        t.host_address = address.map(str::to_owned);
        t
    }

    fn config(addressing: EngineAddressing) -> Config {
        Config {
            engine_addressing: addressing,
            ..Config::default()
        }
    }

    #[test]
    fn hostname_uses_the_record_endpoint() {
        let t = target("http://galaxy-game-1:8080", &[("galaxy", "172.18.0.5")]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::Hostname)),
            Ok("http://galaxy-game-1:8080".to_owned())
        );
    }

    #[test]
    fn hostname_without_endpoint_is_a_failure() {
        let t = target("", &[]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::Hostname)),
            Err("record has no engine endpoint".to_owned())
        );
    }

    #[test]
    fn container_ip_uses_the_address_on_the_configured_network() {
        let t = target(
            "http://galaxy-game-1:8080",
            &[("bridge", "172.17.0.2"), ("galaxy", "172.18.0.5")],
        );
        let mut c = config(EngineAddressing::ContainerIp);
        c.engine_port = 9000;
        assert_eq!(t.probe("", &c), Ok("http://172.18.0.5:9000".to_owned()));
    }

    #[test]
    fn container_ip_prefers_the_records_network() {
        let t = target(
            "",
            &[("galaxy", "172.18.0.5"), ("galaxy-old", "172.19.0.7")],
        );
        let c = config(EngineAddressing::ContainerIp);
        assert_eq!(
            t.probe("galaxy-old", &c),
            Ok("http://172.19.0.7:8080".to_owned())
        );
        assert_eq!(
            t.probe("elsewhere", &c),
            Err("container has no address on network elsewhere".to_owned())
        );
    }

    #[test]
    fn container_ip_brackets_ipv6() {
        let t = target("", &[("galaxy", "fd00::5")]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::ContainerIp)),
            Ok("http://[fd00::5]:8080".to_owned())
        );
    }

    #[test]
    fn container_ip_without_address_on_network_is_a_failure() {
        let t = target("http://galaxy-game-1:8080", &[("bridge", "172.17.0.2")]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::ContainerIp)),
            Err("container has no address on network galaxy".to_owned())
        );
        let t = target("", &[("galaxy", "")]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::ContainerIp)),
            Err("container has no address on network galaxy".to_owned())
        );
    }

    #[test]
    fn container_ip_refuses_non_addresses() {
        let t = target("", &[("galaxy", "evil.example/x?")]);
        let err = t
            .probe("", &config(EngineAddressing::ContainerIp))
            .unwrap_err();
        assert!(err.contains("is not an IP address"), "{err}");
        assert!(err.contains("\"evil.example/x?\""), "{err}");
    }

    #[test]
    fn published_port_uses_the_host_address_and_the_published_port() {
        let c = config(EngineAddressing::PublishedPort);
        let t = published("eu-1", Some("10.0.0.2"), &[(8080, 32768), (9090, 32769)]);
        assert_eq!(t.probe("", &c), Ok("http://10.0.0.2:32768".to_owned()));
        let t = published("", Some("127.0.0.1"), &[(8080, 18080)]);
        assert_eq!(t.probe("", &c), Ok("http://127.0.0.1:18080".to_owned()));
        let t = published("eu-1", Some("docker-eu-1.example"), &[(8080, 18080)]);
        assert_eq!(
            t.probe("", &c),
            Ok("http://docker-eu-1.example:18080".to_owned())
        );
        let mut c9000 = c.clone();
        c9000.engine_port = 9090;
        let t = published("eu-1", Some("10.0.0.2"), &[(8080, 32768), (9090, 32769)]);
        assert_eq!(t.probe("", &c9000), Ok("http://10.0.0.2:32769".to_owned()));
    }

    #[test]
    fn published_port_brackets_ipv6_host_addresses() {
        let c = config(EngineAddressing::PublishedPort);
        for address in ["fd00::2", "[fd00::2]"] {
            let t = published("eu-1", Some(address), &[(8080, 32768)]);
            assert_eq!(
                t.probe("", &c),
                Ok("http://[fd00::2]:32768".to_owned()),
                "{address}"
            );
        }
    }

    #[test]
    fn published_port_without_a_published_engine_port_is_a_failure() {
        let c = config(EngineAddressing::PublishedPort);
        for ports in [&[][..], &[(9090, 32768)], &[(8080, 0)]] {
            let t = published("eu-1", Some("10.0.0.2"), ports);
            assert_eq!(
                t.probe("", &c),
                Err("container publishes no host port for engine port 8080".to_owned()),
                "{ports:?}"
            );
        }
    }

    #[test]
    fn published_port_without_a_host_address_is_a_failure_naming_the_host() {
        let c = config(EngineAddressing::PublishedPort);
        for address in [None, Some("")] {
            let t = published("eu-1", address, &[(8080, 32768)]);
            assert_eq!(
                t.probe("", &c),
                Err("Docker host \"eu-1\" has no address for its published ports".to_owned())
            );
        }
        let t = published("", None, &[(8080, 32768)]);
        assert_eq!(
            t.probe("", &c),
            Err("the Docker host has no address for its published ports".to_owned())
        );
    }

    #[test]
    fn published_port_refuses_host_addresses_that_are_not_addresses() {
        let c = config(EngineAddressing::PublishedPort);
        for bad in [
            "evil.example/x?",
            "a b",
            "-x.example",
            "x..example",
            "user@host",
        ] {
            let t = published("eu-1", Some(bad), &[(8080, 32768)]);
            let err = t.probe("", &c).unwrap_err();
            assert!(
                err.contains("is not a host name or an IP address"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_other_modes_ignore_published_ports() {
        let t = published("eu-1", Some("10.0.0.2"), &[(8080, 32768)]);
        assert_eq!(
            t.probe("", &config(EngineAddressing::Hostname)),
            Ok("http://galaxy-game-1:8080".to_owned())
        );
        assert_eq!(
            t.probe("", &config(EngineAddressing::ContainerIp)),
            Ok("http://172.18.0.5:8080".to_owned())
        );
    }
}
