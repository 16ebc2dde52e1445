//! `GET /v1/network`: the services' network on this board, and in a cluster the mesh to the
//! other boards.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The services' network as this board's supervisor last set it up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    /// Generation of the isolation rule set last applied (0: none yet).
    pub generation: u64,
    /// The last error applying it, if the last attempt failed.
    pub error: Option<String>,
    /// Every service's virtual IP, the services it may call and its egress.
    pub services: Vec<NetworkService>,
}

/// One service in [`NetworkView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkService {
    /// Name.
    pub name: String,
    /// Virtual IP (`<name>` and `<name>.baton` resolve to it inside containers).
    pub vip: Option<Ipv4Addr>,
    /// Port on the VIP.
    pub port: Option<u16>,
    /// Services it may call.
    pub allow: Vec<String>,
    /// Where else it may connect: `internet` or `none`.
    pub egress: String,
}

/// The body of `GET /v1/network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// The services' network (its fields appear inline).
    #[serde(flatten)]
    pub network: NetworkView,
    /// In a cluster, this board's side of the mesh; absent on a board without a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshView>,
}

/// This board's side of the WireGuard mesh between the boards' container subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshView {
    /// This board's container subnet (`a.b.c.d/n`).
    pub subnet: String,
    /// Whether the mesh link is up (without it, no instance on another board is reachable).
    pub up: bool,
    /// The peers, with what the kernel says of them.
    pub peers: Vec<MeshPeerView>,
    /// The last problem with the mesh or the subnet.
    pub error: Option<String>,
}

/// A board at the other end of the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshPeerView {
    /// The board's name.
    pub board: String,
    /// Its container subnet (`a.b.c.d/n`).
    pub subnet: String,
    /// Where its WireGuard endpoint is (`ip:port`).
    pub endpoint: String,
    /// Its public key, base64.
    pub key: String,
    /// Age of the last handshake in ms (`null`: never).
    pub handshake_age_ms: Option<u64>,
    /// Bytes received from it over the mesh.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> NetworkView {
        NetworkView {
            generation: 4,
            error: None,
            services: vec![
                NetworkService {
                    name: "web".into(),
                    vip: Some(Ipv4Addr::new(10, 89, 0, 2)),
                    port: Some(80),
                    allow: vec!["db".into()],
                    egress: "internet".into(),
                },
                NetworkService {
                    name: "db".into(),
                    vip: None,
                    port: None,
                    allow: vec![],
                    egress: "none".into(),
                },
            ],
        }
    }

    fn view_json() -> serde_json::Value {
        json!({
            "generation": 4, "error": null,
            "services": [
                {"name": "web", "vip": "10.89.0.2", "port": 80, "allow": ["db"], "egress": "internet"},
                {"name": "db", "vip": null, "port": null, "allow": [], "egress": "none"},
            ],
        })
    }

    #[test]
    fn the_network_without_a_cluster_keeps_its_json_shape() {
        let report = NetworkReport {
            network: view(),
            mesh: None,
        };
        assert_eq!(serde_json::to_value(&report).unwrap(), view_json());
        assert_eq!(serde_json::to_value(view()).unwrap(), view_json());
        let back: NetworkReport = serde_json::from_value(view_json()).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn the_network_in_a_cluster_adds_the_mesh() {
        let report = NetworkReport {
            network: view(),
            mesh: Some(MeshView {
                subnet: "10.88.1.0/24".into(),
                up: true,
                peers: vec![MeshPeerView {
                    board: "pi-b".into(),
                    subnet: "10.88.2.0/24".into(),
                    endpoint: "192.0.2.2:51820".into(),
                    key: "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=".into(),
                    handshake_age_ms: None,
                    rx_bytes: 10,
                    tx_bytes: 20,
                }],
                error: Some("configuring the mesh: busy".into()),
            }),
        };
        let mut wire = view_json();
        wire["mesh"] = json!({
            "subnet": "10.88.1.0/24", "up": true, "error": "configuring the mesh: busy",
            "peers": [{
                "board": "pi-b", "subnet": "10.88.2.0/24", "endpoint": "192.0.2.2:51820",
                "key": "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=", "handshake_age_ms": null,
                "rx_bytes": 10, "tx_bytes": 20,
            }],
        });
        assert_eq!(serde_json::to_value(&report).unwrap(), wire);
        assert_eq!(
            serde_json::from_value::<NetworkReport>(wire).unwrap(),
            report
        );
    }
}
