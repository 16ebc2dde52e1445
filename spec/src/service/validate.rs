//! Raw spec to validated spec. Every check runs and records its problem, so one pass reports
//! everything wrong with a file; defaults come from [`super::defaults`].

use std::collections::BTreeSet;
use std::path::Path;

use super::check::{is_env_name, is_label_name, is_service_name, Checker};
use super::defaults as d;
use super::image::ImageSource;
use super::raw::RawService;
use super::tables::{health, resources, scale, surges, volumes};
use super::types::{Id, Placement, ServiceSpec, User};
use crate::locate::quote_key;

/// Validates `raw`, read from `file`; `None` when `c` recorded any problem.
pub(crate) fn validate(c: &mut Checker<'_>, file: &str, raw: RawService) -> Option<ServiceSpec> {
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let name = c.required(
        "name",
        raw.name,
        &format!("write name = {stem:?}, the file name without .toml"),
    );
    if let Some(n) = &name {
        if !is_service_name(n) {
            c.error("name", format!("{n:?} is not a service name: use 1-63 lowercase letters, digits and '-', not starting or ending with '-'"));
        } else if n != stem {
            c.error(
                "name",
                format!("{n:?} must equal the file name without .toml ({stem:?})"),
            );
        }
    }
    let image = c
        .required(
            "image",
            raw.image,
            "for example \"oci-archive:images/web.tar\" or \"nginx:1.27\"",
        )
        .and_then(|text| match ImageSource::parse(&text) {
            Ok(i) => Some(i),
            Err(e) => {
                c.error("image", e.to_string());
                None
            }
        });
    if let Some(cmd) = &raw.command {
        if cmd.first().is_none_or(String::is_empty) {
            c.error(
                "command",
                "must start with the program to run, for example [\"/web\"]",
            );
        }
    }
    for (field, list) in [("command", &raw.command), ("args", &raw.args)] {
        for (i, arg) in list.iter().flatten().enumerate() {
            if arg.contains('\0') {
                c.error(&format!("{field}[{i}]"), "must not contain a NUL character");
            }
        }
    }
    for (k, v) in raw.env.iter().flatten() {
        let field = format!("env.{}", quote_key(k));
        if !is_env_name(k) {
            c.error(&field, format!("{k:?} is not a variable name: use letters, digits and '_', not starting with a digit"));
        }
        if v.contains('\0') {
            c.error(&field, "must not contain a NUL character");
        }
    }
    let workdir = raw
        .workdir
        .as_deref()
        .and_then(|w| c.container_path("workdir", w));
    let user = raw.user.as_deref().and_then(|u| user(c, u));
    let port = raw.port.and_then(|p| c.port("port", p));
    let publish = raw.publish.and_then(|p| c.port("publish", p));
    if let Some(p) = publish {
        if raw.port.is_none() {
            c.error("publish", "needs `port`, the container port it forwards to");
        }
        if let Some((_, what)) = d::RESERVED_HOST_PORTS.iter().find(|(r, _)| *r == p) {
            c.error("publish", format!("port {p} is used by {what}"));
        }
    }
    let resources = resources(c, raw.resources.unwrap_or_default());
    let volumes = volumes(c, raw.volumes.unwrap_or_default());
    let health = raw.health.and_then(|h| health(c, h, raw.port.is_some()));
    let stop_timeout = c.duration(
        "stop_timeout",
        raw.stop_timeout.as_ref(),
        d::STOP_TIMEOUT,
        (std::time::Duration::ZERO, d::MAX_STOP_TIMEOUT),
    );
    let scale = scale(c, raw.scale.unwrap_or_default());
    let allow = names_list(
        c,
        "allow",
        raw.allow.unwrap_or_default(),
        "service name: use 1-63 lowercase letters, digits and '-', not starting or ending with '-'",
        is_service_name,
    );
    let route = raw
        .route
        .map(|r| super::route::route(c, r, raw.port.is_some()));
    let surge = surges(c, raw.surge.unwrap_or_default(), scale.max);
    let capabilities = super::caps::capabilities(
        c,
        name.as_deref().unwrap_or(stem),
        &raw.capabilities.unwrap_or_default(),
    );
    let host_ids = raw.host_ids.map(|why| host_ids(c, why));
    let placement = raw.placement.unwrap_or_default();
    let boards = names_list(
        c,
        "placement.boards",
        placement.boards.unwrap_or_default(),
        "board name: use 1-63 letters, digits and '-', not starting or ending with '-'",
        crate::board_config::is_dns_label,
    );
    let labels = placement.labels.unwrap_or_default();
    for k in labels.keys() {
        if !is_label_name(k) {
            c.error(
                &format!("placement.labels.{}", quote_key(k)),
                format!("label name {k:?} may only use letters, digits, '-', '_', '.', '/'"),
            );
        }
    }

    if !c.errors.is_empty() {
        return None;
    }
    Some(ServiceSpec {
        name: name?,
        image: image?,
        command: raw.command,
        args: raw.args,
        env: raw.env.unwrap_or_default(),
        workdir,
        user,
        port,
        publish,
        resources,
        volumes,
        restart: raw.restart.unwrap_or(d::RESTART),
        health,
        stop_timeout,
        readonly_root: raw.readonly_root.unwrap_or(d::READONLY_ROOT),
        scale,
        allow,
        egress: raw.egress.unwrap_or(d::EGRESS),
        capabilities,
        host_ids,
        route,
        surge,
        placement: Placement { boards, labels },
    })
}

/// The longest reason `host_ids` may give.
const MAX_HOST_IDS_REASON: usize = 200;

fn host_ids(c: &mut Checker<'_>, why: String) -> String {
    let trimmed = why.trim();
    if trimmed.is_empty() {
        c.error(
            "host_ids",
            "say why the service needs the board's user ids (an empty reason is refused)",
        );
    } else if trimmed.chars().count() > MAX_HOST_IDS_REASON || trimmed.chars().any(char::is_control)
    {
        c.error(
            "host_ids",
            format!("the reason must be one line of at most {MAX_HOST_IDS_REASON} characters"),
        );
    }
    trimmed.to_string()
}

fn user(c: &mut Checker<'_>, text: &str) -> Option<User> {
    let id = |part: &str| -> Option<Id> {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            return part.parse().ok().map(Id::Number);
        }
        let name_ok = part.len() <= 32
            && part.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
            && part
                .trim_end_matches('$')
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "_-".contains(ch));
        name_ok.then(|| Id::Name(part.to_string()))
    };
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    match (id(u), g.map(id)) {
        (Some(user), None) => Some(User { user, group: None }),
        (Some(user), Some(Some(group))) => Some(User {
            user,
            group: Some(group),
        }),
        _ => {
            c.error("user", format!("{text:?} is not a user: write \"uid\", \"uid:gid\", \"name\" or \"name:group\" (ids up to 4294967295, names of lowercase letters, digits, '_', '-')"));
            None
        }
    }
}

/// A list of service or board names: each valid by `valid`, none twice.
fn names_list(
    c: &mut Checker<'_>,
    field: &str,
    raw: Vec<String>,
    what: &str,
    valid: fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for (i, n) in raw.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !valid(n) {
            c.error(&at, format!("{n:?} is not a {what}"));
        } else if !seen.insert(n.as_str()) {
            c.error(&at, format!("{n:?} is listed twice"));
        }
    }
    raw
}
