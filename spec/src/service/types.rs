//! The validated service spec: what the rest of baton sees. Every value here has passed
//! validation and every default is filled in (see [`super::defaults`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::date::Date;
use super::image::ImageSource;

/// One service, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The service's name, equal to its file's stem; a lowercase DNS label.
    pub name: String,
    /// Where the image comes from.
    pub image: ImageSource,
    /// Replaces the image's entrypoint when set.
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments (its `Cmd`) when set.
    pub args: Option<Vec<String>>,
    /// Extra environment variables, added to (and overriding) the image's.
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container (absolute); the image's when `None`.
    pub workdir: Option<PathBuf>,
    /// User and group to run as; the image's when `None`.
    pub user: Option<User>,
    /// TCP port the service listens on inside its container.
    pub port: Option<u16>,
    /// Board TCP port that forwards to `port`.
    pub publish: Option<u16>,
    /// cgroup limits of each instance.
    pub resources: Resources,
    /// Named volumes mounted into each instance.
    pub volumes: Vec<Volume>,
    /// What to do when an instance exits.
    pub restart: RestartPolicy,
    /// How to tell that an instance works.
    pub health: Option<HealthCheck>,
    /// Time between SIGTERM and SIGKILL when stopping an instance.
    pub stop_timeout: Duration,
    /// Whether the container's root file system is read-only (with a writable `/tmp`).
    pub readonly_root: bool,
    /// How many instances run.
    pub scale: Scale,
    /// Services this one may connect to.
    pub allow: Vec<String>,
    /// Whether instances may reach the internet.
    pub egress: Egress,
    /// Capabilities added to the default set, sorted, each once.
    pub capabilities: Vec<super::caps::Capability>,
    /// Why the service runs with the board's user ids; `None`: in a user namespace of its own.
    pub host_ids: Option<String>,
    /// How the front door routes requests to this service.
    pub route: Option<Route>,
    /// Dates on which `scale.max` is raised.
    pub surge: Vec<Surge>,
    /// Where instances may run.
    pub placement: Placement,
}

/// A user, and optionally a group, by number or by name (names are looked up in the image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user.
    pub user: Id,
    /// The group; the user's primary group when `None`.
    pub group: Option<Id>,
}

/// A numeric id or a name to look up in the image's `/etc/passwd` or `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A number.
    Number(u32),
    /// A name.
    Name(String),
}

/// cgroup v2 limits of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// CPU limit in thousandths of a core (`cpu.max`); `None` for no limit.
    pub cpu_millis: Option<u32>,
    /// Memory limit in bytes (`memory.max`).
    pub memory_bytes: u64,
    /// Process and thread limit (`pids.max`).
    pub pids: u32,
    /// What the service may write on a board's data partition (volumes and writable layers
    /// together, one ext4 project quota); `None` when the spec does not say, so that the
    /// board applies [`super::defaults::DISK_BYTES`] where it can.
    pub disk_bytes: Option<u64>,
}

/// A named volume on the data partition, mounted at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name; the same name in the same service is the same data.
    pub name: String,
    /// Absolute, normalised mount point inside the container.
    pub path: PathBuf,
    /// Whether the mount is read-only.
    pub readonly: bool,
}

/// What the supervisor does when an instance exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after every exit.
    Always,
    /// Restart after a non-zero exit or a kill by a signal.
    OnFailure,
    /// Never restart.
    Never,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is checked.
    pub probe: Probe,
    /// Time between checks.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// Failed checks in a row before the instance counts as unhealthy.
    pub retries: u32,
    /// Failures during this time after a start do not count.
    pub start_period: Duration,
}

/// The kind of health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET <path>` on the service's `port` must answer 2xx or 3xx.
    Http {
        /// Request path, starting with `/`.
        path: String,
    },
    /// A TCP connection to this container port must be accepted.
    Tcp {
        /// The port.
        port: u16,
    },
}

/// How many instances run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Instances kept running (0: scale to zero when idle).
    pub min: u32,
    /// Most instances (raised by `surge` on its dates).
    pub max: u32,
    /// Idle time after which instances above `min` are stopped.
    pub idle_after: Duration,
    /// In-flight requests per instance above which another instance starts.
    pub target_concurrency: u32,
    /// The time the load is averaged over.
    pub window: Duration,
    /// In percent of the ready instances (at least one): when the load over the last tenth of
    /// `window` asks for this many, the count goes up at once.
    pub panic: u32,
    /// Requests held per board while no instance is ready.
    pub hold_queue: u32,
    /// How long a request is held before it is answered 503.
    pub hold_timeout: Duration,
    /// What happens to the last instance when the service is idle (with `min` 0).
    pub idle: Idle,
}

/// `scale.idle`: what becomes of the last instance of an idle service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Idle {
    /// Stop it; the next request starts a new one.
    Stop,
    /// Freeze it (cgroup freezer): it keeps its memory, and the next request thaws it.
    Freeze,
}

/// Whether instances may open connections to the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    /// NAT to the board's uplink.
    Internet,
    /// Only the services in `allow`.
    None,
}

/// How the front door routes to this service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Host name to match; any host when `None`.
    pub host: Option<String>,
    /// Path prefix to match, starting with `/`.
    pub path: String,
    /// Identity check before requests are passed on.
    pub auth: Auth,
    /// How long the upstream may take until its response head.
    pub timeout: Duration,
    /// Claims the caller's token must carry (`oidc` and `login` only): each listed claim must
    /// contain each listed value.
    pub require: BTreeMap<String, Vec<String>>,
    /// The auth service asked first; set exactly when `auth` is [`Auth::Forward`].
    pub forward: Option<Forward>,
}

/// `route.forward`: an auth service asked before every request (as Traefik's forwardAuth and
/// Caddy's forward_auth do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `http://` or `https://` URL that answers 2xx to let a request through.
    pub url: String,
    /// Headers of its 2xx answer copied into the request passed on.
    pub copy_headers: Vec<String>,
    /// Header of its answer that names the user.
    pub user_header: String,
    /// Header of its answer that carries the user's email address.
    pub email_header: String,
}

/// Identity check of the front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// No check.
    None,
    /// An OIDC bearer token (JWT) checked against the provider's keys.
    Oidc,
    /// A browser sign-in at the OIDC provider (authorization code with PKCE), kept in a
    /// session cookie; bearer tokens are accepted too.
    Login,
    /// A TLS client certificate, verified against `[front_door.mtls] ca`.
    Mtls,
    /// Ask the auth service of `route.forward` first.
    Forward,
}

/// A raised `scale.max` on some dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surge {
    /// The dates, in the order written.
    pub dates: Vec<Date>,
    /// `scale.max` on those dates.
    pub max: u32,
    /// Instances kept running on those dates (at most `max`); `scale.min` when `None`. The
    /// larger of the two counts.
    pub min: Option<u32>,
}

/// Placement constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Host names of the boards instances may run on; any board when empty.
    pub boards: Vec<String>,
    /// Labels a board must carry (see `[board] labels` in `cluster.toml`).
    pub labels: BTreeMap<String, String>,
}
