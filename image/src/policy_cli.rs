//! `baton policy <service>`: the effective network policy of a service, from the board's
//! `GET /v1/network`: its virtual IP and port, the services it may call (with theirs), the services
//! that may call it, and its egress.

use anyhow::bail;
use baton_api::{MeshView, NetworkReport, NetworkService};

use crate::client::Client;

/// Prints the policy of `service` as the board enforces it.
pub fn run(client: &Client, service: &str) -> anyhow::Result<()> {
    let network: NetworkReport = client.get("/v1/network")?;
    print!("{}", render(&network, service)?);
    Ok(())
}

fn endpoint(s: &NetworkService) -> String {
    match (s.vip, s.port) {
        (Some(vip), Some(port)) => format!("{vip}:{port}"),
        (Some(vip), None) => vip.to_string(),
        _ => "-".to_string(),
    }
}

/// The text for `service` from a `/v1/network` answer.
pub fn render(network: &NetworkReport, service: &str) -> anyhow::Result<String> {
    let services = &network.network.services;
    let Some(me) = services.iter().find(|s| s.name == service) else {
        let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "no service {service:?} on this board's network (services: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let mut out = format!(
        "service   {service}\naddress   {} (also {service} and {service}.baton inside containers)\n",
        endpoint(me)
    );
    out.push_str("may call\n");
    if me.allow.is_empty() {
        out.push_str("  nothing\n");
    }
    for name in &me.allow {
        match services.iter().find(|s| s.name == *name) {
            Some(s) => out.push_str(&format!("  {name:<20} {}\n", endpoint(s))),
            None => out.push_str(&format!("  {name:<20} (no such service yet)\n")),
        }
    }
    out.push_str("called by\n");
    let callers: Vec<&str> = services
        .iter()
        .filter(|s| s.allow.iter().any(|a| a == service))
        .map(|s| s.name.as_str())
        .collect();
    if callers.is_empty() {
        out.push_str("  nobody\n");
    }
    for caller in callers {
        out.push_str(&format!("  {caller}\n"));
    }
    let egress = &me.egress;
    out.push_str(&format!(
        "egress    {egress}{}\n",
        if egress == "none" {
            " (no connections beyond the cluster)"
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "rules     generation {}{}\n",
        network.network.generation,
        network
            .network
            .error
            .as_ref()
            .map(|e| format!(", NOT APPLIED: {e}"))
            .unwrap_or_default()
    ));
    if let Some(m) = &network.mesh {
        out.push_str(&mesh(m));
    }
    Ok(out)
}

/// The board's side of the mesh between boards, when it is in a cluster.
fn mesh(mesh: &MeshView) -> String {
    let mut out = format!(
        "mesh      containers here on {}{}\n",
        mesh.subnet,
        if mesh.up {
            ""
        } else {
            ", mesh DOWN: instances on other boards are unreachable"
        }
    );
    if let Some(e) = &mesh.error {
        out.push_str(&format!("  problem: {e}\n"));
    }
    for peer in &mesh.peers {
        let handshake = match peer.handshake_age_ms {
            Some(ms) => format!("handshake {}s ago", ms / 1000),
            None => "no handshake yet".to_string(),
        };
        out.push_str(&format!(
            "  {:<20} {:<16} via {:<22} {handshake}, {} B in, {} B out\n",
            peer.board, peer.subnet, peer.endpoint, peer.rx_bytes, peer.tx_bytes,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> NetworkReport {
        typed(network_json())
    }

    fn typed(json: serde_json::Value) -> NetworkReport {
        serde_json::from_value(json).expect("a /v1/network answer")
    }

    fn network_json() -> serde_json::Value {
        serde_json::json!({
            "generation": 7,
            "error": null,
            "services": [
                {"name": "api", "vip": "10.89.193.83", "port": 8080, "allow": [], "egress": "none"},
                {"name": "front", "vip": "10.89.44.69", "port": 8080, "allow": ["api", "cache"], "egress": "internet"},
                {"name": "other", "vip": "10.89.170.167", "port": null, "allow": ["api"], "egress": "internet"}
            ]
        })
    }

    #[test]
    fn a_service_shows_whom_it_calls_and_who_calls_it() {
        let text = render(&network(), "front").expect("front");
        assert_eq!(
            text,
            "service   front\naddress   10.89.44.69:8080 (also front and front.baton inside containers)\n\
             may call\n  api                  10.89.193.83:8080\n  cache                (no such service yet)\n\
             called by\n  nobody\negress    internet\nrules     generation 7\n"
        );
        let text = render(&network(), "api").expect("api");
        assert!(
            text.contains("may call\n  nothing\ncalled by\n  front\n  other\n"),
            "{text}"
        );
        assert!(
            text.contains("egress    none (no connections beyond the cluster)"),
            "{text}"
        );
    }

    #[test]
    fn the_mesh_is_listed_when_the_board_is_in_a_cluster() {
        let mut n = network_json();
        n["mesh"] = serde_json::json!({
            "subnet": "10.88.215.0/24", "up": true, "error": null,
            "peers": [
                {"board": "b2", "subnet": "10.88.237.0/24", "endpoint": "169.254.1.2:51820",
                 "key": "k", "handshake_age_ms": 12500, "rx_bytes": 272, "tx_bytes": 484},
                {"board": "b3", "subnet": "10.88.33.0/24", "endpoint": "169.254.1.3:51820",
                 "key": "k", "handshake_age_ms": null, "rx_bytes": 0, "tx_bytes": 0}
            ]
        });
        let text = render(&typed(n.clone()), "api").expect("api");
        let tail = text.split_once("mesh ").expect("a mesh section").1;
        assert_eq!(
            tail,
            "     containers here on 10.88.215.0/24\n\
             \x20 b2                   10.88.237.0/24   via 169.254.1.2:51820      handshake 12s ago, 272 B in, 484 B out\n\
             \x20 b3                   10.88.33.0/24    via 169.254.1.3:51820      no handshake yet, 0 B in, 0 B out\n"
        );
        n["mesh"]["up"] = serde_json::json!(false);
        assert!(render(&typed(n), "api")
            .expect("api")
            .contains("mesh DOWN: instances on other boards are unreachable"));
        assert!(!render(&network(), "api").expect("api").contains("mesh"));
    }

    #[test]
    fn unknown_services_and_failed_rules_are_said() {
        let err = render(&network(), "nope").unwrap_err().to_string();
        assert_eq!(
            err,
            "no service \"nope\" on this board's network (services: api, front, other)"
        );
        let mut failed = network_json();
        failed["error"] = serde_json::json!("nftables refused the batch");
        let text = render(&typed(failed), "other").expect("other");
        assert!(text.contains("address   10.89.170.167 "), "{text}");
        assert!(
            text.ends_with("rules     generation 7, NOT APPLIED: nftables refused the batch\n"),
            "{text}"
        );
    }
}
