//! `GET /v1/cluster`: the cluster as the board answering sees it.
//!
//! Boards of several versions may answer, so a client reads these types leniently: a field a
//! board does not send takes its default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `GET /v1/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterView {
    /// Cluster name.
    pub cluster: String,
    /// The board answering.
    pub board: String,
    /// Its generation (grows with every boot).
    pub generation: u64,
    /// Every board, the one answering first, then by name.
    pub members: Vec<MemberView>,
    /// Local spec changes that lost to newer versions from other boards.
    pub conflicts: Vec<Conflict>,
    /// Specs in force cluster-wide that do not validate on this board: the problem, by file.
    pub spec_errors: BTreeMap<String, String>,
    /// Instances that placement could not put anywhere (`instance N: why`), by service.
    pub unplaced: BTreeMap<String, Vec<String>>,
    /// Digest of the cluster's specs as this board holds them.
    pub specs_digest: String,
    /// State refused because its board name is bound to another key, oldest first.
    pub name_conflicts: Vec<NameConflictView>,
    /// The boards this board knows to be in the cluster (tombstones wait for each of them); an
    /// older board does not send it: empty.
    pub known_boards: Vec<String>,
    /// Sync requests this board refused as not fresh (replayed, too old, too far ahead, or from
    /// an older build) since it started.
    pub sync_refused: u64,
}

/// A board name claimed by a key other than the one it is bound to (see `docs/cluster.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NameConflictView {
    /// The board name.
    pub name: String,
    /// Fingerprint of the key the name is bound to.
    pub bound: String,
    /// Fingerprint of the key that claimed it too.
    pub claimed: String,
    /// When the claim was refused (Unix milliseconds).
    pub at_ms: u64,
}

/// The body of `DELETE /v1/cluster/boards/{name}`: what forgetting a board did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardForgotten {
    /// The board named.
    pub board: String,
    /// Whether it was registered (`false`: there was nothing to forget).
    pub forgotten: bool,
    /// Tombstones past their time that waited for no other board: dropped at the next round.
    pub released: Vec<String>,
    /// Tombstones past their time that still wait, with the boards they wait for.
    pub waiting: BTreeMap<String, Vec<String>>,
    /// Fingerprint of the key the board's name was bound to, now unbound (the next key to sign
    /// in that name is bound); `null` when the name had no binding.
    pub key: Option<String>,
}

/// Whether a member is up, as the board answering sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// The board answering (`self`).
    #[serde(rename = "self")]
    Myself,
    /// Answering probes (`alive`).
    Alive,
    /// Declared dead by the failure detector, or left (`dead`).
    Dead,
    /// A word this build does not know, from a board of another version, or none at all
    /// (boards never send it).
    #[default]
    #[serde(other)]
    Unknown,
}

impl MemberStatus {
    /// The word the API shows (`self`, `alive`, `dead`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Myself => "self",
            MemberStatus::Alive => "alive",
            MemberStatus::Dead => "dead",
            MemberStatus::Unknown => "unknown",
        }
    }
}

/// One board of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberView {
    /// Host name.
    pub name: String,
    /// Whether it is up.
    pub state: MemberStatus,
    /// Addresses it is reached at.
    pub addresses: Vec<String>,
    /// Its API, `https://ip:port` (`http://` from a board without a cluster CA), once known.
    pub api: Option<String>,
    /// Labels (`[board] labels` in its `cluster.toml`).
    pub labels: BTreeMap<String, String>,
    /// What it offers to services, once known.
    pub capacity: Option<Capacity>,
    /// Milliseconds since it was last heard from; `null` for the board answering.
    pub last_heard_ms: Option<u64>,
    /// Its generation (grows with every boot).
    pub generation: u64,
    /// Fingerprint of the board key that signed what it publishes; `null` for a board of a
    /// release before board keys, whose name any holder of the cluster key could use.
    pub key: Option<String>,
}

/// CPU and memory a board offers to services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Thousandths of a core.
    pub cpu_millis: u64,
    /// Bytes.
    pub memory_bytes: u64,
}

/// A board's local spec change that lost to a newer version elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conflict {
    /// Service name.
    pub name: String,
    /// The board whose local copy differs.
    pub board: String,
    /// Version of the board's copy.
    pub local: SpecVersion,
    /// Version in force.
    pub winner: SpecVersion,
}

/// When a spec was changed, and on which board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecVersion {
    /// Hybrid logical time in milliseconds.
    pub time: u64,
    /// The board that made the change.
    pub board: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> ClusterView {
        ClusterView {
            cluster: "home".into(),
            board: "pi-a".into(),
            generation: 7,
            members: vec![
                MemberView {
                    name: "pi-a".into(),
                    state: MemberStatus::Myself,
                    addresses: vec!["192.0.2.1".into()],
                    api: Some("http://192.0.2.1:7070".into()),
                    labels: BTreeMap::from([("disk".into(), "ssd".into())]),
                    capacity: Some(Capacity {
                        cpu_millis: 4000,
                        memory_bytes: 1 << 30,
                    }),
                    last_heard_ms: None,
                    generation: 7,
                    key: Some("0a1b2c3d4e5f6071".into()),
                },
                MemberView {
                    name: "pi-b".into(),
                    state: MemberStatus::Dead,
                    addresses: vec!["192.0.2.2".into()],
                    api: None,
                    labels: BTreeMap::new(),
                    capacity: None,
                    last_heard_ms: Some(1500),
                    generation: 3,
                    key: None,
                },
            ],
            conflicts: vec![Conflict {
                name: "web".into(),
                board: "pi-a".into(),
                local: SpecVersion {
                    time: 10,
                    board: "pi-a".into(),
                },
                winner: SpecVersion {
                    time: 12,
                    board: "pi-b".into(),
                },
            }],
            spec_errors: BTreeMap::from([("db.toml".into(), "db.toml: bad".into())]),
            unplaced: BTreeMap::from([("web".into(), vec!["instance 2: no room".into()])]),
            specs_digest: "0123456789abcdef".into(),
            name_conflicts: vec![NameConflictView {
                name: "pi-c".into(),
                bound: "1111".into(),
                claimed: "2222".into(),
                at_ms: 9,
            }],
            known_boards: vec!["pi-b".into()],
            sync_refused: 2,
        }
    }

    #[test]
    fn the_cluster_view_keeps_its_json_shape() {
        let wire = json!({
            "cluster": "home", "board": "pi-a", "generation": 7,
            "members": [
                {"name": "pi-a", "state": "self", "addresses": ["192.0.2.1"],
                 "api": "http://192.0.2.1:7070", "labels": {"disk": "ssd"},
                 "capacity": {"cpu_millis": 4000, "memory_bytes": 1073741824_u64},
                 "last_heard_ms": null, "generation": 7, "key": "0a1b2c3d4e5f6071"},
                {"name": "pi-b", "state": "dead", "addresses": ["192.0.2.2"], "api": null,
                 "labels": {}, "capacity": null, "last_heard_ms": 1500, "generation": 3,
                 "key": null},
            ],
            "conflicts": [{"name": "web", "board": "pi-a",
                           "local": {"time": 10, "board": "pi-a"},
                           "winner": {"time": 12, "board": "pi-b"}}],
            "spec_errors": {"db.toml": "db.toml: bad"},
            "unplaced": {"web": ["instance 2: no room"]},
            "specs_digest": "0123456789abcdef",
            "name_conflicts": [{"name": "pi-c", "bound": "1111", "claimed": "2222", "at_ms": 9}],
            "known_boards": ["pi-b"], "sync_refused": 2,
        });
        assert_eq!(serde_json::to_value(view()).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ClusterView>(wire).unwrap(), view());
        for s in [
            MemberStatus::Myself,
            MemberStatus::Alive,
            MemberStatus::Dead,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }

    #[test]
    fn an_older_board_s_view_reads_with_defaults() {
        let old: ClusterView = serde_json::from_value(json!({
            "cluster": "home", "board": "pi-a",
            "members": [{"name": "pi-a", "state": "self", "extra": 1}],
        }))
        .unwrap();
        assert_eq!(old.members[0].state, MemberStatus::Myself);
        let newer: MemberView =
            serde_json::from_value(json!({"name": "pi-b", "state": "napping"})).unwrap();
        assert_eq!(newer.state, MemberStatus::Unknown);
        let silent: MemberView = serde_json::from_value(json!({"name": "pi-c"})).unwrap();
        assert_eq!(silent.state, MemberStatus::Unknown);
        assert_eq!(old.members[0].capacity, None);
        assert!(old.conflicts.is_empty());
    }
}
