//! The cluster as `baton status` shows it: one row per member of a board's `GET /v1/cluster`.
//!
//! The JSON is read leniently, as boards of several versions answer it: unknown fields are
//! ignored and a missing or odd field shows as `-` rather than failing the command.

use serde_json::Value;

use super::table;

/// The column titles of the member table.
pub const HEADER: [&str; 7] = [
    "BOARD",
    "STATE",
    "ADDRESS",
    "LABELS",
    "CPU",
    "MEMORY",
    "LAST HEARD",
];

/// Renders a `GET /v1/cluster` body: a summary line, then the member table.
pub fn render(cluster: &Value) -> String {
    let text = |key: &str| cluster[key].as_str().unwrap_or("-").to_string();
    let members: &[Value] = cluster["members"].as_array().map_or(&[], Vec::as_slice);
    let generation = cluster["generation"]
        .as_u64()
        .map(|g| format!(", generation {g}"))
        .unwrap_or_default();
    let alive = members
        .iter()
        .filter(|m| matches!(m["state"].as_str(), Some("alive" | "self")))
        .count();
    let mut out = format!(
        "cluster   {} (seen from {}{generation}): {} members, {alive} up\n\n",
        text("cluster"),
        text("board"),
        members.len()
    );
    let rows: Vec<Vec<String>> = members.iter().map(row).collect();
    out.push_str(&table::render(&HEADER, &rows));
    out
}

/// One member's cells, in [`HEADER`]'s order.
pub fn row(member: &Value) -> Vec<String> {
    let text = |key: &str| {
        member[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("-")
            .to_string()
    };
    let addresses: Vec<&str> = member["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let labels: Vec<String> = member["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v.as_str() {
            Some(s) => format!("{k}={s}"),
            None => format!("{k}={v}"),
        })
        .collect();
    let capacity = &member["capacity"];
    vec![
        text("name"),
        text("state"),
        or_dash(addresses.join(",")),
        or_dash(labels.join(",")),
        capacity["cpu_millis"].as_u64().map_or("-".into(), cpus),
        capacity["memory_bytes"].as_u64().map_or("-".into(), bytes),
        member["last_heard_ms"]
            .as_u64()
            .map_or("-".into(), last_heard),
    ]
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// Thousandths of a CPU as CPUs: 4000 → `4`, 1500 → `1.5`, 250 → `0.25`.
pub fn cpus(millis: u64) -> String {
    let whole = millis / 1000;
    let frac = millis % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A size in binary units: `768 MiB`, `4 GiB`, `1.5 GiB`, `512 KiB`.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if n >= GIB {
        let tenths = (n * 10 + GIB / 2) / GIB;
        if tenths % 10 == 0 {
            format!("{} GiB", tenths / 10)
        } else {
            format!("{}.{} GiB", tenths / 10, tenths % 10)
        }
    } else if n >= MIB {
        format!("{} MiB", (n + MIB / 2) / MIB)
    } else if n >= KIB {
        format!("{} KiB", (n + KIB / 2) / KIB)
    } else {
        format!("{n} B")
    }
}

/// How long ago a member was last heard: `now` under a second, then `3s ago`, `2m ago`, `1h ago`.
pub fn last_heard(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => "now".into(),
        1..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn three_boards() -> Value {
        json!({
            "cluster": "home", "board": "pi-a", "generation": 3,
            "members": [
                {"name": "pi-a", "state": "self", "addresses": ["169.254.3.1"],
                 "api": "http://169.254.3.1:7070", "labels": {"disk": "ssd"},
                 "capacity": {"cpu_millis": 4000, "memory_bytes": 805306368u64},
                 "last_heard_ms": null, "generation": 3},
                {"name": "pi-b", "state": "alive", "addresses": ["169.254.3.2", "192.168.1.12"],
                 "api": "http://169.254.3.2:7070", "labels": {"disk": "sd", "zone": "attic"},
                 "capacity": {"cpu_millis": 4000, "memory_bytes": 4294967296u64},
                 "last_heard_ms": 850, "generation": 2},
                {"name": "pi-c", "state": "dead", "addresses": ["169.254.3.3"],
                 "labels": {}, "capacity": {"cpu_millis": 1500, "memory_bytes": 1610612736u64},
                 "last_heard_ms": 42000, "future_field": [1, 2]}
            ]
        })
    }

    #[test]
    fn alive_dead_and_self_members_line_up_in_one_table() {
        let expected = [
            "cluster   home (seen from pi-a, generation 3): 3 members, 2 up",
            "",
            "BOARD  STATE  ADDRESS                   LABELS              CPU  MEMORY   LAST HEARD",
            "pi-a   self   169.254.3.1               disk=ssd            4    768 MiB  -",
            "pi-b   alive  169.254.3.2,192.168.1.12  disk=sd,zone=attic  4    4 GiB    now",
            "pi-c   dead   169.254.3.3               -                   1.5  1.5 GiB  42s ago",
            "",
        ];
        assert_eq!(render(&three_boards()), expected.join("\n"));
    }

    #[test]
    fn missing_fields_show_as_dashes() {
        let member = json!({"name": "pi-d"});
        assert_eq!(row(&member), ["pi-d", "-", "-", "-", "-", "-", "-"]);
        let odd = json!({"name": "", "state": 7, "addresses": "x", "labels": {"n": 2},
                         "capacity": {"cpu_millis": "lots"}, "last_heard_ms": -1});
        assert_eq!(row(&odd), ["-", "-", "-", "n=2", "-", "-", "-"]);
    }

    #[test]
    fn an_empty_or_strange_answer_still_renders() {
        let text = render(&json!({}));
        assert_eq!(
            text,
            "cluster   - (seen from -): 0 members, 0 up\n\n\
             BOARD  STATE  ADDRESS  LABELS  CPU  MEMORY  LAST HEARD\n"
        );
        assert_eq!(render(&json!([1])), text);
    }

    #[test]
    fn sizes_cpus_and_ages_read_like_a_person_wrote_them() {
        assert_eq!(bytes(805306368), "768 MiB");
        assert_eq!(bytes(4 << 30), "4 GiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(512 << 10), "512 KiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(cpus(4000), "4");
        assert_eq!(cpus(1500), "1.5");
        assert_eq!(cpus(250), "0.25");
        assert_eq!(cpus(0), "0");
        assert_eq!(last_heard(0), "now");
        assert_eq!(last_heard(999), "now");
        assert_eq!(last_heard(3000), "3s ago");
        assert_eq!(last_heard(59_999), "59s ago");
        assert_eq!(last_heard(120_000), "2m ago");
        assert_eq!(last_heard(7_200_000), "2h ago");
    }
}
