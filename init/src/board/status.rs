//! The board's state as the API reports it, shared between the boot sequence, the network
//! code and the API. Every field is behind its own lock, held only to copy in or out.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use baton_spec::ConfigError;

/// The board facts the API reports are its types ([`baton_api`]).
pub use baton_api::{
    Address, AddressSource, ApiTls, BoardInfo, BootStep, ClockStatus, DataPartition,
};

/// What the board reports about itself (facts, boot steps, errors, addresses, the token), shared
/// between the boot, the network code and the API; every field behind its own short lock.
#[derive(Debug, Default)]
pub struct BoardStatus {
    info: Mutex<BoardInfo>,
    boot: Mutex<Vec<BootStep>>,
    errors: Mutex<Errors>,
    config_errors: Mutex<Vec<ConfigError>>,
    addresses: Mutex<Vec<Address>>,
    token: Mutex<Option<String>>,
    /// `[api] metrics_token`: opens `GET /metrics` only.
    metrics_token: Mutex<Option<String>>,
    /// The API listener's connection counters.
    api_listener: std::sync::Arc<baton_listen::Stats>,
    clock: Mutex<ClockStatus>,
    api_tls: Mutex<ApiTls>,
}

/// Errors kept for the API (the newest); older ones are only counted.
pub const MAX_ERRORS: usize = 64;

/// Longest error message kept, in bytes; longer ones are cut.
pub const MAX_ERROR_LEN: usize = 1024;

/// The newest [`MAX_ERRORS`] errors and how many older ones were let go.
#[derive(Debug, Default)]
struct Errors {
    kept: VecDeque<String>,
    dropped: u64,
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

    /// Records an error that the API should show (it is also printed on the console by the
    /// caller). The newest [`MAX_ERRORS`] are kept, each cut to [`MAX_ERROR_LEN`] bytes.
    pub fn add_error(&self, message: impl Into<String>) {
        let mut message = message.into();
        if message.len() > MAX_ERROR_LEN {
            let mut end = MAX_ERROR_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let mut errors = lock(&self.errors);
        if errors.kept.len() >= MAX_ERRORS {
            errors.kept.pop_front();
            errors.dropped += 1;
        }
        errors.kept.push_back(message);
    }

    /// Errors recorded so far, oldest first; when older ones were let go, a first line says
    /// how many.
    pub fn errors(&self) -> Vec<String> {
        let errors = lock(&self.errors);
        let note =
            (errors.dropped > 0).then(|| format!("({} earlier errors not kept)", errors.dropped));
        note.into_iter()
            .chain(errors.kept.iter().cloned())
            .collect()
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

    /// Sets the token that opens `GET /metrics` only (`None`: the API token alone does).
    pub fn set_metrics_token(&self, token: Option<String>) {
        *lock(&self.metrics_token) = token;
    }

    /// The metrics-only token, if one is configured.
    pub fn metrics_token(&self) -> Option<String> {
        lock(&self.metrics_token).clone()
    }

    /// The API listener's connection counters (the listener counts into them).
    pub fn api_listener(&self) -> std::sync::Arc<baton_listen::Stats> {
        std::sync::Arc::clone(&self.api_listener)
    }

    /// Changes how the clock is reported.
    pub fn update_clock(&self, f: impl FnOnce(&mut ClockStatus)) {
        f(&mut lock(&self.clock));
    }

    /// How the clock is kept.
    pub fn clock(&self) -> ClockStatus {
        lock(&self.clock).clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_newest_and_count_the_rest() {
        let state = BoardStatus::default();
        for i in 0..MAX_ERRORS + 10 {
            state.add_error(format!("error {i}"));
        }
        let errors = state.errors();
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors[0], "(10 earlier errors not kept)");
        assert_eq!(errors[1], "error 10");
        assert_eq!(errors[MAX_ERRORS], format!("error {}", MAX_ERRORS + 9));
    }

    #[test]
    fn a_long_error_is_cut_on_a_character_boundary() {
        let state = BoardStatus::default();
        state.add_error("é".repeat(MAX_ERROR_LEN));
        let kept = &state.errors()[0];
        assert!(
            kept.len() <= MAX_ERROR_LEN + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        assert!(kept.ends_with('…'));
    }
}
