//! Property tests of the uplink's parsers of what the LAN sends: SNTP replies, ARP packets and
//! DHCP messages. Any bytes are read without a panic, and what the parsers accept says what
//! the bytes said. (The first run found dhcproto 0.15 asserting the length of fixed-size
//! options, see `dhcp::wire`.) The number of cases is proptest's (256 each, `PROPTEST_CASES` to change it:
//! `scripts/fuzz` runs many more).

use std::net::Ipv4Addr;

use dhcproto::Decodable;
use proptest::prelude::*;

use super::arp::ArpPacket;
use super::dhcp::message::parse_reply;
use super::dhcp::wire::options_are_sound;
use super::sntp::{parse_reply as sntp_reply, Timestamp};

proptest! {
    #[test]
    fn sntp_replies_of_any_bytes_are_read_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = sntp_reply(&bytes);
    }

    #[test]
    fn an_accepted_sntp_reply_says_what_its_bytes_say(
        version in 3u8..=4,
        stratum in 1u8..=15,
        originate: u64,
        transmit in 1u64..,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = vec![0u8; 48];
        b[0] = (version << 3) | 4;
        b[1] = stratum;
        b[24..32].copy_from_slice(&originate.to_be_bytes());
        b[32..40].copy_from_slice(&transmit.to_be_bytes()); // received when sent
        b[40..48].copy_from_slice(&transmit.to_be_bytes());
        b.extend(tail);
        let reply = sntp_reply(&b).expect("a valid reply");
        prop_assert_eq!(reply.stratum, stratum);
        prop_assert_eq!(reply.originate, Timestamp(originate));
        prop_assert_eq!(reply.transmit, Timestamp(transmit));
    }

    #[test]
    fn any_timestamp_converts_without_a_panic(t: u64) {
        let _ = Timestamp(t).to_unix();
    }

    #[test]
    fn arp_of_any_bytes_is_read_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(p) = ArpPacket::decode(&bytes) {
            // What it accepts is an Ethernet/IPv4 packet, and reads back as itself.
            prop_assert_eq!(&bytes[0..6], &[0, 1, 8, 0, 6, 4]);
            prop_assert_eq!(ArpPacket::decode(&p.encode()), Some(p));
        }
    }

    #[test]
    fn arp_packets_read_back_as_written(op: u16, sm: [u8; 6], si: [u8; 4], tm: [u8; 6], ti: [u8; 4]) {
        let p = ArpPacket {
            op,
            sender_mac: sm,
            sender_ip: Ipv4Addr::from(si),
            target_mac: tm,
            target_ip: Ipv4Addr::from(ti),
        };
        prop_assert_eq!(ArpPacket::decode(&p.encode()), Some(p));
    }

    #[test]
    fn dhcp_messages_of_any_bytes_are_read_without_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..700),
        mac: [u8; 6],
    ) {
        if options_are_sound(&bytes) {
            if let Ok(m) = dhcproto::v4::Message::from_bytes(&bytes) {
                let _ = parse_reply(&m, mac);
            }
        }
    }

    #[test]
    fn a_dhcp_header_with_garbage_options_is_read_without_a_panic(
        options in prop::collection::vec(any::<u8>(), 0..400),
        mac: [u8; 6],
    ) {
        // A BOOTREPLY for `mac` with the magic cookie, then anything.
        let mut b = vec![0u8; 236];
        b[0] = 2;
        b[1] = 1;
        b[2] = 6;
        b[28..34].copy_from_slice(&mac);
        b.extend_from_slice(&[99, 130, 83, 99]);
        b.extend(options);
        // What the socket lets through (see `dhcp::wire`) decodes without a panic.
        if options_are_sound(&b) {
            if let Ok(m) = dhcproto::v4::Message::from_bytes(&b) {
                let _ = parse_reply(&m, mac);
            }
        }
    }
}
