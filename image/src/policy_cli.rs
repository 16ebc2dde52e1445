//! `baton policy <service>`: the effective network policy of a service, from the board's
//! `GET /v1/network`: its virtual IP and port, the services it may call (with theirs), the services
//! that may call it, and its egress.

use anyhow::bail;

use crate::client::Client;

/// Prints the policy of `service` as the board enforces it.
pub fn run(client: &Client, service: &str) -> anyhow::Result<()> {
    let (code, body) = client.request("GET", "/v1/network")?;
    if code != 200 {
        bail!(
            "GET /v1/network: HTTP {code} {}",
            body["error"].as_str().unwrap_or("")
        );
    }
    print!("{}", render(&body, service)?);
    Ok(())
}

fn endpoint(s: &serde_json::Value) -> String {
    match (s["vip"].as_str(), s["port"].as_u64()) {
        (Some(vip), Some(port)) => format!("{vip}:{port}"),
        (Some(vip), None) => vip.to_string(),
        _ => "-".to_string(),
    }
}

/// The text for `service` from a `/v1/network` answer.
pub fn render(network: &serde_json::Value, service: &str) -> anyhow::Result<String> {
    let services: &[serde_json::Value] = network["services"].as_array().map_or(&[], Vec::as_slice);
    let Some(me) = services.iter().find(|s| s["name"] == service) else {
        let known: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
        bail!(
            "no service {service:?} on this board's network (services: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    };
    let mut out = format!(
        "service   {service}\naddress   {} (also {service} and {service}.baton inside containers)\n",
        endpoint(me)
    );
    out.push_str("may call\n");
    let allow = names(&me["allow"]);
    if allow.is_empty() {
        out.push_str("  nothing\n");
    }
    for name in &allow {
        match services.iter().find(|s| s["name"] == name.as_str()) {
            Some(s) => out.push_str(&format!("  {name:<20} {}\n", endpoint(s))),
            None => out.push_str(&format!("  {name:<20} (no such service yet)\n")),
        }
    }
    out.push_str("called by\n");
    let callers: Vec<&str> = services
        .iter()
        .filter(|s| names(&s["allow"]).iter().any(|a| a == service))
        .filter_map(|s| s["name"].as_str())
        .collect();
    if callers.is_empty() {
        out.push_str("  nobody\n");
    }
    for caller in callers {
        out.push_str(&format!("  {caller}\n"));
    }
    let egress = me["egress"].as_str().unwrap_or("-");
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
        network["generation"].as_u64().unwrap_or(0),
        network["error"]
            .as_str()
            .map(|e| format!(", NOT APPLIED: {e}"))
            .unwrap_or_default()
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> serde_json::Value {
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
    fn unknown_services_and_failed_rules_are_said() {
        let err = render(&network(), "nope").unwrap_err().to_string();
        assert_eq!(
            err,
            "no service \"nope\" on this board's network (services: api, front, other)"
        );
        let mut failed = network();
        failed["error"] = serde_json::json!("nftables refused the batch");
        let text = render(&failed, "other").expect("other");
        assert!(text.contains("address   10.89.170.167 "), "{text}");
        assert!(
            text.ends_with("rules     generation 7, NOT APPLIED: nftables refused the batch\n"),
            "{text}"
        );
    }
}
