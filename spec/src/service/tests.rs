//! Whole-file tests of parsing and validation; the corpus of bad specs is in spec/tests/.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const FULL: &str = r#"
name = "web"
image = "oci-archive:images/web.tar"
command = ["/web", "--port", "8080"]
args = ["-v"]
env = { GREETING = "hello", _X = "" }
workdir = "/srv/./web"
user = "1000:app"
port = 8080
publish = 8080
resources = { cpu = 0.5, memory = "64Mi", pids = 64 }
volumes = [{ name = "data", path = "/var/lib/web", readonly = false }, { name = "conf", path = "/etc/web", readonly = true }]
restart = "on-failure"
health = { http = "/healthz", interval = "5s", timeout = "2s", retries = 3, start_period = "10s" }
stop_timeout = "15s"
readonly_root = false
scale = { min = 0, max = 4, idle_after = "5m", target_concurrency = 10 }
allow = ["db"]
egress = "none"
capabilities = ["NET_RAW"]
host_ids = "writes the board's /data/shared as root"
route = { host = "shop.lan", path = "/", auth = "oidc" }
placement = { boards = ["pi-one"], labels = { disk = "ssd" } }

[[surge]]
dates = ["2026-11-27", 2026-11-28]
max = 12
"#;

#[test]
fn parses_a_full_spec() {
    let s = ServiceSpec::parse("services/web.toml", FULL).unwrap();
    assert_eq!(s.name, "web");
    assert_eq!(
        s.image,
        ImageSource::OciArchive {
            path: PathBuf::from("images/web.tar"),
            reference: None
        }
    );
    assert_eq!(s.workdir, Some(PathBuf::from("/srv/web")));
    assert_eq!(
        s.user,
        Some(User {
            user: Id::Number(1000),
            group: Some(Id::Name("app".into()))
        })
    );
    assert_eq!(
        s.resources,
        Resources {
            cpu_millis: Some(500),
            memory_bytes: 64 << 20,
            pids: 64,
            disk_bytes: None,
        }
    );
    assert_eq!(s.volumes.len(), 2);
    assert!(s.volumes[1].readonly);
    assert_eq!(s.restart, RestartPolicy::OnFailure);
    let h = s.health.clone().unwrap();
    assert_eq!(
        h.probe,
        Probe::Http {
            path: "/healthz".into()
        }
    );
    assert_eq!(h.start_period, Duration::from_secs(10));
    assert_eq!(s.stop_timeout, Duration::from_secs(15));
    assert_eq!(s.scale.min, 0);
    assert_eq!(s.scale.idle_after, Duration::from_secs(300));
    assert_eq!(s.egress, Egress::None);
    assert_eq!(s.capabilities, vec![Capability::NetRaw]);
    assert_eq!(s.route.as_ref().unwrap().auth, Auth::Oidc);
    assert_eq!(s.surge[0].dates[1].to_string(), "2026-11-28");
    assert_eq!(s.placement.labels["disk"], "ssd");
}

#[test]
fn minimal_spec_gets_the_documented_defaults() {
    let s = ServiceSpec::parse("web.toml", "name = \"web\"\nimage = \"nginx\"\n").unwrap();
    assert_eq!(s.resources.cpu_millis, defaults::CPU_MILLIS);
    assert_eq!(s.resources.memory_bytes, defaults::MEMORY_BYTES);
    assert_eq!(s.resources.pids, defaults::PIDS);
    assert_eq!(s.restart, defaults::RESTART);
    assert_eq!(s.stop_timeout, defaults::STOP_TIMEOUT);
    assert_eq!(s.readonly_root, defaults::READONLY_ROOT);
    assert_eq!((s.scale.min, s.scale.max), (1, 1));
    assert_eq!(s.egress, defaults::EGRESS);
    assert!(
        s.capabilities.is_empty(),
        "no capability is added by default"
    );
    assert!(s.health.is_none() && s.route.is_none() && s.command.is_none());
    assert!(
        s.host_ids.is_none(),
        "a user namespace of its own by default"
    );
    let s = ServiceSpec::parse(
        "web.toml",
        "name = \"web\"\nimage = \"nginx\"\nport = 80\nhealth.http = \"/\"\n",
    )
    .unwrap();
    let h = s.health.unwrap();
    assert_eq!(h.interval, defaults::HEALTH_INTERVAL);
    assert_eq!(h.timeout, defaults::HEALTH_TIMEOUT);
    assert_eq!(h.retries, defaults::HEALTH_RETRIES);
    // A short interval caps the default timeout.
    let s = ServiceSpec::parse(
        "web.toml",
        "name = \"web\"\nimage = \"nginx\"\nhealth = { tcp = 80, interval = \"1s\" }\n",
    )
    .unwrap();
    assert_eq!(s.health.unwrap().timeout, Duration::from_secs(1));
}

#[test]
fn full_spec_round_trips_through_canonical_toml() {
    let s = ServiceSpec::parse("services/web.toml", FULL).unwrap();
    let text = s.to_toml().unwrap();
    let again = ServiceSpec::parse("services/web.toml", &text)
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(again, s);
    assert_eq!(again.to_toml().unwrap(), text);
}

#[test]
fn reports_errors_in_several_top_level_keys_at_once() {
    let src =
        "name = \"web\"\nimage = 5\nport = \"x\"\nbogus = 1\nresources = { memory = \"1Pi\" }\n";
    let e = ServiceSpec::parse("services/web.toml", src).unwrap_err().0;
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        vec![(Some(2), "image"), (Some(3), "port"), (Some(4), "bogus")],
        "{e:?}"
    );
}

#[test]
fn syntax_errors_name_the_line_and_the_key_written_there() {
    for (src, line, field) in [
        ("name = \"web\"\n= 5\n", 2, ""),
        ("name = \"web\"\n[[surge]\n", 2, "surge"),
        ("name = \"web\"\nimage = nginx\n", 2, "image"),
        (
            "[resources]\nmemory = \"64Mi\"\npids = \n",
            3,
            "resources.pids",
        ),
        (
            "name = \"web\"\nresources = { cpu = 1,, }\n",
            2,
            "resources",
        ),
        ("name = 'web'\nimage = \"a\"\"\n", 2, "image"),
    ] {
        let e = ServiceSpec::parse("services/web.toml", src).unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].line, e[0].field.as_str()),
            (Some(line), field),
            "{src:?}: {}",
            e[0]
        );
    }
}

#[test]
fn any_value_swapped_for_junk_gives_located_errors_and_no_panic() {
    let lines: Vec<&str> = FULL.lines().collect();
    let junk = [
        "\"x\"",
        "-1",
        "0",
        "[]",
        "{}",
        "1.5",
        "true",
        "[1, \"a\"]",
        "{ a = 1 }",
        "2026-01-01",
        "\"\"",
        "nan",
        "99999999999",
    ];
    for (i, line) in lines.iter().enumerate() {
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        for value in junk {
            let mut mutated = lines.clone();
            let replaced = format!("{key} = {value}");
            mutated[i] = &replaced;
            let src = mutated.join("\n");
            if let Err(errors) = ServiceSpec::parse("services/web.toml", &src) {
                for e in errors.0 {
                    assert_eq!(e.file, "services/web.toml");
                    let l = e.line.unwrap_or(0);
                    assert!(l >= 1 && l <= lines.len(), "{replaced}: {e}");
                    assert!(!e.field.is_empty(), "{replaced}: {e}");
                }
            }
        }
    }
}

#[test]
fn only_the_listed_capabilities_may_be_added_and_errors_name_service_and_value() {
    let base = "name = \"web\"\nimage = \"nginx\"\n";
    let s = ServiceSpec::parse(
        "web.toml",
        &format!("{base}capabilities = [\"CAP_NET_RAW\"]\n"),
    )
    .unwrap();
    assert_eq!(s.capabilities, vec![Capability::NetRaw]);
    for (bad, want) in [
        ("SYS_ADMIN", "cannot add capability \"SYS_ADMIN\""),
        ("net_raw", "cannot add capability \"net_raw\""),
        ("SYS_CHROOT", "a spec may add only NET_RAW"),
    ] {
        let e = ServiceSpec::parse(
            "services/web.toml",
            &format!("{base}capabilities = [\"NET_RAW\", \"{bad}\"]\n"),
        )
        .unwrap_err()
        .0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].line, e[0].field.as_str()),
            (Some(3), "capabilities[1]")
        );
        assert!(e[0].message.contains("service \"web\""), "{}", e[0]);
        assert!(e[0].message.contains(want), "{}", e[0]);
    }
    let e = ServiceSpec::parse(
        "services/web.toml",
        &format!("{base}capabilities = [\"NET_RAW\", \"CAP_NET_RAW\"]\n"),
    )
    .unwrap_err()
    .0;
    assert!(e[0].message.contains("listed twice"), "{}", e[0]);
}

#[test]
fn disk_is_a_quantity_in_range_and_absent_by_default() {
    let with = |extra: &str| {
        ServiceSpec::parse(
            "svc.toml",
            &format!("name = \"svc\"\nimage = \"oci-archive:images/a.tar\"\n{extra}"),
        )
    };
    let s = with("resources = { disk = \"512Mi\" }").expect("valid");
    assert_eq!(s.resources.disk_bytes, Some(512 << 20));
    assert_eq!(with("").expect("valid").resources.disk_bytes, None);
    let err = with("resources = { disk = \"512Ki\" }").expect_err("too small");
    assert!(err.to_string().contains("resources.disk"), "{err}");
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = with("resources = { disk = \"lots\" }").expect_err("not a quantity");
    assert!(err.to_string().contains("resources.disk"), "{err}");
}

#[test]
fn host_ids_need_a_reason() {
    let base = "name = \"web\"\nimage = \"nginx\"\n";
    let s = ServiceSpec::parse(
        "web.toml",
        &format!("{base}host_ids = \" needs raw disks \"\n"),
    )
    .unwrap();
    assert_eq!(s.host_ids.as_deref(), Some("needs raw disks"));
    for bad in [
        "\"\"",
        "\"   \"",
        "\"a\\nb\"",
        &format!("\"{}\"", "x".repeat(201)),
    ] {
        let e = ServiceSpec::parse("services/web.toml", &format!("{base}host_ids = {bad}\n"))
            .unwrap_err()
            .0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].line, e[0].field.as_str()),
            (Some(3), "host_ids"),
            "{bad}"
        );
    }
}
