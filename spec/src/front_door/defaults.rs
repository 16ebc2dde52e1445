//! Every default and bound of `[front_door]`. `docs/front-door.md` lists the same values;
//! change both together.

use std::time::Duration;

use crate::service::defaults as spec;

/// `http` when absent.
pub const HTTP: u16 = spec::FRONT_DOOR_HTTP_PORT;
/// `https` when absent.
pub const HTTPS: u16 = spec::FRONT_DOOR_HTTPS_PORT;
/// `redirect_http` when absent.
pub const REDIRECT_HTTP: bool = true;

/// `memory` when absent: 64 MiB.
pub const MEMORY_BYTES: u64 = 64 << 20;
/// Smallest `memory`.
pub const MIN_MEMORY_BYTES: u64 = 16 << 20;
/// Largest `memory`.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// `idle_timeout` when absent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Smallest `idle_timeout`.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `idle_timeout`.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// `max_connections` when absent.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Largest `max_connections`.
pub const MAX_MAX_CONNECTIONS: u32 = 65_536;
/// `per_client_connections` when absent (at most `max_connections`).
pub const PER_CLIENT_CONNECTIONS: u32 = 64;
/// `per_client_rate` when absent: requests a second per client address.
pub const PER_CLIENT_RATE: u32 = 100;
/// `per_client_burst` when absent.
pub const PER_CLIENT_BURST: u32 = 200;
/// Largest `per_client_rate` and `per_client_burst`.
pub const MAX_PER_CLIENT_REQUESTS: u32 = 100_000;

/// Most entries of `trusted_proxies`.
pub const MAX_TRUSTED_PROXIES: usize = 64;

/// `oidc.leeway` when absent.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Largest `oidc.leeway`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// `oidc.session_ttl` when absent.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Smallest `oidc.session_ttl`.
pub const MIN_SESSION_TTL: Duration = Duration::from_secs(300);
/// Largest `oidc.session_ttl`.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// `oidc.callback_path` when absent.
pub const CALLBACK_PATH: &str = "/.baton/auth/callback";
/// Where `oidc.callback_path` must be: under the front door's own paths.
pub const CALLBACK_PREFIX: &str = "/.baton/";
/// Most `oidc.scopes`.
pub const MAX_SCOPES: usize = 16;
/// Longest text of `oidc` (URLs, audience, client id and secret, one scope), in bytes.
pub const MAX_TEXT: usize = 2048;
