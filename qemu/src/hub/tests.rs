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
