//! What a board's API says about its cluster, read the way the cluster tests compare it.

use std::collections::{BTreeMap, BTreeSet};

use baton::client::Client;

/// A board's host name: derived from the MAC of its first NIC (`52:54:00:ba:00:NN`).
pub fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

/// The JSON body of a GET that answered 200.
pub fn get(client: &Client, path: &str) -> Option<serde_json::Value> {
    match client.request("GET", path) {
        Ok((200, v)) => Some(v),
        _ => None,
    }
}

/// Members of the board's view by state: name → state.
pub fn members(client: &Client) -> Option<BTreeMap<String, String>> {
    let view = get(client, "/v1/cluster")?;
    Some(
        view["members"]
            .as_array()?
            .iter()
            .filter_map(|m| {
                Some((
                    m["name"].as_str()?.to_string(),
                    m["state"].as_str()?.to_string(),
                ))
            })
            .collect(),
    )
}

/// The names among `states` that are alive (the board itself included).
pub fn alive(states: &BTreeMap<String, String>) -> BTreeSet<String> {
    states
        .iter()
        .filter(|(_, s)| *s == "alive" || *s == "self")
        .map(|(n, _)| n.clone())
        .collect()
}

/// The names of the services the board lists.
pub fn service_names(client: &Client) -> Option<BTreeSet<String>> {
    let services = get(client, "/v1/services")?;
    Some(
        services["services"]
            .as_array()?
            .iter()
            .filter_map(|s| Some(s["name"].as_str()?.to_string()))
            .collect(),
    )
}

/// Running instances of `service` by board, as the board's API shows them.
pub fn running_on(client: &Client, service: &str) -> Option<BTreeMap<String, usize>> {
    let services = get(client, "/v1/services")?;
    let svc = services["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?;
    let mut boards = BTreeMap::new();
    for i in svc["instances"].as_array()? {
        if i["state"] == "running" {
            *boards.entry(i["board"].as_str()?.to_string()).or_insert(0) += 1;
        }
    }
    Some(boards)
}
