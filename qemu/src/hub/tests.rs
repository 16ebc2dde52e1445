use super::*;
use std::time::Duration;

/// A stand-in for a QEMU dgram netdev: bound at the board path, sending to the hub path.
fn board(hub: &Hub, i: usize) -> UnixDatagram {
    let s = UnixDatagram::bind(hub.board_path(i).unwrap()).unwrap();
    s.connect(hub.hub_path(i).unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn recv(s: &UnixDatagram) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).expect("frame before the deadline");
    buf[..n].to_vec()
}

fn nothing_waiting(s: &UnixDatagram) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let empty = matches!(s.recv(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    empty
}

#[test]
fn floods_to_every_other_board_with_link_up() {
    assert_eq!(destinations(0, &[true, true, true]), vec![1, 2]);
    assert_eq!(destinations(1, &[true, true, false]), vec![0]);
    assert_eq!(destinations(2, &[true, true, false]), Vec::<usize>::new());
    assert_eq!(destinations(5, &[true]), Vec::<usize>::new());
}

#[test]
fn forwards_frames_between_board_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("segment.pcap");
    let hub = Hub::start(dir.path(), 3, Some(&pcap)).unwrap();
    let b: Vec<UnixDatagram> = (1..=3).map(|i| board(&hub, i)).collect();

    b[0].send(b"broadcast from 1").unwrap();
    assert_eq!(recv(&b[1]), b"broadcast from 1");
    assert_eq!(recv(&b[2]), b"broadcast from 1");
    assert!(
        nothing_waiting(&b[0]),
        "the sender must not get its own frame"
    );

    b[2].send(b"from 3").unwrap();
    assert_eq!(recv(&b[0]), b"from 3");
    assert_eq!(recv(&b[1]), b"from 3");
    assert_eq!(
        hub.stats(1).unwrap(),
        PortStats {
            from_board: 1,
            to_board: 1,
            dropped: 0
        }
    );
    assert_eq!(hub.stats(3).unwrap().from_board, 1);

    let bytes = std::fs::read(&pcap).unwrap();
    let records = [b"broadcast from 1".len(), b"from 3".len()];
    assert_eq!(
        bytes.len(),
        24 + records.iter().map(|n| 16 + n).sum::<usize>()
    );
}

#[test]
fn a_pulled_cable_neither_sends_nor_receives() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 3, None).unwrap();
    let b: Vec<UnixDatagram> = (1..=3).map(|i| board(&hub, i)).collect();

    hub.set_link(3, false).unwrap();
    b[0].send(b"while 3 is cut off").unwrap();
    assert_eq!(recv(&b[1]), b"while 3 is cut off");
    b[2].send(b"from the cut-off board").unwrap();
    hub.set_link(3, true).unwrap();
    b[0].send(b"after reconnect").unwrap();
    // Frames are handled in order: board 3's first frame proves the earlier one never came,
    // and board 2's next frame proves board 3's frame was dropped.
    assert_eq!(recv(&b[2]), b"after reconnect");
    assert_eq!(recv(&b[1]), b"after reconnect");
    assert!(matches!(
        hub.set_link(4, true),
        Err(HubError::NoSuchBoard {
            board: 4,
            boards: 3
        })
    ));
}

#[test]
fn drops_frames_for_boards_that_are_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 2, None).unwrap();
    let b1 = board(&hub, 1);
    b1.send(b"nobody home").unwrap();
    // Board 2 binds only now; the earlier frame was dropped, the next one arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hub.stats(2).unwrap().dropped == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "frame for board 2 not dropped"
        );
        std::thread::yield_now();
    }
    let b2 = board(&hub, 2);
    b1.send(b"hello").unwrap();
    assert_eq!(recv(&b2), b"hello");
}

#[test]
fn removes_its_sockets_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 2, None).unwrap();
    let path = hub.hub_path(2).unwrap().to_path_buf();
    assert!(path.exists());
    drop(hub);
    assert!(!path.exists());
}

/// Waits until the ring holds `n` frames, with a deadline.
fn wait_for_frames(hub: &Hub, n: usize) -> Vec<CapturedFrame> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frames = hub.frames();
        if frames.len() >= n {
            return frames;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} frames captured: {frames:?}",
            frames.len()
        );
        std::thread::yield_now();
    }
}

#[test]
fn injects_to_every_board_with_link_up_and_counts_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("segment.pcap");
    let hub = Hub::start(dir.path(), 3, Some(&pcap)).unwrap();
    let b: Vec<UnixDatagram> = (1..=3).map(|i| board(&hub, i)).collect();

    let frame = [0xabu8; 20];
    assert_eq!(hub.inject(&frame).unwrap(), 3);
    for s in &b {
        assert_eq!(recv(s), frame);
    }
    hub.set_link(2, false).unwrap();
    assert_eq!(hub.inject(b"garbage frame, cable 2 out").unwrap(), 2);
    assert_eq!(recv(&b[0]), b"garbage frame, cable 2 out");
    assert_eq!(recv(&b[2]), b"garbage frame, cable 2 out");
    assert!(nothing_waiting(&b[1]), "board 2's cable is pulled");

    assert_eq!(
        hub.injected(),
        InjectStats {
            frames: 2,
            delivered: 5,
            dropped: 0
        }
    );
    for i in 1..=3 {
        assert_eq!(hub.stats(i).unwrap(), PortStats::default(), "board {i}");
    }
    let frames = hub.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].source, FrameSource::Injected);
    assert_eq!(frames[0].delivered, vec![1, 2, 3]);
    assert_eq!(frames[1].delivered, vec![1, 3]);
    assert_eq!(&*frames[1].bytes, b"garbage frame, cable 2 out");
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(bytes.len(), 24 + (16 + 20) + (16 + 26));
}

#[test]
fn injection_to_a_board_that_is_not_running_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 2, None).unwrap();
    let b1 = board(&hub, 1);
    assert_eq!(hub.inject(&[0; 60]).unwrap(), 1);
    assert_eq!(recv(&b1), [0; 60]);
    assert_eq!(
        hub.injected(),
        InjectStats {
            frames: 1,
            delivered: 1,
            dropped: 1
        }
    );
    assert_eq!(hub.frames()[0].delivered, vec![1]);
}

#[test]
fn refuses_to_inject_what_is_not_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 2, None).unwrap();
    assert!(matches!(
        hub.inject(&[0; 13]),
        Err(HubError::FrameLength { len: 13 })
    ));
    assert!(matches!(
        hub.inject(&vec![0; MAX_FRAME + 1]),
        Err(HubError::FrameLength { len: 65536 })
    ));
    assert_eq!(hub.injected(), InjectStats::default());
    assert!(hub.frames().is_empty());
}

#[test]
fn captures_board_frames_in_order_with_sender_and_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 3, None).unwrap();
    let b: Vec<UnixDatagram> = (1..=3).map(|i| board(&hub, i)).collect();

    hub.set_link(3, false).unwrap();
    b[0].send(b"one").unwrap();
    assert_eq!(recv(&b[1]), b"one");
    hub.set_link(3, true).unwrap();
    b[1].send(b"two").unwrap();
    assert_eq!(recv(&b[0]), b"two");

    let frames = wait_for_frames(&hub, 2);
    let seen: Vec<_> = frames
        .iter()
        .map(|f| (f.seq, f.source, f.delivered.clone(), f.bytes.to_vec()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, FrameSource::Board(1), vec![2], b"one".to_vec()),
            (1, FrameSource::Board(2), vec![1, 3], b"two".to_vec()),
        ]
    );
    assert!(frames[0].at <= frames[1].at);
    assert_eq!(hub.frames_since(1).len(), 1);
    assert!(hub.frames_since(2).is_empty());
}

#[test]
fn replays_a_captured_udp_datagram() {
    use crate::packet::{self, UdpDatagram};
    use std::net::{Ipv4Addr, SocketAddrV4};

    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), 2, None).unwrap();
    let b: Vec<UnixDatagram> = (1..=2).map(|i| board(&hub, i)).collect();
    let gossip = UdpDatagram {
        src_mac: [0x52, 0x54, 0, 0, 1, 1],
        dst_mac: packet::BROADCAST,
        src: SocketAddrV4::new(Ipv4Addr::new(169, 254, 0, 1), 7946),
        dst: SocketAddrV4::new(Ipv4Addr::new(169, 254, 0, 2), 7946),
        payload: b"sealed bytes",
    }
    .to_frame()
    .unwrap();
    b[0].send(b"not IP at all").unwrap();
    b[0].send(&gossip).unwrap();
    assert_eq!(recv(&b[1]), b"not IP at all");
    assert_eq!(recv(&b[1]), gossip);

    let frames = wait_for_frames(&hub, 2);
    let captured = frames
        .iter()
        .find(|f| packet::udp_to(&f.bytes, 7946).is_some())
        .expect("the gossip datagram was captured");
    assert_eq!(captured.source, FrameSource::Board(1));
    assert!(packet::contains(&captured.bytes, b"sealed"));
    hub.inject(&captured.bytes).unwrap();
    assert_eq!(recv(&b[1]), gossip, "the replay arrives unchanged");
    assert_eq!(recv(&b[0]), gossip, "the sender sees the replay too");
}

#[test]
fn the_ring_keeps_the_newest_frames_within_both_limits() {
    let t = std::time::UNIX_EPOCH;
    let mut by_count = FrameRing::new(3, 1 << 20);
    for i in 0..5u8 {
        by_count.push(t, FrameSource::Board(1), vec![2], &[i; 10]);
    }
    let kept: Vec<(u64, u8)> = by_count
        .since(0)
        .iter()
        .map(|f| (f.seq, f.bytes[0]))
        .collect();
    assert_eq!(kept, vec![(2, 2), (3, 3), (4, 4)]);
    assert_eq!(by_count.bytes(), 30);
    assert_eq!(by_count.since(4).len(), 1);
    assert_eq!(by_count.since(1).len(), 3, "dropped frames are just gone");
    assert!(by_count.since(5).is_empty());

    let mut by_bytes = FrameRing::new(100, 25);
    for i in 0..4u8 {
        by_bytes.push(t, FrameSource::Injected, Vec::new(), &[i; 10]);
    }
    assert_eq!(by_bytes.len(), 2);
    assert_eq!(by_bytes.bytes(), 20);
    by_bytes.push(t, FrameSource::Injected, Vec::new(), &[9; 40]);
    assert_eq!(
        by_bytes.len(),
        1,
        "the newest frame stays even when over the limit"
    );
    assert_eq!(by_bytes.since(0)[0].seq, 4);

    let default = FrameRing::default();
    assert!(default.is_empty());
    assert_eq!((RING_FRAMES, RING_BYTES), (20_000, 32 * 1024 * 1024));
}

/// A station on a socket pair: the hub's end (non-blocking, like a TAP device) and the test's.
fn station_pair() -> (Box<dyn StationLink>, UnixDatagram) {
    let (hub_end, test_end) = UnixDatagram::pair().unwrap();
    hub_end.set_nonblocking(true).unwrap();
    test_end
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (Box::new(hub_end), test_end)
}

#[test]
fn a_station_gets_every_frame_and_reaches_every_board_with_its_cable_in() {
    let dir = tempfile::tempdir().unwrap();
    let (link, station) = station_pair();
    let hub = Hub::start_with_station(dir.path(), 3, None, Some(link)).unwrap();
    let b: Vec<UnixDatagram> = (1..=3).map(|i| board(&hub, i)).collect();

    b[0].send(b"from board 1").unwrap();
    assert_eq!(recv(&station), b"from board 1");
    assert_eq!(recv(&b[1]), b"from board 1");
    assert_eq!(recv(&b[2]), b"from board 1");
    assert_eq!(hub.inject(&[0xee; 20]).unwrap(), 3);
    assert_eq!(recv(&station), [0xee; 20]);
    for s in &b {
        assert_eq!(recv(s), [0xee; 20]);
    }

    hub.set_link(3, false).unwrap();
    station.send(b"from the station").unwrap();
    assert_eq!(recv(&b[0]), b"from the station");
    assert_eq!(recv(&b[1]), b"from the station");
    b[2].send(b"from the cut-off board").unwrap();
    // Once the ring holds board 3's frame the hub is done with it: the station never got it.
    let frames = wait_for_frames(&hub, 4);
    assert!(nothing_waiting(&station), "board 3's cable is pulled");
    assert!(nothing_waiting(&b[2]), "board 3's cable is pulled");

    assert_eq!(frames[2].source, FrameSource::Station);
    assert_eq!(frames[2].delivered, vec![1, 2]);
    assert_eq!(
        hub.station_stats(),
        Some(StationStats {
            from_station: 1,
            to_station: 2,
            dropped: 0
        })
    );
    assert_eq!(hub.stats(1).unwrap().to_board, 1, "the station's frame");
    assert_eq!(hub.injected().delivered, 3, "boards only");
}
