//! The board's state as the API reports it, shared between the boot sequence, the network
//! code and the API. Every field is behind its own lock, held only to copy in or out.

use std::sync::Mutex;
use std::time::Duration;

use baton_spec::ConfigError;

/// The board facts the API reports are its types ([`baton_api`]).
pub use baton_api::{Address, AddressSource, ApiTls, BoardInfo, BootStep, DataPartition};

/// What the board reports about itself (facts, boot steps, errors, addresses, the token), shared
/// between the boot, the network code and the API; every field behind its own short lock.
#[derive(Debug, Default)]
pub struct BoardStatus {
    info: Mutex<BoardInfo>,
    boot: Mutex<Vec<BootStep>>,
    errors: Mutex<Vec<String>>,
    config_errors: Mutex<Vec<ConfigError>>,
    addresses: Mutex<Vec<Address>>,
    token: Mutex<Option<String>>,
    api_tls: Mutex<ApiTls>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BoardStatus {
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

    /// Records whether the API speaks TLS, and why not.
    pub fn set_api_tls(&self, tls: ApiTls) {
        *lock(&self.api_tls) = tls;
    }

    /// Whether the API speaks TLS, and why not.
    pub fn api_tls(&self) -> ApiTls {
        lock(&self.api_tls).clone()
    }
}
