//! Property tests of the service-name server's reading of queries: any datagram is decided on
//! without a panic, a reply always carries the query's id, and a client without egress never
//! gets anything forwarded. Cases as in `uplink::proptests` (`PROPTEST_CASES`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

use super::answer::{decide, Decision, Reach};

fn table() -> BTreeMap<String, Ipv4Addr> {
    BTreeMap::from([("web".to_string(), Ipv4Addr::new(10, 89, 1, 2))])
}

fn reach() -> impl Strategy<Value = Reach> {
    prop_oneof![Just(Reach::Forward), Just(Reach::ServicesOnly)]
}

proptest! {
    #[test]
    fn any_datagram_is_decided_without_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        reach in reach(),
    ) {
        if let Decision::Forward(_) = decide(&bytes, &table(), reach) {
            prop_assert_eq!(reach, Reach::Forward, "forwarded for a client without egress");
        }
    }

    #[test]
    fn a_query_for_any_name_is_answered_with_its_id_or_forwarded(
        id: u16,
        labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?", 1..5),
        kind in prop_oneof![Just(RecordType::A), Just(RecordType::AAAA), Just(RecordType::TXT)],
        reach in reach(),
    ) {
        let name = Name::from_ascii(labels.join(".")).expect("a name");
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(name, kind));
        let packet = m.to_vec().expect("encode");
        match decide(&packet, &table(), reach) {
            Decision::Reply(bytes) => {
                let reply = Message::from_vec(&bytes).expect("a reply that decodes");
                prop_assert_eq!(reply.metadata.id, id);
                prop_assert_eq!(reply.metadata.message_type, MessageType::Response);
            }
            Decision::Forward(_) => prop_assert_eq!(reach, Reach::Forward),
            Decision::Drop => prop_assert!(false, "a well-formed query was dropped"),
        }
    }
}
