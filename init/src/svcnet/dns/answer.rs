//! What to do with one query: answer it from the VIP table, or forward it upstream.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The TTL of VIP answers: short, so a changed table is seen quickly.
pub const VIP_TTL: u32 = 5;

/// The zone served locally: `<service>.baton`.
const ZONE: &str = "baton";

/// The UDP payload size advertised in EDNS replies.
const EDNS_PAYLOAD: u16 = 1232;

/// The outcome for one incoming packet.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Send these bytes back to the client.
    Reply(Vec<u8>),
    /// Relay the packet to an upstream resolver; the parsed query builds the SERVFAIL.
    Forward(Box<Message>),
    /// Not a query we can answer (garbage, a response): say nothing.
    Drop,
}

/// How a name relates to the local zone.
enum Local {
    /// A known service.
    Service(Ipv4Addr),
    /// Inside `.baton` but not a service.
    Unknown,
    /// Not ours: forward it.
    Elsewhere,
}

/// Classifies `name` against the table (case-insensitive, trailing dot optional).
fn classify(name: &Name, table: &BTreeMap<String, Ipv4Addr>) -> Local {
    let ascii = name.to_ascii().to_ascii_lowercase();
    let trimmed = ascii.strip_suffix('.').unwrap_or(&ascii);
    if let Some(ip) = table.get(trimmed) {
        return Local::Service(*ip);
    }
    if trimmed == ZONE {
        return Local::Unknown;
    }
    match trimmed.strip_suffix(ZONE).and_then(|s| s.strip_suffix('.')) {
        Some(service) => match table.get(service) {
            Some(ip) => Local::Service(*ip),
            None => Local::Unknown,
        },
        None => Local::Elsewhere,
    }
}

/// Whether a client may have names outside the zone looked up for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Yes: other names are forwarded upstream.
    Forward,
    /// No (a service without egress): other names are REFUSED.
    ServicesOnly,
}

/// Decides what to do with `packet` from a client with `reach`, given the current table.
pub(crate) fn decide(packet: &[u8], table: &BTreeMap<String, Ipv4Addr>, reach: Reach) -> Decision {
    let Ok(query) = Message::from_vec(packet) else {
        return Decision::Drop;
    };
    if query.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(&query, ResponseCode::NotImp, Vec::new());
    }
    let [question] = query.queries.as_slice() else {
        return reply(&query, ResponseCode::FormErr, Vec::new());
    };
    match classify(question.name(), table) {
        Local::Elsewhere if reach == Reach::ServicesOnly => {
            reply(&query, ResponseCode::Refused, Vec::new())
        }
        Local::Elsewhere => Decision::Forward(Box::new(query)),
        Local::Unknown => reply(&query, ResponseCode::NXDomain, Vec::new()),
        Local::Service(ip) => {
            let answers = match question.query_type() {
                RecordType::A | RecordType::ANY => vec![Record::from_rdata(
                    question.name().clone(),
                    VIP_TTL,
                    RData::A(A(ip)),
                )],
                _ => Vec::new(),
            };
            reply(&query, ResponseCode::NoError, answers)
        }
    }
}

/// A locally made response to `query`.
fn reply(query: &Message, code: ResponseCode, answers: Vec<Record>) -> Decision {
    let mut response = error_response(query, code);
    response.metadata.authoritative = code != ResponseCode::NotImp;
    response.answers = answers;
    match response.to_vec() {
        Ok(bytes) => Decision::Reply(bytes),
        Err(_) => Decision::Drop,
    }
}

/// A response to `query` with `code`, its question echoed and no records.
pub(crate) fn error_response(query: &Message, code: ResponseCode) -> Message {
    let mut response = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    response.queries = query.queries.clone();
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        response.edns = Some(edns);
    }
    response
}

/// The bytes of a SERVFAIL for `query`, if it can be encoded.
pub(crate) fn servfail(query: &Message) -> Option<Vec<u8>> {
    error_response(query, ResponseCode::ServFail).to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn table() -> BTreeMap<String, Ipv4Addr> {
        BTreeMap::from([("web".to_string(), Ipv4Addr::new(10, 89, 1, 2))])
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
        m.to_vec().expect("encode")
    }

    fn answered(decision: Decision) -> Message {
        match decision {
            Decision::Reply(bytes) => Message::from_vec(&bytes).expect("decode reply"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn service_names_answer_with_the_vip() {
        for name in ["web", "web.", "WEB.baton", "Web.BATON.", "web.baton"] {
            let m = answered(decide(
                &query(name, RecordType::A),
                &table(),
                Reach::Forward,
            ));
            assert_eq!(m.metadata.id, 4242);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
            assert_eq!(m.answers.len(), 1, "{name}");
            assert_eq!(m.answers[0].ttl, VIP_TTL);
            assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 89, 1, 2))));
        }
    }

    #[test]
    fn aaaa_is_nodata_unknown_baton_is_nxdomain_other_names_forward() {
        let m = answered(decide(
            &query("web.baton", RecordType::AAAA),
            &table(),
            Reach::Forward,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        for name in ["nope.baton", "baton.", "a.web.baton"] {
            let m = answered(decide(
                &query(name, RecordType::A),
                &table(),
                Reach::Forward,
            ));
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        }
        for name in ["example.org", "webbaton", "baton.example"] {
            let d = decide(&query(name, RecordType::A), &table(), Reach::Forward);
            assert!(matches!(d, Decision::Forward(_)), "{name}: {d:?}");
        }
    }

    #[test]
    fn a_client_without_egress_gets_service_names_only() {
        let sealed = |name: &str| {
            answered(decide(
                &query(name, RecordType::A),
                &table(),
                Reach::ServicesOnly,
            ))
        };
        let m = sealed("example.org");
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(m.answers.is_empty());
        assert_eq!(
            sealed("web.baton").answers[0].data,
            RData::A(A(Ipv4Addr::new(10, 89, 1, 2)))
        );
        assert_eq!(
            sealed("nope.baton").metadata.response_code,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn garbage_and_responses_are_dropped_without_panicking() {
        let mut state: u64 = 0x9e3779b97f4a7c15;
        for len in 0..600usize {
            let bytes: Vec<u8> = (0..len % 80)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decide(&bytes, &table(), Reach::Forward);
        }
        // Every prefix of a valid query, too.
        let valid = query("web.baton", RecordType::A);
        for cut in 0..valid.len() {
            let _ = decide(&valid[..cut], &table(), Reach::Forward);
        }
        let mut response = Message::new(1, MessageType::Response, OpCode::Query);
        response.add_query(Query::query(
            Name::from_ascii("web").expect("name"),
            RecordType::A,
        ));
        let bytes = response.to_vec().expect("encode");
        assert!(matches!(
            decide(&bytes, &table(), Reach::Forward),
            Decision::Drop
        ));
    }
}
