//! The header guard: oversized extension headers refused at their header, before the tar crate
//! buffers them, through the guard alone and through the whole unpacker; everything else read
//! exactly as without the guard, GNU tar's own archives included. Needs root, like unpacking.

use super::budget::Budget;
use super::headers::{HeaderGuard, MAX_LONG_NAME, MAX_PAX, MAX_SPARSE_BLOCKS};
use super::{unpack_layer, UnpackError};
use crate::digest::Digest;
use crate::model::Compression;
use std::fs;
use std::io::{self, Cursor, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use tar::{EntryType, Header};

const MIB: u64 = 1 << 20;

/// What the tar crate makes of an entry, contents included.
#[derive(Debug, PartialEq)]
pub(super) struct Seen {
    pub kind: EntryType,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub size: u64,
    pub contents: Vec<u8>,
    /// The keys of its PAX records (`?` for a malformed one).
    pub pax: Vec<Vec<u8>>,
}

/// Every entry the tar crate reads from `stream`, and the error it stopped at (if any).
pub(super) fn read_all(stream: impl Read) -> (Vec<Seen>, Option<io::Error>) {
    let mut archive = tar::Archive::new(stream);
    let mut seen = Vec::new();
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return (seen, Some(e)),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => return (seen, Some(e)),
        };
        let pax = match entry.pax_extensions() {
            Ok(Some(records)) => records
                .map(|r| r.map_or_else(|_| b"?".to_vec(), |r| r.key_bytes().to_vec()))
                .collect(),
            _ => Vec::new(),
        };
        let mut contents = Vec::new();
        if let Err(e) = entry.read_to_end(&mut contents) {
            return (seen, Some(e));
        }
        seen.push(Seen {
            kind: entry.header().entry_type(),
            path: entry.path_bytes().into_owned(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            size: entry.size(),
            contents,
            pax,
        });
    }
    (seen, None)
}

/// Reads `tar` with and without the guard and checks that both see the same.
fn transparent(tar: &[u8]) -> Vec<Seen> {
    let (bare, bare_error) = read_all(tar);
    let (guarded, guarded_error) = read_all(HeaderGuard::new(tar));
    assert_eq!(guarded, bare);
    assert_eq!(
        guarded_error.map(|e| e.to_string()),
        bare_error.map(|e| e.to_string())
    );
    guarded
}

/// A header of type `kind` declaring `size` bytes, GNU or ustar.
pub(super) fn header(kind: u8, size: u64, gnu: bool) -> Header {
    let mut h = if gnu {
        Header::new_gnu()
    } else {
        Header::new_ustar()
    };
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::new(kind));
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h
}

/// Counts the bytes read from the stream it wraps.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads, through the guard, `header` followed by `contents` bytes of `a` never held in memory:
/// returns the error and how many bytes the tar crate took from the stream.
fn refused(header: &[u8], contents: u64) -> (io::Error, u64) {
    let mut stream = Counted {
        inner: Cursor::new(header.to_vec()).chain(io::repeat(b'a').take(contents)),
        read: 0,
    };
    let (seen, error) = read_all(HeaderGuard::new(&mut stream));
    assert!(seen.is_empty(), "{seen:?}");
    let error = error.expect("refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    (error, stream.read)
}

#[test]
fn oversized_extension_headers_are_refused_at_their_header() {
    let cases: [(u8, u64, u64, bool); 6] = [
        (b'L', 100 * MIB, MAX_LONG_NAME, true),
        (b'L', MAX_LONG_NAME + 1, MAX_LONG_NAME, false),
        (b'K', 100 * MIB, MAX_LONG_NAME, true),
        (b'x', 100 * MIB, MAX_PAX, false),
        (b'x', MAX_PAX + 1, MAX_PAX, true),
        (b'g', 100 * MIB, MAX_PAX, false),
    ];
    for (kind, size, limit, gnu) in cases {
        let h = header(kind, size, gnu);
        let (error, read) = refused(h.as_bytes(), size);
        let text = error.to_string();
        let flag = format!("type '{}'", char::from(kind));
        for part in [&flag, &size.to_string(), &limit.to_string(), "at byte 0"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // The tar crate got no byte past the header.
        assert_eq!(read, 512, "{text}");
    }
}

#[test]
fn a_base_256_size_is_read_like_the_tar_crate_reads_it() {
    // set_size writes sizes of 8 GiB and more in GNU's base-256 form.
    let size = 1u64 << 40;
    let h = header(b'L', size, true);
    assert_eq!(h.as_old().size[0] & 0x80, 0x80);
    let (error, _) = refused(h.as_bytes(), 2 * MAX_LONG_NAME);
    assert!(error.to_string().contains(&size.to_string()), "{error}");
    // A small size in base-256 form: a long name under the bound, then a file.
    let mut h = header(b'L', 0, true);
    let field = &mut h.as_old_mut().size;
    field.fill(0);
    field[0] = 0x80;
    field[10..].copy_from_slice(&300u16.to_be_bytes());
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend(vec![b'n'; 300]);
    tar.resize(1024, 0);
    let mut file = Header::new_gnu();
    file.set_path("short").expect("path");
    file.set_size(3);
    file.set_cksum();
    tar.extend(file.as_bytes());
    tar.extend(b"abc");
    tar.resize(2048 + 1024, 0);
    let seen = transparent(&tar);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, vec![b'n'; 300]);
    assert_eq!(seen[0].contents, b"abc");
}

/// The uncompressed layer `tar` unpacked into a fresh directory under `parent`.
pub(super) fn unpack(tar: &[u8], parent: &Path) -> Result<u64, UnpackError> {
    let dest = parent.join("layer");
    fs::create_dir(&dest).expect("layer dir");
    let digest = Digest::of(tar);
    let mut budget = Budget::new(parent, crate::StoreLimits::default()).expect("statvfs");
    unpack_layer(
        Cursor::new(tar),
        Compression::None,
        &digest,
        &digest,
        &dest,
        &mut budget,
    )
}

#[test]
fn the_unpacker_refuses_a_layer_declaring_a_100_mib_long_name() {
    let parent = tempfile::tempdir().expect("temp dir");
    let mut tar = header(b'L', 100 * MIB, true).as_bytes().to_vec();
    tar.extend(vec![b'a'; 4096]);
    let err = unpack(&tar, parent.path()).expect_err("refused");
    let UnpackError::Read { layer, source } = &err else {
        panic!("expected a read error: {err}");
    };
    assert_eq!(*layer, Digest::of(&tar));
    assert_eq!(source.kind(), io::ErrorKind::InvalidData);
    let text = err.to_string();
    assert!(text.contains(&layer.to_string()), "{text}");
    assert!(
        text.contains("GNU long name entry (type 'L') at byte 0 of the tar declares 104857600 bytes, more than the 65536 allowed"),
        "{text}"
    );
}

/// A regular file header for `name` of `size` bytes.
fn file(name: &str, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_path(name).expect("path");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    h
}

/// A PAX header with these records.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend(format!("{len} {key}={value}\n").bytes());
    }
    let mut out = header(b'x', body.len() as u64, false).as_bytes().to_vec();
    out.extend(&body);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

#[test]
fn a_pax_size_record_moves_the_next_header_as_the_tar_crate_moves_it() {
    let hidden = header(b'L', 100 * MIB, true);
    // The entry's header says 0 bytes, its PAX size 1024: the oversized `L` is contents.
    let mut tar = pax(&[("size", "1024")]);
    tar.extend(file("data", 0).as_bytes());
    tar.extend(hidden.as_bytes());
    tar.extend([b'b'; 512]);
    tar.extend(file("after", 2).as_bytes());
    tar.extend(b"ok");
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    let seen = transparent(&tar);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].size, 1024);
    assert_eq!(&seen[0].contents[..512], hidden.as_bytes());
    assert_eq!(seen[1].contents, b"ok");
    // The header says 1024 bytes, the PAX size 0: the oversized `L` is the next header.
    let mut tar = pax(&[("size", "0")]);
    tar.extend(file("data", 1024).as_bytes());
    tar.extend(hidden.as_bytes());
    tar.extend(vec![b'a'; 2048]);
    let (seen, error) = read_all(HeaderGuard::new(&tar[..]));
    assert_eq!(seen.len(), 1);
    let error = error.expect("refused").to_string();
    assert!(error.contains("(type 'L') at byte 1536"), "{error}");
    // A malformed record before `size` cancels it, as in the tar crate.
    let mut body = b"9 path=p\n".to_vec();
    body[0] = b'7';
    body.extend(b"12 size=512\n");
    let mut tar = header(b'x', body.len() as u64, false).as_bytes().to_vec();
    tar.extend(&body);
    tar.resize(1024, 0);
    tar.extend(file("data", 0).as_bytes());
    tar.extend(file("next", 1).as_bytes());
    tar.extend(b"z");
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    let seen = transparent(&tar);
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// A GNU sparse header followed by `blocks` extension blocks, the last one ending the map.
fn sparse(blocks: u64) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_path("holes").expect("path");
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(0);
    let gnu = h.as_gnu_mut().expect("gnu");
    gnu.set_is_extended(true);
    gnu.set_real_size(0);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    for n in 1..=blocks {
        let mut ext = tar::GnuExtSparseHeader::new();
        ext.set_is_extended(n < blocks);
        tar.extend(ext.as_bytes());
    }
    tar.extend([0; 1024]);
    tar
}

#[test]
fn a_sparse_map_is_bounded_and_skipped_as_the_tar_crate_skips_it() {
    let seen = transparent(&sparse(MAX_SPARSE_BLOCKS));
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, EntryType::GNUSparse);
    let (seen, error) = read_all(HeaderGuard::new(&sparse(MAX_SPARSE_BLOCKS + 1)[..]));
    assert!(seen.is_empty());
    let error = error.expect("refused").to_string();
    assert!(
        error.contains("sparse file (type 'S') at byte 0 of the tar goes on past 2048 extension"),
        "{error}"
    );
}

#[test]
fn what_follows_the_end_of_the_archive_is_not_read_as_headers() {
    let mut tar = file("a", 1).as_bytes().to_vec();
    tar.extend(b"1");
    tar.resize(1024 + 1024, 0);
    tar.extend(header(b'L', 100 * MIB, true).as_bytes());
    let seen = transparent(&tar);
    assert_eq!(seen.len(), 1);
    let parent = tempfile::tempdir().expect("temp dir");
    unpack(&tar, parent.path()).expect("unpacked");
    assert_eq!(fs::read(parent.path().join("layer/a")).expect("a"), b"1");
}

/// Runs `sh -c script` in `dir`.
fn sh(dir: &Path, script: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

/// A tree with long names and links, a hard link, a big file and an empty one.
fn tree(dir: &Path) -> String {
    let long = "d".repeat(150);
    let deep = format!("{long}/{}/{}", "e".repeat(200), "f".repeat(180));
    sh(
        dir,
        &format!(
            "mkdir -p src/{deep} && cd src && \
             head -c 3145729 /dev/urandom > {deep}/big && : > empty && \
             ln -s {deep}/big {long}/to-big && ln {deep}/big same-as-big && \
             ln {deep}/big {long}/also-big && printf x > {}",
            "g".repeat(250)
        ),
    );
    deep
}

#[test]
fn gnu_tar_archives_read_and_unpack_as_without_the_guard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deep = tree(dir.path());
    sh(
        dir.path(),
        "truncate -s 64M holes && for i in $(seq 0 199); do \
           printf data | dd of=holes bs=1 seek=$((i * 300000)) conv=notrunc status=none; done && \
         tar --format=gnu -cf gnu.tar -C src . && tar --format=pax -cf pax.tar -C src . && \
         tar --format=gnu --sparse -cf sparse-gnu.tar holes && \
         tar --format=pax --sparse -cf sparse-pax.tar holes",
    );
    let read = |name: &str| fs::read(dir.path().join(name)).expect("archive");
    for name in ["gnu.tar", "pax.tar"] {
        let tar = read(name);
        let seen = transparent(&tar);
        assert!(seen.iter().any(|s| s.path.len() > 500), "{name}");
        let parent = tempfile::tempdir().expect("temp dir");
        unpack(&tar, parent.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let layer = parent.path().join("layer");
        let big = fs::read(layer.join(&deep).join("big")).expect("big");
        assert_eq!(
            big,
            fs::read(dir.path().join("src").join(&deep).join("big")).expect("src")
        );
        let ino = |p: &str| fs::metadata(layer.join(p)).expect(p).ino();
        assert_eq!(ino("same-as-big"), ino(&format!("{deep}/big")));
        assert_eq!(
            ino(&format!("{}/also-big", "d".repeat(150))),
            ino("same-as-big")
        );
        let link = fs::read_link(layer.join("d".repeat(150)).join("to-big")).expect("symlink");
        assert_eq!(link, Path::new(&deep).join("big"));
        assert_eq!(fs::read(layer.join("g".repeat(250))).expect("g"), b"x");
    }
    let holes = fs::read(dir.path().join("holes")).expect("holes");
    let gnu = read("sparse-gnu.tar");
    // GNU tar's map of 200 regions takes extension blocks after the header.
    assert_eq!(gnu[156], b'S');
    assert_eq!(gnu[482], 1, "extended");
    let seen = transparent(&gnu);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].contents, holes);
    let seen = transparent(&read("sparse-pax.tar"));
    assert_eq!(seen.len(), 1);
    // The unpacker refuses GNU sparse entries, with or without the guard.
    let parent = tempfile::tempdir().expect("temp dir");
    let err = unpack(&gnu, parent.path()).expect_err("sparse refused");
    assert!(
        err.to_string().contains("unsupported entry type GNUSparse"),
        "{err}"
    );
}
