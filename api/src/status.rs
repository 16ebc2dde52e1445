//! The board itself: `GET /v1/health`, `GET /v1/status` and the power requests.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The body of `GET /v1/health`, the one request that needs no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `true`: the board answers.
    pub ok: bool,
}

/// The body of `GET /v1/status`. A field a board of another version does not send reads as
/// its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusReport {
    /// Host name in use.
    pub hostname: String,
    /// Board name from the image.
    pub board: String,
    /// Running kernel release.
    pub kernel: String,
    /// Milliseconds since the kernel started.
    pub uptime_ms: u64,
    /// Boot steps in order, with their durations.
    pub boot: Vec<BootStep>,
    /// Configured addresses.
    pub addresses: Vec<Address>,
    /// Memory use.
    pub memory: Memory,
    /// Files on the config partition.
    pub config_files: Vec<String>,
    /// The data partition (`null` until it is mounted, or without one).
    pub data: Option<DataPartition>,
    /// Errors since boot, newest last.
    pub errors: Vec<String>,
    /// Problems in the configuration files, by file, line and field.
    pub config_errors: Vec<ConfigError>,
    /// Whether the API speaks TLS (a board of an older version does not send it: `false`).
    pub api_tls: ApiTls,
    /// How the clock is kept.
    pub clock: ClockStatus,
    /// Whether services run in user namespaces of their own (an older board: unknown, `false`).
    pub user_namespaces: UserNamespaces,
    /// Spec files on the config partition that this boot found damaged or half-written and
    /// rewrote from the copy on the data partition.
    pub card_repairs: Vec<CardRepair>,
    /// The front door process (an older board does not send it: `null`).
    #[serde(default)]
    pub front_door: Option<crate::routes::FrontDoorStatus>,
    /// The build of baton the board runs (an older board does not send it: empty).
    pub version: String,
    /// The board's load as it is now (an older board does not send it, or the kernel's
    /// files could not be read in time: `null`).
    pub load: Option<BoardLoad>,
}

/// What the board's CPUs, memory and data partition are doing, read when asked. Rates come
/// from two readings: the CPU times only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardLoad {
    /// CPUs online.
    pub cpus: u32,
    /// CPU time since boot summed over the CPUs, in ms: all of it.
    pub cpu_total_ms: u64,
    /// Of that, the time not idle (nor waiting for I/O).
    pub cpu_busy_ms: u64,
    /// Memory in all, in bytes.
    pub memory_total_bytes: u64,
    /// Memory available to programs (the kernel's `MemAvailable`), in bytes.
    pub memory_available_bytes: u64,
    /// Bytes used on the data partition (`null` without one).
    pub data_used_bytes: Option<u64>,
    /// Bytes free on it.
    pub data_free_bytes: Option<u64>,
}

/// A spec file of the config partition rewritten from the data partition's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRepair {
    /// The file, relative to the partition's root (`services/web.toml`).
    pub file: String,
    /// What was wrong with it (an interrupted write, a file that does not parse, ...).
    pub reason: String,
}

/// Whether services run in user namespaces of their own, their root mapped to ids of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserNamespaces {
    /// `true` when the kernel can idmap the image store's layers: every service without
    /// `host_ids` runs in a user namespace of its own.
    pub supported: bool,
    /// Why not, when not: then only services with `host_ids` start (the others fail with this
    /// reason instead of running as the board's root).
    pub reason: Option<String>,
}

/// How the board serves its API on port 7070.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiTls {
    /// `true` when the API speaks TLS with a certificate issued from the cluster CA; plain HTTP
    /// on the port then answers only `GET /v1/health` and redirects.
    pub enabled: bool,
    /// Why the API serves plain HTTP, when it does (no `ca.pem` on the config partition, or a
    /// CA that could not be read).
    pub reason: Option<String>,
}

/// How the board keeps its clock (SNTP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClockStatus {
    /// Whether a time server's answer has been taken since boot.
    pub synced: bool,
    /// Time server addresses known in the last round.
    pub servers: u32,
    /// Steps refused since boot (too large for one server, or before the saved time).
    pub refused_steps: u64,
    /// What limits the clock's trust, for example only one known server.
    pub note: Option<String>,
}

/// Memory figures in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Resident set size of the init.
    pub init_rss_bytes: u64,
    /// Memory in use by the whole system (total minus available).
    pub system_used_bytes: u64,
}

/// A boot step and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStep {
    /// Name of the step, as in the boot sequence's doc comment (for example `modules`).
    pub step: String,
    /// Milliseconds the step took.
    pub ms: u64,
}

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressSource {
    /// Leased from a DHCP server (`dhcp`).
    Dhcp,
    /// Configured in `cluster.toml` (`static`).
    Static,
    /// IPv4 link-local (169.254.0.0/16), chosen by the board (`link-local`).
    LinkLocal,
    /// A word this build does not know, from a board of another version (boards of this
    /// version never send it; shown as `unknown`).
    #[serde(other)]
    Unknown,
}

impl AddressSource {
    /// The name the API shows (`dhcp`, `static`, `link-local`).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSource::Dhcp => "dhcp",
            AddressSource::Static => "static",
            AddressSource::LinkLocal => "link-local",
            AddressSource::Unknown => "unknown",
        }
    }
}

/// One configured address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Interface name, for example `eth0`.
    pub interface: String,
    /// Address with prefix length, `a.b.c.d/n`.
    pub address: String,
    /// How the address was obtained.
    pub source: AddressSource,
}

/// Facts about the board that are known once the boot sequence has read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardInfo {
    /// Host name in use.
    pub hostname: String,
    /// Board name from the image (`qemu-virt`, `pi4b`, ...).
    pub board: String,
    /// Running kernel release (`uname -r`).
    pub kernel: String,
    /// Files on the config partition, relative to its root, sorted.
    pub config_files: Vec<String>,
    /// The data partition, once mounted.
    pub data: Option<DataPartition>,
    /// Spec files of the config partition repaired from the data partition at boot.
    #[serde(default)]
    pub card_repairs: Vec<CardRepair>,
}

/// The data partition as mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPartition {
    /// Block device, for example `/dev/vda4`.
    pub device: String,
    /// Size of the file system in bytes.
    pub size_bytes: u64,
    /// Whether this boot grew the partition and its file system to fill the disk.
    pub grown: bool,
    /// Whether the file system enforces project quotas, which `resources.disk` needs (a card
    /// made by an older builder lacks them: `false`, as from a board of an older version).
    #[serde(default)]
    pub disk_quotas: bool,
    /// Why it does not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quotas_missing: Option<String>,
}

/// A power request the board takes: the last part of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    /// `POST /v1/reboot`: a clean reboot.
    Reboot,
    /// `POST /v1/halt`: a clean halt.
    Halt,
    /// `POST /v1/poweroff`: a clean power-off.
    Poweroff,
}

/// The body of an accepted power request (HTTP 202); the board goes down right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerAccepted {
    /// What the board is about to do.
    pub accepted: PowerAction,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> StatusReport {
        StatusReport {
            hostname: "pi-a".into(),
            board: "qemu-virt".into(),
            kernel: "6.12.1".into(),
            uptime_ms: 1234,
            boot: vec![BootStep {
                step: "mounts".into(),
                ms: 3,
            }],
            addresses: vec![Address {
                interface: "eth0".into(),
                address: "169.254.3.1/16".into(),
                source: AddressSource::LinkLocal,
            }],
            memory: Memory {
                init_rss_bytes: 4096,
                system_used_bytes: 1 << 20,
            },
            config_files: vec!["cluster.toml".into()],
            data: None,
            user_namespaces: UserNamespaces {
                supported: false,
                reason: Some("tmpfs".into()),
            },
            errors: vec!["something failed".into()],
            config_errors: vec![ConfigError {
                file: "cluster.toml".into(),
                line: Some(3),
                field: "network.mode".into(),
                message: "bad".into(),
            }],
            api_tls: ApiTls {
                enabled: true,
                reason: None,
            },
            clock: ClockStatus {
                synced: true,
                servers: 1,
                refused_steps: 2,
                note: Some("only one".into()),
            },
            card_repairs: vec![CardRepair {
                file: "services/web.toml".into(),
                reason: "an interrupted write".into(),
            }],
            front_door: None,
            version: "0.1.0".into(),
            load: Some(BoardLoad {
                cpus: 4,
                cpu_total_ms: 8000,
                cpu_busy_ms: 1000,
                memory_total_bytes: 1 << 30,
                memory_available_bytes: 1 << 29,
                data_used_bytes: Some(5),
                data_free_bytes: None,
            }),
        }
    }

    #[test]
    fn the_status_report_keeps_its_json_shape() {
        let expected = json!({
            "hostname": "pi-a", "board": "qemu-virt", "kernel": "6.12.1", "uptime_ms": 1234,
            "boot": [{"step": "mounts", "ms": 3}],
            "addresses": [{"interface": "eth0", "address": "169.254.3.1/16", "source": "link-local"}],
            "memory": {"init_rss_bytes": 4096, "system_used_bytes": 1048576},
            "config_files": ["cluster.toml"],
            "data": null,
            "errors": ["something failed"],
            "config_errors": [{"file": "cluster.toml", "line": 3, "field": "network.mode", "message": "bad"}],
            "clock": {"synced": true, "servers": 1, "refused_steps": 2, "note": "only one"},
            "api_tls": {"enabled": true, "reason": null},
            "user_namespaces": {"supported": false, "reason": "tmpfs"},
            "card_repairs": [{"file": "services/web.toml", "reason": "an interrupted write"}],
            "front_door": null,
            "version": "0.1.0",
            "load": {"cpus": 4, "cpu_total_ms": 8000, "cpu_busy_ms": 1000,
                "memory_total_bytes": 1_073_741_824u64, "memory_available_bytes": 536_870_912u64,
                "data_used_bytes": 5, "data_free_bytes": null},
        });
        assert_eq!(serde_json::to_value(report()).unwrap(), expected);
        let back: StatusReport = serde_json::from_value(expected).unwrap();
        assert_eq!(back, report());
        let data = DataPartition {
            device: "/dev/vda4".into(),
            size_bytes: 10,
            grown: true,
            disk_quotas: false,
            disk_quotas_missing: Some("made without".into()),
        };
        let text = json!({"device": "/dev/vda4", "size_bytes": 10, "grown": true,
            "disk_quotas": false, "disk_quotas_missing": "made without"});
        assert_eq!(serde_json::to_value(&data).unwrap(), text);
        // A board of an older version says nothing about quotas: none.
        let old: DataPartition =
            serde_json::from_value(json!({"device": "/dev/vda4", "size_bytes": 10, "grown": true}))
                .unwrap();
        assert!(!old.disk_quotas && old.disk_quotas_missing.is_none());
    }

    #[test]
    fn address_sources_and_power_actions_are_lowercase_words() {
        for (source, word) in [
            (AddressSource::Dhcp, "dhcp"),
            (AddressSource::Static, "static"),
            (AddressSource::LinkLocal, "link-local"),
        ] {
            assert_eq!(serde_json::to_value(source).unwrap(), json!(word));
            assert_eq!(source.as_str(), word);
        }
        let accepted = PowerAccepted {
            accepted: PowerAction::Poweroff,
        };
        assert_eq!(
            serde_json::to_value(accepted).unwrap(),
            json!({"accepted": "poweroff"})
        );
        assert_eq!(
            serde_json::to_value(Health { ok: true }).unwrap(),
            json!({"ok": true})
        );
    }
}
