//! Snapshots in sealed memfds: written, sent, read back; and what the reader refuses.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::frame::{pair, recv, send};
use super::protocol::ToFrontDoor;
use super::snapshot::{self, read, read_json, write, write_json, Error, MAX_SNAPSHOT};

fn sample() -> BTreeMap<String, Vec<String>> {
    let mut routes = BTreeMap::new();
    routes.insert("hello.lan/".into(), vec!["hello".into()]);
    routes.insert("private.lan/".into(), vec!["hello".into(), "oidc".into()]);
    routes
}

/// A memfd holding `len` bytes, with `seals` added.
fn memfd(len: usize, seals: SealFlag) -> OwnedFd {
    let fd =
        memfd_create("test", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).expect("memfd");
    let len = i64::try_from(len).expect("length");
    nix::unistd::ftruncate(&fd, len).expect("ftruncate");
    if !seals.is_empty() {
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("seal");
    }
    fd
}

#[test]
fn a_snapshot_round_trips_through_a_frame() {
    let (init, front_door) = pair().expect("pair");
    let fd = write_json(&sample()).expect("write");
    send(
        init.as_fd(),
        &ToFrontDoor::Snapshot { generation: 9 },
        &[fd.as_fd()],
    )
    .expect("send");
    drop(fd);
    let (message, fds): (ToFrontDoor, _) = recv(front_door.as_fd()).expect("recv");
    assert_eq!(message, ToFrontDoor::Snapshot { generation: 9 });
    let [fd] = <[OwnedFd; 1]>::try_from(fds).expect("one memfd");
    let got: BTreeMap<String, Vec<String>> = read_json(&fd).expect("read");
    assert_eq!(got, sample());
}

#[test]
fn a_written_snapshot_cannot_be_changed() {
    let fd = write(b"fixed").expect("write");
    let seals = SealFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GET_SEALS).expect("seals"));
    assert!(seals.contains(snapshot::required_seals() | SealFlag::F_SEAL_SEAL));
    // The kernel refuses a write, a shrink and a growth, even through the writer's descriptor.
    assert!(nix::sys::uio::pwrite(&fd, b"X", 0).is_err());
    assert!(nix::unistd::ftruncate(&fd, 1).is_err());
    assert!(nix::unistd::ftruncate(&fd, 100).is_err());
    assert_eq!(read(fd.as_fd()).expect("read"), b"fixed");
}

#[test]
fn an_unsealed_or_writable_memfd_is_refused() {
    let all = snapshot::required_seals();
    let cases = [
        ("no seals", SealFlag::empty(), all),
        (
            "still writable",
            SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW,
            SealFlag::F_SEAL_WRITE,
        ),
        (
            "can grow",
            SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK,
            SealFlag::F_SEAL_GROW,
        ),
    ];
    for (what, seals, lacking) in cases {
        let fd = memfd(16, seals);
        match read(fd.as_fd()) {
            Err(Error::Unsealed { missing }) => assert_eq!(missing, lacking, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // A pipe has no seals at all.
    let (reader, _writer) = nix::unistd::pipe().expect("pipe");
    let err = read(reader.as_fd()).expect_err("a pipe");
    assert!(matches!(err, Error::Sys { .. }), "{err}");
}

#[test]
fn a_snapshot_beyond_the_limit_is_refused_on_both_sides() {
    let err = write(&vec![b' '; MAX_SNAPSHOT + 1]).expect_err("too large to write");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let big = memfd(MAX_SNAPSHOT + 1, snapshot::required_seals());
    let err = read(big.as_fd()).expect_err("too large to read");
    assert!(
        matches!(err, Error::TooLarge { size } if size == MAX_SNAPSHOT as u64 + 1),
        "{err}"
    );
    // At the limit it is read whole.
    let full = memfd(MAX_SNAPSHOT, snapshot::required_seals());
    assert_eq!(read(full.as_fd()).expect("read").len(), MAX_SNAPSHOT);
}

#[test]
fn a_snapshot_that_is_not_the_json_expected_is_refused() {
    let fd = write(b"{\"routes\":").expect("write");
    let err = read_json::<BTreeMap<String, Vec<String>>>(&fd).expect_err("cut JSON");
    assert!(matches!(err, Error::Json(_)), "{err}");
}
