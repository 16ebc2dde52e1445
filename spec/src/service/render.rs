//! Validated spec back to TOML, in canonical form: every field written out (defaults
//! included), durations and quantities in their shortest exact text. Parsing the output gives
//! back an equal spec.

use super::duration::format_duration;
use super::quantity::{cores_from_millis, format_bytes};
use super::raw::{
    RawDate, RawDuration, RawForward, RawHealth, RawPlacement, RawQuantity, RawResources, RawRoute,
    RawScale, RawService, RawSurge, RawVolume,
};
use super::types::{Id, Probe, ServiceSpec, User};

/// Why a spec could not be written as TOML.
#[derive(Debug, thiserror::Error)]
#[error("cannot write service {name:?} as TOML: {source}")]
pub struct RenderError {
    /// The service.
    pub name: String,
    /// The serializer's error.
    #[source]
    pub source: toml::ser::Error,
}

impl ServiceSpec {
    /// The spec as a complete, canonical `services/<name>.toml`.
    pub fn to_toml(&self) -> Result<String, RenderError> {
        toml::to_string(&to_raw(self)).map_err(|source| RenderError {
            name: self.name.clone(),
            source,
        })
    }
}

fn duration(d: std::time::Duration) -> Option<RawDuration> {
    Some(RawDuration(format_duration(d)))
}

fn id(id: &Id) -> String {
    match id {
        Id::Number(n) => n.to_string(),
        Id::Name(n) => n.clone(),
    }
}

fn user(u: &User) -> String {
    match &u.group {
        Some(g) => format!("{}:{}", id(&u.user), id(g)),
        None => id(&u.user),
    }
}

fn to_raw(s: &ServiceSpec) -> RawService {
    RawService {
        name: Some(s.name.clone()),
        image: Some(s.image.to_string()),
        command: s.command.clone(),
        args: s.args.clone(),
        env: Some(s.env.clone()),
        workdir: s.workdir.as_ref().map(|w| w.display().to_string()),
        user: s.user.as_ref().map(user),
        port: s.port.map(i64::from),
        publish: s.publish.map(i64::from),
        resources: Some(RawResources {
            cpu: s.resources.cpu_millis.map(cores_from_millis),
            memory: Some(RawQuantity::Text(format_bytes(s.resources.memory_bytes))),
            pids: Some(i64::from(s.resources.pids)),
            disk: s
                .resources
                .disk_bytes
                .map(|b| RawQuantity::Text(format_bytes(b))),
        }),
        volumes: Some(
            s.volumes
                .iter()
                .map(|v| RawVolume {
                    name: Some(v.name.clone()),
                    path: Some(v.path.display().to_string()),
                    readonly: Some(v.readonly),
                })
                .collect(),
        ),
        restart: Some(s.restart),
        health: s.health.as_ref().map(|h| {
            let (http, tcp) = match &h.probe {
                Probe::Http { path } => (Some(path.clone()), None),
                Probe::Tcp { port } => (None, Some(i64::from(*port))),
            };
            RawHealth {
                http,
                tcp,
                interval: duration(h.interval),
                timeout: duration(h.timeout),
                retries: Some(i64::from(h.retries)),
                start_period: duration(h.start_period),
            }
        }),
        stop_timeout: duration(s.stop_timeout),
        readonly_root: Some(s.readonly_root),
        scale: Some(RawScale {
            min: Some(i64::from(s.scale.min)),
            max: Some(i64::from(s.scale.max)),
            idle_after: duration(s.scale.idle_after),
            target_concurrency: Some(i64::from(s.scale.target_concurrency)),
            window: duration(s.scale.window),
            panic: Some(i64::from(s.scale.panic)),
            hold_queue: Some(i64::from(s.scale.hold_queue)),
            hold_timeout: duration(s.scale.hold_timeout),
            idle: Some(s.scale.idle),
        }),
        allow: Some(s.allow.clone()),
        egress: Some(s.egress),
        capabilities: (!s.capabilities.is_empty()).then(|| {
            s.capabilities
                .iter()
                .map(|c| c.name().to_string())
                .collect()
        }),
        host_ids: s.host_ids.clone(),
        route: s.route.as_ref().map(|r| RawRoute {
            host: r.host.clone(),
            path: Some(r.path.clone()),
            auth: Some(r.auth),
            timeout: duration(r.timeout),
            require: (!r.require.is_empty()).then(|| r.require.clone()),
            forward: r.forward.as_ref().map(|f| RawForward {
                url: Some(f.url.clone()),
                copy_headers: Some(f.copy_headers.clone()),
                user_header: Some(f.user_header.clone()),
                email_header: Some(f.email_header.clone()),
            }),
        }),
        surge: Some(
            s.surge
                .iter()
                .map(|g| RawSurge {
                    dates: Some(g.dates.iter().map(|d| RawDate(d.to_string())).collect()),
                    max: Some(i64::from(g.max)),
                    min: g.min.map(i64::from),
                })
                .collect(),
        ),
        placement: Some(RawPlacement {
            boards: Some(s.placement.boards.clone()),
            labels: Some(s.placement.labels.clone()),
        }),
    }
}
