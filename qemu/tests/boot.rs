//! Boots real QEMU VMs from a small test image: Debian's arm64 kernel and tinyinit
//! (tests/support/tinyinit). Prepare them with `tests/support/make-test-boot.sh [DIR]`; the
//! tests read DIR from `BATON_QEMU_TEST_BOOT` (default /tmp/baton-qemu-test) and fail, saying
//! how to make them, when the files are not there (`scripts/test` prepares them).

#[path = "support/fake_image.rs"]
mod fake_image;

use std::io::ErrorKind;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_qemu::{free_ports, Forward, Lab, LabConfig, LabError};

struct Inputs {
    kernel: Vec<u8>,
    initramfs: Vec<u8>,
}

fn inputs() -> Inputs {
    let dir = std::env::var_os("BATON_QEMU_TEST_BOOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/baton-qemu-test"));
    let read = |name: &str| std::fs::read(dir.join(name)).ok();
    let found = read("vmlinuz")
        .zip(read("initramfs"))
        .zip(Some(fake_image::tools_available()));
    match found {
        Some(((kernel, initramfs), true)) => Inputs { kernel, initramfs },
        _ => panic!(
            "no {0}/vmlinuz and {0}/initramfs (run qemu/tests/support/make-test-boot.sh {0}, as \
             scripts/test does) or no sfdisk/mkfs.fat/mcopy",
            dir.display()
        ),
    }
}

fn image(dir: &Path, inputs: &Inputs, cmdline: &str) -> PathBuf {
    let files: [(&str, &[u8]); 4] = [
        ("vmlinuz", &inputs.kernel),
        ("initramfs", &inputs.initramfs),
        ("cmdline.txt", cmdline.as_bytes()),
        (
            "baton.json",
            br#"{"board":"qemu-virt","qemu_machine":"virt"}"#,
        ),
    ];
    fake_image::build(dir, "test.img", &files)
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

#[test]
fn one_board_boots_restarts_and_reports_its_exit() {
    let inputs = inputs();
    let dir = tempfile::tempdir().unwrap();
    let img = image(
        dir.path(),
        &inputs,
        "console=ttyAMA0 quiet TINYINIT_MODE=poweroff",
    );
    let mut config = LabConfig::new(&img);
    config.serial_dir = Some(dir.path().join("serial"));
    config.memory_mib = 256;
    let lab = Lab::start(config).unwrap();
    let board = lab.board(1).unwrap();
    assert_eq!(
        board.wait_for_line("tinyinit: up", deadline()).unwrap(),
        "tinyinit: up"
    );
    eprintln!(
        "first serial line after {:?}",
        board.time_to_first_line().unwrap()
    );

    // tinyinit powers off; on `virt` QEMU then exits, and a wait reports that.
    let err = board
        .wait_for_line("never printed", deadline())
        .unwrap_err();
    assert!(matches!(err, LabError::Exited { board: 1, .. }), "{err}");
    assert!(!board.is_running());

    lab.restart(1).unwrap();
    board.wait_for_count("tinyinit: up", 2, deadline()).unwrap();
    assert!(board.console().run_start() > 0);
    let log = std::fs::read_to_string(dir.path().join("serial/board1.log")).unwrap();
    assert_eq!(log.matches("tinyinit: up").count(), 2);
    let pid = board.pid();
    drop(lab);
    if let Some(pid) = pid {
        assert!(
            !Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !String::from_utf8_lossy(&cmd).contains("qemu")
            }
        );
    }
}

#[test]
fn three_boards_share_a_segment_and_get_their_forwards() {
    let inputs = inputs();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), &inputs, "console=ttyAMA0 quiet");
    let base = free_ports(3).unwrap();
    let mut config = LabConfig::new(&img);
    config.boards = 3;
    config.memory_mib = 256;
    config.forwards = vec![Forward {
        host: base,
        guest: 80,
    }];
    config.capture = Some(dir.path().join("segment.pcap"));
    let lab = Lab::start(config).unwrap();
    for board in lab.boards() {
        assert_eq!(board.forwarded(80), Some(base + board.index() as u16 - 1));
        // QEMU holds the forwarded port: nobody else can bind it now.
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", base + board.index() as u16 - 1)).is_err()
        );
    }
    for board in lab.boards() {
        let line = board
            .wait_for_line("tinyinit: links up", deadline())
            .unwrap();
        assert!(
            line.contains("missing: []"),
            "board {}: {line}",
            board.index()
        );
        eprintln!(
            "board {} first serial line after {:?}",
            board.index(),
            board.time_to_first_line().unwrap()
        );
    }
    // With eth1 up, each kernel sends IPv6 link-local chatter; the hub must carry it to the others.
    let end = deadline();
    loop {
        let stats: Vec<_> = (1..=3).map(|i| lab.segment_stats(i).unwrap()).collect();
        if stats.iter().all(|s| s.from_board > 0 && s.to_board > 0) {
            break;
        }
        assert!(Instant::now() < end, "no traffic on the segment: {stats:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::fs::metadata(dir.path().join("segment.pcap"))
            .unwrap()
            .len()
            > 24
    );
    lab.kill(2).unwrap();
    assert!(!lab.board(2).unwrap().is_running());
    assert!(lab.board(1).unwrap().is_running());
}

#[test]
fn a_taken_port_is_reported_before_anything_starts() {
    let inputs = inputs();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), &inputs, "console=ttyAMA0");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut config = LabConfig::new(&img);
    config.forwards = vec![Forward {
        host: port,
        guest: 22,
    }];
    let err = Lab::start(config).unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

/// The IPv6 link-local address a Linux kernel gives a NIC with `mac` (modified EUI-64).
fn link_local(mac: &str) -> Ipv6Addr {
    let b: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("a MAC address in hex"))
        .collect();
    let word = |hi: u8, lo: u8| u16::from(hi) << 8 | u16::from(lo);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        word(b[0] ^ 0x02, b[1]),
        word(b[2], 0xff),
        word(0xfe, b[3]),
        word(b[4], b[5]),
    )
}

/// From the station: sends a UDP datagram to port 9 of `board` on the station's interface and
/// waits for the kernel's "port unreachable", which proves the frames go both ways. Retries
/// while the station's own link-local address is still tentative. The last error otherwise.
fn probe(board: Ipv6Addr, interface: &str) -> Result<(), String> {
    let scope = nix::net::if_::if_nametoindex(interface).map_err(|e| e.to_string())?;
    let end = deadline();
    let mut last = String::new();
    while Instant::now() < end {
        let socket = UdpSocket::bind("[::]:0").map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        let sent = socket
            .connect(SocketAddrV6::new(board, 9, 0, scope))
            .and_then(|()| socket.send(b"probe"));
        let answer = sent.and_then(|_| socket.recv(&mut [0u8; 64]));
        match answer {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                last = "no answer".into();
            }
            Err(e) => {
                last = e.to_string();
                // Not sent at all (the station's address is still tentative): wait a little.
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(_) => last = "an answer on a closed port".into(),
        }
    }
    Err(last)
}

#[test]
fn a_lan_station_reaches_a_board_by_its_own_address() {
    let inputs = inputs();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), &inputs, "console=ttyAMA0 quiet");
    let mut config = LabConfig::new(&img);
    config.boards = 2;
    config.memory_mib = 256;
    config.station = true;
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("{e} (the station needs root)"));
    for board in lab.boards() {
        board
            .wait_for_line("tinyinit: links up", deadline())
            .unwrap();
    }
    let station = lab.station().unwrap();
    assert_eq!(station.address(), baton_qemu::station::ADDRESS);
    let interface = station.interface();
    let board2 = link_local(&baton_qemu::command::mac(2, 1));
    station
        .run(|| probe(board2, interface))
        .unwrap()
        .unwrap_or_else(|e| panic!("board 2 at {board2} did not answer the station: {e}"));
    // The host's own network never sees the board: only the station does.
    assert!(absent_from_host(interface));
    let stats = lab.station_stats().unwrap();
    assert!(stats.from_station > 0 && stats.to_station > 0, "{stats:?}");
    assert_eq!(lab.segment_interface(), Some("eth1"));
}

/// Whether the station's interface is absent from the host's own namespace.
fn absent_from_host(interface: &str) -> bool {
    nix::net::if_::if_nametoindex(interface).is_err()
}
