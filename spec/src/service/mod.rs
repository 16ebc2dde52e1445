//! Service specs: `services/<name>.toml` on the config partition, one file per service.
//!
//! ```toml
//! name = "web"                            # must equal the file name without .toml
//! image = "oci-archive:images/web.tar"    # or "docker-archive:…", "oci:<dir>", a registry reference
//! command = ["/web", "--port", "8080"]
//! port = 8080
//! publish = 8080                          # board TCP port forwarding to `port`
//! env = { GREETING = "hello" }
//! resources = { cpu = 0.5, memory = "64Mi", pids = 64 }
//! volumes = [{ name = "data", path = "/var/lib/web" }]
//! health = { http = "/healthz", interval = "5s" }
//! restart = "always"
//! ```
//!
//! `docs/services.md` documents every field; [`defaults`] holds every default and bound.
//! [`ServiceSpec::parse`] reads one file and [`load_services`] a whole directory; both report
//! every problem at once, each with file, line and dotted field path
//! (`resources.memory`, `surge[1].dates[0]`). Unknown keys are errors.
//!
//! The file is read into raw serde types (`raw`), one top-level key at a time so that one bad
//! key does not hide the next, then validated (`validate`) into [`ServiceSpec`], the only type
//! the rest of baton sees. [`json_schema`] is generated from the raw types.

mod caps;
pub(crate) mod check;
pub mod date;
pub mod defaults;
pub mod duration;
pub mod image;
mod load;
mod parse;
pub mod quantity;
pub(crate) mod raw;
mod render;
pub mod route;
mod schema;
pub(crate) mod tables;
mod types;
mod validate;

pub use caps::Capability;
pub use check::is_service_name;
pub use date::Date;
pub use image::{ImageReference, ImageSource};
pub use load::{load_services, load_services_with, LoadedServices};
pub use render::RenderError;
pub use schema::{json_schema, json_schema_text, SCHEMA_ID};
pub use types::{
    Auth, Egress, Forward, HealthCheck, Id, Idle, Placement, Probe, Resources, RestartPolicy,
    Route, Scale, ServiceSpec, Surge, User, Volume,
};

use crate::error::ConfigErrors;
use check::Checker;

/// The directory of the config partition that holds service specs.
pub const SERVICES_DIR: &str = "services";

/// The longest spec file read, in bytes (a cluster takes far shorter ones); readers of the card
/// read at most one byte more, so that a longer file is refused by name instead of read whole.
pub const MAX_SPEC_FILE: usize = 1 << 20;

impl ServiceSpec {
    /// Parses and validates one spec. `file` names it in errors (for example
    /// `services/web.toml`); its stem is the name the spec must declare. Errors are sorted by
    /// line and each names file, line and field.
    pub fn parse(file: &str, src: &str) -> Result<ServiceSpec, ConfigErrors> {
        if src.len() > MAX_SPEC_FILE {
            return Err(ConfigErrors(vec![crate::ConfigError {
                file: file.to_string(),
                line: None,
                field: String::new(),
                message: format!("the file is larger than {MAX_SPEC_FILE} bytes; not read"),
            }]));
        }
        let (raw, index) = parse::parse_raw(file, src).map_err(sorted)?;
        let mut checker = Checker::new(file, &index);
        match validate::validate(&mut checker, file, raw) {
            Some(spec) if checker.errors.is_empty() => Ok(spec),
            _ => Err(sorted(checker.errors)),
        }
    }
}

fn sorted(mut errors: Vec<crate::ConfigError>) -> ConfigErrors {
    errors.sort_by_key(|e| e.line);
    ConfigErrors(errors)
}

#[cfg(test)]
mod route_tests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;
