//! What a service may write on the data partition: one ext4 project per service (its slot's
//! project number) covering its volumes and its instances' writable layers, with the spec's
//! `resources.disk` (or the default) as hard limit. A container that reaches it gets `EDQUOT`
//! ("Disk quota exceeded") and nothing else on the board notices.

use std::path::{Path, PathBuf};

use baton_spec::service::{defaults, ServiceSpec};

use super::ids;
use crate::board::quota;

/// The limit applied to one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimit {
    /// The service's ext4 project.
    pub project: u32,
    /// Its hard limit in bytes.
    pub bytes: u64,
}

/// Why a service's disk cannot be limited as its spec asks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec sets `resources.disk` and the board cannot enforce it.
    #[error(
        "resources.disk cannot be enforced on this board ({why}); make its card with this \
         version's `baton image build`, or remove resources.disk from the spec"
    )]
    Unenforceable {
        /// What the data partition lacks.
        why: String,
    },
    /// Setting the limit or marking a directory failed.
    #[error(transparent)]
    Quota(#[from] quota::Error),
    /// The service has no slot (and so no project) on this board.
    #[error("no disk project: {0}")]
    Slot(String),
}

/// Limits what `spec` may write on the board (see [`limit`]): gives the service its slot's
/// project in `ids`, sets the limit and marks its volume directories. The
/// project for the instance's writable layer, or `None` when nothing is enforced.
pub fn prepare(
    spec: &ServiceSpec,
    data: Option<&Path>,
    quotas: Result<(), &str>,
    ids: &ids::UserIds,
    volumes: &[PathBuf],
) -> Result<Option<u32>, Error> {
    let (Some(data), Some(wanted)) = (data, limit(spec, data, quotas, 0)?) else {
        return Ok(None);
    };
    let slot = ids
        .slot_for(&spec.name)
        .map_err(|e| Error::Slot(e.to_string()))?;
    let limit = DiskLimit {
        project: slot.project(),
        ..wanted
    };
    apply(data, limit, volumes)?;
    Ok(Some(limit.project))
}

/// The limit for `spec` on a board whose data partition does (`quotas: Ok`) or does not
/// (`Err(why)`) enforce project quotas; `None` when nothing is enforced (a spec without
/// `resources.disk` on a board without quotas, or no data partition: then the writable layers
/// live in memory, bounded by the memory limit).
pub fn limit(
    spec: &ServiceSpec,
    data: Option<&Path>,
    quotas: Result<(), &str>,
    project: u32,
) -> Result<Option<DiskLimit>, Error> {
    let asked = spec.resources.disk_bytes;
    match (data, quotas) {
        (Some(_), Ok(())) => Ok(Some(DiskLimit {
            project,
            bytes: asked.unwrap_or(defaults::DISK_BYTES),
        })),
        (None, _) if asked.is_some() => Err(Error::Unenforceable {
            why: "it has no data partition".to_string(),
        }),
        (Some(_), Err(why)) if asked.is_some() => Err(Error::Unenforceable {
            why: why.to_string(),
        }),
        _ => Ok(None),
    }
}

/// Sets the project's limit on the data partition at `data` and puts the service's volume
/// directories in the project. A volume marked before is not walked again (what is created in
/// it inherits the mark); one that predates quotas or belonged to another project is walked
/// once, so that what it holds counts.
pub fn apply(data: &Path, limit: DiskLimit, volumes: &[PathBuf]) -> Result<(), Error> {
    quota::set_limit(data, limit.project, limit.bytes)?;
    for dir in volumes {
        if quota::project_of(dir)? != limit.project {
            quota::set_project_tree(dir, limit.project)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ServiceSpec {
        ServiceSpec::parse(
            "web.toml",
            &format!("name = \"web\"\nimage = \"oci-archive:images/web.tar\"\n{extra}"),
        )
        .expect("valid spec")
    }

    #[test]
    fn the_default_applies_only_where_it_can_be_enforced() {
        let data = Some(Path::new("/data"));
        let plain = spec("");
        assert_eq!(
            limit(&plain, data, Ok(()), 3).expect("limit"),
            Some(DiskLimit {
                project: 3,
                bytes: defaults::DISK_BYTES
            })
        );
        assert_eq!(limit(&plain, data, Err("old card"), 3).expect("none"), None);
        assert_eq!(limit(&plain, None, Err("no data"), 3).expect("none"), None);
    }

    #[test]
    fn an_explicit_limit_is_enforced_or_refused_with_the_reason() {
        let data = Some(Path::new("/data"));
        let asked = spec("resources = { disk = \"64Mi\" }");
        assert_eq!(
            limit(&asked, data, Ok(()), 9).expect("limit"),
            Some(DiskLimit {
                project: 9,
                bytes: 64 << 20
            })
        );
        let err = limit(&asked, data, Err("/data is mounted without `prjquota`"), 9)
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.starts_with("resources.disk cannot be enforced on this board (/data is mounted without `prjquota`)"), "{text}");
        let err = limit(&asked, None, Ok(()), 9).expect_err("refused");
        assert!(
            err.to_string().contains("it has no data partition"),
            "{err}"
        );
    }
}
