//! Every default and every bound of a service spec, in one place. `docs/services.md` documents
//! the same values; change both together.

use std::time::Duration;

/// `resources.cpu` when absent: no CPU limit (the instance shares the board's CPUs fairly).
pub const CPU_MILLIS: Option<u32> = None;
/// Smallest `resources.cpu`, in thousandths of a core (0.01 cores).
pub const MIN_CPU_MILLIS: u32 = 10;
/// Largest `resources.cpu`, in thousandths of a core (64 cores).
pub const MAX_CPU_MILLIS: u32 = 64_000;

/// `resources.memory` when absent: 256 MiB.
pub const MEMORY_BYTES: u64 = 256 << 20;
/// Smallest `resources.memory`: 4 MiB.
pub const MIN_MEMORY_BYTES: u64 = 4 << 20;
/// Largest `resources.memory`: 1 TiB.
pub const MAX_MEMORY_BYTES: u64 = 1 << 40;

/// What a board lets a service write on its data partition when `resources.disk` is absent:
/// 2 GiB.
pub const DISK_BYTES: u64 = 2 << 30;
/// Smallest `resources.disk`: 1 MiB.
pub const MIN_DISK_BYTES: u64 = 1 << 20;
/// Largest `resources.disk`: 16 TiB.
pub const MAX_DISK_BYTES: u64 = 16 << 40;

/// `resources.pids` when absent.
pub const PIDS: u32 = 256;
/// Smallest `resources.pids`.
pub const MIN_PIDS: u32 = 1;
/// Largest `resources.pids` (Linux's `PID_MAX_LIMIT`).
pub const MAX_PIDS: u32 = 4_194_304;

/// `restart` when absent.
pub const RESTART: super::RestartPolicy = super::RestartPolicy::Always;
/// `stop_timeout` when absent: time between SIGTERM and SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `stop_timeout`.
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(600);
/// `readonly_root` when absent.
pub const READONLY_ROOT: bool = true;
/// `egress` when absent.
pub const EGRESS: super::Egress = super::Egress::Internet;

/// `health.interval` when absent.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// Smallest `health.interval`.
pub const MIN_HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Largest `health.interval`, `health.start_period`.
pub const MAX_HEALTH_PERIOD: Duration = Duration::from_secs(3600);
/// `health.timeout` when absent (never more than the interval).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Smallest `health.timeout`.
pub const MIN_HEALTH_TIMEOUT: Duration = Duration::from_millis(100);
/// `health.retries` when absent: failed checks in a row before an instance is unhealthy.
pub const HEALTH_RETRIES: u32 = 3;
/// Largest `health.retries`.
pub const MAX_HEALTH_RETRIES: u32 = 100;
/// `health.start_period` when absent: failures in this window after start do not count.
pub const HEALTH_START_PERIOD: Duration = Duration::ZERO;

/// `scale.min` when absent.
pub const SCALE_MIN: u32 = 1;
/// `scale.max` when absent: `scale.min`, or 1 when that is 0.
pub fn scale_max(min: u32) -> u32 {
    min.max(1)
}
/// Largest `scale.max` and `surge[].max`.
pub const MAX_INSTANCES: u32 = 64;
/// `scale.idle_after` when absent.
pub const IDLE_AFTER: Duration = Duration::from_secs(300);
/// Smallest `scale.idle_after`.
pub const MIN_IDLE_AFTER: Duration = Duration::from_secs(10);
/// Largest `scale.idle_after`.
pub const MAX_IDLE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// `scale.target_concurrency` when absent: in-flight requests per instance before scaling up.
pub const TARGET_CONCURRENCY: u32 = 10;
/// Largest `scale.target_concurrency`.
pub const MAX_TARGET_CONCURRENCY: u32 = 10_000;
/// `scale.window` when absent: the time the load is averaged over (Knative's stable window).
pub const SCALE_WINDOW: Duration = Duration::from_secs(60);
/// Smallest `scale.window`.
pub const MIN_SCALE_WINDOW: Duration = Duration::from_secs(6);
/// Largest `scale.window`.
pub const MAX_SCALE_WINDOW: Duration = Duration::from_secs(3600);
/// `scale.panic` when absent: the load over the last tenth of the window, in percent of the
/// ready instances, at which the count goes up at once.
pub const SCALE_PANIC: u32 = 200;
/// Smallest `scale.panic`.
pub const MIN_SCALE_PANIC: u32 = 110;
/// Largest `scale.panic`.
pub const MAX_SCALE_PANIC: u32 = 1000;
/// `scale.hold_queue` when absent: requests held per board while no instance is ready.
pub const HOLD_QUEUE: u32 = 100;
/// Largest `scale.hold_queue` (the front door's own cap of one service's queue).
pub const MAX_HOLD_QUEUE: u32 = 4096;
/// `scale.hold_timeout` when absent: how long a request is held.
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(30);
/// Smallest `scale.hold_timeout`.
pub const MIN_HOLD_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `scale.hold_timeout`.
pub const MAX_HOLD_TIMEOUT: Duration = Duration::from_secs(600);
/// `scale.idle` when absent.
pub const SCALE_IDLE: super::Idle = super::Idle::Stop;

/// `route.path` when absent.
pub const ROUTE_PATH: &str = "/";
/// `route.auth` when absent.
pub const ROUTE_AUTH: super::Auth = super::Auth::None;
/// `route.timeout` when absent: time until the response head.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Smallest `route.timeout`.
pub const MIN_ROUTE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `route.timeout`.
pub const MAX_ROUTE_TIMEOUT: Duration = Duration::from_secs(3600);
/// `route.forward.user_header` when absent.
pub const FORWARD_USER_HEADER: &str = "Remote-User";
/// `route.forward.email_header` when absent.
pub const FORWARD_EMAIL_HEADER: &str = "Remote-Email";

/// `volumes[].readonly` when absent.
pub const VOLUME_READONLY: bool = false;

/// TCP port of every board's HTTP API.
pub const API_PORT: u16 = 7070;

/// The front door's default HTTP port (`[front_door] http`).
pub const FRONT_DOOR_HTTP_PORT: u16 = 80;
/// The front door's default HTTPS port (`[front_door] https`).
pub const FRONT_DOOR_HTTPS_PORT: u16 = 443;

/// Host ports `publish` may not use on any board, and what uses them. The front door's ports
/// (80 and 443 unless `cluster.toml` moves them or switches them off) are refused where a
/// board's settings are known, at card load and by the API
/// ([`crate::front_door::FrontDoor::check_service`]); specs that arrive from other boards are
/// not refused for them, so that a spec that publishes port 80 and ran before the front door
/// existed keeps running on an upgrade.
pub const RESERVED_HOST_PORTS: &[(u16, &str)] = &[(API_PORT, "the board's API")];

/// Container paths a volume may not be mounted on or under.
pub const RESERVED_CONTAINER_PATHS: &[&str] = &["/proc", "/sys", "/dev"];
