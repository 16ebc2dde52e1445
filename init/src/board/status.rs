//! The board's state as the API reports it, shared between the boot sequence, the network
//! code and the API. Every field is behind its own lock, held only to copy in or out.

use std::sync::Mutex;
use std::time::Duration;

use baton_spec::ConfigError;
use serde::Serialize;

/// A boot step and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootStep {
    /// Name of the step, as in the boot sequence's doc comment (for example `modules`).
    pub step: String,
    /// Milliseconds the step took.
    pub ms: u64,
}

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressSource {
    /// Leased from a DHCP server.
    Dhcp,
    /// Configured in `cluster.toml`.
    Static,
    /// IPv4 link-local (169.254.0.0/16), chosen by the board.
    LinkLocal,
}

/// One configured address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// Interface name, for example `eth0`.
    pub interface: String,
    /// Address with prefix length, `a.b.c.d/n`.
    pub address: String,
    /// How the address was obtained.
    pub source: AddressSource,
}

/// Facts about the board that are known once the boot sequence has read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
}

/// The data partition as mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataPartition {
    /// Block device, for example `/dev/vda4`.
    pub device: String,
    /// Size of the file system in bytes.
    pub size_bytes: u64,
    /// Whether this boot grew the partition and its file system to fill the disk.
    pub grown: bool,
}

/// Shared, lock-protected board state.
#[derive(Debug, Default)]
pub struct State {
    info: Mutex<BoardInfo>,
    boot: Mutex<Vec<BootStep>>,
    errors: Mutex<Vec<String>>,
    config_errors: Mutex<Vec<ConfigError>>,
    addresses: Mutex<Vec<Address>>,
    token: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// Replaces the board facts.
    pub fn set_info(&self, info: BoardInfo) {
        *lock(&self.info) = info;
    }

    /// Changes the board facts in place.
    pub fn update_info(&self, f: impl FnOnce(&mut BoardInfo)) {
        f(&mut lock(&self.info));
    }

    /// A copy of the board facts.
    pub fn info(&self) -> BoardInfo {
        lock(&self.info).clone()
    }

    /// Records that a boot step finished after `took`.
    pub fn record_step(&self, step: &str, took: Duration) {
        lock(&self.boot).push(BootStep {
            step: step.to_string(),
            ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        });
    }

    /// The boot steps so far, in order.
    pub fn boot_steps(&self) -> Vec<BootStep> {
        lock(&self.boot).clone()
    }

    /// Records an error that the API should show (it is also printed on the console by the caller).
    pub fn add_error(&self, message: impl Into<String>) {
        lock(&self.errors).push(message.into());
    }

    /// Errors recorded so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }

    /// Replaces the configuration errors (they are recomputed whenever the config is read).
    pub fn set_config_errors(&self, errors: Vec<ConfigError>) {
        *lock(&self.config_errors) = errors;
    }

    /// Replaces the configuration errors of the files under `prefix` (e.g. `services/`).
    pub fn replace_config_errors(&self, prefix: &str, errors: Vec<ConfigError>) {
        let mut all = lock(&self.config_errors);
        all.retain(|e| !e.file.starts_with(prefix));
        all.extend(errors);
    }

    /// Current configuration errors.
    pub fn config_errors(&self) -> Vec<ConfigError> {
        lock(&self.config_errors).clone()
    }

    /// Replaces the addresses of `interface` with `addresses`.
    pub fn set_addresses(&self, interface: &str, addresses: Vec<Address>) {
        let mut all = lock(&self.addresses);
        all.retain(|a| a.interface != interface);
        all.extend(addresses);
        all.sort_by(|a, b| (&a.interface, &a.address).cmp(&(&b.interface, &b.address)));
    }

    /// All configured addresses.
    pub fn addresses(&self) -> Vec<Address> {
        lock(&self.addresses).clone()
    }

    /// Sets the API token; `None` means no valid token is configured and every
    /// authenticated request is refused.
    pub fn set_token(&self, token: Option<String>) {
        *lock(&self.token) = token;
    }

    /// The API token, if one is configured.
    pub fn token(&self) -> Option<String> {
        lock(&self.token).clone()
    }
}
