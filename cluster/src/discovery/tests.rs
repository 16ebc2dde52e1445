//! Two boards in two network namespaces joined by a veth pair: one finds the other, and
//! python-zeroconf (the mDNS library Home Assistant and many others use, from Debian's
//! `python3-zeroconf`) browses and resolves the advertised board too.
//! Needs root, as CI runs the tests.

use super::*;
use std::os::fd::AsRawFd;
use std::process::Command;

/// Runs a command; its stdout, even when it failed (dig exits non-zero on a timeout).
fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces `a` and `b` joined by a veth pair with link-local addresses; removed on drop.
struct Pair {
    a: String,
    b: String,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let pid = std::process::id();
        let pair = Pair {
            a: format!("bdisc-{tag}-a-{pid}"),
            b: format!("bdisc-{tag}-b-{pid}"),
        };
        run("ip", &["netns", "add", &pair.a]);
        run("ip", &["netns", "add", &pair.b]);
        run(
            "ip",
            &[
                "-n", &pair.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", &pair.b,
            ],
        );
        for (ns, addr) in [(&pair.a, "169.254.10.1/16"), (&pair.b, "169.254.10.2/16")] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", "eth0"]);
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            // What a LAN's default route gives: somewhere to send multicast.
            run(
                "ip",
                &["-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"],
            );
        }
        pair
    }

    /// Runs `f` on a thread that has entered namespace `ns` (threads it starts stay there).
    fn within<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a namespace file we hold open; it changes only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread in namespace")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Browses `_baton._tcp.local.` with python-zeroconf for up to 10 s, printing each resolved board.
const ZEROCONF_BROWSE: &str = r#"
import sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
zc = Zeroconf(ip_version=IPVersion.V4Only)
seen = []
def changed(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Added:
        seen.append(name)
ServiceBrowser(zc, "_baton._tcp.local.", handlers=[changed])
deadline = time.time() + 10
done = False
while time.time() < deadline and not done:
    time.sleep(0.2)
    for name in list(seen):
        info = zc.get_service_info("_baton._tcp.local.", name, timeout=2000)
        if info is None:
            continue
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        addrs = ",".join(info.parsed_addresses())
        print(f"{name} port={info.port} cluster={props.get('cluster')} gossip={props.get('gossip')} addresses={addrs}")
        if name.startswith("pi-a."):
            done = True
zc.close()
"#;

fn advert(board: &str) -> Advert {
    Advert {
        cluster: "home".into(),
        board: board.into(),
        api_port: 7070,
        gossip_port: 7946,
    }
}

#[test]
fn a_board_is_found_by_another_and_by_python_zeroconf() {
    let pair = Pair::new("find");
    let a = Pair::within(&pair.a, || {
        let mut d = Discovery::start(&Interfaces::Named(vec!["eth0".into()])).expect("start a");
        d.advertise(&advert("pi-a")).expect("advertise a");
        d
    });
    let (b, found) = Pair::within(&pair.b, || {
        let mut d = Discovery::start(&Interfaces::All).expect("start b");
        d.advertise(&advert("pi-b")).expect("advertise b");
        let browser = d.browse().expect("browse");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut found = None;
        while found.is_none() && Instant::now() < deadline {
            if let Some(PeerEvent::Found(p)) = browser.next(Duration::from_secs(1)) {
                if p.board == "pi-a" {
                    found = Some(p);
                }
            }
        }
        (d, found)
    });
    let peer = found.expect("board b never found pi-a");
    assert_eq!(
        peer,
        Peer {
            board: "pi-a".into(),
            cluster: "home".into(),
            addresses: vec![Ipv4Addr::new(169, 254, 10, 1)],
            api_port: 7070,
            gossip_port: Some(7946),
        }
    );

    // Another implementation: python-zeroconf (Debian's python3-zeroconf) browses and resolves it.
    let listed = output(
        "ip",
        &[
            "netns",
            "exec",
            &pair.b,
            "/usr/bin/python3",
            "-c",
            ZEROCONF_BROWSE,
        ],
    );
    assert!(
        listed.contains(
            "pi-a._baton._tcp.local. port=7070 cluster=home gossip=7946 addresses=169.254.10.1"
        ),
        "python-zeroconf listed {listed:?}"
    );

    // A goodbye removes the board from the other's view.
    let browser_ns = pair.b.clone();
    a.shutdown();
    let gone = Pair::within(&browser_ns, move || {
        let browser = b.browse().expect("browse");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut gone = false;
        while !gone && Instant::now() < deadline {
            gone = matches!(browser.next(Duration::from_secs(1)), Some(PeerEvent::Gone(n)) if n == "pi-a");
        }
        b.shutdown();
        gone
    });
    assert!(gone, "pi-a's goodbye never arrived");
}

#[test]
fn instance_names_lose_the_type_and_their_escapes() {
    assert_eq!(instance_name("pi-a._baton._tcp.local."), "pi-a");
    assert_eq!(instance_name("pi\\.a._baton._tcp.local."), "pi.a");
    assert_eq!(instance_name("odd"), "odd");
}
