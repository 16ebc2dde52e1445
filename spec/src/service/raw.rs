//! The file as the user writes it: every key optional (validation reports what is missing), no
//! unknown keys. The JSON Schema for editors is generated from these types, so their doc
//! comments are what an editor shows.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::types::{Auth, Egress, Idle, RestartPolicy};

/// A baton service: one file `services/<name>.toml` on the BATON-CFG partition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "baton service spec")]
pub(crate) struct RawService {
    /// Name of the service: must equal the file name without `.toml`; 1-63 lowercase letters, digits and '-'. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image: `oci-archive:<path>`, `docker-archive:<path>`, `oci:<dir>` (relative to the config partition, optionally `:<ref>`), or a registry reference such as `nginx:1.27`, `localhost:5000/web:v1` or `repo@sha256:<hex>`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment variables added to the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory inside the container (absolute path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// User to run as: `uid`, `uid:gid`, `name` or `name:group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// TCP port the service listens on inside its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i64>,
    /// TCP port of the board that forwards to `port` (needs `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub publish: Option<i64>,
    /// cgroup limits of each instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<RawResources>,
    /// Named volumes on the data partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<RawVolume>>,
    /// What to do when an instance exits. Default "always".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// Health check: `http` or `tcp`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<RawHealth>,
    /// Time between SIGTERM and SIGKILL when stopping. Default "10s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<RawDuration>,
    /// Read-only root file system (with a writable /tmp). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root: Option<bool>,
    /// How many instances run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<RawScale>,
    /// Services this one may connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Whether instances may reach the internet. Default "internet".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
    /// Linux capabilities added to the default set: only "NET_RAW". Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// Run with the board's user ids (container root is the board's root) instead of a user
    /// namespace of the service's own; the value says why (required, non-empty). Default: the
    /// service's own ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ids: Option<String>,
    /// How the front door routes requests to this service (needs `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RawRoute>,
    /// Dates on which `scale.max` is raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<Vec<RawSurge>>,
    /// Where instances may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<RawPlacement>,
}

/// cgroup limits of each instance.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResources {
    /// CPU limit in cores, for example 0.5 or 2 (steps of 0.001, 0.01 to 64). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory limit, for example "64Mi" or "1G" (or a number of bytes), 4Mi to 1Ti. Default "256Mi".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<RawQuantity>,
    /// Most processes and threads, 1 to 4194304. Default 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4194304))]
    pub pids: Option<i64>,
    /// What the service may write on the data partition of each board it runs on: its volumes and
    /// its instances' writable layers together, for example "512Mi" or "20G", 1Mi to 16Ti.
    /// Default "2Gi" where the board enforces it (a card made by an older builder cannot: there
    /// a spec that sets it is refused, and the default is not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<RawQuantity>,
}

/// A named volume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVolume {
    /// Name of the volume (letters, digits, '_', '.', '-'). Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absolute mount point inside the container. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Mount read-only. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
}

/// A health check.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    /// HTTP path to GET on `port`; 2xx and 3xx answers are healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Container TCP port that must accept connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub tcp: Option<i64>,
    /// Time between checks, 1s to 1h. Default "10s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<RawDuration>,
    /// Time one check may take, 100ms up to `interval`. Default "2s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<RawDuration>,
    /// Failed checks in a row before the instance is unhealthy, 1 to 100. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub retries: Option<i64>,
    /// Failures in this time after a start do not count, up to 1h. Default "0s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<RawDuration>,
}

/// How many instances run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScale {
    /// Instances kept running, 0 to 64 (0 scales to zero when idle). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 64))]
    pub min: Option<i64>,
    /// Most instances, `min` (at least 1) to 64. Default: `min`, or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max: Option<i64>,
    /// Idle time before instances above `min` stop, 10s to 7 days. Default "5m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_after: Option<RawDuration>,
    /// In-flight requests per instance before another starts, 1 to 10000. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub target_concurrency: Option<i64>,
    /// Time the load is averaged over, 6s to 1h. Default "60s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<RawDuration>,
    /// Percent of the ready instances (at least one) that the load over the last tenth of `window` must ask for to scale up at once, 110 to 1000. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 110, max = 1000))]
    pub panic: Option<i64>,
    /// Requests held per board while no instance is ready, 1 to 4096. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub hold_queue: Option<i64>,
    /// How long a held request waits for an instance before a 503, 1s to 10m. Default "30s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_timeout: Option<RawDuration>,
    /// The last instance of an idle service (with `min` 0): "stop" or "freeze" (paused, keeping its memory, for a faster wake). Default "stop".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
}

/// A front-door route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// Host name to match, or "*.suffix" for every name under a suffix of two or more labels. Default: any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path prefix to match, starting with '/', on segment boundaries ("/api" matches "/api/x", not "/apix"); not under "/.baton/" or "/.well-known/baton/". Default "/".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Identity check. Default "none".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Time the service may take until its response head, 1s to 1h. Default "60s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<RawDuration>,
    /// Claims the token must carry, for example `{ groups = ["admins"] }`: each listed claim must contain each value (auth "oidc" or "login"; at most 16 claims of 32 values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<BTreeMap<String, Vec<String>>>,
    /// The auth service asked first (auth "forward" only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<RawForward>,
}

/// An auth service asked before each request; a 2xx answer lets the request through.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForward {
    /// `http://` or `https://` URL of the auth service, for example "http://auth:9091/api/verify". Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers of the auth service's 2xx answer copied into the request (at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_headers: Option<Vec<String>>,
    /// Header of the answer naming the user. Default "Remote-User".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_header: Option<String>,
    /// Header of the answer with the user's email. Default "Remote-Email".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_header: Option<String>,
}

/// A raised `scale.max` on some dates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSurge {
    /// Calendar dates, "YYYY-MM-DD". Required, at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Vec<RawDate>>,
    /// `scale.max` on those dates, at least `scale.max`, at most 64. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max: Option<i64>,
    /// Instances kept running on those dates, at most this entry's `max` (the larger of it and `scale.min` counts). Default: `scale.min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 64))]
    pub min: Option<i64>,
}

/// Placement constraints.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlacement {
    /// Host names of the boards instances may run on. Default: any board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<String>>,
    /// Labels a board must carry, as in `[board] labels` of cluster.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A duration as written: `"500ms"`, `"5s"`, `"1m30s"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDuration(pub String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Err(E::custom(format!(
                    "a duration is a string with a unit: write \"{v}s\" or \"{v}ms\""
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Err(E::custom(format!(
                    "a duration is a string with a unit: write \"{v}s\" or \"{v}ms\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for RawDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl JsonSchema for RawDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Whole numbers with units h, m, s, ms, largest first: \"500ms\", \"5s\", \"2m\", \"1h\", \"1m30s\".",
            "type": "string",
            "pattern": "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$",
            "minLength": 2
        })
    }
}

/// A byte quantity as written: `"64Mi"`, `"1G"`, or an integer number of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawQuantity {
    /// A string with an optional suffix.
    Text(String),
    /// A number of bytes.
    Bytes(i64),
}

impl<'de> Deserialize<'de> for RawQuantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawQuantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"64Mi\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawQuantity, E> {
                Ok(RawQuantity::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawQuantity, E> {
                Ok(RawQuantity::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawQuantity, E> {
                i64::try_from(v)
                    .map(RawQuantity::Bytes)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawQuantity, E> {
                Err(E::custom(format!(
                    "{v} is not a whole number: write for example \"1536Mi\" instead of \"1.5Gi\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for RawQuantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RawQuantity::Text(t) => s.serialize_str(t),
            RawQuantity::Bytes(b) => s.serialize_i64(*b),
        }
    }
}

impl JsonSchema for RawQuantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Bytes: a whole number with an optional suffix Ki, Mi, Gi, Ti (powers of 1024) or K, M, G, T (powers of 1000), or an integer.",
            "anyOf": [
                { "type": "string", "pattern": "^[0-9]+(Ki|Mi|Gi|Ti|K|k|M|G|T)?$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

/// A calendar date as written: a string `"2026-11-27"` or a TOML local date `2026-11-27`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDate(pub String);

impl<'de> Deserialize<'de> for RawDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date such as \"2026-11-27\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDate, E> {
                Ok(RawDate(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDate, A::Error> {
                // TOML date-times arrive as a map that only toml's own type understands.
                let dt =
                    toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawDate(dt.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for RawDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl JsonSchema for RawDate {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A calendar date, YYYY-MM-DD.",
            "type": "string",
            "format": "date"
        })
    }
}
