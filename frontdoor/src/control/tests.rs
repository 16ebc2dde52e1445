//! Frames and messages of the control channel, between the two ends of a real socket pair.

use std::io::{IoSlice, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::frame::{pair, recv, send, send_bytes, Error, MAX_FDS, MAX_FRAME};
use super::protocol::*;

fn instance(n: usize) -> Instance {
    Instance {
        id: format!("web-{n}"),
        addr: Ipv4Addr::new(10, 42, 0, 2),
        port: 8080,
        board: "pi-1".into(),
        ready: n % 2 == 0,
    }
}

fn access_line(route_bytes: usize) -> AccessLine {
    AccessLine {
        route: "r".repeat(route_bytes),
        method: "GET".into(),
        host: "hello.lan".into(),
        path: "/".into(),
        status: 200,
        ms: 3,
        identity: Some("alice".into()),
        instance: None,
        request_id: "0af7".into(),
    }
}

/// Every message but those that carry descriptors.
fn plain_messages() -> (Vec<ToFrontDoor>, Vec<ToInit>) {
    let to_front_door = vec![
        ToFrontDoor::Hello {
            protocol: PROTOCOL,
            build: "baton 0.1.0".into(),
            listeners: vec![],
        },
        ToFrontDoor::Instances {
            generation: 4,
            service: "web".into(),
            instances: (0..3).map(instance).collect(),
        },
        ToFrontDoor::Drain { within_ms: 5000 },
    ];
    let to_init = vec![
        ToInit::Ready {
            protocol: PROTOCOL,
            notes: vec!["no HTTPS certificate yet".into()],
        },
        ToInit::Load {
            instances: vec![InstanceLoad {
                id: "web-0".into(),
                inflight_now: 2,
                inflight_ms: 1500,
                completed: 40,
                failed: 1,
            }],
            held: vec![Held {
                service: "batch".into(),
                count: 3,
                oldest_ms: 250,
            }],
        },
        ToInit::Wake {
            service: "batch".into(),
        },
        ToInit::Access {
            lines: vec![access_line(10)],
            dropped: 7,
        },
        ToInit::Fetched {
            kind: Fetched::Jwks,
            url: "https://idp.lan/jwks".into(),
            body: r#"{"keys":[]}"#.into(),
        },
    ];
    (to_front_door, to_init)
}

#[test]
fn every_message_round_trips_and_frames_keep_their_boundaries() {
    let (init, front_door) = pair().expect("pair");
    let (down, up) = plain_messages();
    for m in &down {
        send(init.as_fd(), m, &[]).expect("send down");
    }
    for m in &up {
        send(front_door.as_fd(), m, &[]).expect("send up");
    }
    for m in &down {
        let (got, fds): (ToFrontDoor, _) = recv(front_door.as_fd()).expect("recv down");
        assert_eq!(&got, m);
        assert!(fds.is_empty());
    }
    for m in &up {
        let (got, fds): (ToInit, _) = recv(init.as_fd()).expect("recv up");
        assert_eq!(&got, m);
        assert!(fds.is_empty());
    }
}

#[test]
fn a_frame_of_nearly_the_largest_size_passes() {
    let (a, b) = pair().expect("pair");
    let message = ToInit::Access {
        lines: (0..MAX_ACCESS_LINES).map(|_| access_line(880)).collect(),
        dropped: 0,
    };
    let size = serde_json::to_vec(&message).expect("json").len();
    assert!(size > 200 * 1024 && size <= MAX_FRAME, "{size} bytes");
    send(a.as_fd(), &message, &[]).expect("send");
    let (got, _): (ToInit, _) = recv(b.as_fd()).expect("recv");
    assert_eq!(got, message);
}

#[test]
fn a_descriptor_is_carried_and_works_on_the_other_side() {
    let (init, front_door) = pair().expect("pair");
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    let hello = ToFrontDoor::Hello {
        protocol: PROTOCOL,
        build: "test".into(),
        listeners: vec![Listener::Http],
    };
    send(init.as_fd(), &hello, &[writer.as_fd()]).expect("send");
    drop(writer);
    let (got, fds): (ToFrontDoor, _) = recv(front_door.as_fd()).expect("recv");
    assert_eq!(got, hello);
    assert_eq!(fds.len(), 1);
    let mut w = std::fs::File::from(fds.into_iter().next().expect("fd"));
    w.write_all(b"through the channel").expect("write");
    drop(w);
    let mut out = String::new();
    std::fs::File::from(reader)
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(out, "through the channel");
}

#[test]
fn a_message_with_the_wrong_descriptors_is_refused_and_they_are_closed() {
    let (a, b) = pair().expect("pair");
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    // Two listeners named, one descriptor attached: refused before sending, and on receipt.
    let hello = ToFrontDoor::Hello {
        protocol: PROTOCOL,
        build: "test".into(),
        listeners: vec![Listener::Http, Listener::Https],
    };
    let err = send(a.as_fd(), &hello, &[writer.as_fd()]).expect_err("one fd short");
    assert!(
        matches!(err, Error::Invalid(Invalid::Descriptors { .. })),
        "{err}"
    );
    let bytes = serde_json::to_vec(&hello).expect("json");
    send_bytes(a.as_fd(), &bytes, &[writer.as_fd()]).expect("send raw");
    drop(writer);
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("one fd short");
    assert!(
        matches!(err, Error::Invalid(Invalid::Descriptors { .. })),
        "{err}"
    );
    // The refused frame's copy of the write end was closed with it: the pipe reads as ended.
    let mut rest = Vec::new();
    std::fs::File::from(reader)
        .read_to_end(&mut rest)
        .expect("read");
    assert!(rest.is_empty());
    // A snapshot without its memfd.
    let bytes = serde_json::to_vec(&ToFrontDoor::Snapshot { generation: 1 }).expect("json");
    send_bytes(a.as_fd(), &bytes, &[]).expect("send raw");
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("no memfd");
    assert!(
        matches!(err, Error::Invalid(Invalid::Descriptors { .. })),
        "{err}"
    );
}

/// Sends `bytes` with `fds` attached through `sendmsg` itself, past the checks of `send`.
fn send_unchecked(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) {
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
}

#[test]
fn an_oversized_frame_is_refused_on_send_and_truncated_on_receipt() {
    let (a, b) = pair().expect("pair");
    // Each text within its bound, but the whole beyond a frame.
    let message = ToInit::Access {
        lines: (0..MAX_ACCESS_LINES)
            .map(|_| access_line(MAX_TEXT))
            .collect(),
        dropped: 0,
    };
    let err = send(a.as_fd(), &message, &[]).expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // A frame one byte too long that reaches the receiver is refused whole.
    let mut long = br#"{"Wake":{"service":""#.to_vec();
    long.resize(MAX_FRAME - 2, b'a');
    long.extend_from_slice(br#""}}"#);
    assert_eq!(long.len(), MAX_FRAME + 1);
    send_unchecked(a.as_fd(), &long, &[]);
    let err = recv::<ToInit>(b.as_fd()).expect_err("truncated");
    assert!(matches!(err, Error::Truncated { what: "bytes" }), "{err}");
    // Exactly at the limit the same frame is whole, then refused for its service's length.
    long.truncate(MAX_FRAME - 3);
    long.extend_from_slice(br#""}}"#);
    send_unchecked(a.as_fd(), &long, &[]);
    let err = recv::<ToInit>(b.as_fd()).expect_err("service too long");
    assert!(
        matches!(err, Error::Invalid(Invalid::TooLong { .. })),
        "{err}"
    );
}

#[test]
fn too_many_descriptors_are_refused_on_send_and_truncated_on_receipt() {
    let (a, b) = pair().expect("pair");
    let pipes: Vec<_> = (0..MAX_FDS + 1)
        .map(|_| nix::unistd::pipe().expect("pipe"))
        .collect();
    let fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
    let bytes = serde_json::to_vec(&ToFrontDoor::Drain { within_ms: 1 }).expect("json");
    let err = send_bytes(a.as_fd(), &bytes, &fds).expect_err("too many");
    assert!(matches!(err, Error::TooManyFds { count: 5 }), "{err}");
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    send_unchecked(a.as_fd(), &bytes, &raw);
    // Only the copies in flight hold the write ends now.
    let readers: Vec<_> = pipes.into_iter().map(|(r, _)| r).collect();
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("truncated");
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "descriptors"
            }
        ),
        "{err}"
    );
    // Every descriptor that came with the refused frame was closed: each pipe reads as ended.
    for reader in &readers {
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(reader, &mut byte).expect("read"), 0);
    }
}

#[test]
fn another_protocol_version_is_refused_by_name() {
    let (a, b) = pair().expect("pair");
    let hello = ToFrontDoor::Hello {
        protocol: PROTOCOL + 1,
        build: "newer".into(),
        listeners: vec![],
    };
    let err = send(a.as_fd(), &hello, &[]).expect_err("refused on send");
    assert!(
        matches!(err, Error::Invalid(Invalid::Protocol { .. })),
        "{err}"
    );
    send_bytes(a.as_fd(), &serde_json::to_vec(&hello).expect("json"), &[]).expect("send raw");
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("other version");
    assert!(
        matches!(err, Error::Invalid(Invalid::Protocol { got }) if got == PROTOCOL + 1),
        "{err}"
    );
    // A newer Hello that also changed its fields is named by its version, not as bad JSON.
    let changed = format!(
        r#"{{"Hello":{{"protocol":{},"shape":"new"}}}}"#,
        PROTOCOL + 1
    );
    send_bytes(a.as_fd(), changed.as_bytes(), &[]).expect("send raw");
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("other version");
    assert!(
        matches!(err, Error::Invalid(Invalid::Protocol { .. })),
        "{err}"
    );
    // The same on the way back.
    let ready = br#"{"Ready":{"protocol":0,"notes":[]}}"#;
    send_bytes(b.as_fd(), ready, &[]).expect("send raw");
    let err = recv::<ToInit>(a.as_fd()).expect_err("other version");
    assert!(
        matches!(err, Error::Invalid(Invalid::Protocol { got: 0 })),
        "{err}"
    );
}

#[test]
fn unknown_messages_and_fields_and_garbage_are_refused() {
    let (a, b) = pair().expect("pair");
    let frames: [&[u8]; 5] = [
        br#"{"Reload":{}}"#,
        br#"{"Drain":{"within_ms":1,"now":true}}"#,
        br#"{"Instances":{"generation":1,"service":"web","instances":[{"id":"x","addr":"10.0.0.1","port":1,"board":"b","ready":true,"weight":3}]}}"#,
        br#"{"Instances":{"generation":1,"service":"web","instances":[{"id":"x","addr":"::1","port":1,"board":"b","ready":true}]}}"#,
        b"{not json",
    ];
    for bytes in frames {
        send_bytes(a.as_fd(), bytes, &[]).expect("send raw");
        let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("refused");
        assert!(
            matches!(err, Error::Json(_)),
            "{}: {err}",
            String::from_utf8_lossy(bytes)
        );
    }
    // What one side sends is not a message of the other.
    send(a.as_fd(), &ToFrontDoor::Drain { within_ms: 1 }, &[]).expect("send");
    let err = recv::<ToInit>(b.as_fd()).expect_err("wrong direction");
    assert!(matches!(err, Error::Json(_)), "{err}");
}

#[test]
fn lists_beyond_their_bounds_are_refused_on_both_sides() {
    let (a, b) = pair().expect("pair");
    let too_many = ToFrontDoor::Instances {
        generation: 1,
        service: "web".into(),
        instances: (0..=MAX_INSTANCES).map(instance).collect(),
    };
    let err = send(a.as_fd(), &too_many, &[]).expect_err("refused on send");
    assert!(
        matches!(err, Error::Invalid(Invalid::TooMany { .. })),
        "{err}"
    );
    send_bytes(
        a.as_fd(),
        &serde_json::to_vec(&too_many).expect("json"),
        &[],
    )
    .expect("raw");
    let err = recv::<ToFrontDoor>(b.as_fd()).expect_err("refused on receipt");
    assert!(
        matches!(err, Error::Invalid(Invalid::TooMany { .. })),
        "{err}"
    );
    // At the bound it passes.
    let full = ToFrontDoor::Instances {
        generation: 1,
        service: "web".into(),
        instances: (0..MAX_INSTANCES).map(instance).collect(),
    };
    send(a.as_fd(), &full, &[]).expect("send");
    let (got, _): (ToFrontDoor, _) = recv(b.as_fd()).expect("recv");
    assert_eq!(got, full);
    let body = ToInit::Fetched {
        kind: Fetched::Discovery,
        url: "https://idp.lan/.well-known/openid-configuration".into(),
        body: "x".repeat(MAX_FETCHED_BODY + 1),
    };
    let err = send(b.as_fd(), &body, &[]).expect_err("body too long");
    assert!(
        matches!(err, Error::Invalid(Invalid::TooLong { .. })),
        "{err}"
    );
    let path = ToInit::Access {
        lines: vec![AccessLine {
            path: "/".repeat(MAX_ACCESS_PATH + 1),
            ..access_line(1)
        }],
        dropped: 0,
    };
    let err = send(b.as_fd(), &path, &[]).expect_err("path too long");
    assert!(
        matches!(err, Error::Invalid(Invalid::TooLong { .. })),
        "{err}"
    );
}

#[test]
fn a_closed_peer_is_reported_as_closed() {
    let (a, b) = pair().expect("pair");
    drop(a);
    let err = recv::<ToInit>(b.as_fd()).expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err}");
    let err = send(b.as_fd(), &ToFrontDoor::Drain { within_ms: 0 }, &[]).expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err}");
}
