//! Reading the user's config directory, the future contents of the `BATON-CFG` partition.
//!
//! Every file is read into memory (the partition is small), `cluster.toml` gets its missing
//! secrets generated, and every TOML file must parse, so a mistake is reported on the laptop
//! with file and line instead of on the board.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton_spec::board_config::{self, AddedSecrets};
use baton_spec::{BoardConfig, ConfigErrors};

/// Largest config directory accepted (the partition must also hold what users add later).
pub const MAX_TOTAL_BYTES: u64 = 32 << 20;

/// Errors reading the config directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory does not exist or is not a directory.
    #[error("config directory {0}: does not exist or is not a directory")]
    NotADirectory(PathBuf),
    /// A file or directory could not be read.
    #[error("config directory: reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file name the FAT partition cannot hold.
    #[error("config directory: {0}: file names must be UTF-8 without ':', '\\\\', '*', '?', '\"', '<', '>', '|'")]
    BadName(PathBuf),
    /// Too much data for the config partition.
    #[error("config directory {path}: {bytes} bytes is more than the {max} bytes the config partition takes")]
    TooLarge {
        /// The directory.
        path: PathBuf,
        /// Total size found.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A configuration file does not parse or validate.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// The config directory as it will be written to the partition.
#[derive(Debug, Clone, Default)]
pub struct ConfigTree {
    /// Files by path relative to the directory root, `/`-separated.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Secrets the builder generated because the user's file lacked them.
    pub added: AddedSecrets,
    /// The validated cluster configuration.
    pub cluster: Option<BoardConfig>,
}

impl ConfigTree {
    /// Reads `dir`, fills in missing secrets with `token` and `key`, and validates.
    pub fn read(dir: &Path, token: &str, key: &str) -> Result<ConfigTree, Error> {
        if !dir.is_dir() {
            return Err(Error::NotADirectory(dir.to_path_buf()));
        }
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        walk(dir, dir, &mut files, &mut total)?;
        if total > MAX_TOTAL_BYTES {
            return Err(Error::TooLarge {
                path: dir.to_path_buf(),
                bytes: total,
                max: MAX_TOTAL_BYTES,
            });
        }

        let mut errors = Vec::new();
        let mut specs = Vec::new();
        for (name, bytes) in &files {
            let Some(spec_file) = name.strip_prefix("services/") else {
                continue;
            };
            match std::str::from_utf8(bytes) {
                Ok(text) => specs.push((spec_file.to_string(), text.to_string())),
                Err(_) => errors.push(not_utf8(name)),
            }
        }
        let loaded = baton_spec::service::load_services(&specs);
        errors.extend(loaded.errors);
        for spec in &loaded.specs {
            if let Some(path) = spec.image.archive_path() {
                let key = path.to_string_lossy().replace('\\', "/");
                if !files
                    .keys()
                    .any(|f| f == &key || f.starts_with(&format!("{key}/")))
                {
                    errors.push(baton_spec::ConfigError {
                        file: format!("services/{}.toml", spec.name),
                        line: None,
                        field: "image".to_string(),
                        message: format!("{key} is not in the config directory"),
                    });
                }
            }
        }

        let original = match files.get(board_config::FILE_NAME) {
            Some(bytes) => match String::from_utf8(bytes.clone()) {
                Ok(text) => text,
                Err(_) => {
                    errors.push(not_utf8(board_config::FILE_NAME));
                    String::new()
                }
            },
            None => String::new(),
        };
        let mut tree = ConfigTree::default();
        match board_config::fill_missing_secrets(board_config::FILE_NAME, &original, token, key) {
            Ok((text, added)) => match BoardConfig::parse(board_config::FILE_NAME, &text) {
                Ok(config) => {
                    // As the board will at card load: specs against its `[front_door]`.
                    for spec in &loaded.specs {
                        let file = format!("{}.toml", spec.name);
                        // FAT keeps names in any case: match as the board reads them.
                        if let Some((found, text)) =
                            specs.iter().find(|(f, _)| f.eq_ignore_ascii_case(&file))
                        {
                            let path = format!("services/{found}");
                            errors.extend(config.front_door.check_service(&path, text, spec));
                        }
                    }
                    tree.cluster = Some(config);
                    tree.added = added;
                    files.insert(board_config::FILE_NAME.to_string(), text.into_bytes());
                }
                Err(e) => errors.extend(e.0),
            },
            Err(e) => errors.extend(e.0),
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(ConfigErrors(errors)));
        }
        tree.files = files;
        Ok(tree)
    }
}

fn not_utf8(file: &str) -> baton_spec::ConfigError {
    baton_spec::ConfigError {
        file: file.to_string(),
        line: None,
        field: String::new(),
        message: "is not UTF-8 text".to_string(),
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), Error> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = std::fs::metadata(&path).map_err(read_err(&path))?;
        let rel = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|p| !p.chars().any(|c| ":\\*?\"<>|".contains(c)))
            .ok_or_else(|| Error::BadName(path.clone()))?
            .to_string();
        if kind.is_dir() {
            walk(root, &path, files, total)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(read_err(&path))?;
            *total += bytes.len() as u64;
            files.insert(rel, bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "generated-token-0123456789";
    const KEY: &str = "generated-key-0123456789abcdef0123456789";

    #[test]
    fn generates_secrets_when_there_is_no_cluster_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("services")).unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("images/web.tar"), b"archive").unwrap();
        std::fs::write(
            dir.path().join("services/web.toml"),
            "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\n",
        )
        .unwrap();
        let tree = ConfigTree::read(dir.path(), TOKEN, KEY).unwrap();
        assert_eq!(tree.added.token.as_deref(), Some(TOKEN));
        assert_eq!(tree.added.key.as_deref(), Some(KEY));
        assert_eq!(tree.cluster.unwrap().token, TOKEN);
        let names: Vec<_> = tree.files.keys().cloned().collect();
        assert_eq!(
            names,
            ["cluster.toml", "images/web.tar", "services/web.toml"]
        );
    }

    #[test]
    fn refuses_a_route_the_cluster_toml_has_no_identity_settings_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("services")).unwrap();
        std::fs::write(
            dir.path().join("services/web.toml"),
            "name = \"web\"\nimage = \"nginx\"\nport = 80\nroute = { auth = \"mtls\" }\n",
        )
        .unwrap();
        let err = ConfigTree::read(dir.path(), TOKEN, KEY).unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("{err}")
        };
        let e = &errors.0[0];
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("services/web.toml", Some(4), "route.auth"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("cluster.toml"),
            "[front_door.mtls]\nca = \"certs/clients.pem\"\n",
        )
        .unwrap();
        ConfigTree::read(dir.path(), TOKEN, KEY).expect("accepted with [front_door.mtls]");
        // A file named in capitals, as FAT may keep it, is checked all the same.
        std::fs::remove_file(dir.path().join("cluster.toml")).unwrap();
        std::fs::rename(
            dir.path().join("services/web.toml"),
            dir.path().join("services/WEB.TOML"),
        )
        .unwrap();
        let Err(Error::Invalid(errors)) = ConfigTree::read(dir.path(), TOKEN, KEY) else {
            panic!("a route needing [front_door.mtls] in WEB.TOML was accepted")
        };
        assert_eq!(errors.0[0].file, "services/WEB.TOML", "{}", errors.0[0]);
    }

    #[test]
    fn keeps_existing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let src = "[api]\ntoken = \"my-own-token-0123456789\"\n[cluster]\nkey = \"my-own-key-0123456789abcdef0123456789\"\n";
        std::fs::write(dir.path().join("cluster.toml"), src).unwrap();
        let tree = ConfigTree::read(dir.path(), TOKEN, KEY).unwrap();
        assert_eq!(tree.added, AddedSecrets::default());
        assert_eq!(tree.files["cluster.toml"], src.as_bytes());
    }

    #[test]
    fn names_file_and_line_of_a_toml_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("services")).unwrap();
        std::fs::write(
            dir.path().join("services/web.toml"),
            "name = \"web\"\nport = = 80\n",
        )
        .unwrap();
        let err = ConfigTree::read(dir.path(), TOKEN, KEY).unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("{err}")
        };
        assert_eq!(errors.0[0].file, "services/web.toml");
        assert_eq!(errors.0[0].line, Some(2));
    }

    #[test]
    fn refuses_invalid_service_specs_and_missing_archives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("services")).unwrap();
        std::fs::write(
            dir.path().join("services/web.toml"),
            "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("services/db.toml"),
            "name = \"db\"\nimage = \"postgres:16\"\nresources = { memory = \"lots\" }\n",
        )
        .unwrap();
        let err = ConfigTree::read(dir.path(), TOKEN, KEY)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("services/db.toml:3: resources.memory"),
            "{err}"
        );
        assert!(
            err.contains("services/web.toml: image: images/web.tar is not in the config directory"),
            "{err}"
        );
    }

    #[test]
    fn refuses_invalid_cluster_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cluster.toml"),
            "[network]\nmode = \"wifi\"\n",
        )
        .unwrap();
        let err = ConfigTree::read(dir.path(), TOKEN, KEY)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster.toml:2: network.mode"), "{err}");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ConfigTree::read(&dir.path().join("nope"), TOKEN, KEY).unwrap_err();
        assert!(matches!(err, Error::NotADirectory(_)));
    }
}
