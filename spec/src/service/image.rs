//! Where a service's image comes from: an archive or layout on the config partition, or a
//! registry reference.
//!
//! Local forms name a path relative to the config partition, optionally followed by `:<ref>`
//! to pick one image of several (the `org.opencontainers.image.ref.name` of an OCI layout, or
//! the `repo:tag` of a `docker save` archive):
//! `oci-archive:images/web.tar`, `docker-archive:images/web.tar`, `oci:images/web:v1`.
//! Anything else is a registry reference `[host[:port]/]repo[:tag][@sha256:<64 hex>]`; Docker Hub
//! short names are normalised (`nginx` is `docker.io/library/nginx:latest`).

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The registry Docker Hub references are normalised to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A validated image source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// `oci-archive:<path>[:<ref>]`: an OCI image layout in a tar file.
    OciArchive {
        /// Normalised path relative to the config partition.
        path: PathBuf,
        /// Which image of the layout, when it holds several.
        reference: Option<String>,
    },
    /// `docker-archive:<path>[:<repo:tag>]`: a `docker save` tar file.
    DockerArchive {
        /// Normalised path relative to the config partition.
        path: PathBuf,
        /// Which image of the archive, when it holds several.
        reference: Option<String>,
    },
    /// `oci:<dir>[:<ref>]`: an OCI image layout directory.
    OciLayout {
        /// Normalised path relative to the config partition.
        path: PathBuf,
        /// Which image of the layout, when it holds several.
        reference: Option<String>,
    },
    /// An image in a registry.
    Registry(ImageReference),
}

/// A normalised registry reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry host with optional port, for example `docker.io` or `localhost:5000`.
    pub registry: String,
    /// Repository path, for example `library/nginx`.
    pub repository: String,
    /// Tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// Pinned manifest digest, `sha256:<64 lowercase hex>`.
    pub digest: Option<String>,
}

/// Why an image text is not a valid source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Nothing was written.
    #[error("cannot be empty: write for example \"oci-archive:images/web.tar\" or \"nginx:1.27\"")]
    Empty,
    /// A local path that is absolute, empty, or leaves the config partition.
    #[error("{path:?} must be a path relative to the config partition that stays inside it (no leading '/', no '..' escaping it)")]
    PathEscapes {
        /// The path as written.
        path: String,
    },
    /// A local path with backslashes.
    #[error("{path:?} uses '\\': write paths with '/'")]
    Backslash {
        /// The path as written.
        path: String,
    },
    /// A `:<ref>` suffix with characters a reference cannot have.
    #[error("{reference:?} is not an image reference name: use letters, digits, '_', '.', '-', '/', ':'")]
    BadLocalReference {
        /// The reference as written.
        reference: String,
    },
    /// A registry reference that does not parse.
    #[error("{text:?} is not an image reference: {reason}")]
    BadReference {
        /// The reference as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ImageSource {
    /// Parses and normalises an image source.
    pub fn parse(text: &str) -> Result<ImageSource, ImageError> {
        if text.is_empty() {
            return Err(ImageError::Empty);
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, reference) = local(rest)?;
            return Ok(ImageSource::OciArchive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, reference) = local(rest)?;
            return Ok(ImageSource::DockerArchive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, reference) = local(rest)?;
            return Ok(ImageSource::OciLayout { path, reference });
        }
        ImageReference::parse(text).map(ImageSource::Registry)
    }

    /// The archive or layout path on the config partition; `None` for registry images.
    pub fn archive_path(&self) -> Option<&std::path::Path> {
        match self {
            ImageSource::OciArchive { path, .. }
            | ImageSource::DockerArchive { path, .. }
            | ImageSource::OciLayout { path, .. } => Some(path),
            ImageSource::Registry(_) => None,
        }
    }
}

impl fmt::Display for ImageSource {
    /// The canonical text, which [`ImageSource::parse`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, path, reference) = match self {
            ImageSource::OciArchive { path, reference } => ("oci-archive", path, reference),
            ImageSource::DockerArchive { path, reference } => ("docker-archive", path, reference),
            ImageSource::OciLayout { path, reference } => ("oci", path, reference),
            ImageSource::Registry(r) => return write!(f, "{r}"),
        };
        write!(f, "{prefix}:{}", path.display())?;
        match reference {
            Some(r) => write!(f, ":{r}"),
            None => Ok(()),
        }
    }
}

/// Splits `<path>[:<ref>]` and normalises the path. FAT file names cannot hold ':', so the
/// first ':' always starts the reference.
fn local(text: &str) -> Result<(PathBuf, Option<String>), ImageError> {
    let (path, reference) = match text.split_once(':') {
        Some((p, r)) => (p, Some(r)),
        None => (text, None),
    };
    if path.contains('\\') {
        return Err(ImageError::Backslash {
            path: path.to_string(),
        });
    }
    let normalised =
        normalise_relative(Path::new(path)).ok_or_else(|| ImageError::PathEscapes {
            path: path.to_string(),
        })?;
    if let Some(r) = reference {
        let ok = !r.is_empty()
            && r.len() <= 255
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c));
        if !ok {
            return Err(ImageError::BadLocalReference {
                reference: r.to_string(),
            });
        }
    }
    Ok((normalised, reference.map(str::to_string)))
}

/// Resolves `.` and `..` in a relative path; `None` when it is absolute, empty, or climbs out.
fn normalise_relative(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.iter().collect())
}

impl ImageReference {
    /// Parses and normalises `[host[:port]/]repo[:tag][@sha256:<hex>]`.
    pub fn parse(text: &str) -> Result<ImageReference, ImageError> {
        let bad = |reason: &str| ImageError::BadReference {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (name_tag, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        if let Some(d) = digest {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("the digest must be sha256:<64 lowercase hex digits>"))?;
            if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(bad("the digest must be sha256:<64 lowercase hex digits>"));
            }
        }
        // A ':' after the last '/' starts the tag; one before it belongs to host:port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad(
                    "a tag is 1-128 letters, digits, '_', '.', '-', not starting with '.' or '-'",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        check_registry(&registry).map_err(bad)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || repository.len() > 255 {
            return Err(bad(
                "the repository name is empty or longer than 255 characters",
            ));
        }
        if !repository.split('/').all(is_path_component) {
            return Err(bad("repository names use lowercase letters, digits and single '.', '_', '__' or '-' between them, in parts separated by '/'"));
        }
        let tag = match (tag, digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// The host to send registry API requests to (Docker Hub's API lives on its own host).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_registry(registry: &str) -> Result<(), &'static str> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err("the registry port must be a number from 1 to 65535");
        }
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("the registry host must be a host name or IPv4 address")
    }
}

/// One `/`-separated part of a repository: `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-`+.
fn is_path_component(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !part.starts_with(alnum) || !part.ends_with(alnum) {
        return false;
    }
    let mut separator = String::new();
    for c in part.chars() {
        if alnum(c) {
            let ok = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.chars().all(|s| s == '-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if ".-_".contains(c) {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> ImageReference {
        match ImageSource::parse(text) {
            Ok(ImageSource::Registry(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn local_sources() {
        assert_eq!(
            ImageSource::parse("oci-archive:images/web.tar"),
            Ok(ImageSource::OciArchive {
                path: PathBuf::from("images/web.tar"),
                reference: None
            })
        );
        assert_eq!(
            ImageSource::parse("oci:./images/../layouts/web:v1"),
            Ok(ImageSource::OciLayout {
                path: PathBuf::from("layouts/web"),
                reference: Some("v1".into())
            })
        );
        assert_eq!(
            ImageSource::parse("docker-archive:web.tar:web:latest"),
            Ok(ImageSource::DockerArchive {
                path: PathBuf::from("web.tar"),
                reference: Some("web:latest".into())
            })
        );
        for escaping in [
            "oci-archive:/images/web.tar",
            "oci-archive:../web.tar",
            "oci:images/../../x",
            "oci:",
            "oci:.",
            "docker-archive:a/..",
        ] {
            assert!(
                matches!(
                    ImageSource::parse(escaping),
                    Err(ImageError::PathEscapes { .. })
                ),
                "{escaping}: {:?}",
                ImageSource::parse(escaping)
            );
        }
        assert!(matches!(
            ImageSource::parse("oci:images\\web"),
            Err(ImageError::Backslash { .. })
        ));
        assert!(matches!(
            ImageSource::parse("oci:web:bad ref"),
            Err(ImageError::BadLocalReference { .. })
        ));
    }

    #[test]
    fn registry_references_are_normalised() {
        let r = reference("nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            reference("user/app:1.0").to_string(),
            "docker.io/user/app:1.0"
        );
        assert_eq!(
            reference("index.docker.io/nginx").to_string(),
            "docker.io/library/nginx:latest"
        );
        let r = reference("localhost:5000/team/web:v2");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/web");
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.api_host(), "localhost:5000");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = reference(&format!("ghcr.io/o/web@{digest}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        let r = reference(&format!("10.0.2.2:5000/web:1@{digest}"));
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "10.0.2.2:5000");
        assert_eq!(reference("a.b/c__d/e-f.g_h").repository, "c__d/e-f.g_h");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:abc",
            "nginx@sha512:aa",
            &format!("nginx@sha256:{}", "AB".repeat(32)),
            "localhost:0/x",
            "localhost:99999/x",
            "bad_host.io/x",
            "a..b",
            "a/-b",
            "a/b_",
            "a/b___c",
            "a/b._c",
            "host.io/",
            "a b",
        ] {
            assert!(
                matches!(
                    ImageSource::parse(bad),
                    Err(ImageError::BadReference { .. })
                ),
                "{bad}: {:?}",
                ImageSource::parse(bad)
            );
        }
        assert_eq!(ImageSource::parse(""), Err(ImageError::Empty));
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_source() {
        for text in [
            "nginx",
            "user/app:1",
            "localhost:5000/x/y@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "oci-archive:images/web.tar",
            "oci:a/./b/../c:ref/x:1",
            "docker-archive:w.tar",
        ] {
            let source = ImageSource::parse(text).unwrap();
            assert_eq!(ImageSource::parse(&source.to_string()), Ok(source.clone()));
        }
    }
}
