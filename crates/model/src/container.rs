use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Docker's state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead.
    Dead,
    /// The runtime cannot tell (a Swarm task on a node that is down): such a container exists
    /// for every rule, and R9 counts it as the failure `container unknown`; it is never taken
    /// for missing.
    Unknown,
}

impl ContainerState {
    /// Every state, in declaration order.
    pub const ALL: [ContainerState; 8] = [
        Self::Created,
        Self::Running,
        Self::Paused,
        Self::Restarting,
        Self::Removing,
        Self::Exited,
        Self::Dead,
        Self::Unknown,
    ];

    /// Docker's word for the state.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }

    /// Parses Docker's word; `None` for anything else (`unknown` is not Docker's word but the
    /// runtime's, so it is not parsed here either).
    pub fn from_docker(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .filter(|s| *s != Self::Unknown)
            .find(|s| s.as_str() == word)
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container as observed through Docker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSummary {
    /// Docker's container id.
    pub id: String,
    /// The name as Docker gives it (usually with a leading `/`).
    pub name: String,
    /// The image reference the container was created from.
    #[serde(default)]
    pub image_ref: String,
    /// Every label of the container.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Docker's state.
    pub state: ContainerState,
    /// When Docker created it.
    pub created: Timestamp,
    /// The container's IP address on each network it is attached to, by network name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, String>,
    /// The Docker host it was listed on (CONTRACT §6); `""` without several hosts. Omitted in
    /// JSON when `""`. Container ids are unique within a host only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The host ports Docker published the container's TCP ports on, by container port (for
    /// `published_port` engine addressing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub published_ports: BTreeMap<u16, u16>,
}

impl ContainerSummary {
    /// The name without Docker's leading `/` (only one is stripped).
    pub fn bare_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// Whether the container is running.
    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
    }

    /// `http://<address>:<port>` for the container's address on `network` (IPv6 in brackets),
    /// or why there is none.
    ///
    /// The address comes from Docker, not from the container, but it is still checked to be an
    /// IP address: nothing that is not one ever becomes part of a URL.
    pub fn url_on_network(&self, network: &str, port: u16) -> Result<String, String> {
        let address = self
            .addresses
            .get(network)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("container has no address on network {network}"))?;
        let ip: std::net::IpAddr = address.parse().map_err(|_| {
            format!("container address {address:?} on network {network} is not an IP address")
        })?;
        // SocketAddr writes IPv6 in brackets, as a URL needs.
        Ok(format!("http://{}", std::net::SocketAddr::new(ip, port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_addresses(addresses: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            id: "c1".into(),
            name: "/galaxy-game-x".into(),
            image_ref: String::new(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            created: Timestamp::from_unix_seconds(0).unwrap(),
            addresses: addresses
                .iter()
                .map(|(n, a)| (n.to_string(), a.to_string()))
                .collect(),
            host: String::new(),
            published_ports: BTreeMap::new(),
        }
    }

    #[test]
    fn url_on_network() {
        let c = with_addresses(&[
            ("galaxy", "172.18.0.5"),
            ("v6", "fd00::5"),
            ("odd", "evil.example"),
        ]);
        assert_eq!(
            c.url_on_network("galaxy", 8080).as_deref(),
            Ok("http://172.18.0.5:8080")
        );
        assert_eq!(
            c.url_on_network("v6", 8080).as_deref(),
            Ok("http://[fd00::5]:8080")
        );
        assert_eq!(
            c.url_on_network("other", 8080),
            Err("container has no address on network other".to_owned())
        );
        assert!(
            c.url_on_network("odd", 8080)
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(
            with_addresses(&[("galaxy", "")])
                .url_on_network("galaxy", 1)
                .is_err()
        );
    }
}
