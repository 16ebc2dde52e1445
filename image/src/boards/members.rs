//! The cluster as `baton status` shows it: one row per member of a board's `GET /v1/cluster`.
//!
//! Boards of several versions answer it, so [`ClusterView`] reads leniently: unknown fields are
//! ignored, a missing field takes its default and shows as `-`, and a member state this build
//! does not know shows as `-`.

use baton_api::{ClusterView, MemberStatus, MemberView};

use super::table;

/// The column titles of the member table.
pub const HEADER: [&str; 8] = [
    "BOARD",
    "STATE",
    "ADDRESS",
    "LABELS",
    "CPU",
    "MEMORY",
    "LAST HEARD",
    "KEY",
];

/// Renders a `GET /v1/cluster` body: a summary line, then the member table.
pub fn render(cluster: &ClusterView) -> String {
    let generation = if cluster.generation > 0 {
        format!(", generation {}", cluster.generation)
    } else {
        String::new()
    };
    let members = &cluster.members;
    let alive = members
        .iter()
        .filter(|m| matches!(m.state, MemberStatus::Alive | MemberStatus::Myself))
        .count();
    let mut out = format!(
        "cluster   {} (seen from {}{generation}): {} members, {alive} up\n\n",
        or_dash(cluster.cluster.clone()),
        or_dash(cluster.board.clone()),
        members.len()
    );
    let rows: Vec<Vec<String>> = members.iter().map(row).collect();
    out.push_str(&table::render(&HEADER, &rows));
    for c in &cluster.name_conflicts {
        out.push_str(&format!(
            "\nname conflict: {} is bound to key {}, and key {} claims it too (refused); if that \
             board got a new card, run `baton boards forget {}`",
            c.name, c.bound, c.claimed, c.name
        ));
    }
    let notes = notes(cluster);
    for line in &notes {
        out.push('\n');
        out.push_str(line);
    }
    if !cluster.name_conflicts.is_empty() || !notes.is_empty() {
        out.push('\n');
    }
    out
}

/// What else an operator should know: boards that tombstones wait for but that are not members,
/// and sync requests refused as not fresh.
fn notes(cluster: &ClusterView) -> Vec<String> {
    let mut notes = Vec::new();
    let absent: Vec<&str> = cluster
        .known_boards
        .iter()
        .filter(|k| !cluster.members.iter().any(|m| &m.name == *k))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        notes.push(format!(
            "known, not a member: {} (deleted services' tombstones wait for them; run `baton boards \
             forget NAME` for a board that is gone for good)",
            absent.join(", ")
        ));
    }
    if cluster.sync_refused > 0 {
        notes.push(format!(
            "sync: {} requests refused as not fresh since this board started (replayed, too old, \
             or from an older build)",
            cluster.sync_refused
        ));
    }
    notes
}

/// One member's cells, in [`HEADER`]'s order.
pub fn row(member: &MemberView) -> Vec<String> {
    let labels: Vec<String> = member
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let state = match member.state {
        MemberStatus::Unknown => "-",
        known => known.as_str(),
    };
    vec![
        or_dash(member.name.clone()),
        state.to_string(),
        or_dash(member.addresses.join(",")),
        or_dash(labels.join(",")),
        member.capacity.map_or("-".into(), |c| cpus(c.cpu_millis)),
        member
            .capacity
            .map_or("-".into(), |c| bytes(c.memory_bytes)),
        member.last_heard_ms.map_or("-".into(), last_heard),
        // None: a board of a release before board keys (or an answer from one).
        or_dash(member.key.clone().unwrap_or_default()),
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

    fn typed<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).expect("a cluster view")
    }

    fn three_boards() -> ClusterView {
        typed(json!({
            "cluster": "home", "board": "pi-a", "generation": 3,
            "members": [
                {"name": "pi-a", "state": "self", "addresses": ["169.254.3.1"],
                 "api": "http://169.254.3.1:7070", "labels": {"disk": "ssd"},
                 "capacity": {"cpu_millis": 4000, "memory_bytes": 805306368u64},
                 "last_heard_ms": null, "generation": 3, "key": "0a1b2c3d4e5f6071"},
                {"name": "pi-b", "state": "alive", "addresses": ["169.254.3.2", "192.168.1.12"],
                 "api": "http://169.254.3.2:7070", "labels": {"disk": "sd", "zone": "attic"},
                 "capacity": {"cpu_millis": 4000, "memory_bytes": 4294967296u64},
                 "last_heard_ms": 850, "generation": 2, "key": "8899aabbccddeeff"},
                {"name": "pi-c", "state": "dead", "addresses": ["169.254.3.3"],
                 "labels": {}, "capacity": {"cpu_millis": 1500, "memory_bytes": 1610612736u64},
                 "last_heard_ms": 42000, "future_field": [1, 2]}
            ]
        }))
    }

    #[test]
    fn alive_dead_and_self_members_line_up_in_one_table() {
        let expected = [
            "cluster   home (seen from pi-a, generation 3): 3 members, 2 up",
            "",
            "BOARD  STATE  ADDRESS                   LABELS              CPU  MEMORY   LAST HEARD  KEY",
            "pi-a   self   169.254.3.1               disk=ssd            4    768 MiB  -           0a1b2c3d4e5f6071",
            "pi-b   alive  169.254.3.2,192.168.1.12  disk=sd,zone=attic  4    4 GiB    now         8899aabbccddeeff",
            "pi-c   dead   169.254.3.3               -                   1.5  1.5 GiB  42s ago     -",
            "",
        ];
        assert_eq!(render(&three_boards()), expected.join("\n"));
        let mut conflicted = three_boards();
        conflicted.name_conflicts = vec![baton_api::NameConflictView {
            name: "pi-c".into(),
            bound: "1111".into(),
            claimed: "2222".into(),
            at_ms: 5,
        }];
        let text = render(&conflicted);
        assert!(
            text.ends_with(
                "\nname conflict: pi-c is bound to key 1111, and key 2222 claims it too \
                 (refused); if that board got a new card, run `baton boards forget pi-c`\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn absent_known_boards_and_refused_syncs_are_told() {
        let mut view = three_boards();
        view.known_boards = vec!["pi-a".into(), "pi-c".into(), "pi-old".into()];
        view.sync_refused = 2;
        let text = render(&view);
        assert!(
            text.ends_with(
                "\nknown, not a member: pi-old (deleted services' tombstones wait for them; run \
                 `baton boards forget NAME` for a board that is gone for good)\nsync: 2 requests \
                 refused as not fresh since this board started (replayed, too old, or from an \
                 older build)\n"
            ),
            "{text}"
        );
        assert!(!render(&three_boards()).contains("known, not a member"));
    }

    #[test]
    fn missing_fields_show_as_dashes() {
        let member = typed(json!({"name": "pi-d"}));
        assert_eq!(row(&member), ["pi-d", "-", "-", "-", "-", "-", "-", "-"]);
        let newer = typed(json!({"name": "", "state": "napping", "labels": {"n": "2"}}));
        assert_eq!(row(&newer), ["-", "-", "-", "n=2", "-", "-", "-", "-"]);
        // Fields of the wrong type are not a cluster view at all (the CLI says so).
        let odd = json!({"name": "", "state": 7, "addresses": "x", "labels": {"n": 2},
                         "capacity": {"cpu_millis": "lots"}, "last_heard_ms": -1});
        assert!(serde_json::from_value::<MemberView>(odd).is_err());
    }

    #[test]
    fn an_empty_or_strange_answer_still_renders() {
        let text = render(&typed(json!({})));
        assert_eq!(
            text,
            "cluster   - (seen from -): 0 members, 0 up\n\n\
             BOARD  STATE  ADDRESS  LABELS  CPU  MEMORY  LAST HEARD  KEY\n"
        );
        assert!(serde_json::from_value::<ClusterView>(json!([1])).is_err());
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
