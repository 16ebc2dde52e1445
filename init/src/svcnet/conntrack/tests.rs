//! Dump answers built with the nftables wire writer (an encoder independent of the parser),
//! laid out as the kernel's `ctnetlink_fill_info` writes them; well-formed, cut short and with
//! hostile lengths.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::count::{in_flight, Tally, TCP_ESTABLISHED, TCP_SYN_RECV, TCP_SYN_SENT};
use super::dump::{absorb, request, Totals, ENTRY_TYPE};
use super::parse::{self, Entry};
use super::*;
use crate::svcnet::nft::wire::{message, Writer};

const SEQ: u32 = 77;
const NLM_F_MULTI: u16 = 0x2;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 89, 3, 7);

/// One entry of the dump as the kernel lays it out: both tuples, status, protocol info,
/// timeout and a few attributes counting ignores.
fn entry_attrs(dst: Ipv4Addr, dport: u16, proto: u8, state: Option<u8>, timeout: u32) -> Vec<u8> {
    let mut w = Writer::new();
    for (kind, src, to, sport, dp) in [
        (1, Ipv4Addr::new(10, 88, 0, 2), dst, 40000u16, dport),
        (
            2,
            Ipv4Addr::new(10, 88, 0, 9),
            Ipv4Addr::new(10, 88, 0, 2),
            8080,
            40000,
        ),
    ] {
        let tuple = w.nest(kind);
        let ip = w.nest(1);
        w.attr(1, &src.octets());
        w.attr(2, &to.octets());
        w.end(ip);
        let p = w.nest(2);
        w.attr(1, &[proto]);
        w.attr(2, &sport.to_be_bytes());
        w.attr(3, &dp.to_be_bytes());
        w.end(p);
        w.attr(3, &0u16.to_be_bytes()); // CTA_TUPLE_ZONE
        w.end(tuple);
    }
    w.u32_be(3, 0x18e); // CTA_STATUS
    w.u32_be(7, timeout);
    w.u32_be(8, 0); // CTA_MARK
    if let Some(state) = state {
        let info = w.nest(4);
        let tcp = w.nest(1);
        w.attr(1, &[state]);
        w.attr(2, &[7]); // window scale, ignored
        w.end(tcp);
        w.end(info);
    }
    w.u32_be(12, 0xdead_beef); // CTA_ID
    w.into_bytes()
}

fn datagram(entries: &[Vec<u8>], done: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for attrs in entries {
        message(&mut out, ENTRY_TYPE, NLM_F_MULTI, SEQ, 2, 0, attrs);
    }
    if done {
        // NLMSG_DONE: a header and the result, 0.
        out.extend_from_slice(&20u32.to_ne_bytes());
        out.extend_from_slice(&3u16.to_ne_bytes());
        out.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
        out.extend_from_slice(&SEQ.to_ne_bytes());
        out.extend_from_slice(&[0; 8]);
    }
    out
}

fn collect(bytes: &[u8], max: u64) -> Result<(bool, Totals, Vec<Entry>), Error> {
    let mut got = Vec::new();
    let mut totals = Totals::default();
    let done = absorb(bytes, SEQ, max, &mut totals, &mut |e: &Entry| got.push(*e))?;
    Ok((done, totals, got))
}

#[test]
fn parses_the_original_destination_state_and_timeout() {
    let bytes = datagram(
        &[entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_998)],
        true,
    );
    let (done, totals, got) = collect(&bytes, 10).expect("well-formed");
    assert!(done);
    assert_eq!(
        totals,
        Totals {
            read: 1,
            truncated: 0
        }
    );
    assert_eq!(
        got,
        vec![Entry {
            protocol: Some(6),
            destination: Some(SocketAddrV4::new(VIP, 80)),
            tcp_state: Some(TCP_ESTABLISHED),
            timeout: Some(431_998),
        }],
        "the original tuple, not the reply's"
    );
}

#[test]
fn entries_beyond_the_limit_are_counted_not_read() {
    let one = entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_999);
    let bytes = datagram(&[one.clone(), one.clone(), one], false);
    let (done, totals, got) = collect(&bytes, 2).expect("well-formed");
    assert!(!done, "no NLMSG_DONE yet");
    assert_eq!(
        totals,
        Totals {
            read: 2,
            truncated: 1
        }
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn kernel_errors_and_stray_messages() {
    // NLMSG_ERROR with -EOPNOTSUPP.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&36u32.to_ne_bytes());
    bytes.extend_from_slice(&2u16.to_ne_bytes());
    bytes.extend_from_slice(&0u16.to_ne_bytes());
    bytes.extend_from_slice(&SEQ.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(&(-libc::EOPNOTSUPP).to_ne_bytes());
    bytes.extend_from_slice(&[0; 16]);
    let err = collect(&bytes, 10).expect_err("refused");
    assert!(
        matches!(&err, Error::Kernel(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP)),
        "{err}"
    );
    // A message with another sequence number is not ours: neither read nor the end.
    let mut stray = Vec::new();
    message(
        &mut stray,
        ENTRY_TYPE,
        NLM_F_MULTI,
        SEQ + 1,
        2,
        0,
        &entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_999),
    );
    let (done, totals, _) = collect(&stray, 10).expect("skipped");
    assert!(!done);
    assert_eq!(totals, Totals::default());
}

#[test]
fn other_families_are_not_handed_on_and_a_failed_end_is_an_error() {
    let mut bytes = Vec::new();
    let attrs = entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_999);
    message(&mut bytes, ENTRY_TYPE, NLM_F_MULTI, SEQ, 10, 0, &attrs);
    let (done, totals, got) = collect(&bytes, 10).expect("well-formed");
    assert!(!done);
    assert_eq!(totals.read, 1, "parsed, so it counts against the limit");
    assert!(got.is_empty(), "an AF_INET6 entry is not counted");
    // NLMSG_DONE carrying -ENOBUFS: the dump failed.
    let mut end = datagram(&[], true);
    end[16..20].copy_from_slice(&(-libc::ENOBUFS).to_ne_bytes());
    let err = collect(&end, 10).expect_err("failed dump");
    assert!(
        matches!(&err, Error::Kernel(e) if e.raw_os_error() == Some(libc::ENOBUFS)),
        "{err}"
    );
}

#[test]
fn truncated_and_hostile_lengths_are_refused() {
    let good = datagram(
        &[entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_999)],
        true,
    );
    // Cut anywhere inside the first message: the header's length no longer fits.
    for cut in 1..good.len() - 20 {
        assert!(
            collect(&good[..cut], 10).is_err(),
            "cut at {cut} must not parse"
        );
    }
    // A message length beyond the datagram, or below a header.
    for len in [u32::MAX, good.len() as u32 + 4, 15, 0] {
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&len.to_ne_bytes());
        let err = collect(&bad, 10).expect_err("bad message length");
        assert!(
            err.to_string()
                .contains("message length out of bounds at byte 0"),
            "{err}"
        );
    }
    // The first attribute (CTA_TUPLE_ORIG at byte 20) with lengths below its header, past
    // its message, and at u16::MAX.
    for len in [0u16, 3, 0x7fff, u16::MAX] {
        let mut bad = good.clone();
        bad[20..22].copy_from_slice(&len.to_ne_bytes());
        let err = collect(&bad, 10).expect_err("bad attribute length");
        assert!(
            err.to_string()
                .contains("attribute length out of bounds at byte 20"),
            "{err}"
        );
    }
    // A nested attribute longer than its parent (CTA_TUPLE_IP, first inside the tuple).
    let mut bad = good.clone();
    let tuple_len = u16::from_ne_bytes([bad[20], bad[21]]);
    bad[24..26].copy_from_slice(&(tuple_len).to_ne_bytes());
    assert!(
        collect(&bad, 10).is_err(),
        "inner attribute past its parent"
    );
    // A fixed-size value of the wrong size: a 3-byte CTA_TIMEOUT.
    let mut w = Writer::new();
    w.attr(7, &[0, 1, 2]);
    let mut bytes = Vec::new();
    message(
        &mut bytes,
        ENTRY_TYPE,
        NLM_F_MULTI,
        SEQ,
        2,
        0,
        &w.into_bytes(),
    );
    let err = collect(&bytes, 10).expect_err("short timeout");
    assert!(
        err.to_string().contains("CTA_TIMEOUT of wrong size"),
        "{err}"
    );
    // An entry with no room for its nfgenmsg.
    let mut bytes = good[..16].to_vec();
    bytes[0..4].copy_from_slice(&16u32.to_ne_bytes());
    let err = collect(&bytes, 10).expect_err("no nfgenmsg");
    assert!(err.to_string().contains("truncated nfgenmsg"), "{err}");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic scramble of a real layout: every byte flipped in turn.
    let good = datagram(
        &[
            entry_attrs(VIP, 80, 6, Some(TCP_ESTABLISHED), 431_999),
            entry_attrs(VIP, 443, 17, None, 30),
        ],
        true,
    );
    for i in 0..good.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            let _ = collect(&bad, 10);
        }
    }
    let _ = parse::entry(&[], 0);
}

#[test]
fn request_is_a_dump_of_ipv4() {
    let r = request(9);
    assert_eq!(u32::from_ne_bytes([r[0], r[1], r[2], r[3]]), 20);
    assert_eq!(
        u16::from_ne_bytes([r[4], r[5]]),
        0x0101,
        "ctnetlink, IPCTNL_MSG_CT_GET"
    );
    assert_eq!(
        u16::from_ne_bytes([r[6], r[7]]),
        0x301,
        "NLM_F_REQUEST | NLM_F_DUMP"
    );
    assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 9);
    assert_eq!(&r[16..20], &[2, 0, 0, 0], "AF_INET, version 0, resource 0");
}

fn tcp(state: u8, timeout: u32) -> Entry {
    Entry {
        protocol: Some(6),
        destination: Some(SocketAddrV4::new(VIP, 80)),
        tcp_state: Some(state),
        timeout: Some(timeout),
    }
}

#[test]
fn in_flight_means_a_recent_packet_or_an_opening() {
    let t = Timeouts::default();
    // Established: within 3 s of one of the values a packet sets.
    for left in [432_000, 431_999, 431_997, 300, 299, 297] {
        assert!(in_flight(&tcp(TCP_ESTABLISHED, left), &t), "{left} s left");
    }
    for left in [431_996, 400_000, 296, 10, 0, 432_001] {
        assert!(!in_flight(&tcp(TCP_ESTABLISHED, left), &t), "{left} s left");
    }
    // Being opened: always.
    assert!(in_flight(&tcp(TCP_SYN_SENT, 5), &t));
    assert!(in_flight(&tcp(TCP_SYN_RECV, 5), &t));
    // Closing (TIME_WAIT), no timeout, not TCP: never.
    assert!(!in_flight(&tcp(7, 120), &t));
    assert!(!in_flight(
        &Entry {
            timeout: None,
            ..tcp(TCP_ESTABLISHED, 0)
        },
        &t
    ));
    let udp = Entry {
        protocol: Some(17),
        tcp_state: None,
        ..tcp(TCP_ESTABLISHED, 431_999)
    };
    assert!(!in_flight(&udp, &t));
    // A custom established timeout moves the window.
    let short = Timeouts {
        established: 3600,
        ..t
    };
    assert!(in_flight(&tcp(TCP_ESTABLISHED, 3598), &short));
    assert!(!in_flight(&tcp(TCP_ESTABLISHED, 431_999), &short));
}

#[test]
fn tally_counts_per_destination_inside_the_subnet() {
    let subnet = crate::svcnet::dns::DEFAULT_SUBNET;
    let mut tally = Tally::new(subnet, Timeouts::default());
    tally.add(&tcp(TCP_ESTABLISHED, 431_999));
    tally.add(&tcp(TCP_SYN_SENT, 60));
    tally.add(&tcp(TCP_ESTABLISHED, 1000)); // idle
    let other_port = Entry {
        destination: Some(SocketAddrV4::new(VIP, 443)),
        ..tcp(TCP_ESTABLISHED, 431_999)
    };
    tally.add(&other_port);
    let outside = Entry {
        destination: Some(SocketAddrV4::new(Ipv4Addr::new(10, 88, 0, 9), 80)),
        ..tcp(TCP_ESTABLISHED, 431_999)
    };
    tally.add(&outside);
    tally.add(&Entry {
        destination: None,
        ..tcp(TCP_ESTABLISHED, 431_999)
    });
    let map = tally.into_map();
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        vec![
            (SocketAddrV4::new(VIP, 80), 2),
            (SocketAddrV4::new(VIP, 443), 1)
        ]
    );
}

#[test]
fn timeouts_come_from_the_sysctls_when_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(Timeouts::read(dir.path()), None, "no conntrack, no value");
    std::fs::write(
        dir.path().join("nf_conntrack_tcp_timeout_established"),
        "7200\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("nf_conntrack_tcp_timeout_unacknowledged"),
        "nonsense",
    )
    .expect("write");
    assert_eq!(
        Timeouts::read(dir.path()),
        Some(Timeouts {
            established: 7200,
            ..Timeouts::default()
        })
    );
}
