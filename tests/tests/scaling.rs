//! Scaling with the load under QEMU: three boards and a LAN station, one boot for every case.
//! A `min = 0` service starts on the first request through the front door and that request is
//! served, and again on a call from another service to its name; many slow requests at once raise a service to its `max` and never past it; a surge
//! entry for the board's today raises the count past `scale.max` with no load at all; after
//! the idle time the counts go back to `min`, and to zero; a `freeze` service's last instance is
//! frozen when idle and thaws on a request; a service whose image cannot start makes a held
//! request end in 503 with `Retry-After` after its hold timeout while the board answers.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use baton::client::Client;
use baton_qemu::{Forward, Lab, LabConfig};
use baton_tests::view::{board_name, get as api_get};
use baton_tests::web::{board_addresses, get};
use baton_tests::{api, build_image_with, repo_root, wait_ready, wait_until, API_PORT, TOKEN};

const CLUSTER: &str = "scaling";
const KEY: &str = "e2e-scaling-key-0123456789abcdef0123456789ab";

fn cluster_toml() -> String {
    format!(
        "[cluster]\nname = \"{CLUSTER}\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n\
         [time]\nservers = []\n\n[front_door]\nhttp = 80\nhttps = 0\n"
    )
}

/// A routed service of the example image at `<name>.lan`, with `scale` and more lines.
fn spec(name: &str, image: &str, scale: &str, more: &str) -> String {
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/{image}\"\nport = 8080\n\
         scale = {{ {scale} }}\nresources = {{ memory = \"32Mi\" }}\n\
         health = {{ http = \"/healthz\", interval = \"5s\" }}\n\
         env = {{ GREETING = \"{name}\" }}\nroute = {{ host = \"{name}.lan\" }}\n{more}"
    )
}

const IDLE: &str = "idle_after = \"10s\", window = \"6s\"";

fn busy(surge: &str) -> String {
    spec(
        "busy",
        "hello.tar",
        &format!("min = 1, max = 3, target_concurrency = 2, {IDLE}"),
        surge,
    )
}

/// The `scaling` object of `service` in board `client`'s `GET /v1/services`.
fn scaling(client: &Client, service: &str) -> Option<serde_json::Value> {
    let list = api_get(client, "/v1/services")?;
    list["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)
        .map(|s| s["scaling"].clone())
        .filter(|s| !s.is_null())
}

fn number(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Instances of `service` running cluster-wide, as `GET /v1/cluster`'s placement and the
/// instances of `GET /v1/services` show them: (running, desired).
fn counts(client: &Client, service: &str) -> Option<(u64, u64)> {
    let s = scaling(client, service)?;
    let list = api_get(client, "/v1/services")?;
    let svc = list["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?
        .clone();
    let running = svc["instances"]
        .as_array()?
        .iter()
        .filter(|i| i["state"] == "running")
        .count() as u64;
    Some((running, number(&s, "desired")))
}

/// The next calendar day after `day` (`YYYY-MM-DD`).
fn next_day(day: &str) -> String {
    let parts: Vec<u32> = day.split('-').map(|p| p.parse().expect("date")).collect();
    let (y, m, d) = (parts[0], parts[1], parts[2]);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    match (d < days, m < 12) {
        (true, _) => format!("{y:04}-{m:02}-{:02}", d + 1),
        (false, true) => format!("{y:04}-{:02}-01", m + 1),
        (false, false) => format!("{:04}-01-01", y + 1),
    }
}

#[test]
fn services_scale_with_the_load_to_zero_and_back_within_their_bounds() {
    let hello = baton_tests::example_archive();
    let files: Vec<(String, String)> = vec![
        ("cluster.toml".into(), cluster_toml()),
        (
            "services/sleepy.toml".into(),
            spec("sleepy", "hello.tar", &format!("min = 0, {IDLE}"), ""),
        ),
        ("services/busy.toml".into(), busy("")),
        // Calls sleepy by its name (through its virtual IP).
        (
            "services/caller.toml".into(),
            spec("caller", "hello.tar", "min = 1", "allow = [\"sleepy\"]\n"),
        ),
        (
            "services/icy.toml".into(),
            spec(
                "icy",
                "hello.tar",
                &format!("min = 0, idle = \"freeze\", {IDLE}"),
                "",
            ),
        ),
        (
            "services/broken.toml".into(),
            // Its image has no such program: no instance ever becomes ready.
            spec(
                "broken",
                "hello.tar",
                &format!("min = 0, hold_timeout = \"3s\", {IDLE}"),
                "command = [\"/no/such/program\"]\n",
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let image = build_image_with(
        "qemu-virt",
        &files,
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 3;
    config.memory_mib = 384;
    config.cpus = 1;
    config.station = true;
    let base = baton_qemu::free_ports(3).expect("free ports");
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    let serial = repo_root().join("target/e2e-serial/scaling");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU (as root): {e}"));
    for i in 1..=3 {
        wait_ready(&lab, i, 1);
    }
    let station = lab.station().expect("the station");
    let limit = Duration::from_secs(300);
    let clients: Vec<Client> = (1..=3).map(|i| api(&lab, i, TOKEN)).collect();
    let board1 = &clients[0];
    let addresses: BTreeMap<String, Ipv4Addr> = board_addresses(station, CLUSTER, 3, limit);
    let http = |i: usize| SocketAddr::from((addresses[&board_name(i)], 80));

    // The boards agree on a cluster of three and a decision for every service; the services
    // at zero run nowhere.
    for service in ["sleepy", "icy", "busy"] {
        wait_until(&format!("a decision for {service}"), limit, || {
            scaling(board1, service)
        });
    }
    wait_until("sleepy and icy at zero", limit, || {
        let (s, i) = (counts(board1, "sleepy")?, counts(board1, "icy")?);
        (s == (0, 0) && i == (0, 0)).then_some(())
    });

    // 1. The first request to a service at zero is held, starts one instance, and is served.
    let answer = station
        .run(|| get(http(1), "sleepy.lan", "/", &[]))
        .expect("station")
        .expect("an answer from sleepy");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.starts_with("sleepy from "), "{answer:?}");
    wait_until("one sleepy instance", limit, || {
        (counts(board1, "sleepy")? == (1, 1)).then_some(())
    });

    // 2. A service that cannot start: the held request ends in 503 with Retry-After after the
    //    hold timeout, while the board's API and other services answer.
    let answer = station
        .run(|| get(http(2), "broken.lan", "/", &[]))
        .expect("station")
        .expect("an answer from the front door");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");
    assert!(api_get(&clients[1], "/v1/status").is_some());
    let answer = station
        .run(|| get(http(2), "sleepy.lan", "/", &[]))
        .expect("station")
        .expect("an answer from sleepy");
    assert_eq!(answer.status, 200, "{answer:?}");

    // 3. Many slow requests at once raise busy to its max (3), never past it.
    let stop = AtomicBool::new(false);
    let served = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            station
                .run(|| {
                    std::thread::scope(|inner| {
                        for n in 0..12 {
                            let (stop, served) = (&stop, &served);
                            inner.spawn(move || {
                                while !stop.load(Ordering::SeqCst) {
                                    let board = 1 + n % 3;
                                    if get(http(board), "busy.lan", "/slow?ms=2000", &[])
                                        .is_some_and(|a| a.status == 200)
                                    {
                                        served.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            });
                        }
                    })
                })
                .expect("station");
        });
        wait_until("busy scaled to 3 and running 3", limit, || {
            (counts(board1, "busy")? == (3, 3)).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
    });
    assert!(served.load(Ordering::SeqCst) > 0);
    let decisions = scaling(board1, "busy").expect("busy's scaling")["decisions"].clone();
    let most = decisions
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| number(d, "count"))
        .max();
    assert_eq!(most, Some(3), "never past max: {decisions}");

    // 4. After the idle time, busy steps back down to 1, and sleepy to 0.
    wait_until("busy back at 1, sleepy at 0", limit, || {
        let (b, s) = (counts(board1, "busy")?, counts(board1, "sleepy")?);
        (b == (1, 1) && s == (0, 0)).then_some(())
    });

    // 5. A call from another service to sleepy's name, while sleepy is at zero: the activator
    //    holds it, sleepy starts, and the call is answered.
    let answer = station
        .run(|| {
            get(
                http(2),
                "caller.lan",
                "/fetch?url=http://sleepy:8080/&wait=40",
                &[],
            )
        })
        .expect("station")
        .expect("an answer from caller");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.starts_with("sleepy from "), "{answer:?}");
    wait_until("sleepy woken by the call", limit, || {
        (counts(board1, "sleepy")? == (1, 1)).then_some(())
    });

    // 6. A surge entry for the board's today (and tomorrow, so midnight cannot fail the test)
    //    raises busy to the surge's min, 4, past scale.max and without load.
    let today = scaling(board1, "busy").expect("busy")["today"]
        .as_str()
        .expect("today")
        .to_string();
    let surge = format!(
        "surge = [{{ dates = [\"{today}\", \"{}\"], max = 4, min = 4 }}]\n",
        next_day(&today)
    );
    let (code, body) = board1
        .send("PUT", "/v1/services/busy", Some(&busy(&surge)))
        .expect("PUT busy");
    assert_eq!(code, 202, "{body}");
    wait_until("busy at 4 for the surge", limit, || {
        let s = scaling(board1, "busy")?;
        (counts(board1, "busy")? == (4, 4) && s["max_why"] == format!("surge {today}"))
            .then_some(())
    });
    let (code, body) = board1
        .send("PUT", "/v1/services/busy", Some(&busy("")))
        .expect("PUT busy");
    assert_eq!(code, 202, "{body}");
    wait_until("busy back at 1 after the surge", limit, || {
        (counts(board1, "busy")? == (1, 1)).then_some(())
    });

    // 7. A freeze service: woken, then frozen when idle, then thawed by a request.
    let answer = station
        .run(|| get(http(3), "icy.lan", "/", &[]))
        .expect("station")
        .expect("an answer from icy");
    assert_eq!(answer.status, 200, "{answer:?}");
    wait_until("icy frozen after the idle time", limit, || {
        (number(&scaling(board1, "icy")?, "frozen") == 1).then_some(())
    });
    let answer = station
        .run(|| get(http(1), "icy.lan", "/", &[]))
        .expect("station")
        .expect("an answer from icy");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.starts_with("icy from "), "{answer:?}");
    wait_until("icy thawed", limit, || {
        (number(&scaling(board1, "icy")?, "frozen") == 0).then_some(())
    });
}
