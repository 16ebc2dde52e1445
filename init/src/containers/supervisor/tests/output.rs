//! A container's output: bounded lines from a hostile writer, any bytes, the rate limit.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::log_writer::QUEUE_LINES;
use super::super::logs::{ServiceLog, Stream, BURST_LINES, LINES_PER_SEC, MAX_LINE};
use super::super::output::{pump, Piece, Splitter, TokenBucket};

/// Longest a test waits for the reader.
const DEADLINE: Duration = Duration::from_secs(120);

fn split(bytes: &[&[u8]]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut s = Splitter::default();
    for b in bytes {
        s.feed(b, &mut |p| pieces.push(p));
    }
    s.finish(&mut |p| pieces.push(p));
    pieces
}

fn piece(text: &str, continued: bool) -> Piece {
    Piece {
        text: text.to_string(),
        continued,
    }
}

/// Runs `write` on a thread of its own against the write end of a pipe whose read end is
/// pumped; returns the pieces once the writer closed the pipe.
async fn through_a_pipe(write: impl FnOnce(std::fs::File) + Send + 'static) -> Vec<Piece> {
    let (read, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a pipe");
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read).expect("a watched pipe");
    let writer = std::thread::spawn(move || write(std::fs::File::from(write_end)));
    let pieces = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&pieces);
    tokio::time::timeout(
        DEADLINE,
        pump(receiver, move |p| sink.lock().expect("pieces").push(p)),
    )
    .await
    .expect("the reader finishes before the deadline");
    writer.join().expect("the writer");
    let pieces = pieces.lock().expect("pieces").clone();
    pieces
}

/// What the flood test keeps of the pieces: counts, not the text.
#[derive(Default)]
struct Tally {
    pieces: usize,
    continued: usize,
    bytes: usize,
    longest: usize,
    last: Option<Piece>,
}

#[tokio::test]
async fn a_line_without_end_arrives_in_bounded_pieces() {
    const TOTAL: usize = 64 << 20;
    let (read, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a pipe");
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read).expect("a watched pipe");
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::from(write_end);
        let block = vec![b'x'; 1 << 20];
        for _ in 0..TOTAL / block.len() {
            f.write_all(&block).expect("writing");
        }
        f.write_all(b"\nafter\n").expect("writing");
    });
    let mut tally = Tally::default();
    tokio::time::timeout(
        DEADLINE,
        pump(receiver, |p| {
            tally.pieces += 1;
            tally.continued += usize::from(p.continued);
            tally.longest = tally.longest.max(p.text.len());
            if p.text.bytes().all(|b| b == b'x') {
                tally.bytes += p.text.len();
            }
            tally.last = Some(p);
        }),
    )
    .await
    .expect("the reader finishes before the deadline");
    writer.join().expect("the writer");
    assert_eq!(tally.pieces, TOTAL / MAX_LINE + 1);
    assert_eq!(tally.continued, TOTAL / MAX_LINE - 1);
    assert_eq!(tally.longest, MAX_LINE);
    assert_eq!(tally.bytes, TOTAL);
    assert_eq!(tally.last, Some(piece("after", false)));
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let peak = status.lines().find(|l| l.starts_with("VmHWM"));
        eprintln!("64 MiB without a newline read; peak RSS of the test process: {peak:?}");
    }
}

#[test]
fn the_splitter_never_holds_more_than_a_line() {
    let mut s = Splitter::default();
    let mut count = 0usize;
    let block = vec![b'y'; 1 << 20];
    for _ in 0..64 {
        s.feed(&block, &mut |p| {
            assert!(p.text.len() <= MAX_LINE);
            count += 1;
        });
        assert_eq!(s.capacity(), MAX_LINE);
    }
    assert_eq!(
        count,
        (64 << 20) / MAX_LINE - 1,
        "the last piece waits for more"
    );
}

#[tokio::test]
async fn bytes_that_are_not_utf8_keep_the_reader_going() {
    let pieces = through_a_pipe(|mut f| {
        f.write_all(b"a\xffb\n\xc3").expect("writing");
        f.write_all(b"\n\x00\xfe\xfe\r\nstill here\n")
            .expect("the pipe is still read");
        f.write_all(b"no newline at the end").expect("writing");
    })
    .await;
    assert_eq!(
        pieces,
        [
            piece("a\u{fffd}b", false),
            piece("\u{fffd}", false),
            piece("\0\u{fffd}\u{fffd}", false),
            piece("still here", false),
            piece("no newline at the end", false),
        ]
    );
}

#[test]
fn a_cut_does_not_split_a_character() {
    let mut line = vec![b'x'; MAX_LINE - 1];
    line.extend_from_slice("é!\n".as_bytes());
    let pieces = split(&[&line[..MAX_LINE], &line[MAX_LINE..]]);
    assert_eq!(
        pieces,
        [piece(&"x".repeat(MAX_LINE - 1), true), piece("é!", false)]
    );
    // Exactly a full line followed by its newline is one whole line.
    let mut full = vec![b'z'; MAX_LINE];
    full.push(b'\n');
    assert_eq!(split(&[&full]), [piece(&"z".repeat(MAX_LINE), false)]);
}

#[test]
fn the_bucket_refills_at_its_rate_up_to_its_burst() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(10, 5, t0);
    assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
    let later = t0 + Duration::from_millis(300);
    assert_eq!((0..8).filter(|_| b.take(later)).count(), 3);
    let much_later = later + Duration::from_secs(60);
    assert_eq!((0..8).filter(|_| b.take(much_later)).count(), 5);
}

#[test]
fn lines_beyond_the_rate_limit_are_counted_and_reported() {
    let (log, _) = ServiceLog::new(None, "web");
    let t0 = Instant::now();
    let flood = BURST_LINES as usize + 2000;
    for i in 0..flood {
        log.offer_at("web-1", Stream::Stdout, piece(&format!("{i}"), false), t0);
    }
    assert_eq!(log.dropped(), 2000);
    assert_eq!(log.tail(1)[0].text, format!("{}", BURST_LINES - 1));

    let t1 = t0 + Duration::from_secs(1);
    log.offer_at("web-1", Stream::Stdout, piece("again", false), t1);
    let tail = log.tail(2);
    assert_eq!(tail[0].text, "baton: 2000 lines dropped (rate limit)");
    assert_eq!(tail[0].stream, Stream::Stderr);
    assert_eq!(tail[1].text, "again");
    // One notice only; a second of refill let LINES_PER_SEC lines through ("again" was one).
    for i in 0..LINES_PER_SEC + 5 {
        log.offer_at("web-1", Stream::Stdout, piece(&format!("b{i}"), false), t1);
    }
    assert_eq!(log.dropped(), 2006);
    assert_eq!(log.tail(1)[0].text, format!("b{}", LINES_PER_SEC - 2));
    assert!(log
        .tail(LINES_PER_SEC as usize)
        .iter()
        .all(|l| l.stream == Stream::Stdout));
    let t2 = t1 + Duration::from_millis(100);
    log.offer_at("web-1", Stream::Stderr, piece("late", false), t2);
    let tail = log.tail(2);
    assert_eq!(tail[0].text, "baton: 6 lines dropped (rate limit)");
    assert_eq!(tail[1].text, "late");
}

#[test]
fn a_stuck_log_file_counts_lines_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("web.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // A reader that does not read yet: the writer's writes block once the pipe is full.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("the read end");
    let (log, err) = ServiceLog::new(Some(dir.path()), "web");
    assert!(err.is_none(), "{err:?}");
    let log = Arc::new(log);
    let line = "x".repeat(1024);
    let started = Instant::now();
    // Pushing must never wait for the file: on a thread of its own, against the deadline.
    let (done, pushed) = std::sync::mpsc::channel();
    let (flood, text) = (Arc::clone(&log), line.clone());
    std::thread::spawn(move || {
        let mut pushed = 0;
        while flood.unwritten() == 0 && pushed < 100_000 {
            flood.push("web-1", Stream::Stdout, &text);
            pushed += 1;
        }
        let _ = done.send(pushed);
    });
    let pushed = pushed.recv_timeout(DEADLINE).expect("pushing never blocks");
    assert!(log.unwritten() > 0, "lines were counted");
    assert!(pushed > QUEUE_LINES, "{pushed}");
    assert_eq!(log.tail(1)[0].text, line, "the ring has every line");

    // Once the disk moves again, the file says how many lines it lacks.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut text = Vec::new();
        loop {
            // A read that would block keeps what it read of the line so far.
            match std::io::BufRead::read_until(&mut reader, b'\n', &mut text) {
                Ok(0) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&text).into_owned();
                    text.clear();
                    if line.contains("lines left out of this file") {
                        let _ = tx.send(line);
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(_) => break,
            }
        }
    });
    let notice = loop {
        log.push("web-1", Stream::Stdout, "after");
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(notice) => break notice,
            Err(_) => assert!(started.elapsed() < DEADLINE, "no notice in the file"),
        }
    };
    assert!(notice.contains(" web-1 err baton: "), "{notice}");
}

#[test]
fn a_line_of_bytes_that_are_not_utf8_stays_within_the_bound() {
    let mut line = vec![0xffu8; MAX_LINE];
    line.push(b'\n');
    let pieces = split(&[&line]);
    assert!(
        pieces.iter().all(|p| p.text.len() <= MAX_LINE),
        "{}",
        pieces.len()
    );
    let (last, rest) = pieces.split_last().expect("pieces");
    assert!(rest.iter().all(|p| p.continued) && !last.continued);
    let chars: usize = pieces.iter().map(|p| p.text.chars().count()).sum();
    assert_eq!(chars, MAX_LINE, "one U+FFFD per byte");
}
