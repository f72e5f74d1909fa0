use std::net::{IpAddr, SocketAddr};

use galaxy_runtime_model::{ContainerSummary, EngineAddressing};

/// The endpoint to probe for a record and its matched container, by `engine_addressing`.
///
/// - [`EngineAddressing::Hostname`]: the record's `engine_endpoint` as stored
///   (`http://galaxy-game-<id>:8080`), for a backend inside the Docker network that resolves
///   container names. `None` when the record has no endpoint.
/// - [`EngineAddressing::ContainerIp`]: `http://<address>:<engine_port>` with the container's
///   address on `docker_network` (IPv6 in brackets), for a backend on the Docker host. `None`
///   when the container has no address on that network (not running, or attached elsewhere),
///   and also when the address Docker reports is not an IP address: container-supplied text
///   never becomes an endpoint unchecked.
///
/// Pure: no I/O, no clock. Callers pass the record's `docker_network` (the network the
/// container was started on) and the configured `engine_port`, and turn `None` into a failed
/// probe (`no address on network <name>`) rather than skipping the record.
///
/// ```
/// use std::collections::BTreeMap;
/// use galaxy_runtime_engine_http::engine_endpoint;
/// use galaxy_runtime_model::{ContainerState, ContainerSummary, EngineAddressing, Timestamp};
///
/// let container = ContainerSummary {
///     id: "c1".into(),
///     name: "/galaxy-game-x".into(),
///     image_ref: "galaxy/engine:1".into(),
///     labels: BTreeMap::new(),
///     state: ContainerState::Running,
///     created: Timestamp::from_unix_seconds(0).unwrap(),
///     addresses: BTreeMap::from([("galaxy".to_owned(), "172.18.0.5".to_owned())]),
/// };
/// let record_endpoint = "http://galaxy-game-x:8080";
/// assert_eq!(
///     engine_endpoint(EngineAddressing::Hostname, record_endpoint, &container, "galaxy", 8080),
///     Some("http://galaxy-game-x:8080".to_owned())
/// );
/// assert_eq!(
///     engine_endpoint(EngineAddressing::ContainerIp, record_endpoint, &container, "galaxy", 8080),
///     Some("http://172.18.0.5:8080".to_owned())
/// );
/// assert_eq!(
///     engine_endpoint(EngineAddressing::ContainerIp, record_endpoint, &container, "other", 8080),
///     None
/// );
/// ```
pub fn engine_endpoint(
    addressing: EngineAddressing,
    record_endpoint: &str,
    container: &ContainerSummary,
    docker_network: &str,
    engine_port: u16,
) -> Option<String> {
    match addressing {
        EngineAddressing::Hostname => {
            (!record_endpoint.is_empty()).then(|| record_endpoint.to_owned())
        }
        EngineAddressing::ContainerIp => {
            let ip: IpAddr = container.addresses.get(docker_network)?.parse().ok()?;
            // SocketAddr's Display writes IPv6 in brackets, as a URL needs.
            Some(format!("http://{}", SocketAddr::new(ip, engine_port)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use galaxy_runtime_model::{ContainerState, Timestamp};

    use super::*;

    fn container(addresses: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            id: "c1".into(),
            name: "/galaxy-game-x".into(),
            image_ref: String::new(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            created: Timestamp::from_unix_seconds(0).expect("epoch"),
            addresses: addresses
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn hostname_uses_the_record_endpoint_whatever_the_container() {
        let c = container(&[]);
        assert_eq!(
            engine_endpoint(EngineAddressing::Hostname, "http://h:1", &c, "galaxy", 8080),
            Some("http://h:1".to_owned())
        );
        assert_eq!(
            engine_endpoint(EngineAddressing::Hostname, "", &c, "galaxy", 8080),
            None
        );
    }

    #[test]
    fn container_ip_uses_the_address_on_the_network() {
        let c = container(&[("bridge", "172.17.0.2"), ("galaxy", "10.0.0.7")]);
        assert_eq!(
            engine_endpoint(
                EngineAddressing::ContainerIp,
                "http://h:1",
                &c,
                "galaxy",
                9000
            ),
            Some("http://10.0.0.7:9000".to_owned())
        );
        let c = container(&[("galaxy", "fd00::7")]);
        assert_eq!(
            engine_endpoint(EngineAddressing::ContainerIp, "", &c, "galaxy", 8080),
            Some("http://[fd00::7]:8080".to_owned())
        );
    }

    #[test]
    fn container_ip_refuses_missing_and_non_ip_addresses() {
        for addresses in [
            &[][..],
            &[("bridge", "172.17.0.2")][..],
            &[("galaxy", "")][..],
            &[("galaxy", "evil.example/x?")][..],
            &[("galaxy", "10.0.0.7:80")][..],
        ] {
            let c = container(addresses);
            assert_eq!(
                engine_endpoint(
                    EngineAddressing::ContainerIp,
                    "http://h:1",
                    &c,
                    "galaxy",
                    8080
                ),
                None,
                "{addresses:?}"
            );
        }
    }
}
