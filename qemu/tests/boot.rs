//! Boots real QEMU VMs from a small test image: Debian's arm64 kernel and tinyinit
//! (tests/support/tinyinit). Prepare them with `tests/support/make-test-boot.sh [DIR]`; the
//! tests read DIR from `BATON_QEMU_TEST_BOOT` (default /tmp/baton-qemu-test) and fail, saying
//! how to make them, when the files are not there (`scripts/test` prepares them).

#[path = "support/fake_image.rs"]
mod fake_image;

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
