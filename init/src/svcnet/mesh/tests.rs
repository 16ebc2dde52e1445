//! Keys (RFC 7748 vector, key file) and the peer and route decisions. The message bytes are
//! tested in `wire_tests`, the kernel side (as far as a kernel without WireGuard goes) in
//! `netns_tests`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;

use super::device::KEEPALIVE_SECS;
use super::plan::{effective_peers, peer_changes, route_changes, LinkRoute};
use super::*;
use baton_testnet::TempDir;

/// RFC 7748 section 6.1: Alice's private key, and her public key in base64 (as `wg pubkey`
/// prints it for the private key `dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=`).
pub(super) const ALICE_PRIVATE: &str =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PRIVATE_B64: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const ALICE_PUBLIC_B64: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

pub(super) fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

#[test]
fn public_key_of_rfc7748_alice_in_base64() {
    let pair = Keypair::from_private(hex32(ALICE_PRIVATE));
    assert_eq!(pair.public(), PublicKey(hex32(ALICE_PUBLIC)));
    assert_eq!(pair.public().to_string(), ALICE_PUBLIC_B64);
    assert_eq!(
        ALICE_PUBLIC_B64.parse::<PublicKey>().expect("parses"),
        pair.public()
    );
    // The private key never shows in Debug output.
    assert!(!format!("{pair:?}").contains("private"));
}

#[test]
fn bad_public_keys_are_refused_with_the_reason() {
    let short = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Sp".parse::<PublicKey>();
    let e = short.expect_err("too short").to_string();
    assert!(
        e.contains("is not a WireGuard key") && e.contains("instead of 32"),
        "{e}"
    );
    let junk = "not base64 at all!".parse::<PublicKey>();
    assert!(junk.expect_err("junk").to_string().contains("bad base64"));
    assert!("".parse::<PublicKey>().is_err());
}

#[test]
fn key_file_is_created_0600_and_reloaded_identical() {
    let dir = TempDir::new("mesh-key-new");
    let path = dir.0.join("state/mesh.key");
    let first = Keypair::load_or_create(&path).expect("creates");
    let meta = std::fs::metadata(&path).expect("key file written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("readable");
    assert_eq!(text.len(), 45, "one line of 44 base64 characters: {text:?}");
    assert!(text.ends_with('\n'));
    // Clamped as `wg genkey` writes it.
    let raw: PublicKey = text.trim().parse().expect("base64 of 32 bytes");
    assert_eq!(raw.0[0] & 7, 0);
    assert_eq!(raw.0[31] & 0xc0, 0x40);
    let again = Keypair::load_or_create(&path).expect("reloads");
    assert_eq!(again.public(), first.public());
    assert_eq!(std::fs::read_to_string(&path).expect("still there"), text);
    // No temp file left behind.
    let names: Vec<_> = std::fs::read_dir(dir.0.join("state"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("mesh.key")]);
}

#[test]
fn key_file_written_by_wg_genkey_is_read() {
    let dir = TempDir::new("mesh-key-wg");
    let path = dir.0.join("mesh.key");
    std::fs::write(&path, format!("{ALICE_PRIVATE_B64}\n")).expect("write");
    let pair = Keypair::load_or_create(&path).expect("loads");
    assert_eq!(pair.public().to_string(), ALICE_PUBLIC_B64);
}

#[test]
fn corrupt_key_file_is_an_error_naming_it_and_is_kept() {
    let dir = TempDir::new("mesh-key-bad");
    let path = dir.0.join("mesh.key");
    for junk in ["", "garbage\n", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Sp\n"] {
        std::fs::write(&path, junk).expect("write");
        let e = Keypair::load_or_create(&path).expect_err("not a key");
        assert!(matches!(e, Error::KeyFormat { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), junk);
    }
}

#[test]
fn unreadable_key_path_is_an_error_naming_it() {
    let dir = TempDir::new("mesh-key-dir");
    // A directory where the file should be.
    let path = dir.0.join("mesh.key");
    std::fs::create_dir(&path).expect("mkdir");
    let e = Keypair::load_or_create(&path).expect_err("a directory");
    assert!(matches!(e, Error::KeyFile { .. }), "{e:?}");
    assert!(e.to_string().contains("mesh.key"));
}

fn key(b: u8) -> PublicKey {
    PublicKey([b; 32])
}

fn net(a: [u8; 4], prefix: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(a), prefix)
}

fn peer(b: u8) -> Peer {
    Peer {
        key: key(b),
        endpoint: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, b), PORT),
        allowed: vec![net([10, 88, b, 0], 24)],
    }
}

/// The kernel's view of `p` as [`Mesh::set_peers`] leaves it.
fn status_of(p: &Peer) -> PeerStatus {
    PeerStatus {
        key: p.key,
        endpoint: Some(SocketAddr::V4(p.endpoint)),
        last_handshake: None,
        rx_bytes: 10,
        tx_bytes: 20,
        keepalive: KEEPALIVE_SECS,
        allowed: p.allowed.clone(),
    }
}

#[test]
fn same_peers_again_change_nothing() {
    let wanted = effective_peers(&[peer(2), peer(3)], key(1));
    let current: Vec<_> = wanted.iter().map(status_of).collect();
    assert!(peer_changes(&current, &wanted).is_empty());
}

#[test]
fn new_changed_and_gone_peers_are_the_only_changes() {
    let mut moved = peer(3);
    moved.endpoint = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 33), PORT);
    let wanted = effective_peers(&[peer(2), moved.clone(), peer(5)], key(1));
    let current = vec![
        status_of(&peer(2)),
        status_of(&peer(3)),
        status_of(&peer(4)),
    ];
    let changes = peer_changes(&current, &wanted);
    assert_eq!(changes.upsert, vec![moved, peer(5)]);
    assert_eq!(changes.remove, vec![key(4)]);
}

#[test]
fn keepalive_or_allowed_networks_differing_in_the_kernel_are_fixed() {
    let wanted = effective_peers(&[peer(2), peer(3)], key(1));
    let mut no_keepalive = status_of(&peer(2));
    no_keepalive.keepalive = 0;
    let mut extra_net = status_of(&peer(3));
    extra_net.allowed.push(net([10, 99, 0, 0], 16));
    let changes = peer_changes(&[no_keepalive, extra_net], &wanted);
    assert_eq!(changes.upsert, wanted);
    assert!(changes.remove.is_empty());
}

#[test]
fn wanted_peers_lose_own_key_and_repeats_and_get_normal_networks() {
    let mut messy = peer(2);
    messy.allowed = vec![
        net([10, 88, 2, 1], 24),
        net([10, 77, 0, 0], 16),
        net([10, 88, 2, 0], 24),
    ];
    let mut repeat = peer(2);
    repeat.endpoint = SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 1);
    let got = effective_peers(&[peer(1), messy, repeat], key(1));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].endpoint,
        peer(2).endpoint,
        "the first of repeated keys counts"
    );
    assert_eq!(
        got[0].allowed,
        vec![net([10, 77, 0, 0], 16), net([10, 88, 2, 0], 24)]
    );
    // The kernel reports normalised networks, so the messy peer in place is no change.
    let current = vec![status_of(&got[0])];
    assert!(peer_changes(&current, &got).is_empty());
}

#[test]
fn routes_are_added_kept_and_removed_to_match_the_peers() {
    let src = Ipv4Addr::new(10, 88, 1, 1);
    let peers = effective_peers(&[peer(2), peer(3), peer(4)], key(1));
    let route = |n: Ipv4Net, source: Option<Ipv4Addr>, metric: u32| LinkRoute {
        net: n,
        source,
        metric,
    };
    let current = vec![
        route(net([10, 88, 2, 0], 24), Some(src), 0), // right: kept
        route(net([10, 88, 3, 0], 24), None, 0),      // no source: replaced
        route(net([10, 88, 9, 0], 24), Some(src), 0), // gone peer: removed
        route(net([10, 88, 4, 0], 24), Some(src), 5), // other metric: replaced
    ];
    let todo = route_changes(&current, &peers, src);
    assert_eq!(todo.remove, vec![1, 2, 3]);
    assert_eq!(
        todo.add,
        vec![net([10, 88, 3, 0], 24), net([10, 88, 4, 0], 24)]
    );
    let settled = vec![
        route(net([10, 88, 2, 0], 24), Some(src), 0),
        route(net([10, 88, 3, 0], 24), Some(src), 0),
        route(net([10, 88, 4, 0], 24), Some(src), 0),
    ];
    let todo = route_changes(&settled, &peers, src);
    assert!(todo.add.is_empty() && todo.remove.is_empty(), "{todo:?}");
    let none = route_changes(&settled, &[], src);
    assert_eq!(none.remove, vec![0, 1, 2]);
    assert!(none.add.is_empty());
}
