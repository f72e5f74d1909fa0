//! Where a probe reaches an engine: the one place that turns a [`ProbeTarget`] and the
//! configured [`EngineAddressing`] into an endpoint.

use galaxy_runtime_model::{Config, EngineAddressing};

use crate::ProbeTarget;

/// The endpoint to probe for `target`, or why there is none (the text becomes the failed
/// probe's message).
///
/// - [`EngineAddressing::Hostname`]: the record's `engine_endpoint`, as the seed does.
/// - [`EngineAddressing::ContainerIp`]: `http://<address on the network>:<engine_port>`;
///   IPv6 addresses are bracketed. The network is `record_network`, the one the record says the
///   container was started on, or the configured `docker_network` when the record names none.
///
/// Container-supplied text never becomes part of an endpoint unchecked: an address that is not
/// an IP address is refused, so a container cannot point the probe elsewhere.
pub fn probe_endpoint(target: &ProbeTarget<'_>, config: &Config) -> Result<String, String> {
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
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use galaxy_runtime_model::{ContainerState, ContainerSummary, GameId, RuntimeRecord};

    use super::*;

    struct Target {
        endpoint: String,
        container: ContainerSummary,
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
            probe_endpoint(&target, config)
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
        }
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
}
