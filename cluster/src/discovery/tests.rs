//! Two boards in two network namespaces joined by a veth pair: one finds the other, and
//! python-zeroconf (the mDNS library Home Assistant and many others use, from Debian's
//! `python3-zeroconf`) browses and resolves the advertised board too.
//! Needs root, as CI runs the tests.

use super::*;
use baton_testnet::Lan;

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
    let lan = Lan::new("disc-find", "169.254.10.1/16", "169.254.10.2/16");
    let a = lan.a.run(|| {
        let mut d = Discovery::start(&Interfaces::Named(vec!["eth0".into()])).expect("start a");
        d.advertise(&advert("pi-a")).expect("advertise a");
        d
    });
    let (b, found) = lan.b.run(|| {
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
    let (_, listed, _) = lan.b.exec("/usr/bin/python3", &["-c", ZEROCONF_BROWSE]);
    assert!(
        listed.contains(
            "pi-a._baton._tcp.local. port=7070 cluster=home gossip=7946 addresses=169.254.10.1"
        ),
        "python-zeroconf listed {listed:?}"
    );

    // A goodbye removes the board from the other's view.
    a.shutdown();
    let gone = lan.b.run(move || {
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
