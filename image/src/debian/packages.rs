//! A parsed `Packages` index and resolving a package name to the exact file to download.

use std::collections::HashMap;

use super::{control, version};

/// Errors from reading an index or resolving a package in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stanza lacks a field the builder needs.
    #[error("package {package} in {index} has no usable {field} field")]
    BadStanza {
        /// Which index (suite/component).
        index: String,
        /// The package's name.
        package: String,
        /// The missing or malformed field.
        field: &'static str,
    },
    /// The package is not in the index.
    #[error("package {package} is not in {index}{via}")]
    NotFound {
        /// Which index.
        index: String,
        /// The package's name.
        package: String,
        /// " (a dependency of X)" when reached through a metapackage.
        via: String,
    },
}

/// One binary package as listed in a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Filename`: the path of the .deb below the mirror's base URL (`pool/...`).
    pub filename: String,
    /// `SHA256` of the .deb, lower-case hex.
    pub sha256: String,
    /// `Size` of the .deb in bytes.
    pub size: u64,
    /// Names of the packages in `Depends` (first alternative of each, without versions).
    pub depends: Vec<String>,
}

/// All packages of one suite/component/architecture.
#[derive(Debug, Clone, Default)]
pub struct PackageIndex {
    name: String,
    by_name: HashMap<String, Vec<Package>>,
}

impl PackageIndex {
    /// Parses the text of a `Packages` file; `name` (e.g. `bookworm/main`) labels errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, Error> {
        let mut by_name: HashMap<String, Vec<Package>> = HashMap::new();
        for stanza in control::stanzas(text) {
            let Some(pkg) = stanza.get("Package") else {
                continue;
            };
            let bad = |field| Error::BadStanza {
                index: name.to_string(),
                package: pkg.to_string(),
                field,
            };
            let sha256 = stanza.get("SHA256").ok_or_else(|| bad("SHA256"))?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("SHA256"));
            }
            let package = Package {
                name: pkg.to_string(),
                version: stanza
                    .get("Version")
                    .ok_or_else(|| bad("Version"))?
                    .to_string(),
                filename: stanza
                    .get("Filename")
                    .filter(|f| f.starts_with("pool/") && !f.contains(".."))
                    .ok_or_else(|| bad("Filename"))?
                    .to_string(),
                sha256: sha256.to_ascii_lowercase(),
                size: stanza
                    .get("Size")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("Size"))?,
                depends: stanza
                    .get("Depends")
                    .map(dependency_names)
                    .unwrap_or_default(),
            };
            by_name
                .entry(package.name.clone())
                .or_default()
                .push(package);
        }
        Ok(Self {
            name: name.to_string(),
            by_name,
        })
    }

    /// The newest version of `name`.
    pub fn get(&self, name: &str) -> Option<&Package> {
        self.by_name
            .get(name)?
            .iter()
            .max_by(|a, b| version::compare(&a.version, &b.version))
    }

    /// The exact version `version` of `name`.
    pub fn get_version(&self, name: &str, version: &str) -> Option<&Package> {
        self.by_name
            .get(name)?
            .iter()
            .find(|p| p.version == version)
    }

    /// Resolves `name` to the package whose file is wanted: the newest version of `name`, except
    /// that a kernel metapackage (`linux-image-<flavour>`, e.g. `linux-image-arm64`) is followed
    /// to the real kernel it depends on (`linux-image-<release>-<flavour>`), whose .deb holds the
    /// kernel, DTBs and modules.
    pub fn resolve(&self, name: &str) -> Result<&Package, Error> {
        let not_found = |package: &str, via: String| Error::NotFound {
            index: self.name.clone(),
            package: package.to_string(),
            via,
        };
        let pkg = self
            .get(name)
            .ok_or_else(|| not_found(name, String::new()))?;
        let Some(flavour) = name.strip_prefix("linux-image-") else {
            return Ok(pkg);
        };
        let real = pkg.depends.iter().find(|d| {
            d.as_str() != name
                && d.starts_with("linux-image-")
                && d.ends_with(&format!("-{flavour}"))
                && d.as_bytes()
                    .get("linux-image-".len())
                    .is_some_and(u8::is_ascii_digit)
        });
        match real {
            Some(real) => self
                .get(real)
                .ok_or_else(|| not_found(real, format!(" (a dependency of {name})"))),
            None => Ok(pkg),
        }
    }
}

/// Package names of a `Depends` value: the first alternative of each item, versions dropped.
fn dependency_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|item| {
            let first = item.split('|').next()?.trim();
            let name = first.split([' ', '(', ':']).next()?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, version: &str, depends: &str) -> String {
        format!(
            "Package: {name}\nSource: linux-signed-arm64 ({version})\nVersion: {version}\n\
             Architecture: arm64\nDepends: {depends}\nFilename: pool/main/l/x/{name}_{version}_arm64.deb\n\
             Size: 1234\nSHA256: {}\nDescription: test\n multi-line\n\n",
            "ab".repeat(32)
        )
    }

    #[test]
    fn follows_kernel_metapackage_to_newest_real_kernel() {
        let text = [
            stanza("linux-image-arm64", "6.1.99-1", "linux-image-6.1.0-22-arm64 (= 6.1.99-1)"),
            stanza("linux-image-arm64", "6.1.170-1", "linux-image-6.1.0-47-arm64 (= 6.1.170-1)"),
            stanza("linux-image-6.1.0-47-arm64", "6.1.170-1", "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool"),
            stanza("linux-image-6.1.0-22-arm64", "6.1.99-1", "kmod"),
            stanza("linux-image-arm64-dbg", "6.1.170-1", "linux-image-6.1.0-47-arm64-dbg"),
            stanza("raspi-firmware", "1:1.20230405-1", "dosfstools, dpkg (>= 1.18.4)"),
        ]
        .concat();
        let index = PackageIndex::parse(&text, "bookworm/main").unwrap();
        let k = index.resolve("linux-image-arm64").unwrap();
        assert_eq!(k.name, "linux-image-6.1.0-47-arm64");
        assert_eq!(k.version, "6.1.170-1");
        assert_eq!(
            k.filename,
            "pool/main/l/x/linux-image-6.1.0-47-arm64_6.1.170-1_arm64.deb"
        );
        assert_eq!(k.size, 1234);
        assert_eq!(k.depends, ["kmod", "linux-base", "initramfs-tools"]);
        assert_eq!(
            index.resolve("raspi-firmware").unwrap().version,
            "1:1.20230405-1"
        );
        assert!(index.get_version("linux-image-arm64", "6.1.99-1").is_some());
        let err = index.resolve("linux-image-rpi").unwrap_err();
        assert_eq!(
            err.to_string(),
            "package linux-image-rpi is not in bookworm/main"
        );
    }

    #[test]
    fn missing_real_kernel_names_the_metapackage() {
        let text = stanza(
            "linux-image-arm64",
            "6.1.170-1",
            "linux-image-6.1.0-47-arm64 (= 6.1.170-1)",
        );
        let index = PackageIndex::parse(&text, "bookworm/main").unwrap();
        let err = index.resolve("linux-image-arm64").unwrap_err().to_string();
        assert!(err.contains("linux-image-6.1.0-47-arm64"), "{err}");
        assert!(err.contains("dependency of linux-image-arm64"), "{err}");
    }

    #[test]
    fn rejects_stanzas_without_checksum_or_with_odd_paths() {
        let text = stanza("a", "1", "b").replace(&"ab".repeat(32), "short");
        assert!(matches!(
            PackageIndex::parse(&text, "s/c"),
            Err(Error::BadStanza {
                field: "SHA256",
                ..
            })
        ));
        let text = stanza("a", "1", "b").replace("pool/main", "../etc");
        assert!(matches!(
            PackageIndex::parse(&text, "s/c"),
            Err(Error::BadStanza {
                field: "Filename",
                ..
            })
        ));
    }
}
