//! The builder's CA: generated once per cluster, kept in the user's config directory with a
//! private key file, reused by the next build, and never written into the `--config` tree.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

const TOKEN: &str = "generated-token-0123456789";
const KEY: &str = "generated-key-0123456789abcdef0123456789";

fn tree(config: &Path) -> ConfigTree {
    ConfigTree::read(config, TOKEN, KEY).unwrap()
}

fn config_dir(root: &Path) -> PathBuf {
    let config = root.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("cluster.toml"), "[cluster]\nname = \"home\"\n").unwrap();
    config
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_first_build_generates_the_ca_and_keeps_a_private_copy() {
    let root = tempfile::tempdir().unwrap();
    let config = config_dir(root.path());
    let user = root.path().join("user");
    let mut first = tree(&config);
    assert_eq!(provide(&mut first, &user).unwrap(), Source::Generated);

    let keep = user.join("home");
    let mode = |name: &str| {
        std::fs::metadata(keep.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca.key"), 0o600);
    assert_eq!(
        std::fs::metadata(&keep).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        first.files["ca.pem"],
        std::fs::read(keep.join("ca.pem")).unwrap()
    );
    assert_eq!(
        first.files["ca.key"],
        std::fs::read(keep.join("ca.key")).unwrap()
    );
    // The partition gets the CA; the user's --config tree does not.
    assert_eq!(names(&config), ["cluster.toml"]);
    Ca::from_pem(
        std::str::from_utf8(&first.files["ca.pem"]).unwrap(),
        std::str::from_utf8(&first.files["ca.key"]).unwrap(),
    )
    .unwrap();

    // A second build for the cluster keeps the CA.
    let mut second = tree(&config);
    assert_eq!(provide(&mut second, &user).unwrap(), Source::UserCopy);
    assert_eq!(first.files["ca.pem"], second.files["ca.pem"]);
    assert_eq!(first.files["ca.key"], second.files["ca.key"]);
    assert_eq!(names(&config), ["cluster.toml"]);
}

#[test]
fn each_cluster_has_its_own_ca() {
    let root = tempfile::tempdir().unwrap();
    let user = root.path().join("user");
    let home = config_dir(&root.path().join("a"));
    let other = root.path().join("b/config");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("cluster.toml"), "[cluster]\nname = \"shed\"\n").unwrap();
    let mut a = tree(&home);
    let mut b = tree(&other);
    provide(&mut a, &user).unwrap();
    provide(&mut b, &user).unwrap();
    assert_ne!(a.files["ca.pem"], b.files["ca.pem"]);
    assert_eq!(names(&user), ["home", "shed"]);
}

#[test]
fn a_ca_in_the_config_tree_is_used_and_copied_once() {
    let root = tempfile::tempdir().unwrap();
    let config = config_dir(root.path());
    let ca = Ca::generate("home").unwrap();
    std::fs::write(config.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(config.join("ca.key"), ca.key_pem()).unwrap();
    let user = root.path().join("user");
    let mut t = tree(&config);
    assert_eq!(provide(&mut t, &user).unwrap(), Source::ConfigDir);
    assert_eq!(t.files["ca.pem"], ca.cert_pem().as_bytes());
    assert_eq!(
        std::fs::read_to_string(user.join("home/ca.pem")).unwrap(),
        ca.cert_pem()
    );
    let mode = std::fs::metadata(user.join("home/ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn half_a_ca_or_a_broken_one_is_an_error_naming_where() {
    let root = tempfile::tempdir().unwrap();
    let config = config_dir(root.path());
    let ca = Ca::generate("home").unwrap();
    std::fs::write(config.join("ca.pem"), ca.cert_pem()).unwrap();
    let user = root.path().join("user");
    let err = provide(&mut tree(&config), &user).unwrap_err().to_string();
    assert!(err.contains("has ca.pem but not ca.key"), "{err}");

    let other = Ca::generate("home").unwrap();
    std::fs::write(config.join("ca.key"), other.key_pem()).unwrap();
    let err = provide(&mut tree(&config), &user).unwrap_err().to_string();
    assert!(err.contains("the config directory"), "{err}");
    assert!(err.contains("is not the key"), "{err}");
    // Nothing was kept from a refused build.
    assert!(!user.join("home").exists());

    // A damaged user copy is named too, rather than silently replaced.
    std::fs::remove_file(config.join("ca.pem")).unwrap();
    std::fs::remove_file(config.join("ca.key")).unwrap();
    std::fs::create_dir_all(user.join("home")).unwrap();
    std::fs::write(user.join("home/ca.pem"), "garbage").unwrap();
    std::fs::write(user.join("home/ca.key"), ca.key_pem()).unwrap();
    let err = provide(&mut tree(&config), &user).unwrap_err().to_string();
    assert!(err.contains("user/home"), "{err}");
}

#[test]
fn builds_at_once_for_one_cluster_agree_on_one_ca() {
    let root = tempfile::tempdir().unwrap();
    let config = config_dir(root.path());
    let user = root.path().join("user");
    let cas: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut t = tree(&config);
                    provide(&mut t, &user).unwrap();
                    t.files["ca.pem"].clone()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let kept = std::fs::read(user.join("home/ca.pem")).unwrap();
    assert!(cas.iter().all(|c| *c == kept), "builds disagree on the CA");
    assert_eq!(names(&user), ["home"], "staging directories left behind");
}
